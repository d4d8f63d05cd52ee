//! Registration: a new tenant and its owner, atomically.

use super::passwords::check_policy;
use super::sessions::{self, hash_error, IssuedTokens};
use super::RequestMeta;
use crate::audit::AuditEntryExt;
use crate::error::FieldErrors;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    EmailAddress, PasswordContext, PasswordPolicyPreset, PersonName, Role, TenantId, TenantName,
    UserId,
};
use palisade_store::users::User;
use palisade_store::{tenants, TenantScope};

pub struct Registration {
    pub tenant: tenants::Tenant,
    pub user: User,
    pub tokens: IssuedTokens,
}

/// Creates a tenant with its first admin, who owns it, and signs them in. Either everything is
/// stored or nothing is: the inserts share one transaction.
pub async fn register(
    s: &Services,
    meta: &RequestMeta,
    tenant_name: &str,
    name: &str,
    email: &str,
    password: &str,
) -> AppResult<Registration> {
    let mut errors = FieldErrors::new();
    let tenant_name = errors.check(TenantName::parse("tenant_name", tenant_name));
    let name = errors.check(PersonName::parse("name", name));
    let email = errors.check(EmailAddress::parse("email", email));
    let (Some(tenant_name), Some(name), Some(email)) = (tenant_name, name, email) else {
        return Err(AppError::validation(errors));
    };
    let ctx = PasswordContext {
        email: email.as_str(),
        name: name.as_str(),
        tenant_name: tenant_name.as_str(),
    };
    let warnings = check_policy(
        s,
        meta,
        None,
        &PasswordPolicyPreset::Modern.policy(),
        "password",
        password,
        &ctx,
    )
    .await?;
    let hash = s.hasher.hash(password).await.map_err(hash_error)?;

    // The scope of a tenant that this transaction creates: its id was just generated here.
    let tenant_id = TenantId::new();
    let scope = TenantScope::from_verified_credential(tenant_id);
    let mut uow = UnitOfWork::anonymous(s, meta, scope).await?;
    let now = uow.now();
    let tenant = tenants::insert(uow.tx(), tenant_name.as_str(), now).await?;
    let user = User {
        id: UserId::new(),
        tenant_id: Some(tenant_id),
        email: email.as_str().to_owned(),
        name: name.as_str().to_owned(),
        role: Role::Admin,
        is_owner: true,
        password_hash: Some(hash),
        password_changed_at: Some(now),
        created_at: now,
        updated_at: now,
        deleted_at: None,
        deleted_by: None,
        email_verified_at: None,
    };
    crate::users::insert_new(
        uow.tx(),
        &user,
        "an account with this email already exists; sign in instead",
    )
    .await?;
    // Every tenant starts with the default sales pipeline.
    crate::deals::create_default(uow.tx(), tenant_id, now).await?;
    let (session, refresh) = sessions::start(&mut uow, &user).await?;
    super::email_verification::send_code(
        &mut uow,
        &user,
        palisade_store::email_codes::Reason::Registration,
    )
    .await?;
    let e = uow
        .entry("tenant.registered")
        .target("tenant", tenant_id)
        .change(
            None,
            Some(serde_json::json!({
                "tenant": { "id": tenant_id, "name": tenant.name },
                "owner": sessions::user_audit_json(&user),
            })),
        );
    uow.audit(sessions::as_user(e, &user)).await?;
    uow.commit().await?;
    let mut tokens = sessions::issue(s, &user, &session, refresh, false, now)?;
    tokens.warnings = warnings;
    Ok(Registration {
        tenant,
        user,
        tokens,
    })
}
