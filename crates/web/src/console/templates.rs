//! `/templates` (the WhatsApp message templates, filtered), `/templates/new` (submit one to
//! Meta) and `/templates/{id}` (one template's components as a preview).
//!
//! Reading calls the `palisade_core::templates` use cases the JSON routes call
//! (`templates.read`: admins and agents; another tenant's template is a `404` page). "Sync from
//! WhatsApp" (per connection) and "Delete" are `data-api` forms against
//! `POST /api/v1/whatsapp/templates/sync` and `DELETE /api/v1/whatsapp/templates/{id}`, shown
//! only to those with `templates.manage` / `templates.delete` (the API refuses the others).
//!
//! The new template form is answered by the console itself (`POST /templates/new`): Meta's
//! components are a nested list that a person should not type as JSON, so the handler builds
//! them from plain fields (header, body, example values one per line, footer, quick-reply
//! buttons one per line) and calls `templates::create`, the use case of
//! `POST /api/v1/whatsapp/templates`, after the checks the API makes for a change sent with
//! the session cookie (`forms::check_change`). The core's field errors
//! (`components.body.example`, …) are shown next to the field that holds them.

use super::forms::{ChangeForm, WithCsrf};
use super::page::{
    app_error, connection_choices, humanise, label_map, named_choices, non_blank, query_cursor,
    query_id, render, render_with, Choice, Chrome, Listing, Nav, PageQuery,
};
use super::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template as Askama;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::templates::{self, NewTemplateInput, TemplateListQuery};
use palisade_core::{AppError, Services};
use palisade_domain::{Permission, Template, TemplateId, TemplateStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list))
        .route("/templates/new", get(new).post(create))
        .route("/templates/{id}", get(show))
}

const CATEGORIES: [&str; 3] = ["MARKETING", "UTILITY", "AUTHENTICATION"];

/// The badge class of a status: approved green, pending amber, stopped red, the rest grey.
fn status_badge(status: &str) -> &'static str {
    match status {
        "APPROVED" => "badge-open",
        "PENDING" | "IN_APPEAL" => "badge-pending",
        "REJECTED" | "PAUSED" | "DISABLED" => "badge-danger",
        _ => "badge-resolved",
    }
}

// ---- the list ----

/// The filters as a GET form sends them: every value a string (empty: any).
#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    connection: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

struct Row {
    id: Uuid,
    name: String,
    language: String,
    category: String,
    status: String,
    badge: &'static str,
    quality: String,
    rejection_reason: String,
    connection: String,
}

#[derive(Askama)]
#[template(path = "templates/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    connections: Vec<Choice>,
    statuses: Vec<Choice>,
    categories: Vec<Choice>,
    connection: String,
    status: String,
    category: String,
    q: String,
    list: Listing,
    can_manage: bool,
}

fn row(t: &Template, names: &HashMap<String, String>) -> Row {
    let status = t.status.as_str().to_owned();
    Row {
        id: t.id.as_uuid(),
        name: t.name.clone(),
        language: t.language.clone(),
        category: humanise(t.category.as_str()),
        badge: status_badge(&status),
        status: humanise(&status),
        quality: t
            .quality_score
            .clone()
            .map(|q| humanise(&q))
            .unwrap_or_default(),
        rejection_reason: t.rejection_reason.clone().unwrap_or_default(),
        connection: names
            .get(&t.connection_id.to_string())
            .cloned()
            .unwrap_or_default(),
    }
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<ListParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    if let Err(e) = p.require(Permission::TemplatesRead) {
        return app_error(e);
    }
    let list = Listing::new(
        "/templates",
        &[
            ("connection", &params.connection),
            ("status", &params.status),
            ("category", &params.category),
            ("q", &params.q),
        ],
    );
    let connection_id = match query_id(&params.connection, "the connection") {
        Ok(id) => id,
        Err(r) => return r,
    };
    let cursor = match query_cursor(&params.cursor) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let connections = connection_choices(s, p).await;
    let names = label_map(&connections);
    let mut page = ListPage {
        chrome: Chrome::new(s, &viewer, "Templates", Nav::Templates),
        rows: Vec::new(),
        connections,
        statuses: named_choices(TemplateStatus::NAMED.iter().map(|st| st.as_str())),
        categories: named_choices(CATEGORIES),
        connection: params.connection.trim().to_owned(),
        status: params.status.trim().to_ascii_uppercase(),
        category: params.category.trim().to_ascii_uppercase(),
        q: params.q.trim().to_owned(),
        list,
        can_manage: p.require(Permission::TemplatesManage).is_ok(),
    };
    let query = TemplateListQuery {
        connection_id,
        status: non_blank(&params.status),
        category: non_blank(&params.category),
        q: non_blank(&params.q),
        cursor,
        limit: Some(50),
    };
    let found = match page.list.rows(templates::list(s, p, query).await) {
        Ok(found) => found,
        Err(r) => return r,
    };
    page.rows = found.iter().map(|t| row(t, &names)).collect();
    render_with(page.list.status, &page)
}

// ---- one template ----

/// A button of the preview.
struct ButtonView {
    kind: String,
    text: String,
    target: String,
}

#[derive(Askama)]
#[template(path = "templates/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    language: String,
    category: String,
    status: String,
    badge: &'static str,
    quality: String,
    rejection_reason: String,
    connection: String,
    meta_id: String,
    header_format: String,
    header_text: String,
    body: String,
    footer: String,
    buttons: Vec<ButtonView>,
    body_params: i64,
    header_params: i64,
    synced_at: String,
    updated_at: String,
    can_delete: bool,
}

fn str_of<'a>(c: &'a Value, key: &str) -> &'a str {
    c.get(key).and_then(Value::as_str).unwrap_or_default()
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a template id: the same 404 as another tenant's template.
    let Some(id) = Uuid::parse_str(id.trim()).ok().map(TemplateId::from_uuid) else {
        return app_error(AppError::NotFound("template"));
    };
    let t = match templates::get(s, p, id).await {
        Ok(t) => t,
        Err(e) => return app_error(e),
    };
    let names = label_map(&connection_choices(s, p).await);
    let r = row(&t, &names);
    let (mut header_format, mut header_text, mut body, mut footer) =
        (String::new(), String::new(), String::new(), String::new());
    let mut buttons = Vec::new();
    for c in t.components.as_array().into_iter().flatten() {
        match str_of(c, "type").to_ascii_uppercase().as_str() {
            "HEADER" => {
                header_format = str_of(c, "format").to_ascii_uppercase();
                header_text = str_of(c, "text").to_owned();
            }
            "BODY" => body = str_of(c, "text").to_owned(),
            "FOOTER" => footer = str_of(c, "text").to_owned(),
            "BUTTONS" => {
                for b in c
                    .get("buttons")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    buttons.push(ButtonView {
                        kind: humanise(str_of(b, "type")),
                        text: str_of(b, "text").to_owned(),
                        target: [str_of(b, "url"), str_of(b, "phone_number")]
                            .into_iter()
                            .find(|x| !x.is_empty())
                            .unwrap_or_default()
                            .to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    render(&ShowPage {
        chrome: Chrome::new(s, &viewer, t.name.clone(), Nav::Templates),
        id: r.id,
        name: r.name,
        language: r.language,
        category: r.category,
        status: r.status,
        badge: r.badge,
        quality: r.quality,
        rejection_reason: r.rejection_reason,
        connection: r.connection,
        meta_id: t.meta_id.clone(),
        header_format: if header_format == "TEXT" {
            String::new()
        } else {
            humanise(&header_format)
        },
        header_text,
        body,
        footer,
        buttons,
        body_params: t.body_params,
        header_params: t.header_params,
        synced_at: t
            .synced_at
            .map(palisade_domain::rfc3339)
            .unwrap_or_default(),
        updated_at: palisade_domain::rfc3339(t.updated_at),
        can_delete: p.require(Permission::TemplatesDelete).is_ok(),
    })
}

// ---- a new template ----

#[derive(Debug, Default, Deserialize)]
struct NewParams {
    #[serde(default)]
    connection: String,
}

/// The form as a person fills it.
#[derive(Debug, Default, Deserialize)]
struct TemplateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    connection_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    header_text: String,
    /// The header's `{{1}}` example.
    #[serde(default)]
    header_example: String,
    #[serde(default)]
    body: String,
    /// One example value a line, `{{1}}` first.
    #[serde(default)]
    body_examples: String,
    #[serde(default)]
    footer: String,
    /// Quick-reply buttons, one a line.
    #[serde(default)]
    buttons: String,
}

impl WithCsrf for TemplateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Askama)]
#[template(path = "templates/new.html")]
struct NewPage {
    chrome: Chrome,
    form: TemplateForm,
    connections: Vec<Choice>,
    categories: Vec<Choice>,
    error: String,
    fields: BTreeMap<String, String>,
}

impl NewPage {
    fn field_error(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

fn lines(raw: &str) -> Vec<String> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Meta's components from the form's plain fields (the core checks them).
fn components(f: &TemplateForm) -> Value {
    let mut out = Vec::new();
    let header = f.header_text.trim();
    if !header.is_empty() {
        let mut h = serde_json::Map::new();
        h.insert("type".into(), json!("HEADER"));
        h.insert("format".into(), json!("TEXT"));
        h.insert("text".into(), json!(header));
        let example = f.header_example.trim();
        if !example.is_empty() {
            h.insert("example".into(), json!({ "header_text": [example] }));
        }
        out.push(Value::Object(h));
    }
    let mut body = serde_json::Map::new();
    body.insert("type".into(), json!("BODY"));
    body.insert("text".into(), json!(f.body.trim()));
    let examples = lines(&f.body_examples);
    if !examples.is_empty() {
        body.insert("example".into(), json!({ "body_text": [examples] }));
    }
    out.push(Value::Object(body));
    let footer = f.footer.trim();
    if !footer.is_empty() {
        out.push(json!({"type": "FOOTER", "text": footer}));
    }
    let buttons: Vec<Value> = lines(&f.buttons)
        .into_iter()
        .map(|t| json!({"type": "QUICK_REPLY", "text": t}))
        .collect();
    if !buttons.is_empty() {
        out.push(json!({"type": "BUTTONS", "buttons": buttons}));
    }
    Value::Array(out)
}

/// The form field that shows a core field error (`components.body.example` → `body_examples`).
fn form_field(api: &str) -> &str {
    match api {
        "components.header.text" | "components.header.format" => "header_text",
        "components.header.example" => "header_example",
        "components.body.text" | "components" => "body",
        "components.body.example" => "body_examples",
        "components.footer.text" => "footer",
        "components.buttons" => "buttons",
        other => other,
    }
}

async fn new_page(s: &Services, viewer: &Viewer, form: TemplateForm) -> Result<NewPage, AppError> {
    viewer.principal.require(Permission::TemplatesManage)?;
    Ok(NewPage {
        chrome: Chrome::new(s, viewer, "New template", Nav::Templates),
        connections: connection_choices(s, &viewer.principal).await,
        categories: named_choices(CATEGORIES),
        form,
        error: String::new(),
        fields: BTreeMap::new(),
    })
}

async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<NewParams>,
) -> Response {
    let form = TemplateForm {
        connection_id: params.connection,
        language: "en_US".into(),
        category: "UTILITY".into(),
        ..TemplateForm::default()
    };
    match new_page(&state.services, &viewer, form).await {
        Ok(page) => render(&page),
        Err(e) => app_error(e),
    }
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    ChangeForm(f): ChangeForm<TemplateForm>,
) -> Response {
    let s = &state.services;
    let result = match Uuid::parse_str(f.connection_id.trim()) {
        Ok(connection_id) => {
            templates::create(
                s,
                &viewer.principal,
                &meta,
                NewTemplateInput {
                    connection_id,
                    name: f.name.clone(),
                    language: f.language.clone(),
                    category: f.category.clone(),
                    components: components(&f),
                },
            )
            .await
        }
        Err(_) => Err(AppError::field(
            "connection_id",
            "choose the WhatsApp number the template is for",
        )),
    };
    let e = match result {
        Ok(t) => return super::auth_pages::see_other(&format!("/templates/{}", t.id)),
        Err(e) => e,
    };
    // Refusals the person can act on come back on the form; the rest are pages.
    let shown_on_form = matches!(
        e,
        AppError::Validation { .. }
            | AppError::Unprocessable { .. }
            | AppError::Conflict { .. }
            | AppError::Unavailable { .. }
    );
    if !shown_on_form {
        return app_error(e);
    }
    let mut page = match new_page(s, &viewer, f).await {
        Ok(p) => p,
        Err(_) => return app_error(e),
    };
    let c = crate::error::classify(e);
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in c.fields.unwrap_or_default() {
        let slot = fields.entry(form_field(&k).to_owned()).or_default();
        if !slot.is_empty() {
            slot.push(' ');
        }
        slot.push_str(&v.join(" "));
    }
    page.error = if fields.is_empty() {
        format!("The template was not created: {}", c.message)
    } else {
        "The template was not created: check the fields marked below.".into()
    };
    page.fields = fields;
    render_with(c.status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_meta_s_components() {
        let f = TemplateForm {
            header_text: "Order {{1}}".into(),
            header_example: "#1001".into(),
            body: "Hi {{1}}, your order {{2}} shipped.".into(),
            body_examples: "Ana\n\n #1001 \n".into(),
            footer: "Acme".into(),
            buttons: "Track\nStop\n".into(),
            ..TemplateForm::default()
        };
        assert_eq!(
            components(&f),
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}",
                 "example": {"header_text": ["#1001"]}},
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped.",
                 "example": {"body_text": [["Ana", "#1001"]]}},
                {"type": "FOOTER", "text": "Acme"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Track"}, {"type": "QUICK_REPLY", "text": "Stop"}]}
            ])
        );
        let plain = TemplateForm {
            body: "Hello".into(),
            ..TemplateForm::default()
        };
        assert_eq!(
            components(&plain),
            json!([{"type": "BODY", "text": "Hello"}])
        );
    }

    #[test]
    fn statuses_read_as_words_with_a_badge() {
        assert_eq!(humanise("IN_APPEAL"), "In appeal");
        assert_eq!(status_badge("APPROVED"), "badge-open");
        assert_eq!(status_badge("REJECTED"), "badge-danger");
        assert_eq!(form_field("components.body.example"), "body_examples");
    }
}
