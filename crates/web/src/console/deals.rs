//! `/deals` (the board), `/deals/new`, `/deals/{id}` (a deal and its stage history).
//!
//! Reading calls the `palisade_core::deals` use cases the JSON routes call (`deals.read`:
//! admins and agents; another tenant's pipeline or deal is a `404` page). The board shows one
//! pipeline's stages as columns (the number of deals, their value per currency, the newest
//! cards).
//!
//! Moving a card and creating a deal must work without script, so these two forms are answered
//! by the console itself (`POST /deals/{id}/move`, `POST /deals/new`) and call the same core use
//! cases as `PATCH /api/v1/deals/{id}` and `POST /api/v1/deals`. They pass the API's own
//! checks for a change made with the session cookie: a page of this origin, the session's CSRF
//! token in the form, no read-only impersonation ([`check_change`]); permissions, tenant scope,
//! audit, webhooks and history are the core's. Drag and drop (`static/deals.js`) only
//! submits a card's own "Move to" form, so there is one path for a move.

use super::auth_pages::{forged, see_other, session_csrf_ok};
use super::forms::same_origin;
use super::page::{app_error, bad_query, render, render_with, Chrome, Nav};
use super::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use palisade_core::auth::Principal;
use palisade_core::deals::{self, DealPatch, NewDeal};
use palisade_core::error::code;
use palisade_core::{AppError, Services};
use palisade_domain::deal::ISO_4217;
use palisade_domain::{DealId, FieldError, Permission, Pipeline, PipelineId, UserId};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deals", get(board))
        .route("/deals/new", get(new).post(create))
        .route("/deals/{id}", get(show))
        .route("/deals/{id}/move", post(move_deal))
}

/// Cards shown per column (the newest); the column's count and totals cover every deal.
const CARDS_PER_STAGE: i64 = 50;

// ---- money ----

/// The digits after the decimal point of an ISO 4217 currency (its minor unit).
pub(crate) fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// `1234567` EUR → `12,345.67 EUR`.
pub(crate) fn format_money(minor: i128, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10u128.pow(digits);
    let abs = minor.unsigned_abs();
    let whole = (abs / scale).to_string();
    let mut out = String::new();
    if minor < 0 {
        out.push('-');
    }
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if digits > 0 {
        out.push_str(&format!(".{:0w$}", abs % scale, w = digits as usize));
    }
    out.push(' ');
    out.push_str(currency);
    out
}

/// An amount as a person types it (`1250`, `1,250.50`, `1250,5`) in the currency's minor unit.
pub(crate) fn parse_amount(raw: &str, currency: &str) -> Result<i64, String> {
    let digits = minor_digits(currency);
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '\'')
        .collect();
    if s.is_empty() {
        return Err("enter an amount, like 1250.00 (0 if not known yet)".into());
    }
    if s.starts_with('-') {
        return Err("must be zero or more".into());
    }
    // A comma is the decimal separator when it is the only one and ends in 1..=digits digits
    // (`1250,5`); otherwise commas separate thousands (`1,250.50`).
    let s = if !s.contains('.')
        && s.matches(',').count() == 1
        && s.rsplit(',')
            .next()
            .is_some_and(|t| (1..=digits as usize).contains(&t.len()))
    {
        s.replace(',', ".")
    } else {
        s.replace(',', "")
    };
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(format!("must be an amount like 1250.50, not {raw:?}"));
    }
    if frac.len() > digits as usize {
        return Err(if digits == 0 {
            format!("{currency} has no decimals")
        } else {
            format!("{currency} has at most {digits} decimals")
        });
    }
    let too_large = || "is too large".to_owned();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<w$}", w = digits as usize)
            .parse()
            .map_err(|_| too_large())?
    };
    whole
        .checked_mul(10i64.pow(digits))
        .and_then(|v| v.checked_add(frac))
        .ok_or_else(too_large)
}

// ---- the checks of a change the console answers itself ----

/// The API's checks for a change sent with the session cookie: a page of this origin, the
/// session's CSRF token, and (as the API's middleware refuses every unsafe method of one) no
/// read-only impersonation.
pub(super) fn check_change(
    s: &Services,
    viewer: &Viewer,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(), Response> {
    if !same_origin(headers) || !session_csrf_ok(s, viewer, csrf) {
        return Err(forged());
    }
    if viewer
        .principal
        .impersonator
        .as_ref()
        .is_some_and(|i| !i.write)
    {
        return Err(app_error(AppError::Forbidden {
            code: code::IMPERSONATION_READ_ONLY,
            message: "this impersonation is read-only; start one with write access to change data"
                .into(),
        }));
    }
    Ok(())
}

fn bad_form(e: FormRejection) -> Response {
    app_error(AppError::BadRequest {
        code: code::INVALID_BODY,
        message: format!("This form could not be read: {}", e.body_text()),
    })
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw.trim()).ok()
}

/// The names of the tenant's users, for owners and the history (empty if they may not be read).
async fn user_names(s: &Services, p: &Principal) -> HashMap<UserId, String> {
    palisade_core::users::list(s, p, None, false)
        .await
        .map(|list| list.into_iter().map(|u| (u.id, u.name)).collect())
        .unwrap_or_default()
}

/// The pipeline `raw` names among the tenant's (the first when empty); `404` otherwise.
fn pick_pipeline(list: &[Pipeline], raw: &str) -> Result<Pipeline, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return list.first().cloned().ok_or(AppError::NotFound("pipeline"));
    }
    let id = parse_id(raw).map(PipelineId::from_uuid);
    list.iter()
        .find(|p| Some(p.id) == id)
        .cloned()
        .ok_or(AppError::NotFound("pipeline"))
}

// ---- the board ----

#[derive(Debug, Default, Deserialize)]
struct BoardParams {
    #[serde(default)]
    pipeline: String,
}

struct Choice {
    id: String,
    name: String,
}

struct CardView {
    id: Uuid,
    title: String,
    value: String,
    contact_id: Uuid,
    contact_name: String,
    owner: String,
    stage_id: String,
}

struct ColumnView {
    id: String,
    name: String,
    kind: &'static str,
    count: i64,
    totals: Vec<String>,
    cards: Vec<CardView>,
    more: i64,
}

#[derive(Template)]
#[template(path = "deals/board.html")]
struct BoardPage {
    chrome: Chrome,
    pipelines: Vec<Choice>,
    pipeline_id: String,
    pipeline_name: String,
    stages: Vec<Choice>,
    columns: Vec<ColumnView>,
    total_deals: i64,
    can_write: bool,
}

async fn board(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    params: Result<Query<BoardParams>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let pipelines = match deals::list_pipelines(s, p, &meta).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    let pipeline = match pick_pipeline(&pipelines, &params.pipeline) {
        Ok(pl) => pl,
        Err(e) => return app_error(e),
    };
    let b = match deals::board(s, p, pipeline.id, CARDS_PER_STAGE).await {
        Ok(b) => b,
        Err(e) => return app_error(e),
    };
    let names = user_names(s, p).await;
    let columns: Vec<ColumnView> = b
        .columns
        .iter()
        .map(|c| ColumnView {
            id: c.stage.id.to_string(),
            name: c.stage.name.as_str().to_owned(),
            kind: c.stage.kind.as_str(),
            count: c.count,
            totals: c
                .totals
                .iter()
                .map(|(cur, v)| format_money(*v, cur))
                .collect(),
            more: c.more(),
            cards: c
                .deals
                .iter()
                .map(|d| CardView {
                    id: d.deal.id.as_uuid(),
                    title: d.deal.title.as_str().to_owned(),
                    value: format_money(i128::from(d.deal.value_minor), d.deal.currency.as_str()),
                    contact_id: d.deal.contact_id.as_uuid(),
                    contact_name: d.contact_name.clone(),
                    owner: d
                        .deal
                        .owner_id
                        .and_then(|o| names.get(&o).cloned())
                        .unwrap_or_default(),
                    stage_id: d.deal.stage_id.to_string(),
                })
                .collect(),
        })
        .collect();
    render(&BoardPage {
        chrome: Chrome::new(s, &viewer, "Deals", Nav::Deals),
        pipelines: pipelines
            .iter()
            .map(|pl| Choice {
                id: pl.id.to_string(),
                name: pl.name.as_str().to_owned(),
            })
            .collect(),
        pipeline_id: b.pipeline.id.to_string(),
        pipeline_name: b.pipeline.name.as_str().to_owned(),
        stages: stage_options(&b.pipeline),
        total_deals: columns.iter().map(|c| c.count).sum(),
        columns,
        can_write: p.require(Permission::DealsWrite).is_ok(),
    })
}

fn stage_options(pl: &Pipeline) -> Vec<Choice> {
    pl.stages
        .iter()
        .map(|st| Choice {
            id: st.id.to_string(),
            name: match st.kind.as_str() {
                "won" => format!("{} (won)", st.name.as_str()),
                "lost" => format!("{} (lost)", st.name.as_str()),
                _ => st.name.as_str().to_owned(),
            },
        })
        .collect()
}

// ---- moving a deal ----

#[derive(Debug, Deserialize)]
struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    stage_id: String,
    /// `deal` to come back to the deal's page; anything else: the board.
    #[serde(default)]
    back: String,
}

async fn move_deal(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<MoveForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = check_change(s, &viewer, &headers, &f.csrf) {
        return r;
    }
    let Some(id) = parse_id(&id) else {
        return app_error(AppError::NotFound("deal"));
    };
    let Some(stage) = parse_id(&f.stage_id) else {
        return app_error(AppError::field(
            "stage_id",
            "choose a stage to move the deal to",
        ));
    };
    let patch = DealPatch {
        stage_id: Some(stage),
        ..DealPatch::default()
    };
    match deals::update(s, &viewer.principal, &meta, DealId::from_uuid(id), patch).await {
        Ok(d) if f.back == "deal" => see_other(&format!("/deals/{}", d.id)),
        Ok(d) => see_other(&format!("/deals?pipeline={}#deal-{}", d.pipeline_id, d.id)),
        Err(e) => app_error(e),
    }
}

// ---- a new deal ----

#[derive(Debug, Default, Deserialize)]
struct NewParams {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    contact: String,
}

#[derive(Debug, Default, Deserialize)]
struct DealForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    contact_id: String,
    #[serde(default)]
    pipeline_id: String,
    #[serde(default)]
    stage_id: String,
    #[serde(default)]
    owner_id: String,
}

#[derive(Template)]
#[template(path = "deals/new.html")]
struct NewPage {
    chrome: Chrome,
    form: DealForm,
    pipeline_name: String,
    stages: Vec<Choice>,
    contacts: Vec<Choice>,
    owners: Vec<Choice>,
    currencies: &'static [&'static str],
    error: String,
    fields: BTreeMap<String, String>,
}

impl NewPage {
    fn field_error(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// The form's page with what was typed (`form`) and the errors (`error`, `fields`).
async fn new_page(
    s: &Services,
    viewer: &Viewer,
    meta: &palisade_core::auth::RequestMeta,
    form: DealForm,
) -> Result<NewPage, AppError> {
    let p = &viewer.principal;
    p.require(Permission::DealsWrite)?;
    let pipelines = deals::list_pipelines(s, p, meta).await?;
    let pipeline = pick_pipeline(&pipelines, &form.pipeline_id)?;
    let contacts = palisade_core::contacts::list(
        s,
        p,
        palisade_core::contacts::ListQuery {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await?;
    let owners = palisade_core::users::list(s, p, None, false).await?;
    let form = DealForm {
        pipeline_id: pipeline.id.to_string(),
        ..form
    };
    Ok(NewPage {
        chrome: Chrome::new(s, viewer, "New deal", Nav::Deals),
        pipeline_name: pipeline.name.as_str().to_owned(),
        stages: stage_options(&pipeline),
        contacts: contacts
            .data
            .iter()
            .map(|c| Choice {
                id: c.id.to_string(),
                name: c
                    .name
                    .as_ref()
                    .map(|n| n.as_str().to_owned())
                    .or_else(|| c.wa_profile_name.clone())
                    .map(|n| format!("{n} ({})", c.phone.as_str()))
                    .unwrap_or_else(|| c.phone.as_str().to_owned()),
            })
            .collect(),
        owners: owners
            .iter()
            .map(|u| Choice {
                id: u.id.to_string(),
                name: u.name.clone(),
            })
            .collect(),
        currencies: ISO_4217,
        form,
        error: String::new(),
        fields: BTreeMap::new(),
    })
}

async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    params: Result<Query<NewParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    let form = DealForm {
        currency: "EUR".into(),
        contact_id: params.contact,
        pipeline_id: params.pipeline,
        stage_id: params.stage,
        owner_id: viewer.principal.user_id.to_string(),
        ..DealForm::default()
    };
    match new_page(&state.services, &viewer, &meta, form).await {
        Ok(page) => render(&page),
        Err(e) => app_error(e),
    }
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    headers: HeaderMap,
    form: Result<Form<DealForm>, FormRejection>,
) -> Response {
    let s = &state.services;
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => return bad_form(e),
    };
    if let Err(r) = check_change(s, &viewer, &headers, &f.csrf) {
        return r;
    }
    let result = match parse_new(&f) {
        Ok(new) => deals::create(s, &viewer.principal, &meta, new).await,
        Err(errors) => Err(AppError::validation(errors)),
    };
    match result {
        Ok(d) => see_other(&format!("/deals/{}", d.id)),
        Err(e @ AppError::Validation { .. }) => {
            let mut page = match new_page(s, &viewer, &meta, f).await {
                Ok(p) => p,
                // The form cannot be shown again (its pipeline is not the tenant's): the
                // refusal as a page.
                Err(_) => return app_error(e),
            };
            let c = crate::error::classify(e);
            page.fields = c
                .fields
                .unwrap_or_default()
                .into_iter()
                // The API names the amount `value_minor`; the form asks for `value`.
                .map(|(k, v)| {
                    let k = if k == "value_minor" {
                        "value".to_owned()
                    } else {
                        k
                    };
                    (k, v.join(" "))
                })
                .collect();
            page.error = "The deal was not created: check the fields marked below.".into();
            render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => app_error(e),
    }
}

/// The form's values as the core's [`NewDeal`], or what is wrong with each.
fn parse_new(f: &DealForm) -> Result<NewDeal, Vec<FieldError>> {
    let mut errors = Vec::new();
    let currency = f.currency.trim().to_ascii_uppercase();
    let value = parse_amount(&f.value, &currency)
        .map_err(|m| errors.push(FieldError::new("value", m)))
        .unwrap_or(0);
    let mut id = |field: &'static str, raw: &str, what: &str| -> Option<Uuid> {
        if raw.trim().is_empty() {
            errors.push(FieldError::new(field, format!("choose {what}")));
            return None;
        }
        let id = parse_id(raw);
        if id.is_none() {
            errors.push(FieldError::new(
                field,
                format!("choose {what} from the list"),
            ));
        }
        id
    };
    let contact = id("contact_id", &f.contact_id, "a contact");
    let pipeline = id("pipeline_id", &f.pipeline_id, "a pipeline");
    let stage = id("stage_id", &f.stage_id, "a stage");
    let owner = match f.owner_id.trim() {
        "" => None,
        raw => match parse_id(raw) {
            Some(o) => Some(o),
            None => {
                errors.push(FieldError::new("owner_id", "choose an owner from the list"));
                None
            }
        },
    };
    match (contact, pipeline, stage) {
        (Some(contact_id), Some(pipeline_id), Some(stage_id)) if errors.is_empty() => Ok(NewDeal {
            title: f.title.clone(),
            value_minor: value,
            currency,
            contact_id,
            pipeline_id,
            stage_id: Some(stage_id),
            owner_id: owner,
            expected_close_date: None,
            lost_reason: None,
        }),
        _ => Err(errors),
    }
}

// ---- one deal ----

struct ChangeView {
    at: String,
    from: String,
    to: String,
    kind: &'static str,
    by: String,
}

#[derive(Template)]
#[template(path = "deals/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: Uuid,
    title: String,
    value: String,
    status: &'static str,
    stage_id: String,
    stage_name: String,
    pipeline_id: Uuid,
    pipeline_name: String,
    contact_id: Uuid,
    contact_name: String,
    owner: String,
    expected_close_date: String,
    lost_reason: String,
    created_at: String,
    stages: Vec<Choice>,
    history: Vec<ChangeView>,
    can_write: bool,
}

async fn show(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a deal id: the same 404 as another tenant's deal.
    let Some(id) = parse_id(&id).map(DealId::from_uuid) else {
        return app_error(AppError::NotFound("deal"));
    };
    let deal = match deals::get(s, p, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    let history = match deals::history(s, p, id).await {
        Ok(h) => h,
        Err(e) => return app_error(e),
    };
    let pipeline = match deals::get_pipeline(s, p, deal.pipeline_id).await {
        Ok(pl) => pl,
        Err(e) => return app_error(e),
    };
    // The contact's name as a person knows it (the deal's contact is of this tenant).
    let contact_name = match palisade_core::contacts::get(s, p, deal.contact_id).await {
        Ok(c) => c
            .name
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .or(c.wa_profile_name.clone())
            .unwrap_or_else(|| c.phone.as_str().to_owned()),
        Err(_) => String::new(),
    };
    let names = user_names(s, p).await;
    let name_of = |u: Option<UserId>| u.and_then(|u| names.get(&u).cloned()).unwrap_or_default();
    let stage_name = pipeline
        .stage(deal.stage_id)
        .map(|st| st.name.as_str().to_owned())
        .unwrap_or_default();
    let title = deal.title.as_str().to_owned();
    render(&ShowPage {
        chrome: Chrome::new(s, &viewer, title.clone(), Nav::Deals),
        id: deal.id.as_uuid(),
        title,
        value: format_money(i128::from(deal.value_minor), deal.currency.as_str()),
        status: deal.status.as_str(),
        stage_id: deal.stage_id.to_string(),
        stage_name,
        pipeline_id: pipeline.id.as_uuid(),
        pipeline_name: pipeline.name.as_str().to_owned(),
        contact_id: deal.contact_id.as_uuid(),
        contact_name,
        owner: name_of(deal.owner_id),
        expected_close_date: deal.expected_close_date.clone().unwrap_or_default(),
        lost_reason: deal.lost_reason.clone().unwrap_or_default(),
        created_at: palisade_domain::rfc3339(deal.created_at),
        stages: stage_options(&pipeline),
        history: history
            .iter()
            .map(|c| ChangeView {
                at: palisade_domain::rfc3339(c.changed_at),
                from: c.from_stage_name.clone().unwrap_or_default(),
                to: c.to_stage_name.clone(),
                kind: c.to_stage_kind.as_str(),
                by: if c.api_key_id.is_some() {
                    format!("API key of {}", name_of(c.changed_by))
                } else {
                    name_of(c.changed_by)
                },
            })
            .collect(),
        can_write: p.require(Permission::DealsWrite).is_ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_in_the_currency_s_minor_unit() {
        assert_eq!(parse_amount("1250", "EUR"), Ok(125_000));
        assert_eq!(parse_amount("1,250.50", "EUR"), Ok(125_050));
        assert_eq!(parse_amount("1250,5", "EUR"), Ok(125_050));
        assert_eq!(parse_amount("1 250.05", "USD"), Ok(125_005));
        assert_eq!(parse_amount(".5", "EUR"), Ok(50));
        assert_eq!(parse_amount("1,250", "EUR"), Ok(125_000), "thousands");
        assert_eq!(parse_amount("1500", "JPY"), Ok(1500));
        assert_eq!(parse_amount("1.250", "KWD"), Ok(1250));
        assert!(parse_amount("1.5", "JPY")
            .unwrap_err()
            .contains("no decimals"));
        assert!(parse_amount("1.555", "EUR")
            .unwrap_err()
            .contains("at most 2"));
        assert!(parse_amount("-3", "EUR")
            .unwrap_err()
            .contains("zero or more"));
        assert!(parse_amount("abc", "EUR").is_err());
        assert!(parse_amount("", "EUR").is_err());
        assert!(parse_amount(".", "EUR").is_err());
        assert!(parse_amount("1.2.3", "EUR").is_err());
        assert_eq!(
            parse_amount("99999999999999999999", "EUR"),
            Err("is too large".into())
        );
        assert_eq!(parse_amount("92233720368547758.07", "EUR"), Ok(i64::MAX));
        assert_eq!(
            parse_amount("92233720368547758.08", "EUR"),
            Err("is too large".into())
        );
    }

    #[test]
    fn money_is_shown_with_its_currency() {
        assert_eq!(format_money(125_050, "EUR"), "1,250.50 EUR");
        assert_eq!(format_money(5, "USD"), "0.05 USD");
        assert_eq!(format_money(1500, "JPY"), "1,500 JPY");
        assert_eq!(format_money(1250, "KWD"), "1.250 KWD");
        assert_eq!(format_money(0, "EUR"), "0.00 EUR");
        assert_eq!(
            format_money(i128::from(i64::MAX) * 2, "EUR"),
            "184,467,440,737,095,516.14 EUR"
        );
    }
}
