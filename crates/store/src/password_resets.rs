//! Password reset tokens (see migration 0017): looked up by hash before the user is known, so
//! [`find_by_hash`] runs under the system scope, like an invitation's.

use crate::one_time_secrets::{self, Table};
use crate::{Query, Result, Scope, SystemScope, Tx};
use palisade_domain::{PasswordResetId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub id: PasswordResetId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct ResetRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
}

pub async fn insert<S: Scope>(
    tx: &mut Tx<S>,
    r: &PasswordReset,
    token_hash: &[u8],
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO password_resets (id, tenant_id, user_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id)
        .bind(r.tenant_id)
        .bind(r.user_id)
        .bind(token_hash)
        .bind(now)
        .bind(r.expires_at),
    )
    .await?;
    Ok(())
}

pub async fn find_by_hash(tx: &mut Tx<SystemScope>, hash: &[u8]) -> Result<Option<PasswordReset>> {
    let row: Option<ResetRow> = tx
        .fetch_optional(
            Query::new(
                "SELECT id, tenant_id, user_id, expires_at, used_at
                 FROM password_resets WHERE token_hash = $1",
            )
            .bind(hash),
        )
        .await?;
    Ok(row.map(|r| PasswordReset {
        id: r.id.into(),
        tenant_id: r.tenant_id.map(Into::into),
        user_id: r.user_id.into(),
        expires_at: r.expires_at,
        used_at: r.used_at,
    }))
}

/// Ends every unused token of the user (a newer one voids the older; a reset ends them all).
pub async fn void_all<S: Scope>(tx: &mut Tx<S>, user: UserId, now: OffsetDateTime) -> Result<u64> {
    one_time_secrets::void_all(tx, Table::PasswordResets, user, now).await
}

/// Spends a live token, atomically: true for exactly one caller.
pub async fn consume<S: Scope>(
    tx: &mut Tx<S>,
    id: PasswordResetId,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new(
                "UPDATE password_resets SET used_at = $2
                 WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(id)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// When the user's tokens were issued since `since`, newest first.
pub async fn issued_since<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    since: OffsetDateTime,
) -> Result<Vec<OffsetDateTime>> {
    one_time_secrets::sent_since(tx, Table::PasswordResets, user, None, since).await
}

/// Deletes rows issued before `before` (see [`one_time_secrets::prune`]). Returns how many.
pub async fn prune<S: Scope>(tx: &mut Tx<S>, before: OffsetDateTime) -> Result<u64> {
    one_time_secrets::prune(tx, Table::PasswordResets, before).await
}
