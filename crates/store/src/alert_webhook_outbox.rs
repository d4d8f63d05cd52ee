//! The platform's alert webhook outbox: security alerts to send to
//! `PALISADE_SECURITY_ALERT_WEBHOOK`, written in the transaction that opens the alert and sent
//! by a background worker with retries (see the migration `0036_alert_webhook_outbox`; the
//! queue statements are shared with the mail outbox in `outbox`).

use crate::outbox::{Outbox, Queue};
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

/// The queue's statements: claim with a lease, record the outcome, prune
/// ([`outbox::Queue`]).
pub const QUEUE: Queue<AlertDeliveryId, ClaimedAlertDelivery> = Queue::new(
    Outbox::AlertWebhook,
    "id, tenant_id, alert_id, message_id, payload, CAST(attempts AS BIGINT) AS attempts",
);

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
