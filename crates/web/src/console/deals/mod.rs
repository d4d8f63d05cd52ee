//! `/deals` (the board), `/deals/new` and `/deals/{id}/edit` ([`form`]), `/deals/{id}` (a deal
//! and its stage history, [`show`]), `/deals/pipelines…` (the pipelines and their stages,
//! [`pipelines`]).
//!
//! Reading calls the `palisade_core::deals` use cases the JSON routes call (`deals.read`:
//! admins and agents; another tenant's pipeline or deal is a `404` page). The board shows one
//! pipeline's stages as columns (the number of deals, their value per currency, the newest
//! cards).
//!
//! Moving a card, creating and changing a deal must work without script, so these forms are
//! answered by the console itself (`POST /deals/{id}/move`, `POST /deals/new`,
//! `POST /deals/{id}/edit`) and call the same core use cases as `PATCH /api/v1/deals/{id}` and
//! `POST /api/v1/deals`, after the API's own checks for a change made with the session cookie
//! ([`check_change`]); permissions, tenant scope, audit, webhooks and history are the core's.
//! Drag and drop (`static/deals.js`) only submits a card's own "Move to" form, so there is one
//! path for a move. Deleting a deal and the pipeline forms are `data-api` forms (the JSON API).

mod form;
mod pipelines;
mod show;

use super::auth_pages::see_other;
use super::forms::{ChangeForm, WithCsrf};
use super::money::format_money;
use super::page::{app_error, render, Chrome, Nav, PageQuery};
use super::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use palisade_core::auth::Principal;
use palisade_core::deals::{self, DealPatch};
use palisade_core::{AppError, Services};
use palisade_domain::{DealId, Permission, Pipeline, PipelineId, UserId};
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/deals", get(board))
        .route("/deals/new", get(form::new).post(form::create))
        .route("/deals/pipelines", get(pipelines::list))
        .route("/deals/pipelines/new", get(pipelines::new))
        .route("/deals/pipelines/{id}", get(pipelines::edit))
        .route("/deals/{id}", get(show::show))
        .route("/deals/{id}/edit", get(form::edit).post(form::update))
        .route("/deals/{id}/move", post(move_deal))
}

/// Cards shown per column (the newest); the column's count and totals cover every deal.
const CARDS_PER_STAGE: i64 = 50;

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
    PageQuery(params): PageQuery<BoardParams>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
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

impl WithCsrf for MoveForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn move_deal(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
    Path(id): Path<String>,
    ChangeForm(f): ChangeForm<MoveForm>,
) -> Response {
    let s = &state.services;
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
