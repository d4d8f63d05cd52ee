//! `/tickets` (filtered list), `/tickets/new` (also from a conversation of the inbox) and
//! `/tickets/{id}` (the ticket, its comments thread and its attachments).
//!
//! Reading calls the `palisade_core::tickets` use cases the JSON routes call (`tickets.read`:
//! admins and agents; another tenant's ticket is a `404` page). Every change is a `data-api`
//! form against the JSON API: `POST /api/v1/tickets`, `PATCH /api/v1/tickets/{id}`,
//! `POST /api/v1/tickets/{id}/comments` and the multipart upload
//! `POST /api/v1/tickets/{id}/attachments` (`app.js` sends a `multipart/form-data` form as
//! such), so the API's refusals (`413`, `422` with the accepted types, `429`) are shown on the
//! form as the API words them. Attachments download from `GET /api/v1/attachments/{id}`, which
//! the session cookie opens.

use super::page::{
    app_error, contact_label, label_map, non_blank, query_cursor, query_id, render, render_with,
    Choice, Chrome, Listing, Nav, PageQuery,
};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::auth::Principal;
use palisade_core::tickets::{self, sniff, TicketListQuery};
use palisade_core::{AppError, Services};
use palisade_domain::{ContactId, ConversationId, Permission, TicketId, UserId};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tickets", get(list))
        .route("/tickets/new", get(new))
        .route("/tickets/{id}", get(show))
}

const STATUSES: [(&str, &str); 4] = [
    ("open", "Open"),
    ("pending", "Pending"),
    ("solved", "Solved"),
    ("closed", "Closed"),
];
const PRIORITIES: [(&str, &str); 4] = [
    ("low", "Low"),
    ("normal", "Normal"),
    ("high", "High"),
    ("urgent", "Urgent"),
];

fn fixed(all: &[(&str, &str)]) -> Vec<Choice> {
    all.iter()
        .map(|(v, l)| Choice {
            value: (*v).to_owned(),
            label: (*l).to_owned(),
        })
        .collect()
}

fn label_of(all: &[(&str, &str)], v: &str) -> String {
    all.iter()
        .find(|(k, _)| *k == v)
        .map_or_else(|| v.to_owned(), |(_, l)| (*l).to_owned())
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "open" => "badge-open",
        "pending" => "badge-pending",
        _ => "badge-resolved",
    }
}

fn priority_badge(priority: &str) -> &'static str {
    match priority {
        "urgent" => "badge-danger",
        "high" => "badge-pending",
        _ => "badge-resolved",
    }
}

/// The tenant's users by id (empty if they may not be read).
async fn people(s: &Services, p: &Principal) -> Vec<Choice> {
    palisade_core::users::list(s, p, None, false)
        .await
        .map(|list| {
            list.into_iter()
                .map(|u| Choice {
                    value: u.id.to_string(),
                    label: u.name,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A contact's name as a person knows it (empty when it cannot be read).
async fn contact_name(s: &Services, p: &Principal, id: ContactId) -> String {
    palisade_core::contacts::get(s, p, id)
        .await
        .map(|c| contact_label(&c))
        .unwrap_or_default()
}

// ---- the list ----

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

struct Row {
    id: Uuid,
    subject: String,
    contact_id: String,
    contact: String,
    priority: String,
    priority_badge: &'static str,
    status: String,
    status_badge: &'static str,
    assignee: String,
    updated_at: String,
}

#[derive(Template)]
#[template(path = "tickets/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    people: Vec<Choice>,
    status: String,
    priority: String,
    assignee: String,
    q: String,
    list: Listing,
    can_write: bool,
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<ListParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    if let Err(e) = p.require(Permission::TicketsRead) {
        return app_error(e);
    }
    let list = Listing::new(
        "/tickets",
        &[
            ("status", &params.status),
            ("priority", &params.priority),
            ("assignee", &params.assignee),
            ("q", &params.q),
        ],
    );
    let assignee_id = match query_id(&params.assignee, "the assignee") {
        Ok(id) => id,
        Err(r) => return r,
    };
    let cursor = match query_cursor(&params.cursor) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let people = people(s, p).await;
    let names = label_map(&people);
    let mut page = ListPage {
        chrome: Chrome::new(s, &viewer, "Tickets", Nav::Tickets),
        rows: Vec::new(),
        statuses: fixed(&STATUSES),
        priorities: fixed(&PRIORITIES),
        people,
        status: params.status.trim().to_owned(),
        priority: params.priority.trim().to_owned(),
        assignee: params.assignee.trim().to_owned(),
        q: params.q.trim().to_owned(),
        list,
        can_write: p.require(Permission::TicketsWrite).is_ok(),
    };
    let query = TicketListQuery {
        status: non_blank(&params.status),
        priority: non_blank(&params.priority),
        assignee_id,
        contact_id: None,
        q: non_blank(&params.q),
        cursor,
        limit: Some(50),
    };
    let found = match page.list.rows(tickets::list(s, p, query).await) {
        Ok(found) => found,
        Err(r) => return r,
    };
    // The page's contacts, each read once (at most 50).
    let mut contacts: HashMap<ContactId, String> = HashMap::new();
    for t in &found {
        if let Some(c) = t.contact_id {
            if let std::collections::hash_map::Entry::Vacant(e) = contacts.entry(c) {
                e.insert(contact_name(s, p, c).await);
            }
        }
    }
    page.rows = found
        .iter()
        .map(|t| Row {
            id: t.id.as_uuid(),
            subject: t.subject.as_str().to_owned(),
            contact_id: t.contact_id.map(|c| c.to_string()).unwrap_or_default(),
            contact: t
                .contact_id
                .and_then(|c| contacts.get(&c).cloned())
                .unwrap_or_default(),
            priority: label_of(&PRIORITIES, t.priority.as_str()),
            priority_badge: priority_badge(t.priority.as_str()),
            status: label_of(&STATUSES, t.status.as_str()),
            status_badge: status_badge(t.status.as_str()),
            assignee: t
                .assignee_id
                .and_then(|a| names.get(&a.to_string()).cloned())
                .unwrap_or_default(),
            updated_at: palisade_domain::rfc3339(t.updated_at),
        })
        .collect();
    render_with(page.list.status, &page)
}

// ---- a new ticket ----

#[derive(Debug, Default, Deserialize)]
struct NewParams {
    #[serde(default)]
    contact: String,
    #[serde(default)]
    conversation: String,
}

#[derive(Template)]
#[template(path = "tickets/new.html")]
struct NewPage {
    chrome: Chrome,
    contacts: Vec<Choice>,
    people: Vec<Choice>,
    priorities: Vec<Choice>,
    contact_id: String,
    /// Opened from this conversation (its contact is the ticket's).
    conversation_id: String,
    conversation_contact: String,
    /// The viewer's id (the assignee chosen at first).
    me: String,
}

async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<NewParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    if let Err(e) = p.require(Permission::TicketsWrite) {
        return app_error(e);
    }
    let mut contact_id = params.contact.trim().to_owned();
    let mut conversation_id = String::new();
    let mut conversation_contact = String::new();
    if let Some(raw) = non_blank(&params.conversation) {
        // Another tenant's (or no) conversation: the 404 page.
        let Some(id) = Uuid::parse_str(&raw).ok().map(ConversationId::from_uuid) else {
            return app_error(AppError::NotFound("conversation"));
        };
        let conv = match palisade_core::messaging::get_conversation(s, p, id).await {
            Ok(c) => c,
            Err(e) => return app_error(e),
        };
        conversation_id = conv.id.to_string();
        contact_id = conv.contact_id.to_string();
        conversation_contact = contact_name(s, p, conv.contact_id).await;
    }
    let contacts = match palisade_core::contacts::list(
        s,
        p,
        palisade_core::contacts::ListQuery {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return app_error(e),
    };
    render(&NewPage {
        chrome: Chrome::new(s, &viewer, "New ticket", Nav::Tickets),
        contacts: contacts
            .data
            .iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: contact_label(c),
            })
            .collect(),
        people: people(s, p).await,
        priorities: fixed(&PRIORITIES),
        contact_id,
        conversation_id,
        conversation_contact,
        me: p.user_id.to_string(),
    })
}

// ---- one ticket ----

struct CommentRow {
    id: Uuid,
    body: String,
    public: bool,
    author: String,
    at: String,
}

struct AttachmentRow {
    filename: String,
    content_type: String,
    size: String,
    download_url: String,
    uploaded_by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "tickets/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: Uuid,
    subject: String,
    description: String,
    status: String,
    status_label: String,
    status_badge: &'static str,
    priority: String,
    priority_label: String,
    assignee_id: String,
    assignee: String,
    contact_id: String,
    contact: String,
    conversation_id: String,
    created_by: String,
    created_at: String,
    updated_at: String,
    comments: Vec<CommentRow>,
    attachments: Vec<AttachmentRow>,
    people: Vec<Choice>,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    accepted_types: String,
    max_size: String,
    can_write: bool,
}

/// `1536` → `1.5 KB`.
fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS.get(unit).copied().unwrap_or("GB"))
    }
}

/// The accepted upload types as a person reads them (`PNG, JPEG, PDF, …`).
fn accepted(types: &[String]) -> String {
    types
        .iter()
        .map(|t| {
            sniff::SAFE_TYPES
                .iter()
                .find(|(m, _)| m == t)
                .and_then(|(_, ext)| ext.first())
                .map_or_else(|| t.clone(), |e| e.to_ascii_uppercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a ticket id: the same 404 as another tenant's ticket.
    let Some(id) = Uuid::parse_str(id.trim()).ok().map(TicketId::from_uuid) else {
        return app_error(AppError::NotFound("ticket"));
    };
    let d = match tickets::get(s, p, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    let people = people(s, p).await;
    let names = label_map(&people);
    let name_of = |u: Option<UserId>| {
        u.and_then(|u| names.get(&u.to_string()).cloned())
            .unwrap_or_default()
    };
    let t = &d.ticket;
    let contact = match t.contact_id {
        Some(c) => contact_name(s, p, c).await,
        None => String::new(),
    };
    render(&ShowPage {
        chrome: Chrome::new(s, &viewer, t.subject.as_str(), Nav::Tickets),
        id: t.id.as_uuid(),
        subject: t.subject.as_str().to_owned(),
        description: t.description.clone(),
        status: t.status.as_str().to_owned(),
        status_label: label_of(&STATUSES, t.status.as_str()),
        status_badge: status_badge(t.status.as_str()),
        priority: t.priority.as_str().to_owned(),
        priority_label: label_of(&PRIORITIES, t.priority.as_str()),
        assignee_id: t.assignee_id.map(|a| a.to_string()).unwrap_or_default(),
        assignee: name_of(t.assignee_id),
        contact_id: t.contact_id.map(|c| c.to_string()).unwrap_or_default(),
        contact,
        conversation_id: t.conversation_id.map(|c| c.to_string()).unwrap_or_default(),
        created_by: name_of(t.created_by),
        created_at: palisade_domain::rfc3339(t.created_at),
        updated_at: palisade_domain::rfc3339(t.updated_at),
        comments: d
            .comments
            .iter()
            .map(|c| CommentRow {
                id: c.id.as_uuid(),
                body: c.body.clone(),
                public: c.visibility.as_str() == "public",
                author: name_of(c.author_id),
                at: palisade_domain::rfc3339(c.created_at),
            })
            .collect(),
        attachments: d
            .attachments
            .iter()
            .map(|a| AttachmentRow {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: human_size(a.size_bytes),
                download_url: format!("/api/v1/attachments/{}", a.id),
                uploaded_by: name_of(a.uploaded_by),
                at: palisade_domain::rfc3339(a.created_at),
            })
            .collect(),
        people,
        statuses: fixed(&STATUSES),
        priorities: fixed(&PRIORITIES),
        accepted_types: accepted(&s.settings.upload_allowed_types),
        max_size: human_size(i64::try_from(s.settings.upload_max_bytes).unwrap_or(i64::MAX)),
        can_write: p.require(Permission::TicketsWrite).is_ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_types_read_as_words() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(10 * 1024 * 1024), "10.0 MB");
        assert_eq!(
            accepted(&["image/png".into(), "application/pdf".into(), "x/y".into()]),
            "PNG, PDF, x/y"
        );
        assert_eq!(label_of(&STATUSES, "solved"), "Solved");
    }
}
