//! Invitations: a one-time token with which a new user sets their first password.

use crate::{Query, Result, Scope, SystemScope, Tx};
use palisade_domain::{InviteId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Invite {
    pub id: InviteId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct InviteRow {
    id: Uuid,
    tenant_id: Uuid,
    user_id: Uuid,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
}

pub async fn insert<S: Scope>(
    tx: &mut Tx<S>,
    id: InviteId,
    tenant_id: TenantId,
    user: UserId,
    token_hash: &[u8],
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO invites (id, tenant_id, user_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(user)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at),
    )
    .await?;
    Ok(())
}

pub async fn find_by_hash(tx: &mut Tx<SystemScope>, hash: &[u8]) -> Result<Option<Invite>> {
    let row: Option<InviteRow> = tx
        .fetch_optional(
            Query::new(
                "SELECT id, tenant_id, user_id, expires_at, used_at FROM invites WHERE token_hash = $1",
            )
            .bind(hash),
        )
        .await?;
    Ok(row.map(|r| Invite {
        id: r.id.into(),
        tenant_id: r.tenant_id.into(),
        user_id: r.user_id.into(),
        expires_at: r.expires_at,
        used_at: r.used_at,
    }))
}

pub async fn mark_used<S: Scope>(
    tx: &mut Tx<S>,
    id: InviteId,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new("UPDATE invites SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(now),
        )
        .await?;
    Ok(n == 1)
}
