//! Tenants: the businesses hosted on the platform.

use crate::{Backend, Query, Result, Scope, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::{PasswordPolicyPreset, TenantId, TwoFactorRequirement};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub status: TenantStatus,
    pub password_policy: PasswordPolicyPreset,
    /// Who must sign in with a second factor.
    pub require_2fa: TwoFactorRequirement,
    pub suspended_at: Option<OffsetDateTime>,
    pub suspended_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: Uuid,
    name: String,
    status: String,
    password_policy: String,
    require_2fa: String,
    suspended_at: Option<OffsetDateTime>,
    suspended_reason: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<Self> {
        let status = match r.status.as_str() {
            "active" => TenantStatus::Active,
            "suspended" => TenantStatus::Suspended,
            other => {
                return Err(StoreError::Integrity(format!(
                    "unknown tenant status {other}"
                )))
            }
        };
        let password_policy = PasswordPolicyPreset::parse(&r.password_policy).ok_or_else(|| {
            StoreError::Integrity(format!("unknown password policy {}", r.password_policy))
        })?;
        // An unknown stored value reads as the strictest requirement rather than failing.
        let require_2fa =
            TwoFactorRequirement::parse(&r.require_2fa).unwrap_or(TwoFactorRequirement::Everyone);
        Ok(Tenant {
            id: r.id.into(),
            name: r.name,
            status,
            password_policy,
            require_2fa,
            suspended_at: r.suspended_at,
            suspended_reason: r.suspended_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, name, status, password_policy, require_2fa, suspended_at, \
     suspended_reason, created_at, updated_at";

/// Creates the scope's own tenant (registration).
pub async fn insert(tx: &mut Tx<TenantScope>, name: &str, now: OffsetDateTime) -> Result<Tenant> {
    let id = tx.scope().tenant_id();
    let row: TenantRow = tx
        .fetch_one(
            Query::new(format!(
                "INSERT INTO tenants (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(name)
            .bind(now),
        )
        .await?;
    row.try_into()
}

/// The scope's tenant, or any tenant under a system scope.
/// Serialises this transaction with every other one that locks the same tenant, until it ends:
/// the way to keep a per-tenant limit checked by counting ("at most N webhooks") under
/// concurrent requests, and to read-modify-write the tenant's settings ([`update_settings`]
/// writes name and password policy together, so without it a rename would write back a policy
/// it read before a concurrent policy change committed). On PostgreSQL under READ COMMITTED a count followed by an insert (even
/// one conditional `INSERT … SELECT … WHERE (SELECT count(*) …) < max`) lets every concurrent
/// request see the same count, so the tenant's row is locked `FOR NO KEY UPDATE` first: a
/// second locker waits until the first commits and then counts what it inserted. `NO KEY`
/// leaves the foreign-key checks of the tenant's other inserts (`FOR KEY SHARE`) unblocked. On
/// SQLite every write transaction already runs on the single writer connection, one at a time.
pub async fn lock(tx: &mut Tx<TenantScope>) -> Result<()> {
    if tx.backend() == Backend::Postgres {
        let tenant = tx.scope().tenant_id();
        tx.execute(
            Query::new("SELECT id FROM tenants WHERE id = $1 FOR NO KEY UPDATE").bind(tenant),
        )
        .await?;
    }
    Ok(())
}

pub async fn find<S: Scope>(tx: &mut Tx<S>, id: TenantId) -> Result<Option<Tenant>> {
    let tenant = tx.scope().tenant();
    let row: Option<TenantRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM tenants WHERE id = $1 AND ($2 IS NULL OR id = $2)"
            ))
            .bind(id)
            .bind(tenant),
        )
        .await?;
    row.map(Tenant::try_from).transpose()
}

pub async fn list(tx: &mut Tx<SystemScope>) -> Result<Vec<Tenant>> {
    let rows: Vec<TenantRow> = tx
        .fetch_all(Query::new(format!(
            "SELECT {COLUMNS} FROM tenants ORDER BY id"
        )))
        .await?;
    rows.into_iter().map(Tenant::try_from).collect()
}

pub async fn update_settings(
    tx: &mut Tx<TenantScope>,
    name: &str,
    policy: PasswordPolicyPreset,
    now: OffsetDateTime,
) -> Result<Tenant> {
    let id = tx.scope().tenant_id();
    let row: TenantRow = tx
        .fetch_one(
            Query::new(format!(
                "UPDATE tenants SET name = $2, password_policy = $3, updated_at = $4 WHERE id = $1
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(name)
            .bind(policy.as_str())
            .bind(now),
        )
        .await?;
    row.try_into()
}

/// Sets who in the scope's tenant must sign in with a second factor.
pub async fn set_require_2fa(
    tx: &mut Tx<TenantScope>,
    requirement: TwoFactorRequirement,
    now: OffsetDateTime,
) -> Result<Tenant> {
    let id = tx.scope().tenant_id();
    let row: TenantRow = tx
        .fetch_one(
            Query::new(format!(
                "UPDATE tenants SET require_2fa = $2, updated_at = $3 WHERE id = $1
                 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(requirement.as_str())
            .bind(now),
        )
        .await?;
    row.try_into()
}

/// Suspends or reactivates a tenant (platform administration).
pub async fn set_status(
    tx: &mut Tx<SystemScope>,
    id: TenantId,
    status: TenantStatus,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<Tenant>> {
    let suspended_at = (status == TenantStatus::Suspended).then_some(now);
    let row: Option<TenantRow> = tx
        .fetch_optional(
            Query::new(format!(
                "UPDATE tenants SET status = $2, suspended_at = $3, suspended_reason = $4, updated_at = $5
                 WHERE id = $1 RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(status.as_str())
            .bind(suspended_at)
            .bind(reason)
            .bind(now),
        )
        .await?;
    row.map(Tenant::try_from).transpose()
}

/// Active (not deleted) users per tenant, for the platform's tenant list.
pub async fn user_counts(tx: &mut Tx<SystemScope>) -> Result<Vec<(TenantId, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: Uuid,
        n: i64,
    }
    let rows: Vec<Row> = tx
        .fetch_all(Query::new(
            "SELECT tenant_id, COUNT(*) AS n FROM users WHERE tenant_id IS NOT NULL AND deleted_at IS NULL GROUP BY tenant_id",
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.tenant_id.into(), r.n))
        .collect())
}
