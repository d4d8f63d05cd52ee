//! `/settings/webhooks` (admins): the tenant's webhooks, creating one (its secret shown once),
//! the allowed domains; `/settings/webhooks/{id}`: one webhook with approve, rotate secret (the
//! new secret shown once), test, disable / enable, delete, and its deliveries with retry, paged
//! newest first with the API's cursor (`?cursor=`, the API's `next_cursor`).
//! Every change is a `data-api` form against the JSON API; which buttons show is decided by
//! the same permissions the API checks (`Principal::require`).

use super::super::page::{app_error, not_found, render, Chrome, Nav};
use super::super::Viewer;
use super::parse_id;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::webhooks::{self, DeliveryView, WebhookView};
use palisade_domain::event::EventType;
use palisade_domain::{Permission, WebhookId};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/webhooks", get(list))
        .route("/settings/webhooks/{id}", get(detail))
}

/// What the viewer may do here, as the API would answer.
struct Can {
    manage: bool,
    approve: bool,
}

impl Can {
    fn of(v: &Viewer) -> Can {
        Can {
            manage: v.principal.require(Permission::WebhooksManage).is_ok(),
            approve: v.principal.require(Permission::WebhooksApprove).is_ok(),
        }
    }
}

#[derive(Template)]
#[template(path = "ops/webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    webhooks: Vec<WebhookView>,
    allowed_domains: String,
    event_types: Vec<&'static str>,
    can: Can,
}

async fn list(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let list = match webhooks::list(s, &viewer.principal).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    let domains = match webhooks::allowed_domains(s, &viewer.principal).await {
        Ok(d) => d,
        Err(e) => return app_error(e),
    };
    render(&WebhooksPage {
        chrome: Chrome::new(s, &viewer, "Webhooks", Nav::Settings),
        webhooks: list,
        allowed_domains: domains.join("\n"),
        event_types: EventType::ALL.iter().map(|e| e.as_str()).collect(),
        can: Can::of(&viewer),
    })
}

/// How many deliveries a page shows.
const DELIVERIES_PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct DeliveriesParams {
    /// The API's `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "ops/webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    webhook: WebhookView,
    deliveries: Vec<DeliveryView>,
    /// The next (older) page's cursor.
    next_cursor: Option<String>,
    /// This page is not the first (offer the newest).
    paged: bool,
    can: Can,
}

async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(params): Query<DeliveriesParams>,
) -> Response {
    let s = &state.services;
    let Some(uuid) = parse_id(&id) else {
        return not_found(&format!("/settings/webhooks/{id}"));
    };
    let id = WebhookId::from(uuid);
    let webhook = match webhooks::get(s, &viewer.principal, id).await {
        Ok(w) => w,
        Err(e) => return app_error(e),
    };
    let cursor = params
        .cursor
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let page =
        match webhooks::list_deliveries(s, &viewer.principal, id, cursor, Some(DELIVERIES_PAGE))
            .await
        {
            Ok(d) => d,
            Err(e) => return app_error(e),
        };
    render(&WebhookPage {
        chrome: Chrome::new(s, &viewer, "Webhook", Nav::Settings),
        webhook,
        deliveries: page.data,
        next_cursor: page.next_cursor,
        paged: cursor.is_some(),
        can: Can::of(&viewer),
    })
}
