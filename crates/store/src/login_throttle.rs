//! Per-login-name failure counters and temporary locks (see `core::auth::lockout`).
//!
//! A failure is counted and the lock decided in one statement ([`record_failure`]), so attempts
//! that run at the same time cannot overwrite each other's count: the database serialises the
//! upsert on the row (SQLite's single writer, PostgreSQL's row lock) and each statement sees the
//! count the previous one left.

use crate::query::{member_chunks, member_of};
use crate::{Query, Result, SystemScope, Tx};
use time::OffsetDateTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleState {
    pub failures: i64,
    pub last_failure_at: OffsetDateTime,
    pub locked_until: Option<OffsetDateTime>,
}

/// The rule one failure is counted by, computed by the caller from its settings and clock.
#[derive(Debug, Clone, Copy)]
pub struct FailureRule {
    pub now: OffsetDateTime,
    /// Failures at or before this instant no longer count (now − lockout window).
    pub counts_after: OffsetDateTime,
    /// The end of a lock that this failure starts (now + lockout window).
    pub lock_until: OffsetDateTime,
    /// The failure that reaches this count locks.
    pub threshold: i64,
}

pub async fn get(tx: &mut Tx<SystemScope>, key: &[u8]) -> Result<Option<ThrottleState>> {
    tx.fetch_optional(
        Query::new(
            "SELECT failures, last_failure_at, locked_until FROM login_throttle WHERE key_hash = $1",
        )
        .bind(key),
    )
    .await
}

/// A lock in force: the throttle key and when the lock ends.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveLock {
    pub key_hash: Vec<u8>,
    pub locked_until: OffsetDateTime,
}

/// The locks among `keys` that still hold at `now` (a team's list shows who is locked out):
/// one statement per chunk of keys, by the primary key.
pub async fn active_locks(
    tx: &mut Tx<SystemScope>,
    keys: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<Vec<ActiveLock>> {
    let db = tx.backend();
    let mut out = Vec::new();
    for chunk in member_chunks(db, keys) {
        if chunk.is_empty() {
            continue;
        }
        let q = Query::new(format!(
            "SELECT key_hash, locked_until FROM login_throttle
             WHERE locked_until > $1 AND {}",
            member_of(db, "key_hash", 2, chunk.len())
        ))
        .bind(now)
        .bind_members(db, chunk);
        out.extend(tx.fetch_all::<ActiveLock>(q).await?);
    }
    Ok(out)
}

/// Counts one failure and returns the state it left, in one write.
///
/// - During an active lock the failure is counted above the threshold, but the lock is neither
///   extended nor lifted and its start (`last_failure_at`) is kept.
/// - After a lock has expired, or when the last failure is older than the window, counting
///   starts again at 1.
/// - The failure that reaches the threshold sets `locked_until`, and its count is exactly the
///   threshold: of any number of concurrent failures, only that one returns
///   `failures == threshold` with a lock, so exactly one caller reports the lock.
pub async fn record_failure(
    tx: &mut Tx<SystemScope>,
    key: &[u8],
    rule: &FailureRule,
    ip: Option<&str>,
) -> Result<ThrottleState> {
    let threshold = rule.threshold.max(1);
    // A threshold of 1 locks on the first failure of a fresh count.
    let lock_on_first = (threshold <= 1).then_some(rule.lock_until);
    tx.fetch_one(
        Query::new(
            "INSERT INTO login_throttle (key_hash, failures, last_failure_at, locked_until,
                 last_failure_ip)
             VALUES ($1, 1, $2, $5, $7)
             ON CONFLICT (key_hash) DO UPDATE SET
                 failures = CASE
                     WHEN login_throttle.locked_until > $2 THEN login_throttle.failures + 1
                     WHEN login_throttle.locked_until IS NULL AND login_throttle.last_failure_at > $3
                         THEN CASE WHEN login_throttle.failures + 1 >= $6 THEN $6
                                   ELSE login_throttle.failures + 1 END
                     ELSE 1 END,
                 locked_until = CASE
                     WHEN login_throttle.locked_until > $2 THEN login_throttle.locked_until
                     WHEN login_throttle.locked_until IS NULL AND login_throttle.last_failure_at > $3
                         THEN CASE WHEN login_throttle.failures + 1 >= $6 THEN $4 ELSE NULL END
                     ELSE $5 END,
                 last_failure_at = CASE
                     WHEN login_throttle.locked_until > $2 THEN login_throttle.last_failure_at
                     ELSE $2 END,
                 last_failure_ip = CASE
                     WHEN login_throttle.locked_until > $2 THEN login_throttle.last_failure_ip
                     ELSE $7 END
             RETURNING failures, last_failure_at, locked_until",
        )
        .bind(key)
        .bind(rule.now)
        .bind(rule.counts_after)
        .bind(rule.lock_until)
        .bind(lock_on_first)
        .bind(threshold)
        .bind(ip),
    )
    .await
}

/// How many login names (known accounts or not) last failed from `ip` since `since`: a name
/// counts for the address of its latest counted failure, while its row lives (rows go once the
/// lockout window has passed, or when the name signs in).
pub async fn names_failed_from(
    tx: &mut Tx<SystemScope>,
    ip: &str,
    since: OffsetDateTime,
) -> Result<i64> {
    let (n,): (i64,) = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) FROM login_throttle
                 WHERE last_failure_ip = $1 AND last_failure_at >= $2",
            )
            .bind(ip)
            .bind(since),
        )
        .await?;
    Ok(n)
}

/// Forgets the rows whose failures no longer count and whose lock (if any) has ended: they
/// would start from zero anyway. Without this the table keeps one row per email ever tried.
pub async fn prune(tx: &mut Tx<SystemScope>, rule: &FailureRule) -> Result<u64> {
    tx.execute(
        Query::new(
            "DELETE FROM login_throttle
             WHERE last_failure_at <= $1 AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(rule.counts_after)
        .bind(rule.now),
    )
    .await
}

pub async fn clear(tx: &mut Tx<SystemScope>, key: &[u8]) -> Result<()> {
    tx.execute(Query::new("DELETE FROM login_throttle WHERE key_hash = $1").bind(key))
        .await?;
    Ok(())
}
