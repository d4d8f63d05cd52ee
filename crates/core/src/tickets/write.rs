//! Tickets: open (also from a conversation), edit, delete, and comment (a public comment is
//! sent to the customer over WhatsApp in the comment's transaction).

use super::view::{TicketCommentView, TicketView};
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::FieldErrors;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::ticket::parse_long_text;
use palisade_domain::{
    CommentVisibility, ContactId, ConversationId, EventType, FieldError, Permission, Ticket,
    TicketComment, TicketCommentId, TicketId, TicketPriority, TicketStatus, TicketSubject, UserId,
};
use palisade_store::tickets as store;
use palisade_store::{TenantScope, Tx};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Longest description and comment body, in characters (WhatsApp's text limit is 4096).
const DESCRIPTION_MAX: usize = 10_000;
const COMMENT_MAX: usize = 4096;

#[derive(Debug, Default, Clone)]
pub struct NewTicket {
    pub subject: String,
    pub description: Option<String>,
    /// Absent: `normal`.
    pub priority: Option<String>,
    /// Absent: `open`.
    pub status: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// The conversation the ticket is opened from; its contact becomes the ticket's.
    pub conversation_id: Option<Uuid>,
}

/// Changes to a ticket; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub priority: Option<String>,
    pub status: Option<String>,
    pub assignee_id: Option<Option<Uuid>>,
    /// `Some(None)` unlinks the contact (the ticket must then have no conversation).
    pub contact_id: Option<Option<Uuid>>,
    /// A conversation brings its contact; `Some(None)` unlinks it (the contact stays).
    pub conversation_id: Option<Option<Uuid>>,
}

#[derive(Debug, Default, Clone)]
pub struct NewComment {
    pub body: String,
    /// `public` or `internal`.
    pub visibility: String,
}

fn priority(raw: &str) -> Result<TicketPriority, FieldError> {
    TicketPriority::parse(raw).ok_or_else(|| {
        FieldError::new(
            "priority",
            format!("{raw:?} is not one of low, normal, high, urgent"),
        )
    })
}

fn status(raw: &str) -> Result<TicketStatus, FieldError> {
    TicketStatus::parse(raw).ok_or_else(|| {
        FieldError::new(
            "status",
            format!("{raw:?} is not one of open, pending, solved, closed"),
        )
    })
}

/// What the audit log keeps of a ticket: ids and states, never the subject or description.
fn audit_json(t: &Ticket) -> Value {
    json!({
        "id": t.id, "priority": t.priority.as_str(), "status": t.status.as_str(),
        "assignee_id": t.assignee_id, "contact_id": t.contact_id,
        "conversation_id": t.conversation_id,
    })
}

fn changed_fields(a: &Ticket, b: &Ticket) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (name, differs) in [
        ("subject", a.subject != b.subject),
        ("description", a.description != b.description),
        ("priority", a.priority != b.priority),
        ("status", a.status != b.status),
        ("assignee_id", a.assignee_id != b.assignee_id),
        ("contact_id", a.contact_id != b.contact_id),
        ("conversation_id", a.conversation_id != b.conversation_id),
    ] {
        if differs {
            out.push(name);
        }
    }
    out
}

/// A ticket's contact and conversation after a `PATCH`: a conversation (given, or kept) brings
/// its contact, and a contact given with it must be that one; a contact alone must be the
/// tenant's. Another tenant's id is a `422` naming the field, as at creation.
async fn relink(
    tx: &mut Tx<TenantScope>,
    t: &mut Ticket,
    contact: Option<Option<Uuid>>,
    conversation: Option<Option<Uuid>>,
) -> AppResult<()> {
    let contact = contact.map(|c| c.map(ContactId::from_uuid));
    if let Some(c) = conversation {
        t.conversation_id = c.map(ConversationId::from_uuid);
    }
    if let Some(cid) = t.conversation_id {
        let conv = palisade_store::conversations::find_conversation(tx, cid)
            .await?
            .ok_or_else(|| {
                AppError::field("conversation_id", "must be a conversation of this tenant")
            })?;
        if contact.is_some_and(|c| c != Some(conv.contact_id)) {
            return Err(AppError::field(
                "contact_id",
                "must be the contact of the ticket's conversation (set conversation_id to null to \
                 change it)",
            ));
        }
        t.contact_id = Some(conv.contact_id);
    } else if let Some(c) = contact {
        if let Some(id) = c {
            if palisade_store::contacts::find(tx, id).await?.is_none() {
                return Err(AppError::field(
                    "contact_id",
                    "must be a contact of this tenant",
                ));
            }
        }
        t.contact_id = c;
    }
    Ok(())
}

async fn check_assignee(tx: &mut Tx<TenantScope>, id: UserId) -> AppResult<()> {
    let user = palisade_store::users::find(tx, id).await?;
    if user.is_none_or(|u| u.deleted_at.is_some()) {
        return Err(AppError::field(
            "assignee_id",
            "must be a user of this tenant",
        ));
    }
    Ok(())
}

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewTicket,
) -> AppResult<Ticket> {
    p.require(Permission::TicketsWrite)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut errors = FieldErrors::new();
    let subject = errors.check(TicketSubject::parse("subject", &new.subject));
    let description = errors.check(parse_long_text(
        "description",
        new.description.as_deref().unwrap_or(""),
        DESCRIPTION_MAX,
        false,
    ));
    let prio = match new.priority.as_deref() {
        Some(raw) => errors.check(priority(raw)),
        None => Some(TicketPriority::Normal),
    };
    let st = match new.status.as_deref() {
        Some(raw) => errors.check(status(raw)),
        None => Some(TicketStatus::Open),
    };
    let (Some(subject), Some(description), Some(prio), Some(st), true) =
        (subject, description, prio, st, errors.is_empty())
    else {
        return Err(AppError::validation(errors));
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let assignee_id = new.assignee_id.map(UserId::from_uuid);
    if let Some(a) = assignee_id {
        check_assignee(uow.tx(), a).await?;
    }
    let mut contact_id = new.contact_id.map(ContactId::from_uuid);
    let conversation_id = new.conversation_id.map(ConversationId::from_uuid);
    if let Some(cid) = conversation_id {
        let conv = palisade_store::conversations::find_conversation(uow.tx(), cid)
            .await?
            .ok_or_else(|| {
                AppError::field("conversation_id", "must be a conversation of this tenant")
            })?;
        if contact_id.is_some_and(|c| c != conv.contact_id) {
            return Err(AppError::field(
                "contact_id",
                "must be the contact of the conversation (or left out: it is filled from it)",
            ));
        }
        contact_id = Some(conv.contact_id);
    } else if let Some(c) = contact_id {
        if palisade_store::contacts::find(uow.tx(), c).await?.is_none() {
            return Err(AppError::field(
                "contact_id",
                "must be a contact of this tenant",
            ));
        }
    }
    let ticket = Ticket {
        id: TicketId::new(),
        tenant_id: tenant,
        subject,
        description,
        priority: prio,
        status: st,
        assignee_id,
        contact_id,
        conversation_id,
        created_by: Some(p.user_id),
        created_at: now,
        updated_at: now,
    };
    store::insert(uow.tx(), &ticket).await?;
    uow.audit(
        uow.entry("ticket.created")
            .target("ticket", ticket.id)
            .change(None, Some(audit_json(&ticket))),
    )
    .await?;
    uow.emit(EventType::TicketCreated, &TicketView::from(&ticket))
        .await?;
    uow.commit().await?;
    Ok(ticket)
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TicketId,
    patch: TicketPatch,
) -> AppResult<Ticket> {
    p.require(Permission::TicketsWrite)?;
    let mut errors = FieldErrors::new();
    let subject = errors.check_some(patch.subject, |t| TicketSubject::parse("subject", &t));
    let description = errors.check_some(patch.description, |d| {
        parse_long_text("description", &d, DESCRIPTION_MAX, false)
    });
    let prio = errors.check_some(patch.priority, |r| priority(&r));
    let st = errors.check_some(patch.status, |r| status(&r));
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("ticket"))?;
    let mut after = before.clone();
    if let Some(v) = subject {
        after.subject = v;
    }
    if let Some(v) = description {
        after.description = v;
    }
    if let Some(v) = prio {
        after.priority = v;
    }
    if let Some(v) = st {
        after.status = v;
    }
    if let Some(a) = patch.assignee_id {
        after.assignee_id = a.map(UserId::from_uuid);
        if let Some(a) = after.assignee_id.filter(|a| Some(*a) != before.assignee_id) {
            check_assignee(uow.tx(), a).await?;
        }
    }
    if patch.contact_id.is_some() || patch.conversation_id.is_some() {
        relink(
            uow.tx(),
            &mut after,
            patch.contact_id,
            patch.conversation_id,
        )
        .await?;
    }
    let changed = changed_fields(&before, &after);
    if changed.is_empty() {
        return Ok(before);
    }
    after.updated_at = s.clock.now().max(uow.now());
    store::update(uow.tx(), &after).await?;
    uow.audit(
        uow.entry("ticket.updated")
            .target("ticket", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after)))
            .metadata(json!({ "fields": changed })),
    )
    .await?;
    uow.emit(EventType::TicketUpdated, &TicketView::from(&after))
        .await?;
    uow.commit().await?;
    Ok(after)
}

/// The data of `ticket.comment_added`: the comment and the ticket it is on.
#[derive(Debug, Clone, Serialize)]
pub struct CommentAdded {
    #[serde(flatten)]
    pub comment: TicketCommentView,
    pub ticket: TicketView,
}

/// Adds a comment. A public one is queued as a WhatsApp text to the ticket's conversation in
/// the same transaction (so a comment the customer cannot be sent is not stored): it needs
/// `conversations.write` too, a ticket opened from a conversation (`422 visibility`
/// otherwise) and the customer service window (`422 outside_customer_service_window`).
pub async fn add_comment(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TicketId,
    new: NewComment,
) -> AppResult<TicketComment> {
    p.require(Permission::TicketsWrite)?;
    let mut errors = FieldErrors::new();
    let body = errors.check(parse_long_text("body", &new.body, COMMENT_MAX, true));
    let visibility = errors.check(CommentVisibility::parse(&new.visibility).ok_or_else(|| {
        FieldError::new(
            "visibility",
            format!("{:?} is not one of public, internal", new.visibility),
        )
    }));
    let (Some(body), Some(visibility), true) = (body, visibility, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    if visibility == CommentVisibility::Public {
        p.require(Permission::ConversationsWrite)?;
    }
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let ticket = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("ticket"))?;
    let message_id = match visibility {
        CommentVisibility::Internal => None,
        CommentVisibility::Public => {
            let Some(conv) = ticket.conversation_id else {
                return Err(AppError::field(
                    "visibility",
                    "public comments are sent to the customer through the ticket's conversation; \
                     this ticket has none (post an internal comment, or open the ticket from a conversation)",
                ));
            };
            let m = crate::messaging::queue_message(
                &mut uow,
                conv,
                crate::messaging::Outgoing::Text { body: body.clone() },
                Some(p.user_id),
            )
            .await?;
            Some(m.id)
        }
    };
    let comment = TicketComment {
        id: TicketCommentId::new(),
        ticket_id: id,
        body,
        visibility,
        author_id: Some(p.user_id),
        message_id,
        created_at: uow.now(),
    };
    store::insert_comment(uow.tx(), &comment).await?;
    uow.audit(
        uow.entry("ticket.comment_added")
            .target("ticket", id)
            .metadata(json!({
                "comment_id": comment.id, "visibility": visibility.as_str(),
                "message_id": message_id,
            })),
    )
    .await?;
    uow.emit(
        EventType::TicketCommentAdded,
        &CommentAdded {
            comment: TicketCommentView::from(&comment),
            ticket: TicketView::from(&ticket),
        },
    )
    .await?;
    uow.commit().await?;
    Ok(comment)
}

/// Deletes a ticket with its comments and attachments; the files no other attachment uses are
/// removed once the deletion commits (a file that cannot be removed is logged by hash).
pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TicketId,
) -> AppResult<()> {
    p.require(Permission::TicketsDelete)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("ticket"))?;
    let files = store::delete(uow.tx(), id).await?;
    uow.audit(
        uow.entry("ticket.deleted")
            .target("ticket", id)
            .change(Some(audit_json(&before)), None)
            .metadata(json!({ "files_removed": files.len() })),
    )
    .await?;
    for sha in files {
        uow.after_commit_async("could not remove a deleted ticket's file", async move {
            s.storage
                .delete(tenant, &sha)
                .await
                .map_err(|e| anyhow::anyhow!("ticket {id}, file {sha}: {e}"))
        });
    }
    uow.commit().await
}
