//! API keys of a tenant. The secret itself is never stored: only its SHA-256 hash, which is
//! what a presented key is looked up by (a unique index: O(1)).

use crate::{Query, Result, Scope, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{ApiKeyId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// Scope names as given (groups unexpanded).
    pub scopes: Vec<palisade_domain::Scope>,
    pub allowed_ips: Option<Vec<String>>,
    pub expires_at: Option<OffsetDateTime>,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub last_used_ip: Option<String>,
    pub total_requests: i64,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<UserId>,
    pub revocation_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    prefix: String,
    scopes: sqlx::types::Json<Vec<String>>,
    allowed_ips: Option<sqlx::types::Json<Vec<String>>>,
    expires_at: Option<OffsetDateTime>,
    created_by: Uuid,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    last_used_ip: Option<String>,
    total_requests: i64,
    revoked_at: Option<OffsetDateTime>,
    revoked_by: Option<Uuid>,
    revocation_reason: Option<String>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            name: r.name,
            prefix: r.prefix,
            // Every stored name was parsed when written; one no longer known grants nothing.
            scopes: r
                .scopes
                .0
                .iter()
                .filter_map(|s| palisade_domain::Scope::parse(s))
                .collect(),
            allowed_ips: r.allowed_ips.map(|j| j.0),
            expires_at: r.expires_at,
            created_by: r.created_by.into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_used_at: r.last_used_at,
            last_used_ip: r.last_used_ip,
            total_requests: r.total_requests,
            revoked_at: r.revoked_at,
            revoked_by: r.revoked_by.map(Into::into),
            revocation_reason: r.revocation_reason,
        }
    }
}

const COLUMNS: &str = "id, tenant_id, name, prefix, scopes, allowed_ips, expires_at, created_by, \
    created_at, updated_at, last_used_at, last_used_ip, total_requests, revoked_at, revoked_by, \
    revocation_reason";

pub async fn insert(tx: &mut Tx<TenantScope>, k: &ApiKey, key_hash: &[u8]) -> Result<()> {
    if tx.scope().tenant_id() != k.tenant_id {
        return Err(StoreError::Integrity(
            "api key outside the scope's tenant".into(),
        ));
    }
    tx.execute(
        Query::new(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, allowed_ips, expires_at,
                created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(k.id)
        .bind(k.tenant_id)
        .bind(k.name.as_str())
        .bind(k.prefix.as_str())
        .bind(key_hash)
        .bind(serde_json::json!(k.scopes))
        .bind(k.allowed_ips.as_ref().map(|ips| serde_json::json!(ips)))
        .bind(k.expires_at)
        .bind(k.created_by)
        .bind(k.created_at),
    )
    .await?;
    Ok(())
}

/// A presented key's record, by the hash of the secret (the key names no tenant).
pub async fn find_by_hash(tx: &mut Tx<SystemScope>, hash: &[u8]) -> Result<Option<ApiKey>> {
    Ok(tx
        .fetch_optional::<ApiKeyRow>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
            ))
            .bind(hash),
        )
        .await?
        .map(Into::into))
}

pub async fn find(tx: &mut Tx<TenantScope>, id: ApiKeyId) -> Result<Option<ApiKey>> {
    select_one(tx, id, "").await
}

/// [`find`], locking the row until the transaction ends, for a read-modify-write ([`update`]
/// writes back name, scopes and revocation together): on PostgreSQL a rename that read the key
/// before a concurrent revocation committed would otherwise write `revoked_at = NULL` back and
/// bring the revoked key to life again. On SQLite write transactions already run one at a time.
pub async fn find_for_update(tx: &mut Tx<TenantScope>, id: ApiKeyId) -> Result<Option<ApiKey>> {
    let lock = tx.row_lock();
    select_one(tx, id, lock).await
}

async fn select_one(tx: &mut Tx<TenantScope>, id: ApiKeyId, lock: &str) -> Result<Option<ApiKey>> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .fetch_optional::<ApiKeyRow>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND tenant_id = $2 {lock}"
            ))
            .bind(id)
            .bind(tenant),
        )
        .await?
        .map(Into::into))
}

pub async fn list(tx: &mut Tx<TenantScope>) -> Result<Vec<ApiKey>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<ApiKeyRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
            ))
            .bind(tenant),
        )
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn update(tx: &mut Tx<TenantScope>, k: &ApiKey) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE api_keys SET name = $3, scopes = $4, updated_at = $5, revoked_at = $6, revoked_by = $7,
                revocation_reason = $8
             WHERE id = $1 AND tenant_id = $2",
        )
        .bind(k.id)
        .bind(tenant)
        .bind(k.name.as_str())
        .bind(serde_json::json!(k.scopes))
        .bind(k.updated_at)
        .bind(k.revoked_at)
        .bind(k.revoked_by)
        .bind(k.revocation_reason.clone()),
    )
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx<TenantScope>, id: ApiKeyId) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .execute(
            Query::new("DELETE FROM api_keys WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant),
        )
        .await?
        > 0)
}

/// Revokes every active key a user created; returns them as revoked.
pub async fn revoke_by_creator<S: Scope>(
    tx: &mut Tx<S>,
    creator: UserId,
    by: UserId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<ApiKey>> {
    let tenant = tx.scope().tenant();
    let rows: Vec<ApiKeyRow> = tx
        .fetch_all(
            Query::new(format!(
                "UPDATE api_keys SET revoked_at = $3, revoked_by = $4, revocation_reason = $5, updated_at = $3
                 WHERE created_by = $1 AND ($2 IS NULL OR tenant_id = $2) AND revoked_at IS NULL
                 RETURNING {COLUMNS}"
            ))
            .bind(creator)
            .bind(tenant)
            .bind(now)
            .bind(by)
            .bind(reason),
        )
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Adds buffered usage to a key (the usage flusher; keys of every tenant).
pub async fn add_usage(
    tx: &mut Tx<SystemScope>,
    id: ApiKeyId,
    requests: i64,
    last_used_at: OffsetDateTime,
    last_ip: Option<&str>,
) -> Result<()> {
    tx.execute(
        Query::new(
            "UPDATE api_keys SET total_requests = total_requests + $2, last_used_at = $3,
                last_used_ip = coalesce($4, last_used_ip)
             WHERE id = $1",
        )
        .bind(id)
        .bind(requests)
        .bind(last_used_at)
        .bind(last_ip),
    )
    .await?;
    Ok(())
}
