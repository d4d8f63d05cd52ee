//! `/settings/api-keys`: the tenant's API keys — create with scopes and an expiry (the key is
//! shown once, with a copy button), revoke.
//!
//! The scope checkboxes are the domain's list of scopes (`Scope::GRANTS`), so a scope added to
//! the API appears here without touching the page.

use crate::console::page::{app_error, render, Chrome, Nav};
use crate::console::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::api_keys::{self, ApiKeyView};
use palisade_domain::{rfc3339, Scope};
use time::Duration;

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/api-keys", get(api_keys_page))
}

/// Scopes of one resource (`contacts`: `contacts:read`, `contacts:write`, …).
struct ScopeGroup {
    resource: &'static str,
    scopes: Vec<&'static str>,
}

fn scope_groups() -> Vec<ScopeGroup> {
    let mut groups: Vec<ScopeGroup> = Vec::new();
    for scope in Scope::GRANTS {
        let name = scope.as_str();
        let resource = name.split(':').next().unwrap_or(name);
        match groups.iter_mut().find(|g| g.resource == resource) {
            Some(g) => g.scopes.push(name),
            None => groups.push(ScopeGroup {
                resource,
                scopes: vec![name],
            }),
        }
    }
    groups
}

/// An expiry choice: its label and the RFC 3339 time the API is sent (empty: never).
struct Expiry {
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "admin/api_keys.html")]
struct ApiKeysPage {
    chrome: Chrome,
    keys: Vec<ApiKeyView>,
    groups: Vec<ScopeGroup>,
    expiries: Vec<Expiry>,
}

async fn api_keys_page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let keys = match api_keys::list(s, &viewer.principal).await {
        Ok(k) => k,
        Err(e) => return app_error(e),
    };
    let now = s.now();
    let expiries = [
        ("In 30 days", Some(30)),
        ("In 90 days", Some(90)),
        ("In a year", Some(365)),
        ("Never", None),
    ]
    .into_iter()
    .map(|(label, days)| Expiry {
        label,
        value: days
            .map(|d| rfc3339(now + Duration::days(d)))
            .unwrap_or_default(),
    })
    .collect();
    render(&ApiKeysPage {
        chrome: Chrome::new(s, &viewer, "API keys", Nav::Settings),
        keys: keys.iter().map(|k| ApiKeyView::new(k, now)).collect(),
        groups: scope_groups(),
        expiries,
    })
}
