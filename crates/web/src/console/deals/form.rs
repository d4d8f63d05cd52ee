//! The deal form, for a new deal (`/deals/new`) and for changing one (`/deals/{id}/edit`).
//!
//! Both work without script, so the console answers them itself and calls the core use cases of
//! `POST /api/v1/deals` and `PATCH /api/v1/deals/{id}` after the API's checks for a change sent
//! with the session cookie ([`check_change`]). The form takes the amount as people type it
//! (`1,250.50`) in the currency's units; a refusal comes back as the form with each field's
//! message next to it (`422`).

use super::{parse_id, pick_pipeline, stage_options, Choice};
use crate::console::auth_pages::see_other;
use crate::console::forms::{ChangeForm, WithCsrf};
use crate::console::money::{format_amount, parse_amount};
use crate::console::page::{app_error, contact_label, render, render_with, Chrome, Nav, PageQuery};
use crate::console::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use palisade_core::auth::RequestMeta;
use palisade_core::deals::{self, DealPatch, NewDeal};
use palisade_core::{AppError, Services};
use palisade_domain::deal::ISO_4217;
use palisade_domain::{Deal, DealId, FieldError, Permission, PipelineId};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Default, Deserialize)]
pub(super) struct NewParams {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    contact: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct DealForm {
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
    #[serde(default)]
    expected_close_date: String,
    #[serde(default)]
    lost_reason: String,
}

impl WithCsrf for DealForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl DealForm {
    /// The form filled with what `d` holds now.
    fn of(d: &Deal) -> Self {
        Self {
            csrf: String::new(),
            title: d.title.as_str().to_owned(),
            value: format_amount(i128::from(d.value_minor), d.currency.as_str()),
            currency: d.currency.as_str().to_owned(),
            contact_id: d.contact_id.to_string(),
            pipeline_id: d.pipeline_id.to_string(),
            stage_id: d.stage_id.to_string(),
            owner_id: d.owner_id.map(|o| o.to_string()).unwrap_or_default(),
            expected_close_date: d.expected_close_date.clone().unwrap_or_default(),
            lost_reason: d.lost_reason.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "deals/form.html")]
pub(super) struct FormPage {
    chrome: Chrome,
    /// The deal being changed; `None` for a new one.
    deal_id: Option<Uuid>,
    form: DealForm,
    pipeline_name: String,
    stages: Vec<Choice>,
    contacts: Vec<Choice>,
    owners: Vec<Choice>,
    currencies: &'static [&'static str],
    error: String,
    fields: BTreeMap<String, String>,
}

impl FormPage {
    fn field_error(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    fn action(&self) -> String {
        match self.deal_id {
            Some(id) => format!("/deals/{id}/edit"),
            None => "/deals/new".into(),
        }
    }

    fn cancel_href(&self) -> String {
        match self.deal_id {
            Some(id) => format!("/deals/{id}"),
            None => format!("/deals?pipeline={}", self.form.pipeline_id),
        }
    }
}

/// The form's page with what was typed (`form`) and no errors yet.
async fn form_page(
    s: &Services,
    viewer: &Viewer,
    meta: &RequestMeta,
    deal_id: Option<Uuid>,
    form: DealForm,
) -> Result<FormPage, AppError> {
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
    let mut contacts: Vec<Choice> = contacts
        .data
        .iter()
        .map(|c| Choice {
            id: c.id.to_string(),
            name: contact_label(c),
        })
        .collect();
    // The deal's own contact stays a choice when it is not among the first 200.
    if !form.contact_id.is_empty() && !contacts.iter().any(|c| c.id == form.contact_id) {
        if let Some(c) = parse_id(&form.contact_id).map(palisade_domain::ContactId::from_uuid) {
            if let Ok(c) = palisade_core::contacts::get(s, p, c).await {
                contacts.insert(
                    0,
                    Choice {
                        id: c.id.to_string(),
                        name: contact_label(&c),
                    },
                );
            }
        }
    }
    let owners = palisade_core::users::list(s, p, None, false).await?;
    let form = DealForm {
        pipeline_id: pipeline.id.to_string(),
        ..form
    };
    let title = if deal_id.is_some() {
        format!("Edit {}", form.title)
    } else {
        "New deal".to_owned()
    };
    Ok(FormPage {
        chrome: Chrome::new(s, viewer, title, Nav::Deals),
        deal_id,
        pipeline_name: pipeline.name.as_str().to_owned(),
        stages: stage_options(&pipeline),
        contacts,
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

/// `GET /deals/new`: the form, with the pipeline, stage and contact of the query chosen.
pub(super) async fn new(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    PageQuery(params): PageQuery<NewParams>,
) -> Response {
    let form = DealForm {
        currency: "EUR".into(),
        contact_id: params.contact,
        pipeline_id: params.pipeline,
        stage_id: params.stage,
        owner_id: viewer.principal.user_id.to_string(),
        ..DealForm::default()
    };
    match form_page(&state.services, &viewer, &meta, None, form).await {
        Ok(page) => render(&page),
        Err(e) => app_error(e),
    }
}

/// `GET /deals/{id}/edit`: the form filled with the deal.
pub(super) async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Response {
    let s = &state.services;
    let Some(id) = parse_id(&id).map(DealId::from_uuid) else {
        return app_error(AppError::NotFound("deal"));
    };
    let deal = match deals::get(s, &viewer.principal, id).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    match form_page(s, &viewer, &meta, Some(id.as_uuid()), DealForm::of(&deal)).await {
        Ok(page) => render(&page),
        Err(e) => app_error(e),
    }
}

/// `POST /deals/new`.
pub(super) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    ChangeForm(f): ChangeForm<DealForm>,
) -> Response {
    let s = &state.services;
    let result = match parse(&f) {
        Ok(v) => {
            let new = NewDeal {
                title: v.title,
                value_minor: v.value_minor,
                currency: v.currency,
                contact_id: v.contact_id,
                pipeline_id: v.pipeline_id.as_uuid(),
                stage_id: Some(v.stage_id),
                owner_id: v.owner_id,
                expected_close_date: v.expected_close_date,
                lost_reason: v.lost_reason,
            };
            deals::create(s, &viewer.principal, &meta, new).await
        }
        Err(errors) => Err(AppError::validation(errors)),
    };
    answer(s, &viewer, &meta, None, f, result).await
}

/// `POST /deals/{id}/edit`: every field of the form replaces the deal's (an empty owner, date
/// or lost reason clears it).
pub(super) async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    Path(id): Path<String>,
    ChangeForm(f): ChangeForm<DealForm>,
) -> Response {
    let s = &state.services;
    let Some(id) = parse_id(&id).map(DealId::from_uuid) else {
        return app_error(AppError::NotFound("deal"));
    };
    let result = match parse(&f) {
        Ok(v) => {
            let patch = DealPatch {
                title: Some(v.title),
                value_minor: Some(v.value_minor),
                currency: Some(v.currency),
                contact_id: Some(v.contact_id),
                pipeline_id: Some(v.pipeline_id.as_uuid()),
                stage_id: Some(v.stage_id),
                owner_id: Some(v.owner_id),
                expected_close_date: Some(v.expected_close_date),
                lost_reason: Some(v.lost_reason),
            };
            deals::update(s, &viewer.principal, &meta, id, patch).await
        }
        Err(errors) => Err(AppError::validation(errors)),
    };
    answer(s, &viewer, &meta, Some(id.as_uuid()), f, result).await
}

/// The deal's page after a change, or the form again with the core's field errors.
async fn answer(
    s: &Services,
    viewer: &Viewer,
    meta: &RequestMeta,
    deal_id: Option<Uuid>,
    f: DealForm,
    result: Result<Deal, AppError>,
) -> Response {
    let e = match result {
        Ok(d) => return see_other(&format!("/deals/{}", d.id)),
        Err(e @ AppError::Validation { .. }) => e,
        Err(e) => return app_error(e),
    };
    let mut page = match form_page(s, viewer, meta, deal_id, f).await {
        Ok(p) => p,
        // The form cannot be shown again (its pipeline is not the tenant's): the refusal as a
        // page.
        Err(_) => return app_error(e),
    };
    page.fields = crate::error::classify(e)
        .fields
        .unwrap_or_default()
        .into_iter()
        // The API names the amount `value_minor`; the form asks for `value`.
        .map(|(k, v)| {
            let k = if k == "value_minor" {
                "value".into()
            } else {
                k
            };
            (k, v.join(" "))
        })
        .collect();
    page.error = if deal_id.is_some() {
        "The deal was not saved: check the fields marked below."
    } else {
        "The deal was not created: check the fields marked below."
    }
    .into();
    render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// What the form says, read.
struct Values {
    title: String,
    value_minor: i64,
    currency: String,
    contact_id: Uuid,
    pipeline_id: PipelineId,
    stage_id: Uuid,
    owner_id: Option<Uuid>,
    expected_close_date: Option<String>,
    lost_reason: Option<String>,
}

/// The form's values, or what is wrong with each (the core checks the rest: the title, the
/// currency, the date's format, that every id is the tenant's).
fn parse(f: &DealForm) -> Result<Values, Vec<FieldError>> {
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
    let optional = |raw: &str| Some(raw.trim().to_owned()).filter(|s| !s.is_empty());
    match (contact, pipeline, stage) {
        (Some(contact_id), Some(pipeline_id), Some(stage_id)) if errors.is_empty() => Ok(Values {
            title: f.title.clone(),
            value_minor: value,
            currency,
            contact_id,
            pipeline_id: PipelineId::from_uuid(pipeline_id),
            stage_id,
            owner_id: owner,
            expected_close_date: optional(&f.expected_close_date),
            lost_reason: optional(&f.lost_reason),
        }),
        _ => Err(errors),
    }
}
