//! In-app notifications: what a tenant's users must hear about without watching the audit log
//! (a webhook waiting for approval, an endpoint disabled by the worker).
//!
//! # Invariants
//!
//! - A notification is created by [`notify`] in the transaction of the change that causes it,
//!   so a rolled-back change notifies nobody and a committed one always does.
//! - A notification belongs to one user of one tenant; only that user lists it or marks it read
//!   (anyone else's is 404, like a missing one). API keys are not users and get 403
//!   `api_key_not_allowed`; super admins belong to no tenant and have none.

use crate::auth::{Principal, RequestMeta};
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{rfc3339, NotificationId, Permission, TenantId, UserId};
use palisade_store::notifications as store;
use palisade_store::{Scope, Tx};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

pub use palisade_store::notifications::Notification;

// A notification as its recipient sees it (the REST answer; notifications raise no event). A
// plain comment: a doc comment would become the schema's description, which it never had.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = NotificationResponse)]
pub struct NotificationView {
    pub id: Uuid,
    /// `webhook.pending_approval` or `webhook.disabled` (more kinds will come).
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Structured details, e.g. `{webhook_id, url, reason}`.
    pub data: Value,
    /// What it is about (`webhook`), with `target_id`.
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `null` until the user marks it read.
    #[schema(format = DateTime)]
    pub read_at: Option<String>,
}

impl From<&Notification> for NotificationView {
    fn from(n: &Notification) -> Self {
        NotificationView {
            id: n.id.as_uuid(),
            kind: n.kind.clone(),
            title: n.title.clone(),
            body: n.body.clone(),
            data: n.data.clone(),
            target_type: n.target_type.clone(),
            target_id: n.target_id,
            created_at: rfc3339(n.created_at),
            read_at: n.read_at.map(rfc3339),
        }
    }
}

/// What to tell, and about what.
pub struct NewNotification<'a> {
    /// e.g. `webhook.pending_approval`.
    pub kind: &'a str,
    pub title: String,
    pub body: String,
    pub data: Value,
    /// The object it is about, e.g. `("webhook", id)`.
    pub target: Option<(&'a str, Uuid)>,
}

/// Writes one notification per recipient in the caller's transaction. Returns how many.
pub async fn notify<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    recipients: &[UserId],
    n: &NewNotification<'_>,
    now: OffsetDateTime,
) -> AppResult<usize> {
    for user in recipients {
        store::insert(
            tx,
            &Notification {
                id: NotificationId::new(),
                tenant_id: tenant,
                user_id: *user,
                kind: n.kind.to_owned(),
                title: n.title.clone(),
                body: n.body.clone(),
                data: n.data.clone(),
                target_type: n.target.map(|(t, _)| t.to_owned()),
                target_id: n.target.map(|(_, id)| id),
                created_at: now,
                read_at: None,
            },
        )
        .await?;
    }
    Ok(recipients.len())
}

/// The tenant's admins (the owner included), optionally leaving one out (the actor).
pub async fn tenant_admins<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    except: Option<UserId>,
) -> AppResult<Vec<UserId>> {
    let mut ids = store::admin_ids(tx, tenant).await?;
    ids.retain(|id| Some(*id) != except);
    Ok(ids)
}

fn require_user(p: &Principal) -> AppResult<()> {
    p.require(Permission::NotificationsRead)
}

/// The caller's own notifications, newest first.
pub async fn list(
    s: &Services,
    p: &Principal,
    unread_only: bool,
    cursor: Option<NotificationId>,
    limit: Option<i64>,
) -> AppResult<Page<Notification>> {
    require_user(p)?;
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::field("limit", "must be between 1 and 200"));
    }
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list_for_user(&mut tx, p.user_id, unread_only, cursor, limit + 1).await?;
    Ok(Page::from_overfetch(items, limit, |n| n.id.as_uuid()))
}

/// Marks one of the caller's notifications read (idempotent: the first read time is kept).
/// Not audited: reading one's own notifications changes nothing anyone else sees.
pub async fn mark_read(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: NotificationId,
) -> AppResult<Notification> {
    require_user(p)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let n = store::mark_read(uow.tx(), p.user_id, id, now)
        .await?
        .ok_or(AppError::NotFound("notification"))?;
    uow.commit().await?;
    Ok(n)
}
