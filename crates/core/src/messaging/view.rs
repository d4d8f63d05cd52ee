//! The one shape a conversation and a message leave the server in: the REST answers and the
//! realtime events' `data` are both built from [`ConversationView`] and [`MessageView`], so they
//! cannot drift apart (a test in `web::routes::ws::frames` keeps the event data equal to the
//! REST body). Separate from the use cases so the web layer and `realtime` share it.

use palisade_domain::{rfc3339, MediaStatus, MessageDirection, MessageKind};
use palisade_store::conversations::Conversation;
use palisade_store::media::MessageMedia;
use palisade_store::messages::{LastMessage, Message, PREVIEW_CHARS};
use palisade_store::outbound_media::OutboundMedia;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ConversationResponse)]
pub struct ConversationView {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub contact_phone: String,
    /// The contact's name, or else their WhatsApp profile name.
    pub contact_name: Option<String>,
    /// The WhatsApp connection (number) it runs on.
    pub connection_id: Uuid,
    /// `open`, `pending` or `resolved`.
    pub status: String,
    /// The user handling it.
    pub assignee_id: Option<Uuid>,
    pub labels: Vec<String>,
    #[schema(format = DateTime)]
    pub last_message_at: String,
    #[schema(format = DateTime)]
    pub last_inbound_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Conversation> for ConversationView {
    fn from(c: &Conversation) -> Self {
        ConversationView {
            id: c.id.as_uuid(),
            contact_id: c.contact_id.as_uuid(),
            contact_phone: c.contact_phone.clone(),
            contact_name: c.contact_name.clone(),
            connection_id: c.connection_id.as_uuid(),
            status: c.status.as_str().to_owned(),
            assignee_id: c.assignee_id.map(|u| u.as_uuid()),
            labels: c.labels.clone(),
            last_message_at: rfc3339(c.last_message_at),
            last_inbound_at: c.last_inbound_at.map(rfc3339),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

impl From<Conversation> for ConversationView {
    fn from(c: Conversation) -> Self {
        ConversationView::from(&c)
    }
}

/// A conversation as the list shows it: the conversation (every field of
/// `ConversationResponse`) and its last message in short. A type of its own rather than a field
/// of [`ConversationView`], so that the conversation's one view (REST answer = realtime event
/// data) does not need a second read for every event that carries it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ConversationListItemResponse)]
pub struct ConversationListItemView {
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// The latest inbound or outbound message (internal notes are not shown here, as they do
    /// not move the conversation in the list); `null` when it has none.
    pub last_message: Option<LastMessagePreview>,
}

impl From<&super::ConversationListItem> for ConversationListItemView {
    fn from(c: &super::ConversationListItem) -> Self {
        ConversationListItemView {
            conversation: ConversationView::from(&c.conversation),
            last_message: c.last_message.as_ref().map(LastMessagePreview::from),
        }
    }
}

impl From<super::ConversationListItem> for ConversationListItemView {
    fn from(c: super::ConversationListItem) -> Self {
        ConversationListItemView::from(&c)
    }
}

/// The last message of a conversation, in short: enough for a line of an inbox. The whole
/// message is in the conversation's messages.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = LastMessagePreviewResponse)]
pub struct LastMessagePreview {
    pub id: Uuid,
    /// `inbound` or `outbound`.
    #[schema(inline)]
    pub direction: MessageDirection,
    /// Meta's message type (`text`, `image`, `template`, …).
    #[schema(value_type = String)]
    pub r#type: MessageKind,
    /// The first 100 characters of the message's text (a text message's body, or a media
    /// message's caption), followed by `…` when there was more; `null` when it has no text.
    pub text: Option<String>,
    /// The message's status, as in `MessageResponse`.
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&LastMessage> for LastMessagePreview {
    fn from(m: &LastMessage) -> Self {
        LastMessagePreview {
            id: m.id.as_uuid(),
            direction: m.direction,
            r#type: m.kind.clone(),
            text: m.text.as_deref().map(preview_text),
            status: m.status.as_str().to_owned(),
            created_at: rfc3339(m.created_at),
        }
    }
}

/// At most [`PREVIEW_CHARS`] characters of `text`, and `…` when it was longer.
fn preview_text(text: &str) -> String {
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = MessageResponse)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub connection_id: Uuid,
    /// WhatsApp's message id (absent while an outbound message is `queued`).
    pub wamid: Option<String>,
    /// `inbound`, `outbound`, or `internal` (a note, never sent).
    #[schema(inline)]
    pub direction: MessageDirection,
    /// Meta's message type (`text`, `image`, `interactive`, … or whatever Meta sent).
    #[schema(value_type = String)]
    pub r#type: MessageKind,
    /// The text of a text message.
    pub text: Option<String>,
    /// The message object exactly as Meta sent it (outbound: `{type, <type>: {…}}` as sent).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// `received` (inbound), `queued` (outbound, not yet accepted by Meta), `sent`,
    /// `delivered`, `read`, `failed`, or `recorded` (a note).
    pub status: String,
    /// Meta's `errors` array (failed status, or an unsupported inbound message).
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    /// The wamid this message replies to.
    pub context_wamid: Option<String>,
    /// When WhatsApp says it was sent (Meta's timestamp).
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub status_updated_at: String,
    /// The user who wrote an outbound message (or whose API key sent it).
    pub author_id: Option<Uuid>,
    /// Inbound media messages: the downloaded file's state; outbound media messages sent from an
    /// uploaded file: that file (absent on other messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaView>,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        MessageView {
            id: m.id.as_uuid(),
            conversation_id: m.conversation_id.as_uuid(),
            connection_id: m.connection_id.as_uuid(),
            wamid: m.wamid.clone(),
            direction: m.direction,
            r#type: m.kind.clone(),
            text: m.text.clone(),
            body: m.body.clone(),
            status: m.status.as_str().to_owned(),
            error: m.error.clone(),
            context_wamid: m.context_wamid.clone(),
            sent_at: m.sent_at.map(rfc3339),
            created_at: rfc3339(m.created_at),
            status_updated_at: rfc3339(m.status_updated_at),
            author_id: m.author_id.map(|u| u.as_uuid()),
            media: m
                .media
                .as_ref()
                .map(MediaView::from)
                .or_else(|| m.sent_file.as_ref().map(MediaView::from)),
        }
    }
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        MessageView::from(&m)
    }
}

/// The file of a media message (`image`, `audio`, `video`, `document`, `sticker`): an inbound
/// one's download, or the uploaded file an outbound one sends.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = MediaStateResponse)]
pub struct MediaView {
    /// `pending` (being downloaded), `stored` (download it from `download_url`) or `failed`.
    pub status: String,
    /// The MIME type Meta gave.
    pub mime_type: Option<String>,
    /// Size of the stored file.
    pub size_bytes: Option<i64>,
    /// Lowercase hex SHA-256 of the stored file (checked against the one Meta gave).
    pub sha256: Option<String>,
    /// A document's file name as the sender gave it.
    pub filename: Option<String>,
    /// `/api/v1/messages/{id}/media` once stored (inbound), or `/api/v1/attachments/{id}`
    /// (outbound: the attachment sent).
    pub download_url: Option<String>,
    /// Why the download failed (or, while pending, why the last attempt did).
    pub error: Option<MediaErrorView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = MediaErrorResponse)]
pub struct MediaErrorView {
    /// `sha256_mismatch`, `too_large`, `host_not_allowed`, `media_unavailable`,
    /// `token_invalid`, `redirect_refused`, `download_refused`, `download_error`,
    /// `graph_unavailable`, `media_url_expired`, `storage_error`, `invalid_media_id`,
    /// `connection_disconnected`, `connection_missing`, `bad_media_url`.
    pub code: String,
    pub message: String,
}

impl From<&MessageMedia> for MediaView {
    fn from(m: &MessageMedia) -> Self {
        let stored = m.status == MediaStatus::Stored;
        MediaView {
            download_url: stored.then(|| format!("/api/v1/messages/{}/media", m.message_id)),
            sha256: if stored {
                m.content_sha256.clone()
            } else {
                None
            },
            status: m.status.as_str().to_owned(),
            mime_type: m.mime_type.clone(),
            size_bytes: m.size_bytes,
            filename: m.filename.clone(),
            error: m.error_code.as_ref().map(|code| MediaErrorView {
                code: code.clone(),
                message: m.error.clone().unwrap_or_default(),
            }),
        }
    }
}

impl From<&OutboundMedia> for MediaView {
    fn from(f: &OutboundMedia) -> Self {
        MediaView {
            status: MediaStatus::Stored.as_str().to_owned(),
            mime_type: Some(f.content_type.clone()),
            size_bytes: Some(f.size_bytes),
            sha256: Some(f.sha256.clone()),
            filename: Some(f.filename.clone()),
            download_url: Some(format!("/api/v1/attachments/{}", f.attachment_id)),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_keeps_a_hundred_characters_and_marks_the_cut() {
        let short = "é".repeat(PREVIEW_CHARS);
        assert_eq!(preview_text(&short), short);
        let long = "é".repeat(PREVIEW_CHARS + 1);
        assert_eq!(preview_text(&long), format!("{short}…"));
        assert_eq!(preview_text(""), "");
    }
}
