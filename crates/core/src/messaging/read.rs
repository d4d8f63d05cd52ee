//! Reading: the conversations (filtered, by last activity), one conversation, and its
//! messages (pages from the start, or the latest from the end).

use super::*;

pub(super) fn clamp(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 200)
}

/// A conversation list as the API receives it (see [`list_conversations`]).
#[derive(Debug, Default, Clone)]
pub struct ConversationQuery {
    pub status: Option<String>,
    /// A user id, `me` (the caller; an API key's creator), or `none` / `unassigned` (assigned
    /// to nobody).
    pub assignee: Option<String>,
    pub label: Option<String>,
    /// The previous page's `next_cursor`, as the client sent it back.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A conversation of a list, with its last inbound or outbound message (none yet: `None`).
#[derive(Debug, Clone)]
pub struct ConversationListItem {
    pub conversation: Conversation,
    pub last_message: Option<LastMessage>,
}

/// The tenant's conversations by last activity (the latest inbound or outbound message), newest
/// first, ties by id, narrowed by status, assignee and label, each with its last message.
///
/// The cursor is the (last activity, id) of the previous page's last item, so pages are stable
/// while conversations move: a page holds only conversations after that position, each at most
/// once. A conversation that gets a new message while a client pages moves to the top: if the
/// client had already seen it, it is not shown again; if not, it is not on the later pages
/// either (it is now before the cursor), and the client finds it on a fresh first page (or by
/// the realtime event of that message). Every other conversation is shown exactly once.
pub async fn list_conversations(
    s: &Services,
    p: &Principal,
    q: ConversationQuery,
) -> AppResult<Page<ConversationListItem, String>> {
    p.require(Permission::ConversationsRead)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| ActivityCursor::parse("cursor", c))
        .transpose()?;
    let mut errors = Vec::new();
    let status = conversation_status(q.status.as_deref(), &mut errors);
    let (mut assignee, mut unassigned) = (None, false);
    match q.assignee.as_deref().map(str::trim) {
        None => {}
        Some("me") => assignee = Some(p.user_id),
        Some("none" | "unassigned") => unassigned = true,
        Some(other) => match Uuid::parse_str(other) {
            Ok(id) => assignee = Some(UserId::from(id)),
            Err(_) => errors.push(FieldError::new(
                "assignee",
                "must be a user id, me, none or unassigned",
            )),
        },
    }
    let label = q.label.map(|l| l.trim().to_owned());
    if label
        .as_ref()
        .is_some_and(|l| l.is_empty() || l.chars().count() > 50)
    {
        errors.push(FieldError::new("label", "must be 1 to 50 characters"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let limit = clamp(q.limit);
    let filter = ConversationFilter {
        status,
        assignee,
        unassigned,
        label,
        after: after.map(|c| ActivityKey {
            last_message_at: c.at,
            id: c.id.into(),
        }),
        limit: limit + 1,
    };
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let found = conversations::list_conversations(&mut tx, &filter).await?;
    let page = Page::from_overfetch(found, limit, |c| {
        ActivityCursor {
            at: c.last_message_at,
            id: c.id.as_uuid(),
        }
        .encode()
    });
    let ids: Vec<ConversationId> = page.data.iter().map(|c| c.id).collect();
    let mut last: std::collections::HashMap<ConversationId, LastMessage> =
        messages::last_messages(&mut tx, &ids)
            .await?
            .into_iter()
            .map(|m| (m.conversation_id, m))
            .collect();
    Ok(page.map(|conversation| ConversationListItem {
        last_message: last.remove(&conversation.id),
        conversation,
    }))
}

/// A conversation status as the API gives it (`open`, `pending` or `resolved`); anything else
/// is a field error.
pub(super) fn conversation_status(
    status: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<ConversationStatus> {
    let parsed = status?.parse().ok();
    if parsed.is_none() {
        errors.push(FieldError::new(
            "status",
            "must be open, pending or resolved",
        ));
    }
    parsed
}

pub async fn get_conversation(
    s: &Services,
    p: &Principal,
    id: ConversationId,
) -> AppResult<Conversation> {
    p.require(Permission::ConversationsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    conversations::find_conversation(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

/// A conversation's messages, oldest first.
pub async fn list_messages(
    s: &Services,
    p: &Principal,
    conversation_id: ConversationId,
    cursor: Option<MessageId>,
    limit: Option<i64>,
) -> AppResult<Page<Message>> {
    p.require(Permission::ConversationsRead)?;
    let limit = clamp(limit);
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if conversations::find_conversation(&mut tx, conversation_id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("conversation"));
    }
    let mut items = messages::list_messages(&mut tx, conversation_id, cursor, limit + 1).await?;
    crate::whatsapp::media::attach(&mut tx, &mut items).await?;
    let page = Page::from_overfetch(items, limit, |m| m.id.as_uuid());
    crate::detections::records_read(s, p, page.data.len());
    Ok(page)
}

/// The end of a conversation: its latest messages, oldest first, and whether earlier ones exist.
#[derive(Debug, Clone)]
pub struct LatestMessages {
    pub messages: Vec<Message>,
    /// Messages before the first of `messages` exist (read them with [`list_messages`]).
    pub earlier: bool,
}

/// A conversation's latest `limit` messages (notes included; 1 to 200), oldest first, read
/// from the end (`limit + 1` rows, whatever the conversation's length), with the same checks
/// as [`list_messages`]: the permission, the tenant, and `404` for another tenant's
/// conversation. For a page that opens on the end of a conversation; the API pages from the
/// start.
pub async fn latest_messages(
    s: &Services,
    p: &Principal,
    conversation_id: ConversationId,
    limit: i64,
) -> AppResult<LatestMessages> {
    p.require(Permission::ConversationsRead)?;
    let limit = clamp(Some(limit));
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if conversations::find_conversation(&mut tx, conversation_id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("conversation"));
    }
    let mut items = messages::latest_messages(&mut tx, conversation_id, limit + 1).await?;
    let earlier = i64::try_from(items.len()).unwrap_or(i64::MAX) > limit;
    items.truncate(usize::try_from(limit).unwrap_or(0));
    items.reverse();
    crate::whatsapp::media::attach(&mut tx, &mut items).await?;
    Ok(LatestMessages {
        messages: items,
        earlier,
    })
}

/// How long after a customer's last message free-form messages may be sent (Meta's customer
/// service window).
pub const CUSTOMER_SERVICE_WINDOW: time::Duration = time::Duration::hours(24);

/// What an agent (or an API key) sends.
pub enum Outgoing {
    Text {
        body: String,
    },
    Template {
        name: String,
        /// A language code (`en_US`) or Meta's object (`{code, policy?}`).
        language: serde_json::Value,
        components: Option<serde_json::Value>,
    },
    /// `image`, `audio`, `video`, `document` or `sticker`: `{id | link | attachment_id,
    /// caption?, filename?}` (an attachment: see [`attachment`]).
    Media {
        kind: MessageKind,
        object: serde_json::Value,
    },
    /// Meta's `interactive` object (buttons, lists, …), checked in outline here and in detail by
    /// Meta.
    Interactive {
        object: serde_json::Value,
    },
}
