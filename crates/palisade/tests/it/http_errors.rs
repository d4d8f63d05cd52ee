//! The HTTP envelope: request ids, security headers, JSON errors for every failure, health, and
//! the OpenAPI document.

use crate::support::{assert_error, raw};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    every_response_carries_request_id_and_security_headers,
    unknown_routes_and_wrong_methods_are_json,
    a_valid_incoming_request_id_is_echoed,
    health_and_readiness,
    openapi_documents_every_route,
    api_rate_limit_answers_429,
);

#[track_caller]
fn assert_envelope(r: &Resp, what: &str) {
    let rid = r
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{what}: no X-Request-Id"));
    assert!(!rid.is_empty(), "{what}");
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{what}: CSP {csp:?}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert!(
        r.header("permissions-policy")
            .is_some_and(|p| p.contains("camera=()")),
        "{what}"
    );
}

async fn every_response_carries_request_id_and_security_headers(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let json_ct = [("content-type", "application/json")];
    let cases: Vec<(&str, Resp, StatusCode)> = vec![
        (
            "healthz",
            raw(&app, Method::GET, "/healthz", &[], None).await,
            StatusCode::OK,
        ),
        (
            "me",
            app.get("/api/v1/me", &owner.access_token).await,
            StatusCode::OK,
        ),
        (
            "openapi",
            raw(&app, Method::GET, "/api/v1/openapi.json", &[], None).await,
            StatusCode::OK,
        ),
        (
            "401",
            raw(&app, Method::GET, "/api/v1/me", &[], None).await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "404",
            raw(&app, Method::GET, "/nope", &[], None).await,
            StatusCode::NOT_FOUND,
        ),
        (
            "405",
            raw(&app, Method::PUT, "/api/v1/me", &[], None).await,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "400",
            raw(
                &app,
                Method::POST,
                "/api/v1/auth/login",
                &json_ct,
                Some(b"{".to_vec()),
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "422",
            app.post("/api/v1/auth/login", None, json!({"email": 1}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "415",
            raw(
                &app,
                Method::POST,
                "/api/v1/auth/login",
                &[],
                Some(b"{}".to_vec()),
            )
            .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "204",
            app.post("/api/v1/auth/logout", Some(&owner.access_token), json!({}))
                .await,
            StatusCode::NO_CONTENT,
        ),
    ];
    let mut ids = std::collections::HashSet::new();
    for (what, r, status) in &cases {
        assert_eq!(r.status, *status, "{what}: {}", r.body);
        assert_envelope(r, what);
        assert!(
            ids.insert(r.header("x-request-id").unwrap().to_owned()),
            "{what}: request ids are unique"
        );
        if r.status.is_client_error() {
            assert_eq!(
                r.body["error"]["request_id"].as_str(),
                r.header("x-request-id"),
                "{what}: the body's request_id is the header's"
            );
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("application/json")),
                "{what}: errors are JSON"
            );
        }
    }
    // API answers are never cached.
    assert_eq!(cases[1].1.header("cache-control"), Some("no-store"));
    assert_eq!(cases[3].1.header("cache-control"), Some("no-store"));
}

async fn unknown_routes_and_wrong_methods_are_json(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    for path in ["/nope", "/api/v1/nope", "/api/v2/me", "/api/v1/users/a/b/c"] {
        let r = raw(&app, Method::GET, path, &[], None).await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(path),
            "{}",
            r.body
        );
    }
    // Even with a valid token, an unknown route is a 404.
    let r = app.get("/api/v1/nope", &owner.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    for (method, path) in [
        (Method::PUT, "/api/v1/me"),
        (Method::DELETE, "/api/v1/tenant"),
        (Method::GET, "/api/v1/auth/login"),
        (Method::POST, "/healthz"),
        (Method::PUT, "/api/v1/users"),
        (Method::POST, &*format!("/api/v1/users/{}", owner.user_id)),
        (
            Method::GET,
            &*format!("/api/v1/users/{}/unlock", owner.user_id),
        ),
    ] {
        let r = app
            .send(method.clone(), path, Some(&owner.access_token), None)
            .await;
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(method.as_str()),
            "{}",
            r.body
        );
    }
}

async fn a_valid_incoming_request_id_is_echoed(db: Db) {
    let app = spawn_app(db).await;
    let r = raw(
        &app,
        Method::GET,
        "/healthz",
        &[("x-request-id", "trace-abc_123.XYZ")],
        None,
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("trace-abc_123.XYZ"));
    let r = raw(
        &app,
        Method::GET,
        "/api/v1/me",
        &[("x-request-id", "client-req-42")],
        None,
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("client-req-42"));
    assert_eq!(r.body["error"]["request_id"], "client-req-42");
    // Invalid ones (too long, odd characters) are replaced, not echoed.
    let long = "a".repeat(65);
    for bad in [long.as_str(), "has space", "semi;colon", "<script>"] {
        let r = raw(
            &app,
            Method::GET,
            "/api/v1/me",
            &[("x-request-id", bad)],
            None,
        )
        .await;
        let got = r.header("x-request-id").unwrap();
        assert_ne!(got, bad);
        assert!(
            !got.is_empty() && got.len() <= 64,
            "a fresh id is generated: {got}"
        );
        assert_eq!(r.body["error"]["request_id"], got);
    }
}

async fn health_and_readiness(db: Db) {
    let app = spawn_app(db).await;
    let r = raw(&app, Method::GET, "/healthz", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    let r = raw(&app, Method::GET, "/readyz", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ready");
}

/// Every route of the router, from `crates/web/src/routes`.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/logout-all"),
    ("get", "/api/v1/auth/sessions"),
    ("delete", "/api/v1/auth/sessions/{id}"),
    ("post", "/api/v1/auth/password"),
    ("get", "/api/v1/auth/password/generate"),
    ("post", "/api/v1/auth/accept-invite"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/tenant"),
    ("patch", "/api/v1/tenant"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("post", "/api/v1/users/{id}/restore"),
    ("post", "/api/v1/users/{id}/transfer-ownership"),
    ("post", "/api/v1/users/{id}/unlock"),
];

/// The paths the web crate routes: those of its handlers' `#[utoipa::path(…, path = "…")]`
/// (registered with `routes!`) and any passed to axum's `.route("…")` directly.
fn routed_paths_in_source() -> std::collections::BTreeSet<String> {
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src")];
    let mut out = std::collections::BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let f = e.unwrap().path();
            if f.is_dir() {
                // The console's pages are HTML for browsers, not API (docs/console.md).
                if f.file_name().is_some_and(|n| n != "console") {
                    dirs.push(f);
                }
                continue;
            }
            // `/metrics` is served on the operator's metrics listener, not the public port.
            if f.ends_with("web/src/metrics.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            // Production code only: tests come last in a file and may quote routes.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let compact: String = code.split_whitespace().collect();
            let routed = compact.split(".route(\"").skip(1);
            let attributes = compact.split("#[utoipa::path(").skip(1);
            let documented = attributes.filter_map(|a| a.split_once("path=\"").map(|(_, p)| p));
            for piece in routed.chain(documented) {
                if let Some((path, _)) = piece.split_once('"') {
                    out.insert(path.to_owned());
                }
            }
        }
    }
    out
}

async fn openapi_documents_every_route(db: Db) {
    let app = spawn_app(db).await;
    let r = raw(&app, Method::GET, "/api/v1/openapi.json", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = &r.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Palisade API");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        assert!(
            item.get(*method).is_some(),
            "{method} {path} is not documented"
        );
    }
    // Every path the router serves (every handler's `#[utoipa::path]`, every `.route(...)` in the
    // web crate) is documented, including any added after the list above was written.
    let routed = routed_paths_in_source();
    for (_, path) in ROUTES {
        assert!(routed.contains(*path), "{path} is no longer routed");
    }
    let undocumented: Vec<_> = routed
        .iter()
        .filter(|p| !paths.contains_key(p.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    // Each documented path is served (not a 404 from the fallback).
    let owner = app.register("Acme", "ana@acme.example").await;
    for (method, path) in ROUTES {
        let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app
            .send(m, &concrete, Some(&owner.access_token), None)
            .await;
        assert!(
            r.code() != "not_found" || path.contains("{id}"),
            "{method} {path} is not served: {}",
            r.body
        );
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(!r.status.is_server_error(), "{method} {path}: {}", r.body);
    }
    // Bearer security is declared.
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

async fn api_rate_limit_answers_429(db: Db) {
    let app = spawn_app_with(db, |raw| raw.rate_limit_api_per_minute = 5).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut limited = None;
    for _ in 0..10 {
        let r = app.get("/api/v1/me", &owner.access_token).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = limited.expect("the API limit never applied");
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(crate::support::retry_after(&r) >= 1);
    // Health checks are outside the API limit.
    assert_eq!(
        raw(&app, Method::GET, "/healthz", &[], None).await.status,
        StatusCode::OK
    );
}
