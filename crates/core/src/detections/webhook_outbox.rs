//! The platform's alert webhook worker: sends what `store::alert_webhook_outbox` holds to
//! `PALISADE_SECURITY_ALERT_WEBHOOK`.
//!
//! An opened alert is queued in its own transaction ([`super::delivery::platform_webhook_in`]),
//! so a node that stops right after raising it, or a receiver that is down for hours, delays the
//! delivery but never loses it. Every node with the setting runs a worker ([`spawn_worker`]),
//! woken after the commit that queued an alert and on a timer. A round ([`deliver_due`]) claims
//! due rows with a lease, makes one signed attempt each (a fresh `webhook-timestamp`, the same
//! `webhook-id` every time so the receiver can drop a repeat) and records the outcome: `sent`;
//! a failure waits [`crate::outbox::backoff`] (30 s doubling, at most an hour) and is
//! given up after [`MAX_ATTEMPTS`] (about ten hours), logged at error and audited
//! (`security.alert_webhook_failed`). Delivery is at least once, like every Palisade webhook.

use super::delivery::send_platform_webhook;
use crate::audit::AuditEntryExt;
use crate::outbox::{self, SendError, Settled};
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::{AlertDeliveryId, TenantId};
use palisade_store::alert_webhook_outbox::{ClaimedAlertDelivery, QUEUE};
use palisade_store::SystemScope;
use serde_json::json;
use time::Duration;

/// Deliveries claimed per round.
pub const BATCH: i64 = 16;
/// How long a claimed delivery is hidden from other workers (an attempt times out well within).
pub const LEASE: Duration = Duration::minutes(2);
/// Attempts in all before a delivery is given up: with the backoff, about ten hours.
pub const MAX_ATTEMPTS: i64 = 16;
/// How long sent and failed rows are kept.
pub const KEEP: Duration = Duration::days(30);
const PRUNE_LIMIT: i64 = 5000;

/// This node's alert webhook worker ([`outbox::spawn_worker`]): a round at start, whenever an
/// alert is queued here, and every `every`; a full batch is followed by another round at
/// once. Prunes once an hour.
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let wake = s.alert_webhooks.clone();
    let pruning = s.clone();
    outbox::spawn_worker(
        "alert webhook delivery round failed",
        every,
        wake,
        BATCH,
        move || {
            let s = pruning.clone();
            async move {
                if let Err(e) = prune(&s).await {
                    tracing::warn!(error = %e, "pruning the alert webhook outbox failed");
                }
            }
        },
        move || {
            let s = s.clone();
            async move { deliver_due(&s).await }
        },
    )
}

/// One round: claims up to [`BATCH`] due deliveries, makes one attempt each (in order) and
/// records the outcomes. Returns how many were claimed.
pub async fn deliver_due(s: &Services) -> AppResult<usize> {
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::Detections,
        SystemScope::new("security.alert_webhook.claim"),
    )
    .await?;
    let now = uow.now();
    let mut claimed = QUEUE.claim_due(uow.tx(), now, now + LEASE, BATCH).await?;
    uow.commit().await?;
    // Ids are UUID v7: oldest first (RETURNING keeps no order).
    claimed.sort_by_key(|d| d.id);
    let n = claimed.len();
    for d in claimed {
        let outcome = send_platform_webhook(s, &d.message_id, d.payload.as_bytes()).await;
        if let Err(e) = record(s, &d, outcome).await {
            // The row stays leased and goes again when the lease ends.
            tracing::warn!(error = %e, "could not record an alert webhook outcome; it is retried after its lease");
        }
    }
    Ok(n)
}

async fn record(
    s: &Services,
    d: &ClaimedAlertDelivery,
    outcome: Result<(), SendError>,
) -> AppResult<()> {
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::Detections,
        SystemScope::new("security.alert_webhook.deliver"),
    )
    .await?;
    if let Some(t) = d.tenant_id {
        uow = uow.for_tenant(TenantId::from_uuid(t));
    }
    let id = AlertDeliveryId::from_uuid(d.id);
    let now = uow.now();
    let attempt = outcome.as_ref().map(|_| ());
    match outbox::settle(uow.tx(), &QUEUE, id, d.attempts, MAX_ATTEMPTS, now, attempt).await? {
        Settled::Sent => {}
        Settled::Retried {
            attempts,
            wait,
            error,
        } => {
            tracing::warn!(alert = %d.alert_id, attempts, retry_in_s = wait.whole_seconds(), %error, "the platform alert webhook did not accept an alert; retried later");
        }
        Settled::GaveUp {
            attempts,
            reason,
            recorded,
        } => {
            tracing::error!(alert = %d.alert_id, attempts, error = %reason, "a security alert could not be delivered to the platform alert webhook");
            if recorded {
                let entry = uow
                    .entry("security.alert_webhook_failed")
                    .target("security_alert", d.alert_id)
                    .metadata(json!({ "attempts": attempts, "error": reason }));
                uow.audit(entry).await?;
            }
        }
    }
    uow.commit().await
}

/// Deletes sent and failed deliveries older than [`KEEP`].
pub async fn prune(s: &Services) -> AppResult<u64> {
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::Maintenance,
        SystemScope::new("security.alert_webhook.prune"),
    )
    .await?;
    let cutoff = uow.now() - KEEP;
    let n = QUEUE.prune(uow.tx(), cutoff, PRUNE_LIMIT).await?;
    uow.commit().await?;
    Ok(n)
}
