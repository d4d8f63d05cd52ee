//! Choosing and changing passwords: policy, history, expiry, invitations, generation.

use super::sessions::{hash_error, IssuedTokens};
use super::{cache, sessions, tokens, Principal, RequestMeta};
use crate::audit::{self, AuditEntryExt};
use crate::{AppError, AppResult, Services};
use palisade_domain::{PasswordContext, PasswordPolicy, PasswordPolicyPreset};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::{
    audit as audit_log, invites, password_history, sessions as session_rows, users,
};
use palisade_store::{Scope, SystemScope, TenantScope, Tx, UserScope};
use rand::seq::SliceRandom;
use rand::Rng;

/// Refuses a password that breaks the policy, listing every failed rule under `field`.
pub fn check_policy(
    policy: &PasswordPolicy,
    field: &'static str,
    password: &str,
    ctx: &PasswordContext<'_>,
) -> AppResult<()> {
    let violations = policy.check(password, ctx);
    if violations.is_empty() {
        return Ok(());
    }
    Err(AppError::validation(violations.into_iter().map(|v| {
        palisade_domain::FieldError::new(field, v.message)
    })))
}

/// Refuses a password equal to the current one or one of the last `policy.history`.
async fn check_history<S: Scope>(
    s: &Services,
    tx: &mut Tx<S>,
    user: &users::User,
    policy: &PasswordPolicy,
    field: &'static str,
    password: &str,
) -> AppResult<()> {
    let mut previous = password_history::recent(tx, user.id, policy.history).await?;
    if let Some(current) = &user.password_hash {
        previous.insert(0, current.clone());
    }
    previous.truncate(policy.history.max(1));
    for old in previous {
        if s.hasher
            .verify(password, Some(&old))
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

async fn policy_for(
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

/// Changes the signed-in user's password and signs out their other sessions.
pub async fn change(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    current: &str,
    new: &str,
) -> AppResult<usize> {
    let session = p.session_id()?;
    if p.impersonator.is_some() {
        return Err(AppError::Forbidden {
            code: "impersonation_forbidden",
            message: "an impersonation cannot change passwords".into(),
        });
    }
    let now = s.now();
    let mut tx = s.store.begin(p.own_scope()).await?;
    let user = users::find(&mut tx, p.user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let ok = s
        .hasher
        .verify(current, user.password_hash.as_deref())
        .await
        .map_err(hash_error)?;
    if !ok.ok() {
        return Err(AppError::field("current_password", "is incorrect"));
    }
    let (preset, tenant_name) = policy_for(s, p.tenant_id()).await?;
    let policy = preset.policy();
    let ctx = PasswordContext {
        email: &user.email,
        name: &user.name,
        tenant_name: &tenant_name,
    };
    check_policy(&policy, "new_password", new, &ctx)?;
    check_history(s, &mut tx, &user, &policy, "new_password", new).await?;
    let hash = s.hasher.hash(new).await.map_err(hash_error)?;
    if let (Some(old), Some(t)) = (&user.password_hash, user.tenant_id) {
        password_history::insert(&mut tx, t, user.id, old, now).await?;
    }
    users::set_password(&mut tx, user.id, &hash, now).await?;
    let revoked =
        session_rows::revoke_all_for_user(&mut tx, user.id, Some(session), "password_changed", now)
            .await?;
    sessions::revoke_sessions(&mut tx, &revoked, now).await?;
    cache::record(&mut tx, ChangeKind::User, user.id.as_uuid(), now).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "auth.password.changed")
            .target("user", user.id)
            .metadata(serde_json::json!({ "other_sessions_revoked": revoked.len() })),
        now,
    )
    .await?;
    tx.commit().await?;
    for id in &revoked {
        s.auth_cache.revoke_session(*id, now);
    }
    s.auth_cache.forget_user(user.id);
    Ok(revoked.len())
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
        code: "invalid_invite",
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
    let mut tx = s
        .store
        .begin(UserScope::Tenant(TenantScope::from_verified_credential(
            invite.tenant_id,
        )))
        .await?;
    let user = users::find(&mut tx, invite.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or_else(invalid)?;
    let ctx = PasswordContext {
        email: &user.email,
        name: &user.name,
        tenant_name: &tenant_name,
    };
    check_policy(&preset.policy(), "password", password, &ctx)?;
    let hash = s.hasher.hash(password).await.map_err(hash_error)?;
    if !invites::mark_used(&mut tx, invite.id, now).await? {
        return Err(invalid());
    }
    users::set_password(&mut tx, user.id, &hash, now).await?;
    let (session, refresh) = sessions::start(&mut tx, &user, meta, now, s).await?;
    let mut e = audit::entry(meta, user.tenant_id, "auth.invite.accepted").target("user", user.id);
    e.actor_id = Some(user.id);
    e.actor_email = Some(user.email.clone());
    e.actor_role = Some(user.role.as_str().to_owned());
    audit_log::append(&mut tx, &e, now).await?;
    cache::record(&mut tx, ChangeKind::User, user.id.as_uuid(), now).await?;
    tx.commit().await?;
    s.auth_cache.forget_user(user.id);
    let mut fresh = user.clone();
    fresh.password_changed_at = Some(now);
    sessions::issue(s, &fresh, &session, refresh, false, now)
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
