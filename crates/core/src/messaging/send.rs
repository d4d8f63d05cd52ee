//! Sending: a message checked (kind, media, interactive parts, the customer service window or
//! an approved template) and queued for `whatsapp::outbound`.

use super::*;

/// Checks a media object: exactly one of `id`, an http(s) `link` or an `attachment_id` (a
/// UUID); a caption (at most 1024 characters) only on images, videos and documents; a filename
/// only on documents. Returns the caption.
pub(super) fn check_media(kind: &MessageKind, o: &serde_json::Value) -> AppResult<Option<String>> {
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
pub(super) fn check_interactive(o: &serde_json::Value) -> AppResult<Option<String>> {
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
