//! The signed-in user's own tenant: its name and password policy.

use crate::audit::{self, AuditEntryExt};
use crate::auth::cache;
use crate::auth::{Principal, RequestMeta};
use crate::{AppError, AppResult, Services};
use palisade_domain::{PasswordPolicyPreset, Permission, TenantName};
use palisade_store::audit as audit_log;
use palisade_store::auth_changes::ChangeKind;
use palisade_store::tenants::{self, Tenant};

pub async fn get(s: &Services, p: &Principal) -> AppResult<Tenant> {
    p.require(Permission::TenantRead)?;
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin_read(scope).await?;
    tenants::find(&mut tx, scope.tenant_id())
        .await?
        .ok_or(AppError::NotFound("tenant"))
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    name: Option<&str>,
    password_policy: Option<&str>,
) -> AppResult<Tenant> {
    p.require(Permission::TenantManage)?;
    let scope = p.tenant_scope()?;
    let now = s.now();
    let mut errors = Vec::new();
    let name = name
        .map(|n| TenantName::parse("name", n))
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    let policy = match password_policy.map(PasswordPolicyPreset::parse) {
        Some(None) => {
            errors.push(palisade_domain::FieldError::new(
                "password_policy",
                "must be one of: modern, compliance",
            ));
            None
        }
        Some(Some(p)) => Some(p),
        None => None,
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut tx = s.store.begin(scope).await?;
    tenants::lock(&mut tx).await?;
    let before = tenants::find(&mut tx, scope.tenant_id())
        .await?
        .ok_or(AppError::NotFound("tenant"))?;
    let after = tenants::update_settings(
        &mut tx,
        name.as_ref().map_or(before.name.as_str(), |n| n.as_str()),
        policy.unwrap_or(before.password_policy),
        now,
    )
    .await?;
    cache::record(
        &mut tx,
        ChangeKind::Tenant,
        scope.tenant_id().as_uuid(),
        now,
    )
    .await?;
    let json = |t: &Tenant| serde_json::json!({ "name": t.name, "password_policy": t.password_policy.as_str() });
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "tenant.updated")
            .target("tenant", scope.tenant_id())
            .change(Some(json(&before)), Some(json(&after))),
        now,
    )
    .await?;
    tx.commit().await?;
    s.auth_cache.forget_tenant(scope.tenant_id());
    Ok(after)
}
