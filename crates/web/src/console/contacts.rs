//! `/contacts`, `/contacts/new`, `/contacts/{id}`: the tenant's contacts.
//!
//! Reading calls the same `palisade_core::contacts` use cases as `GET /api/v1/contacts…`, so who
//! may see what is the API's (agents and admins read and edit; erasing and exporting are the
//! admins'). Creating, editing and erasing are `data-api` forms against `POST`, `PATCH` and
//! `DELETE /api/v1/contacts…`; `static/contacts.js` turns the custom-attribute rows into the
//! one JSON object the API takes. "Export CSV" is a plain link to `GET /api/v1/contacts/export`
//! with the list's filters: a GET is authenticated by the session cookie and needs no CSRF
//! token, and the browser downloads the answer (the API names the file).

use super::page::{app_error, render, Chrome, Nav};
use super::session::url_encode;
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::contacts::{self, ContactView, ListQuery};
use palisade_core::integrations::{self, OrderView};
use palisade_core::messaging::ConversationView;
use palisade_core::AppError;
use palisade_domain::{ContactId, Permission};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(list))
        .route("/contacts/new", get(new))
        .route("/contacts/{id}", get(show))
}

/// The list's filters as a GET form sends them: every value a string, so that nothing a person
/// types becomes a rejected request; the use case parses them (its `422` is shown at the form).
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    /// `""` (everyone), `true` or `false`.
    #[serde(default)]
    opted_out: String,
    #[serde(default)]
    cursor: String,
}

/// A custom attribute as a row of the form: its key, its value as text and the JSON type the
/// value had (`contacts.js` sends a number, boolean or null back as one when it still reads as
/// one).
struct AttributeRow {
    key: String,
    value: String,
    kind: &'static str,
}

fn attribute_rows(v: &Value) -> Vec<AttributeRow> {
    let Value::Object(map) = v else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let (value, kind) = match v {
                Value::String(s) => (s.clone(), "string"),
                Value::Number(n) => (n.to_string(), "number"),
                Value::Bool(b) => (b.to_string(), "boolean"),
                Value::Null => (String::new(), "null"),
                other => (other.to_string(), "string"),
            };
            AttributeRow {
                key: k.clone(),
                value,
                kind,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "contacts/list.html")]
struct ListPage {
    chrome: Chrome,
    contacts: Vec<ContactView>,
    q: String,
    tag: String,
    opted_out: String,
    /// The filters as a query string (`q=…&tag=…`), for the paging and export links.
    filters: String,
    next_cursor: Option<Uuid>,
    paged: bool,
    filtered: bool,
    filter_error: String,
    /// Field errors of the filters, by field (`tag`, `cursor`).
    filter_fields: BTreeMap<String, String>,
    can_write: bool,
    can_export: bool,
}

impl ListPage {
    fn field_error(&self, name: &str) -> &str {
        self.filter_fields.get(name).map_or("", String::as_str)
    }
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<ListParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let opted_out = match params.opted_out.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let mut filters = Vec::new();
    for (k, v) in [("q", &params.q), ("tag", &params.tag)] {
        if !v.trim().is_empty() {
            filters.push(format!("{k}={}", url_encode(v)));
        }
    }
    if let Some(o) = opted_out {
        filters.push(format!("opted_out={o}"));
    }
    let mut page = ListPage {
        chrome: Chrome::new(s, &viewer, "Contacts", Nav::Contacts),
        contacts: Vec::new(),
        q: params.q.clone(),
        tag: params.tag.clone(),
        opted_out: opted_out.map(|o| o.to_string()).unwrap_or_default(),
        filtered: !filters.is_empty(),
        filters: filters.join("&"),
        next_cursor: None,
        paged: !params.cursor.is_empty(),
        filter_error: String::new(),
        filter_fields: BTreeMap::new(),
        can_write: p.require(Permission::ContactsWrite).is_ok(),
        can_export: p.require(Permission::DataExport).is_ok(),
    };
    let cursor = match params.cursor.trim() {
        "" => None,
        c => match Uuid::parse_str(c) {
            Ok(id) => Some(id),
            Err(_) => {
                return app_error(AppError::field(
                    "cursor",
                    "must be the next_cursor of a previous page",
                ))
            }
        },
    };
    let query = ListQuery {
        q: Some(params.q).filter(|q| !q.trim().is_empty()),
        tag: Some(params.tag).filter(|t| !t.trim().is_empty()),
        opted_out,
        cursor,
        limit: Some(50),
    };
    match contacts::list(s, p, query).await {
        Ok(found) => {
            page.contacts = found.data.iter().map(ContactView::from).collect();
            page.next_cursor = found.next_cursor;
        }
        // A filter no contact could match (a malformed tag): the form says so next to it.
        Err(e @ AppError::Validation { .. }) => {
            let c = crate::error::classify(e);
            page.filter_error = c.message;
            page.filter_fields = super::page::field_lines(c.fields);
        }
        Err(e) => return app_error(e),
    }
    render(&page)
}

/// What the contact form shows (empty for a new contact).
#[derive(Default)]
struct FormValues {
    /// `true` on a contact's page: empty name and email are sent as `null` (cleared), the
    /// consent choice may keep the current state.
    editing: bool,
    name: String,
    phone: String,
    email: String,
    tags: String,
    attributes: Vec<AttributeRow>,
}

#[derive(Template)]
#[template(path = "contacts/new.html")]
struct NewPage {
    chrome: Chrome,
    form: FormValues,
}

async fn new(State(state): State<AppState>, viewer: Viewer) -> Response {
    // The form is the API's to refuse; a person who may not even read contacts gets the 403
    // page here rather than a form that can only fail.
    if let Err(e) = viewer.principal.require(Permission::ContactsRead) {
        return app_error(e);
    }
    render(&NewPage {
        chrome: Chrome::new(&state.services, &viewer, "New contact", Nav::Contacts),
        form: FormValues::default(),
    })
}

#[derive(Template)]
#[template(path = "contacts/show.html")]
struct ShowPage {
    chrome: Chrome,
    contact: ContactView,
    /// The name a person knows the contact by (name, WhatsApp profile name, or phone).
    display_name: String,
    form: FormValues,
    conversations: Vec<ConversationView>,
    next_cursor: Option<Uuid>,
    paged: bool,
    can_write: bool,
    can_erase: bool,
    can_read_conversations: bool,
    /// The contact's orders from the tenant's stores (integrations), newest first: the first
    /// page; `more_orders` when there are older ones (`GET /api/v1/contacts/{id}/orders`).
    orders: Vec<OrderView>,
    more_orders: bool,
}

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    #[serde(default)]
    cursor: String,
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(params): Query<ShowParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a contact id: the same 404 as an id of another tenant's contact.
    let Ok(id) = Uuid::parse_str(&id) else {
        return app_error(AppError::NotFound("contact"));
    };
    let contact = match contacts::get(s, p, ContactId::from(id)).await {
        Ok(c) => ContactView::from(&c),
        Err(e) => return app_error(e),
    };
    let cursor = match params.cursor.trim() {
        "" => None,
        c => match Uuid::parse_str(c) {
            Ok(id) => Some(id),
            Err(_) => {
                return app_error(AppError::field(
                    "cursor",
                    "must be the next_cursor of a previous page",
                ))
            }
        },
    };
    let can_read_conversations = p.require(Permission::ConversationsRead).is_ok();
    let (conversations, next_cursor) = if can_read_conversations {
        match contacts::conversations(s, p, ContactId::from(id), cursor).await {
            Ok(page) => (
                page.data.iter().map(ConversationView::from).collect(),
                page.next_cursor,
            ),
            Err(e) => return app_error(e),
        }
    } else {
        (Vec::new(), None)
    };
    let (orders, more_orders) =
        match integrations::orders_of_contact(s, p, ContactId::from(id), None).await {
            Ok(page) => (page.data, page.next_cursor.is_some()),
            Err(e) => return app_error(e),
        };
    let display_name = contact
        .name
        .clone()
        .or_else(|| contact.wa_profile_name.clone())
        .unwrap_or_else(|| contact.phone.clone());
    render(&ShowPage {
        chrome: Chrome::new(s, &viewer, display_name.clone(), Nav::Contacts),
        display_name,
        form: FormValues {
            editing: true,
            name: contact.name.clone().unwrap_or_default(),
            phone: contact.phone.clone(),
            email: contact.email.clone().unwrap_or_default(),
            tags: contact.tags.join(", "),
            attributes: attribute_rows(&contact.custom_attributes),
        },
        contact,
        conversations,
        next_cursor,
        paged: cursor.is_some(),
        can_write: p.require(Permission::ContactsWrite).is_ok(),
        can_erase: p.require(Permission::ContactsDelete).is_ok(),
        can_read_conversations,
        orders,
        more_orders,
    })
}
