//! Tickets: list (filters, pages) and one ticket with its comments and attachments.

use crate::auth::Principal;
use crate::pagination::Page;
use crate::{AppError, AppResult, Services};
use palisade_domain::{
    Attachment, ContactId, Permission, Ticket, TicketComment, TicketId, TicketPriority,
    TicketStatus, UserId,
};
use palisade_store::tickets::{self as store, TicketFilter};
use uuid::Uuid;

/// List filters as the API receives them.
#[derive(Debug, Default, Clone)]
pub struct TicketListQuery {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// Part of the subject (any case).
    pub q: Option<String>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

/// A ticket with its comments and attachments, oldest first.
#[derive(Debug, Clone)]
pub struct TicketDetail {
    pub ticket: Ticket,
    pub comments: Vec<TicketComment>,
    pub attachments: Vec<Attachment>,
}

pub async fn list(s: &Services, p: &Principal, q: TicketListQuery) -> AppResult<Page<Ticket>> {
    p.require(Permission::TicketsRead)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(raw) => Some(TicketStatus::parse(raw).ok_or_else(|| {
            AppError::field(
                "status",
                format!("{raw:?} is not one of open, pending, solved, closed"),
            )
        })?),
    };
    let priority = match q.priority.as_deref() {
        None => None,
        Some(raw) => Some(TicketPriority::parse(raw).ok_or_else(|| {
            AppError::field(
                "priority",
                format!("{raw:?} is not one of low, normal, high, urgent"),
            )
        })?),
    };
    let search =
        q.q.map(|raw| raw.trim().to_lowercase())
            .filter(|s| !s.is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(AppError::field("q", "must be at most 200 characters"));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let f = TicketFilter {
        status,
        priority,
        assignee_id: q.assignee_id.map(UserId::from_uuid),
        contact_id: q.contact_id.map(ContactId::from_uuid),
        q: search,
        before_id: q.cursor.map(TicketId::from_uuid),
        limit: limit + 1,
    };
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list(&mut tx, &f).await?;
    Ok(Page::from_overfetch(items, limit, |t| t.id.as_uuid()))
}

pub async fn get(s: &Services, p: &Principal, id: TicketId) -> AppResult<TicketDetail> {
    p.require(Permission::TicketsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let ticket = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("ticket"))?;
    let comments = store::comments(&mut tx, id).await?;
    let attachments = store::attachments(&mut tx, id).await?;
    Ok(TicketDetail {
        ticket,
        comments,
        attachments,
    })
}
