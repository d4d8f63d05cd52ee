//! `/deals/{id}`: a deal, its stage history, the "Move to" form, and links to change or delete
//! it.

use super::{stage_options, user_names, Choice};
use crate::console::money::format_money;
use crate::console::page::{app_error, render, Chrome, Nav};
use crate::console::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use palisade_core::deals;
use palisade_core::AppError;
use palisade_domain::{DealId, Permission, UserId};
use uuid::Uuid;

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
    can_delete: bool,
}

pub(super) async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    // Not a deal id: the same 404 as another tenant's deal.
    let Some(id) = super::parse_id(&id).map(DealId::from_uuid) else {
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
        can_delete: p.require(Permission::DealsDelete).is_ok(),
    })
}
