//! Users: a tenant's admins and agents, and the platform's super admins (no tenant).
//!
//! Functions generic over the scope filter by the scope's tenant when it has one, so the same
//! query serves a tenant admin (confined to their tenant) and a super admin (system scope).

use crate::{Query, Result, Scope, StoreError, SystemScope, Tx};
use palisade_domain::{Role, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_owner: bool,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
    pub deleted_by: Option<UserId>,
    /// When the user proved they read mail at `email` (a code, an invitation, a reset link).
    pub email_verified_at: Option<OffsetDateTime>,
}

impl User {
    /// A platform super admin (no tenant), as the CLI creates one.
    pub fn new_super_admin(
        email: &str,
        name: &str,
        password_hash: String,
        now: OffsetDateTime,
    ) -> User {
        User {
            id: UserId::new(),
            tenant_id: None,
            email: email.to_owned(),
            name: name.to_owned(),
            role: Role::SuperAdmin,
            is_owner: false,
            password_hash: Some(password_hash),
            password_changed_at: Some(now),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            deleted_by: None,
            // The operator who creates a super admin vouches for the address.
            email_verified_at: Some(now),
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    email: String,
    name: String,
    role: String,
    is_owner: bool,
    password_hash: Option<String>,
    password_changed_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    deleted_at: Option<OffsetDateTime>,
    deleted_by: Option<Uuid>,
    email_verified_at: Option<OffsetDateTime>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self> {
        let role = Role::parse(&r.role)
            .ok_or_else(|| StoreError::Integrity(format!("unknown role {}", r.role)))?;
        Ok(User {
            id: r.id.into(),
            tenant_id: r.tenant_id.map(Into::into),
            email: r.email,
            name: r.name,
            role,
            is_owner: r.is_owner,
            password_hash: r.password_hash,
            password_changed_at: r.password_changed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
            deleted_by: r.deleted_by.map(Into::into),
            email_verified_at: r.email_verified_at,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, email, name, role, is_owner, password_hash, \
    password_changed_at, created_at, updated_at, deleted_at, deleted_by, email_verified_at";

fn one(row: Option<UserRow>) -> Result<Option<User>> {
    row.map(User::try_from).transpose()
}

/// Inserts a user. Under a tenant scope the user must belong to that tenant (enforced by
/// row-level security on PostgreSQL and by this check on SQLite).
pub async fn insert<S: Scope>(tx: &mut Tx<S>, u: &User) -> Result<()> {
    if let Some(scope_tenant) = tx.scope().tenant() {
        if u.tenant_id != Some(scope_tenant) {
            return Err(StoreError::Integrity(
                "user outside the scope's tenant".into(),
            ));
        }
    }
    tx.execute(
        Query::new(format!(
            "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(u.id)
        .bind(u.tenant_id)
        .bind(u.email.as_str())
        .bind(u.name.as_str())
        .bind(u.role.as_str())
        .bind(u.is_owner)
        .bind(u.password_hash.clone())
        .bind(u.password_changed_at)
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.deleted_at)
        .bind(u.deleted_by)
        .bind(u.email_verified_at),
    )
    .await?;
    Ok(())
}

/// The login lookup: emails are unique across the platform.
pub async fn find_by_email(tx: &mut Tx<SystemScope>, email: &str) -> Result<Option<User>> {
    one(tx
        .fetch_optional(
            Query::new(format!("SELECT {COLUMNS} FROM users WHERE email = $1")).bind(email),
        )
        .await?)
}

/// [`find`], locking the row until the transaction ends, for a read-modify-write ([`update`]
/// writes back name, role, ownership and deletion together). On PostgreSQL (READ COMMITTED) a
/// rename that read the user before a concurrent deletion, demotion or ownership transfer
/// committed would otherwise write the old state back: a deleted user undeleted, a tenant left
/// without an owner. On SQLite write transactions already run one at a time.
pub async fn find_for_update<S: Scope>(tx: &mut Tx<S>, id: UserId) -> Result<Option<User>> {
    let lock = tx.row_lock();
    select_one(tx, id, lock).await
}

/// A user by id (deleted ones included), within the scope.
pub async fn find<S: Scope>(tx: &mut Tx<S>, id: UserId) -> Result<Option<User>> {
    select_one(tx, id, "").await
}

async fn select_one<S: Scope>(tx: &mut Tx<S>, id: UserId, lock: &str) -> Result<Option<User>> {
    let tenant = tx.scope().tenant();
    one(tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM users WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) {lock}"
            ))
            .bind(id)
            .bind(tenant),
        )
        .await?)
}

/// Users within the scope, optionally narrowed to one tenant, oldest first.
pub async fn list<S: Scope>(
    tx: &mut Tx<S>,
    tenant_filter: Option<TenantId>,
    include_deleted: bool,
) -> Result<Vec<User>> {
    let tenant = tx.scope().tenant();
    let rows: Vec<UserRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM users
                 WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR tenant_id = $2)
                   AND ($3 OR deleted_at IS NULL)
                 ORDER BY created_at, id"
            ))
            .bind(tenant)
            .bind(tenant_filter)
            .bind(include_deleted),
        )
        .await?;
    rows.into_iter().map(User::try_from).collect()
}

/// Writes name, role, ownership and deletion state back.
pub async fn update<S: Scope>(tx: &mut Tx<S>, u: &User) -> Result<()> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "UPDATE users SET name = $3, role = $4, is_owner = $5, updated_at = $6,
                    deleted_at = $7, deleted_by = $8
             WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(u.id)
        .bind(tenant)
        .bind(u.name.as_str())
        .bind(u.role.as_str())
        .bind(u.is_owner)
        .bind(u.updated_at)
        .bind(u.deleted_at)
        .bind(u.deleted_by),
    )
    .await?;
    Ok(())
}

pub async fn set_password<S: Scope>(
    tx: &mut Tx<S>,
    id: UserId,
    hash: &str,
    changed_at: OffsetDateTime,
) -> Result<()> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "UPDATE users SET password_hash = $3, password_changed_at = $4, updated_at = $4
             WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(id)
        .bind(tenant)
        .bind(hash)
        .bind(changed_at),
    )
    .await?;
    Ok(())
}

/// Sets a new password only if the stored hash is still `expected` (the one the caller verified
/// the current password against before opening this transaction); false if it changed since.
pub async fn replace_password<S: Scope>(
    tx: &mut Tx<S>,
    id: UserId,
    expected: &str,
    hash: &str,
    changed_at: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE users SET password_hash = $3, password_changed_at = $4, updated_at = $4
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND password_hash = $5",
            )
            .bind(id)
            .bind(tenant)
            .bind(hash)
            .bind(changed_at)
            .bind(expected),
        )
        .await?;
    Ok(n == 1)
}

/// Marks the user's address as verified at `at`, unless it already is; true if this call did.
pub async fn mark_email_verified<S: Scope>(
    tx: &mut Tx<S>,
    id: UserId,
    at: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE users SET email_verified_at = $3, updated_at = $3
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND email_verified_at IS NULL",
            )
            .bind(id)
            .bind(tenant)
            .bind(at),
        )
        .await?;
    Ok(n == 1)
}

/// Replaces a hash with an upgraded one (same password, stronger parameters).
pub async fn upgrade_hash(tx: &mut Tx<SystemScope>, id: UserId, hash: &str) -> Result<()> {
    tx.execute(
        Query::new("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(hash),
    )
    .await?;
    Ok(())
}

/// The owner of a tenant (system work: impersonation).
pub async fn owner_of(tx: &mut Tx<SystemScope>, tenant: TenantId) -> Result<Option<User>> {
    one(tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND is_owner = TRUE AND deleted_at IS NULL"
            ))
            .bind(tenant),
        )
        .await?)
}
