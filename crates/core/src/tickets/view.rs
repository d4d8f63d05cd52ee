//! The shapes tickets, comments and attachments leave the server in: the REST answers and the
//! `ticket.*` webhook events' data are built from these.

use palisade_domain::{rfc3339, Attachment, Ticket, TicketComment};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// `low`, `normal`, `high` or `urgent`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = TicketPriority)]
pub enum TicketPrioritySchema {
    Low,
    Normal,
    High,
    Urgent,
}

/// `open`, `pending`, `solved` or `closed`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = TicketStatus)]
pub enum TicketStatusSchema {
    Open,
    Pending,
    Solved,
    Closed,
}

/// `public` (sent to the customer over WhatsApp) or `internal` (the team only).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CommentVisibility)]
pub enum CommentVisibilitySchema {
    Public,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TicketResponse)]
pub struct TicketView {
    pub id: Uuid,
    pub subject: String,
    pub description: String,
    #[schema(value_type = crate::tickets::view::TicketPrioritySchema)]
    pub priority: String,
    #[schema(value_type = crate::tickets::view::TicketStatusSchema)]
    pub status: String,
    pub assignee_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// The conversation the ticket was opened from; public comments are sent through it.
    pub conversation_id: Option<Uuid>,
    /// The user who opened it (for an API key: its creator).
    pub created_by: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Ticket> for TicketView {
    fn from(t: &Ticket) -> Self {
        TicketView {
            id: t.id.as_uuid(),
            subject: t.subject.as_str().to_owned(),
            description: t.description.clone(),
            priority: t.priority.as_str().to_owned(),
            status: t.status.as_str().to_owned(),
            assignee_id: t.assignee_id.map(|u| u.as_uuid()),
            contact_id: t.contact_id.map(|c| c.as_uuid()),
            conversation_id: t.conversation_id.map(|c| c.as_uuid()),
            created_by: t.created_by.map(|u| u.as_uuid()),
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TicketCommentResponse)]
pub struct TicketCommentView {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub body: String,
    #[schema(value_type = crate::tickets::view::CommentVisibilitySchema)]
    pub visibility: String,
    /// The user who wrote it (for an API key: its creator).
    pub author_id: Option<Uuid>,
    /// For a public comment: the WhatsApp message it was sent as (its delivery status is on
    /// the conversation's messages).
    pub message_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&TicketComment> for TicketCommentView {
    fn from(c: &TicketComment) -> Self {
        TicketCommentView {
            id: c.id.as_uuid(),
            ticket_id: c.ticket_id.as_uuid(),
            body: c.body.clone(),
            visibility: c.visibility.as_str().to_owned(),
            author_id: c.author_id.map(|u| u.as_uuid()),
            message_id: c.message_id.map(|m| m.as_uuid()),
            created_at: rfc3339(c.created_at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AttachmentResponse)]
pub struct AttachmentView {
    pub id: Uuid,
    /// The ticket it is attached to (absent on a conversation's).
    pub ticket_id: Option<Uuid>,
    /// The conversation it was uploaded to, to be sent as WhatsApp media (absent on a
    /// ticket's).
    pub conversation_id: Option<Uuid>,
    /// The uploaded file's name, sanitised (no path, control or text-direction characters, at
    /// most 200 characters).
    pub filename: String,
    /// Decided from the file's content.
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_by: Option<Uuid>,
    /// `GET` it (with your credential) for the file, served as a download.
    pub download_url: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Attachment> for AttachmentView {
    fn from(a: &Attachment) -> Self {
        AttachmentView {
            id: a.id.as_uuid(),
            ticket_id: a.owner.ticket_id().map(|t| t.as_uuid()),
            conversation_id: a.owner.conversation_id().map(|c| c.as_uuid()),
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size_bytes: a.size_bytes,
            sha256: a.sha256.clone(),
            uploaded_by: a.uploaded_by.map(|u| u.as_uuid()),
            download_url: format!("/api/v1/attachments/{}", a.id),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// A ticket with its comments and attachments, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = TicketDetailResponse)]
pub struct TicketDetailView {
    #[serde(flatten)]
    pub ticket: TicketView,
    pub comments: Vec<TicketCommentView>,
    pub attachments: Vec<AttachmentView>,
}

impl From<&super::TicketDetail> for TicketDetailView {
    fn from(d: &super::TicketDetail) -> Self {
        TicketDetailView {
            ticket: TicketView::from(&d.ticket),
            comments: d.comments.iter().map(TicketCommentView::from).collect(),
            attachments: d.attachments.iter().map(AttachmentView::from).collect(),
        }
    }
}
