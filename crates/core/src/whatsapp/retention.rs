//! Retention of Meta's webhook bodies.
//!
//! Every verified POST is stored verbatim in `whatsapp_inbound_events` before the 200 (see
//! [`super::inbound`]). Once processed, its body is only needed for inspection, and it holds
//! customers' messages: a body processed more than `PALISADE_INBOUND_RETENTION_DAYS` ago (7 by
//! default; 0 keeps bodies forever) is dropped, leaving the row (id, tenant, connection, times,
//! attempts, error) with an empty body and `body_pruned_at`. Idempotency does not depend on the
//! body: a redelivered message is recognised by its wamid per connection in `messages`, and
//! statuses only move forward, so a duplicate of a pruned event still changes nothing.
//! Unprocessed bodies are never dropped, however old.
//!
//! A worker on every node ([`spawn_worker`]) prunes every [`INTERVAL`] in batches of
//! [`BATCH`] rows, each in its own short transaction (on PostgreSQL concurrent workers skip
//! each other's rows), so a large backlog never holds the writer for long.

use crate::worker::Next;
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use palisade_store::whatsapp_inbound as store;
use palisade_store::SystemScope;
use time::Duration;

/// How often a node prunes.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Bodies dropped per transaction.
pub const BATCH: i64 = 500;

/// Prunes at start and then every `every`.
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    crate::worker::spawn_periodic("pruning webhook bodies failed", every, None, move || {
        let s = s.clone();
        async move {
            let n = prune_inbound_bodies(&s).await?;
            if n > 0 {
                tracing::info!(
                    bodies = n,
                    "dropped processed webhook bodies past their retention"
                );
            }
            Ok::<_, crate::AppError>(Next::Wait)
        }
    })
}

/// Drops every processed body older than the retention, [`BATCH`] at a time. Returns how many.
pub async fn prune_inbound_bodies(s: &Services) -> AppResult<u64> {
    let days = s.settings.inbound_retention_days;
    if days == 0 {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let scope = SystemScope::new("whatsapp.inbound.retention");
        let mut uow = UnitOfWork::system(s, SystemActor::Maintenance, scope).await?;
        let now = uow.now();
        let cutoff = now - Duration::days(i64::from(days));
        let n = store::prune_bodies(uow.tx(), cutoff, now, BATCH).await?;
        uow.commit().await?;
        total += n;
        if n < u64::try_from(BATCH).unwrap_or(u64::MAX) {
            return Ok(total);
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
}
