//! The login history and the new-device alert.
//!
//! Threat: an account used by someone else without its owner noticing. Invariants:
//! - Every sign-in attempt on an existing account is a row (`success`, `failure`, `locked`,
//!   `mfa_failure`; by `password`, `passkey`, `totp` or `recovery_code`), written by
//!   [`record`] in the attempt's own unit of work, so a row exists exactly when the attempt's
//!   other effects (session, lockout counter, audit record) do. An unknown email leaves no row:
//!   there is nobody to show it to.
//! - A successful sign-in from a device (browser family + OS + /24 or /64 network, see
//!   [`device`]) that this user has not signed in from successfully in the last
//!   [`NEW_DEVICE_WINDOW_DAYS`] days queues a `new_device` mail to the user and the audit record
//!   `auth.login.new_device`, in the same unit. The very first successful sign-in of an account
//!   (no known device at all, which includes the first after registering or accepting an
//!   invitation) does not alert: there is nothing to compare with.
//! - Devices are remembered as a keyed MAC (`login_devices`) for as long as the user exists;
//!   history rows are kept [`RETENTION_DAYS`] days, then pruned by the maintenance worker. So an
//!   account unused for longer than the history still alerts on a new device.
//!
//! The user reads their own history (`GET /api/v1/auth/login-history`), a tenant admin (or a
//! super admin) any user's of the tenant (`GET /api/v1/users/{id}/login-history`). Neither
//! route accepts an API key or an impersonation: the history is an account-security view of
//! where a person signed in from, which support does not need to act on a tenant's data.

pub mod device;
pub mod view;

use super::sessions::as_user;
use super::Principal;
use crate::audit::AuditEntryExt;
use crate::error::code;
use crate::mail::{self, Mail};
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::{
    rfc3339, LoginAttemptId, LoginMethod, LoginResult, Permission, Role, UserId,
};
use palisade_store::login_history::{self as store, LoginAttempt};
use palisade_store::users::User;
use palisade_store::{users, Scope, SystemScope};
use uuid::Uuid;

pub use device::UserAgent;
pub use view::LoginAttemptView;

/// A device not used for this long is new again.
pub const NEW_DEVICE_WINDOW_DAYS: i64 = 90;
/// How long attempts are kept.
pub const RETENTION_DAYS: i64 = 180;
/// Where the new-device mail sends the user to review and end their sessions (the console's
/// page over `GET /api/v1/auth/sessions`).
pub const SESSIONS_PAGE: &str = "/settings/sessions";

/// Records a sign-in attempt on `user` in the attempt's unit of work; on `success`, also
/// alerts on a new device. One call at each end of a sign-in (success, refusal).
pub async fn record<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &User,
    result: LoginResult,
    method: LoginMethod,
) -> AppResult<()> {
    let s = uow.services();
    let now = uow.now();
    let ip = uow.meta().ip;
    let ua = uow
        .meta()
        .user_agent
        .as_deref()
        .map(UserAgent::parse)
        .unwrap_or_default();
    let attempt = LoginAttempt {
        id: LoginAttemptId::new(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        at: now,
        ip: ip.map(|i| i.to_string()),
        browser: ua.browser.clone(),
        os: ua.os.clone(),
        result,
        method,
    };
    if result == LoginResult::Success {
        let hash = s
            .keys
            .mac(b"login-device", device::device_key(&ua, ip).as_bytes());
        let cutoff = now - time::Duration::days(NEW_DEVICE_WINDOW_DAYS);
        // Asked before this device is remembered: the account's very first device is no alert.
        let known_account = store::has_devices(uow.tx(), user.id).await?;
        let previous =
            store::remember_device(uow.tx(), user.tenant_id, user.id, &hash, now).await?;
        if known_account && previous.is_none_or(|at| at < cutoff) {
            alert_new_device(uow, user, &attempt).await?;
        }
    }
    store::insert(uow.tx(), &attempt).await?;
    let (tenant, id, email, ip) = (
        user.tenant_id,
        user.id,
        user.email.clone(),
        attempt.ip.clone(),
    );
    if result == LoginResult::Success {
        let attempt_id = attempt.id;
        uow.after_commit(move |s| {
            crate::detections::login_succeeded(s, tenant, id, email, ip, attempt_id);
        });
    } else {
        uow.after_commit(move |s| crate::detections::login_failed(s, tenant, id, email, ip));
    }
    Ok(())
}

async fn alert_new_device<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    user: &User,
    a: &LoginAttempt,
) -> AppResult<()> {
    let s = uow.services();
    let unknown = "unknown".to_owned();
    let mail = Mail::compose(
        "new_device",
        &user.email,
        "New sign-in to your Palisade account",
    )
    .user(user.id)
    .paragraph("Your Palisade account was just signed in to from a device or network it has not used in the last 90 days.")
    .paragraph(format!("Time: {}", rfc3339(a.at)))
    .paragraph(format!("IP address: {}", a.ip.as_ref().unwrap_or(&unknown)))
    .paragraph(format!("Browser: {}", a.browser.as_ref().unwrap_or(&unknown)))
    .paragraph(format!("Operating system: {}", a.os.as_ref().unwrap_or(&unknown)))
    .paragraph("If this was you, there is nothing to do. If not, end the session below and change your password at once.")
    .action("Review your sessions", mail::link(s, SESSIONS_PAGE, &[]));
    mail::queue(uow, mail).await?;
    let e = uow
        .entry("auth.login.new_device")
        .target("user", user.id)
        .metadata(serde_json::json!({
            "browser": a.browser,
            "os": a.os,
            "method": a.method.as_str(),
        }));
    uow.audit(as_user(e, user)).await?;
    Ok(())
}

/// A page request: `limit` 1–500 (default 50) and the previous page's `next_cursor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    pub limit: Option<i64>,
    pub cursor: Option<Uuid>,
}

impl PageRequest {
    fn limit(self) -> AppResult<i64> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(AppError::BadRequest {
                code: code::INVALID_QUERY,
                message: "limit must be between 1 and 500".into(),
            });
        }
        Ok(limit)
    }
}

/// The caller's own attempts, newest first.
pub async fn list_own(
    s: &Services,
    p: &Principal,
    page: PageRequest,
) -> AppResult<Page<LoginAttemptView>> {
    // A signed-in user only: never an API key, never an impersonation.
    p.session_id()?;
    p.require(Permission::SessionsManage)?;
    let limit = page.limit()?;
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    let rows = store::list(
        &mut tx,
        p.user_id,
        page.cursor.map(LoginAttemptId::from),
        limit + 1,
    )
    .await?;
    Ok(Page::from_overfetch(rows, limit, |a| a.id.as_uuid()).map(|a| LoginAttemptView::from(&a)))
}

/// A user's attempts for an admin of their tenant (or a super admin), newest first. Another
/// tenant's user is "not found".
pub async fn list_for_user(
    s: &Services,
    p: &Principal,
    user: UserId,
    page: PageRequest,
) -> AppResult<Page<LoginAttemptView>> {
    p.session_id()?;
    p.require(Permission::UsersManage)?;
    let limit = page.limit()?;
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    users::find(&mut tx, user)
        .await?
        .filter(|u| u.tenant_id.is_some())
        .filter(|u| u.deleted_at.is_none() || p.role == Role::SuperAdmin)
        .ok_or(AppError::NotFound("user"))?;
    let rows = store::list(
        &mut tx,
        user,
        page.cursor.map(LoginAttemptId::from),
        limit + 1,
    )
    .await?;
    Ok(Page::from_overfetch(rows, limit, |a| a.id.as_uuid()).map(|a| LoginAttemptView::from(&a)))
}

/// Deletes attempts older than [`RETENTION_DAYS`]; returns how many. The same pass deletes
/// email verification codes and password reset tokens a day after they were issued (they live
/// 10 and 30 minutes; the sending limits look back an hour).
pub async fn prune(s: &Services) -> AppResult<u64> {
    let scope = SystemScope::new("auth.login_history.retention");
    let mut uow = UnitOfWork::system(s, SystemActor::Maintenance, scope).await?;
    let cutoff = uow.now() - time::Duration::days(RETENTION_DAYS);
    let n = store::prune(uow.tx(), cutoff).await?;
    let spent = uow.now() - time::Duration::days(1);
    palisade_store::email_codes::prune(uow.tx(), spent).await?;
    palisade_store::password_resets::prune(uow.tx(), spent).await?;
    uow.commit().await?;
    Ok(n)
}

/// Prunes at start and then every `every`.
pub fn spawn_pruning(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    crate::worker::spawn_periodic("pruning the login history failed", every, None, move || {
        let s = s.clone();
        async move {
            let n = prune(&s).await?;
            if n > 0 {
                tracing::info!(
                    attempts = n,
                    "deleted sign-in attempts past their retention"
                );
            }
            Ok::<_, AppError>(crate::worker::Next::Wait)
        }
    })
}
