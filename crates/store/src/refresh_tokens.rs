//! Refresh tokens, stored only as SHA-256 hashes. Each session's tokens form one rotation family.

use crate::{Query, Result, Scope, SystemScope, Tx};
use palisade_domain::{RefreshTokenId, SessionId, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub id: RefreshTokenId,
    pub tenant_id: Option<TenantId>,
    pub session_id: SessionId,
    pub created_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct RefreshTokenRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    session_id: Uuid,
    created_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
}

pub async fn insert<S: Scope>(
    tx: &mut Tx<S>,
    tenant_id: Option<TenantId>,
    session_id: SessionId,
    token_hash: &[u8],
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO refresh_tokens (id, tenant_id, session_id, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(RefreshTokenId::new())
        .bind(tenant_id)
        .bind(session_id)
        .bind(token_hash)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// Finds a token by its hash. The refresh request carries no tenant, so this is system work;
/// the hash match is what authenticates it.
pub async fn find_by_hash(tx: &mut Tx<SystemScope>, hash: &[u8]) -> Result<Option<RefreshToken>> {
    let row: Option<RefreshTokenRow> = tx
        .fetch_optional(
            Query::new(
                "SELECT id, tenant_id, session_id, created_at, used_at FROM refresh_tokens
                 WHERE token_hash = $1",
            )
            .bind(hash),
        )
        .await?;
    Ok(row.map(|r| RefreshToken {
        id: r.id.into(),
        tenant_id: r.tenant_id.map(Into::into),
        session_id: r.session_id.into(),
        created_at: r.created_at,
        used_at: r.used_at,
    }))
}

/// Marks a token used; returns false when another request used it first (a concurrent replay).
pub async fn mark_used<S: Scope>(
    tx: &mut Tx<S>,
    id: RefreshTokenId,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = tx
        .execute(
            Query::new("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(now),
        )
        .await?;
    Ok(n == 1)
}
