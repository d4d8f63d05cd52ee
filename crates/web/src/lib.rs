//! The HTTP surface of Palisade, axum only.
//!
//! Request path (outermost first): request id and client address → trace span → timeout →
//! security headers → CORS → (API only) authenticate, rate limit, CSRF → handler. Handlers are
//! thin: extract and parse, call one service in `palisade_core`, render.
//! Each feature module under `routes` owns its router (an `OpenApiRouter`: `routes!` registers
//! each handler with its `#[utoipa::path]`, so the route and its documentation go together),
//! its request/response types and its handlers; [`api_routes`] and [`outside_routes`] merge them.

// axum rejections are `Response`s by design; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

pub mod console;
pub mod cookies;
pub mod error;
pub mod export;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;

use axum::Router;
use ipnet::IpNet;
use palisade_core::Services;
use std::sync::Arc;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;

/// Web-only settings (the rest lives in `palisade_core::Settings`).
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Origins allowed by CORS; empty means no cross-origin access.
    pub cors_origins: Vec<String>,
    /// Send HSTS on every response (the server sits behind a TLS-terminating proxy).
    pub hsts: bool,
    pub request_timeout: Duration,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests taking at least this long are logged at warn and counted as slow.
    pub slow_request: Duration,
    /// Traces are exported (`PALISADE_OTLP_ENDPOINT`): the request span also carries the
    /// OpenTelemetry name, kind and status (left out otherwise, so log lines stay as they are).
    pub traces: bool,
    /// Log lines are JSON (`PALISADE_LOG_FORMAT=json`): a request's line then also carries its
    /// request id and route at the top level, beside the span's copy, where log tools look.
    pub json_logs: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            hsts: false,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            slow_request: Duration::from_secs(1),
            traces: false,
            json_logs: false,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub web: Arc<WebConfig>,
}

/// Every route under `/api/` except the document: these go through the API middleware.
/// A feature adds its module's `router()` here, once; its paths join the document with it.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::auth::router())
        .merge(routes::auth_mail::router())
        .merge(routes::login_history::router())
        .merge(routes::passkeys::router())
        .merge(routes::me::router())
        .merge(routes::users::router())
        .merge(routes::tenant::router())
        .merge(routes::two_factor::router())
        .merge(routes::audit::router())
        .merge(routes::security::router())
        .merge(routes::api_keys::router())
        .merge(routes::webhooks::router())
        .merge(routes::notifications::router())
        .merge(routes::platform::router())
        .merge(routes::whatsapp::router())
        .merge(routes::messaging::router())
        .merge(routes::contacts::router())
        .merge(routes::deals::router())
        .merge(routes::campaigns::router())
        .merge(routes::integrations::router())
        .merge(routes::tickets::router())
        .merge(routes::templates::router())
        .merge(routes::analytics::router())
        .merge(routes::media::router())
        .merge(routes::ws::router())
}

/// Routes outside the API middleware: health checks and Meta's webhooks (they authenticate
/// themselves, by verify token or signature).
fn outside_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::health::router())
        .merge(routes::whatsapp::webhook_router())
        .merge(routes::integrations::webhook_router())
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = api_routes().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::authenticate,
    ));
    let (routes, paths) = outside_routes().merge(api).split_for_parts();
    let app = routes
        .merge(openapi::router(openapi::document(paths)))
        .merge(console::router(state.clone()))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.web.max_body_bytes,
        ))
        .with_state(state.clone());
    middleware::wrap(app, state)
}

/// The OpenAPI document [`router`] serves, built from the same route modules without an
/// application (for tests and tools).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::document(outside_routes().merge(api_routes()).into_openapi())
}
