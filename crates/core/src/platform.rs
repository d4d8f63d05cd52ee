//! Platform administration (super admins): tenants, suspension, impersonation.
//!
//! Impersonation is how support sees what a customer sees, without their password:
//! - a token of at most 30 minutes that acts as the tenant's owner, read-only unless asked for
//!   `write`; even with `write` it never manages users (create, edit, delete, restore, unlock,
//!   invite, transfer ownership) or touches a credential (passwords, API keys, webhooks,
//!   connections, other sessions): `Permission::impersonation_may_use` is the whole list,
//!   applied by `Principal::require`;
//! - it names the super admin (`act` claim), every request under it is audited with both
//!   identities in the tenant's own audit chain, so the tenant's admins see it;
//! - it is a real session of the owner (visible in their session list, revocable like any other).

use crate::audit::AuditEntryExt;
use crate::auth::sessions::IssuedTokens;
use crate::auth::{cache, tokens, Principal, RequestMeta};
use crate::error::code;
use crate::tenants::{Tenant, TenantStatus};
use crate::users::User;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{Permission, SessionId, TenantId};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::sessions::Session;
use palisade_store::{sessions, tenants, users, SystemScope};
use uuid::Uuid;

pub const IMPERSONATION_MINUTES: i64 = 30;

pub async fn list_tenants(s: &Services, p: &Principal) -> AppResult<Vec<(Tenant, i64)>> {
    p.require(Permission::PlatformTenantsManage)?;
    let mut tx = s
        .store
        .begin_read(SystemScope::new("platform.tenants"))
        .await?;
    let list = tenants::list(&mut tx).await?;
    let counts = tenants::user_counts(&mut tx).await?;
    Ok(list
        .into_iter()
        .map(|t| {
            let n = counts
                .iter()
                .find(|(id, _)| *id == t.id)
                .map_or(0, |(_, n)| *n);
            (t, n)
        })
        .collect())
}

fn required_reason(reason: &str) -> AppResult<String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 500 {
        return Err(AppError::field(
            "reason",
            "is required (at most 500 characters)",
        ));
    }
    Ok(r.to_owned())
}

/// Suspends a tenant: its sessions and API keys stop working at once; its data is kept.
pub async fn suspend(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TenantId,
    reason: &str,
) -> AppResult<Tenant> {
    p.require(Permission::PlatformTenantsManage)?;
    let reason = required_reason(reason)?;
    set_status(s, p, meta, id, TenantStatus::Suspended, Some(reason)).await
}

pub async fn reactivate(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TenantId,
) -> AppResult<Tenant> {
    p.require(Permission::PlatformTenantsManage)?;
    set_status(s, p, meta, id, TenantStatus::Active, None).await
}

async fn set_status(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TenantId,
    status: TenantStatus,
    reason: Option<String>,
) -> AppResult<Tenant> {
    let mut uow = UnitOfWork::begin_in(s, p, meta, SystemScope::new("platform.tenants"))
        .await?
        .for_tenant(id);
    let now = uow.now();
    let before = tenants::find(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("tenant"))?;
    if before.status == status {
        return Err(AppError::conflict(
            if status == TenantStatus::Suspended {
                code::ALREADY_SUSPENDED
            } else {
                code::NOT_SUSPENDED
            },
            format!("the tenant is already {}", status.as_str()),
        ));
    }
    let after = tenants::set_status(uow.tx(), id, status, reason.as_deref(), now)
        .await?
        .ok_or(AppError::NotFound("tenant"))?;
    cache::record(uow.tx(), ChangeKind::Tenant, id.as_uuid(), now).await?;
    // The workers skip a suspended tenant's queued sends, media downloads and webhook
    // deliveries (see `docs/security.md`, "Suspended tenants' queued work"); on reactivation
    // they resume in order. The pause must not count as failing time of its webhooks.
    if let (TenantStatus::Active, Some(since)) = (status, before.suspended_at) {
        palisade_store::webhooks::shift_failing_since(uow.tx(), id, since, now).await?;
    }
    let action = if status == TenantStatus::Suspended {
        "tenant.suspended"
    } else {
        "tenant.reactivated"
    };
    uow.audit(
        uow.entry(action)
            .target("tenant", id)
            .metadata(serde_json::json!({ "reason": reason }))
            .change(
                Some(serde_json::json!({ "status": before.status.as_str() })),
                Some(serde_json::json!({ "status": after.status.as_str() })),
            ),
    )
    .await?;
    uow.after_commit(move |s| {
        s.auth_cache.forget_tenant(id);
        if status == TenantStatus::Active {
            // Paused media downloads resume at once rather than at the next tick.
            s.media_downloads.notify_one();
        }
    });
    uow.commit().await?;
    Ok(after)
}

pub struct Impersonation {
    pub tokens: IssuedTokens,
    pub tenant: Tenant,
    pub owner: User,
    pub write: bool,
}

/// Starts an impersonation of `tenant`'s owner.
pub async fn impersonate(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    tenant_id: TenantId,
    reason: &str,
    write: bool,
) -> AppResult<Impersonation> {
    p.require(Permission::PlatformImpersonate)?;
    let reason = required_reason(reason)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, SystemScope::new("platform.impersonate"))
        .await?
        .for_tenant(tenant_id);
    let now = uow.now();
    let tenant = tenants::find(uow.tx(), tenant_id)
        .await?
        .ok_or(AppError::NotFound("tenant"))?;
    if tenant.status == TenantStatus::Suspended {
        return Err(AppError::conflict(
            code::TENANT_SUSPENDED,
            "reactivate the tenant before impersonating its owner",
        ));
    }
    let owner = users::owner_of(uow.tx(), tenant_id)
        .await?
        .ok_or(AppError::NotFound("tenant owner"))?;
    let expires_at = now + time::Duration::minutes(IMPERSONATION_MINUTES);
    let session = Session {
        id: SessionId::new(),
        tenant_id: Some(tenant_id),
        user_id: owner.id,
        created_at: now,
        last_seen_at: now,
        expires_at,
        revoked_at: None,
        revoked_reason: None,
        ip: meta.ip.map(|i| i.to_string()),
        user_agent: Some(format!("impersonation by {}", p.email)),
        browser: Some("Impersonation".into()),
        os: None,
    };
    sessions::insert(uow.tx(), &session).await?;
    uow.audit(
        uow.entry("platform.impersonation.started")
            .target("user", owner.id)
            .metadata(serde_json::json!({
                "reason": reason, "write": write, "session_id": session.id, "owner_email": owner.email,
                "expires_at": expires_at.unix_timestamp(),
            })),
    )
    .await?;
    uow.commit().await?;
    let claims = tokens::AccessClaims {
        iss: s.settings.token_issuer.clone(),
        aud: s.settings.token_audience.clone(),
        sub: owner.id.as_uuid(),
        sid: session.id.as_uuid(),
        tid: Some(tenant_id.as_uuid()),
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: expires_at.unix_timestamp(),
        jti: Uuid::now_v7(),
        pwc: false,
        act: Some(tokens::Actor {
            sub: p.user_id.as_uuid(),
            email: p.email.clone(),
            write,
        }),
    };
    let tokens = IssuedTokens {
        access_token: tokens::issue(&s.keys.signing, &claims)?,
        refresh_token: String::new(),
        expires_in: IMPERSONATION_MINUTES * 60,
        session_id: session.id,
        password_expired: false,
        csrf_token: crate::auth::sessions::csrf_token(s, session.id),
        warnings: Vec::new(),
    };
    Ok(Impersonation {
        tokens,
        tenant,
        owner,
        write,
    })
}

/// Records one request made under impersonation (reads included), in the tenant's chain.
pub async fn record_impersonated_request(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    method: &str,
    path: &str,
    status: u16,
) -> AppResult<()> {
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    uow.audit(
        uow.entry("platform.impersonation.request")
            .metadata(serde_json::json!({ "method": method, "path": path, "status": status })),
    )
    .await?;
    uow.commit().await
}
