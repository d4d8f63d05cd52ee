//! Outgoing webhooks: management, approval, SSRF refusals, Standard Webhooks signatures,
//! rotation, the durable queue and its retries. The worker is driven by calling
//! `webhooks::deliver_due` and moving the clock; a local axum server receives.
//!
//! One file per topic, so `cargo test webhooks::` still runs them all and
//! `cargo test webhooks::signing::` only the signatures; this file holds what they share: the
//! local receiver and the calls every test makes (create, approve, deliver, list deliveries).

mod approval;
mod delivery;
mod endpoints;
mod events;
mod signing;

use palisade_core::webhooks::deliver_due;
use palisade_testkit::{spawn_app_with, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

// ---- a local receiver ----

/// A received request: its headers and raw body.
type Received = (reqwest::header::HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
    pub(crate) url: String,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let mut r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let state = state.clone();
                    async move {
                        let mut h = reqwest::header::HeaderMap::new();
                        for (k, v) in &headers {
                            h.insert(k.clone(), v.clone());
                        }
                        state.got.lock().unwrap().push((h, body.to_vec()));
                        let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                        (
                            axum::http::StatusCode::from_u16(code).unwrap(),
                            "receiver says hello",
                        )
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        r
    }
    pub(crate) fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
    pub(crate) fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
    pub(crate) fn last(&self) -> Received {
        self.got.lock().unwrap().last().cloned().unwrap()
    }
    pub(crate) fn answer(&self, codes: &[u16]) {
        self.script.lock().unwrap().extend(codes);
    }
}

// ---- helpers ----

async fn app_with_private_targets(db: Db) -> TestApp {
    spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await
}

async fn create(app: &TestApp, s: &Session, body: Value) -> palisade_testkit::Resp {
    app.post("/api/v1/webhooks", Some(&s.access_token), body)
        .await
}

/// Creates and (if needed) approves a webhook; returns its id and secret.
pub(crate) async fn active_webhook(
    app: &TestApp,
    s: &Session,
    url: &str,
    events: Value,
) -> (String, String) {
    let r = create(app, s, json!({"url": url, "events": events})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    if r.body["webhook"]["status"] == "pending_approval" {
        let a = app
            .post(
                &format!("/api/v1/webhooks/{id}/approve"),
                Some(&s.access_token),
                json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    }
    (id, r.body["secret"].as_str().unwrap().to_owned())
}

async fn deliver(app: &TestApp) -> usize {
    deliver_due(&app.services).await.unwrap()
}

async fn deliveries(app: &TestApp, s: &Session, id: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            &s.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

fn now_unix(app: &TestApp) -> i64 {
    use palisade_core::Clock;
    app.clock.now().unix_timestamp()
}

async fn audit_actions(app: &TestApp, s: &Session) -> Vec<String> {
    let r = app
        .get("/api/v1/audit-logs?action=webhook.*", &s.access_token)
        .await;
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn send_test(app: &TestApp, s: &Session, id: &str) -> String {
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&s.access_token),
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::ACCEPTED, "{:?}", t.body);
    t.body["id"].as_str().unwrap().to_owned()
}

/// The user's notifications about disabled webhooks.
async fn notifications(app: &TestApp, s: &Session) -> Vec<Value> {
    notifications_of_kind(app, s, "webhook.disabled").await
}

async fn notifications_of_kind(app: &TestApp, s: &Session, kind: &str) -> Vec<Value> {
    let r = app.get("/api/v1/notifications", &s.access_token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .cloned()
        .collect()
}
