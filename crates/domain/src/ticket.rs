//! Tickets: a support request, with its comments and attached files, parsed once at the edge.
//!
//! A ticket may be about a contact and opened from one of their conversations; a public
//! comment is sent to the customer over WhatsApp through that conversation, an internal one
//! stays with the team. An attachment's display name is sanitised here
//! ([`AttachmentName::sanitise`]); it never names a stored file (files are stored by SHA-256).

use crate::text::parse_display_text;
use crate::{
    AttachmentId, ContactId, ConversationId, FieldError, TenantId, TicketCommentId, TicketId,
    UserId,
};
use serde::Serialize;
use time::OffsetDateTime;

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketPriority {
    Low,
    Normal,
    High,
    Urgent,
}

impl TicketPriority {
    pub const ALL: [TicketPriority; 4] = [
        TicketPriority::Low,
        TicketPriority::Normal,
        TicketPriority::High,
        TicketPriority::Urgent,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            TicketPriority::Low => "low",
            TicketPriority::Normal => "normal",
            TicketPriority::High => "high",
            TicketPriority::Urgent => "urgent",
        }
    }
    pub fn parse(s: &str) -> Option<TicketPriority> {
        TicketPriority::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(TicketPriority, "ticket priority");

/// Where a ticket is in its life: `open` (being worked), `pending` (waiting on the customer),
/// `solved`, `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Pending,
    Solved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::Solved,
        TicketStatus::Closed,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Solved => "solved",
            TicketStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<TicketStatus> {
        TicketStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(TicketStatus, "ticket status");

/// Who sees a comment: `public` (sent to the customer over WhatsApp) or `internal` (the team).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentVisibility {
    Public,
    Internal,
}

impl CommentVisibility {
    pub const ALL: [CommentVisibility; 2] =
        [CommentVisibility::Public, CommentVisibility::Internal];
    pub const fn as_str(self) -> &'static str {
        match self {
            CommentVisibility::Public => "public",
            CommentVisibility::Internal => "internal",
        }
    }
    pub fn parse(s: &str) -> Option<CommentVisibility> {
        CommentVisibility::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(CommentVisibility, "comment visibility");

/// A ticket's subject: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TicketSubject(String);

impl TicketSubject {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        parse_display_text(field, raw, 200).map(Self)
    }
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Multi-line text (a description, a comment's body): at most `max` characters, no control
/// characters but newlines and tabs; `required` refuses an empty one.
pub fn parse_long_text(
    field: &'static str,
    raw: &str,
    max: usize,
    required: bool,
) -> Result<String, FieldError> {
    let s = raw.trim();
    if required && s.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if s.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if s.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t' && c != '\r') || is_bidi_control(c))
    {
        return Err(FieldError::new(
            field,
            "must not contain control or text-direction characters",
        ));
    }
    Ok(s.to_owned())
}

/// Unicode's explicit text-direction controls (embeddings, overrides, isolates, marks): in a
/// file name they make `invoice<U+202E>fdp.exe` display as `invoiceexe.pdf`.
pub const fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// A ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    pub tenant_id: TenantId,
    pub subject: TicketSubject,
    pub description: String,
    pub priority: TicketPriority,
    pub status: TicketStatus,
    pub assignee_id: Option<UserId>,
    pub contact_id: Option<ContactId>,
    pub conversation_id: Option<ConversationId>,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketComment {
    pub id: TicketCommentId,
    pub ticket_id: TicketId,
    pub body: String,
    pub visibility: CommentVisibility,
    /// The user who wrote it (an API key writes for its creator).
    pub author_id: Option<UserId>,
    /// The WhatsApp message a public comment was sent as.
    pub message_id: Option<crate::MessageId>,
    pub created_at: OffsetDateTime,
}

/// What an attachment belongs to: a ticket, or a conversation it is sent to as WhatsApp media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentOwner {
    Ticket(TicketId),
    Conversation(ConversationId),
}

impl AttachmentOwner {
    pub fn ticket_id(self) -> Option<TicketId> {
        match self {
            AttachmentOwner::Ticket(t) => Some(t),
            AttachmentOwner::Conversation(_) => None,
        }
    }

    pub fn conversation_id(self) -> Option<ConversationId> {
        match self {
            AttachmentOwner::Conversation(c) => Some(c),
            AttachmentOwner::Ticket(_) => None,
        }
    }

    /// `ticket` or `conversation` (the audit records' target type).
    pub fn kind(self) -> &'static str {
        match self {
            AttachmentOwner::Ticket(_) => "ticket",
            AttachmentOwner::Conversation(_) => "conversation",
        }
    }

    pub fn id(self) -> uuid::Uuid {
        match self {
            AttachmentOwner::Ticket(t) => t.as_uuid(),
            AttachmentOwner::Conversation(c) => c.as_uuid(),
        }
    }
}

/// A file attached to a ticket or uploaded to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub tenant_id: TenantId,
    pub owner: AttachmentOwner,
    /// Display only, sanitised ([`AttachmentName`]).
    pub filename: String,
    /// Decided from the content (magic bytes), never from the client.
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes, which is also the file's name in the tenant's storage.
    pub sha256: String,
    pub uploaded_by: Option<UserId>,
    pub created_at: OffsetDateTime,
}

/// A sanitised file name for display and `Content-Disposition`: the last path component only
/// (both `/` and `\` separate), without control or text-direction characters, without leading
/// dots and spaces, at most 200 characters (the extension kept), never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AttachmentName(String);

impl AttachmentName {
    pub const MAX_CHARS: usize = 200;

    pub fn sanitise(raw: &str) -> Self {
        let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
        let cleaned: String = last
            .chars()
            .filter(|c| !c.is_control() && !is_bidi_control(*c) && *c != '\u{FEFF}')
            .map(|c| match c {
                ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
                c => c,
            })
            .collect();
        let trimmed = cleaned
            .trim()
            .trim_start_matches(['.', ' '])
            .trim_end_matches(['.', ' ']);
        let mut name = trimmed.to_owned();
        if name.chars().count() > Self::MAX_CHARS {
            let ext = match name.rsplit_once('.') {
                Some((_, e)) if !e.is_empty() && e.chars().count() <= 10 => format!(".{e}"),
                _ => String::new(),
            };
            let keep = Self::MAX_CHARS - ext.chars().count();
            name = name.chars().take(keep).collect::<String>() + &ext;
        }
        if name.is_empty() {
            name = "file".into();
        }
        Self(name)
    }

    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension, lower case, without the dot (`pdf`); `None` when there is none.
    pub fn extension(&self) -> Option<String> {
        match self.0.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {
                Some(ext.to_ascii_lowercase())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for p in TicketPriority::ALL {
            assert_eq!(TicketPriority::parse(p.as_str()), Some(p));
        }
        for s in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(s.as_str()), Some(s));
        }
        for v in CommentVisibility::ALL {
            assert_eq!(CommentVisibility::parse(v.as_str()), Some(v));
        }
        assert_eq!(TicketStatus::parse("resolved"), None);
        assert_eq!(TicketPriority::parse("URGENT"), None);
    }

    #[test]
    fn file_names_lose_paths_controls_and_bidi_and_are_limited() {
        let n = |s: &str| AttachmentName::sanitise(s).as_str().to_owned();
        assert_eq!(n("../../etc/passwd"), "passwd");
        assert_eq!(n("..\\..\\windows\\win.ini"), "win.ini");
        assert_eq!(n("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(n("a\u{0000}b\r\n.txt"), "ab.txt");
        assert_eq!(n("..."), "file");
        assert_eq!(n(""), "file");
        assert_eq!(n(".htaccess"), "htaccess");
        assert_eq!(n("re:port?.pdf"), "re_port_.pdf");
        let long = format!("{}.pdf", "x".repeat(500));
        let got = n(&long);
        assert_eq!(got.chars().count(), AttachmentName::MAX_CHARS);
        assert!(got.ends_with(".pdf"));
        assert_eq!(
            AttachmentName::sanitise("Report.PDF")
                .extension()
                .as_deref(),
            Some("pdf")
        );
        assert_eq!(AttachmentName::sanitise("README").extension(), None);
    }

    #[test]
    fn long_text_keeps_newlines_and_refuses_controls() {
        assert_eq!(parse_long_text("b", " a\nb ", 10, true).unwrap(), "a\nb");
        assert!(parse_long_text("b", "", 10, true).is_err());
        assert_eq!(parse_long_text("b", "", 10, false).unwrap(), "");
        assert!(parse_long_text("b", "a\u{7}", 10, true).is_err());
        assert!(parse_long_text("b", "a\u{202E}b", 10, true).is_err());
        assert!(parse_long_text("b", "abcdefghijk", 10, true).is_err());
    }
}
