//! Password reset by mail: `forgot` mails a single-use link, `reset` sets a new password with it.
//!
//! Threats: account enumeration, token theft or replay, and a reset that leaves an attacker
//! signed in. Invariants:
//! - `forgot` answers the same, at once, for every address: the lookup, the per-email limit
//!   and the mail happen in a task spawned after the answer is decided, so neither the status,
//!   the body nor the time to answer depends on whether an account exists.
//! - A token is stored as a SHA-256 hash, lives [`TOKEN_TTL`], is spent by one conditional
//!   UPDATE (exactly one of two concurrent resets wins), and a newer token voids the older.
//! - A reset applies the tenant's password policy (history included), revokes every session of
//!   the user, lifts a login lock, verifies the address (the link reached it) and mails the user.

use super::passwords::{check_policy, check_reuse, policy_for, previous_hashes};
use super::sessions::{as_user, end_sessions, hash_error};
use super::{cache, lockout, tokens, RequestMeta};
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::mail::{self, Mail};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{PasswordContext, PasswordResetId};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::password_resets::{self, PasswordReset};
use palisade_store::{password_history, sessions, users};
use palisade_store::{SystemScope, UserScope};

/// How long a reset link works.
pub const TOKEN_TTL: time::Duration = time::Duration::minutes(30);
/// Reset mails per account per hour; beyond it requests are answered the same but send nothing.
pub const MAILS_PER_EMAIL_PER_HOUR: usize = 5;

/// Starts a reset for `email` if it names a live account: returns at once (the caller answers
/// `202` whatever happens) and does the work in the background.
pub fn forgot(s: &Services, meta: &RequestMeta, email: &str) {
    let (s, meta) = (s.clone(), meta.clone());
    let email = email.trim().to_lowercase();
    tokio::spawn(async move {
        if let Err(e) = send_link(&s, &meta, &email).await {
            tracing::error!(request_id = %meta.request_id, error = %e, "could not start a password reset");
        }
    });
}

async fn send_link(s: &Services, meta: &RequestMeta, email: &str) -> AppResult<()> {
    if email.is_empty() || email.len() > 254 {
        return Ok(());
    }
    let found = {
        let mut tx = s.store.begin_read(SystemScope::new("reset.lookup")).await?;
        users::find_by_email(&mut tx, email).await?
    };
    let Some(found) = found.filter(|u| u.deleted_at.is_none()) else {
        return Ok(());
    };
    if let Some(t) = found.tenant_id {
        if super::tenant_snapshot(s, t).await?.suspended {
            return Ok(());
        }
    }
    let mut uow = UnitOfWork::anonymous(s, meta, UserScope::for_tenant(found.tenant_id)).await?;
    let now = uow.now();
    // Locked: concurrent requests for one account count each other.
    let Some(user) = users::find_for_update(uow.tx(), found.id)
        .await?
        .filter(|u| u.deleted_at.is_none())
    else {
        return Ok(());
    };
    let recent =
        password_resets::issued_since(uow.tx(), user.id, now - time::Duration::hours(1)).await?;
    if recent.len() >= MAILS_PER_EMAIL_PER_HOUR {
        uow.audit(
            uow.entry("auth.password.reset_throttled")
                .target("user", user.id),
        )
        .await?;
        return uow.commit().await;
    }
    password_resets::void_all(uow.tx(), user.id, now).await?;
    let token = tokens::new_secret(tokens::PASSWORD_RESET_PREFIX);
    let reset = PasswordReset {
        id: PasswordResetId::new(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        expires_at: now + TOKEN_TTL,
        used_at: None,
    };
    password_resets::insert(uow.tx(), &reset, &tokens::secret_hash(&token), now).await?;
    let link = mail::link(s, "/reset-password", &[("token", &token)]);
    let m = Mail::compose(
        "password_reset",
        &user.email,
        "Reset your Palisade password",
    )
    .user(user.id)
    .paragraph(format!(
        "Hello {}, someone asked to reset the password of your Palisade account.",
        user.name
    ))
    .action("Choose a new password", link)
    .paragraph(
        "The link works once, for 30 minutes. If you did not ask, ignore this mail: your \
             password stays as it is.",
    );
    mail::queue(&mut uow, m).await?;
    uow.audit(
        uow.entry("auth.password.reset_requested")
            .target("user", user.id),
    )
    .await?;
    uow.commit().await
}

fn invalid_token() -> AppError {
    AppError::BadRequest {
        code: code::INVALID_TOKEN,
        message: "the reset link is invalid, used or expired; ask for a new one".into(),
    }
}

/// What a reset did.
#[derive(Debug, Clone)]
pub struct ResetDone {
    /// Sessions of the user that were signed out (all of them).
    pub sessions_revoked: usize,
    /// `password_breached` when the password was accepted with that warning.
    pub warnings: super::passwords::PasswordWarnings,
}

/// Sets a new password with a reset token.
pub async fn reset(
    s: &Services,
    meta: &RequestMeta,
    token: &str,
    new_password: &str,
) -> AppResult<ResetDone> {
    if !token.starts_with(tokens::PASSWORD_RESET_PREFIX) || token.len() > 128 {
        return Err(invalid_token());
    }
    let now = s.now();
    let found = {
        let mut tx = s.store.begin_read(SystemScope::new("reset.lookup")).await?;
        password_resets::find_by_hash(&mut tx, &tokens::secret_hash(token)).await?
    };
    let found = found
        .filter(|r| r.used_at.is_none() && r.expires_at > now)
        .ok_or_else(invalid_token)?;
    let scope = UserScope::for_tenant(found.tenant_id);
    let (preset, tenant_name) = policy_for(s, found.tenant_id).await?;
    let policy = preset.policy();
    // Read and hash before the write transaction (see `passwords::change`).
    let (user, previous) = {
        let mut tx = s.store.begin_read(scope).await?;
        let user = users::find(&mut tx, found.user_id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(invalid_token)?;
        let previous = previous_hashes(&mut tx, &user, &policy).await?;
        (user, previous)
    };
    let ctx = PasswordContext {
        email: &user.email,
        name: &user.name,
        tenant_name: &tenant_name,
    };
    let warnings = check_policy(
        s,
        meta,
        user.tenant_id,
        &policy,
        "new_password",
        new_password,
        &ctx,
    )
    .await?;
    check_reuse(s, &previous, &policy, "new_password", new_password).await?;
    let hash = s.hasher.hash(new_password).await.map_err(hash_error)?;

    let mut uow = UnitOfWork::anonymous(s, meta, scope).await?;
    let now = uow.now();
    let user = users::find_for_update(uow.tx(), found.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(invalid_token)?;
    if !password_resets::consume(uow.tx(), found.id, now).await? {
        return Err(invalid_token());
    }
    password_resets::void_all(uow.tx(), user.id, now).await?;
    users::set_password(uow.tx(), user.id, &hash, now).await?;
    if let (Some(old), Some(t)) = (&user.password_hash, user.tenant_id) {
        password_history::insert(uow.tx(), t, user.id, old, now).await?;
    }
    // The link reached the address: that proves it as well as a code would.
    users::mark_email_verified(uow.tx(), user.id, now).await?;
    let revoked =
        sessions::revoke_all_for_user(uow.tx(), user.id, None, "password_reset", now).await?;
    let n = revoked.len();
    end_sessions(&mut uow, revoked).await?;
    cache::record(uow.tx(), ChangeKind::User, user.id.as_uuid(), now).await?;
    super::passwords::queue_changed_mail(&mut uow, &user, "reset with a link sent by mail").await?;
    uow.audit(as_user(
        uow.entry("auth.password.reset")
            .target("user", user.id)
            .metadata(serde_json::json!({ "sessions_revoked": n })),
        &user,
    ))
    .await?;
    let user_id = user.id;
    uow.after_commit(move |s| s.auth_cache.forget_user(user_id));
    uow.commit().await?;

    // A lock on the account is lifted: whoever holds the mailbox proved to be the owner.
    lockout::clear(s, meta, &user.email).await?;
    Ok(ResetDone {
        sessions_revoked: n,
        warnings,
    })
}
