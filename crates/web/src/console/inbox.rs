//! `/inbox` and `/inbox/{conversation_id}`: the shared inbox and a conversation.
//!
//! - `/inbox`: the tenant's conversations by last activity (the core's
//!   `messaging::list_conversations`, as `GET /api/v1/conversations`), narrowed by a GET form
//!   (status, assignee incl. "me" and "unassigned", label), paged with the API's cursor.
//! - `/inbox/{id}`: the conversation's latest messages (`messaging::latest_messages`, read from
//!   the end; "Earlier messages" pages from the start with `messaging::list_messages`, as
//!   `GET /api/v1/conversations/{id}/messages`), the internal notes among them apart, a composer (text while the customer service window is open, else a template), and
//!   the assign / labels / status forms. Changes are `data-api` forms against the JSON API.
//! - Live: `static/inbox.js` listens on the websocket (`live.js`) and re-fetches the parts an
//!   event touches as server-rendered fragments: `/inbox?fragment=list&…` (the list, with the
//!   same filters) and `/inbox/{id}?fragment=messages` / `?fragment=details`. A fragment is the
//!   same template block the page includes, rendered alone.

use super::page::{app_error, non_blank, render, Chrome, Nav};
use super::session::url_encode;
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::messaging::{
    self, ConversationListItemView, ConversationQuery, ConversationView, MessageView,
};
use palisade_core::{AppError, Services};
use palisade_domain::{rfc3339, ConversationId, MessageId};
use serde::Deserialize;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/{id}", get(conversation))
        // The upload counts its bytes itself (`routes::tickets::read_upload`'s limit).
        .route(
            "/inbox/{id}/attachments",
            axum::routing::post(send_file).layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

/// The media types the composer's "Attach file" offers.
const FILE_KINDS: [&str; 2] = ["image", "document"];

/// `POST /inbox/{id}/attachments`: the composer's "Attach file" (a `multipart/form-data` form
/// that works without script: `csrf`, `type`, `caption`, `file`). Uploads the file to the
/// conversation and sends it, with the API's checks (same origin, the session's CSRF token, no
/// read-only impersonation) and the same use cases (`tickets::attachments::upload`,
/// `messaging::send_message`); then back to the conversation.
async fn send_file(
    State(state): State<AppState>,
    viewer: Viewer,
    crate::extract::Meta(meta): crate::extract::Meta,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Response {
    use axum::extract::{FromRequest, Multipart};
    use palisade_core::tickets::attachments::{self, IncomingFile};
    let s = &state.services;
    let Ok(id) = Uuid::parse_str(&id) else {
        return app_error(AppError::NotFound("conversation"));
    };
    let owner = palisade_domain::AttachmentOwner::Conversation(ConversationId::from(id));
    let max = match attachments::may_upload(s, &viewer.principal, owner).await {
        Ok(m) => m,
        Err(e) => return app_error(e),
    };
    let bad = |m: &str| {
        app_error(AppError::BadRequest {
            code: palisade_core::error::code::INVALID_BODY,
            message: format!("This form could not be read: {m}"),
        })
    };
    let mut form = match Multipart::from_request(req, &()).await {
        Ok(f) => f,
        Err(e) => return bad(&e.body_text()),
    };
    let (mut csrf, mut kind, mut caption, mut file) =
        (String::new(), String::new(), String::new(), None);
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return bad(&e.body_text()),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            // The CSRF token comes first in the form: nothing is read for a forged post.
            if let Err(r) = super::forms::check_change(s, &viewer, &headers, &csrf) {
                return r;
            }
            let filename = field.file_name().unwrap_or_default().to_owned();
            let mut bytes = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if (bytes.len() + chunk.len()) as u64 > max {
                            return app_error(attachments::too_large(max));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return bad(&e.body_text()),
                }
            }
            file = Some(IncomingFile { filename, bytes });
            continue;
        }
        let value = match field.text().await {
            Ok(v) if v.len() <= 4096 => v,
            Ok(_) => return bad("a field is too long"),
            Err(e) => return bad(&e.body_text()),
        };
        match name.as_str() {
            "csrf" => csrf = value,
            "type" => kind = value,
            "caption" => caption = value,
            _ => return bad("unexpected field"),
        }
    }
    if let Err(r) = super::forms::check_change(s, &viewer, &headers, &csrf) {
        return r;
    }
    let Some(file) = file.filter(|f| !f.bytes.is_empty()) else {
        return app_error(AppError::field("file", "choose a file to send"));
    };
    let Some(kind) = FILE_KINDS
        .iter()
        .find(|k| **k == kind)
        .and_then(|k| k.parse::<palisade_domain::MessageKind>().ok())
    else {
        return app_error(AppError::field(
            "type",
            "send the file as an image or a document",
        ));
    };
    let a = match attachments::upload(s, &viewer.principal, &meta, owner, file).await {
        Ok(a) => a,
        Err(e) => return app_error(e),
    };
    let mut object = serde_json::Map::new();
    object.insert("attachment_id".into(), serde_json::json!(a.id));
    if !caption.trim().is_empty() {
        object.insert("caption".into(), serde_json::json!(caption.trim()));
    }
    let object = serde_json::Value::Object(object);
    let out = messaging::Outgoing::Media { kind, object };
    match messaging::send_message(s, &viewer.principal, &meta, ConversationId::from(id), out).await
    {
        Ok(_) => super::auth_pages::see_other(&format!("/inbox/{id}")),
        Err(e) => app_error(e),
    }
}

/// How many conversations a page of the list shows.
const LIST_PAGE: i64 = 50;
/// How many of the latest messages a conversation page shows (older ones: "Earlier messages").
/// Notes are messages of the conversation too: the notes panel shows the notes among these, and
/// older notes are on the "Earlier messages" pages beside the messages they were written
/// among. (A separate read of the latest notes would scan the whole conversation when it has
/// none: there is no index by direction.)
const LATEST_MESSAGES: i64 = 100;

/// The list's filters and position, as the GET form and the paging links carry them. Empty
/// values (the form's "Any") are no filter.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    assignee: Option<String>,
    label: Option<String>,
    cursor: Option<String>,
    /// `list`: only the list (for live updates).
    fragment: Option<String>,
}

/// A query value, trimmed; `None` when absent or blank.
fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref().and_then(non_blank)
}

/// The filters in effect, for the form, the links and the fragment's address.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: String,
    pub assignee: String,
    pub label: String,
}

impl Filters {
    fn from_query(q: &ListQuery) -> Filters {
        Filters {
            status: non_empty(&q.status).unwrap_or_default(),
            assignee: non_empty(&q.assignee).unwrap_or_default(),
            label: non_empty(&q.label).unwrap_or_default(),
        }
    }

    /// `status=…&assignee=…&label=…` (only those set), percent-encoded.
    pub fn query(&self) -> String {
        [
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("label", &self.label),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// `?<query>` or nothing: appended to a conversation's link so that the list beside it keeps
    /// the filters.
    pub fn suffix(&self) -> String {
        let q = self.query();
        if q.is_empty() {
            q
        } else {
            format!("?{q}")
        }
    }

    /// `&<query>` or nothing: appended to a link that already has a query.
    pub fn and(&self) -> String {
        let q = self.query();
        if q.is_empty() {
            q
        } else {
            format!("&{q}")
        }
    }

    pub fn any(&self) -> bool {
        !(self.status.is_empty() && self.assignee.is_empty() && self.label.is_empty())
    }
}

/// A user of the tenant, as the assignee filter and the assign form offer them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub name: String,
}

/// One line of the list.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub name: String,
    pub phone: String,
    pub status: String,
    pub labels: Vec<String>,
    pub assignee: Option<String>,
    pub preview: Option<String>,
    pub preview_outbound: bool,
    pub last_at: String,
    pub current: bool,
}

/// The list as a page or fragment shows it.
pub struct ListView {
    pub rows: Vec<Row>,
    pub filters: Filters,
    pub next_cursor: Option<String>,
    pub paged: bool,
    /// The API's refusal of a filter (a field error), shown above the list.
    pub error: String,
    pub error_field: String,
    pub people: Vec<Person>,
    pub me: String,
}

impl ListView {
    /// The address the live script re-fetches the list from.
    pub fn fragment_url(&self) -> String {
        format!("/inbox?fragment=list{}", self.filters.and())
    }
}

async fn people(s: &Services, viewer: &Viewer) -> Vec<Person> {
    // Everyone may read the tenant's users (users.read); if that ever fails, the page still
    // works with ids instead of names.
    palisade_core::users::list(s, &viewer.principal, None, false)
        .await
        .map(|users| {
            users
                .into_iter()
                .map(|u| Person {
                    id: u.id.as_uuid().to_string(),
                    name: u.name,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn name_of(people: &[Person], id: Option<Uuid>) -> Option<String> {
    let id = id?.to_string();
    Some(
        people
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "a former user".to_owned()),
    )
}

/// Until the list carries each conversation's last message.
struct Preview {
    direction: String,
    r#type: String,
    text: Option<String>,
}

/// Loads the list for `q`. A filter the core refuses (422) becomes a message on the page, with
/// an empty list; any other refusal is the error page.
async fn load_list(
    s: &Services,
    viewer: &Viewer,
    q: &ListQuery,
    current: Option<Uuid>,
) -> Result<ListView, Response> {
    let filters = Filters::from_query(q);
    let people = people(s, viewer).await;
    let mut view = ListView {
        rows: Vec::new(),
        filters: filters.clone(),
        next_cursor: None,
        paged: non_empty(&q.cursor).is_some(),
        error: String::new(),
        error_field: String::new(),
        me: viewer.principal.user_id.as_uuid().to_string(),
        people,
    };
    let query = ConversationQuery {
        status: non_empty(&q.status),
        assignee: non_empty(&q.assignee),
        label: non_empty(&q.label),
        cursor: non_empty(&q.cursor),
        limit: Some(LIST_PAGE),
    };
    let page = match messaging::list_conversations(s, &viewer.principal, query).await {
        Ok(p) => p,
        Err(AppError::Validation { message, fields }) => {
            view.error_field = fields.keys().next().cloned().unwrap_or_default();
            view.error = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.join(" ")))
                .collect::<Vec<_>>()
                .join(" ");
            if view.error.is_empty() {
                view.error = message;
            }
            return Ok(view);
        }
        // A cursor that is not one of this list's: the API's 400, as a message on the page.
        Err(AppError::BadRequest { message, .. }) => {
            view.error_field = "cursor".to_owned();
            view.error = format!("cursor: {message}");
            return Ok(view);
        }
        Err(e) => return Err(app_error(e)),
    };
    view.next_cursor = page.next_cursor;
    view.rows = page
        .data
        .iter()
        .map(|item| {
            let item = ConversationListItemView::from(item);
            let c = item.conversation;
            let last: Option<Preview> = item.last_message.map(|m| Preview {
                direction: m.direction.to_string(),
                r#type: m.r#type.to_string(),
                text: m.text,
            });
            Row {
                id: c.id,
                name: c
                    .contact_name
                    .clone()
                    .unwrap_or_else(|| c.contact_phone.clone()),
                phone: c.contact_phone,
                status: c.status,
                labels: c.labels,
                assignee: name_of(&view.people, c.assignee_id),
                preview_outbound: last.as_ref().is_some_and(|m| m.direction == "outbound"),
                preview: last.map(|m| m.text.unwrap_or_else(|| format!("[{}]", m.r#type))),
                last_at: c.last_message_at,
                current: Some(c.id) == current,
            }
        })
        .collect();
    Ok(view)
}

#[derive(Template)]
#[template(path = "inbox/index.html")]
struct InboxPage {
    chrome: Chrome,
    list: ListView,
}

#[derive(Template)]
#[template(path = "inbox/list.html")]
struct ListFragment {
    list: ListView,
}

async fn inbox(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let s = &state.services;
    let list = match load_list(s, &viewer, &q, None).await {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let status = if list.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut resp = if q.fragment.as_deref() == Some("list") {
        render(&ListFragment { list })
    } else {
        render(&InboxPage {
            chrome: Chrome::new(s, &viewer, "Inbox", Nav::Inbox),
            list,
        })
    };
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    resp
}

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

fn error_text(e: &serde_json::Value) -> String {
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

fn message_row(m: MessageView, people: &[Person]) -> MessageRow {
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

async fn load_thread(
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
struct ConversationPage {
    chrome: Chrome,
    list: ListView,
    thread: Thread,
    details: Details,
}

#[derive(Template)]
#[template(path = "inbox/messages.html")]
struct MessagesFragment {
    thread: Thread,
    details: Details,
}

#[derive(Template)]
#[template(path = "inbox/details.html")]
struct DetailsFragment {
    details: Details,
}

async fn conversation(
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
