//! `/settings/whatsapp` (admins): the tenant's WhatsApp numbers. Connecting is a `data-api`
//! form against `POST /api/v1/whatsapp/connections`; its answer (the callback URL and the
//! verify token to paste into Meta's dashboard, the token shown only then) is filled into the
//! page with copy buttons. Disconnecting asks first.

use super::super::page::{app_error, render, Chrome, Nav};
use super::super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::whatsapp::connections::{self, ConnectionView};

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/whatsapp", get(page))
}

#[derive(Template)]
#[template(path = "ops/whatsapp.html")]
struct WhatsAppPage {
    chrome: Chrome,
    connections: Vec<ConnectionView>,
}

async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let list = match connections::list(s, &viewer.principal).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    render(&WhatsAppPage {
        chrome: Chrome::new(s, &viewer, "WhatsApp numbers", Nav::Settings),
        connections: list.iter().map(|c| ConnectionView::of(s, c)).collect(),
    })
}
