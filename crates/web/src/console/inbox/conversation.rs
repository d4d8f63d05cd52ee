//! `/inbox/{id}`: a conversation's latest messages, its notes, the composer and the forms,
//! and its live fragments.

use super::*;

/// A message as the conversation shows it.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: Uuid,
    /// `inbound`, `outbound` or `internal`.
    pub direction: String,
    pub kind: String,
    pub text: Option<String>,
    /// A template's name (template messages).
    pub template: Option<String>,
    pub status: String,
    /// Meta's error, in words (failed messages, unsupported inbound ones).
    pub error: Option<String>,
    pub media: Option<MediaRow>,
    pub author: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone)]
pub struct MediaRow {
    /// `pending`, `stored` or `failed`.
    pub status: String,
    pub download_url: Option<String>,
    pub label: String,
    pub error: Option<String>,
}

pub(super) fn error_text(e: &serde_json::Value) -> String {
    let first = e.as_array().and_then(|a| a.first()).unwrap_or(e);
    let get = |k: &str| first.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let code = first.get("code").map(|c| c.to_string());
    let words = match (get("title"), get("message")) {
        (Some(t), Some(m)) if t != m => format!("{t}: {m}"),
        (Some(t), _) => t,
        (None, Some(m)) => m,
        (None, None) => e.to_string(),
    };
    match code {
        Some(c) => format!("{words} (error {c})"),
        None => words,
    }
}

pub(super) fn message_row(m: MessageView, people: &[Person]) -> MessageRow {
    let template = (m.r#type == palisade_domain::MessageKind::Template)
        .then(|| {
            m.body
                .get("template")
                .and_then(|t| t.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .flatten();
    let media = m.media.as_ref().map(|md| MediaRow {
        status: md.status.clone(),
        download_url: md.download_url.clone(),
        label: md.filename.clone().unwrap_or_else(|| {
            format!(
                "{}{}",
                m.r#type,
                md.mime_type
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            )
        }),
        error: md.error.as_ref().map(|e| e.message.clone()),
    });
    MessageRow {
        id: m.id,
        author: name_of(people, m.author_id),
        error: m.error.as_ref().map(error_text),
        direction: m.direction.to_string(),
        kind: m.r#type.to_string(),
        text: m.text,
        template,
        status: m.status,
        media,
        at: m.created_at,
    }
}

/// The conversation's side panel: who, status, assignee, labels, window.
pub struct Details {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub contact_id: Uuid,
    pub status: String,
    pub assignee_id: String,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    pub labels_text: String,
    /// The customer service window is open (a free-form message may be sent).
    pub window_open: bool,
    /// When it closes (open) or closed (closed), if the customer ever wrote.
    pub window_until: Option<String>,
    /// The viewer may change things (not a read-only impersonation).
    pub can_write: bool,
    pub people: Vec<Person>,
    pub me: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConversationParams {
    /// `messages` or `details`: only that part (for live updates).
    fragment: Option<String>,
    /// `start`: the messages from the first one on, paged with `cursor`.
    from: Option<String>,
    /// The API's cursor into the messages (with `from=start`).
    cursor: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
    label: Option<String>,
}

pub struct Thread {
    pub conversation_id: Uuid,
    pub messages: Vec<MessageRow>,
    pub notes: Vec<MessageRow>,
    /// Older messages exist that are not shown.
    pub earlier: bool,
    /// Paging from the start: the next page's cursor.
    pub next_cursor: Option<String>,
    pub from_start: bool,
}

pub(super) async fn load_thread(
    s: &Services,
    viewer: &Viewer,
    id: Uuid,
    params: &ConversationParams,
    people: &[Person],
) -> Result<Thread, Response> {
    let p = &viewer.principal;
    let from_start = params.from.as_deref() == Some("start");
    let mut all: Vec<MessageView> = Vec::new();
    let mut earlier = false;
    let mut next_cursor = None;
    if from_start {
        let cursor = match non_empty(&params.cursor).map(|c| Uuid::parse_str(&c)) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                return Err(app_error(AppError::field(
                    "cursor",
                    "must be the next_cursor of a previous page",
                )))
            }
        };
        let page = messaging::list_messages(
            s,
            p,
            ConversationId::from(id),
            cursor.map(MessageId::from),
            Some(LATEST_MESSAGES),
        )
        .await
        .map_err(app_error)?;
        next_cursor = page.next_cursor.map(|c| c.to_string());
        all.extend(page.data.into_iter().map(MessageView::from));
    } else {
        // The end of the conversation, read from the end (however long it is).
        let latest = messaging::latest_messages(s, p, ConversationId::from(id), LATEST_MESSAGES)
            .await
            .map_err(app_error)?;
        earlier = latest.earlier;
        all.extend(latest.messages.into_iter().map(MessageView::from));
    }
    let (notes, messages): (Vec<MessageRow>, Vec<MessageRow>) = all
        .into_iter()
        .map(|m| message_row(m, people))
        .partition(|m| m.direction == "internal");
    Ok(Thread {
        conversation_id: id,
        messages,
        notes,
        earlier,
        next_cursor,
        from_start,
    })
}

#[derive(Template)]
#[template(path = "inbox/conversation.html")]
pub(super) struct ConversationPage {
    chrome: Chrome,
    list: ListView,
    thread: Thread,
    details: Details,
}

#[derive(Template)]
#[template(path = "inbox/messages.html")]
pub(super) struct MessagesFragment {
    thread: Thread,
    details: Details,
}

#[derive(Template)]
#[template(path = "inbox/details.html")]
pub(super) struct DetailsFragment {
    details: Details,
}

pub(super) async fn conversation(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(params): Query<ConversationParams>,
) -> Response {
    let s = &state.services;
    // An id that is not a UUID names no conversation: the same 404 as another tenant's.
    let Ok(id) = Uuid::parse_str(&id) else {
        return app_error(AppError::NotFound("conversation"));
    };
    let conv =
        match messaging::get_conversation(s, &viewer.principal, ConversationId::from(id)).await {
            Ok(c) => c,
            Err(e) => return app_error(e),
        };
    let people = people(s, &viewer).await;
    let now = s.clock.now();
    let window_end = conv
        .last_inbound_at
        .map(|t| t + messaging::CUSTOMER_SERVICE_WINDOW);
    let view = ConversationView::from(&conv);
    let details = Details {
        id,
        name: view
            .contact_name
            .clone()
            .unwrap_or_else(|| view.contact_phone.clone()),
        phone: view.contact_phone.clone(),
        contact_id: view.contact_id,
        status: view.status.clone(),
        assignee_id: view.assignee_id.map(|u| u.to_string()).unwrap_or_default(),
        assignee: name_of(&people, view.assignee_id),
        labels_text: view.labels.join(", "),
        labels: view.labels,
        window_open: window_end.is_some_and(|end| end > now),
        window_until: window_end.map(rfc3339),
        can_write: viewer
            .principal
            .impersonator
            .as_ref()
            .is_none_or(|i| i.write),
        me: viewer.principal.user_id.as_uuid().to_string(),
        people: people.clone(),
    };
    match params.fragment.as_deref() {
        Some("details") => return render(&DetailsFragment { details }),
        Some("messages") => {
            return match load_thread(s, &viewer, id, &params, &people).await {
                Ok(thread) => render(&MessagesFragment { thread, details }),
                Err(resp) => resp,
            }
        }
        _ => {}
    }
    let thread = match load_thread(s, &viewer, id, &params, &people).await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let list_query = ListQuery {
        status: params.status.clone(),
        assignee: params.assignee.clone(),
        label: params.label.clone(),
        cursor: None,
        fragment: None,
    };
    let list = match load_list(s, &viewer, &list_query, Some(id)).await {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let title = details.name.clone();
    render(&ConversationPage {
        chrome: Chrome::new(s, &viewer, title, Nav::Inbox),
        list,
        thread,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_errors_read_as_words_with_their_code() {
        let e = serde_json::json!([{"code": 131047, "title": "Re-engagement message",
            "message": "more than 24 hours have passed"}]);
        assert_eq!(
            error_text(&e),
            "Re-engagement message: more than 24 hours have passed (error 131047)"
        );
        let same = serde_json::json!([{"code": 1, "title": "X", "message": "X"}]);
        assert_eq!(error_text(&same), "X (error 1)");
    }

    #[test]
    fn filters_keep_only_what_is_set_and_encode_it() {
        let f = Filters {
            status: "open".into(),
            assignee: String::new(),
            label: "a b&c".into(),
        };
        assert_eq!(f.query(), "status=open&label=a%20b%26c");
        assert_eq!(f.suffix(), "?status=open&label=a%20b%26c");
        assert_eq!(Filters::default().suffix(), "");
    }
}
