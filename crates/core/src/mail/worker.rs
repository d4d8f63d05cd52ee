//! The mail worker: sends what the outbox holds.
//!
//! Every node runs one ([`spawn_worker`]), woken when a mail is queued on the node
//! (`Services::mail_outbox`) and on a timer (retries, mails queued on other nodes, leases that
//! ran out). A round ([`deliver_due`]):
//!
//! 1. claims up to [`BATCH`] due pending mails in one short transaction by giving them a lease
//!    (`locked_until`, [`LEASE`]): other workers skip them until it ends (PostgreSQL: `FOR
//!    UPDATE SKIP LOCKED`; SQLite: the single writer and a conditional update);
//! 2. decrypts and sends them, a few at a time ([`CONCURRENCY`]) through the transport (an
//!    SMTP connection pool, or `.eml` files); a mail whose lease ran out before its turn is
//!    left to whoever claims it next;
//! 3. records each outcome in its own transaction ([`outbox::settle`]): `sent` (the body
//!    emptied); a transient failure (4xx, connection, timeout, disk) counts the attempt and
//!    waits [`outbox::backoff`]; a
//!    permanent one (5xx, an unusable address, a body that cannot be decrypted) or the
//!    [`MAX_ATTEMPTS`]th failure marks it `failed` (the body emptied, a warning logged and an
//!    audit record `mail.failed` written, never the body).
//!
//! Delivery is at least once: a worker that dies after the server took a mail but before it
//! was recorded leaves the lease to run out, and the mail goes again, with the same
//! Message-ID. Sent and failed rows are deleted after [`KEEP`] ([`prune`], hourly).

use super::transport::{Mailer, SendError};
use super::{payload_aad, Content};
use crate::audit::AuditEntryExt;
use crate::outbox::{self, Settled};
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use futures_util::StreamExt;
use palisade_domain::{MailId, TenantId};
use palisade_store::mail_outbox::{ClaimedMail, QUEUE};
use palisade_store::SystemScope;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use time::Duration;

/// Mails claimed per round.
pub const BATCH: i64 = 32;
/// Mails sent at once by one worker (each needs an SMTP connection from the pool).
pub const CONCURRENCY: usize = 8;
/// How long a claimed mail is hidden from other workers.
pub const LEASE: Duration = Duration::minutes(5);
/// Attempts in all before a mail that keeps failing transiently is given up (about six hours
/// of retries with [`outbox::backoff`]).
pub const MAX_ATTEMPTS: i64 = 12;
/// How long sent and failed rows are kept.
pub const KEEP: Duration = Duration::days(30);
/// Most rows one prune deletes (the next one continues).
const PRUNE_LIMIT: i64 = 5000;

/// This node's mail worker ([`outbox::spawn_worker`]): a round at start, whenever a mail is
/// queued here, and every `every`; a full batch is followed by another round at once. Prunes
/// once an hour.
pub fn spawn_worker(
    s: Services,
    mailer: Arc<Mailer>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let wake = s.mail_outbox.clone();
    let pruning = s.clone();
    outbox::spawn_worker(
        "mail delivery round failed",
        every,
        wake,
        BATCH,
        move || {
            let s = pruning.clone();
            async move {
                match prune(&s).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "pruned old mails from the outbox"),
                    Err(e) => tracing::warn!(error = %e, "pruning the mail outbox failed"),
                }
            }
        },
        move || {
            let s = s.clone();
            let mailer = mailer.clone();
            async move { deliver_due(&s, &mailer).await }
        },
    )
}

/// One round: claims up to [`BATCH`] due mails, sends them and records the outcomes. Returns
/// how many were claimed.
pub async fn deliver_due(s: &Services, mailer: &Mailer) -> AppResult<usize> {
    let mut uow =
        UnitOfWork::system(s, SystemActor::MailWorker, SystemScope::new("mail.claim")).await?;
    let now = uow.now();
    let mut claimed = QUEUE.claim_due(uow.tx(), now, now + LEASE, BATCH).await?;
    uow.commit().await?;
    let n = claimed.len();
    if n == 0 {
        return Ok(0);
    }
    // Ids are UUID v7: oldest first (RETURNING keeps no order).
    claimed.sort_by_key(|m| m.id);
    // Leave a margin: a mail is not started once most of the lease is gone.
    let deadline = Instant::now() + std::time::Duration::from_secs(4 * 60);
    let results: Vec<AppResult<()>> = futures_util::stream::iter(claimed)
        .map(|m| deliver_one(s, mailer, m, deadline))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        if let Err(e) = r {
            // The mail stays leased and goes again when the lease ends.
            tracing::warn!(error = %e, "could not record a mail's outcome; it is retried after its lease");
        }
    }
    Ok(n)
}

async fn deliver_one(
    s: &Services,
    mailer: &Mailer,
    m: ClaimedMail,
    deadline: Instant,
) -> AppResult<()> {
    if Instant::now() >= deadline {
        return Ok(());
    }
    let id = MailId::from_uuid(m.id);
    let outcome = match decrypt(s, id, &m.payload) {
        Ok(content) => match mailer.message(id, &m.to_address, &content, s.now()) {
            Ok(message) => mailer.send(id, &message).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    record(s, &m, id, outcome).await
}

fn decrypt(s: &Services, id: MailId, payload: &str) -> Result<Content, SendError> {
    let unreadable = || SendError {
        permanent: true,
        message: "the queued mail cannot be decrypted with the key ring".into(),
    };
    let plain = s
        .keys
        .encryption
        .decrypt(payload, &payload_aad(id))
        .map_err(|_| unreadable())?;
    serde_json::from_slice(&plain).map_err(|_| unreadable())
}

async fn record(
    s: &Services,
    m: &ClaimedMail,
    id: MailId,
    outcome: Result<(), SendError>,
) -> AppResult<()> {
    let mut uow =
        UnitOfWork::system(s, SystemActor::MailWorker, SystemScope::new("mail.deliver")).await?;
    if let Some(t) = m.tenant_id {
        uow = uow.for_tenant(TenantId::from_uuid(t));
    }
    let now = uow.now();
    let attempt = outcome.as_ref().map(|_| ());
    match outbox::settle(uow.tx(), &QUEUE, id, m.attempts, MAX_ATTEMPTS, now, attempt).await? {
        Settled::Sent => {}
        Settled::Retried {
            attempts,
            wait,
            error,
        } => {
            tracing::info!(mail = %id, kind = %m.kind, attempts, retry_in_s = wait.whole_seconds(), %error, "mail not sent; retried later");
        }
        Settled::GaveUp {
            attempts,
            reason,
            recorded,
        } => {
            tracing::warn!(mail = %id, kind = %m.kind, attempts, error = %reason, "mail could not be delivered");
            if recorded {
                let entry = uow
                    .entry("mail.failed")
                    .target("mail", id)
                    .metadata(json!({ "kind": m.kind, "attempts": attempts, "error": reason }));
                uow.audit(entry).await?;
            }
        }
    }
    uow.commit().await
}

/// Deletes sent and failed mails older than [`KEEP`] (at most a few thousand per call).
pub async fn prune(s: &Services) -> AppResult<u64> {
    let mut uow =
        UnitOfWork::system(s, SystemActor::Maintenance, SystemScope::new("mail.prune")).await?;
    let cutoff = uow.now() - KEEP;
    let n = QUEUE.prune(uow.tx(), cutoff, PRUNE_LIMIT).await?;
    uow.commit().await?;
    Ok(n)
}
