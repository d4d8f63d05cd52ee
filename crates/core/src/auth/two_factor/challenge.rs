//! The sign-in challenge: after a correct password, a user with a second factor gets a
//! `pal_mfa_…` token instead of a session, and completes the sign-in with a verified factor.
//!
//! - [`issue`] starts a challenge for a user whose password was just proved (in the caller's
//!   unit of work).
//! - [`complete`] takes the token and a [`Factor`], verifies it, and on success opens the session
//!   exactly as a password sign-in does; [`succeeded`] and [`failed`] are the one place each
//!   outcome is recorded (audit, lockout, and later the login history).
//!
//! A token is 256 random bits stored as its SHA-256, lives five minutes, is spent by the first
//! success (one conditional UPDATE: of two concurrent completions one wins) and dies after five
//! wrong codes. Wrong codes also count toward the account lockout, as wrong passwords do.
//! Passkeys will be another [`Factor`] and another entry of `methods`.

use super::{factors, spend_recovery_code, spend_totp, Spent};
use crate::audit::AuditEntryExt;
use crate::auth::sessions::{self, IssuedTokens};
use crate::auth::{lockout, login_history, tokens, RequestMeta};
use crate::error::code;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{LoginMethod, LoginResult};
use palisade_store::two_factor::{self as rows, MfaChallenge};
use palisade_store::users::User;
use palisade_store::{
    login_throttle, sessions as session_rows, users, Scope, SystemScope, UserScope,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const PREFIX: &str = "pal_mfa_";
pub const TTL_SECONDS: i64 = 300;
/// Wrong codes a challenge survives; the fifth kills it.
pub const MAX_FAILURES: i64 = 5;
pub const METHOD_TOTP: &str = "totp";
pub const METHOD_RECOVERY_CODE: &str = "recovery_code";
pub const METHOD_PASSKEY: &str = "passkey";

/// What the client is told after the password: how to finish signing in.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub mfa_token: String,
    pub methods: Vec<&'static str>,
    pub expires_in: i64,
}

/// A second factor presented to complete a challenge.
#[derive(Debug, Clone, Copy)]
pub enum Factor<'a> {
    Totp(&'a str),
    RecoveryCode(&'a str),
}

impl Factor<'_> {
    pub const fn method(self) -> &'static str {
        match self {
            Factor::Totp(_) => METHOD_TOTP,
            Factor::RecoveryCode(_) => METHOD_RECOVERY_CODE,
        }
    }

    /// The method as the login history records it.
    pub const fn login_method(self) -> LoginMethod {
        match self {
            Factor::Totp(_) => LoginMethod::Totp,
            Factor::RecoveryCode(_) => LoginMethod::RecoveryCode,
        }
    }
}

/// Starts a challenge for `user` (their password was just verified), in the caller's unit.
pub(crate) async fn issue<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &User,
    methods: Vec<&'static str>,
) -> AppResult<Challenge> {
    let now = uow.now();
    let token = tokens::new_secret(PREFIX);
    let c = MfaChallenge {
        id: Uuid::now_v7(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        created_at: now,
        expires_at: now + Duration::seconds(TTL_SECONDS),
        failed_attempts: 0,
        used_at: None,
    };
    rows::insert_challenge(uow.tx(), &c, &tokens::secret_hash(&token)).await?;
    uow.audit(sessions::as_user(
        uow.entry("auth.login.mfa_required")
            .target("user", user.id)
            .metadata(serde_json::json!({ "methods": methods })),
        user,
    ))
    .await?;
    Ok(Challenge {
        mfa_token: token,
        methods,
        expires_in: TTL_SECONDS,
    })
}

fn invalid_token() -> AppError {
    AppError::Unauthenticated {
        code: code::INVALID_MFA_TOKEN,
        message: "the sign-in has expired, was completed, or had too many wrong codes; sign in \
                  again with your password"
            .into(),
    }
}

/// The open challenge behind `token` and its account, for a passkey as the second factor
/// (`POST /api/v1/auth/passkeys/login/start {mfa_token}`): the passkey ceremony is tied to the
/// challenge's id and spends it with [`spend`] when it succeeds. Refuses, like `login/2fa`, a
/// token that is unknown, used, expired or out of tries (`401 invalid_mfa_token`), and a locked
/// account.
pub async fn open_for_passkey(s: &Services, token: &str) -> AppResult<(Uuid, User)> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Err(invalid_token());
    }
    let hash = tokens::secret_hash(token);
    let now = s.now();
    let mut tx = s
        .store
        .begin_read(SystemScope::new("login.mfa.lookup"))
        .await?;
    let Some(c) = rows::find_challenge(&mut tx, &hash).await? else {
        return Err(invalid_token());
    };
    if c.used_at.is_some() || c.expires_at <= now || c.failed_attempts >= MAX_FAILURES {
        return Err(invalid_token());
    }
    let Some(user) = users::find(&mut tx, c.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
    else {
        return Err(invalid_token());
    };
    Ok((c.id, user))
}

/// Spends the challenge `id` in `uow` (the passkey half of a two-step sign-in). False when
/// another request completed or exhausted it first.
pub async fn spend<S: Scope>(uow: &mut UnitOfWork<'_, S>, id: Uuid) -> AppResult<bool> {
    let now = uow.now();
    Ok(rows::consume_challenge(uow.tx(), id, now, MAX_FAILURES).await?)
}

/// Completes the challenge behind `token` with `factor`: the normal sign-in answer.
pub async fn complete(
    s: &Services,
    meta: &RequestMeta,
    token: &str,
    factor: Factor<'_>,
) -> AppResult<IssuedTokens> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Err(invalid_token());
    }
    let hash = tokens::secret_hash(token);
    let now = s.now();
    let (challenge, user, throttle, trusted_origin) = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("login.mfa.lookup"))
            .await?;
        let Some(c) = rows::find_challenge(&mut tx, &hash).await? else {
            return Err(invalid_token());
        };
        let user = users::find(&mut tx, c.user_id).await?;
        let throttle = match &user {
            Some(u) => login_throttle::get(&mut tx, &lockout::key(&u.email)).await?,
            None => None,
        };
        // As for the password: a lock does not keep the owner out of an address they used.
        let trusted = match (&user, meta.ip) {
            (Some(u), Some(ip)) if lockout::locked_for(throttle.as_ref(), now).is_some() => {
                session_rows::signed_in_from(
                    &mut tx,
                    u.id,
                    &ip.to_string(),
                    now - Duration::days(30),
                )
                .await?
            }
            _ => false,
        };
        (c, user, throttle, trusted)
    };
    let Some(user) = user.filter(|u| u.deleted_at.is_none()) else {
        return Err(invalid_token());
    };
    if challenge.used_at.is_some()
        || challenge.expires_at <= now
        || challenge.failed_attempts >= MAX_FAILURES
    {
        return Err(invalid_token());
    }
    if let Some(retry) = lockout::locked_for(throttle.as_ref(), now).filter(|_| !trusted_origin) {
        return Err(AppError::TooManyRequests {
            code: code::ACCOUNT_LOCKED,
            message: "too many failed sign-ins; try again later".into(),
            retry_after_secs: retry,
        });
    }
    let tenant = match user.tenant_id {
        Some(t) => Some(crate::auth::tenant_snapshot(s, t).await?),
        None => None,
    };
    if tenant.as_ref().is_some_and(|t| t.suspended) {
        return Err(crate::auth::tenant_suspended());
    }
    let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(user.tenant_id)).await?;
    let now = uow.now();
    let spent = match factor {
        Factor::Totp(code) => spend_totp(s, uow.tx(), user.id, code, now).await?,
        Factor::RecoveryCode(code) => spend_recovery_code(s, uow.tx(), user.id, code, now).await?,
    };
    match spent {
        Spent::Totp | Spent::RecoveryCode => {}
        Spent::Replayed | Spent::Wrong => {
            drop(uow);
            return failed(s, meta, &challenge, &user, factor, spent == Spent::Replayed).await;
        }
    }
    if !rows::consume_challenge(uow.tx(), challenge.id, now, MAX_FAILURES).await? {
        // Another request completed (or exhausted) it first; this one's code is rolled back.
        return Err(invalid_token());
    }
    let (session, refresh) = succeeded(&mut uow, &user, factor).await?;
    uow.commit().await?;
    if throttle.is_some() {
        lockout::clear(s, meta, &user.email).await?;
    }
    let policy = tenant
        .as_ref()
        .map_or(palisade_domain::PasswordPolicyPreset::Modern, |t| {
            t.password_policy
        });
    sessions::issue(
        s,
        &user,
        &session,
        refresh,
        sessions::password_expired(&user, policy, now),
        now,
    )
}

/// A sign-in completed with a second factor: the session, its audit record, and the mail a
/// recovery code sends, and the login history (with the new-device check).
async fn succeeded(
    uow: &mut UnitOfWork<'_, UserScope>,
    user: &User,
    factor: Factor<'_>,
) -> AppResult<(palisade_store::sessions::Session, String)> {
    let (session, refresh) = sessions::start(uow, user).await?;
    uow.audit(sessions::as_user(
        uow.entry("auth.login.succeeded")
            .target("session", session.id)
            .metadata(serde_json::json!({ "method": factor.method() })),
        user,
    ))
    .await?;
    if let Factor::RecoveryCode(_) = factor {
        let left = factors(uow.tx(), user.id).await?.recovery_codes_left;
        uow.audit(
            uow.entry("auth.2fa.recovery_code_used")
                .target("user", user.id)
                .metadata(serde_json::json!({ "recovery_codes_left": left })),
        )
        .await?;
        super::mail_recovery_code_used(uow, user, left).await?;
    }
    login_history::record(uow, user, LoginResult::Success, factor.login_method()).await?;
    crate::metrics::login(LoginResult::Success);
    Ok((session, refresh))
}

/// A wrong (or replayed) code: counted against the challenge and the account's lockout, and
/// audited, and recorded in the login history as an `mfa_failure`.
async fn failed(
    s: &Services,
    meta: &RequestMeta,
    challenge: &MfaChallenge,
    user: &User,
    factor: Factor<'_>,
    replayed: bool,
) -> AppResult<IssuedTokens> {
    let now = s.now();
    let rule = lockout::failure_rule(&s.settings, now);
    let mut uow = UnitOfWork::anonymous(s, meta, SystemScope::new("login.mfa.failure")).await?;
    if let Some(t) = user.tenant_id {
        uow.set_tenant(t);
    }
    let tries = rows::record_challenge_failure(uow.tx(), challenge.id).await?;
    let ip = meta.ip.map(|ip| ip.to_string());
    let state =
        login_throttle::record_failure(uow.tx(), &lockout::key(&user.email), &rule, ip.as_deref())
            .await?;
    let locked = lockout::locked_by(&state, &rule);
    uow.audit(sessions::as_user(
        uow.entry("auth.login.mfa_failed")
            .target("user", user.id)
            .metadata(serde_json::json!({
                "method": factor.method(),
                "replayed": replayed,
                "challenge_failures": tries,
                "consecutive_failures": state.failures,
            })),
        user,
    ))
    .await?;
    if locked {
        uow.audit(
            uow.entry("auth.login.locked")
                .target("user", user.id)
                .metadata(serde_json::json!({
                    "locked_until": state.locked_until.map(OffsetDateTime::unix_timestamp)
                })),
        )
        .await?;
        tracing::warn!(request_id = %meta.request_id, "account locked after repeated failed second factors");
        crate::metrics::lockout();
    }
    login_history::record(
        &mut uow,
        user,
        LoginResult::MfaFailure,
        factor.login_method(),
    )
    .await?;
    uow.commit().await?;
    crate::metrics::login(LoginResult::MfaFailure);
    tokio::time::sleep(lockout::delay(&s.settings, state.failures)).await;
    Err(if replayed {
        AppError::Unauthenticated {
            code: code::CODE_ALREADY_USED,
            message: "this code was already used; wait for the next one".into(),
        }
    } else {
        AppError::Unauthenticated {
            code: code::INVALID_CODE,
            message: "the code is incorrect".into(),
        }
    })
}
