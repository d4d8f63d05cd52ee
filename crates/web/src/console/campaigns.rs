//! `/campaigns` (the broadcast campaigns, filtered by status), `/campaigns/new` (a draft from
//! a form) and `/campaigns/{id}` (status, counts, failures, recipients and the actions).
//!
//! Reading calls the `palisade_core::campaigns` use cases the JSON routes call
//! (`campaigns.read`: admins and agents; another tenant's campaign is a `404` page). Every
//! change is a plain form the console answers itself, so the pages work without script: the
//! new campaign form (`POST /campaigns/new`, calling `campaigns::create`) and the actions
//! (`POST /campaigns/{id}/start|pause|resume|cancel|delete`, calling `campaigns::act` and
//! `campaigns::delete`), each after the checks the API makes for a change sent with the
//! session cookie (`forms::check_change`: same origin, the session's CSRF token, no read-only
//! impersonation). Permissions are the core's: an agent sees no write control, and a form
//! sent anyway is refused with the API's `403`.
//!
//! The new campaign form asks for one parameter row per variable of the chosen template
//! (header variables first, then the body's, as the core counts them). Without script the
//! rows follow the template through a **Choose template** button (the same form, posted with
//! `step=choose`: it re-renders, nothing is created).
//!
//! A draft or scheduled campaign is edited on the same form at `/campaigns/{id}/edit`, filled
//! from the campaign (its template found among the number's approved ones by name and
//! language) and saved with `campaigns::update` (every field sent, so an emptied time clears
//! the schedule); a campaign past that is refused with the API's `409`.

use super::forms::{bad_form, check_change};
use super::page::{
    app_error, bad_query, contact_label, filter_query, humanise, label_map, non_blank, query_id,
    render, render_with, Choice, Chrome, Nav,
};
use super::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template as Askama;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use palisade_core::auth::Principal;
use palisade_core::campaigns::view::CampaignCountsView;
use palisade_core::campaigns::{
    self, Action, CampaignListQuery, CampaignPatch, NewCampaign, RecipientQuery, RECIPIENT_STATUSES,
};
use palisade_core::templates::{self, TemplateListQuery};
use palisade_core::{AppError, Services};
use palisade_domain::integration::TemplateParameter;
use palisade_domain::{CampaignId, CampaignStatus, ContactId, Permission, Template};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns", get(list))
        .route("/campaigns/new", get(new).post(create))
        .route("/campaigns/{id}", get(show))
        .route("/campaigns/{id}/edit", get(edit).post(save))
        .route("/campaigns/{id}/{action}", post(act))
}

/// The badge class of a campaign status: running green, waiting amber, cancelled red, the
/// rest grey.
fn status_badge(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Running => "badge-open",
        CampaignStatus::Scheduled | CampaignStatus::Paused => "badge-pending",
        CampaignStatus::Cancelled => "badge-danger",
        CampaignStatus::Draft | CampaignStatus::Completed => "badge-resolved",
    }
}

/// The badge class of a recipient status.
fn recipient_badge(status: &str) -> &'static str {
    match status {
        "delivered" | "read" => "badge-open",
        "queued" | "sent" => "badge-pending",
        "failed" => "badge-danger",
        _ => "badge-resolved",
    }
}

/// `1234567` → `1,234,567` (as the analytics figures).
fn thousands(n: i64) -> String {
    super::chart::group_digits(i128::from(n))
}

/// The tenant's connections (display name and number), for those who may read them
/// (`whatsapp.connections.manage`: admins); empty for the others.
async fn connections(s: &Services, p: &Principal) -> Vec<Choice> {
    palisade_core::whatsapp::connections::list(s, p)
        .await
        .map(|list| {
            list.into_iter()
                .map(|c| Choice {
                    value: c.id.to_string(),
                    label: match c.display_phone_number {
                        Some(n) => format!("{} ({n})", c.display_name),
                        None => c.display_name,
                    },
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A parameter as a sentence: `Text "SPRING-24"`, `Contact's name, else "friend"`.
fn describe(p: &TemplateParameter) -> String {
    match p {
        TemplateParameter::Literal(v) => format!("Text \u{201c}{v}\u{201d}"),
        TemplateParameter::ContactField { field, fallback } => {
            let f = field.as_string();
            let what = match f.strip_prefix("custom_attributes.") {
                Some(key) => format!("Contact's custom attribute {key}"),
                None => format!("Contact's {f}"),
            };
            match fallback {
                Some(fb) => format!("{what}, else \u{201c}{fb}\u{201d}"),
                None => what,
            }
        }
        TemplateParameter::OrderField(f) => format!("Order {}", f.as_str()),
    }
}

// ---- the list ----

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

struct Row {
    id: Uuid,
    name: String,
    status: String,
    badge: &'static str,
    connection: String,
    template: String,
    sent: String,
    targeted: String,
    failed: i64,
    /// When it is scheduled for (while scheduled), else when it was created.
    when_label: &'static str,
    when: String,
}

#[derive(Askama)]
#[template(path = "campaigns/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    statuses: Vec<Choice>,
    status: String,
    filters: String,
    filtered: bool,
    next_cursor: Option<Uuid>,
    error: String,
    status_error: String,
    show_connection: bool,
    can_write: bool,
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    if let Err(e) = p.require(Permission::CampaignsRead) {
        return app_error(e);
    }
    let cursor = match query_id(
        &params.cursor,
        "cursor (the next_cursor of a previous page)",
    ) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let filters = filter_query(&[("status", &params.status)]);
    let conns = connections(s, p).await;
    let conn_names = label_map(&conns);
    let mut page = ListPage {
        chrome: Chrome::new(s, &viewer, "Campaigns", Nav::Campaigns),
        rows: Vec::new(),
        statuses: CampaignStatus::ALL
            .iter()
            .map(|st| Choice {
                value: st.as_str().to_owned(),
                label: humanise(st.as_str()),
            })
            .collect(),
        status: params.status.trim().to_owned(),
        filtered: !filters.is_empty(),
        filters,
        next_cursor: None,
        error: String::new(),
        status_error: String::new(),
        show_connection: !conns.is_empty(),
        can_write: p.require(Permission::CampaignsWrite).is_ok(),
    };
    let found = campaigns::list(
        s,
        p,
        CampaignListQuery {
            status: non_blank(&params.status),
            cursor,
            limit: Some(25),
        },
    )
    .await;
    let found = match found {
        Ok(f) => f,
        // A status the API refuses: said next to the filter, with the API's status.
        Err(e @ AppError::Validation { .. }) => {
            let c = crate::error::classify(e);
            page.error = c.message;
            page.status_error = c
                .fields
                .unwrap_or_default()
                .into_values()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            return render_with(c.status, &page);
        }
        Err(e) => return app_error(e),
    };
    let ids: Vec<CampaignId> = found.data.iter().map(|c| c.id).collect();
    let counts: HashMap<CampaignId, _> = match campaigns::counts_of(s, p, &ids).await {
        Ok(list) => list.into_iter().collect(),
        Err(e) => return app_error(e),
    };
    page.next_cursor = found.next_cursor;
    page.rows = found
        .data
        .iter()
        .map(|c| {
            let n = counts.get(&c.id).cloned().unwrap_or_default();
            let scheduled = c.status == CampaignStatus::Scheduled && c.scheduled_at.is_some();
            Row {
                id: c.id.as_uuid(),
                name: c.name.clone(),
                status: humanise(c.status.as_str()),
                badge: status_badge(c.status),
                connection: conn_names
                    .get(&c.connection_id.to_string())
                    .cloned()
                    .unwrap_or_default(),
                template: format!("{} ({})", c.template_name, c.template_language),
                sent: thousands(n.sent + n.delivered + n.read),
                targeted: thousands(n.targeted),
                failed: n.failed,
                when_label: if scheduled { "Scheduled" } else { "Created" },
                when: palisade_domain::rfc3339(if scheduled {
                    c.scheduled_at.unwrap_or(c.created_at)
                } else {
                    c.created_at
                }),
            }
        })
        .collect();
    render(&page)
}

// ---- one campaign ----

#[derive(Debug, Default, Deserialize)]
struct ShowParams {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: String,
}

struct Figure {
    label: &'static str,
    value: String,
}

struct RecipientRow {
    contact_id: Uuid,
    contact: String,
    status: String,
    badge: &'static str,
    detail: String,
    updated_at: String,
}

struct Failure {
    code: i64,
    title: String,
    count: String,
}

/// A button of the page: the action's path segment, its label and, for the ones that cannot
/// be undone, the question asked first (with script).
struct ActionButton {
    action: &'static str,
    label: &'static str,
    class: &'static str,
    confirm: String,
    confirm_label: &'static str,
}

#[derive(Askama)]
#[template(path = "campaigns/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: Uuid,
    name: String,
    status: String,
    badge: &'static str,
    connection: String,
    template: String,
    parameters: Vec<String>,
    audience_tags: String,
    audience_exclude: String,
    audience_ids: usize,
    everyone: bool,
    scheduled_at: String,
    started_at: String,
    completed_at: String,
    created_at: String,
    figures: Vec<Figure>,
    failures: Vec<Failure>,
    actions: Vec<ActionButton>,
    /// Whether the page links to the edit form (a draft or scheduled campaign, a writer).
    can_edit: bool,
    recipients: Vec<RecipientRow>,
    recipient_statuses: Vec<Choice>,
    recipient_status: String,
    recipient_error: String,
    recipient_filters: String,
    next_cursor: Option<Uuid>,
}

/// The actions `status` allows, for someone who may write (and delete) campaigns.
fn actions_for(
    status: CampaignStatus,
    name: &str,
    can_write: bool,
    can_delete: bool,
) -> Vec<ActionButton> {
    let mut out = Vec::new();
    let button = |action, label, class| ActionButton {
        action,
        label,
        class,
        confirm: String::new(),
        confirm_label: "",
    };
    if can_write {
        if status.start(false).is_ok() {
            out.push(ActionButton {
                confirm: format!(
                    "Start the campaign {name}? Its audience is fixed now and its messages go out \
                     (at the scheduled time, if it is still ahead)."
                ),
                confirm_label: "Yes, start",
                ..button("start", "Start", "btn-primary")
            });
        }
        if status.pause().is_ok() {
            out.push(button("pause", "Pause", "btn-secondary"));
        }
        if status.resume(false).is_ok() {
            out.push(button("resume", "Resume", "btn-primary"));
        }
        if status.cancel().is_ok() {
            out.push(ActionButton {
                confirm: format!(
                    "Cancel the campaign {name}? The messages not sent yet will not be sent, \
                     and it cannot be started again."
                ),
                confirm_label: "Yes, cancel it",
                ..button("cancel", "Cancel campaign", "btn-danger")
            });
        }
    }
    if can_delete && status == CampaignStatus::Draft {
        out.push(ActionButton {
            confirm: format!("Delete the draft {name}?"),
            confirm_label: "Delete",
            ..button("delete", "Delete campaign", "btn-danger")
        });
    }
    out
}

fn figures(c: &CampaignCountsView) -> Vec<Figure> {
    [
        ("Targeted", c.targeted),
        ("Skipped", c.skipped),
        ("Queued", c.queued),
        ("Sent", c.sent),
        ("Delivered", c.delivered),
        ("Read", c.read),
        ("Failed", c.failed),
        ("Replied", c.replied),
    ]
    .into_iter()
    .map(|(label, n)| Figure {
        label,
        value: thousands(n),
    })
    .collect()
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    params: Result<Query<ShowParams>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a campaign id: the same 404 as another tenant's campaign.
    let Some(id) = Uuid::parse_str(id.trim()).ok().map(CampaignId::from_uuid) else {
        return app_error(AppError::NotFound("campaign"));
    };
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let d = match campaigns::get(s, p, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    let cursor = match query_id(
        &params.cursor,
        "cursor (the next_cursor of a previous page)",
    ) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let c = &d.campaign;
    let conn_names = label_map(&connections(s, p).await);
    let counts = CampaignCountsView::from(&d.counts);
    let time =
        |t: Option<time::OffsetDateTime>| t.map(palisade_domain::rfc3339).unwrap_or_default();
    let mut page = ShowPage {
        chrome: Chrome::new(s, &viewer, c.name.clone(), Nav::Campaigns),
        id: c.id.as_uuid(),
        name: c.name.clone(),
        status: humanise(c.status.as_str()),
        badge: status_badge(c.status),
        connection: conn_names
            .get(&c.connection_id.to_string())
            .cloned()
            .unwrap_or_default(),
        template: format!("{} ({})", c.template_name, c.template_language),
        parameters: c.parameters.iter().map(describe).collect(),
        audience_tags: c.audience.tags.join(", "),
        audience_exclude: c.audience.exclude_tags.join(", "),
        audience_ids: c.audience.contact_ids.len(),
        everyone: c.audience.everyone(),
        scheduled_at: time(c.scheduled_at),
        started_at: time(c.started_at),
        completed_at: time(c.completed_at),
        created_at: palisade_domain::rfc3339(c.created_at),
        figures: figures(&counts),
        failures: d
            .failures
            .iter()
            .map(|(code, title, count)| Failure {
                code: *code,
                title: title.clone(),
                count: thousands(*count),
            })
            .collect(),
        actions: actions_for(
            c.status,
            &c.name,
            p.require(Permission::CampaignsWrite).is_ok(),
            p.require(Permission::CampaignsDelete).is_ok(),
        ),
        can_edit: c.status.editable() && p.require(Permission::CampaignsWrite).is_ok(),
        recipients: Vec::new(),
        recipient_statuses: RECIPIENT_STATUSES
            .iter()
            .map(|st| Choice {
                value: (*st).to_owned(),
                label: humanise(st),
            })
            .collect(),
        recipient_status: params.status.trim().to_owned(),
        recipient_error: String::new(),
        recipient_filters: filter_query(&[("status", &params.status)]),
        next_cursor: None,
    };
    let found = campaigns::recipients(
        s,
        p,
        id,
        RecipientQuery {
            status: non_blank(&params.status),
            cursor,
            limit: Some(50),
        },
    )
    .await;
    let mut status = StatusCode::OK;
    match found {
        Ok(found) => {
            page.next_cursor = found.next_cursor;
            // The page's contacts in one read, as a person knows them (an erased contact, or
            // one that cannot be read: its id only).
            let ids: Vec<ContactId> = found
                .data
                .iter()
                .map(|r| ContactId::from_uuid(r.contact_id))
                .collect();
            let labels: HashMap<ContactId, String> = palisade_core::contacts::get_many(s, p, &ids)
                .await
                .unwrap_or_default()
                .iter()
                .map(|c| (c.id, contact_label(c)))
                .collect();
            for r in found.data {
                let contact = labels
                    .get(&ContactId::from_uuid(r.contact_id))
                    .cloned()
                    .unwrap_or_else(|| r.contact_id.to_string());
                let detail = match (&r.skip_reason, &r.error) {
                    (Some(reason), _) => humanise(reason),
                    (None, Some(e)) if e.code != 0 => format!("{} ({})", e.title, e.code),
                    (None, Some(e)) => e.title.clone(),
                    (None, None) => String::new(),
                };
                page.recipients.push(RecipientRow {
                    contact_id: r.contact_id,
                    contact,
                    badge: recipient_badge(&r.status),
                    status: humanise(&r.status),
                    detail,
                    updated_at: r.updated_at,
                });
            }
        }
        Err(e @ AppError::Validation { .. }) => {
            let c = crate::error::classify(e);
            page.recipient_error = c
                .fields
                .unwrap_or_default()
                .into_values()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if page.recipient_error.is_empty() {
                page.recipient_error = c.message;
            }
            status = c.status;
        }
        Err(e) => return app_error(e),
    }
    render_with(status, &page)
}

// ---- the actions ----

#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
}

async fn act(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = check_change(s, &viewer, &headers, &f.csrf) {
        return r;
    }
    let Some(id) = Uuid::parse_str(id.trim()).ok().map(CampaignId::from_uuid) else {
        return app_error(AppError::NotFound("campaign"));
    };
    let p = &viewer.principal;
    let to_campaign = format!("/campaigns/{id}");
    let result = match action.as_str() {
        "start" => campaigns::act(s, p, &meta, id, Action::Start)
            .await
            .map(|_| to_campaign),
        "pause" => campaigns::act(s, p, &meta, id, Action::Pause)
            .await
            .map(|_| to_campaign),
        "resume" => campaigns::act(s, p, &meta, id, Action::Resume)
            .await
            .map(|_| to_campaign),
        "cancel" => campaigns::act(s, p, &meta, id, Action::Cancel)
            .await
            .map(|_| to_campaign),
        "delete" => campaigns::delete(s, p, &meta, id)
            .await
            .map(|()| "/campaigns".to_owned()),
        _ => Err(AppError::NotFound("campaign action")),
    };
    match result {
        Ok(to) => super::auth_pages::see_other(&to),
        // A refusal (409 for the status, 422 for a template no longer approved, 403, 404):
        // the error page with the API's status and message.
        Err(e) => app_error(e),
    }
}

// ---- a new campaign ----

/// The kinds of value a template variable may take, as the form's select offers them.
const PARAM_KINDS: [(&str, &str); 5] = [
    ("literal", "Text (typed below)"),
    ("name", "Contact's name"),
    ("phone", "Contact's phone"),
    ("email", "Contact's email"),
    ("custom", "Contact's custom attribute (key below)"),
];

/// One parameter row as typed.
#[derive(Debug, Clone, Default)]
struct ParamRow {
    kind: String,
    value: String,
    fallback: String,
}

/// The form as a person fills it.
#[derive(Debug, Clone, Default)]
struct CampaignForm {
    csrf: String,
    step: String,
    name: String,
    connection_id: String,
    template: String,
    params: Vec<ParamRow>,
    tags: String,
    exclude_tags: String,
    contact_ids: String,
    scheduled_at: String,
}

impl CampaignForm {
    /// From the posted pairs (`param_kind_1`, `param_value_1`, `param_fallback_1`, …).
    fn from_pairs(pairs: Vec<(String, String)>) -> CampaignForm {
        let mut f = CampaignForm::default();
        let mut rows: BTreeMap<usize, ParamRow> = BTreeMap::new();
        for (k, v) in pairs {
            let row = |prefix: &str| {
                k.strip_prefix(prefix)
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| (1..=palisade_domain::integration::MAX_PARAMETERS).contains(n))
            };
            if let Some(n) = row("param_kind_") {
                rows.entry(n).or_default().kind = v;
            } else if let Some(n) = row("param_value_") {
                rows.entry(n).or_default().value = v;
            } else if let Some(n) = row("param_fallback_") {
                rows.entry(n).or_default().fallback = v;
            } else {
                match k.as_str() {
                    "csrf" => f.csrf = v,
                    "step" => f.step = v,
                    "name" => f.name = v,
                    "connection_id" => f.connection_id = v,
                    "template" => f.template = v,
                    "tags" => f.tags = v,
                    "exclude_tags" => f.exclude_tags = v,
                    "contact_ids" => f.contact_ids = v,
                    "scheduled_at" => f.scheduled_at = v,
                    _ => {}
                }
            }
        }
        let count = rows.keys().next_back().copied().unwrap_or(0);
        f.params = (1..=count)
            .map(|n| rows.remove(&n).unwrap_or_default())
            .collect();
        f
    }

    /// The parameters as the API takes them (the core parses and checks them).
    fn parameters(&self) -> Value {
        Value::Array(
            self.params
                .iter()
                .map(|r| {
                    let value = r.value.trim();
                    let field = match r.kind.as_str() {
                        "literal" | "" => return json!({"type": "literal", "value": r.value}),
                        "custom" => format!("custom_attributes.{value}"),
                        other => other.to_owned(),
                    };
                    let mut o = serde_json::Map::new();
                    o.insert("type".into(), json!("contact_field"));
                    o.insert("field".into(), json!(field));
                    if !r.fallback.trim().is_empty() {
                        o.insert("fallback".into(), json!(r.fallback.trim()));
                    }
                    Value::Object(o)
                })
                .collect(),
        )
    }

    fn audience(&self) -> Value {
        json!({
            "tags": split_list(&self.tags),
            "exclude_tags": split_list(&self.exclude_tags),
            "contact_ids": split_list(&self.contact_ids),
        })
    }

    /// The schedule as RFC 3339: a `datetime-local` value (`2030-01-31T09:00`) is read as UTC;
    /// anything else goes to the core as typed (which names what is wrong).
    fn scheduled_at(&self) -> Option<String> {
        let t = self.scheduled_at.trim();
        let shape = |s: &str| {
            s.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b'T',
                13 | 16 => b == b':',
                _ => b.is_ascii_digit(),
            })
        };
        match t.len() {
            0 => None,
            16 if shape(t) => Some(format!("{t}:00Z")),
            19 if shape(t) => Some(format!("{t}Z")),
            _ => Some(t.to_owned()),
        }
    }
}

/// Values separated by commas or lines, trimmed, blanks left out.
fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A parameter row as the page shows it.
struct ParamSlot {
    n: usize,
    /// `Header {{1}}`, `Body {{2}}`.
    label: String,
    row: ParamRow,
}

#[derive(Askama)]
#[template(path = "campaigns/new.html")]
struct NewPage {
    chrome: Chrome,
    /// The campaign edited (`/campaigns/{id}/edit`); `None` for a new one.
    editing: Option<Uuid>,
    form: CampaignForm,
    connections: Vec<Choice>,
    templates: Vec<Choice>,
    slots: Vec<ParamSlot>,
    kinds: Vec<Choice>,
    error: String,
    fields: BTreeMap<String, String>,
}

impl NewPage {
    fn field_error(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// The approved templates of a connection (those a campaign may send).
async fn approved(s: &Services, p: &Principal, connection: Uuid) -> Vec<Template> {
    templates::list(
        s,
        p,
        TemplateListQuery {
            connection_id: Some(connection),
            status: Some("APPROVED".into()),
            limit: Some(200),
            ..TemplateListQuery::default()
        },
    )
    .await
    .map(|page| page.data)
    .unwrap_or_default()
}

/// The form page for `form`: the number picked (the first when none or an unknown one), its
/// approved templates, and one row per variable of the template picked. Returns the chosen
/// template too.
async fn new_page(
    s: &Services,
    viewer: &Viewer,
    mut form: CampaignForm,
    editing: Option<Uuid>,
) -> Result<(NewPage, Option<Template>), AppError> {
    let p = &viewer.principal;
    p.require(Permission::CampaignsWrite)?;
    let connections = connections(s, p).await;
    if !connections
        .iter()
        .any(|c| c.value == form.connection_id.trim())
    {
        form.connection_id = connections
            .first()
            .map(|c| c.value.clone())
            .unwrap_or_default();
    }
    let list = match Uuid::parse_str(form.connection_id.trim()) {
        Ok(c) => approved(s, p, c).await,
        Err(_) => Vec::new(),
    };
    let chosen = list
        .iter()
        .find(|t| t.id.to_string() == form.template.trim())
        .or_else(|| list.first())
        .cloned();
    if let Some(t) = &chosen {
        form.template = t.id.to_string();
    }
    let header = chosen
        .as_ref()
        .map_or(0, |t| usize::try_from(t.header_params).unwrap_or(0));
    let wanted = chosen
        .as_ref()
        .map_or(0, |t| header + usize::try_from(t.body_params).unwrap_or(0));
    let slots = (1..=wanted)
        .map(|n| ParamSlot {
            n,
            label: if n <= header {
                format!("Header {{{{{n}}}}}")
            } else {
                format!("Body {{{{{}}}}}", n - header)
            },
            row: form.params.get(n - 1).cloned().unwrap_or(ParamRow {
                kind: "literal".into(),
                ..ParamRow::default()
            }),
        })
        .collect();
    let templates = list
        .iter()
        .map(|t| {
            let vars = t.header_params + t.body_params;
            Choice {
                value: t.id.to_string(),
                label: format!(
                    "{} ({}) · {vars} {}",
                    t.name,
                    t.language,
                    if vars == 1 { "variable" } else { "variables" }
                ),
            }
        })
        .collect();
    Ok((
        NewPage {
            chrome: Chrome::new(
                s,
                viewer,
                if editing.is_some() {
                    "Edit campaign"
                } else {
                    "New campaign"
                },
                Nav::Campaigns,
            ),
            editing,
            form,
            connections,
            templates,
            slots,
            kinds: PARAM_KINDS
                .iter()
                .map(|(v, l)| Choice {
                    value: (*v).to_owned(),
                    label: (*l).to_owned(),
                })
                .collect(),
            error: String::new(),
            fields: BTreeMap::new(),
        },
        chosen,
    ))
}

#[derive(Debug, Default, Deserialize)]
struct NewParams {
    #[serde(default)]
    connection: String,
    #[serde(default)]
    template: String,
}

async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<NewParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let form = CampaignForm {
        connection_id: params.connection,
        template: params.template,
        ..CampaignForm::default()
    };
    match new_page(&state.services, &viewer, form, None).await {
        Ok((page, _)) => render(&page),
        Err(e) => app_error(e),
    }
}

/// The campaign id of a path, or the `404` page another tenant's campaign gets.
fn campaign_id(raw: &str) -> Result<CampaignId, Response> {
    Uuid::parse_str(raw.trim())
        .map(CampaignId::from_uuid)
        .map_err(|_| app_error(AppError::NotFound("campaign")))
}

/// The refusal of an edit of a campaign past draft or scheduled, as the API says it.
fn not_editable(status: CampaignStatus) -> AppError {
    AppError::conflict(
        palisade_core::error::code::CAMPAIGN_NOT_EDITABLE,
        format!(
            "a {} campaign cannot be edited: only a draft or scheduled campaign can",
            status.as_str()
        ),
    )
}

impl CampaignForm {
    /// The form filled from a stored campaign; `template`: the id of its template among the
    /// number's approved ones (empty when it is not one of them any more).
    fn from_campaign(d: &campaigns::CampaignDetail, template: String) -> CampaignForm {
        let c = &d.campaign;
        let params = c
            .parameters
            .iter()
            .map(|p| match p {
                TemplateParameter::ContactField { field, fallback } => {
                    let f = field.as_string();
                    let (kind, value) = match f.strip_prefix("custom_attributes.") {
                        Some(key) => ("custom".to_owned(), key.to_owned()),
                        None => (f, String::new()),
                    };
                    ParamRow {
                        kind,
                        value,
                        fallback: fallback.clone().unwrap_or_default(),
                    }
                }
                TemplateParameter::Literal(v) => ParamRow {
                    kind: "literal".into(),
                    value: v.clone(),
                    fallback: String::new(),
                },
                TemplateParameter::OrderField(f) => ParamRow {
                    kind: "literal".into(),
                    value: f.as_str().to_owned(),
                    fallback: String::new(),
                },
            })
            .collect();
        // The form's time is a `datetime-local` value in UTC.
        let scheduled_at = c
            .scheduled_at
            .map(|t| {
                let t = t.to_offset(time::UtcOffset::UTC);
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute()
                )
            })
            .unwrap_or_default();
        CampaignForm {
            csrf: String::new(),
            step: String::new(),
            name: c.name.clone(),
            connection_id: c.connection_id.to_string(),
            template,
            params,
            tags: c.audience.tags.join(", "),
            exclude_tags: c.audience.exclude_tags.join(", "),
            contact_ids: c
                .audience
                .contact_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            scheduled_at,
        }
    }
}

/// `GET /campaigns/{id}/edit`: the form filled from a draft or scheduled campaign.
async fn edit(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let id = match campaign_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    if let Err(e) = p.require(Permission::CampaignsWrite) {
        return app_error(e);
    }
    let d = match campaigns::get(s, p, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    let c = &d.campaign;
    if !c.status.editable() {
        return app_error(not_editable(c.status));
    }
    let template = approved(s, p, c.connection_id.as_uuid())
        .await
        .into_iter()
        .find(|t| t.name == c.template_name && t.language == c.template_language)
        .map(|t| t.id.to_string())
        .unwrap_or_default();
    let form = CampaignForm::from_campaign(&d, template);
    match new_page(s, &viewer, form, Some(id.as_uuid())).await {
        Ok((page, _)) => render(&page),
        Err(e) => app_error(e),
    }
}

/// `POST /campaigns/{id}/edit`: saves the form with `campaigns::update`.
async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let id = match campaign_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    submit(&state, &viewer, &meta, &headers, form, Some(id)).await
}

/// The form field that shows a core field error (`audience.tags` → `tags`).
fn form_field(api: &str) -> &str {
    match api {
        "template.name" | "template.language" | "template" => "template",
        "audience.tags" | "audience" => "tags",
        "audience.exclude_tags" => "exclude_tags",
        "audience.contact_ids" => "contact_ids",
        other => other,
    }
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    submit(&state, &viewer, &meta, &headers, form, None).await
}

/// The new campaign form (`editing` `None`: `campaigns::create`) or the edit form of
/// `editing` (`campaigns::update`), posted: the campaign's page, or the form again with the
/// refusals at their fields.
async fn submit(
    state: &AppState,
    viewer: &Viewer,
    meta: &palisade_core::auth::RequestMeta,
    headers: &HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
    editing: Option<CampaignId>,
) -> Response {
    let s = &state.services;
    let f = match form {
        Ok(Form(pairs)) => CampaignForm::from_pairs(pairs),
        Err(e) => return bad_form(e),
    };
    if let Err(r) = check_change(s, viewer, headers, &f.csrf) {
        return r;
    }
    let typed_connection = f.connection_id.trim().to_owned();
    let typed_template = f.template.trim().to_owned();
    let (mut page, chosen) =
        match new_page(s, viewer, f.clone(), editing.map(|i| i.as_uuid())).await {
            Ok(x) => x,
            Err(e) => return app_error(e),
        };
    // "Choose template": the same form with the rows of the template picked; nothing sent.
    if f.step == "choose" {
        return render(&page);
    }
    // The number and template must be among those the page offered (the number's approved
    // templates); otherwise the core is asked with what cannot match, so that every other
    // field's mistake is said at once.
    let mut own: BTreeMap<String, String> = BTreeMap::new();
    if page.form.connection_id != typed_connection {
        own.insert(
            "connection_id".into(),
            "choose one of your WhatsApp numbers".into(),
        );
    }
    let template = chosen.filter(|t| t.id.to_string() == typed_template);
    if template.is_none() {
        own.insert(
            "template".into(),
            "choose an approved template of this number".into(),
        );
    }
    let new = NewCampaign {
        name: f.name.clone(),
        connection_id: Uuid::parse_str(&typed_connection).unwrap_or_else(|_| Uuid::nil()),
        template_name: template
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        template_language: template
            .as_ref()
            .map(|t| t.language.clone())
            .unwrap_or_default(),
        parameters: f.parameters(),
        audience: Some(f.audience()),
        scheduled_at: f.scheduled_at(),
    };
    let result = match editing {
        None => campaigns::create(s, &viewer.principal, meta, new).await,
        // Every field, so that an emptied time clears the schedule.
        Some(id) => {
            let patch = CampaignPatch {
                name: Some(new.name),
                connection_id: Some(new.connection_id),
                template_name: Some(new.template_name),
                template_language: Some(new.template_language),
                parameters: Some(new.parameters),
                audience: new.audience,
                scheduled_at: Some(new.scheduled_at),
            };
            campaigns::update(s, &viewer.principal, meta, id, patch).await
        }
    };
    let e = match result {
        Ok(d) => return super::auth_pages::see_other(&format!("/campaigns/{}", d.campaign.id)),
        Err(e) => e,
    };
    // Refusals the person can act on come back on the form; the rest are pages.
    let on_form = match &e {
        AppError::Validation { .. } | AppError::Unprocessable { .. } => true,
        AppError::NotFound(what) => *what == "WhatsApp connection",
        _ => false,
    };
    if !on_form {
        return app_error(e);
    }
    let c = crate::error::classify(e);
    let mut fields = own.clone();
    let mut add = |slot: &str, message: &str| {
        let text = fields.entry(slot.to_owned()).or_default();
        if !text.is_empty() && !text.contains(message) {
            text.push(' ');
        }
        if !text.contains(message) {
            text.push_str(message);
        }
    };
    for (k, v) in c.fields.clone().unwrap_or_default() {
        let slot = form_field(&k);
        // The console's own words for a template or number it did not offer.
        if own.contains_key(slot) {
            continue;
        }
        add(slot, &v.join(" "));
    }
    match c.code {
        palisade_core::error::code::TEMPLATE_PARAMETER_MISMATCH => add("parameters", &c.message),
        code if code.starts_with("template_") && !own.contains_key("template") => {
            add("template", &c.message);
        }
        palisade_core::error::code::NOT_FOUND if !own.contains_key("connection_id") => {
            add("connection_id", "choose one of your WhatsApp numbers");
        }
        _ => {}
    }
    let not = if editing.is_some() {
        "The campaign was not saved"
    } else {
        "The campaign was not created"
    };
    page.error = if fields.is_empty() {
        format!("{not}: {}", c.message)
    } else {
        format!("{not}: check the fields marked below.")
    };
    page.fields = fields;
    render_with(c.status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_s_parameters_audience_and_time() {
        let f = CampaignForm::from_pairs(vec![
            ("param_kind_2".into(), "literal".into()),
            ("param_value_2".into(), "SPRING-24".into()),
            ("param_kind_1".into(), "name".into()),
            ("param_fallback_1".into(), " friend ".into()),
            ("param_kind_3".into(), "custom".into()),
            ("param_value_3".into(), "city".into()),
            ("param_kind_99".into(), "literal".into()),
            ("tags".into(), "vip, lead\n".into()),
            ("contact_ids".into(), "a\nb, c".into()),
            ("scheduled_at".into(), "2030-01-31T09:00".into()),
        ]);
        assert_eq!(
            f.parameters(),
            json!([
                {"type": "contact_field", "field": "name", "fallback": "friend"},
                {"type": "literal", "value": "SPRING-24"},
                {"type": "contact_field", "field": "custom_attributes.city"},
            ])
        );
        assert_eq!(
            f.audience(),
            json!({"tags": ["vip", "lead"], "exclude_tags": [], "contact_ids": ["a", "b", "c"]})
        );
        assert_eq!(f.scheduled_at().as_deref(), Some("2030-01-31T09:00:00Z"));
        let typed = CampaignForm {
            scheduled_at: "tomorrow".into(),
            ..CampaignForm::default()
        };
        assert_eq!(typed.scheduled_at().as_deref(), Some("tomorrow"));
        assert_eq!(CampaignForm::default().scheduled_at(), None);
    }

    #[test]
    fn actions_follow_the_status_and_the_role() {
        let names = |st, w, d| {
            actions_for(st, "x", w, d)
                .iter()
                .map(|a| a.action)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(CampaignStatus::Draft, true, true),
            ["start", "cancel", "delete"]
        );
        assert_eq!(
            names(CampaignStatus::Running, true, true),
            ["pause", "cancel"]
        );
        assert_eq!(
            names(CampaignStatus::Paused, true, true),
            ["resume", "cancel"]
        );
        assert!(names(CampaignStatus::Completed, true, true).is_empty());
        assert!(names(CampaignStatus::Draft, false, false).is_empty());
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(0), "0");
    }
}
