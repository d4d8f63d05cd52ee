//! Per-login-name failure counters and temporary locks (see `core::auth::lockout`).

use crate::{Query, Result, SystemScope, Tx};
use time::OffsetDateTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleState {
    pub failures: i64,
    pub last_failure_at: OffsetDateTime,
    pub locked_until: Option<OffsetDateTime>,
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

pub async fn put(tx: &mut Tx<SystemScope>, key: &[u8], s: &ThrottleState) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO login_throttle (key_hash, failures, last_failure_at, locked_until)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (key_hash) DO UPDATE SET failures = excluded.failures,
                 last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until",
        )
        .bind(key)
        .bind(s.failures)
        .bind(s.last_failure_at)
        .bind(s.locked_until),
    )
    .await?;
    Ok(())
}

pub async fn clear(tx: &mut Tx<SystemScope>, key: &[u8]) -> Result<()> {
    tx.execute(Query::new("DELETE FROM login_throttle WHERE key_hash = $1").bind(key))
        .await?;
    Ok(())
}
