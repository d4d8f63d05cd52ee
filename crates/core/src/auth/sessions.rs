//! Device sessions: refresh-token rotation, logout, and the session list (signing in is
//! `auth::login`, re-exported here).
//!
//! Threat: stolen refresh tokens and sessions that cannot be ended. Invariants:
//! - Every login creates a session; its refresh tokens form one rotation family. Each refresh
//!   consumes the presented token and issues a new one; presenting a consumed token again means
//!   two parties hold it, so the whole session is revoked and a security event recorded
//!   (RFC 9700 §4.14.2).
//! - A session ends at most 30 days after login; rotation never extends it, and no access token
//!   outlives it.
//! - Revoking a session (logout, password change, user deletion, reuse) stops its access tokens
//!   on every node within a second (see `cache`).

pub(crate) use super::login::{hash_error, sign_in};
pub use super::login::{login, note_throttled, LoginOutcome, SignInMethod};

use super::session_view::SessionView;
use super::{cache, tokens, Principal, RequestMeta};
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{PasswordPolicyPreset, SessionId, TenantId};
use palisade_store::audit::AuditEntry;
use palisade_store::auth_changes::ChangeKind;
use palisade_store::sessions::Session;
use palisade_store::users::User;
use palisade_store::{refresh_tokens, sessions, users};
use palisade_store::{Scope, SystemScope, Tx, UserScope};
use time::OffsetDateTime;
use uuid::Uuid;

/// What a successful login, registration or refresh hands the client.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub session_id: SessionId,
    /// Whether the password has expired (the access token then only allows changing it).
    pub password_expired: bool,
    /// The CSRF token for cookie-authenticated browsers.
    pub csrf_token: String,
    /// Set by a request that also chose a password (`password_breached` in `warn` mode).
    pub warnings: Vec<&'static str>,
}

/// The CSRF token of a session: a MAC of its id, so it needs no storage and dies with it.
pub fn csrf_token(s: &Services, session: SessionId) -> String {
    hex::encode(s.keys.mac(b"csrf", session.as_uuid().as_bytes()))
}

/// Whether `sent` is the session's CSRF token under any signing key of the ring: a browser
/// signed in before a key was appended keeps working until its session ends.
pub fn csrf_token_valid(s: &Services, session: SessionId, sent: &str) -> bool {
    hex::decode(sent).is_ok_and(|mac| {
        s.keys
            .mac_matches(b"csrf", session.as_uuid().as_bytes(), &mac)
    })
}

pub(super) fn invalid_credentials() -> AppError {
    AppError::Unauthenticated {
        code: code::INVALID_CREDENTIALS,
        message: "the email or password is incorrect".into(),
    }
}

/// Names on an audit record the account the caller has just proved to be (a correct password,
/// an invitation, a registration): no principal exists yet, so the unit of work cannot.
pub(crate) fn as_user(mut e: AuditEntry, user: &User) -> AuditEntry {
    e.actor_id = Some(user.id);
    e.actor_email = Some(user.email.clone());
    e.actor_role = Some(user.role.as_str().to_owned());
    e
}

/// Opens a session for `user` and stores its first refresh token, in the unit's transaction.
pub(crate) async fn start<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &User,
) -> AppResult<(Session, String)> {
    let (s, now) = (uow.services(), uow.now());
    let meta = uow.meta();
    let ip = meta.ip.map(|i| i.to_string());
    let ua = meta
        .user_agent
        .as_deref()
        .map(|u| u.chars().take(512).collect::<String>());
    let parsed = ua
        .as_deref()
        .map(super::login_history::UserAgent::parse)
        .unwrap_or_default();
    let (browser, os) = (parsed.browser, parsed.os);
    let ttl = time::Duration::try_from(s.settings.refresh_token_ttl)
        .map_err(|e| anyhow::anyhow!("refresh ttl: {e}"))?;
    let session = Session {
        id: SessionId::new(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        created_at: now,
        last_seen_at: now,
        expires_at: now + ttl,
        revoked_at: None,
        revoked_reason: None,
        ip,
        user_agent: ua,
        browser,
        os,
    };
    sessions::insert(uow.tx(), &session).await?;
    let refresh = tokens::new_secret(tokens::REFRESH_PREFIX);
    refresh_tokens::insert(
        uow.tx(),
        user.tenant_id,
        session.id,
        &tokens::secret_hash(&refresh),
        now,
    )
    .await?;
    Ok((session, refresh))
}

/// Whether the user's password has outlived the tenant's policy.
pub(crate) fn password_expired(
    user: &User,
    policy: PasswordPolicyPreset,
    now: OffsetDateTime,
) -> bool {
    match user.password_changed_at {
        Some(at) => policy.policy().is_expired(at, now),
        None => false,
    }
}

async fn tenant_policy(s: &Services, tenant: Option<TenantId>) -> AppResult<PasswordPolicyPreset> {
    match tenant {
        Some(t) => Ok(super::tenant_snapshot(s, t).await?.password_policy),
        None => Ok(PasswordPolicyPreset::Modern),
    }
}

/// Mints the access token for a session.
pub(crate) fn issue(
    s: &Services,
    user: &User,
    session: &Session,
    refresh_token: String,
    password_expired: bool,
    now: OffsetDateTime,
) -> AppResult<IssuedTokens> {
    let ttl = time::Duration::try_from(s.settings.access_token_ttl)
        .map_err(|e| anyhow::anyhow!("access ttl: {e}"))?;
    let exp = (now + ttl).min(session.expires_at);
    let claims = tokens::AccessClaims {
        iss: s.settings.token_issuer.clone(),
        aud: s.settings.token_audience.clone(),
        sub: user.id.as_uuid(),
        sid: session.id.as_uuid(),
        tid: user.tenant_id.map(|t| t.as_uuid()),
        iat: now.unix_timestamp(),
        nbf: now.unix_timestamp(),
        exp: exp.unix_timestamp(),
        jti: Uuid::now_v7(),
        pwc: password_expired,
        act: None,
    };
    Ok(IssuedTokens {
        access_token: tokens::issue(&s.keys.signing, &claims)?,
        refresh_token,
        expires_in: (exp - now).whole_seconds(),
        session_id: session.id,
        password_expired,
        csrf_token: csrf_token(s, session.id),
        warnings: Vec::new(),
    })
}

fn user_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "id": u.id, "email": u.email, "name": u.name, "role": u.role.as_str(),
        "is_owner": u.is_owner, "deleted": u.deleted_at.is_some(),
    })
}

fn invalid_refresh() -> AppError {
    AppError::Unauthenticated {
        code: code::INVALID_REFRESH_TOKEN,
        message: "the refresh token is invalid or expired; sign in again".into(),
    }
}

/// Exchanges a refresh token for a new pair (rotation with reuse detection).
pub async fn refresh(s: &Services, meta: &RequestMeta, token: &str) -> AppResult<IssuedTokens> {
    if !token.starts_with(tokens::REFRESH_PREFIX) || token.len() > 128 {
        return Err(invalid_refresh());
    }
    let found = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("refresh.lookup"))
            .await?;
        refresh_tokens::find_by_hash(&mut tx, &tokens::secret_hash(token)).await?
    };
    let Some(found) = found else {
        return Err(invalid_refresh());
    };
    // Refused before the token is spent: after reactivation the same token still works.
    if let Some(t) = found.tenant_id {
        if super::tenant_snapshot(s, t).await?.suspended {
            return Err(super::tenant_suspended());
        }
    }
    let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(found.tenant_id)).await?;
    let now = uow.now();
    let session = sessions::find(uow.tx(), found.session_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    let first_use =
        found.used_at.is_none() && refresh_tokens::mark_used(uow.tx(), found.id, now).await?;
    if !first_use {
        // Someone presented a token that was already exchanged: revoke the family.
        if sessions::revoke(uow.tx(), session.id, "refresh_token_reuse", now).await? {
            cache::record(uow.tx(), ChangeKind::Session, session.id.as_uuid(), now).await?;
        }
        let mut e = uow
            .entry("auth.refresh.reuse_detected")
            .target("session", session.id)
            .metadata(serde_json::json!({ "user_id": session.user_id }));
        e.actor_id = Some(session.user_id);
        uow.audit(e).await?;
        let revoked = session.id;
        uow.after_commit(move |s| s.auth_cache.revoke_session(revoked, now));
        uow.commit().await?;
        tracing::warn!(request_id = %meta.request_id, session = %session.id, "refresh token reuse; session revoked");
        return Err(AppError::Unauthenticated {
            code: code::REFRESH_TOKEN_REUSED,
            message: "this refresh token was already used; the session has been signed out".into(),
        });
    }
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(invalid_refresh());
    }
    let user = users::find(uow.tx(), session.user_id)
        .await?
        .ok_or_else(invalid_refresh)?;
    if user.deleted_at.is_some() {
        return Err(invalid_refresh());
    }
    let new_refresh = tokens::new_secret(tokens::REFRESH_PREFIX);
    refresh_tokens::insert(
        uow.tx(),
        session.tenant_id,
        session.id,
        &tokens::secret_hash(&new_refresh),
        now,
    )
    .await?;
    sessions::touch(
        uow.tx(),
        session.id,
        now,
        meta.ip.map(|i| i.to_string()).as_deref(),
    )
    .await?;
    uow.commit().await?;
    let policy = tenant_policy(s, user.tenant_id).await?;
    issue(
        s,
        &user,
        &session,
        new_refresh,
        password_expired(&user, policy, now),
        now,
    )
}

/// Tells every node that sessions were revoked, in the caller's transaction. Each node's
/// sync loop applies it within a second; [`end_sessions`] also applies it here at once.
pub(crate) async fn revoke_sessions<S: Scope>(
    tx: &mut Tx<S>,
    ids: &[SessionId],
    now: OffsetDateTime,
) -> AppResult<()> {
    for id in ids {
        cache::record(tx, ChangeKind::Session, id.as_uuid(), now).await?;
    }
    Ok(())
}

/// Records that `ids` were revoked (for every node) and, once the unit commits, stops their
/// access tokens on this node without waiting for the sync loop.
pub(crate) async fn end_sessions<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    ids: Vec<SessionId>,
) -> AppResult<()> {
    let now = uow.now();
    revoke_sessions(uow.tx(), &ids, now).await?;
    uow.after_commit(move |s| {
        for id in ids {
            s.auth_cache.revoke_session(id, now);
        }
    });
    Ok(())
}

/// Signs out the current session.
pub async fn logout(s: &Services, p: &Principal, meta: &RequestMeta) -> AppResult<()> {
    let session_id = p.session_id()?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    if sessions::revoke(uow.tx(), session_id, "logout", now).await? {
        revoke_sessions(uow.tx(), &[session_id], now).await?;
    }
    uow.audit(uow.entry("auth.logout").target("session", session_id))
        .await?;
    // Stopped here even when it was already revoked: this node may not have heard yet.
    uow.after_commit(move |s| s.auth_cache.revoke_session(session_id, now));
    uow.commit().await
}

/// Signs out every session of the current user, this one included; returns how many.
pub async fn logout_all(s: &Services, p: &Principal, meta: &RequestMeta) -> AppResult<usize> {
    p.session_id()?;
    p.require(palisade_domain::Permission::SessionsManage)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    let ids = sessions::revoke_all_for_user(uow.tx(), p.user_id, None, "logout_all", now).await?;
    let n = ids.len();
    end_sessions(&mut uow, ids).await?;
    uow.audit(
        uow.entry("auth.logout_all")
            .target("user", p.user_id)
            .metadata(serde_json::json!({ "sessions_revoked": n })),
    )
    .await?;
    uow.commit().await?;
    Ok(n)
}

/// The current user's active sessions, newest first, marking the one making the request.
pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<SessionView>> {
    let current = p.session_id()?;
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    let active = sessions::list_active(&mut tx, p.user_id, s.now()).await?;
    Ok(active
        .into_iter()
        .map(|x| SessionView::of(x, Some(current)))
        .collect())
}

/// Revokes one of the current user's sessions. Another user's session is "not found".
pub async fn revoke(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: SessionId,
) -> AppResult<()> {
    // Never with an API key (it would sign its creator out), nor under impersonation.
    p.session_id()?;
    p.require(palisade_domain::Permission::SessionsManage)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    let session = sessions::find(uow.tx(), id)
        .await?
        .filter(|x| x.user_id == p.user_id && x.revoked_at.is_none() && x.expires_at > now)
        .ok_or(AppError::NotFound("session"))?;
    sessions::revoke(uow.tx(), session.id, "revoked_by_user", now).await?;
    end_sessions(&mut uow, vec![session.id]).await?;
    uow.audit(uow.entry("auth.session.revoked").target("session", id))
        .await?;
    uow.commit().await
}

pub(crate) fn user_audit_json(u: &User) -> serde_json::Value {
    user_json(u)
}
