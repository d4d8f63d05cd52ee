//! In-app notifications: one row per recipient user, written in the transaction of the event
//! that causes them, read (and marked read) only by their recipient.

use crate::{Query, Result, Scope, StoreError, TenantScope, Tx};
use palisade_domain::{NotificationId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: NotificationId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// What happened, e.g. `webhook.pending_approval`, `webhook.disabled`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Structured details for clients (ids, URLs, reasons).
    pub data: serde_json::Value,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub read_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    tenant_id: Uuid,
    user_id: Uuid,
    kind: String,
    title: String,
    body: String,
    data: sqlx::types::Json<serde_json::Value>,
    target_type: Option<String>,
    target_id: Option<Uuid>,
    created_at: OffsetDateTime,
    read_at: Option<OffsetDateTime>,
}

impl From<NotificationRow> for Notification {
    fn from(r: NotificationRow) -> Self {
        Notification {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            user_id: r.user_id.into(),
            kind: r.kind,
            title: r.title,
            body: r.body,
            data: r.data.0,
            target_type: r.target_type,
            target_id: r.target_id,
            created_at: r.created_at,
            read_at: r.read_at,
        }
    }
}

const COLUMNS: &str =
    "id, tenant_id, user_id, kind, title, body, data, target_type, target_id, created_at, read_at";

fn check_tenant<S: Scope>(tx: &Tx<S>, tenant: TenantId) -> Result<()> {
    match tx.scope().tenant() {
        Some(t) if t != tenant => Err(StoreError::Integrity(
            "notification outside the scope's tenant".into(),
        )),
        _ => Ok(()),
    }
}

/// The tenant's admins (the owner is one), not deleted: who hears about tenant-wide problems.
pub async fn admin_ids<S: Scope>(tx: &mut Tx<S>, tenant: TenantId) -> Result<Vec<UserId>> {
    #[derive(sqlx::FromRow)]
    struct Id {
        id: Uuid,
    }
    check_tenant(tx, tenant)?;
    let ids: Vec<Id> = tx
        .fetch_all(
            Query::new(
                "SELECT id FROM users WHERE tenant_id = $1 AND role = 'admin' AND deleted_at IS NULL
                 ORDER BY id",
            )
            .bind(tenant),
        )
        .await?;
    Ok(ids.into_iter().map(|i| i.id.into()).collect())
}

pub async fn insert<S: Scope>(tx: &mut Tx<S>, n: &Notification) -> Result<()> {
    check_tenant(tx, n.tenant_id)?;
    tx.execute(
        Query::new(
            "INSERT INTO notifications (id, tenant_id, user_id, kind, title, body, data,
                target_type, target_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(n.id)
        .bind(n.tenant_id)
        .bind(n.user_id)
        .bind(n.kind.as_str())
        .bind(n.title.as_str())
        .bind(n.body.as_str())
        .bind(n.data.clone())
        .bind(n.target_type.clone())
        .bind(n.target_id)
        .bind(n.created_at),
    )
    .await?;
    Ok(())
}

/// A user's notifications, newest first; `cursor` is the last id of the previous page.
pub async fn list_for_user(
    tx: &mut Tx<TenantScope>,
    user: UserId,
    unread_only: bool,
    cursor: Option<NotificationId>,
    limit: i64,
) -> Result<Vec<Notification>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<NotificationRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM notifications
             WHERE tenant_id = $1 AND user_id = $2 AND ($3 IS NULL OR id < $3)
               AND ($4 = FALSE OR read_at IS NULL)
             ORDER BY id DESC LIMIT $5"
            ))
            .bind(tenant)
            .bind(user)
            .bind(cursor)
            .bind(unread_only)
            .bind(limit),
        )
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Marks one of the user's notifications read (keeps the first read time); `None` when the user
/// has no such notification.
pub async fn mark_read(
    tx: &mut Tx<TenantScope>,
    user: UserId,
    id: NotificationId,
    now: OffsetDateTime,
) -> Result<Option<Notification>> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE notifications SET read_at = $4
             WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND read_at IS NULL",
        )
        .bind(tenant)
        .bind(user)
        .bind(id)
        .bind(now),
    )
    .await?;
    let row: Option<NotificationRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND id = $3"
            ))
            .bind(tenant)
            .bind(user)
            .bind(id),
        )
        .await?;
    Ok(row.map(Into::into))
}
