//! The events a tenant's sockets are told about and their `data`: a message or a conversation
//! as its one view ([`MessageView`], [`ConversationView`]), the type the REST API returns.

use crate::messaging::{ConversationView, MessageView};
use palisade_domain::TenantId;
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
            Event::MessageCreated(m) | Event::MessageStatus(m) => m.tenant_id,
            Event::ConversationUpdated(c) => c.tenant_id,
        }
    }

    pub(super) fn object_id(&self) -> Uuid {
        match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => m.id.as_uuid(),
            Event::ConversationUpdated(c) => c.id.as_uuid(),
        }
    }

    /// The event's `data`: the object's view, as the REST API returns it.
    pub fn data(&self) -> Value {
        let data = match self {
            Event::MessageCreated(m) | Event::MessageStatus(m) => {
                serde_json::to_value(MessageView::from(m))
            }
            Event::ConversationUpdated(c) => serde_json::to_value(ConversationView::from(c)),
        };
        // A view is plain data (strings, numbers, JSON values): serializing it cannot fail.
        data.unwrap_or(Value::Null)
    }

    /// The frame sent on the socket: `{"type": …, "data": …}`.
    pub fn frame(&self) -> Frame {
        Arc::from(json!({ "type": self.kind(), "data": self.data() }).to_string())
    }
}

/// A rendered frame, shared by every socket that receives it.
pub type Frame = Arc<str>;

#[cfg(test)]
mod tests {
    use super::Event;
    use crate::messaging::{ConversationView, MessageView};
    use palisade_domain::{
        ConnectionId, ContactId, ConversationId, ConversationStatus, MediaStatus, MessageId,
        MessageStatus, TenantId, UserId,
    };
    use palisade_store::conversations::Conversation;
    use palisade_store::media::MessageMedia;
    use palisade_store::messages::Message;
    use serde_json::{json, Value};
    use time::OffsetDateTime;

    /// The frame a socket receives for `event`, parsed: its `data` must be what the REST
    /// API returns for the object (the route's body is the same view type).
    fn frame_data(event: Event) -> Value {
        let frame: Value = serde_json::from_str(&event.frame()).unwrap();
        frame["data"].clone()
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// Events carry the same view the REST API returns (`web::routes::messaging` answers with
    /// `MessageView` and `ConversationView`): a socket's frame `data` must equal that body.
    #[test]
    fn event_data_is_the_rest_representation() {
        let now = OffsetDateTime::now_utc();
        for (optional, error) in [(true, Some(json!([{"code": 131026}]))), (false, None)] {
            let m = Message {
                id: MessageId::new(),
                tenant_id: TenantId::new(),
                conversation_id: ConversationId::new(),
                connection_id: ConnectionId::new(),
                wamid: optional.then(|| "wamid.abc".to_owned()),
                direction: palisade_domain::MessageDirection::Outbound,
                kind: palisade_domain::MessageKind::Text,
                body: json!({"type": "text", "text": {"body": "hello"}}),
                text: optional.then(|| "hello".to_owned()),
                status: MessageStatus::Failed,
                error: error.clone(),
                context_wamid: optional.then(|| "wamid.ctx".to_owned()),
                sent_at: optional.then_some(now),
                created_at: now,
                status_updated_at: now,
                author_id: optional.then(UserId::new),
                media: None,
                sent_file: None,
            };
            let mut m = m;
            if optional {
                m.media = Some(MessageMedia {
                    message_id: m.id,
                    tenant_id: m.tenant_id,
                    kind: palisade_domain::MessageKind::Image,
                    media_id: "1234567890".into(),
                    mime_type: Some("image/jpeg".into()),
                    sha256: Some("aGVsbG8=".into()),
                    filename: None,
                    status: MediaStatus::Stored,
                    size_bytes: Some(5),
                    content_sha256: Some("2cf24dba".into()),
                    storage_key: Some("0123456789abcdef0123456789abcdef".into()),
                    attempts: 1,
                    next_attempt_at: now,
                    error_code: Some("media_url_expired".into()),
                    error: Some("the download URL expired".into()),
                    created_at: now,
                    updated_at: now,
                });
            }
            let rest = serde_json::to_value(MessageView::from(&m)).unwrap();
            assert_eq!(frame_data(Event::MessageCreated(m.clone())), rest);
            assert_eq!(frame_data(Event::MessageStatus(m.clone())), rest);
            let mut expected = vec![
                "author_id",
                "body",
                "connection_id",
                "context_wamid",
                "conversation_id",
                "created_at",
                "direction",
                "error",
                "id",
                "sent_at",
                "status",
                "status_updated_at",
                "text",
                "type",
                "wamid",
            ];
            if optional {
                expected.push("media");
                expected.sort_unstable();
                assert_eq!(
                    rest["media"]["download_url"],
                    json!(format!("/api/v1/messages/{}/media", m.id))
                );
                assert_eq!(rest["media"]["sha256"], json!("2cf24dba"));
            }
            assert_eq!(keys(&rest), expected, "media only on media messages");
            let c = Conversation {
                id: ConversationId::new(),
                tenant_id: TenantId::new(),
                contact_id: ContactId::new(),
                connection_id: ConnectionId::new(),
                status: ConversationStatus::Open,
                last_message_at: now,
                last_inbound_at: optional.then_some(now),
                created_at: now,
                updated_at: now,
                assignee_id: optional.then(UserId::new),
                labels: vec!["vip".into()],
                contact_phone: "+447700900123".into(),
                contact_name: optional.then(|| "Ana".to_owned()),
            };
            let rest = serde_json::to_value(ConversationView::from(&c)).unwrap();
            assert_eq!(frame_data(Event::ConversationUpdated(c.clone())), rest);
            assert_eq!(rest["labels"], json!(["vip"]));
        }
    }
}
