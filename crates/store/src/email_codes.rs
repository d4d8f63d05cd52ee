//! One-time codes that verify a user's email address (see migration 0017).
//!
//! Every function binds the user: a code is only ever looked up for the signed-in user, never
//! by its value, so the 6 digits need not be unique.

use crate::one_time_secrets::{self, Table};
use crate::{Query, Result, Scope, Tx};
use palisade_domain::{EmailCodeId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// Why a code was sent: at registration, or on the user's request (which is rate-limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Registration,
    Resend,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Registration => "registration",
            Reason::Resend => "resend",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailCode {
    pub id: EmailCodeId,
    pub code_hash: Vec<u8>,
    pub expires_at: OffsetDateTime,
    pub attempts: i64,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: Uuid,
    code_hash: Vec<u8>,
    expires_at: OffsetDateTime,
    attempts: i64,
}

pub struct NewCode<'a> {
    pub id: EmailCodeId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub code_hash: &'a [u8],
    pub reason: Reason,
    pub expires_at: OffsetDateTime,
}

pub async fn insert<S: Scope>(tx: &mut Tx<S>, c: NewCode<'_>, now: OffsetDateTime) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO email_codes (id, tenant_id, user_id, code_hash, reason, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id)
        .bind(c.tenant_id)
        .bind(c.user_id)
        .bind(c.code_hash)
        .bind(c.reason.as_str())
        .bind(now)
        .bind(c.expires_at),
    )
    .await?;
    Ok(())
}

/// Ends every unused code of the user (a newer code voids the older, a verified address needs
/// none); returns how many.
pub async fn void_all<S: Scope>(tx: &mut Tx<S>, user: UserId, now: OffsetDateTime) -> Result<u64> {
    one_time_secrets::void_all(tx, Table::EmailCodes, user, now).await
}

/// The user's newest unused code, if any (it may be expired or out of tries).
pub async fn current<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<Option<EmailCode>> {
    let tenant = tx.scope().tenant();
    let row: Option<CodeRow> = tx
        .fetch_optional(
            Query::new(
                "SELECT id, code_hash, expires_at, CAST(attempts AS BIGINT) AS attempts
                 FROM email_codes
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND used_at IS NULL
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(user)
            .bind(tenant),
        )
        .await?;
    Ok(row.map(|r| EmailCode {
        id: r.id.into(),
        code_hash: r.code_hash,
        expires_at: r.expires_at,
        attempts: r.attempts,
    }))
}

/// Counts one wrong try against a live code, atomically: false when the code is used or has
/// already had `max` wrong tries (concurrent guesses cannot exceed the budget).
pub async fn record_wrong_try<S: Scope>(tx: &mut Tx<S>, id: EmailCodeId, max: i64) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE email_codes SET attempts = attempts + 1
                 WHERE id = $1 AND used_at IS NULL AND attempts < $2",
            )
            .bind(id)
            .bind(max),
        )
        .await?;
    Ok(n == 1)
}

/// Consumes a live code, atomically: true for exactly one caller.
pub async fn consume<S: Scope>(
    tx: &mut Tx<S>,
    id: EmailCodeId,
    max: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE email_codes SET used_at = $2
                 WHERE id = $1 AND used_at IS NULL AND attempts < $3 AND expires_at > $2",
            )
            .bind(id)
            .bind(now)
            .bind(max),
        )
        .await?;
    Ok(n == 1)
}

/// When the user's codes of `reason` were sent since `since`, newest first.
pub async fn sent_since<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    reason: Reason,
    since: OffsetDateTime,
) -> Result<Vec<OffsetDateTime>> {
    one_time_secrets::sent_since(tx, Table::EmailCodes, user, Some(reason.as_str()), since).await
}

/// Deletes rows issued before `before` (see [`one_time_secrets::prune`]). Returns how many.
pub async fn prune<S: Scope>(tx: &mut Tx<S>, before: OffsetDateTime) -> Result<u64> {
    one_time_secrets::prune(tx, Table::EmailCodes, before).await
}
