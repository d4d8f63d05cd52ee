//! The platform's alert webhook outbox: security alerts to send to
//! `PALISADE_SECURITY_ALERT_WEBHOOK`, written in the transaction that opens the alert and sent
//! by a background worker with retries (see the migration `0036_alert_webhook_outbox`; the
//! queue statements are shared with the mail outbox in `outbox`).

use crate::outbox::{self, Outbox};
use crate::{Query, Result, Scope, SystemScope, Tx};
use palisade_domain::{AlertDeliveryId, SecurityAlertId, TenantId};
use time::OffsetDateTime;

/// A delivery to queue: the alert's signed body and its `webhook-id`.
#[derive(Debug, Clone)]
pub struct NewAlertDelivery<'a> {
    pub id: AlertDeliveryId,
    pub tenant_id: Option<TenantId>,
    pub alert_id: SecurityAlertId,
    pub message_id: &'a str,
    pub payload: &'a str,
}

/// Queues a delivery, due now.
pub async fn insert<S: Scope>(
    tx: &mut Tx<S>,
    d: NewAlertDelivery<'_>,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO alert_webhook_outbox (id, tenant_id, alert_id, message_id, payload,
                 status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(d.id)
        .bind(d.tenant_id)
        .bind(d.alert_id)
        .bind(d.message_id)
        .bind(d.payload)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// A claimed delivery: what the worker needs to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedAlertDelivery {
    pub id: uuid::Uuid,
    pub tenant_id: Option<uuid::Uuid>,
    pub alert_id: uuid::Uuid,
    pub message_id: String,
    pub payload: String,
    pub attempts: i64,
}

/// Claims up to `limit` due pending deliveries by giving them a lease until `lease_until`
/// (see [`outbox::claim_due`]).
pub async fn claim_due(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<ClaimedAlertDelivery>> {
    outbox::claim_due(
        tx,
        Outbox::AlertWebhook,
        "id, tenant_id, alert_id, message_id, payload, CAST(attempts AS BIGINT) AS attempts",
        now,
        lease_until,
        limit,
    )
    .await
}

/// The receiver accepted it: `sent`, the body dropped (while still pending).
pub async fn mark_sent(
    tx: &mut Tx<SystemScope>,
    id: AlertDeliveryId,
    now: OffsetDateTime,
) -> Result<bool> {
    outbox::mark_sent(tx, Outbox::AlertWebhook, id.as_uuid(), now).await
}

/// A failed attempt to try again at `next_attempt_at`.
pub async fn retry(
    tx: &mut Tx<SystemScope>,
    id: AlertDeliveryId,
    next_attempt_at: OffsetDateTime,
    error: &str,
) -> Result<bool> {
    outbox::retry(
        tx,
        Outbox::AlertWebhook,
        id.as_uuid(),
        next_attempt_at,
        error,
    )
    .await
}

/// Given up: `failed` with the reason, the body dropped.
pub async fn mark_failed(
    tx: &mut Tx<SystemScope>,
    id: AlertDeliveryId,
    error: &str,
) -> Result<bool> {
    outbox::mark_failed(tx, Outbox::AlertWebhook, id.as_uuid(), error).await
}

/// Deletes sent and failed deliveries created before `cutoff`, at most `limit` of them.
pub async fn prune(tx: &mut Tx<SystemScope>, cutoff: OffsetDateTime, limit: i64) -> Result<u64> {
    outbox::prune(tx, Outbox::AlertWebhook, cutoff, limit).await
}

/// Whether a delivery of `alert` is still waiting (pending) to be sent.
pub async fn is_pending(tx: &mut Tx<SystemScope>, alert: SecurityAlertId) -> Result<bool> {
    let row: Option<(i64,)> = tx
        .fetch_optional(
            Query::new(
                "SELECT CAST(1 AS BIGINT) FROM alert_webhook_outbox
                 WHERE alert_id = $1 AND status = 'pending' LIMIT 1",
            )
            .bind(alert),
        )
        .await?;
    Ok(row.is_some())
}
