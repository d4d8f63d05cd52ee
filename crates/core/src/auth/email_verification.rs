//! Email verification by a 6-digit code sent by mail.
//!
//! Threat: an account bound to an address its holder does not read (a typo, someone else's
//! address). Invariants:
//! - Only a keyed MAC of a code is stored, bound to its user; a code lives [`CODE_TTL`], is used
//!   once, dies after [`MAX_WRONG_TRIES`] wrong tries, and a newer code voids the older ones.
//! - A wrong try is counted by one conditional UPDATE, so concurrent guesses share the budget;
//!   a right code is consumed by one conditional UPDATE, so two requests cannot both use it.
//! - Resent codes: at most one a minute and [`RESENDS_PER_HOUR`] an hour per user, counted in
//!   the database (under the user's row lock), so every node and a restart agree.

use super::cache;
use super::{Principal, RequestMeta};
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::mail::{self, Mail};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{EmailCodeId, EventType, UserId};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::email_codes::{self, NewCode, Reason};
use palisade_store::users::{self, User};
use palisade_store::Scope;
use rand::Rng;

/// How long a code works.
pub const CODE_TTL: time::Duration = time::Duration::minutes(10);
/// Wrong tries after which a code is dead.
pub const MAX_WRONG_TRIES: i64 = 5;
/// Resent codes per user per hour (and never two within a minute).
pub const RESENDS_PER_HOUR: usize = 5;

const MAC_LABEL: &[u8] = b"email_verification_code";

fn code_mac_input(user: UserId, code: &str) -> Vec<u8> {
    format!("{user}:{code}").into_bytes()
}

fn invalid_code() -> AppError {
    AppError::Unprocessable {
        code: code::INVALID_CODE,
        message: "the code is wrong, expired or already used; check the latest mail or ask for a \
                  new code with POST /api/v1/auth/email/resend"
            .into(),
    }
}

fn too_many_attempts() -> AppError {
    AppError::TooManyRequests {
        code: code::TOO_MANY_ATTEMPTS,
        message: "this code had too many wrong tries and no longer works; ask for a new one with \
                  POST /api/v1/auth/email/resend"
            .into(),
        retry_after_secs: 0,
    }
}

/// Only the user themself, signed in: never an API key, never an impersonation.
fn own_session(p: &Principal) -> AppResult<()> {
    p.session_id()?;
    if p.impersonator.is_some() {
        return Err(AppError::Forbidden {
            code: code::IMPERSONATION_FORBIDDEN,
            message: "an impersonation cannot verify the user's email address".into(),
        });
    }
    Ok(())
}

/// Creates a new code for `user` (voiding the older ones) and queues its mail, in the unit's
/// transaction: the mail exists exactly when the code does.
pub(crate) async fn send_code<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &User,
    reason: Reason,
) -> AppResult<()> {
    let now = uow.now();
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
    let hash = uow
        .services()
        .keys
        .mac(MAC_LABEL, &code_mac_input(user.id, &code));
    email_codes::void_all(uow.tx(), user.id, now).await?;
    email_codes::insert(
        uow.tx(),
        NewCode {
            id: EmailCodeId::new(),
            tenant_id: user.tenant_id,
            user_id: user.id,
            code_hash: &hash,
            reason,
            expires_at: now + CODE_TTL,
        },
        now,
    )
    .await?;
    let mail = Mail::compose(
        "email_verification",
        &user.email,
        "Verify your email address for Palisade",
    )
    .user(user.id)
    .paragraph(format!(
        "Hello {}, enter this code in Palisade to confirm that this address is yours:",
        user.name
    ))
    .code(code)
    .paragraph(
        "The code works once, for 10 minutes. If you did not create a Palisade account, ignore \
         this mail.",
    );
    mail::queue(uow, mail).await?;
    Ok(())
}

/// Verifies the signed-in user's address with `code`. An address that is already verified
/// answers as a success (the request's goal holds) without looking at the code.
pub async fn verify(s: &Services, p: &Principal, meta: &RequestMeta, code: &str) -> AppResult<()> {
    own_session(p)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    let user = users::find_for_update(uow.tx(), p.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AppError::NotFound("user"))?;
    if user.email_verified_at.is_some() {
        return Ok(());
    }
    let current = email_codes::current(uow.tx(), user.id)
        .await?
        .filter(|c| c.expires_at > now)
        .ok_or_else(invalid_code)?;
    if current.attempts >= MAX_WRONG_TRIES {
        return Err(too_many_attempts());
    }
    let code = code.trim();
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let right = well_formed
        && s.keys.mac_matches(
            MAC_LABEL,
            &code_mac_input(user.id, code),
            &current.code_hash,
        );
    if !right {
        if !email_codes::record_wrong_try(uow.tx(), current.id, MAX_WRONG_TRIES).await? {
            // Concurrent wrong tries spent the budget first.
            return Err(too_many_attempts());
        }
        uow.audit(
            uow.entry("auth.email.code_rejected")
                .target("user", user.id)
                .metadata(serde_json::json!({ "wrong_tries": current.attempts + 1 })),
        )
        .await?;
        uow.commit().await?;
        return Err(invalid_code());
    }
    if !email_codes::consume(uow.tx(), current.id, MAX_WRONG_TRIES, now).await? {
        return Err(invalid_code());
    }
    users::mark_email_verified(uow.tx(), user.id, now).await?;
    email_codes::void_all(uow.tx(), user.id, now).await?;
    cache::record(uow.tx(), ChangeKind::User, user.id.as_uuid(), now).await?;
    uow.audit(uow.entry("auth.email.verified").target("user", user.id))
        .await?;
    if user.tenant_id.is_some() {
        let mut after = user.clone();
        after.email_verified_at = Some(now);
        after.updated_at = now;
        uow.emit(
            EventType::UserUpdated,
            &crate::users::UserView::from(&after),
        )
        .await?;
    }
    let user_id = user.id;
    uow.after_commit(move |s| s.auth_cache.forget_user(user_id));
    uow.commit().await
}

/// Mails the signed-in user a new code (the older ones stop working).
pub async fn resend(s: &Services, p: &Principal, meta: &RequestMeta) -> AppResult<()> {
    own_session(p)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    // Locked: two concurrent resends count each other.
    let user = users::find_for_update(uow.tx(), p.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AppError::NotFound("user"))?;
    if user.email_verified_at.is_some() {
        return Err(AppError::conflict(
            code::ALREADY_VERIFIED,
            "your email address is already verified",
        ));
    }
    let hour = time::Duration::hours(1);
    let minute = time::Duration::minutes(1);
    let recent = email_codes::sent_since(uow.tx(), user.id, Reason::Resend, now - hour).await?;
    // Whole seconds, rounded up: waiting that long is always enough.
    let wait = |since: time::OffsetDateTime, window: time::Duration| {
        let d = since + window - now;
        let secs = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
        u64::try_from(secs).unwrap_or(0).max(1)
    };
    if let Some(last) = recent.first().filter(|t| **t > now - minute) {
        return Err(AppError::rate_limited(
            "a code was sent less than a minute ago; wait before asking again",
            wait(*last, minute),
        ));
    }
    if let Some(oldest) = recent.get(RESENDS_PER_HOUR - 1) {
        return Err(AppError::rate_limited(
            "at most 5 codes an hour; wait before asking again",
            wait(*oldest, hour),
        ));
    }
    send_code(&mut uow, &user, Reason::Resend).await?;
    uow.audit(uow.entry("auth.email.code_sent").target("user", user.id))
        .await?;
    uow.commit().await
}
