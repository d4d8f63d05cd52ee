//! Store integrations (shops that send order webhooks), their orders and the deliveries
//! already received, under the caller's [`TenantScope`]: every statement binds the scope's
//! tenant. The one exception is [`find_any`], the webhook's lookup by id before anything about
//! the request is trusted (system work; the caller then checks the signature).
//!
//! Rows are private and come out as the domain's [`Integration`] and [`Order`]; stored values
//! are taken as stored (`from_stored`). Deleting an integration deletes its orders and its
//! delivery log with it.

use crate::{Query, Result, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::integration::{
    rules_from_stored, Integration, IntegrationKind, IntegrationName, NotificationStatus, Order,
    Rule,
};
use palisade_domain::{ContactId, IntegrationId, OrderId};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
struct IntegrationRow {
    id: Uuid,
    tenant_id: Uuid,
    kind: String,
    name: String,
    secret_ciphertext: String,
    connection_id: Option<Uuid>,
    rules: Json<serde_json::Value>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl IntegrationRow {
    fn into_integration(self) -> Result<Integration> {
        Ok(Integration {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            kind: IntegrationKind::parse(&self.kind).ok_or_else(|| {
                StoreError::Integrity(format!("unknown integration kind {:?}", self.kind))
            })?,
            name: IntegrationName::from_stored(self.name),
            secret_ciphertext: self.secret_ciphertext,
            connection_id: self.connection_id.map(Into::into),
            rules: rules_from_stored(&self.rules.0),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const COLUMNS: &str =
    "id, tenant_id, kind, name, secret_ciphertext, connection_id, rules, created_at, updated_at";

fn rules_json(rules: &[Rule]) -> serde_json::Value {
    serde_json::Value::Array(rules.iter().map(Rule::to_json).collect())
}

pub async fn insert(tx: &mut Tx<TenantScope>, i: &Integration) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO integrations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(i.id)
        .bind(tenant)
        .bind(i.kind.as_str())
        .bind(i.name.as_str())
        .bind(i.secret_ciphertext.as_str())
        .bind(i.connection_id)
        .bind(rules_json(&i.rules))
        .bind(i.created_at)
        .bind(i.updated_at),
    )
    .await?;
    Ok(())
}

/// The tenant's integrations, oldest first.
pub async fn list(tx: &mut Tx<TenantScope>) -> Result<Vec<Integration>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<IntegrationRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 ORDER BY id"
            ))
            .bind(tenant),
        )
        .await?;
    rows.into_iter()
        .map(IntegrationRow::into_integration)
        .collect()
}

async fn find_with(
    tx: &mut Tx<TenantScope>,
    id: IntegrationId,
    lock: &str,
) -> Result<Option<Integration>> {
    let row: Option<IntegrationRow> = tx.find_row("integrations", COLUMNS, id, lock).await?;
    row.map(IntegrationRow::into_integration).transpose()
}

pub async fn find(tx: &mut Tx<TenantScope>, id: IntegrationId) -> Result<Option<Integration>> {
    find_with(tx, id, "").await
}

/// [`find`], locking the row until the transaction ends (a change waits for a concurrent one).
pub async fn find_for_update(
    tx: &mut Tx<TenantScope>,
    id: IntegrationId,
) -> Result<Option<Integration>> {
    let lock = tx.row_lock();
    find_with(tx, id, lock).await
}

/// An integration by id alone: the shop's webhook names it in the URL and carries no
/// credential of ours, so the lookup is system work; the caller checks the signature before
/// trusting anything.
pub async fn find_any(tx: &mut Tx<SystemScope>, id: IntegrationId) -> Result<Option<Integration>> {
    let row: Option<IntegrationRow> = tx
        .fetch_optional(
            Query::new(format!("SELECT {COLUMNS} FROM integrations WHERE id = $1")).bind(id),
        )
        .await?;
    row.map(IntegrationRow::into_integration).transpose()
}

/// Writes the name, connection, rules and secret of `i`.
pub async fn update(tx: &mut Tx<TenantScope>, i: &Integration) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE integrations SET name = $3, connection_id = $4, rules = $5,
                 secret_ciphertext = $6, updated_at = $7
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(i.id)
        .bind(i.name.as_str())
        .bind(i.connection_id)
        .bind(rules_json(&i.rules))
        .bind(i.secret_ciphertext.as_str())
        .bind(i.updated_at),
    )
    .await?;
    Ok(())
}

/// Deletes an integration with its orders and delivery log. Returns the number of orders
/// deleted, or `None` when there was no such integration.
pub async fn delete(tx: &mut Tx<TenantScope>, id: IntegrationId) -> Result<Option<u64>> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "DELETE FROM integration_deliveries WHERE tenant_id = $1 AND integration_id = $2",
        )
        .bind(tenant)
        .bind(id),
    )
    .await?;
    let orders = tx
        .execute(
            Query::new(
                "DELETE FROM integration_orders WHERE tenant_id = $1 AND integration_id = $2",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let n = tx
        .execute(
            Query::new("DELETE FROM integrations WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    Ok((n > 0).then_some(orders))
}

/// Records a delivery of `integration`. Returns false (and writes nothing) when that delivery
/// id was recorded before: a replay. Two identical deliveries at once: on PostgreSQL the second
/// insert waits for the first transaction and then finds the row; on SQLite writers run one at
/// a time.
pub async fn record_delivery(
    tx: &mut Tx<TenantScope>,
    integration: IntegrationId,
    delivery_id: &str,
    topic: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    let n = tx
        .execute(
            Query::new(
                "INSERT INTO integration_deliveries
                     (id, tenant_id, integration_id, delivery_id, topic, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant_id, integration_id, delivery_id) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant)
            .bind(integration)
            .bind(delivery_id)
            .bind(topic)
            .bind(now),
        )
        .await?;
    Ok(n > 0)
}

// ---- orders ----

#[derive(Debug, sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    tenant_id: Uuid,
    integration_id: Uuid,
    external_id: String,
    number: String,
    status: String,
    total: String,
    currency: String,
    contact_id: Option<Uuid>,
    line_summary: String,
    notification: Option<String>,
    notification_error: Option<String>,
    message_id: Option<Uuid>,
    shop_modified_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl OrderRow {
    fn into_order(self) -> Result<Order> {
        let notification = match self.notification.as_deref() {
            None => None,
            Some(s) => Some(NotificationStatus::parse(s).ok_or_else(|| {
                StoreError::Integrity(format!("unknown notification status {s:?}"))
            })?),
        };
        Ok(Order {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            integration_id: self.integration_id.into(),
            external_id: self.external_id,
            number: self.number,
            status: self.status,
            total: self.total,
            currency: self.currency,
            contact_id: self.contact_id.map(Into::into),
            line_summary: self.line_summary,
            notification,
            notification_error: self.notification_error,
            message_id: self.message_id,
            shop_modified_at: self.shop_modified_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const ORDER_COLUMNS: &str = "id, tenant_id, integration_id, external_id, number, status, total, \
    currency, contact_id, line_summary, notification, notification_error, message_id, \
    shop_modified_at, created_at, updated_at";

/// Inserts `o` unless the integration already has an order with its external id. Returns
/// whether it was inserted.
pub async fn insert_order_if_absent(tx: &mut Tx<TenantScope>, o: &Order) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    let n = tx
        .execute(
            Query::new(format!(
                "INSERT INTO integration_orders ({ORDER_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 ON CONFLICT (tenant_id, integration_id, external_id) DO NOTHING"
            ))
            .bind(o.id)
            .bind(tenant)
            .bind(o.integration_id)
            .bind(o.external_id.as_str())
            .bind(o.number.as_str())
            .bind(o.status.as_str())
            .bind(o.total.as_str())
            .bind(o.currency.as_str())
            .bind(o.contact_id)
            .bind(o.line_summary.as_str())
            .bind(o.notification.map(NotificationStatus::as_str))
            .bind(o.notification_error.clone())
            .bind(o.message_id)
            .bind(o.shop_modified_at)
            .bind(o.created_at)
            .bind(o.updated_at),
        )
        .await?;
    Ok(n > 0)
}

/// The integration's order with the shop's id `external_id`, locked until the transaction
/// ends: two deliveries of one order are recorded one after the other, each seeing the status
/// the previous one left.
pub async fn find_order_for_update(
    tx: &mut Tx<TenantScope>,
    integration: IntegrationId,
    external_id: &str,
) -> Result<Option<Order>> {
    let tenant = tx.scope().tenant_id();
    let lock = tx.row_lock();
    let row: Option<OrderRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {ORDER_COLUMNS} FROM integration_orders
                 WHERE tenant_id = $1 AND integration_id = $2 AND external_id = $3 {lock}"
            ))
            .bind(tenant)
            .bind(integration)
            .bind(external_id),
        )
        .await?;
    row.map(OrderRow::into_order).transpose()
}

/// Writes every field of `o` but its identity and creation time.
pub async fn update_order(tx: &mut Tx<TenantScope>, o: &Order) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE integration_orders SET number = $3, status = $4, total = $5, currency = $6,
                 contact_id = $7, line_summary = $8, notification = $9,
                 notification_error = $10, message_id = $11, updated_at = $12,
                 shop_modified_at = $13
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(o.id)
        .bind(o.number.as_str())
        .bind(o.status.as_str())
        .bind(o.total.as_str())
        .bind(o.currency.as_str())
        .bind(o.contact_id)
        .bind(o.line_summary.as_str())
        .bind(o.notification.map(NotificationStatus::as_str))
        .bind(o.notification_error.clone())
        .bind(o.message_id)
        .bind(o.updated_at)
        .bind(o.shop_modified_at),
    )
    .await?;
    Ok(())
}

/// A contact's orders, newest first, after `before` (the previous page's last id).
pub async fn orders_of_contact(
    tx: &mut Tx<TenantScope>,
    contact: ContactId,
    before: Option<OrderId>,
    limit: i64,
) -> Result<Vec<Order>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<OrderRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {ORDER_COLUMNS} FROM integration_orders
                 WHERE tenant_id = $1 AND contact_id = $2 AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            ))
            .bind(tenant)
            .bind(contact)
            .bind(before)
            .bind(limit),
        )
        .await?;
    rows.into_iter().map(OrderRow::into_order).collect()
}

/// Deletes a contact's orders (the contact is being erased).
pub async fn delete_orders_of_contact(tx: &mut Tx<TenantScope>, contact: ContactId) -> Result<u64> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM integration_orders WHERE tenant_id = $1 AND contact_id = $2")
            .bind(tenant)
            .bind(contact),
    )
    .await
}
