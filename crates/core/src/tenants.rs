//! The signed-in user's own tenant: its name and password policy.

use crate::audit::AuditEntryExt;
use crate::auth::cache;
use crate::auth::{Principal, RequestMeta};
use crate::error::FieldErrors;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    rfc3339, PasswordPolicyPreset, Permission, TenantName, TwoFactorRequirement,
};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::tenants;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use palisade_store::tenants::{Tenant, TenantStatus};

// A tenant as its users see it (the REST answer; platform administration adds the suspension
// and the user count around it). Tenants raise no event. A plain comment: a doc comment would
// become the schema's description, which it never had.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TenantResponse)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub password_policy: PasswordPolicyPreset,
    /// Who must sign in with a second factor: `off`, `admins` or `everyone`.
    pub require_2fa: TwoFactorRequirement,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> Self {
        TenantView {
            id: t.id.as_uuid(),
            name: t.name.clone(),
            status: t.status.as_str().to_owned(),
            password_policy: t.password_policy,
            require_2fa: t.require_2fa,
            created_at: rfc3339(t.created_at),
        }
    }
}

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
    require_2fa: Option<&str>,
) -> AppResult<Tenant> {
    p.require(Permission::TenantManage)?;
    let scope = p.tenant_scope()?;
    let mut errors = FieldErrors::new();
    let name = errors.check_some(name, |n| TenantName::parse("name", n));
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
    if require_2fa.is_some() && p.impersonator.is_some() {
        // Support may fix data, never weaken (or impose) how the tenant's people sign in.
        return Err(AppError::Forbidden {
            code: crate::error::code::IMPERSONATION_FORBIDDEN,
            message: "an impersonation cannot change the tenant's two-factor requirement".into(),
        });
    }
    let require_2fa = match require_2fa.map(TwoFactorRequirement::parse) {
        Some(None) => {
            errors.push(palisade_domain::FieldError::new(
                "require_2fa",
                "must be one of: off, admins, everyone",
            ));
            None
        }
        Some(Some(r)) => Some(r),
        None => None,
    };
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    tenants::lock(uow.tx()).await?;
    let before = tenants::find(uow.tx(), scope.tenant_id())
        .await?
        .ok_or(AppError::NotFound("tenant"))?;
    let mut after = tenants::update_settings(
        uow.tx(),
        name.as_ref().map_or(before.name.as_str(), |n| n.as_str()),
        policy.unwrap_or(before.password_policy),
        now,
    )
    .await?;
    if let Some(r) = require_2fa.filter(|r| *r != before.require_2fa) {
        after = tenants::set_require_2fa(uow.tx(), r, now).await?;
    }
    cache::record(
        uow.tx(),
        ChangeKind::Tenant,
        scope.tenant_id().as_uuid(),
        now,
    )
    .await?;
    let json = |t: &Tenant| {
        serde_json::json!({
            "name": t.name,
            "password_policy": t.password_policy.as_str(),
            "require_2fa": t.require_2fa.as_str(),
        })
    };
    uow.audit(
        uow.entry("tenant.updated")
            .target("tenant", scope.tenant_id())
            .change(Some(json(&before)), Some(json(&after))),
    )
    .await?;
    let tenant = scope.tenant_id();
    uow.after_commit(move |s| s.auth_cache.forget_tenant(tenant));
    uow.commit().await?;
    Ok(after)
}
