//! Who may listen: the credential a socket authenticated with and the check that establishes
//! (and every second re-establishes) its principal and tenant. Separate because it is the
//! module's tenant-isolation boundary: a socket hears only the tenant this returns.

use crate::auth::{self, KeyUse, Principal};
use crate::{AppError, AppResult, Services};
use palisade_domain::{Permission, TenantId};
use std::net::IpAddr;

/// The credential a socket authenticated with, kept to re-check it while the socket is open.
#[derive(Clone)]
pub enum SocketCredential {
    /// An access token (from the first message, the `Authorization` header or the cookie).
    AccessToken(String),
    /// An API key (first message or `Authorization` header; never a cookie).
    ApiKey(String),
}

impl std::fmt::Debug for SocketCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SocketCredential::AccessToken(_) => "AccessToken(…)",
            SocketCredential::ApiKey(_) => "ApiKey(…)",
        })
    }
}

impl SocketCredential {
    /// An API key when it has the `pal_live_` prefix, else an access token.
    pub fn from_bearer(token: &str) -> SocketCredential {
        if token.starts_with(auth::api_keys::PREFIX) {
            SocketCredential::ApiKey(token.to_owned())
        } else {
            SocketCredential::AccessToken(token.to_owned())
        }
    }
}

/// Establishes (or re-checks) who a socket listens as and for which tenant: exactly the checks
/// of an API request now (revoked or expired session or token, deleted user, suspended tenant,
/// revoked key), plus permission to read conversations. Cheap: served from the auth cache,
/// which hears of revocations on every node within a second. `usage` says whether this counts
/// as a use of an API key: once per socket, never for the per-second re-checks.
pub async fn authorize(
    s: &Services,
    credential: &SocketCredential,
    ip: Option<IpAddr>,
    usage: KeyUse,
) -> AppResult<(Principal, TenantId)> {
    let p = match credential {
        SocketCredential::AccessToken(t) => auth::authenticate(s, t).await?,
        SocketCredential::ApiKey(k) => auth::authenticate_api_key_as(s, k, ip, usage).await?,
    };
    // A restricted session (a second factor still to set up) does not listen either.
    if let Some(r) = p.restriction.filter(|r| !r.allows("/api/v1/ws")) {
        return Err(r.error());
    }
    p.require(Permission::ConversationsRead)?;
    let tenant = p.tenant_id().ok_or(AppError::Forbidden {
        code: crate::error::code::TENANT_REQUIRED,
        message: "realtime events belong to a tenant; super admins have none".into(),
    })?;
    Ok((p, tenant))
}
