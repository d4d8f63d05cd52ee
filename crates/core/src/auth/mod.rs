//! Authentication: who is asking, established from a verified credential.
//!
//! [`authenticate`] turns an access token into a [`Principal`]; that is the only place a
//! [`TenantScope`] is built for a request. Service functions then call
//! [`Principal::require`] on their first line.

pub mod api_keys;
pub mod breach;
pub mod cache;
pub mod email_verification;
pub mod hashing;
pub mod lockout;
pub mod login;
pub mod login_history;
pub mod passkeys;
pub mod password_reset;
pub mod passwords;
pub mod register;
pub mod restriction;
pub mod session_view;
pub mod sessions;
pub mod tokens;
pub mod two_factor;

use crate::error::code;
use crate::{AppError, AppResult, Services};
use cache::{TenantSnapshot, UserSnapshot};
use palisade_domain::{Permission, Role, SessionId, TenantId, UserId};
use palisade_store::{SystemScope, TenantScope, UserScope};
pub use restriction::Restriction;
use std::net::IpAddr;
use std::sync::Arc;

/// Where a request came from, for audit records and rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: String,
}

/// The credential a request presented.
#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionId),
    ApiKey(Arc<cache::ApiKeySnapshot>),
}

/// The authenticated identity behind a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_owner: bool,
    /// How the request authenticated: a user's session, or an API key (acting for its creator).
    pub credential: Credential,
    pub tenant: Option<Arc<TenantSnapshot>>,
    pub user: Arc<UserSnapshot>,
    /// The password has expired: only changing it (and signing out) is allowed.
    pub password_change_only: bool,
    /// Set when a super admin acts as this user (impersonation).
    pub impersonator: Option<Impersonator>,
    /// What the user must do before using the API beyond a few routes (see [`restriction`]).
    pub restrictions: Vec<Restriction>,
    scope: Option<TenantScope>,
}

/// The super admin behind an impersonation.
#[derive(Debug, Clone)]
pub struct Impersonator {
    pub user_id: UserId,
    pub email: String,
    /// Read-only unless the impersonation was started with `write: true`.
    pub write: bool,
}

impl Principal {
    /// Refuses unless the principal's role has `p` (and the password is not expired). This is
    /// the one place every rule about who may use a permission is applied: roles, an expired
    /// password, impersonation ([`Permission::impersonation_may_use`]) and API key scopes.
    pub fn require(&self, p: Permission) -> AppResult<()> {
        if self.password_change_only && !p.allowed_with_expired_password() {
            return Err(AppError::Forbidden {
                code: code::PASSWORD_EXPIRED,
                message: "your password has expired; change it with POST /api/v1/auth/password"
                    .into(),
            });
        }
        if !p.allows(self.role) {
            return Err(AppError::missing_permission(p));
        }
        if self.impersonator.is_some() && !p.impersonation_may_use() {
            return Err(AppError::Forbidden {
                code: code::IMPERSONATION_FORBIDDEN,
                message: format!(
                    "an impersonation cannot use {}: users, invitations, ownership and every \
                     credential (API keys, webhooks, connections, sessions, passwords) stay with \
                     the tenant's own admins",
                    p.as_str()
                ),
            });
        }
        if let Credential::ApiKey(key) = &self.credential {
            let Some(needed) = palisade_domain::scope::scopes_for(p) else {
                return Err(AppError::Forbidden {
                    code: code::API_KEY_NOT_ALLOWED,
                    message: format!(
                        "API keys cannot be used for {}; sign in as a user",
                        p.as_str()
                    ),
                });
            };
            if !needed.is_empty() && !needed.iter().any(|s| key.scopes.contains(s)) {
                let names: Vec<&str> = needed.iter().map(|s| s.as_str()).collect();
                return Err(AppError::Forbidden {
                    code: code::INSUFFICIENT_SCOPE,
                    message: format!("this API key is missing the scope {}", names.join(" or ")),
                });
            }
        }
        Ok(())
    }

    /// Refuses a route (its template, e.g. `/api/v1/auth/sessions/{id}`) that one of the
    /// principal's restrictions does not allow. The web layer calls this wherever a handler
    /// takes the principal.
    pub fn check_route(&self, route: &str) -> AppResult<()> {
        match self.restrictions.iter().find(|r| !r.allows(route)) {
            Some(r) => Err(r.refusal()),
            None => Ok(()),
        }
    }

    /// The session behind the request; API keys have none, and are never allowed what needs
    /// one (`/me`, sessions, passwords, logout).
    pub fn session_id(&self) -> AppResult<SessionId> {
        match &self.credential {
            Credential::Session(id) => Ok(*id),
            Credential::ApiKey(_) => Err(AppError::Forbidden {
                code: code::API_KEY_NOT_ALLOWED,
                message: "this endpoint needs a signed-in user, not an API key".into(),
            }),
        }
    }

    /// The API key behind the request, if that is how it authenticated.
    pub fn api_key(&self) -> Option<&cache::ApiKeySnapshot> {
        match &self.credential {
            Credential::ApiKey(k) => Some(k),
            Credential::Session(_) => None,
        }
    }

    pub fn tenant_id(&self) -> Option<TenantId> {
        self.scope.map(|s| s.tenant_id())
    }

    /// The principal's tenant scope; super admins have none.
    pub fn tenant_scope(&self) -> AppResult<TenantScope> {
        self.scope.ok_or_else(|| {
            AppError::forbidden("this operation acts on a tenant; super admins have none")
        })
    }

    /// The scope for the principal's own records (their user row, their sessions).
    pub fn own_scope(&self) -> UserScope {
        match self.scope {
            Some(s) => UserScope::Tenant(s),
            None => UserScope::Platform(SystemScope::new("platform user")),
        }
    }
}

/// The answer for any credential of a suspended tenant.
pub(crate) fn tenant_suspended() -> AppError {
    AppError::Forbidden {
        code: code::TENANT_SUSPENDED,
        message: "this account's organisation is suspended".into(),
    }
}

fn bad_token(code: &'static str, message: &str) -> AppError {
    AppError::Unauthenticated {
        code,
        message: message.to_owned(),
    }
}

/// The restrictions that apply to `user` under the server's settings. An API key acts for its
/// creator and carries the same ones; so does an impersonation, which sees what the user sees.
fn restrictions_of(s: &Services, user: &UserSnapshot) -> Vec<Restriction> {
    let mut out = Vec::new();
    if s.settings.email_verification == crate::settings::EmailVerification::Required
        && !user.email_verified
    {
        out.push(Restriction::EmailUnverified);
    }
    out
}

/// Establishes the principal behind an access token. Cheap on the hot path: a cache hit and
/// three hash-map lookups; the signature and database are consulted once per token or change.
pub async fn authenticate(s: &Services, token: &str) -> AppResult<Principal> {
    let now = s.now();
    let claims = match s.auth_cache.token(token) {
        Some(c) => {
            if c.exp <= now.unix_timestamp() {
                return Err(bad_token(
                    code::TOKEN_EXPIRED,
                    "the access token has expired",
                ));
            }
            c
        }
        None => {
            let c = tokens::verify(
                &s.keys.signing,
                token,
                &s.settings.token_issuer,
                &s.settings.token_audience,
                now,
            )
            .map_err(|e| match e {
                tokens::TokenError::Expired => bad_token(code::TOKEN_EXPIRED, &e.to_string()),
                _ => bad_token(code::INVALID_TOKEN, &e.to_string()),
            })?;
            confirm_session_live(s, &c, now).await?;
            s.auth_cache.remember_token(token, &c);
            c
        }
    };
    let session_id = SessionId::from_uuid(claims.sid);
    if s.auth_cache.is_revoked(session_id) {
        return Err(bad_token(
            code::SESSION_REVOKED,
            "this session has been signed out",
        ));
    }
    let tenant_id = claims.tid.map(TenantId::from_uuid);
    let user = user_snapshot(s, UserId::from_uuid(claims.sub), tenant_id).await?;
    if user.deleted || user.tenant_id != tenant_id {
        return Err(bad_token(
            code::INVALID_TOKEN,
            "this account no longer exists",
        ));
    }
    let tenant = match tenant_id {
        Some(t) => {
            let snap = tenant_snapshot(s, t).await?;
            if snap.suspended {
                return Err(tenant_suspended());
            }
            Some(snap)
        }
        None => None,
    };
    let mut restrictions = restrictions_of(s, &user);
    // An impersonation is the super admin's doing, not the user's sign-in: a missing second
    // factor never restricts it.
    if claims.act.is_none() {
        restrictions.extend(restriction::decide(&s.settings, &user, tenant.as_deref()));
    }
    Ok(Principal {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role,
        is_owner: user.is_owner,
        credential: Credential::Session(session_id),
        tenant,
        // The token was issued with an expired password; changing it since frees the session.
        password_change_only: claims.pwc
            && user
                .password_changed_at
                .is_none_or(|t| t.unix_timestamp() < claims.iat),
        impersonator: claims.act.as_ref().map(|a| Impersonator {
            user_id: UserId::from_uuid(a.sub),
            email: a.email.clone(),
            write: a.write,
        }),
        scope: tenant_id.map(TenantScope::from_verified_credential),
        restrictions,
        user,
    })
}

/// Whether establishing a principal from an API key counts as a use of the key
/// (`total_requests`, `last_used_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// A request, or a websocket opening: one use.
    Counted,
    /// A re-check of a credential already counted (an open websocket's, every second).
    Recheck,
}

/// Checks a token this node has not cached yet against its session row: the in-memory
/// revocations only reach back as far as this node remembers (not before its start), the
/// database always does. Once per token per node, so the hot path stays a cache hit.
async fn confirm_session_live(
    s: &Services,
    claims: &tokens::AccessClaims,
    now: time::OffsetDateTime,
) -> AppResult<()> {
    let session_id = SessionId::from_uuid(claims.sid);
    if s.auth_cache.is_revoked(session_id) {
        return Err(bad_token(
            code::SESSION_REVOKED,
            "this session has been signed out",
        ));
    }
    let tenant = claims.tid.map(TenantId::from_uuid);
    let mut tx = s.store.begin_read(UserScope::for_tenant(tenant)).await?;
    let session = palisade_store::sessions::find(&mut tx, session_id).await?;
    match session {
        Some(row) if row.revoked_at.is_none() && row.user_id.as_uuid() == claims.sub => Ok(()),
        Some(row) if row.revoked_at.is_some() => {
            s.auth_cache.note_revoked(session_id, now);
            Err(bad_token(
                code::SESSION_REVOKED,
                "this session has been signed out",
            ))
        }
        _ => Err(bad_token(
            code::INVALID_TOKEN,
            "the token's session does not exist",
        )),
    }
}

/// Establishes the principal behind an API key: the key's tenant and scopes, acting for the user
/// who created it. Counts one use of the key.
pub async fn authenticate_api_key(
    s: &Services,
    key: &str,
    ip: Option<IpAddr>,
) -> AppResult<Principal> {
    authenticate_api_key_as(s, key, ip, KeyUse::Counted).await
}

/// [`authenticate_api_key`], counting a use of the key only for [`KeyUse::Counted`].
pub async fn authenticate_api_key_as(
    s: &Services,
    key: &str,
    ip: Option<IpAddr>,
    usage: KeyUse,
) -> AppResult<Principal> {
    let k = match usage {
        KeyUse::Counted => api_keys::authenticate(s, key, ip).await?,
        KeyUse::Recheck => api_keys::verify(s, key, ip).await?,
    };
    let user = user_snapshot(s, k.created_by, Some(k.tenant_id)).await?;
    if user.deleted || user.tenant_id != Some(k.tenant_id) {
        return Err(bad_token(
            code::INVALID_API_KEY,
            "the API key's creator no longer exists",
        ));
    }
    let tenant = tenant_snapshot(s, k.tenant_id).await?;
    if tenant.suspended {
        return Err(tenant_suspended());
    }
    Ok(Principal {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role,
        is_owner: user.is_owner,
        scope: Some(TenantScope::from_verified_credential(k.tenant_id)),
        credential: Credential::ApiKey(k),
        tenant: Some(tenant),
        password_change_only: false,
        impersonator: None,
        restrictions: restrictions_of(s, &user),
        user,
    })
}

/// The user behind a verified token, from the cache or the database.
pub async fn user_snapshot(
    s: &Services,
    id: UserId,
    tenant: Option<TenantId>,
) -> AppResult<Arc<UserSnapshot>> {
    if let Some(u) = s.auth_cache.user(id) {
        return Ok(u);
    }
    let epoch = s.auth_cache.epoch();
    let mut tx = s.store.begin_read(UserScope::for_tenant(tenant)).await?;
    let u = palisade_store::users::find(&mut tx, id)
        .await?
        .ok_or_else(|| bad_token(code::INVALID_TOKEN, "this account no longer exists"))?;
    let has_second_factor = two_factor::factors(&mut tx, id).await?.any();
    let snap = Arc::new(UserSnapshot {
        id: u.id,
        tenant_id: u.tenant_id,
        email: u.email,
        name: u.name,
        role: u.role,
        is_owner: u.is_owner,
        deleted: u.deleted_at.is_some(),
        created_at: u.created_at,
        password_changed_at: u.password_changed_at,
        email_verified: u.email_verified_at.is_some(),
        has_second_factor,
    });
    s.auth_cache.offer_user(epoch, snap.clone());
    Ok(snap)
}

pub async fn tenant_snapshot(s: &Services, id: TenantId) -> AppResult<Arc<TenantSnapshot>> {
    if let Some(t) = s.auth_cache.tenant(id) {
        return Ok(t);
    }
    let epoch = s.auth_cache.epoch();
    let mut tx = s
        .store
        .begin_read(TenantScope::from_verified_credential(id))
        .await?;
    let t = palisade_store::tenants::find(&mut tx, id)
        .await?
        .ok_or_else(|| bad_token(code::INVALID_TOKEN, "this organisation no longer exists"))?;
    let snap = Arc::new(TenantSnapshot {
        id: t.id,
        name: t.name,
        suspended: t.status == palisade_store::tenants::TenantStatus::Suspended,
        password_policy: t.password_policy,
        require_2fa: t.require_2fa,
    });
    s.auth_cache.offer_tenant(epoch, snap.clone());
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::Scope;

    fn key_principal(scopes: &[Scope]) -> Principal {
        let tenant = TenantId::new();
        let user = Arc::new(UserSnapshot {
            id: UserId::new(),
            tenant_id: Some(tenant),
            email: "a@b.example".into(),
            name: "A".into(),
            role: Role::Admin,
            is_owner: false,
            deleted: false,
            created_at: time::OffsetDateTime::now_utc(),
            password_changed_at: None,
            email_verified: true,
            has_second_factor: false,
        });
        let key = Arc::new(cache::ApiKeySnapshot {
            id: palisade_domain::ApiKeyId::new(),
            tenant_id: tenant,
            name: "k".into(),
            scopes: scopes.iter().copied().collect(),
            created_by: user.id,
            revoked: false,
            expires_at: None,
            allowed_ips: None,
        });
        Principal {
            user_id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: Role::Admin,
            is_owner: false,
            credential: Credential::ApiKey(key),
            tenant: None,
            user,
            password_change_only: false,
            impersonator: None,
            restrictions: Vec::new(),
            scope: Some(TenantScope::from_verified_credential(tenant)),
        }
    }

    #[test]
    fn a_key_without_the_scope_is_refused_naming_it() {
        let p = key_principal(&[Scope::ContactsRead]);
        assert!(p.require(Permission::ContactsRead).is_ok());
        match p.require(Permission::ContactsDelete) {
            Err(AppError::Forbidden { code, message }) => {
                assert_eq!(code, "insufficient_scope");
                assert!(message.contains("contacts:delete"), "{message}");
            }
            other => panic!("expected insufficient_scope, got {other:?}"),
        }
        let full = key_principal(&Scope::GRANTS);
        for perm in [
            Permission::UsersManage,
            Permission::ApiKeysManage,
            Permission::WhatsAppConnectionsManage,
        ] {
            assert!(matches!(
                full.require(perm),
                Err(AppError::Forbidden {
                    code: code::API_KEY_NOT_ALLOWED,
                    ..
                })
            ));
        }
        assert!(full.session_id().is_err(), "API keys have no session");
    }

    /// `TenantScope::from_verified_credential` may be called only where a credential has just
    /// been verified (or a tenant just created). A new call site must be reviewed and listed here.
    #[test]
    fn tenant_scopes_are_built_only_by_the_auth_layer() {
        let allowed = [
            "core/src/auth/",
            "store/src/scope.rs",
            "testkit/",
            // The store's repository tests: the scope stands for a verified credential.
            "store/tests/repo/harness.rs",
            // A shop's order webhook, once its HMAC signature verified with the integration's
            // secret (`receive`, the only place that builds the scope there).
            "core/src/integrations/woocommerce.rs",
            // The campaign dispatcher: the tenant is the one of a running campaign it leased
            // (a system read of `campaigns`), so its units of work stay inside that tenant.
            "core/src/campaigns/dispatch.rs",
        ];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let rel = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    if (text.contains("from_verified_credential(")
                        || text.contains("UserScope::for_tenant("))
                        && !allowed.iter().any(|a| rel.starts_with(a))
                    {
                        offenders.push(rel);
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "TenantScope built outside the auth layer: {offenders:?}"
        );
    }
}
