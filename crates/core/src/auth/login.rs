//! Signing in with a password: the throttle and lockout (`lockout`), the dummy hash for an
//! unknown account, the second factor's challenge when the account has one, and the session
//! it ends in (`sign_in`, shared with passkeys). A failure is counted in one write and runs the
//! sign-in detections once committed.

use super::sessions::{as_user, invalid_credentials, issue, password_expired, start, IssuedTokens};
use super::{lockout, login_history, RequestMeta};
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{LoginMethod, LoginResult, PasswordPolicyPreset};
use palisade_store::users::User;
use palisade_store::{login_throttle, sessions, users};
use palisade_store::{SystemScope, UserScope};
use time::OffsetDateTime;

/// What a correct password leads to: a session, or a challenge for the second factor.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    SignedIn(IssuedTokens),
    /// The user has a second factor: finish with `two_factor::challenge::complete`.
    MfaRequired(super::two_factor::challenge::Challenge),
}

/// A password sign-in the per-address limit refused before anything was checked still counts,
/// for the detection rules, as a failed attempt on the account it named: otherwise an attack
/// faster than the limit (5 a minute by default) would show only the attempts that got through
/// and never reach the thresholds of `account_under_attack` and `password_spraying`. It is
/// recorded in the sign-in history as a `failure` (no audit record, no lockout count: the
/// password was not tried), for an existing account only, and at most
/// [`crate::rate_limit::Limits::throttled_logins`] times a minute per address, so a flood of
/// refused requests costs a bounded number of writes. Never fails the caller (the answer
/// stays the 429): a problem is logged.
pub async fn note_throttled(s: &Services, meta: &RequestMeta, email: &str) {
    let Some(ip) = meta.ip else {
        return;
    };
    let key = crate::rate_limit::ClientKey::of(ip);
    if s.limits.throttled_logins.check(&key).await.is_err() {
        return;
    }
    let email = email.trim().to_lowercase();
    if email.len() > 254 {
        return;
    }
    let recorded = async {
        let user = {
            let mut tx = s
                .store
                .begin_read(SystemScope::new("login.throttled"))
                .await?;
            users::find_by_email(&mut tx, &email).await?
        };
        if let Some(u) = user.filter(|u| u.deleted_at.is_none()) {
            let mut uow =
                UnitOfWork::anonymous(s, meta, UserScope::for_tenant(u.tenant_id)).await?;
            login_history::record(&mut uow, &u, LoginResult::Failure, LoginMethod::Password)
                .await?;
            uow.commit().await?;
        }
        Ok::<_, AppError>(())
    };
    if let Err(e) = recorded.await {
        tracing::warn!(request_id = %meta.request_id, error = %e, "could not record a throttled sign-in");
    }
}

/// Signs in with email and password.
pub async fn login(
    s: &Services,
    meta: &RequestMeta,
    email: &str,
    password: &str,
) -> AppResult<LoginOutcome> {
    let now = s.now();
    let email = email.trim().to_lowercase();
    let throttle_key = lockout::key(&email);
    let (throttle, user, trusted_origin) = {
        let mut tx = s.store.begin_read(SystemScope::new("login.lookup")).await?;
        let throttle = login_throttle::get(&mut tx, &throttle_key).await?;
        let user = if email.len() <= 254 {
            users::find_by_email(&mut tx, &email).await?
        } else {
            None
        };
        let trusted = match (&user, meta.ip) {
            (Some(u), Some(ip)) if lockout::locked_for(throttle.as_ref(), now).is_some() => {
                sessions::signed_in_from(
                    &mut tx,
                    u.id,
                    &ip.to_string(),
                    now - time::Duration::days(30),
                )
                .await?
            }
            _ => false,
        };
        (throttle, user, trusted)
    };
    if let Some(retry) = lockout::locked_for(throttle.as_ref(), now) {
        if !trusted_origin {
            if let Some(u) = user.as_ref().filter(|u| u.deleted_at.is_none()) {
                let scope = UserScope::for_tenant(u.tenant_id);
                let mut uow = UnitOfWork::anonymous(s, meta, scope).await?;
                login_history::record(&mut uow, u, LoginResult::Locked, LoginMethod::Password)
                    .await?;
                uow.commit().await?;
            }
            crate::metrics::login(LoginResult::Locked);
            return Err(AppError::TooManyRequests {
                code: code::ACCOUNT_LOCKED,
                message: "too many failed sign-ins; try again later".into(),
                retry_after_secs: retry,
            });
        }
    }
    let live_hash = user
        .as_ref()
        .filter(|u| u.deleted_at.is_none())
        .and_then(|u| u.password_hash.as_deref());
    let verified = s
        .hasher
        .verify(password, live_hash)
        .await
        .map_err(hash_error)?;
    let Some(user) = user.filter(|_| verified.ok()) else {
        return record_failure(s, meta, &throttle_key, &email, now)
            .await
            .map(LoginOutcome::SignedIn);
    };
    let tenant = match user.tenant_id {
        Some(t) => Some(super::tenant_snapshot(s, t).await?),
        None => None,
    };
    if tenant.as_ref().is_some_and(|t| t.suspended) {
        return Err(super::tenant_suspended());
    }
    if verified == super::hashing::Verified::YesButRehash {
        let new_hash = s.hasher.hash(password).await.map_err(hash_error)?;
        let mut uow = UnitOfWork::anonymous(s, meta, SystemScope::new("login.rehash")).await?;
        users::upgrade_hash(uow.tx(), user.id, &new_hash).await?;
        uow.commit().await?;
    }
    // An account with a second factor gets a challenge, not a session: the lockout counter is
    // cleared only once the second factor is proved too.
    let factors = {
        let mut tx = s
            .store
            .begin_read(UserScope::for_tenant(user.tenant_id))
            .await?;
        super::two_factor::factors(&mut tx, user.id).await?
    };
    if factors.any() {
        let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(user.tenant_id)).await?;
        let challenge =
            super::two_factor::challenge::issue(&mut uow, &user, factors.methods()).await?;
        uow.commit().await?;
        return Ok(LoginOutcome::MfaRequired(challenge));
    }
    let tokens = sign_in(s, meta, &user, SignInMethod::Password).await?;
    if throttle.is_some() {
        lockout::clear(s, meta, &email).await?;
    }
    Ok(LoginOutcome::SignedIn(tokens))
}

/// How a sign-in proved who the user is (recorded on `auth.login.succeeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    /// A passkey with user verification: a complete multi-factor sign-in on its own.
    Passkey,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        self.login_method().as_str()
    }

    /// The method as the login history records it.
    pub const fn login_method(self) -> LoginMethod {
        match self {
            SignInMethod::Password => LoginMethod::Password,
            SignInMethod::Passkey => LoginMethod::Passkey,
        }
    }
}

/// Finishes a sign-in for a user who has just proved who they are: refuses a suspended tenant,
/// opens the session, records `auth.login.succeeded` with the method, and mints the tokens.
/// Password login and passkey sign-in share it, so both end in the same session and answer.
pub(crate) async fn sign_in(
    s: &Services,
    meta: &RequestMeta,
    user: &User,
    method: SignInMethod,
) -> AppResult<IssuedTokens> {
    let tenant = match user.tenant_id {
        Some(t) => Some(super::tenant_snapshot(s, t).await?),
        None => None,
    };
    if tenant.as_ref().is_some_and(|t| t.suspended) {
        return Err(super::tenant_suspended());
    }
    let policy = tenant
        .as_ref()
        .map_or(PasswordPolicyPreset::Modern, |t| t.password_policy);
    let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(user.tenant_id)).await?;
    let now = uow.now();
    let (session, refresh) = start(&mut uow, user).await?;
    uow.audit(as_user(
        uow.entry("auth.login.succeeded")
            .target("session", session.id)
            .metadata(serde_json::json!({ "method": method.as_str() })),
        user,
    ))
    .await?;
    login_history::record(&mut uow, user, LoginResult::Success, method.login_method()).await?;
    uow.commit().await?;
    crate::metrics::login(LoginResult::Success);
    issue(
        s,
        user,
        &session,
        refresh,
        password_expired(user, policy, now),
        now,
    )
}

async fn record_failure(
    s: &Services,
    meta: &RequestMeta,
    key: &[u8],
    email: &str,
    now: OffsetDateTime,
) -> AppResult<IssuedTokens> {
    let rule = lockout::failure_rule(&s.settings, now);
    let account = {
        let mut tx = s.store.begin_read(SystemScope::new("login.lookup")).await?;
        users::find_by_email(&mut tx, email).await?
    };
    let tenant = account
        .as_ref()
        .and_then(|u| u.tenant_id.map(|t| (t, u.id)));
    let mut uow = UnitOfWork::anonymous(s, meta, SystemScope::new("login.failure")).await?;
    if let Some((t, _)) = tenant {
        uow.set_tenant(t);
    }
    // Counted and decided in one write, so concurrent failures cannot overwrite each other.
    let ip = meta.ip.map(|ip| ip.to_string());
    let state = login_throttle::record_failure(uow.tx(), key, &rule, ip.as_deref()).await?;
    let locked = lockout::locked_by(&state, &rule);
    let failures = state.failures;
    login_throttle::prune(uow.tx(), &rule).await?;
    // The email is recorded only when it belongs to an account, so typos of passwords into the
    // email field do not land in the log.
    let mut e = uow
        .entry("auth.login.failed")
        .metadata(serde_json::json!({ "consecutive_failures": failures }));
    if let Some((_, uid)) = tenant {
        e = e.target("user", uid);
        e.actor_email = Some(email.to_owned());
    }
    uow.audit(e).await?;
    if locked {
        let mut e = uow.entry("auth.login.locked").metadata(
            serde_json::json!({ "locked_until": state.locked_until.map(|t| t.unix_timestamp()) }),
        );
        if let Some((_, uid)) = tenant {
            e = e.target("user", uid);
        }
        uow.audit(e).await?;
        tracing::warn!(request_id = %meta.request_id, "account locked after repeated failed sign-ins");
        crate::metrics::lockout();
    }
    match account.as_ref().filter(|u| u.deleted_at.is_none()) {
        // An account's failure runs every sign-in rule once recorded (the login history's).
        Some(u) => {
            login_history::record(&mut uow, u, LoginResult::Failure, LoginMethod::Password).await?
        }
        // A name that is no account: only the address can be watched (password spraying
        // counts the names an address fails against, known or not).
        None => {
            if let Some(ip) = ip {
                uow.after_commit(move |s| crate::detections::unknown_name_failed(s, ip));
            }
        }
    }
    uow.commit().await?;
    crate::metrics::login(LoginResult::Failure);
    tokio::time::sleep(lockout::delay(&s.settings, failures)).await;
    Err(invalid_credentials())
}

pub(crate) fn hash_error(e: super::hashing::HashError) -> AppError {
    match e {
        super::hashing::HashError::Busy => AppError::Unavailable {
            message: "the server is busy checking passwords; retry shortly".into(),
            retry_after_secs: 1,
        },
        super::hashing::HashError::Internal(e) => AppError::Internal(e),
    }
}
