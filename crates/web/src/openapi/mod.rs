//! The OpenAPI 3.1 document of every route, served at `/api/v1/openapi.json`.
//!
//! The document is assembled, not listed: each route module registers its handlers with
//! utoipa-axum's `routes!`, which adds the route and its `#[utoipa::path]` together, so a route
//! cannot be served without being documented. [`crate::router`] merges the modules and hands
//! the paths to [`document`], which puts them into the base document below (info, tags, this
//! document's own route) and applies the rules no attribute can express.
//!
//! Each `#[utoipa::path]` annotation documents what its handler decides (its success, its 409s,
//! its business-rule 422s…). What the request path decides before or around the handler —
//! the middleware and the extractors — is added by [`request_path::RequestPathAnswers`], from
//! the shape of each route. Tests validate the served document against the OpenAPI 3.1 schema
//! and send every route malformed ids, no credentials and wrong content types, checking that
//! each answer is listed for its operation.

mod modifiers;
mod request_path;
pub mod schemas;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use modifiers::{AtLeastOneField, BearerAuth, ClosedVariants};
use request_path::RequestPathAnswers;
use std::sync::Arc;
use utoipa::{Modify, OpenApi};

/// The base document. Its only path is this document's own: the handler serves the finished
/// document, so it is routed by [`router`] once that exists, not by `routes!`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade API", description = "Multi-tenant WhatsApp CRM server. Errors are always `{\"error\":{\"code\",\"message\",\"fields\"?,\"request_id\"}}`; every response carries `X-Request-Id`."),
    paths(openapi_json),
    tags(
        (name = "auth", description = "Registration, sign-in, tokens, sessions, passwords"),
        (name = "me", description = "The signed-in user"),
        (name = "tenant", description = "The signed-in user's tenant"),
        (name = "users", description = "Team management"),
        (name = "whatsapp", description = "WhatsApp Business connections and Meta's webhooks"),
        (name = "contacts", description = "The people a tenant talks to on WhatsApp, and their marketing consent"),
        (name = "analytics", description = "Counts, response times, agent workload and pipeline value over local days or weeks"),
        (name = "campaigns", description = "Broadcast campaigns: one approved template to an audience, paced per WhatsApp connection"),
        (name = "deals", description = "Sales pipelines with ordered stages, deals and their stage history"),
        (name = "conversations", description = "Conversations and their messages"),
        (name = "realtime", description = "The websocket of live inbox events (docs/realtime.md)"),
        (name = "admin", description = "Platform administration (super admins)"),
        (name = "api-keys", description = "Scoped API keys for integrations"),
        (name = "webhooks", description = "Outgoing webhooks, signed per Standard Webhooks"),
        (name = "notifications", description = "The signed-in user's in-app notifications"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "security", description = "Security alerts raised by the detection rules, and security metrics"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The served document: the base, the routes' paths and schemas, then the rules (in this order:
/// the security scheme, what the request path answers, then the schema corrections).
pub fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes);
    let rules: [&dyn Modify; 4] = [
        &BearerAuth,
        &RequestPathAnswers,
        &AtLeastOneField,
        &ClosedVariants,
    ];
    for rule in rules {
        rule.modify(&mut doc);
    }
    doc
}

/// Serves `doc` (built once, when the application's router is).
pub fn router<S>(doc: utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .with_state(Arc::new(doc))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(State(doc): State<Arc<utoipa::openapi::OpenApi>>) -> Response {
    Json(doc.as_ref()).into_response()
}

#[cfg(test)]
mod tests {
    fn statuses(doc: &utoipa::openapi::OpenApi, path: &str, method: &str) -> Vec<String> {
        let item = doc.paths.paths.get(path).expect("documented path");
        let op = match method {
            "get" => item.get.as_ref(),
            "post" => item.post.as_ref(),
            "delete" => item.delete.as_ref(),
            _ => None,
        }
        .expect("documented operation");
        op.responses.responses.keys().cloned().collect()
    }

    /// Exact rather than generous: a route lists what its request path can answer, and no more.
    #[test]
    fn answers_follow_the_route_shape() {
        let doc = crate::openapi_document();
        // No middleware, no awaiting, no input: nothing can go wrong on the way.
        assert_eq!(statuses(&doc, "/healthz", "get"), ["200"]);
        assert_eq!(statuses(&doc, "/api/v1/openapi.json", "get"), ["200"]);
        // An anonymous API read without input: only the timeout and the overall rate limit.
        assert_eq!(
            statuses(&doc, "/api/v1/auth/password/generate", "get"),
            ["200", "408", "429"]
        );
        // A credential is optional on the websocket (it may come in the first message): no 401.
        assert!(!statuses(&doc, "/api/v1/ws", "get").contains(&"401".to_owned()));
        // Meta's routes: a malformed id, but neither 404 nor 403 from the API middleware.
        let meta = statuses(&doc, "/webhooks/whatsapp/{connection_id}", "post");
        assert!(meta.contains(&"400".to_owned()), "{meta:?}");
        assert!(!meta.contains(&"404".to_owned()) && !meta.contains(&"403".to_owned()));
        // A signed-in change of a resource by id.
        assert_eq!(
            statuses(&doc, "/api/v1/users/{id}", "delete"),
            ["204", "400", "401", "403", "404", "408", "409", "429"]
        );
        // An optional body (parsed whatever its content type): no 415.
        assert!(!statuses(&doc, "/api/v1/auth/refresh", "post").contains(&"415".to_owned()));
        assert!(statuses(&doc, "/api/v1/auth/login", "post").contains(&"415".to_owned()));
    }

    /// A route added with axum's own `.route(…)` (or a nested plain router) would be served but
    /// missing from the document, and so from the probes of `tests/it/openapi.rs`, which walk
    /// the document. Every route goes through `routes!` instead; the exceptions are this
    /// document's own route, which the base document lists, the console's pages
    /// (`src/console/`), which are HTML for browsers, not API, and `/metrics`, which is served
    /// on the operator's metrics listener, never on the public port.
    #[test]
    fn every_route_is_registered_with_its_documentation() {
        let calls: Vec<String> = ["route", "route_service", "nest", "nest_service"]
            .iter()
            .map(|m| format!(".{m}("))
            .collect();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    // Console pages are HTML, not API: plain routes, outside the document.
                    if path.file_name().is_some_and(|n| n == "console") {
                        continue;
                    }
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let file = path.strip_prefix(&src).unwrap().display().to_string();
                    // Production code only: tests come last in a file, comments may name calls.
                    let code = text.lines().take_while(|l| l.trim() != "#[cfg(test)]");
                    for line in code.filter(|l| !l.trim().starts_with("//")) {
                        if calls.iter().any(|c| line.contains(c.as_str())) {
                            found.push(format!("{file}: {}", line.trim()));
                        }
                    }
                }
            }
        }
        assert_eq!(
            found,
            [
                r#"metrics.rs: .route("/metrics", get(scrape))"#,
                r#"openapi/mod.rs: .route("/api/v1/openapi.json", get(openapi_json))"#
            ],
            "register routes with `routes!` so that they are documented"
        );
    }
}
