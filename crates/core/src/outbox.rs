//! What the outbox workers (mail, the platform alert webhook) share: the worker's rhythm, the
//! wait between attempts, and the recording of an attempt's outcome.
//!
//! An outbox row is written in the transaction of the change that causes it; a worker claims
//! due rows with a lease (`palisade_store::outbox::Queue`), makes one attempt each and records
//! the outcome in its own transaction ([`settle`]): `sent`; a transient failure waits
//! [`backoff`] and goes again; a permanent one, or the last allowed attempt, is given up
//! (`failed`). The worker logs and audits the outcome in its own words.

use crate::worker::Next;
use crate::AppResult;
use palisade_store::outbox::Queue;
use palisade_store::{SystemScope, Tx};
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How often a node prunes an outbox of its old sent and failed rows.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// An attempt that did not go through. `permanent`: another attempt cannot help (an SMTP 5xx,
/// an address the message cannot carry, a setting that is gone); otherwise (a 4xx, a
/// connection or TLS failure, a timeout) a later attempt may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            permanent: false,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            permanent: true,
            message: message.into(),
        }
    }
}

/// The wait after the `failed`th failed attempt: 30 s doubling, at most an hour, plus up to a
/// quarter more at random so rows that failed together do not retry together.
pub fn backoff(failed: i64) -> Duration {
    let n = u32::try_from(failed.clamp(1, 16) - 1).unwrap_or(0);
    let base = 30_i64.saturating_mul(2_i64.saturating_pow(n)).min(3600);
    let jitter = rand::thread_rng().gen_range(0..=base / 4);
    Duration::seconds(base + jitter)
}

/// Spawns an outbox worker (on [`crate::worker::spawn_periodic`]): a round at start, whenever
/// `wake` is notified (a row was queued on this node) and every `every`; a round that claimed
/// a full `batch` is followed by another at once. `prune` runs before the first round and then
/// before the first round of every hour. `round` answers how many rows it claimed.
pub fn spawn_worker<P, PF, R, RF>(
    failed: &'static str,
    every: std::time::Duration,
    wake: Arc<Notify>,
    batch: i64,
    mut prune: P,
    mut round: R,
) -> JoinHandle<()>
where
    P: FnMut() -> PF + Send + 'static,
    PF: Future<Output = ()> + Send + 'static,
    R: FnMut() -> RF + Send + 'static,
    RF: Future<Output = AppResult<usize>> + Send + 'static,
{
    let mut last_prune: Option<Instant> = None;
    crate::worker::spawn_periodic(failed, every, Some(wake), move || {
        let pruning = if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            Some(prune())
        } else {
            None
        };
        let round = round();
        async move {
            if let Some(pruning) = pruning {
                pruning.await;
            }
            let claimed = round.await?;
            Ok::<_, crate::AppError>(if i64::try_from(claimed).unwrap_or(0) >= batch {
                Next::Again
            } else {
                Next::Wait
            })
        }
    })
}

/// What became of a claimed row after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Sent,
    /// A transient failure (`error`): the row goes again after `wait`.
    Retried {
        attempts: i64,
        wait: Duration,
        error: String,
    },
    /// Given up: a permanent failure, or the last allowed attempt failed. `recorded`: this
    /// worker marked the row `failed` (false when another worker had already settled it; the
    /// caller audits only what it recorded).
    GaveUp {
        attempts: i64,
        reason: String,
        recorded: bool,
    },
}

/// Records the outcome of an attempt on row `id`, claimed with `attempts` earlier attempts:
/// `sent`; a transient failure retried after [`backoff`] while fewer than `max_attempts` have
/// been made; otherwise `failed` with the reason (the count of attempts added to a transient
/// one's message).
pub async fn settle<I, T>(
    tx: &mut Tx<SystemScope>,
    queue: &Queue<I, T>,
    id: I,
    attempts: i64,
    max_attempts: i64,
    now: OffsetDateTime,
    outcome: Result<(), &SendError>,
) -> AppResult<Settled>
where
    I: Into<Uuid>,
{
    let attempts = attempts + 1;
    Ok(match outcome {
        Ok(()) => {
            queue.mark_sent(tx, id, now).await?;
            Settled::Sent
        }
        Err(e) if !e.permanent && attempts < max_attempts => {
            let wait = backoff(attempts);
            queue.retry(tx, id, now + wait, &e.message).await?;
            Settled::Retried {
                attempts,
                wait,
                error: e.message.clone(),
            }
        }
        Err(e) => {
            let reason = if e.permanent {
                e.message.clone()
            } else {
                format!("gave up after {attempts} attempts: {}", e.message)
            };
            let recorded = queue.mark_failed(tx, id, &reason).await?;
            Settled::GaveUp {
                attempts,
                reason,
                recorded,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30_seconds_with_jitter_and_caps_at_an_hour() {
        for (failed, base) in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (12, 3600)] {
            for _ in 0..20 {
                let s = backoff(failed).whole_seconds();
                assert!(
                    (base..=base + base / 4).contains(&s),
                    "{failed}: {s} not in {base}..{}",
                    base + base / 4
                );
            }
        }
        assert_eq!(backoff(0).whole_seconds() / 30, 1, "clamped");
    }
}
