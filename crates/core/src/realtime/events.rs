//! The events a tenant's sockets are told about and their `data`: a message or a conversation
//! rendered exactly as the REST API returns it. Separate so the rendering sits in one place that
//! the REST-equality test and later typed views can point at.

use palisade_domain::{rfc3339, TenantId};
use palisade_store::conversations::Conversation;
use palisade_store::messages::Message;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// A change a tenant's sockets are told about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new message in a conversation: inbound, outbound (queued), or an internal note.
    MessageCreated(Message),
    /// A message's status moved (`sent`, `delivered`, `read`, `failed`).
    MessageStatus(Message),
    /// A conversation was opened, or its status, assignee, labels or latest message changed.
    ConversationUpdated(Conversation),
}

impl Event {
    /// The `type` of the event's frame.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::MessageCreated(_) => "message.created",
            Event::MessageStatus(_) => "message.status",
            Event::ConversationUpdated(_) => "conversation.updated",
        }
    }

    /// The tenant whose sockets receive it: that of the row it carries.
    pub fn tenant(&self) -> TenantId {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => TenantId::from_uuid(m.tenant_id),
            Event::ConversationUpdated(c) => TenantId::from_uuid(c.tenant_id),
        }
    }

    pub(super) fn object_id(&self) -> Uuid {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => m.id,
            Event::ConversationUpdated(c) => c.id,
        }
    }

    /// The event's `data`: the object as the REST API returns it.
    pub fn data(&self) -> Value {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => message_json(m),
            Event::ConversationUpdated(c) => conversation_json(c),
        }
    }

    /// The frame sent on the socket: `{"type": …, "data": …}`.
    pub fn frame(&self) -> Frame {
        Arc::from(json!({ "type": self.kind(), "data": self.data() }).to_string())
    }
}

/// A rendered frame, shared by every socket that receives it.
pub type Frame = Arc<str>;

/// A message as `GET /api/v1/conversations/{id}/messages` returns it.
pub fn message_json(m: &Message) -> Value {
    let mut v = json!({
        "id": m.id,
        "conversation_id": m.conversation_id,
        "connection_id": m.connection_id,
        "wamid": m.wamid,
        "direction": m.direction,
        "type": m.kind,
        "text": m.text,
        "body": m.body.0,
        "status": m.status,
        "error": m.error.as_ref().map(|e| &e.0),
        "context_wamid": m.context_wamid,
        "sent_at": m.sent_at.map(rfc3339),
        "created_at": rfc3339(m.created_at),
        "status_updated_at": rfc3339(m.status_updated_at),
        "author_id": m.author_id,
    });
    if let (Some(media), Some(object)) = (&m.media, v.as_object_mut()) {
        object.insert("media".into(), media_json(media));
    }
    v
}

/// An inbound media message's file state, as the REST API shows it under `media`.
fn media_json(m: &palisade_store::media::MessageMedia) -> Value {
    let stored = m.status == "stored";
    json!({
        "status": m.status,
        "mime_type": m.mime_type,
        "size_bytes": m.size_bytes,
        "sha256": if stored { m.content_sha256.clone() } else { None },
        "filename": m.filename,
        "download_url": stored.then(|| format!("/api/v1/messages/{}/media", m.message_id)),
        "error": m.error_code.as_ref().map(|code| json!({
            "code": code,
            "message": m.error.clone().unwrap_or_default(),
        })),
    })
}

/// A conversation as `GET /api/v1/conversations/{id}` returns it.
pub fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "contact_id": c.contact_id,
        "contact_phone": c.contact_phone,
        "contact_name": c.contact_name,
        "connection_id": c.connection_id,
        "status": c.status,
        "assignee_id": c.assignee_id,
        "labels": c.labels.0,
        "last_message_at": rfc3339(c.last_message_at),
        "last_inbound_at": c.last_inbound_at.map(rfc3339),
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}
