//! The web console: server-rendered pages for agents, admins and the platform operator.
//!
//! How a page works (docs/console.md has the whole story and "Adding a page"):
//! - **Reading.** A page handler takes a [`Viewer`] (the signed-in principal, resolved from the
//!   API's own `__Host-` cookies by [`session::resolve`]), calls the same `palisade_core` use case
//!   the JSON route calls — so permissions, scopes, tenant scope and audit are the API's — and
//!   renders an askama template (`crates/web/templates/`; every value is HTML-escaped).
//! - **Changing.** Forms carry `data-api` attributes; `static/app.js` sends them as JSON to the
//!   JSON API with the session's CSRF token and shows the API's field errors next to the fields.
//!   The forms the console answers itself are the sign-in steps ([`auth_pages`]): those
//!   issue tokens, and the console sets them as HttpOnly cookies so that no token ever reaches a
//!   script; and the forms that must work without script ([`deals`]: moving a card,
//!   creating and changing a deal; [`templates`]: a new template; [`campaigns`]: a new
//!   campaign and its state changes), which pass the API's checks
//!   ([`forms::check_change`]) and call the same core use cases.
//! - **Live.** `static/live.js` listens on the API's websocket and reloads the parts of a page
//!   an event touches (server-rendered fragments), and everything after a `lagged` frame or a
//!   reconnect.
//!
//! Pages are HTML, not API: they are plain axum routes, outside the OpenAPI document.

pub mod account;
pub mod admin;
pub mod analytics;
pub mod assets;
pub mod auth_pages;
pub mod campaigns;
pub mod chart;
pub mod contacts;
pub mod deals;
pub mod forms;
pub mod inbox;
pub mod integrations;
pub mod money;
pub mod ops;
pub mod page;
pub mod security;
pub mod session;
pub mod templates;
pub mod tickets;

pub use page::{Chrome, Nav};
pub use session::{MaybeViewer, Viewer};

use crate::AppState;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Every console route. The session layer resolves the viewer (and renews an expired access
/// token with the refresh cookie) before any of them runs.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .merge(auth_pages::router())
        .merge(inbox::router())
        .merge(contacts::router())
        .merge(deals::router())
        .merge(templates::router())
        .merge(tickets::router())
        .merge(campaigns::router())
        .merge(analytics::router())
        .merge(integrations::router())
        .merge(security::router())
        .merge(admin::router())
        .merge(account::router())
        .merge(ops::router())
        .layer(axum::middleware::from_fn_with_state(
            state,
            session::resolve,
        ))
        .merge(assets::router())
}

/// `/`: the inbox when signed in (the tenant list for a platform operator), else the sign-in page.
async fn home(viewer: MaybeViewer) -> Response {
    match viewer.0 {
        // A platform operator belongs to no tenant: their home is the tenant list.
        Some(p) if p.role == palisade_domain::Role::SuperAdmin && p.impersonator.is_none() => {
            Redirect::to("/admin/tenants").into_response()
        }
        Some(_) => Redirect::to("/inbox").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}
