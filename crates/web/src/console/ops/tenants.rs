//! `/admin/tenants` (super admins): every tenant, with suspend / reactivate (a reason is
//! required to suspend) through the JSON API, and impersonation through the console's own
//! form ([`super::impersonation`]).
//!
//! The API lists every tenant at once, oldest first; the page shows them [`PER_PAGE`] at a
//! time with a `cursor=` (the position in that stable order) so that a platform with many
//! tenants stays one screen at a time.

use super::super::page::{app_error, error_page, render_with, Chrome, Nav};
use super::super::Viewer;
use crate::error::classify;
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::{platform, AppError};
use serde::Deserialize;

pub const PER_PAGE: usize = 25;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/tenants", get(list))
}

pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub suspended: bool,
    pub suspended_at: String,
    pub suspended_reason: String,
    pub user_count: i64,
    pub created_at: String,
}

#[derive(Template)]
#[template(path = "ops/tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<TenantRow>,
    next: Option<usize>,
    previous: Option<usize>,
    /// A refused impersonation (no reason, a suspended tenant): the API's message.
    error: String,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Response {
    let start = match q.cursor.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return app_error(AppError::field("cursor", "is not a cursor of this list"));
        }
    };
    render_page(&state, &viewer, start, String::new(), StatusCode::OK).await
}

/// The list again, with a refusal from a form the console answers itself on top.
pub async fn page_with_error(state: &AppState, viewer: &Viewer, e: AppError) -> Response {
    let c = classify(e);
    if c.status.is_server_error() || c.status == StatusCode::FORBIDDEN {
        return error_page(c);
    }
    let mut message = c.message.clone();
    if let Some(fields) = &c.fields {
        for (name, problems) in fields.iter() {
            message.push_str(&format!(" {name}: {}", problems.join(" ")));
        }
    }
    render_page(state, viewer, 0, message, c.status).await
}

async fn render_page(
    state: &AppState,
    viewer: &Viewer,
    start: usize,
    error: String,
    status: StatusCode,
) -> Response {
    let s = &state.services;
    let all = match platform::list_tenants(s, &viewer.principal).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    let tenants = all
        .into_iter()
        .skip(start)
        .take(PER_PAGE + 1)
        .map(|(t, n)| TenantRow {
            id: t.id.as_uuid().to_string(),
            suspended: t.suspended_at.is_some(),
            suspended_at: t
                .suspended_at
                .map(palisade_domain::rfc3339)
                .unwrap_or_default(),
            suspended_reason: t.suspended_reason.unwrap_or_default(),
            name: t.name,
            user_count: n,
            created_at: palisade_domain::rfc3339(t.created_at),
        })
        .collect::<Vec<_>>();
    let more = tenants.len() > PER_PAGE;
    let tenants: Vec<TenantRow> = tenants.into_iter().take(PER_PAGE).collect();
    render_with(
        status,
        &TenantsPage {
            chrome: Chrome::new(s, viewer, "Tenants", Nav::Admin),
            next: more.then_some(start + PER_PAGE),
            previous: (start > 0).then(|| start.saturating_sub(PER_PAGE)),
            tenants,
            error,
        },
    )
}
