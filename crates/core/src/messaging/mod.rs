//! Contacts, conversations and messages, for users and API keys with the matching permissions
//! and scopes: reading; sending messages (queued here, sent by `whatsapp::outbound`), within
//! Meta's 24-hour customer service window unless a template; working a conversation (status,
//! assignee, labels, internal notes). Inbound messages are written by processing Meta's
//! webhooks (`whatsapp::inbound`). Their one outgoing shape is in [`view`].

pub mod attachment;
mod view;

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

fn clamp(limit: Option<i64>) -> i64 {
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
fn conversation_status(
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

/// Checks a media object: exactly one of `id`, an http(s) `link` or an `attachment_id` (a
/// UUID); a caption (at most 1024 characters) only on images, videos and documents; a filename
/// only on documents. Returns the caption.
fn check_media(kind: &MessageKind, o: &serde_json::Value) -> AppResult<Option<String>> {
    let field = |m: &str| AppError::Validation {
        message: format!("{kind}: {m}"),
        fields: [(kind.to_string(), vec![m.to_owned()])]
            .into_iter()
            .collect(),
    };
    let Some(map) = o.as_object() else {
        return Err(field("must be an object"));
    };
    let allowed: &[&str] = match kind {
        MessageKind::Document => &["id", "link", "attachment_id", "caption", "filename"],
        MessageKind::Image | MessageKind::Video => &["id", "link", "attachment_id", "caption"],
        _ => &["id", "link", "attachment_id"],
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(field(&format!("{k} is not allowed on {kind} messages")));
    }
    let str_of = |k: &'static str| map.get(k).map(|v| v.as_str().ok_or(k));
    let id = str_of("id").transpose();
    let link = str_of("link").transpose();
    let caption = str_of("caption").transpose();
    let filename = str_of("filename").transpose();
    let attachment = str_of("attachment_id").transpose();
    let (Ok(id), Ok(link), Ok(caption), Ok(filename), Ok(attachment)) =
        (id, link, caption, filename, attachment)
    else {
        return Err(field(
            "id, link, attachment_id, caption and filename must be strings",
        ));
    };
    match (id, link, attachment) {
        (Some(id), None, None) if !id.is_empty() && id.len() <= 128 => {}
        (None, Some(l), None)
            if l.len() <= 2048 && (l.starts_with("https://") || l.starts_with("http://")) => {}
        (None, None, Some(a)) if Uuid::parse_str(a).is_ok() => {}
        _ => {
            return Err(field(
                "needs exactly one of id (Meta's media id), link (an http(s) URL) or \
                 attachment_id (an uploaded file's id)",
            ))
        }
    }
    if caption.is_some_and(|c| c.chars().count() > 1024) {
        return Err(field("caption must be at most 1024 characters"));
    }
    if filename.is_some_and(|f| f.is_empty() || f.chars().count() > 240) {
        return Err(field("filename must be 1 to 240 characters"));
    }
    Ok(caption.map(str::to_owned))
}

/// Checks an interactive object in outline: a known `type`, an `action` object, and a body
/// text within Meta's limits when given.
fn check_interactive(o: &serde_json::Value) -> AppResult<Option<String>> {
    let bad = |m: &str| AppError::field("interactive", m.to_owned());
    let Some(map) = o.as_object() else {
        return Err(bad("must be an object"));
    };
    const TYPES: [&str; 7] = [
        "button",
        "list",
        "cta_url",
        "product",
        "product_list",
        "flow",
        "location_request_message",
    ];
    if !map
        .get("type")
        .and_then(|t| t.as_str())
        .is_some_and(|t| TYPES.contains(&t))
    {
        return Err(bad(
            "type must be button, list, cta_url, product, product_list, flow or location_request_message",
        ));
    }
    if !map.get("action").is_some_and(serde_json::Value::is_object) {
        return Err(bad("needs an action object"));
    }
    let body = map
        .get("body")
        .and_then(|b| b.get("text"))
        .and_then(|t| t.as_str());
    if body.is_some_and(|b| b.chars().count() > 4096) {
        return Err(bad("body.text must be at most 4096 characters"));
    }
    Ok(body.map(str::to_owned))
}

/// Queues a message to the conversation's contact: stored `queued` with its row in the send
/// queue, in one transaction; `whatsapp::outbound` sends it. A free-form message needs the
/// customer service window to be open (the contact wrote within 24 hours); a template does not,
/// but must be a stored template of the conversation's connection, `APPROVED` in that
/// language, given exactly its body and header parameters (`crate::templates::check_send`).
pub async fn send_message(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    conversation_id: ConversationId,
    out: Outgoing,
) -> AppResult<Message> {
    p.require(Permission::ConversationsWrite)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    // Sending a file reads it: `conversations.read` for a conversation's, `tickets.read` for a
    // ticket's.
    if let Outgoing::Media { object, .. } = &out {
        if let Some(id) = attachment::attachment_id(object) {
            if let Some(a) = palisade_store::tickets::find_attachment(uow.tx(), id).await? {
                p.require(crate::tickets::attachments::read_permission(a.owner))?;
            }
        }
    }
    let stored = queue_message(&mut uow, conversation_id, out, Some(p.user_id)).await?;
    uow.commit().await?;
    Ok(stored)
}

/// The send path shared by people ([`send_message`]) and Palisade's own messages (order
/// notifications, `integrations`): checks `out`, the conversation's connection and the
/// customer service window, and queues the message in `uow` (its realtime event published
/// after the commit). `author`: the user who sent it, `None` for Palisade. The caller checked
/// the permission and commits.
pub async fn queue_message(
    uow: &mut UnitOfWork<'_>,
    conversation_id: ConversationId,
    out: Outgoing,
    author: Option<UserId>,
) -> AppResult<Message> {
    queue_message_with(uow, conversation_id, out, author, SendPriority::Interactive).await
}

/// [`queue_message`] with the send queue's priority: campaigns queue theirs as
/// [`SendPriority::Bulk`], claimed after every interactive send and sent at most once.
pub async fn queue_message_with(
    uow: &mut UnitOfWork<'_>,
    conversation_id: ConversationId,
    out: Outgoing,
    author: Option<UserId>,
    priority: SendPriority,
) -> AppResult<Message> {
    let s = uow.services();
    // A template message's (name, language code, send components), checked against the
    // stored template once the conversation's connection is known.
    let mut template_check: Option<(String, String, Option<serde_json::Value>)> = None;
    // The uploaded file a media message sends (checked here, uploaded to Meta by the sender).
    let mut sent_file: Option<palisade_domain::Attachment> = None;
    let (kind, body, text) = match out {
        Outgoing::Text { body } => {
            let n = body.chars().count();
            if body.trim().is_empty() || n > 4096 {
                return Err(AppError::field("text.body", "must be 1 to 4096 characters"));
            }
            (
                MessageKind::Text,
                serde_json::json!({ "type": "text", "text": { "body": body } }),
                Some(body),
            )
        }
        Outgoing::Template {
            name,
            language,
            components,
        } => {
            let mut errors = Vec::new();
            if name.is_empty()
                || name.len() > 512
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                errors.push(FieldError::new(
                    "template.name",
                    "must be 1 to 512 lowercase letters, digits and underscores",
                ));
            }
            let code_ok = |c: &str| !c.is_empty() && c.len() <= 16;
            let language = match language {
                serde_json::Value::String(c) if code_ok(&c) => {
                    Some(serde_json::json!({ "code": c }))
                }
                serde_json::Value::Object(o)
                    if o.get("code").and_then(|c| c.as_str()).is_some_and(code_ok) =>
                {
                    Some(serde_json::Value::Object(o))
                }
                _ => None,
            };
            if language.is_none() {
                errors.push(FieldError::new(
                    "template.language",
                    "must be a language code such as en_US, or {\"code\": \"en_US\"}",
                ));
            }
            if components.as_ref().is_some_and(|c| !c.is_array()) {
                errors.push(FieldError::new(
                    "template.components",
                    "must be an array of Meta's template components",
                ));
            }
            if !errors.is_empty() {
                return Err(AppError::validation(errors));
            }
            let code = language
                .as_ref()
                .and_then(|l| l.get("code"))
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_owned();
            template_check = Some((name.clone(), code, components.clone()));
            let mut t = serde_json::Map::new();
            t.insert("name".into(), serde_json::Value::String(name));
            t.insert("language".into(), language.unwrap_or_default());
            if let Some(c) = components {
                t.insert("components".into(), c);
            }
            (
                MessageKind::Template,
                serde_json::json!({ "type": "template", "template": t }),
                None,
            )
        }
        Outgoing::Media { kind, mut object } => {
            let caption = check_media(&kind, &object)?;
            if let Some(id) = attachment::attachment_id(&object) {
                let a = palisade_store::tickets::find_attachment(uow.tx(), id)
                    .await?
                    .ok_or(AppError::NotFound("attachment"))?;
                attachment::check_sendable(&kind, &a)?;
                if kind == MessageKind::Document {
                    if let Some(o) = object.as_object_mut() {
                        o.entry("filename")
                            .or_insert_with(|| serde_json::json!(a.filename));
                    }
                }
                sent_file = Some(a);
            }
            let name = kind.as_str();
            let body = serde_json::json!({ "type": name, name: object });
            (kind, body, caption)
        }
        Outgoing::Interactive { object } => {
            let body = check_interactive(&object)?;
            (
                MessageKind::Interactive,
                serde_json::json!({ "type": "interactive", "interactive": object }),
                body,
            )
        }
    };
    let now = uow.now();
    let conv = conversations::find_conversation(uow.tx(), conversation_id)
        .await?
        .ok_or(AppError::NotFound("conversation"))?;
    let conn = palisade_store::whatsapp_connections::find(uow.tx(), conv.connection_id)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    if conn.status != ConnectionStatus::Active {
        return Err(AppError::conflict(
            code::CONNECTION_DISCONNECTED,
            "the WhatsApp connection of this conversation is disconnected",
        ));
    }
    if let Some((name, language, components)) = &template_check {
        crate::templates::check_send(
            uow.tx(),
            conv.connection_id,
            name,
            language,
            components.as_ref(),
        )
        .await?;
    }
    if kind != MessageKind::Template
        && conv
            .last_inbound_at
            .is_none_or(|at| now - at > CUSTOMER_SERVICE_WINDOW)
    {
        return Err(AppError::Unprocessable {
            code: code::OUTSIDE_CUSTOMER_SERVICE_WINDOW,
            message: "the contact has not written in the last 24 hours, so WhatsApp only \
                      allows an approved template message; send a template instead"
                .into(),
        });
    }
    let m = NewOutbound {
        id: MessageId::new(),
        conversation_id,
        connection_id: conv.connection_id,
        kind,
        body,
        text,
        author_id: author,
        created_at: now,
    };
    send_queue::insert_outbound_with(uow.tx(), &m, priority).await?;
    if priority == SendPriority::Interactive {
        // A person is waiting for this one: the sender starts a round once it is committed
        // instead of at its next tick.
        uow.after_commit(|s| s.outbound_sends.notify_one());
    }
    if let Some(a) = sent_file {
        palisade_store::outbound_media::insert(
            uow.tx(),
            &palisade_store::outbound_media::OutboundMedia {
                message_id: m.id,
                tenant_id: a.tenant_id,
                attachment_id: a.id,
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size_bytes: a.size_bytes,
                sha256: a.sha256.clone(),
                media_id: None,
                uploaded_at: None,
            },
        )
        .await?;
        uow.audit(
            uow.entry("attachment.sent")
                .target("attachment", a.id)
                .metadata(serde_json::json!({
                    "message_id": m.id, "conversation_id": conversation_id,
                    "type": m.kind.as_str(), "sha256": a.sha256,
                })),
        )
        .await?;
    }
    let stored = messages::find_message(uow.tx(), m.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the message just stored is missing"))?;
    let events = crate::realtime::message_queued(s, uow.tx(), &stored).await?;
    uow.after_commit(move |s| s.realtime.publish_all(&events));
    Ok(stored)
}

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
