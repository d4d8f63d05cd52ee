//! Managing a tenant's users.
//!
//! Rules (docs/permissions.md has the table):
//! - Admins create users and edit agents; they may promote an agent, but only the owner (or a
//!   super admin) changes another admin's role. Nobody changes their own role or the owner's.
//! - Nobody deletes themself; the owner cannot be deleted before ownership is transferred; an
//!   admin cannot delete another admin — only a super admin deletes admins.
//! - Deletion is soft (`deleted_at`), revokes all the user's sessions at once, and blocks login;
//!   a super admin can restore within the restore window (30 days).
//! - A user of another tenant is "not found", exactly like a missing one.

mod view;

pub use palisade_store::users::User;
pub use view::UserView;

use crate::audit::AuditEntryExt;
use crate::auth::passwords::check_policy;
use crate::auth::sessions::{hash_error, revoke_sessions, user_audit_json};
use crate::auth::{cache, lockout, tokens, Principal, RequestMeta};
use crate::error::{code, FieldErrors};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    EmailAddress, EventType, FieldError, InviteId, PasswordContext, Permission, PersonName, Role,
    TenantId, UserId,
};
use palisade_store::auth_changes::ChangeKind;
use palisade_store::{invites, login_throttle, sessions, users, SystemScope, Tx, UserScope};

/// A created user, with the invitation token when no password was given.
pub struct CreatedUser {
    pub user: User,
    pub invite_token: Option<String>,
    pub invite_expires_at: Option<time::OffsetDateTime>,
    /// `password_breached` when the given password is breached and the check only warns.
    pub warnings: crate::auth::passwords::PasswordWarnings,
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub password: Option<&'a str>,
}

fn parse_tenant_role(field: &'static str, role: &str) -> Result<Role, FieldError> {
    match Role::parse(role) {
        Some(r) if r.is_tenant_role() => Ok(r),
        _ => Err(FieldError::new(field, "must be one of: admin, agent")),
    }
}

async fn visible_user(tx: &mut Tx<UserScope>, p: &Principal, id: UserId) -> AppResult<User> {
    users::find(tx, id)
        .await?
        .filter(|u| u.tenant_id.is_some())
        .filter(|u| u.deleted_at.is_none() || p.role == Role::SuperAdmin)
        .ok_or(AppError::NotFound("user"))
}

/// [`visible_user`], locked until the transaction ends, for a change written back with
/// `users::update` (see `users::find_for_update`).
async fn visible_user_for_update(
    tx: &mut Tx<UserScope>,
    p: &Principal,
    id: UserId,
) -> AppResult<User> {
    users::find_for_update(tx, id)
        .await?
        .filter(|u| u.tenant_id.is_some())
        .filter(|u| u.deleted_at.is_none() || p.role == Role::SuperAdmin)
        .ok_or(AppError::NotFound("user"))
}

pub async fn list(
    s: &Services,
    p: &Principal,
    tenant_filter: Option<TenantId>,
    include_deleted: bool,
) -> AppResult<Vec<User>> {
    p.require(Permission::UsersRead)?;
    if include_deleted {
        p.require(Permission::UsersManage)?;
    }
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    let mut list = users::list(&mut tx, tenant_filter, include_deleted).await?;
    list.retain(|u| u.tenant_id.is_some());
    Ok(list)
}

/// The views of `list` as the caller may see them: for those who may manage users, with
/// `locked_until` on each user whose sign-in is locked now (the lock `unlock` lifts), read in
/// one statement for the whole list. The lock is kept per login name, so it is looked up by
/// the user's email exactly as `unlock` clears it.
pub async fn views(s: &Services, p: &Principal, list: &[User]) -> AppResult<Vec<UserView>> {
    let mut views: Vec<UserView> = list.iter().map(UserView::from).collect();
    if p.require(Permission::UsersManage).is_err() {
        return Ok(views);
    }
    let keys: Vec<Vec<u8>> = list
        .iter()
        .filter(|u| u.deleted_at.is_none())
        .map(|u| lockout::key(&u.email))
        .collect();
    if keys.is_empty() {
        return Ok(views);
    }
    let mut tx = s.store.begin_read(SystemScope::new("users.locks")).await?;
    let locks: std::collections::HashMap<Vec<u8>, time::OffsetDateTime> =
        login_throttle::active_locks(&mut tx, &keys, s.now())
            .await?
            .into_iter()
            .map(|l| (l.key_hash, l.locked_until))
            .collect();
    for (view, user) in views.iter_mut().zip(list) {
        if user.deleted_at.is_none() {
            view.locked_until = locks
                .get(&lockout::key(&user.email))
                .copied()
                .map(palisade_domain::rfc3339);
        }
    }
    Ok(views)
}

pub async fn get(s: &Services, p: &Principal, id: UserId) -> AppResult<User> {
    p.require(Permission::UsersRead)?;
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    visible_user(&mut tx, p, id).await
}

/// Inserts a new account; an email already in use is `409 email_taken`, saying `taken`.
pub(crate) async fn insert_new<S: palisade_store::Scope>(
    tx: &mut Tx<S>,
    user: &User,
    taken: &str,
) -> AppResult<()> {
    users::insert(tx, user).await.map_err(|e| {
        if e.is_unique_violation_on("users", "email") {
            AppError::conflict(code::EMAIL_TAKEN, taken)
        } else {
            e.into()
        }
    })
}

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewUser<'_>,
) -> AppResult<CreatedUser> {
    p.require(Permission::UsersManage)?;
    let scope = p.tenant_scope()?;
    let mut errors = FieldErrors::new();
    let email = errors.check(EmailAddress::parse("email", input.email));
    let name = errors.check(PersonName::parse("name", input.name));
    let role = errors.check(parse_tenant_role("role", input.role));
    let (Some(email), Some(name), Some(role)) = (email, name, role) else {
        return Err(AppError::validation(errors));
    };
    let mut warnings = Vec::new();
    let hash = match input.password {
        Some(pw) => {
            let tenant = crate::auth::tenant_snapshot(s, scope.tenant_id()).await?;
            let ctx = PasswordContext {
                email: email.as_str(),
                name: name.as_str(),
                tenant_name: &tenant.name,
            };
            warnings = check_policy(
                s,
                meta,
                Some(scope.tenant_id()),
                &tenant.password_policy.policy(),
                "password",
                pw,
                &ctx,
            )
            .await?;
            Some(s.hasher.hash(pw).await.map_err(hash_error)?)
        }
        None => None,
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let user = User {
        id: UserId::new(),
        tenant_id: Some(scope.tenant_id()),
        email: email.as_str().to_owned(),
        name: name.as_str().to_owned(),
        role,
        is_owner: false,
        password_changed_at: hash.as_ref().map(|_| now),
        password_hash: hash,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        deleted_by: None,
        email_verified_at: None,
    };
    insert_new(uow.tx(), &user, "a user with this email already exists").await?;
    let (invite_token, invite_expires_at) = if user.password_hash.is_none() {
        let token = tokens::new_secret(tokens::INVITE_PREFIX);
        let ttl =
            time::Duration::try_from(s.settings.invite_ttl).map_err(|e| anyhow::anyhow!("{e}"))?;
        invites::insert(
            uow.tx(),
            InviteId::new(),
            scope.tenant_id(),
            user.id,
            &tokens::secret_hash(&token),
            now,
            now + ttl,
        )
        .await?;
        let link = crate::mail::link(s, "/accept-invite", &[("token", &token)]);
        let inviter = p
            .tenant
            .as_ref()
            .map_or_else(|| "Palisade".to_owned(), |t| t.name.clone());
        let m =
            crate::mail::Mail::compose("invitation", &user.email, "You are invited to Palisade")
                .user(user.id)
                .paragraph(format!(
                    "Hello {}, {} invited you to {inviter} on Palisade.",
                    user.name, p.name
                ))
                .action("Accept the invitation and choose a password", link)
                .paragraph(format!(
                    "The link works once, until {} (UTC).",
                    palisade_domain::rfc3339(now + ttl)
                ));
        crate::mail::queue(&mut uow, m).await?;
        (Some(token), Some(now + ttl))
    } else {
        (None, None)
    };
    uow.audit(
        uow.entry("user.created")
            .target("user", user.id)
            .change(None, Some(user_audit_json(&user)))
            .metadata(serde_json::json!({ "invited": invite_token.is_some() })),
    )
    .await?;
    uow.emit(EventType::UserCreated, &UserView::from(&user))
        .await?;
    uow.commit().await?;
    Ok(CreatedUser {
        user,
        invite_token,
        invite_expires_at,
        warnings,
    })
}

pub struct UserChanges<'a> {
    pub name: Option<&'a str>,
    pub role: Option<&'a str>,
}

/// A write on one of the tenant's users by `p`: audit records and events go to the user's
/// tenant (a super admin acts from no tenant of their own).
async fn begin_on_user<'a>(
    s: &'a Services,
    p: &'a Principal,
    meta: &'a RequestMeta,
    id: UserId,
) -> AppResult<(UnitOfWork<'a, UserScope>, User)> {
    let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
    let before = visible_user_for_update(uow.tx(), p, id).await?;
    if let Some(tenant) = before.tenant_id {
        uow.set_tenant(tenant);
    }
    Ok((uow, before))
}

/// Forgets the user in the authentication cache once the change is durable.
fn forget_after_commit(uow: &mut UnitOfWork<'_, UserScope>, id: UserId) {
    uow.after_commit(move |s| s.auth_cache.forget_user(id));
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: UserId,
    changes: UserChanges<'_>,
) -> AppResult<User> {
    p.require(Permission::UsersManage)?;
    let mut errors = FieldErrors::new();
    let name = errors.check_some(changes.name, |n| PersonName::parse("name", n));
    let role = errors.check_some(changes.role, |r| parse_tenant_role("role", r));
    errors.finish()?;
    let (mut uow, before) = begin_on_user(s, p, meta, id).await?;
    let now = uow.now();
    if before.deleted_at.is_some() {
        return Err(AppError::conflict(
            code::USER_DELETED,
            "restore the user before editing them",
        ));
    }
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n.as_str().to_owned();
    }
    if let Some(r) = role.filter(|r| *r != before.role) {
        if before.id == p.user_id {
            return Err(AppError::forbidden("you cannot change your own role"));
        }
        if before.is_owner {
            return Err(AppError::conflict(
                code::OWNER_ROLE_FIXED,
                "the owner is always an admin; transfer ownership first",
            ));
        }
        if before.role == Role::Admin && !(p.is_owner || p.role == Role::SuperAdmin) {
            return Err(AppError::forbidden(
                "only the owner can change another admin's role",
            ));
        }
        after.role = r;
    }
    after.updated_at = now;
    users::update(uow.tx(), &after).await?;
    // A demoted admin can no longer manage keys, so the keys they made stop working.
    if before.role == Role::Admin && after.role != Role::Admin {
        crate::api_keys::revoke_created_by(&mut uow, id, p.user_id, "creator demoted").await?;
    }
    cache::record(uow.tx(), ChangeKind::User, id.as_uuid(), now).await?;
    let action = if after.role != before.role {
        "user.role_changed"
    } else {
        "user.updated"
    };
    uow.audit(uow.entry(action).target("user", id).change(
        Some(user_audit_json(&before)),
        Some(user_audit_json(&after)),
    ))
    .await?;
    uow.emit(EventType::UserUpdated, &UserView::from(&after))
        .await?;
    forget_after_commit(&mut uow, id);
    uow.commit().await?;
    Ok(after)
}

pub async fn delete(s: &Services, p: &Principal, meta: &RequestMeta, id: UserId) -> AppResult<()> {
    p.require(Permission::UsersManage)?;
    if id == p.user_id {
        return Err(AppError::conflict(
            code::CANNOT_DELETE_SELF,
            "you cannot delete yourself",
        ));
    }
    let (mut uow, before) = begin_on_user(s, p, meta, id).await?;
    let now = uow.now();
    if before.deleted_at.is_some() {
        return Err(AppError::NotFound("user"));
    }
    if before.is_owner {
        return Err(AppError::conflict(
            code::OWNER_CANNOT_BE_DELETED,
            "the owner cannot be deleted; transfer ownership first",
        ));
    }
    if before.role == Role::Admin {
        p.require(Permission::UsersDeleteAdmin)
            .map_err(|_| AppError::forbidden("only a super admin can delete an admin"))?;
    }
    let mut after = before.clone();
    after.deleted_at = Some(now);
    after.deleted_by = Some(p.user_id);
    after.updated_at = now;
    users::update(uow.tx(), &after).await?;
    crate::api_keys::revoke_created_by(&mut uow, id, p.user_id, "creator deleted").await?;
    let revoked = sessions::revoke_all_for_user(uow.tx(), id, None, "user_deleted", now).await?;
    revoke_sessions(uow.tx(), &revoked, now).await?;
    cache::record(uow.tx(), ChangeKind::User, id.as_uuid(), now).await?;
    uow.audit(
        uow.entry("user.deleted")
            .target("user", id)
            .change(
                Some(user_audit_json(&before)),
                Some(user_audit_json(&after)),
            )
            .metadata(serde_json::json!({ "sessions_revoked": revoked.len() })),
    )
    .await?;
    uow.emit(EventType::UserDeleted, &UserView::from(&after))
        .await?;
    uow.after_commit(move |s| {
        for sid in revoked {
            s.auth_cache.revoke_session(sid, now);
        }
    });
    forget_after_commit(&mut uow, id);
    uow.commit().await
}

pub async fn restore(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: UserId,
) -> AppResult<User> {
    p.require(Permission::UsersRestore)?;
    let (mut uow, before) = begin_on_user(s, p, meta, id).await?;
    let now = uow.now();
    let Some(deleted_at) = before.deleted_at else {
        return Err(AppError::conflict(
            code::NOT_DELETED,
            "this user is not deleted",
        ));
    };
    let window =
        time::Duration::try_from(s.settings.restore_window).map_err(|e| anyhow::anyhow!("{e}"))?;
    if now - deleted_at > window {
        return Err(AppError::conflict(
            code::RESTORE_WINDOW_PASSED,
            "this user was deleted more than 30 days ago and can no longer be restored",
        ));
    }
    let mut after = before.clone();
    after.deleted_at = None;
    after.deleted_by = None;
    after.updated_at = now;
    users::update(uow.tx(), &after).await?;
    cache::record(uow.tx(), ChangeKind::User, id.as_uuid(), now).await?;
    uow.audit(uow.entry("user.restored").target("user", id).change(
        Some(user_audit_json(&before)),
        Some(user_audit_json(&after)),
    ))
    .await?;
    forget_after_commit(&mut uow, id);
    uow.commit().await?;
    Ok(after)
}

/// Makes another active user of the tenant its owner (and an admin). The current owner stays an
/// admin. Requires the owner's password, re-entered.
pub async fn transfer_ownership(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: UserId,
    password: &str,
) -> AppResult<User> {
    if !p.is_owner {
        return Err(AppError::forbidden("only the owner can transfer ownership"));
    }
    p.require(Permission::UsersManage)?;
    let scope = p.tenant_scope()?;
    // The password is verified before the write transaction (argon2 inside it would hold every
    // writer on SQLite); the transaction then checks that the hash it was verified against, and
    // the ownership, are still what they were.
    let verified = {
        let mut tx = s.store.begin_read(UserScope::Tenant(scope)).await?;
        users::find(&mut tx, p.user_id)
            .await?
            .ok_or(AppError::NotFound("user"))?
    };
    if !s
        .hasher
        .verify(password, verified.password_hash.as_deref())
        .await
        .map_err(hash_error)?
        .ok()
    {
        return Err(AppError::field("password", "is incorrect"));
    }
    let mut uow = UnitOfWork::begin_in(s, p, meta, UserScope::Tenant(scope)).await?;
    let now = uow.now();
    let me = users::find_for_update(uow.tx(), p.user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if me.password_hash != verified.password_hash {
        return Err(AppError::conflict(
            code::PASSWORD_CHANGED,
            "the password was changed while this request ran; retry with the new one",
        ));
    }
    if !me.is_owner {
        return Err(AppError::forbidden("only the owner can transfer ownership"));
    }
    if id == p.user_id {
        return Err(AppError::conflict(
            code::ALREADY_OWNER,
            "you already own this tenant",
        ));
    }
    let target = visible_user_for_update(uow.tx(), p, id).await?;
    if target.deleted_at.is_some() {
        return Err(AppError::NotFound("user"));
    }
    let mut old_owner = me.clone();
    old_owner.is_owner = false;
    old_owner.updated_at = now;
    users::update(uow.tx(), &old_owner).await?;
    let mut new_owner = target.clone();
    new_owner.is_owner = true;
    new_owner.role = Role::Admin;
    new_owner.updated_at = now;
    users::update(uow.tx(), &new_owner).await?;
    cache::record(uow.tx(), ChangeKind::User, me.id.as_uuid(), now).await?;
    cache::record(uow.tx(), ChangeKind::User, target.id.as_uuid(), now).await?;
    uow.audit(
        uow.entry("tenant.ownership_transferred")
            .target("user", id)
            .change(
                Some(serde_json::json!({ "owner_id": me.id })),
                Some(serde_json::json!({ "owner_id": target.id, "new_owner_previous_role": target.role.as_str() })),
            ),
    )
    .await?;
    let (old_id, new_id) = (me.id, target.id);
    uow.after_commit(move |s| {
        s.auth_cache.forget_user(old_id);
        s.auth_cache.forget_user(new_id);
    });
    uow.commit().await?;
    Ok(new_owner)
}

/// Lifts a login lock on a user of the principal's tenant.
pub async fn unlock(s: &Services, p: &Principal, meta: &RequestMeta, id: UserId) -> AppResult<()> {
    p.require(Permission::UsersManage)?;
    let target = {
        let mut tx = s.store.begin_read(p.own_scope()).await?;
        visible_user(&mut tx, p, id).await?
    };
    let mut uow = UnitOfWork::begin_in(s, p, meta, SystemScope::new("users.unlock")).await?;
    if let Some(tenant) = target.tenant_id {
        uow.set_tenant(tenant);
    }
    login_throttle::clear(uow.tx(), &lockout::key(&target.email)).await?;
    uow.audit(uow.entry("user.unlocked").target("user", id))
        .await?;
    uow.commit().await
}
