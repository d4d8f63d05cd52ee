//! Second factors: TOTP authenticators and recovery codes (enrolment, status, removal), and the
//! sign-in challenge that asks for one after a correct password ([`challenge`]).
//!
//! Threat: a stolen or guessed password. Invariants:
//! - A TOTP secret is stored encrypted with the key ring (bound to the user) and is inactive
//!   until a code from the authenticator confirms it; each 30-second step is accepted at most
//!   once per user (`totp_credentials.last_step`, advanced by one conditional UPDATE).
//! - Recovery codes are shown once, stored as keyed MACs, and spent by one conditional UPDATE.
//! - Every change needs the user's own session (never an API key or an impersonation) and the
//!   password; removing a factor also needs a code. Every change is audited and mailed.
//! - The last factor cannot be removed while the user must have one (`409 2fa_required`).

pub mod challenge;
pub mod recovery;
pub mod totp;

use super::restriction::second_factor_required;
use super::sessions::hash_error;
use super::{cache, Principal, RequestMeta};
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::mail::{self, Mail};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::UserId;
use palisade_store::auth_changes::ChangeKind;
use palisade_store::{two_factor as rows, users, Scope, Tx, UserScope};
use serde::Serialize;
use utoipa::ToSchema;

/// The second factors a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: i64,
    pub recovery_codes_left: i64,
}

impl Factors {
    /// Whether the user has a second factor (recovery codes alone are not one).
    pub fn any(self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// What a sign-in challenge may be completed with, in the order clients should offer them.
    pub fn methods(self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.totp {
            m.push(challenge::METHOD_TOTP);
        }
        if self.passkeys > 0 {
            m.push(challenge::METHOD_PASSKEY);
        }
        if self.any() && self.recovery_codes_left > 0 {
            m.push(challenge::METHOD_RECOVERY_CODE);
        }
        m
    }
}

/// The user's factors, read in `tx`.
pub async fn factors<S: Scope>(tx: &mut Tx<S>, user: UserId) -> AppResult<Factors> {
    let totp = rows::find_totp(tx, user)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some());
    let recovery_codes_left =
        i64::try_from(rows::unused_recovery_codes(tx, user).await?.len()).unwrap_or(i64::MAX);
    let passkeys = i64::try_from(
        palisade_store::passkeys::list_for_user(tx, user)
            .await?
            .len(),
    )
    .unwrap_or(i64::MAX);
    Ok(Factors {
        totp,
        passkeys,
        recovery_codes_left,
    })
}

/// `GET /api/v1/auth/2fa`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TwoFactorStatusResponse)]
pub struct TwoFactorStatus {
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: i64,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
    /// Whether this user must have a second factor (the tenant's `require_2fa`; super admins
    /// in production).
    pub required: bool,
}

/// What `totp/setup` answers: the secret three ways.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TotpSetupResponse)]
pub struct TotpSetup {
    /// The secret in base32 (RFC 4648, no padding), to type into an authenticator.
    pub secret: String,
    /// `otpauth://totp/Palisade:<email>?secret=…&issuer=Palisade&algorithm=SHA1&digits=6&period=30`
    pub otpauth_uri: String,
    /// The `otpauth_uri` as a QR code: an SVG document.
    pub qr_svg: String,
}

/// Ten new recovery codes, shown only in this answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RecoveryCodesResponse)]
pub struct RecoveryCodes {
    /// Each works once, in place of a TOTP code (`XXXXX-XXXXX`; case and dashes do not matter).
    pub recovery_codes: Vec<String>,
}

/// Refuses API keys and impersonations: factors belong to the person signed in.
fn own_session(p: &Principal) -> AppResult<()> {
    p.session_id()?;
    if p.impersonator.is_some() {
        return Err(AppError::Forbidden {
            code: code::IMPERSONATION_FORBIDDEN,
            message: "an impersonation cannot see or change the user's second factors".into(),
        });
    }
    Ok(())
}

/// The per-user budget for changes to second factors (each checks the password).
async fn limit(s: &Services, p: &Principal) -> AppResult<()> {
    s.limits
        .two_factor
        .check(&p.user_id.as_uuid())
        .await
        .map_err(|wait| AppError::rate_limited("too many two-factor changes; slow down", wait))
}

/// The gate of a change to one's own second factors: one's own session (not an impersonation),
/// under the rate limit, with the password again ([`check_password`]).
async fn reauthenticate(s: &Services, p: &Principal, password: &str) -> AppResult<users::User> {
    own_session(p)?;
    limit(s, p).await?;
    check_password(s, p, password).await
}

/// Re-authentication: the user's password, checked before any transaction is open (`422` on
/// `password` when wrong). Used by every change of a second factor, passkeys included.
pub(crate) async fn check_password(
    s: &Services,
    p: &Principal,
    password: &str,
) -> AppResult<users::User> {
    let user = {
        let mut tx = s.store.begin_read(p.own_scope()).await?;
        users::find(&mut tx, p.user_id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or(AppError::NotFound("user"))?
    };
    let ok = s
        .hasher
        .verify(password, user.password_hash.as_deref())
        .await
        .map_err(hash_error)?;
    if !ok.ok() {
        return Err(AppError::field("password", "is incorrect"));
    }
    Ok(user)
}

pub(crate) fn required(s: &Services, p: &Principal) -> bool {
    second_factor_required(&s.settings, &p.user, p.tenant.as_deref())
}

/// The user's second factors changed: every node re-reads them (restricted sessions open up
/// or close at once).
pub(crate) async fn factors_changed<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: UserId,
) -> AppResult<()> {
    let now = uow.now();
    cache::record(uow.tx(), ChangeKind::User, user.as_uuid(), now).await?;
    uow.after_commit(move |s| s.auth_cache.forget_user(user));
    Ok(())
}

fn invalid_code() -> AppError {
    AppError::Unprocessable {
        code: code::INVALID_CODE,
        message: "the code is incorrect".into(),
    }
}

fn code_already_used() -> AppError {
    AppError::Unprocessable {
        code: code::CODE_ALREADY_USED,
        message: "this code was already used; wait for the next one".into(),
    }
}

/// `GET /api/v1/auth/2fa`.
pub async fn status(s: &Services, p: &Principal) -> AppResult<TwoFactorStatus> {
    own_session(p)?;
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    let f = factors(&mut tx, p.user_id).await?;
    Ok(TwoFactorStatus {
        totp: f.totp,
        passkeys: f.passkeys,
        recovery_codes_left: f.recovery_codes_left,
        required: required(s, p),
    })
}

/// Starts (or restarts) TOTP enrolment: a new secret, inactive until confirmed.
pub async fn setup_totp(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    password: &str,
) -> AppResult<TotpSetup> {
    let user = reauthenticate(s, p, password).await?;
    let (enrolment, sealed) = totp::generate(s, user.id, &user.email)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    if !rows::put_pending_totp(uow.tx(), user.tenant_id, user.id, &sealed, now).await? {
        return Err(AppError::conflict(
            code::TOTP_ALREADY_ENABLED,
            "TOTP is already active; disable it first to move to another authenticator",
        ));
    }
    uow.audit(
        uow.entry("auth.2fa.totp_setup_started")
            .target("user", user.id),
    )
    .await?;
    uow.commit().await?;
    Ok(TotpSetup {
        secret: enrolment.secret,
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg: enrolment.qr_svg,
    })
}

/// New recovery codes for `user`, replacing every old one, in the unit's transaction.
async fn new_recovery_codes(
    uow: &mut UnitOfWork<'_, UserScope>,
    user: &users::User,
) -> AppResult<Vec<String>> {
    let s = uow.services();
    let now = uow.now();
    let codes: Vec<String> = (0..recovery::COUNT)
        .map(|_| recovery::generate_code())
        .collect();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| recovery::hash(s, user.id, c))
        .collect();
    rows::replace_recovery_codes(uow.tx(), user.tenant_id, user.id, &hashes, now).await?;
    Ok(codes)
}

/// Confirms the pending authenticator with a code from it; answers the recovery codes.
pub async fn confirm_totp(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    code: &str,
) -> AppResult<RecoveryCodes> {
    own_session(p)?;
    limit(s, p).await?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    let user = users::find(uow.tx(), p.user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let pending = match rows::find_totp(uow.tx(), user.id).await? {
        None => return Err(AppError::conflict(
            code::TOTP_NOT_SET_UP,
            "there is no TOTP setup to confirm; start one with POST /api/v1/auth/2fa/totp/setup",
        )),
        Some(t) if t.confirmed_at.is_some() => {
            return Err(AppError::conflict(
                code::TOTP_ALREADY_ENABLED,
                "TOTP is already active",
            ))
        }
        Some(t) => t,
    };
    let steps = totp::matching_steps(s, user.id, &pending.secret, code, now)?;
    let Some(step) = steps.first().copied() else {
        return Err(invalid_code());
    };
    if !rows::confirm_totp(uow.tx(), user.id, step, now).await? {
        // Another request confirmed it (or removed it) first.
        return Err(AppError::conflict(
            code::TOTP_ALREADY_ENABLED,
            "TOTP was confirmed by another request",
        ));
    }
    let codes = new_recovery_codes(&mut uow, &user).await?;
    factors_changed(&mut uow, user.id).await?;
    uow.audit(uow.entry("auth.2fa.totp_enabled").target("user", user.id))
        .await?;
    mail::queue(
        &mut uow,
        Mail::compose(
            "2fa_enabled",
            &user.email,
            "Two-factor authentication is on for your Palisade account",
        )
        .user(user.id)
        .paragraph(
            "Two-factor authentication was turned on for your Palisade account: signing in now \
             needs a code from your authenticator app after your password.",
        )
        .paragraph(
            "Keep your recovery codes somewhere safe. If you did not do this, change your \
             password and contact your administrator at once.",
        ),
    )
    .await?;
    uow.commit().await?;
    Ok(RecoveryCodes {
        recovery_codes: codes,
    })
}

/// Ten new recovery codes; the old ones stop working.
pub async fn regenerate_recovery_codes(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    password: &str,
) -> AppResult<RecoveryCodes> {
    let user = reauthenticate(s, p, password).await?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    if !factors(uow.tx(), user.id).await?.any() {
        return Err(AppError::conflict(
            code::TOTP_NOT_ENABLED,
            "recovery codes stand in for a second factor; set one up first",
        ));
    }
    let codes = new_recovery_codes(&mut uow, &user).await?;
    uow.audit(
        uow.entry("auth.2fa.recovery_codes_regenerated")
            .target("user", user.id),
    )
    .await?;
    mail::queue(
        &mut uow,
        Mail::compose(
            "recovery_codes_regenerated",
            &user.email,
            "New recovery codes for your Palisade account",
        )
        .user(user.id)
        .paragraph(
            "New recovery codes were created for your Palisade account; the previous ones no \
             longer work.",
        )
        .paragraph("If you did not do this, change your password and contact your administrator."),
    )
    .await?;
    uow.commit().await?;
    Ok(RecoveryCodes {
        recovery_codes: codes,
    })
}

/// Spends `code` for `user`: a TOTP code (6 digits) or one of their recovery codes. The
/// caller's transaction decides (a replayed or concurrently spent code does not pass).
pub(crate) async fn spend_code<S: Scope>(
    s: &Services,
    tx: &mut Tx<S>,
    user: UserId,
    code: &str,
    now: time::OffsetDateTime,
) -> AppResult<Spent> {
    let trimmed = code.trim();
    if trimmed.len() == usize::from(totp::DIGITS) && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        spend_totp(s, tx, user, trimmed, now).await
    } else {
        spend_recovery_code(s, tx, user, trimmed, now).await
    }
}

/// How a code was spent, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spent {
    Totp,
    RecoveryCode,
    /// The code matched a step already accepted.
    Replayed,
    Wrong,
}

pub(crate) async fn spend_totp<S: Scope>(
    s: &Services,
    tx: &mut Tx<S>,
    user: UserId,
    code: &str,
    now: time::OffsetDateTime,
) -> AppResult<Spent> {
    let Some(cred) = rows::find_totp(tx, user)
        .await?
        .filter(|t| t.confirmed_at.is_some())
    else {
        return Ok(Spent::Wrong);
    };
    let steps = totp::matching_steps(s, user, &cred.secret, code, now)?;
    if steps.is_empty() {
        return Ok(Spent::Wrong);
    }
    let last = cred.last_step.unwrap_or(i64::MIN);
    match steps.into_iter().find(|st| *st > last) {
        Some(step) if rows::accept_step(tx, user, step).await? => Ok(Spent::Totp),
        _ => Ok(Spent::Replayed),
    }
}

pub(crate) async fn spend_recovery_code<S: Scope>(
    s: &Services,
    tx: &mut Tx<S>,
    user: UserId,
    code: &str,
    now: time::OffsetDateTime,
) -> AppResult<Spent> {
    if recovery::normalise(code).len() != 10 {
        return Ok(Spent::Wrong);
    }
    let unused = rows::unused_recovery_codes(tx, user).await?;
    let hit = unused
        .iter()
        .find(|c| recovery::matches(s, user, code, &c.code_hash));
    match hit {
        Some(c) if rows::use_recovery_code(tx, c.id, now).await? => Ok(Spent::RecoveryCode),
        _ => Ok(Spent::Wrong),
    }
}

/// The mail that tells the user a recovery code was used, in the unit of the sign-in.
pub(crate) async fn mail_recovery_code_used<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &users::User,
    left: i64,
) -> AppResult<()> {
    mail::queue(
        uow,
        Mail::compose(
            "recovery_code_used",
            &user.email,
            "A recovery code was used for your Palisade account",
        )
        .user(user.id)
        .paragraph(format!(
            "A recovery code was just used to sign in to your Palisade account. {left} unused \
             recovery codes are left."
        ))
        .paragraph(
            "If this was not you, change your password, create new recovery codes and contact \
             your administrator at once.",
        ),
    )
    .await?;
    Ok(())
}

/// Removes the TOTP authenticator (and, with no other factor left, the recovery codes). Needs
/// the password and a code (TOTP or recovery).
pub async fn disable_totp(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    password: &str,
    code: &str,
) -> AppResult<()> {
    let user = reauthenticate(s, p, password).await?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    let before = factors(uow.tx(), user.id).await?;
    if !before.totp {
        return Err(AppError::conflict(
            code::TOTP_NOT_ENABLED,
            "TOTP is not active for this account",
        ));
    }
    if before.passkeys == 0 && required(s, p) {
        return Err(AppError::conflict(
            code::TWO_FACTOR_REQUIRED,
            "your organisation requires a second factor; add a passkey before removing TOTP",
        ));
    }
    match spend_code(s, uow.tx(), user.id, code, now).await? {
        Spent::Totp | Spent::RecoveryCode => {}
        Spent::Replayed => return Err(code_already_used()),
        Spent::Wrong => return Err(invalid_code()),
    }
    rows::delete_totp(uow.tx(), user.id).await?;
    if before.passkeys == 0 {
        rows::delete_recovery_codes(uow.tx(), user.id).await?;
    }
    factors_changed(&mut uow, user.id).await?;
    uow.audit(uow.entry("auth.2fa.totp_disabled").target("user", user.id))
        .await?;
    mail::queue(
        &mut uow,
        Mail::compose(
            "2fa_disabled",
            &user.email,
            "Two-factor authentication was turned off for your Palisade account",
        )
        .user(user.id)
        .paragraph(
            "The authenticator app was removed from your Palisade account: signing in no longer \
             asks for its codes.",
        )
        .paragraph(
            "If you did not do this, change your password and contact your administrator at once.",
        ),
    )
    .await?;
    uow.commit().await
}
