//! Outgoing webhooks: management, approval, SSRF refusals, Standard Webhooks signatures,
//! rotation, the durable queue and its retries. The worker is driven by calling
//! `webhooks::deliver_due` and moving the clock; a local axum server receives.

use crate::support::assert_error;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_core::webhooks::deliver_due;
use palisade_testkit::{spawn_app, spawn_app_with, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

both!(
    webhooks_are_managed_and_the_secret_is_shown_once,
    unknown_hosts_wait_for_approval_and_allowlists_skip_it,
    limits_roles_and_tenants_are_enforced,
    private_targets_are_refused_unless_allowed,
    deliveries_are_signed_and_rotation_double_signs,
    a_user_created_event_is_delivered,
    failures_are_retried_with_backoff_until_delivered,
    gone_disables_the_endpoint,
    ed25519_endpoints_sign_v1a_with_the_shown_public_key,
    rotation_overlap_is_configurable_and_bounded,
    the_per_minute_limit_defers_deliveries_in_order,
    fifty_failures_disable_the_endpoint_and_notify_admins,
    a_day_of_failures_disables_the_endpoint,
    pending_webhooks_notify_the_other_admins,
    revoking_a_creators_keys_emits_api_key_revoked,
    concurrent_changes_to_one_webhook_all_land
);

// ---- a local receiver ----

/// A received request: its headers and raw body.
type Received = (reqwest::header::HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order; 200 once empty.
    script: Arc<Mutex<VecDeque<u16>>>,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
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
    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
    fn last(&self) -> Received {
        self.got.lock().unwrap().last().cloned().unwrap()
    }
    fn answer(&self, codes: &[u16]) {
        self.script.lock().unwrap().extend(codes);
    }
}

// ---- the Standard Webhooks reference verifier, re-implemented independently ----

const WEBHOOK_TOLERANCE_IN_SECONDS: i64 = 5 * 60;

/// Mirrors `standardwebhooks.Webhook.verify`: strip `whsec_`, base64-decode the key, check the
/// timestamp within 5 minutes either way, then accept any `v1` signature equal (constant time)
/// to HMAC-SHA256(key, "{id}.{timestamp}.{body}").
fn verify(
    secret: &str,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), &'static str> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(msg_id), Some(sig_header), Some(ts)) = (
        get("webhook-id"),
        get("webhook-signature"),
        get("webhook-timestamp"),
    ) else {
        return Err("Missing required headers");
    };
    let ts: i64 = ts.parse().map_err(|_| "Invalid Signature Headers")?;
    if ts < now_unix - WEBHOOK_TOLERANCE_IN_SECONDS {
        return Err("Message timestamp too old");
    }
    if ts > now_unix + WEBHOOK_TOLERANCE_IN_SECONDS {
        return Err("Message timestamp too new");
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "bad secret")?;
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = mac.finalize().into_bytes().to_vec();
    for versioned in sig_header.split(' ') {
        let Some((version, sig)) = versioned.split_once(',') else {
            continue;
        };
        if version != "v1" {
            continue;
        }
        let Ok(sig) = STANDARD.decode(sig) else {
            continue;
        };
        if sig.len() == expected.len()
            && sig
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        {
            return Ok(());
        }
    }
    Err("No matching signature found")
}

#[test]
fn the_verifier_accepts_the_reference_vector() {
    // The test vector of the Standard Webhooks reference libraries.
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "webhook-id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
    );
    h.insert("webhook-timestamp", "1614265330".parse().unwrap());
    h.insert(
        "webhook-signature",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
            .parse()
            .unwrap(),
    );
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(verify(secret, &h, body, 1_614_265_330), Ok(()));
    assert_eq!(
        verify(secret, &h, body, 1_614_265_330 + 301),
        Err("Message timestamp too old")
    );
    assert_eq!(
        verify(secret, &h, body, 1_614_265_330 - 301),
        Err("Message timestamp too new")
    );
    assert!(verify(secret, &h, br#"{"test": 2432232315}"#, 1_614_265_330).is_err());
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
async fn active_webhook(app: &TestApp, s: &Session, url: &str, events: Value) -> (String, String) {
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

// ---- tests ----

async fn webhooks_are_managed_and_the_secret_is_shown_once(db: Db) {
    let app = app_with_private_targets(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = create(
        &app,
        &owner,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["user.*", "webhook.test"], "description": "CRM sync"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
    let w = &r.body["webhook"];
    let id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["url"], "http://127.0.0.1:9/hook");
    assert_eq!(w["events"], json!(["user.*", "webhook.test"]));
    assert_eq!(w["description"], "CRM sync");
    assert_eq!(w["status"], "pending_approval");
    assert!(w["created_at"].is_string());

    // Never shown again, never stored in plaintext.
    let list = app.get("/api/v1/webhooks", &owner.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(&secret[6..]));
    let one = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(!one.body.to_string().contains(&secret[6..]));
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhooks")
            .await
            .unwrap(),
        1
    );
    let b64 = &secret[6..];
    let plain = app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM webhooks WHERE secret_ciphertext LIKE '%{b64}%' OR secret_ciphertext LIKE '%whsec%'"
        ))
        .await
        .unwrap();
    assert_eq!(plain, 0, "the secret is stored encrypted");

    // Edit.
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"events": ["*"], "description": "Renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["events"], json!(["*"]));
    assert_eq!(r.body["description"], "Renamed");
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"events": ["user.exploded"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["fields"]["events"][0]
        .as_str()
        .unwrap()
        .contains("user.exploded"));

    // Delete.
    let r = app
        .delete(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let actions = audit_actions(&app, &owner).await;
    for a in ["webhook.created", "webhook.updated", "webhook.deleted"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

async fn unknown_hosts_wait_for_approval_and_allowlists_skip_it(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let r = create(&app, &owner, json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();

    // Nothing is queued or delivered while pending.
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CONFLICT);
    assert_eq!(t.code(), "webhook_not_active");
    app.add_user(&owner, "agent@acme.example", "agent").await;
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(rx.count(), 0);
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.code(), "approval_required");

    // Any admin approves; the approver is recorded and audited.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/approve"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["approved_by"], admin.user_id.as_str());
    assert!(r.body["approved_at"].is_string());
    let again = app
        .post(
            &format!("/api/v1/webhooks/{id}/approve"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(again.code(), "not_pending_approval");
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.approved"));

    // The tenant's allowlist makes new endpoints on that host active at once.
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/webhooks/allowed-domains",
            Some(&owner.access_token),
            Some(json!({"allowed_domains": ["127.0.0.1", "Hooks.Example.com"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["allowed_domains"],
        json!(["127.0.0.1", "hooks.example.com"])
    );
    let r = app
        .get("/api/v1/webhooks/allowed-domains", &owner.access_token)
        .await;
    assert_eq!(r.body["allowed_domains"].as_array().unwrap().len(), 2);
    let r = create(&app, &owner, json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(r.body["webhook"]["status"], "active", "{:?}", r.body);

    // The platform's allowlist does the same for every tenant.
    let app2 = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_allowed_domains = "localhost, 127.0.0.1".into();
    })
    .await;
    let o2 = app2.register("Beta", "owner@beta.example").await;
    let r = create(&app2, &o2, json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(r.body["webhook"]["status"], "active", "{:?}", r.body);
}

async fn limits_roles_and_tenants_are_enforced(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_allowed_domains = "127.0.0.1".into();
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let mut first = String::new();
    for i in 0..10 {
        let r = create(
            &app,
            &owner,
            json!({"url": format!("http://127.0.0.1:9/hook{i}"), "events": ["*"]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["webhook"]["status"], "active");
        if i == 0 {
            first = r.body["webhook"]["id"].as_str().unwrap().to_owned();
        }
    }
    let r = create(
        &app,
        &owner,
        json!({"url": "http://127.0.0.1:9/eleven", "events": ["*"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "webhook_limit_reached");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 10"));

    // Agents may not.
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    assert_eq!(
        app.get("/api/v1/webhooks", &agent.access_token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(
            &app,
            &agent,
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"]})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    // Another tenant sees nothing.
    let other = app.register("Other", "owner@other.example").await;
    let path = format!("/api/v1/webhooks/{first}");
    assert_eq!(
        app.get(&path, &other.access_token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&path, &other.access_token, json!({"description": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    for sub in ["approve", "rotate-secret", "test"] {
        let r = app
            .post(
                &format!("{path}/{sub}"),
                Some(&other.access_token),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{sub}");
    }
    assert_eq!(
        app.get(&format!("{path}/deliveries"), &other.access_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, &other.access_token).await.status,
        StatusCode::NOT_FOUND
    );
    let list = app.get("/api/v1/webhooks", &other.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.get(&path, &owner.access_token).await.status,
        StatusCode::OK
    );
}

async fn private_targets_are_refused_unless_allowed(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for (url, needle) in [
        ("http://127.0.0.1/hook", "https"),
        ("https://127.0.0.1/hook", "not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "not allowed"),
        ("https://localhost/hook", "not allowed"),
        ("https://metadata.google.internal/", "not allowed"),
        ("https://user:pw@hooks.example.com/", "user name"),
        ("https://hooks.example.org:8443/", "port"),
    ] {
        let r = create(&app, &owner, json!({"url": url, "events": ["*"]})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {:?}",
            r.body
        );
        let msg = r.body["error"]["fields"]["url"][0].as_str().unwrap();
        assert!(msg.contains(needle), "{url}: {msg}");
    }
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhooks")
            .await
            .unwrap(),
        0
    );
}

async fn deliveries_are_signed_and_rotation_double_signs(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, secret) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;

    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::ACCEPTED, "{:?}", t.body);
    assert_eq!(t.body["event_type"], "webhook.test");
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(rx.count(), 1);
    let (headers, body) = rx.last();
    assert_eq!(
        headers.get("webhook-id").unwrap().to_str().unwrap(),
        t.body["id"].as_str().unwrap()
    );
    assert_eq!(
        headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "webhook.test");
    assert_eq!(payload["data"]["webhook_id"], id.as_str());
    let now = now_unix(&app);
    assert_eq!(verify(&secret, &headers, &body, now), Ok(()));
    // The reference verifier's tolerance: 5 minutes either way.
    assert_eq!(
        verify(&secret, &headers, &body, now + 301),
        Err("Message timestamp too old")
    );
    assert_eq!(
        verify(&secret, &headers, &body, now - 301),
        Err("Message timestamp too new")
    );
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(verify(&secret, &headers, &tampered, now).is_err());
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "delivered");
    assert_eq!(d[0]["attempts"], 1);
    assert_eq!(d[0]["last_status"], 200);
    assert_eq!(d[0]["last_response"], "receiver says hello");

    // Rotation: both secrets sign for the overlap.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let new_secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(r.body["webhook"]["previous_secret_expires_at"].is_string());
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    let now = now_unix(&app);
    assert_eq!(verify(&new_secret, &headers, &body, now), Ok(()));
    assert_eq!(verify(&secret, &headers, &body, now), Ok(()));

    // The overlap ends after 24 hours.
    app.clock.advance(time::Duration::hours(25));
    let owner = app.login(&owner.email, &owner.password).await;
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let now = now_unix(&app);
    assert_eq!(verify(&new_secret, &headers, &body, now), Ok(()));
    assert!(verify(&secret, &headers, &body, now).is_err());

    // A leaked secret is dropped at once.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            Some(&owner.access_token),
            json!({"expire_previous_now": true}),
        )
        .await;
    let third = r.body["secret"].as_str().unwrap().to_owned();
    assert!(r.body["webhook"]["previous_secret_expires_at"].is_null());
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    let now = now_unix(&app);
    assert_eq!(verify(&third, &headers, &body, now), Ok(()));
    assert!(verify(&new_secret, &headers, &body, now).is_err());
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.secret_rotated"));
}

async fn a_user_created_event_is_delivered(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, secret) = active_webhook(&app, &owner, &rx.url, json!(["user.*"])).await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "new@acme.example", "name": "New Person", "role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Queued in the same transaction: the row is there before any worker runs.
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhook_deliveries")
            .await
            .unwrap(),
        1
    );
    // An API key event is not subscribed to.
    app.post(
        "/api/v1/api-keys",
        Some(&owner.access_token),
        json!({"name": "k", "scopes": ["read_only"]}),
    )
    .await;
    // The queue is in the database: another node (or this one after a restart) delivers it.
    let peer = app.spawn_peer().await;
    assert_eq!(deliver_due(&peer.services).await.unwrap(), 1);
    let (headers, body) = rx.last();
    assert_eq!(verify(&secret, &headers, &body, now_unix(&app)), Ok(()));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "user.created");
    assert_eq!(payload["data"]["email"], "new@acme.example");
    assert_eq!(payload["data"]["role"], "agent");
    assert!(payload["timestamp"].is_string());
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["event_type"], "user.created");
}

async fn failures_are_retried_with_backoff_until_delivered(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["*"])).await;
    rx.answer(&[500, 503]);
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    let delivery_id = t.body["id"].as_str().unwrap().to_owned();
    assert_eq!(deliver(&app).await, 1);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "failed");
    assert_eq!(d[0]["attempts"], 1);
    assert_eq!(d[0]["last_status"], 500);
    assert_eq!(d[0]["last_error"], "HTTP 500");
    assert!(d[0]["next_attempt_at"].is_string());
    // Not due yet: nothing is sent.
    assert_eq!(deliver(&app).await, 0);
    // ~5 s later (with jitter), the second attempt; then ~30 s later the third succeeds.
    app.clock.advance(time::Duration::seconds(6));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(deliver(&app).await, 0);
    app.clock.advance(time::Duration::seconds(34));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(rx.count(), 3);
    let ids: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h.get("webhook-id").unwrap().to_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|i| *i == delivery_id),
        "stable webhook-id: {ids:?}"
    );
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "delivered");
    assert_eq!(d[0]["attempts"], 3);
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhook_attempts")
            .await
            .unwrap(),
        3
    );
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["consecutive_failures"], 0);
    assert_eq!(w.body["status"], "active");

    // Retry-After is honoured, and a manual retry sends again now.
    rx.answer(&[429]);
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "failed");
    let retry = app
        .post(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/retry",
                d[0]["id"].as_str().unwrap()
            ),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{:?}", retry.body);
    assert_eq!(deliver(&app).await, 1);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "delivered");
}

async fn gone_disables_the_endpoint(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["*"])).await;
    rx.answer(&[410]);
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "disabled");
    assert!(w.body["disabled_reason"].as_str().unwrap().contains("410"));
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "dead");
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.disabled"));
    // Nothing more is sent to a disabled endpoint.
    app.post(
        "/api/v1/users",
        Some(&owner.access_token),
        json!({"email": "new@acme.example", "name": "New Person", "role": "agent"}),
    )
    .await;
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(rx.count(), 1);
    let owner = app.login(&owner.email, &owner.password).await;
    // Re-enabled by an admin, it receives again.
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.body["status"], "active", "{:?}", r.body);
}

#[test]
fn production_refuses_private_webhook_targets() {
    use palisade::config::{Environment, RawConfig};
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        env: Environment::Production,
        webhooks_allow_private_targets: true,
        ..palisade_testkit::test_config(dir.path())
    };
    let config = palisade::Config::from_raw(raw).unwrap();
    let refusals = palisade::app::production_refusals(&config);
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("PALISADE_WEBHOOKS_ALLOW_PRIVATE_TARGETS")),
        "{refusals:?}"
    );
}

// ---- Ed25519, rotation overlap, the per-minute limit, auto-disable, notifications ----

/// An independent `v1a` verifier: `whpk_` + base64 of the 32-byte key; accept any `v1a`
/// signature that ring's Ed25519 verifies over the exact bytes "{id}.{timestamp}.{body}".
fn verify_v1a(public_key: &str, headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let pk = STANDARD
        .decode(public_key.strip_prefix("whpk_").unwrap())
        .unwrap();
    assert_eq!(pk.len(), 32);
    let mut msg = format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).into_bytes();
    msg.extend_from_slice(body);
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk);
    get("webhook-signature").split(' ').any(|entry| {
        entry
            .strip_prefix("v1a,")
            .and_then(|sig| STANDARD.decode(sig).ok())
            .is_some_and(|sig| key.verify(&msg, &sig).is_ok())
    })
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

async fn ed25519_endpoints_sign_v1a_with_the_shown_public_key(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let bad = create(
        &app,
        &owner,
        json!({"url": rx.url, "events": ["*"], "signature_algorithm": "rsa"}),
    )
    .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(bad.body["error"]["fields"]["signature_algorithm"].is_array());
    let hmac = create(
        &app,
        &owner,
        json!({"url": rx.url, "events": ["*"], "signature_algorithm": "hmac-sha256"}),
    )
    .await;
    assert_eq!(hmac.status, StatusCode::CREATED, "{:?}", hmac.body);
    assert_eq!(hmac.body["webhook"]["signature_algorithm"], "hmac_sha256");
    assert!(hmac.body["webhook"]["public_key"].is_null());
    assert!(hmac.body["secret"].as_str().unwrap().starts_with("whsec_"));

    let r = create(
        &app,
        &owner,
        json!({"url": rx.url, "events": ["webhook.test"], "signature_algorithm": "ed25519"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    let public = r.body["secret"].as_str().unwrap().to_owned();
    assert!(public.starts_with("whpk_"), "{public}");
    assert_eq!(r.body["webhook"]["public_key"], public.as_str());
    assert_eq!(r.body["webhook"]["signature_algorithm"], "ed25519");
    app.post(
        &format!("/api/v1/webhooks/{id}/approve"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    let g = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(
        g.body["public_key"],
        public.as_str(),
        "GET shows the public key"
    );
    // The private key is never shown, nor stored in clear.
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhooks WHERE secret_ciphertext LIKE '%whsk_%'")
            .await
            .unwrap(),
        0
    );

    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert!(sig.starts_with("v1a,") && !sig.contains(' '), "{sig}");
    assert!(verify_v1a(&public, &headers, &body));
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(!verify_v1a(&public, &headers, &tampered));
    let other_public_key = "whpk_".to_owned() + &STANDARD.encode([7u8; 32]);
    assert!(!verify_v1a(&other_public_key, &headers, &body));

    // Rotation: a new key pair; both sign during the overlap, then only the new one.
    let rot = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            Some(&owner.access_token),
            json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{:?}", rot.body);
    let new_public = rot.body["secret"].as_str().unwrap().to_owned();
    assert!(new_public.starts_with("whpk_") && new_public != public);
    assert_eq!(rot.body["webhook"]["public_key"], new_public.as_str());
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    assert!(verify_v1a(&public, &headers, &body));
    assert!(verify_v1a(&new_public, &headers, &body));
    app.clock.advance(time::Duration::seconds(3601));
    let owner = app.login(&owner.email, &owner.password).await;
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    assert!(verify_v1a(&new_public, &headers, &body));
    assert!(!verify_v1a(&public, &headers, &body), "the old key expired");
}

async fn rotation_overlap_is_configurable_and_bounded(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["*"])).await;
    let path = format!("/api/v1/webhooks/{id}/rotate-secret");
    for bad in [
        json!({"overlap_seconds": 604_801}),
        json!({"overlap_seconds": -1}),
    ] {
        let r = app.post(&path, Some(&owner.access_token), bad).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(r.body["error"]["fields"]["overlap_seconds"].is_array());
    }
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": 60, "expire_previous_now": true}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": "1h"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // Nothing was rotated by the refusals.
    assert!(!audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.secret_rotated"));

    use palisade_core::Clock;
    let expires = |r: &palisade_testkit::Resp| {
        time::OffsetDateTime::parse(
            r.body["webhook"]["previous_secret_expires_at"]
                .as_str()
                .unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": 604_800}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(expires(&r) - app.clock.now(), time::Duration::days(7));
    let r = app.post(&path, Some(&owner.access_token), json!({})).await;
    assert_eq!(expires(&r) - app.clock.now(), time::Duration::hours(24));
    // 0: the previous secret stops at once, as with expire_previous_now.
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["webhook"]["previous_secret_expires_at"].is_null());
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    assert_eq!(verify(&secret, &headers, &body, now_unix(&app)), Ok(()));
}

async fn the_per_minute_limit_defers_deliveries_in_order(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_deliveries_per_minute = 3;
    })
    .await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(send_test(&app, &owner, &id).await);
    }
    assert_eq!(deliver(&app).await, 3, "three a minute");
    assert_eq!(rx.count(), 3);
    // The rest wait: not now, not after the deferral while the minute is still used up.
    assert_eq!(deliver(&app).await, 0);
    app.clock.advance(time::Duration::seconds(11));
    assert_eq!(deliver(&app).await, 0);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(
        d.iter().filter(|x| x["status"] == "pending").count(),
        2,
        "{d:?}"
    );
    app.clock.advance(time::Duration::seconds(50));
    assert_eq!(deliver(&app).await, 2);
    let order: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h.get("webhook-id").unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, queued, "delivered in the order they were queued");
}

async fn fifty_failures_disable_the_endpoint_and_notify_admins(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    rx.answer(&[500; 60]);
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    for _ in 0..49 {
        send_test(&app, &owner, &id).await;
    }
    assert_eq!(deliver(&app).await, 49);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "active");
    assert_eq!(w.body["consecutive_failures"], 49);
    assert!(notifications(&app, &owner).await.is_empty());
    // The 50th failure within the day disables it.
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "disabled");
    assert!(
        w.body["disabled_reason"].as_str().unwrap().contains("50"),
        "{:?}",
        w.body
    );
    let audit = app
        .get(
            "/api/v1/audit-logs?action=webhook.disabled",
            &owner.access_token,
        )
        .await;
    assert_eq!(
        audit.body["data"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
    assert_eq!(audit.body["data"][0]["target_id"], id.as_str());
    // Every admin (the owner too) is told; agents are not.
    for s in [&owner, &admin] {
        let n = notifications(&app, s).await;
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0]["kind"], "webhook.disabled");
        assert_eq!(n[0]["target_type"], "webhook");
        assert_eq!(n[0]["target_id"], id.as_str());
        assert_eq!(n[0]["data"]["webhook_id"], id.as_str());
        assert!(n[0]["read_at"].is_null());
    }
    assert!(notifications(&app, &agent).await.is_empty());
    // Nothing more is sent.
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&t, StatusCode::CONFLICT, "webhook_not_active");
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(rx.count(), 50);
}

async fn a_day_of_failures_disables_the_endpoint(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    rx.answer(&[503]);
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    // Still failing a day later (few attempts, but every one failed): disabled.
    app.clock.advance(time::Duration::hours(24));
    rx.answer(&[503]);
    let owner = app.login(&owner.email, &owner.password).await;
    send_test(&app, &owner, &id).await;
    assert!(deliver(&app).await >= 1);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "disabled", "{:?}", w.body);
    assert!(w.body["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("24 hours"));
    let n = notifications(&app, &owner).await;
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["kind"], "webhook.disabled");
}

async fn pending_webhooks_notify_the_other_admins(db: Db) {
    let app = app_with_private_targets(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let r = create(
        &app,
        &admin,
        json!({"url": "https://hooks.unknown.example/x", "events": ["*"]}),
    )
    .await;
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
    let id = r.body["webhook"]["id"].as_str().unwrap();
    let n = notifications_of_kind(&app, &owner, "webhook.pending_approval").await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["kind"], "webhook.pending_approval");
    assert_eq!(n[0]["target_id"], id);
    assert_eq!(n[0]["data"]["url"], "https://hooks.unknown.example/x");
    assert_eq!(n[0]["data"]["requested_by"], admin.user_id.as_str());
    assert!(
        notifications_of_kind(&app, &admin, "webhook.pending_approval")
            .await
            .is_empty(),
        "not the creator"
    );
    assert!(
        notifications_of_kind(&app, &agent, "webhook.pending_approval")
            .await
            .is_empty(),
        "not agents"
    );
    // An allowlisted URL notifies nobody.
    app.send(
        reqwest::Method::PUT,
        "/api/v1/webhooks/allowed-domains",
        Some(&owner.access_token),
        Some(json!({"allowed_domains": ["ok.example"]})),
    )
    .await;
    create(
        &app,
        &admin,
        json!({"url": "https://hooks.ok.example/x", "events": ["*"]}),
    )
    .await;
    assert_eq!(
        notifications_of_kind(&app, &owner, "webhook.pending_approval")
            .await
            .len(),
        1
    );
    // A URL change that leaves the allowlist asks for approval again, and tells the others.
    let ok_id = app.get("/api/v1/webhooks", &admin.access_token).await.body["data"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{ok_id}"),
            &admin.access_token,
            json!({"url": "https://elsewhere.example/x"}),
        )
        .await;
    assert_eq!(r.body["status"], "pending_approval", "{:?}", r.body);
    assert_eq!(
        notifications_of_kind(&app, &owner, "webhook.pending_approval")
            .await
            .len(),
        2
    );
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM notifications")
            .await
            .unwrap(),
        2
    );
}

async fn revoking_a_creators_keys_emits_api_key_revoked(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["api_key.revoked"])).await;
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": "by admin", "scopes": ["read_only"]}),
        )
        .await;
    let key_id = key.body["api_key"]["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &format!("/api/v1/users/{}", admin.user_id),
            &owner.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Queued in the demotion's transaction.
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["event_type"], "api_key.revoked");
    assert_eq!(deliver(&app).await, 1);
    let (_, body) = rx.last();
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "api_key.revoked");
    assert_eq!(payload["data"]["id"], key_id.as_str());
    assert_eq!(payload["data"]["revoked"], true);
    assert_eq!(payload["data"]["revocation_reason"], "creator demoted");

    let other = app.add_user(&owner, "other@acme.example", "admin").await;
    for name in ["one", "two"] {
        app.post(
            "/api/v1/api-keys",
            Some(&other.access_token),
            json!({"name": name, "scopes": ["read_only"]}),
        )
        .await;
    }
    let root = app.super_admin("root@platform.example").await;
    let del = app
        .delete(
            &format!("/api/v1/users/{}", other.user_id),
            &root.access_token,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{:?}", del.body);
    assert_eq!(deliver(&app).await, 2);
    let reasons: Vec<Value> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["data"]["revocation_reason"].clone()
        })
        .collect();
    assert_eq!(
        reasons,
        vec![json!("creator deleted"), json!("creator deleted")]
    );
}

#[test]
fn a_zero_per_minute_limit_is_refused_at_start() {
    use palisade::config::RawConfig;
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        webhooks_deliveries_per_minute: 0,
        ..palisade_testkit::test_config(dir.path())
    };
    let err = palisade::Config::from_raw(raw).unwrap_err();
    assert!(
        err.to_string()
            .contains("PALISADE_WEBHOOKS_DELIVERIES_PER_MINUTE"),
        "{err}"
    );
}

/// An admin changes the events while others change the description, all at once: every
/// change lands. Without the row lock a description change on PostgreSQL wrote back the events
/// it had read before the events change committed, silently undoing it (the same lost update let
/// the delivery worker revert an admin's edit, and two rotations keep a secret that never signs).
async fn concurrent_changes_to_one_webhook_all_land(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    let path = format!("/api/v1/webhooks/{id}");
    for round in 0..6 {
        let events = if round % 2 == 0 {
            json!(["contact.created"])
        } else {
            json!(["webhook.test"])
        };
        let patches = (0..8).map(|i| {
            let (app, path, token) = (&app, &path, owner.access_token.clone());
            let body = if i == 3 {
                json!({ "events": events })
            } else {
                json!({ "description": format!("round {round}, change {i}") })
            };
            async move { app.patch(path, &token, body).await }
        });
        for r in futures_util::future::join_all(patches).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let w = app.get(&path, &owner.access_token).await;
        assert_eq!(w.body["events"], events, "round {round}: {:?}", w.body);
    }
}
