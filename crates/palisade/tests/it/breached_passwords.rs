//! The breached-password check against a fake k-anonymity range server on loopback: what is
//! sent (a 5-character prefix, `Add-Padding: true`), the three modes on every path that sets a
//! password, padding, and fail-open on a timeout or an error (accepted, audited).

use palisade_core::auth::breach::sha1_prefix_suffix;
use palisade_testkit::{spawn_app_with, Db, Session, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

both!(
    only_a_prefix_is_sent_with_padding_and_enforce_refuses_a_hit,
    padding_lines_are_not_hits,
    enforce_refuses_on_every_path,
    warn_accepts_with_a_warning_on_every_path,
    off_never_asks,
    a_timeout_or_an_error_fails_open_and_is_audited,
);

/// In the fake corpus.
const BREACHED: &str = "violet-harbor-cactus-91";
/// Also in the fake corpus.
const BREACHED_TOO: &str = "saffron-glacier-tundra-63";
/// Listed by the fake server only as a padding line (count 0).
const PADDED: &str = "amber-kettle-ferry-delta";
/// The server takes longer than the check's 2-second timeout for this one's prefix.
const SLOW: &str = "granite-willow-pocket-77";
/// The server answers 500 for this one's prefix.
const FAILING: &str = "copper-meadow-signal-08";
const OTHER: &str = "quiet-nebula-saddle-lamp";

/// A request the fake range server received.
#[derive(Debug, Clone)]
struct RangeRequest {
    path: String,
    add_padding: Option<String>,
}

struct FakeRange {
    url: String,
    requests: Arc<Mutex<Vec<RangeRequest>>>,
}

impl FakeRange {
    fn requests(&self) -> Vec<RangeRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// A range server on loopback that knows [`BREACHED`] (count 42) and pads with [`PADDED`].
async fn fake_range() -> FakeRange {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    type Shared = (
        Arc<Mutex<Vec<RangeRequest>>>,
        Arc<HashMap<String, Vec<String>>>,
    );
    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    for (pw, count) in [(BREACHED, 42), (BREACHED_TOO, 7), (PADDED, 0)] {
        let (prefix, suffix) = sha1_prefix_suffix(pw);
        lines
            .entry(prefix)
            .or_default()
            .push(format!("{suffix}:{count}"));
    }
    let slow = sha1_prefix_suffix(SLOW).0;
    let failing = sha1_prefix_suffix(FAILING).0;
    let requests = Arc::new(Mutex::new(Vec::new()));
    async fn range(
        State((requests, lines)): State<Shared>,
        Path(prefix): Path<String>,
        headers: HeaderMap,
        slow: String,
        failing: String,
    ) -> axum::response::Response {
        requests.lock().unwrap().push(RangeRequest {
            path: prefix.clone(),
            add_padding: headers
                .get("add-padding")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        if prefix == slow {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        if prefix == failing {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        // Unrelated lines and padding, as the real service sends.
        let mut body = String::from(
            "0018A45C4D1DEF81644B54AB7F969B88D65:3\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n",
        );
        for l in lines.get(&prefix).into_iter().flatten() {
            body.push_str(l);
            body.push_str("\r\n");
        }
        body.into_response()
    }
    let state: Shared = (requests.clone(), Arc::new(lines));
    let app = axum::Router::new()
        .route(
            "/range/{prefix}",
            axum::routing::get(move |st: State<Shared>, p: Path<String>, h: HeaderMap| {
                let (slow, failing) = (slow.clone(), failing.clone());
                async move { range(st, p, h, slow, failing).await }
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeRange {
        url: format!("http://{addr}/range/"),
        requests,
    }
}

async fn app_with(db: Db, mode: &str, range: &FakeRange) -> TestApp {
    let (mode, url) = (mode.to_owned(), range.url.clone());
    spawn_app_with(db, move |c| {
        c.hibp_mode = Some(mode);
        c.hibp_url = url;
    })
    .await
}

async fn register(app: &TestApp, email: &str, password: &str) -> palisade_testkit::Resp {
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"tenant_name": "Acme", "name": "Owner Person", "email": email, "password": password}),
    )
    .await
}

fn password_messages(r: &palisade_testkit::Resp, field: &str) -> Vec<String> {
    r.body["error"]["fields"][field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_breached_refusal(r: &palisade_testkit::Resp, field: &str) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "validation_failed", "{}", r.body);
    let msgs = password_messages(r, field);
    assert!(
        msgs.iter().any(|m| m == "breached"),
        "the rule `breached` under {field}: {msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("known data breaches")),
        "and a sentence a person understands: {msgs:?}"
    );
}

fn warnings(body: &Value) -> Vec<Value> {
    body["warnings"].as_array().cloned().unwrap_or_default()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
        ))
        .await
        .unwrap()
}

/// An invitation for a new agent of `owner`'s tenant: its token.
async fn invite(app: &TestApp, owner: &Session, email: &str) -> String {
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": email, "name": "New Agent", "role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["invite_token"].as_str().unwrap().to_owned()
}

async fn only_a_prefix_is_sent_with_padding_and_enforce_refuses_a_hit(db: Db) {
    let range = fake_range().await;
    let app = app_with(db, "enforce", &range).await;
    let r = register(&app, "owner@acme.example", BREACHED).await;
    assert_breached_refusal(&r, "password");
    let sent = range.requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (prefix, suffix) = sha1_prefix_suffix(BREACHED);
    assert_eq!(sent[0].path, prefix, "only the 5-character prefix");
    assert_eq!(sent[0].path.len(), 5);
    assert!(!sent[0].path.contains(&suffix[..5]));
    assert_eq!(sent[0].add_padding.as_deref(), Some("true"));
    // Nothing was created; a clean password then registers without a warning.
    let r = register(&app, "owner@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("warnings").is_none(), "{}", r.body);
    assert_eq!(range.requests().len(), 2);
    // A password the policy refuses anyway lists `breached` beside its other rules.
    let me = app
        .post(
            "/api/v1/auth/password",
            Some(r.body["access_token"].as_str().unwrap()),
            json!({"current_password": GOOD_PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(me.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(password_messages(&me, "new_password")
        .iter()
        .all(|m| !m.contains("breached")));
}

async fn padding_lines_are_not_hits(db: Db) {
    let range = fake_range().await;
    let app = app_with(db, "enforce", &range).await;
    let r = register(&app, "owner@acme.example", PADDED).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("warnings").is_none(), "{}", r.body);
    assert_eq!(range.requests().len(), 1);
}

async fn enforce_refuses_on_every_path(db: Db) {
    let range = fake_range().await;
    let app = app_with(db, "enforce", &range).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    // Change.
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": GOOD_PASSWORD, "new_password": BREACHED}),
        )
        .await;
    assert_breached_refusal(&r, "new_password");
    // Creating a user with a password.
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "ana@acme.example", "name": "Ana", "role": "agent", "password": BREACHED}),
        )
        .await;
    assert_breached_refusal(&r, "password");
    // Accepting an invitation: refused, and the invitation still works with a clean password.
    let token = invite(&app, &owner, "bo@acme.example").await;
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": BREACHED}),
        )
        .await;
    assert_breached_refusal(&r, "password");
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": OTHER}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The owner's password did not change.
    app.login("owner@acme.example", GOOD_PASSWORD).await;
}

async fn warn_accepts_with_a_warning_on_every_path(db: Db) {
    let range = fake_range().await;
    let app = app_with(db, "warn", &range).await;
    let r = register(&app, "owner@acme.example", BREACHED).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(warnings(&r.body), vec![json!("password_breached")]);
    let owner = app.login("owner@acme.example", BREACHED).await;
    // Change: a clean password has no warning, a breached one the same warning.
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": BREACHED, "new_password": OTHER}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("warnings").is_none(), "clean: {}", r.body);
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": OTHER, "new_password": BREACHED_TOO}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(warnings(&r.body), vec![json!("password_breached")]);
    // Creating a user with a password.
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "ana@acme.example", "name": "Ana", "role": "agent", "password": BREACHED}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(warnings(&r.body), vec![json!("password_breached")]);
    // Accepting an invitation.
    let token = invite(&app, &owner, "bo@acme.example").await;
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": token, "password": BREACHED}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(warnings(&r.body), vec![json!("password_breached")]);
    assert!(r.body["access_token"].is_string());
    // Sign-in itself never asks (nothing chosen), and never warns.
    let before = range.requests().len();
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "bo@acme.example", "password": BREACHED}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("warnings").is_none());
    assert_eq!(range.requests().len(), before);
}

async fn off_never_asks(db: Db) {
    let range = fake_range().await;
    let app = app_with(db, "off", &range).await;
    let r = register(&app, "owner@acme.example", BREACHED).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("warnings").is_none());
    let owner = app.login("owner@acme.example", BREACHED).await;
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": BREACHED, "new_password": OTHER}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(range.requests().is_empty());
    // The development default is off too.
    let plain = palisade_testkit::spawn_app(db).await;
    assert_eq!(
        plain.services.settings.hibp_mode,
        palisade_core::auth::breach::HibpMode::Off
    );
}

async fn a_timeout_or_an_error_fails_open_and_is_audited(db: Db) {
    let range = fake_range().await;
    let app = app_with(db, "enforce", &range).await;
    let started = Instant::now();
    let r = register(&app, "owner@acme.example", SLOW).await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::CREATED, "fail-open: {}", r.body);
    assert!(r.body.get("warnings").is_none());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "the check gives up after 2 seconds: {took:?}"
    );
    assert_eq!(audit_count(&app, "security.breach_check_failed").await, 1);
    let owner = app.login("owner@acme.example", SLOW).await;
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": SLOW, "new_password": FAILING}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "fail-open: {}", r.body);
    assert_eq!(audit_count(&app, "security.breach_check_failed").await, 2);
    // The second record is in the tenant's chain, so its admins see it.
    let log = app
        .get(
            "/api/v1/audit-logs?action=security.breach_check_failed",
            &owner.access_token,
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let data = log.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", log.body);
    assert_eq!(data[0]["metadata"]["reason"], "bad_status", "{}", log.body);
    // Both prefixes were asked for, with padding.
    let sent = range.requests();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent
        .iter()
        .all(|r| r.add_padding.as_deref() == Some("true")));
}
