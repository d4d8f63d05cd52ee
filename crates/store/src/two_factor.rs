//! Second factors: a user's TOTP authenticator, their recovery codes, and the sign-in
//! challenges that wait for a second factor after a correct password.
//!
//! Every statement binds the scope's tenant (`$n IS NULL OR tenant_id = $n`: a super admin's
//! rows have no tenant and are reached only under a system scope). Single-use values are spent
//! by one conditional UPDATE whose affected-row count says who won.

use crate::{Query, Result, Scope, Tx};
use palisade_domain::{TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// A user's TOTP authenticator.
#[derive(Debug, Clone)]
pub struct TotpCredential {
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    /// The secret, encrypted with the key ring (aad: the user's id).
    pub secret: String,
    /// Unset until the user proved the authenticator with a code.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The last accepted 30-second step; a code of this step or an earlier one is a replay.
    pub last_step: Option<i64>,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    user_id: Uuid,
    tenant_id: Option<Uuid>,
    secret: String,
    confirmed_at: Option<OffsetDateTime>,
    last_step: Option<i64>,
    created_at: OffsetDateTime,
}

impl From<TotpRow> for TotpCredential {
    fn from(r: TotpRow) -> Self {
        TotpCredential {
            user_id: r.user_id.into(),
            tenant_id: r.tenant_id.map(Into::into),
            secret: r.secret,
            confirmed_at: r.confirmed_at,
            last_step: r.last_step,
            created_at: r.created_at,
        }
    }
}

pub async fn find_totp<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<Option<TotpCredential>> {
    let tenant = tx.scope().tenant();
    let row: Option<TotpRow> = tx
        .fetch_optional(
            Query::new(
                "SELECT user_id, tenant_id, secret, confirmed_at, last_step, created_at
                 FROM totp_credentials WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(user)
            .bind(tenant),
        )
        .await?;
    Ok(row.map(Into::into))
}

/// Stores a new, unconfirmed secret for `user`, replacing an unconfirmed one. Returns false
/// (and changes nothing) when the user already has a confirmed authenticator.
pub async fn put_pending_totp<S: Scope>(
    tx: &mut Tx<S>,
    tenant: Option<TenantId>,
    user: UserId,
    secret: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "INSERT INTO totp_credentials (user_id, tenant_id, secret, created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) DO UPDATE
                 SET secret = excluded.secret, last_step = NULL, created_at = excluded.created_at
                 WHERE totp_credentials.confirmed_at IS NULL",
            )
            .bind(user)
            .bind(tenant)
            .bind(secret)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// Confirms the pending authenticator with the step of the code that proved it. False when it
/// was confirmed (or removed) meanwhile, or the step is not newer than the last accepted one.
pub async fn confirm_totp<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    step: i64,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE totp_credentials SET confirmed_at = $3, last_step = $4
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
                   AND confirmed_at IS NULL AND (last_step IS NULL OR last_step < $4)",
            )
            .bind(user)
            .bind(tenant)
            .bind(now)
            .bind(step),
        )
        .await?;
    Ok(n == 1)
}

/// Accepts `step` for the user's confirmed authenticator: true only if it is newer than the
/// last accepted step (one statement, so two requests with the same code cannot both win).
pub async fn accept_step<S: Scope>(tx: &mut Tx<S>, user: UserId, step: i64) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE totp_credentials SET last_step = $3
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
                   AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $3)",
            )
            .bind(user)
            .bind(tenant)
            .bind(step),
        )
        .await?;
    Ok(n == 1)
}

/// Removes the user's authenticator (confirmed or not); true if there was one.
pub async fn delete_totp<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "DELETE FROM totp_credentials WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(user)
            .bind(tenant),
        )
        .await?;
    Ok(n > 0)
}

/// An unused recovery code: its id and MAC.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecoveryCode {
    pub id: Uuid,
    pub code_hash: Vec<u8>,
}

/// Replaces every recovery code of the user with `hashes` (the old ones are void).
pub async fn replace_recovery_codes<S: Scope>(
    tx: &mut Tx<S>,
    tenant: Option<TenantId>,
    user: UserId,
    hashes: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<()> {
    delete_recovery_codes(tx, user).await?;
    for h in hashes {
        tx.execute(
            Query::new(
                "INSERT INTO recovery_codes (id, tenant_id, user_id, code_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant)
            .bind(user)
            .bind(h.clone())
            .bind(now),
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_recovery_codes<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<()> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "DELETE FROM recovery_codes WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(user)
        .bind(tenant),
    )
    .await?;
    Ok(())
}

/// The user's unused recovery codes (at most ten).
pub async fn unused_recovery_codes<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
) -> Result<Vec<RecoveryCode>> {
    let tenant = tx.scope().tenant();
    tx.fetch_all(
        Query::new(
            "SELECT id, code_hash FROM recovery_codes
             WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND used_at IS NULL
             ORDER BY id",
        )
        .bind(user)
        .bind(tenant),
    )
    .await
}

/// Spends a recovery code; false when another request spent it first.
pub async fn use_recovery_code<S: Scope>(
    tx: &mut Tx<S>,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE recovery_codes SET used_at = $3
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND used_at IS NULL",
            )
            .bind(id)
            .bind(tenant)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// A sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct MfaChallenge {
    pub id: Uuid,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub failed_attempts: i64,
    pub used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct ChallengeRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    failed_attempts: i64,
    used_at: Option<OffsetDateTime>,
}

impl From<ChallengeRow> for MfaChallenge {
    fn from(r: ChallengeRow) -> Self {
        MfaChallenge {
            id: r.id,
            tenant_id: r.tenant_id.map(Into::into),
            user_id: r.user_id.into(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            failed_attempts: r.failed_attempts,
            used_at: r.used_at,
        }
    }
}

/// Stores a challenge for `user` and drops the user's spent or expired ones.
pub async fn insert_challenge<S: Scope>(
    tx: &mut Tx<S>,
    c: &MfaChallenge,
    token_hash: &[u8],
) -> Result<()> {
    tx.execute(
        Query::new(
            "DELETE FROM mfa_challenges
             WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
               AND (used_at IS NOT NULL OR expires_at <= $3)",
        )
        .bind(c.user_id)
        .bind(c.tenant_id)
        .bind(c.created_at),
    )
    .await?;
    tx.execute(
        Query::new(
            "INSERT INTO mfa_challenges
                 (id, tenant_id, user_id, token_hash, created_at, expires_at, failed_attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.id)
        .bind(c.tenant_id)
        .bind(c.user_id)
        .bind(token_hash)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.failed_attempts),
    )
    .await?;
    Ok(())
}

/// The challenge behind a token (a system-scope lookup: the token names the tenant).
pub async fn find_challenge<S: Scope>(
    tx: &mut Tx<S>,
    token_hash: &[u8],
) -> Result<Option<MfaChallenge>> {
    let tenant = tx.scope().tenant();
    let row: Option<ChallengeRow> = tx
        .fetch_optional(
            Query::new(
                "SELECT id, tenant_id, user_id, created_at, expires_at,
                        CAST(failed_attempts AS BIGINT) AS failed_attempts, used_at
                 FROM mfa_challenges WHERE token_hash = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(token_hash)
            .bind(tenant),
        )
        .await?;
    Ok(row.map(Into::into))
}

/// Counts a wrong code against a live challenge; returns the failures so far, or None when the
/// challenge is already spent.
pub async fn record_challenge_failure<S: Scope>(tx: &mut Tx<S>, id: Uuid) -> Result<Option<i64>> {
    let tenant = tx.scope().tenant();
    #[derive(sqlx::FromRow)]
    struct Row {
        failed_attempts: i64,
    }
    let row: Option<Row> = tx
        .fetch_optional(
            Query::new(
                "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND used_at IS NULL
                 RETURNING CAST(failed_attempts AS BIGINT) AS failed_attempts",
            )
            .bind(id)
            .bind(tenant),
        )
        .await?;
    Ok(row.map(|r| r.failed_attempts))
}

/// Spends a challenge that is unused, unexpired and under `max_failures` wrong codes; false
/// when another request spent it first (or it died meanwhile).
pub async fn consume_challenge<S: Scope>(
    tx: &mut Tx<S>,
    id: Uuid,
    now: OffsetDateTime,
    max_failures: i64,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE mfa_challenges SET used_at = $3
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND used_at IS NULL
                   AND expires_at > $3 AND failed_attempts < $4",
            )
            .bind(id)
            .bind(tenant)
            .bind(now)
            .bind(max_failures),
        )
        .await?;
    Ok(n == 1)
}
