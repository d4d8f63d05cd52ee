//! Small helpers shared by the feature modules: raw requests, error assertions, stored counts.

use palisade_testkit::{spawn_app_with, Db, Resp, Session, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// A second good password (passes the modern preset), and one that also passes compliance.
pub const OTHER_PASSWORD: &str = "velvet-harbor-crimson-mosaic";
pub const COMPLIANT_PASSWORD: &str = "Correct-orbit-lantern-7";

/// Sends a request with arbitrary headers and an optional raw body.
pub async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    let mut req = app.client.request(method, app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    TestApp::read(req.send().await.expect("request")).await
}

/// A JSON request with extra headers.
pub async fn json_with(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Resp {
    let mut h = headers.to_vec();
    h.push(("content-type", "application/json"));
    raw(
        app,
        method,
        path,
        &h,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
}

pub async fn login_resp(app: &TestApp, email: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

/// Logs in as seen from `ip` (the test app must trust 127.0.0.1 as a proxy).
pub async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Resp {
    json_with(
        app,
        Method::POST,
        "/api/v1/auth/login",
        &[("x-forwarded-for", ip)],
        json!({"email": email, "password": password}),
    )
    .await
}

/// Creates a user with the good password and returns their id, without signing them in.
pub async fn create_user(app: &TestApp, admin: &Session, email: &str, role: &str) -> String {
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin.access_token),
            json!({"email": email, "name": "Team Member", "role": role, "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Asserts an error response: status, code, and the common error shape.
#[track_caller]
pub fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(r.code(), code, "body: {}", r.body);
    let e = &r.body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without message: {}",
        r.body
    );
    let rid = e["request_id"].as_str().unwrap_or("");
    assert!(!rid.is_empty(), "error without request_id: {}", r.body);
    assert_eq!(
        Some(rid),
        r.header("x-request-id"),
        "request_id in the body equals the header"
    );
}

/// The messages listed under `fields[field]`.
pub fn field_messages(r: &Resp, field: &str) -> Vec<String> {
    r.body["error"]["fields"][field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many audit records with this action exist (all tenants).
pub async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
        ))
        .await
        .unwrap()
}

/// Seconds in a Retry-After header (panics when absent or not a number).
#[track_caller]
pub fn retry_after(r: &Resp) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}: {}", r.status, r.body))
        .parse()
        .expect("Retry-After is whole seconds")
}

/// The Set-Cookie headers of a response.
pub fn set_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// The Set-Cookie header for cookie `name`.
#[track_caller]
pub fn cookie<'a>(all: &'a [String], name: &str) -> &'a str {
    all.iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {all:?}"))
}

/// The value part of a Set-Cookie header.
pub fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map_or("", |(_, v)| v)
}

/// A tenant with a WhatsApp number connected through the in-process simulator, whose webhooks
/// the simulator delivers to the connection's callback URL.
pub struct WhatsAppFixture {
    pub app: TestApp,
    pub sim: String,
    pub owner: Session,
    pub connection_id: String,
    pub phone_number_id: String,
    pub app_secret: String,
    /// The number's WhatsApp Business Account and the access token for it at the simulator.
    pub waba_id: String,
    pub access_token: String,
}

impl WhatsAppFixture {
    /// Syncs the connection's templates from the simulator (every WABA starts with the approved
    /// `hello_world` and `order_confirmation` in `en_US`), as a tenant must before sending one.
    pub async fn sync_templates(&self) -> Value {
        let r = self
            .app
            .post(
                "/api/v1/whatsapp/templates/sync",
                Some(&self.owner.access_token),
                json!({ "connection_id": self.connection_id }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body
    }

    /// Changes how the simulator behaves (`POST /_sim/config` with the fields to change, `{}`
    /// for none); returns its whole configuration and counters.
    pub async fn sim_config(&self, patch: Value) -> Value {
        let r = self
            .app
            .client
            .post(format!("{}/_sim/config", self.sim))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// [`settle_inbound`] for the fixture's application.
    pub async fn settle(&self) {
        settle_inbound(&self.app).await;
    }

    /// Ana Souza (+44 7700 900123) sends a message of `kind` (`object` is its body, e.g.
    /// `{"body": "Hello"}` for text) through the simulator, which delivers it by webhook.
    /// Returns its wamid.
    pub async fn customer_message(&self, kind: &str, object: Value) -> String {
        let r = self
            .app
            .client
            .post(format!("{}/_sim/inbound", self.sim))
            .json(&json!({
                "phone_number_id": self.phone_number_id, "from": "447700900123",
                "profile_name": "Ana Souza", "type": kind, kind: object,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["wamid"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Processes the stored WhatsApp webhook events (as the inbound worker does) until none is
/// left unprocessed.
pub async fn settle_inbound(app: &TestApp) {
    for _ in 0..200 {
        palisade_core::whatsapp::inbound::process_pending(&app.services)
            .await
            .unwrap();
        let left = app
            .db
            .count_as_owner(
                "SELECT COUNT(*) FROM whatsapp_inbound_events WHERE processed_at IS NULL",
            )
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("inbound events left unprocessed");
}

/// `X-Hub-Signature-256` of `body` under a connection's app secret, as Meta signs its webhooks.
pub fn meta_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A new number in the simulator at `sim` (not connected): its `phone_number_id`, `waba_id`,
/// `access_token` and `app_secret`.
pub async fn sim_number(app: &TestApp, sim: &str) -> Value {
    let r = app
        .client
        .post(format!("{sim}/_sim/phone-numbers"))
        .json(&json!({"verified_name": "Acme Support"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// The body of `POST /api/v1/whatsapp/connections` for the simulator's number `n`.
pub fn connect_body(n: &Value) -> Value {
    json!({
        "display_name": "Support line",
        "phone_number_id": n["phone_number_id"],
        "waba_id": n["waba_id"],
        "access_token": n["access_token"],
        "app_secret": n["app_secret"],
    })
}

/// Creates a number in the simulator at `sim` and connects it to `owner`'s tenant (expects
/// 201). Returns the simulator's number and the connection response.
pub async fn connect_sim_number(
    app: &TestApp,
    sim: &str,
    owner: &Session,
    display_name: &str,
) -> (Value, Value) {
    let n = sim_number(app, sim).await;
    let mut body = connect_body(&n);
    body["display_name"] = json!(display_name);
    let r = app
        .post(
            "/api/v1/whatsapp/connections",
            Some(&owner.access_token),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (n, r.body)
}

pub async fn whatsapp_fixture(db: Db) -> WhatsAppFixture {
    whatsapp_fixture_with(db, |_| {}).await
}

/// [`whatsapp_fixture`] with `tweak` applied to the application's configuration.
pub async fn whatsapp_fixture_with(
    db: Db,
    tweak: impl FnOnce(&mut palisade::config::RawConfig),
) -> WhatsAppFixture {
    let sim = palisade_wa_sim::build(palisade_wa_sim::SimConfig::testing())
        .await
        .unwrap();
    let base = sim.base_url();
    tokio::spawn(sim.run_until(std::future::pending()));
    let graph = base.clone();
    let app = spawn_app_with(db, move |c| {
        c.whatsapp_graph_base_url = graph;
        tweak(c);
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (n, r) = connect_sim_number(&app, &base, &owner, "Support line").await;
    let connection_id = r["connection"]["id"].as_str().unwrap().to_owned();
    let pid = n["phone_number_id"].as_str().unwrap().to_owned();
    let sub = app
        .client
        .post(format!("{base}/_sim/phone-numbers/{pid}/subscribe"))
        .json(&json!({
            "callback_url": app.url(&format!("/webhooks/whatsapp/{connection_id}")),
            "verify_token": r["verify_token"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(sub.status(), StatusCode::OK);
    WhatsAppFixture {
        app,
        sim: base,
        owner,
        connection_id,
        phone_number_id: pid,
        app_secret: n["app_secret"].as_str().unwrap().to_owned(),
        waba_id: n["waba_id"].as_str().unwrap().to_owned(),
        access_token: n["access_token"].as_str().unwrap().to_owned(),
    }
}

/// An active endpoint (approved if the tenant needs approval) on an address nothing listens
/// on, subscribed to `events`; deliveries stay queued for the test to read (spawn the app with
/// `webhooks_allow_private_targets` and `webhooks_worker_interval_ms = 0`). Returns its id.
pub async fn subscribe_webhook(app: &TestApp, token: &str, events: &str) -> String {
    let w = app
        .post(
            "/api/v1/webhooks",
            Some(token),
            json!({"url": "http://127.0.0.1:9/hook", "events": [events]}),
        )
        .await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.body);
    let wid = w.body["webhook"]["id"].as_str().unwrap().to_owned();
    if w.body["webhook"]["status"] == "pending_approval" {
        let a = app
            .post(
                &format!("/api/v1/webhooks/{wid}/approve"),
                Some(token),
                json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    wid
}

/// `n` contacts (phones `{prefix}00`, `{prefix}01`, …) created by `token`'s user, and an API
/// key of that tenant that may only read contacts: `(key, key id)`. For the read-volume
/// detection tests.
pub async fn contacts_and_reader_key(
    app: &TestApp,
    token: &str,
    prefix: &str,
    n: usize,
) -> (String, String) {
    for i in 0..n {
        let r = app
            .post(
                "/api/v1/contacts",
                Some(token),
                json!({"phone": format!("{prefix}{i:02}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let k = app
        .post(
            "/api/v1/api-keys",
            Some(token),
            json!({"name": "reader", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
    (
        k.body["key"].as_str().unwrap().to_owned(),
        k.body["api_key"]["id"].as_str().unwrap().to_owned(),
    )
}
