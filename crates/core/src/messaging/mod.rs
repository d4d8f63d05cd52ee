//! Contacts, conversations and messages, for users and API keys with the matching permissions
//! and scopes: reading; sending messages (queued here, sent by `whatsapp::outbound`), within
//! Meta's 24-hour customer service window unless a template; working a conversation (status,
//! assignee, labels, internal notes). Inbound messages are written by processing Meta's
//! webhooks (`whatsapp::inbound`). Their one outgoing shape is in [`view`].

pub mod attachment;
mod read;
mod send;
mod view;

pub use read::*;
pub use send::*;

pub use view::{
    ConversationListItemView, ConversationView, LastMessagePreview, MediaErrorView, MediaView,
    MessageView,
};

use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::code;
use crate::pagination::{ActivityCursor, Page};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    ConnectionStatus, ConversationId, ConversationStatus, FieldError, MessageId, MessageKind,
    Permission, UserId,
};
use palisade_store::conversations::{self, ActivityKey, Conversation, ConversationFilter};
use palisade_store::messages::{self, LastMessage, Message};
use palisade_store::send_queue::{self, NewOutbound, SendPriority};
use uuid::Uuid;

/// Changes to a conversation; `None` leaves a field as it is.
#[derive(Default)]
pub struct ConversationPatch {
    pub status: Option<String>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<Uuid>>,
    pub labels: Option<Vec<String>>,
}

/// Sets a conversation's status, assignee (a user of the tenant) and labels. Audited.
pub async fn update_conversation(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ConversationId,
    patch: ConversationPatch,
) -> AppResult<Conversation> {
    p.require(Permission::ConversationsWrite)?;
    let mut errors = Vec::new();
    let new_status = conversation_status(patch.status.as_deref(), &mut errors);
    let labels = patch.labels.map(|list| {
        let mut out: Vec<String> = Vec::new();
        for l in list {
            let l = l.trim().to_owned();
            if l.is_empty() || l.chars().count() > 50 || l.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    "labels",
                    "each label must be 1 to 50 characters",
                ));
            } else if !out.contains(&l) {
                out.push(l);
            }
        }
        if out.len() > 20 {
            errors.push(FieldError::new("labels", "at most 20 labels"));
        }
        out
    });
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = conversations::find_conversation_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    if let Some(Some(a)) = patch.assignee_id {
        let user = palisade_store::users::find(uow.tx(), UserId::from_uuid(a)).await?;
        if user.is_none_or(|u| u.deleted_at.is_some()) {
            return Err(AppError::field(
                "assignee_id",
                "must be a user of this tenant",
            ));
        }
    }
    let status = new_status.unwrap_or(before.status);
    let assignee = patch
        .assignee_id
        .map_or(before.assignee_id, |a| a.map(UserId::from_uuid));
    let labels = labels.unwrap_or_else(|| before.labels.clone());
    conversations::update_conversation(uow.tx(), id, status, assignee, &labels, now)
        .await
        .map_err(|e| match e {
            palisade_store::StoreError::UniqueViolation { .. } => AppError::conflict(
                code::CONVERSATION_ALREADY_OPEN,
                "the contact already has an unresolved conversation on this number",
            ),
            e => e.into(),
        })?;
    uow.audit(
        uow.entry("conversation.updated")
            .target("conversation", id)
            .change(
                Some(serde_json::json!({
                    "status": before.status.as_str(), "assignee_id": before.assignee_id, "labels": before.labels,
                })),
                Some(serde_json::json!({
                    "status": status.as_str(), "assignee_id": assignee, "labels": labels,
                })),
            ),
    )
    .await?;
    let after = conversations::find_conversation(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    let event = crate::realtime::Event::ConversationUpdated(after.clone());
    uow.after_commit(move |s| s.realtime.publish(&event));
    uow.commit().await?;
    Ok(after)
}

/// Adds an internal note to a conversation: stored as a message (type `note`, direction
/// `internal`, status `recorded`) and never sent.
pub async fn add_note(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    conversation_id: ConversationId,
    body: &str,
) -> AppResult<Message> {
    p.require(Permission::ConversationsWrite)?;
    if body.trim().is_empty() || body.chars().count() > 4096 {
        return Err(AppError::field("body", "must be 1 to 4096 characters"));
    }
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let conv = conversations::find_conversation(uow.tx(), conversation_id)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    let id = MessageId::new();
    messages::insert_note(
        uow.tx(),
        id,
        conversation_id,
        conv.connection_id,
        body,
        p.user_id,
        now,
    )
    .await?;
    let m = messages::find_message(uow.tx(), id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the note just stored is missing"))?;
    let event = crate::realtime::Event::MessageCreated(m.clone());
    uow.after_commit(move |s| s.realtime.publish(&event));
    uow.commit().await?;
    Ok(m)
}
