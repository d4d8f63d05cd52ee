//! Choosing and changing passwords: policy, history, expiry, invitations, generation.

use super::breach::{self, HibpMode};
use super::sessions::{hash_error, IssuedTokens};
use super::{cache, sessions, tokens, Principal, RequestMeta};
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::mail::{self, Mail};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{PasswordContext, PasswordPolicy, PasswordPolicyPreset};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::{invites, password_history, sessions as session_rows, users};
use palisade_store::{Scope, SystemScope, TenantScope, Tx, UserScope};
use rand::seq::SliceRandom;
use rand::Rng;

/// Refuses a password that breaks the policy's own rules (length, strength, common passwords,
/// composition), listing every failed rule under `field`. No outside call: the CLI uses it as
/// is; every request that sets a password goes through [`check_policy`], which adds the
/// breached-password check.
pub fn check_rules(
    policy: &PasswordPolicy,
    field: &'static str,
    password: &str,
    ctx: &PasswordContext<'_>,
) -> AppResult<()> {
    violations_error(field, policy.check(password, ctx))
}

fn violations_error(
    field: &'static str,
    violations: Vec<palisade_domain::PasswordViolation>,
) -> AppResult<()> {
    if violations.is_empty() {
        return Ok(());
    }
    // A breached password is named by its rule as well as described, so a client finds
    // `breached` among the field's entries exactly as the contract states it.
    Err(AppError::validation(violations.into_iter().flat_map(|v| {
        let rule = (v.rule == "breached").then(|| palisade_domain::FieldError::new(field, v.rule));
        rule.into_iter()
            .chain(std::iter::once(palisade_domain::FieldError::new(
                field, v.message,
            )))
    })))
}

/// What a request that set an acceptable password tells the client besides success: in
/// `warn` mode, `password_breached`.
pub type PasswordWarnings = Vec<&'static str>;

/// The one check every path that sets a password goes through (registration, change,
/// invitation, user creation, reset): the policy's rules ([`check_rules`]) and, unless
/// `PALISADE_HIBP_MODE` is `off`, the breached-password check (`auth::breach`). In `enforce`
/// mode a breached password fails with the rule `breached` listed with the others; in `warn`
/// mode it passes with the warning. When the range API cannot be asked the password passes
/// (fail-open) and the failure is recorded: a tracing warning and the audit record
/// `security.breach_check_failed` (in `tenant`'s chain when known, otherwise the platform's).
/// History (reuse) is checked separately, with the hashes read by the caller.
#[allow(clippy::too_many_arguments)]
pub async fn check_policy(
    s: &Services,
    meta: &RequestMeta,
    tenant: Option<palisade_domain::TenantId>,
    policy: &PasswordPolicy,
    field: &'static str,
    password: &str,
    ctx: &PasswordContext<'_>,
) -> AppResult<PasswordWarnings> {
    let mut violations = policy.check(password, ctx);
    let mode = s.settings.hibp_mode;
    // An oversized password is refused anyway; nothing is sent for it.
    let too_long = password.chars().count() > policy.max_length;
    let warn_only = mode == HibpMode::Warn && !violations.is_empty();
    let mut warnings = PasswordWarnings::new();
    if mode != HibpMode::Off && !too_long && !warn_only {
        match s.breach.is_breached(password).await {
            Ok(false) => {}
            Ok(true) if mode == HibpMode::Enforce => {
                violations.push(palisade_domain::PasswordViolation::breached());
            }
            Ok(true) => warnings.push(breach::PASSWORD_BREACHED),
            Err(e) => breach_check_failed(s, meta, tenant, &e).await?,
        }
    }
    violations_error(field, violations)?;
    Ok(warnings)
}

/// Records that the breached-password check could not run (the password was accepted).
async fn breach_check_failed(
    s: &Services,
    meta: &RequestMeta,
    tenant: Option<palisade_domain::TenantId>,
    e: &breach::BreachCheckError,
) -> AppResult<()> {
    tracing::warn!(
        request_id = %meta.request_id,
        error = %e,
        "breached-password check failed; the password was accepted without it"
    );
    let mut uow = UnitOfWork::anonymous(s, meta, SystemScope::new("password.breach_check")).await?;
    if let Some(t) = tenant {
        uow.set_tenant(t);
    }
    uow.audit(
        uow.entry("security.breach_check_failed")
            .metadata(serde_json::json!({ "reason": e.reason() })),
    )
    .await?;
    uow.commit().await
}

/// The hashes a new password must not match: the current one and the last `policy.history`.
pub(crate) async fn previous_hashes<S: Scope>(
    tx: &mut Tx<S>,
    user: &users::User,
    policy: &PasswordPolicy,
) -> AppResult<Vec<String>> {
    let mut previous = password_history::recent(tx, user.id, policy.history).await?;
    if let Some(current) = &user.password_hash {
        previous.insert(0, current.clone());
    }
    previous.truncate(policy.history.max(1));
    Ok(previous)
}

/// Refuses a password equal to one of `previous` (hashes read beforehand: no transaction is
/// open while they are verified).
pub(crate) async fn check_reuse(
    s: &Services,
    previous: &[String],
    policy: &PasswordPolicy,
    field: &'static str,
    password: &str,
) -> AppResult<()> {
    for old in previous {
        if s.hasher
            .verify(password, Some(old))
            .await
            .map_err(hash_error)?
            .ok()
        {
            return Err(AppError::validation([palisade_domain::FieldError::new(
                field,
                palisade_domain::PasswordViolation::reused(policy.history).message,
            )]));
        }
    }
    Ok(())
}

pub(crate) async fn policy_for(
    s: &Services,
    tenant: Option<palisade_domain::TenantId>,
) -> AppResult<(PasswordPolicyPreset, String)> {
    match tenant {
        Some(t) => {
            let snap = super::tenant_snapshot(s, t).await?;
            Ok((snap.password_policy, snap.name.clone()))
        }
        None => Ok((PasswordPolicyPreset::Modern, String::new())),
    }
}

/// The "your password was changed" mail, queued with every change of a password (by its owner
/// or by a reset): if it was not them, they learn at once and can reset it.
pub(crate) async fn queue_changed_mail<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &users::User,
    how: &str,
) -> AppResult<()> {
    let when = palisade_domain::rfc3339(uow.now());
    let reset = mail::link(uow.services(), "/forgot-password", &[]);
    let m = Mail::compose(
        "password_changed",
        &user.email,
        "Your Palisade password was changed",
    )
    .user(user.id)
    .paragraph(format!(
        "Hello {}, the password of your Palisade account was {how} at {when} (UTC).",
        user.name
    ))
    .paragraph(
        "If this was you, there is nothing to do. If it was not, reset your password at once          and tell your administrator:",
    )
    .action("Reset your password", reset);
    mail::queue(uow, m).await?;
    Ok(())
}

/// What changing a password did.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// Other sessions of the user that were signed out.
    pub other_sessions_revoked: usize,
    pub warnings: PasswordWarnings,
}

/// Changes the signed-in user's password and signs out their other sessions.
pub async fn change(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    current: &str,
    new: &str,
) -> AppResult<PasswordChange> {
    let session = p.session_id()?;
    if p.impersonator.is_some() {
        return Err(AppError::Forbidden {
            code: code::IMPERSONATION_FORBIDDEN,
            message: "an impersonation cannot change passwords".into(),
        });
    }
    let (preset, tenant_name) = policy_for(s, p.tenant_id()).await?;
    let policy = preset.policy();
    // Read, verify and hash before the write transaction: argon2 inside it would hold the
    // database (on SQLite, every tenant's writes) for the length of several hashes.
    let (user, previous) = {
        let mut tx = s.store.begin_read(p.own_scope()).await?;
        let user = users::find(&mut tx, p.user_id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let previous = previous_hashes(&mut tx, &user, &policy).await?;
        (user, previous)
    };
    let verified_hash = user.password_hash.clone().unwrap_or_default();
    let ok = s
        .hasher
        .verify(current, user.password_hash.as_deref())
        .await
        .map_err(hash_error)?;
    if !ok.ok() {
        return Err(AppError::field("current_password", "is incorrect"));
    }
    let ctx = PasswordContext {
        email: &user.email,
        name: &user.name,
        tenant_name: &tenant_name,
    };
    let warnings = check_policy(s, meta, p.tenant_id(), &policy, "new_password", new, &ctx).await?;
    check_reuse(s, &previous, &policy, "new_password", new).await?;
    let hash = s.hasher.hash(new).await.map_err(hash_error)?;
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let now = uow.now();
    // The password may have changed while we hashed (another session): the current password was
    // checked against the old hash, so refuse rather than overwrite the newer one.
    if !users::replace_password(uow.tx(), user.id, &verified_hash, &hash, now).await? {
        return Err(AppError::conflict(
            code::PASSWORD_CHANGED,
            "the password was changed while this request ran; sign in again and retry",
        ));
    }
    if let (Some(old), Some(t)) = (&user.password_hash, user.tenant_id) {
        password_history::insert(uow.tx(), t, user.id, old, now).await?;
    }
    let revoked = session_rows::revoke_all_for_user(
        uow.tx(),
        user.id,
        Some(session),
        "password_changed",
        now,
    )
    .await?;
    let n = revoked.len();
    sessions::end_sessions(&mut uow, revoked).await?;
    cache::record(uow.tx(), ChangeKind::User, user.id.as_uuid(), now).await?;
    uow.audit(
        uow.entry("auth.password.changed")
            .target("user", user.id)
            .metadata(serde_json::json!({ "other_sessions_revoked": n })),
    )
    .await?;
    queue_changed_mail(&mut uow, &user, "changed").await?;
    let user_id = user.id;
    uow.after_commit(move |s| s.auth_cache.forget_user(user_id));
    uow.commit().await?;
    Ok(PasswordChange {
        other_sessions_revoked: n,
        warnings,
    })
}

/// Sets the first password of an invited user and signs them in.
pub async fn accept_invite(
    s: &Services,
    meta: &RequestMeta,
    token: &str,
    password: &str,
) -> AppResult<IssuedTokens> {
    let now = s.now();
    let invalid = || AppError::BadRequest {
        code: code::INVALID_INVITE,
        message: "the invitation is invalid, used or expired; ask an admin for a new one".into(),
    };
    if !token.starts_with(tokens::INVITE_PREFIX) || token.len() > 128 {
        return Err(invalid());
    }
    let invite = {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("invite.lookup"))
            .await?;
        invites::find_by_hash(&mut tx, &tokens::secret_hash(token)).await?
    };
    let invite = invite
        .filter(|i| i.used_at.is_none() && i.expires_at > now)
        .ok_or_else(invalid)?;
    let (preset, tenant_name) = policy_for(s, Some(invite.tenant_id)).await?;
    let scope = UserScope::Tenant(TenantScope::from_verified_credential(invite.tenant_id));
    let user = {
        let mut tx = s.store.begin_read(scope).await?;
        users::find(&mut tx, invite.user_id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(invalid)?
    };
    let ctx = PasswordContext {
        email: &user.email,
        name: &user.name,
        tenant_name: &tenant_name,
    };
    let warnings = check_policy(
        s,
        meta,
        Some(invite.tenant_id),
        &preset.policy(),
        "password",
        password,
        &ctx,
    )
    .await?;
    // Hashed before the write transaction; the invitation's single use is enforced in it
    // (`mark_used` succeeds for one caller only) and the user re-checked.
    let hash = s.hasher.hash(password).await.map_err(hash_error)?;
    let mut uow = UnitOfWork::anonymous(s, meta, scope).await?;
    let now = uow.now();
    let user = users::find(uow.tx(), invite.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(invalid)?;
    if !invites::mark_used(uow.tx(), invite.id, now).await? {
        return Err(invalid());
    }
    users::set_password(uow.tx(), user.id, &hash, now).await?;
    // The invitation reached them by mail (or by an admin who knew the address): either way the
    // person setting the password holds the link sent to this address.
    users::mark_email_verified(uow.tx(), user.id, now).await?;
    let (session, refresh) = sessions::start(&mut uow, &user).await?;
    uow.audit(sessions::as_user(
        uow.entry("auth.invite.accepted").target("user", user.id),
        &user,
    ))
    .await?;
    cache::record(uow.tx(), ChangeKind::User, user.id.as_uuid(), now).await?;
    let user_id = user.id;
    uow.after_commit(move |s| s.auth_cache.forget_user(user_id));
    uow.commit().await?;
    let mut fresh = user.clone();
    fresh.password_changed_at = Some(now);
    let mut tokens = sessions::issue(s, &fresh, &session, refresh, false, now)?;
    tokens.warnings = warnings;
    Ok(tokens)
}

/// A random 24-character password with every character class, which passes every preset.
pub fn generate() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#$%&*+-=?@^_~";
    let mut rng = rand::rngs::OsRng;
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut out: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL]
        .iter()
        .filter_map(|set| set.choose(&mut rng).copied())
        .collect();
    while out.len() < 24 {
        if let Some(c) = all.get(rng.gen_range(0..all.len())) {
            out.push(*c);
        }
    }
    out.shuffle(&mut rng);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_pass_the_compliance_preset() {
        let policy = PasswordPolicyPreset::Compliance.policy();
        for _ in 0..20 {
            let p = generate();
            assert_eq!(p.len(), 24);
            assert!(
                policy.check(&p, &PasswordContext::default()).is_empty(),
                "{p}"
            );
        }
        assert_ne!(generate(), generate());
    }
}
