//! `/deals/pipelines` (the tenant's pipelines), `/deals/pipelines/new` and
//! `/deals/pipelines/{id}` (a pipeline's name and its ordered stages).
//!
//! Reading calls `deals::list_pipelines` / `deals::get_pipeline` (`deals.read`); the forms are
//! `data-api` forms against `POST /api/v1/pipelines`, `PATCH` and `DELETE
//! /api/v1/pipelines/{id}` (admins: `pipelines.manage`, deleting `deals.delete`). A stage is a
//! row of fields named `stages.<n>.<field>` (`app.js` sends them as the `stages` list, in the
//! rows' order); `static/pipelines.js` adds, removes and reorders rows. Without script, the
//! page still lists the stages; changing them needs it, as every `data-api` form does.

use crate::console::page::{app_error, render, Chrome, Nav};
use crate::console::Viewer;
use crate::extract::Meta;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use palisade_core::deals;
use palisade_core::AppError;
use palisade_domain::{Permission, Pipeline, PipelineId};

/// One stage row of the form.
struct StageRow {
    /// The existing stage's id (empty for a new row).
    id: String,
    name: String,
    probability: u8,
    kind: &'static str,
}

struct PipelineRow {
    id: String,
    name: String,
    is_default: bool,
    stages: Vec<StageRow>,
}

fn rows(p: &Pipeline) -> Vec<StageRow> {
    p.stages
        .iter()
        .map(|s| StageRow {
            id: s.id.to_string(),
            name: s.name.as_str().to_owned(),
            probability: s.probability.get(),
            kind: s.kind.as_str(),
        })
        .collect()
}

/// The stage kinds, as the select offers them.
const KINDS: [(&str, &str); 3] = [("open", "Open"), ("won", "Won"), ("lost", "Lost")];

#[derive(Template)]
#[template(path = "deals/pipelines.html")]
struct ListPage {
    chrome: Chrome,
    pipelines: Vec<PipelineRow>,
    can_manage: bool,
}

/// `GET /deals/pipelines`.
pub(super) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Meta(meta): Meta,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let list = match deals::list_pipelines(s, p, &meta).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    render(&ListPage {
        chrome: Chrome::new(s, &viewer, "Pipelines", Nav::Deals),
        pipelines: list
            .iter()
            .map(|pl| PipelineRow {
                id: pl.id.to_string(),
                name: pl.name.as_str().to_owned(),
                is_default: pl.is_default,
                stages: rows(pl),
            })
            .collect(),
        can_manage: p.require(Permission::PipelinesManage).is_ok(),
    })
}

#[derive(Template)]
#[template(path = "deals/pipeline.html")]
struct EditPage {
    chrome: Chrome,
    /// `None` for a new pipeline.
    id: Option<String>,
    name: String,
    stages: Vec<StageRow>,
    kinds: [(&'static str, &'static str); 3],
    can_delete: bool,
}

/// `GET /deals/pipelines/new`: a form that starts with the usual stages (open, won, lost).
pub(super) async fn new(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    if let Err(e) = viewer.principal.require(Permission::PipelinesManage) {
        return app_error(e);
    }
    let stage = |name: &str, probability, kind| StageRow {
        id: String::new(),
        name: name.into(),
        probability,
        kind,
    };
    render(&EditPage {
        chrome: Chrome::new(s, &viewer, "New pipeline", Nav::Deals),
        id: None,
        name: String::new(),
        stages: vec![
            stage("New", 10, "open"),
            stage("Won", 100, "won"),
            stage("Lost", 0, "lost"),
        ],
        kinds: KINDS,
        can_delete: false,
    })
}

/// `GET /deals/pipelines/{id}`: the pipeline's form (admins), or a `403` page.
pub(super) async fn edit(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    if let Err(e) = p.require(Permission::PipelinesManage) {
        return app_error(e);
    }
    let Some(id) = super::parse_id(&id).map(PipelineId::from_uuid) else {
        return app_error(AppError::NotFound("pipeline"));
    };
    let pl = match deals::get_pipeline(s, p, id).await {
        Ok(pl) => pl,
        Err(e) => return app_error(e),
    };
    let name = pl.name.as_str().to_owned();
    render(&EditPage {
        chrome: Chrome::new(s, &viewer, format!("Pipeline {name}"), Nav::Deals),
        id: Some(pl.id.to_string()),
        name,
        stages: rows(&pl),
        kinds: KINDS,
        can_delete: p.require(Permission::DealsDelete).is_ok(),
    })
}
