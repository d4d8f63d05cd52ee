//! What API keys and impersonations may reach (issue 11, items 6–10 and 13): webhook reads take
//! `webhooks:read`; approval and allowed domains are for signed-in admins; a key subscribes
//! only to events it could read; sessions are never managed by keys; a write impersonation
//! never manages people or credentials; a key's websocket counts once; an impersonated
//! websocket is audited once; open websockets are limited per user and per key.

use futures_util::{SinkExt, StreamExt};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Session, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

both!(
    webhook_reads_take_webhooks_read,
    approval_and_allowed_domains_are_for_signed_in_admins,
    keys_subscribe_only_to_events_they_can_read,
    sessions_are_never_managed_by_keys,
    write_impersonation_never_manages_people_or_credentials,
    a_keys_websocket_counts_as_one_request,
    an_impersonated_websocket_is_audited_once,
    open_websockets_are_limited_per_user_and_per_key,
);

async fn webhook_app(db: Db) -> TestApp {
    spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await
}

/// A loopback URL: not in any allowed domain, so new webhooks wait for approval.
const HOOK_URL: &str = "http://127.0.0.1:9/hook";

async fn new_key(app: &TestApp, admin: &Session, scopes: Value) -> (String, String) {
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": "integration", "scopes": scopes}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["api_key"]["id"].as_str().unwrap().to_owned(),
        r.body["key"].as_str().unwrap().to_owned(),
    )
}

async fn new_webhook(app: &TestApp, token: &str, events: Value) -> palisade_testkit::Resp {
    app.post(
        "/api/v1/webhooks",
        Some(token),
        json!({"url": HOOK_URL, "events": events}),
    )
    .await
}

fn assert_refused(r: &palisade_testkit::Resp, code: &str, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {:?}", r.body);
    assert_eq!(r.code(), code, "{what}: {:?}", r.body);
}

async fn webhook_reads_take_webhooks_read(db: Db) {
    let app = webhook_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let hook = new_webhook(&app, &owner.access_token, json!(["contact.*"])).await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let id = hook.body["webhook"]["id"].as_str().unwrap().to_owned();
    let reads = [
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
        "/api/v1/webhooks/allowed-domains".to_owned(),
    ];
    // webhooks:read (or webhooks:write) reads; contacts:read because the deliveries carry
    // contact data.
    for scopes in [
        json!(["webhooks:read", "contacts:read"]),
        json!(["webhooks:write", "contacts:read"]),
    ] {
        let (_, key) = new_key(&app, &owner, scopes.clone()).await;
        for path in &reads {
            let r = app.get(path, &key).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{scopes} GET {path}: {:?}",
                r.body
            );
        }
        let list = app.get("/api/v1/webhooks", &key).await;
        assert_eq!(list.body["data"][0]["id"], id.as_str());
    }
    // Without a webhooks scope: refused, naming the scope.
    let (_, contacts_only) = new_key(&app, &owner, json!(["contacts:read"])).await;
    let r = app.get("/api/v1/webhooks", &contacts_only).await;
    assert_refused(&r, "insufficient_scope", "contacts:read only");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("webhooks:read"), "{message}");
    // Reading is not writing.
    let (_, reader) = new_key(&app, &owner, json!(["webhooks:read", "contacts:read"])).await;
    let r = new_webhook(&app, &reader, json!(["contact.created"])).await;
    assert_refused(&r, "insufficient_scope", "creating with webhooks:read");
    // The delivery log of a webhook carrying user and key events is not for a key.
    let star = new_webhook(&app, &owner.access_token, json!(["*"])).await;
    let star = star.body["webhook"]["id"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("/api/v1/webhooks/{star}/deliveries"), &reader)
        .await;
    assert_refused(&r, "api_key_not_allowed", "deliveries of a * webhook");
    // An admin still reads everything.
    let r = app
        .get(
            &format!("/api/v1/webhooks/{star}/deliveries"),
            &owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn approval_and_allowed_domains_are_for_signed_in_admins(db: Db) {
    let app = webhook_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (_, writer) = new_key(&app, &owner, json!(["webhooks:write", "contacts:read"])).await;
    let r = new_webhook(&app, &writer, json!(["contact.created"])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();

    // The key cannot approve its own webhook, nor skip approval with an allowed domain.
    let approve = format!("/api/v1/webhooks/{id}/approve");
    let r = app.post(&approve, Some(&writer), json!({})).await;
    assert_refused(&r, "api_key_not_allowed", "a key approving");
    let r = app
        .send(
            Method::PUT,
            "/api/v1/webhooks/allowed-domains",
            Some(&writer),
            Some(json!({"allowed_domains": ["hooks.example.com"]})),
        )
        .await;
    assert_refused(&r, "api_key_not_allowed", "a key changing allowed domains");
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "pending_approval");
    let domains = app
        .get("/api/v1/webhooks/allowed-domains", &owner.access_token)
        .await;
    assert_eq!(domains.body["allowed_domains"], json!([]));
    // Reading the allowed domains is fine for a key.
    let r = app.get("/api/v1/webhooks/allowed-domains", &writer).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // A signed-in admin approves and sets the domains.
    let r = app
        .post(&approve, Some(&owner.access_token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "active");
    let r = app
        .send(
            Method::PUT,
            "/api/v1/webhooks/allowed-domains",
            Some(&owner.access_token),
            Some(json!({"allowed_domains": ["hooks.example.com"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn keys_subscribe_only_to_events_they_can_read(db: Db) {
    let app = webhook_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (_, hooks_only) = new_key(&app, &owner, json!(["webhooks:write"])).await;
    let (_, full) = new_key(&app, &owner, json!(["full_access"])).await;

    // Contact events need contacts:read, named in the refusal.
    for events in [json!(["contact.*"]), json!(["contact.deleted"])] {
        let r = new_webhook(&app, &hooks_only, events.clone()).await;
        assert_refused(&r, "insufficient_scope", &events.to_string());
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("contacts:read"), "{message}");
    }
    // User and API key events (hence `*`) are never for keys, whatever their scopes.
    for events in [
        json!(["user.created"]),
        json!(["api_key.*"]),
        json!(["*"]),
        json!(["contact.created", "user.deleted"]),
    ] {
        let r = new_webhook(&app, &full, events.clone()).await;
        assert_refused(&r, "api_key_not_allowed", &events.to_string());
    }
    // What the key can read it may subscribe to; the test event carries no data.
    let r = new_webhook(&app, &hooks_only, json!(["webhook.test"])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let own = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    let r = new_webhook(&app, &full, json!(["contact.*"])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Changing the events is subscribing again.
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{own}"),
            &hooks_only,
            json!({"events": ["contact.updated"]}),
        )
        .await;
    assert_refused(&r, "insufficient_scope", "PATCH events");
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{own}"),
            &full,
            json!({"events": ["user.*"]}),
        )
        .await;
    assert_refused(&r, "api_key_not_allowed", "PATCH events to user.*");
    // Redirecting an admin's `*` webhook would receive everything it carries.
    let admins = new_webhook(&app, &owner.access_token, json!(["*"])).await;
    assert_eq!(admins.status, StatusCode::CREATED, "{:?}", admins.body);
    let admins = admins.body["webhook"]["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{admins}"),
            &full,
            json!({"url": "http://127.0.0.1:10/elsewhere"}),
        )
        .await;
    assert_refused(&r, "api_key_not_allowed", "redirecting a * webhook");
    let r = app
        .post(
            &format!("/api/v1/webhooks/{admins}/rotate-secret"),
            Some(&full),
            json!({}),
        )
        .await;
    assert_refused(&r, "api_key_not_allowed", "rotating a * webhook's secret");
    let w = app
        .get(&format!("/api/v1/webhooks/{admins}"), &owner.access_token)
        .await;
    assert_eq!(w.body["url"], HOOK_URL);
    assert_eq!(w.body["events"], json!(["*"]));
}

async fn sessions_are_never_managed_by_keys(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (_, key) = new_key(&app, &owner, json!(["full_access"])).await;
    let r = app
        .delete(&format!("/api/v1/auth/sessions/{}", owner.session_id), &key)
        .await;
    assert_refused(&r, "api_key_not_allowed", "DELETE a session with a key");
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK,
        "the creator's session survives"
    );
    for (method, path) in [
        (Method::GET, "/api/v1/auth/sessions"),
        (Method::POST, "/api/v1/auth/logout-all"),
        (Method::POST, "/api/v1/auth/logout"),
        (Method::GET, "/api/v1/me"),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        let r = app.send(method.clone(), path, Some(&key), body).await;
        assert_refused(&r, "api_key_not_allowed", &format!("{method} {path}"));
    }
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&key),
            json!({"current_password": GOOD_PASSWORD, "new_password": "another-long-passphrase-here"}),
        )
        .await;
    assert_refused(&r, "api_key_not_allowed", "changing a password with a key");
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
}

async fn impersonate(app: &TestApp, root: &Session, tenant: &str, write: bool) -> String {
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{tenant}/impersonate"),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": write}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn write_impersonation_never_manages_people_or_credentials(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let root = app.super_admin("root@platform.example").await;
    let w = impersonate(&app, &root, &owner.tenant_id, true).await;
    let user = format!("/api/v1/users/{}", agent.user_id);
    let agent_before = app.get(&user, &owner.access_token).await.body;
    let owner_session = format!("/api/v1/auth/sessions/{}", owner.session_id);
    let refused: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"email": "new@acme.example", "name": "N", "role": "admin"})),
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"email": "invited@acme.example", "name": "I", "role": "agent"})),
        ),
        (Method::PATCH, user.clone(), Some(json!({"role": "admin"}))),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"name": "Renamed"})),
        ),
        (Method::DELETE, user.clone(), None),
        (Method::POST, format!("{user}/unlock"), Some(json!({}))),
        (
            Method::POST,
            format!("{user}/transfer-ownership"),
            Some(json!({"password": GOOD_PASSWORD})),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            Some(json!({"name": "k", "scopes": ["read_only"]})),
        ),
        (Method::GET, "/api/v1/api-keys".into(), None),
        (Method::GET, "/api/v1/webhooks".into(), None),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            Some(json!({"url": HOOK_URL, "events": ["contact.*"]})),
        ),
        (
            Method::PUT,
            "/api/v1/webhooks/allowed-domains".into(),
            Some(json!({"allowed_domains": ["hooks.example.com"]})),
        ),
        (Method::GET, "/api/v1/whatsapp/connections".into(), None),
        (Method::DELETE, owner_session.clone(), None),
        (
            Method::POST,
            "/api/v1/auth/logout-all".into(),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            Some(
                json!({"current_password": GOOD_PASSWORD, "new_password": "another-long-passphrase-here"}),
            ),
        ),
    ];
    for (method, path, body) in refused {
        let r = app.send(method.clone(), &path, Some(&w), body).await;
        assert_refused(&r, "impersonation_forbidden", &format!("{method} {path}"));
    }
    // Nothing it tried outlives it: no user, invitation or key; the agent is unchanged; the
    // owner is still signed in.
    let users = app.get("/api/v1/users", &owner.access_token).await;
    assert_eq!(users.body["data"].as_array().unwrap().len(), 2, "{users:?}");
    let a = app.get(&user, &owner.access_token).await;
    assert_eq!(a.body, agent_before, "the agent is unchanged");
    let keys = app.get("/api/v1/api-keys", &owner.access_token).await;
    assert_eq!(keys.body["data"], json!([]));
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );

    // What write impersonation is for: the tenant's data, audited with both identities.
    let c = app
        .post(
            "/api/v1/contacts",
            Some(&w),
            json!({"phone": "+447700900123", "name": "Ana"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    let r = app.get("/api/v1/users", &w).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let audit = app
        .get(
            "/api/v1/audit-logs?action=contact.created",
            &owner.access_token,
        )
        .await;
    let e = &audit.body["data"][0];
    assert_eq!(e["actor_email"], "root@platform.example");
    assert_eq!(
        e["metadata"]["impersonating"]["user_id"],
        owner.user_id.as_str()
    );

    // Read-only: writes are refused as before, credentials even for reading.
    let ro = impersonate(&app, &root, &owner.tenant_id, false).await;
    let r = app.get("/api/v1/api-keys", &ro).await;
    assert_refused(&r, "impersonation_forbidden", "read-only GET api-keys");
    let r = app
        .post(
            "/api/v1/contacts",
            Some(&ro),
            json!({"phone": "+447700900124"}),
        )
        .await;
    assert_refused(&r, "impersonation_read_only", "read-only POST contacts");
}

// ---- websockets ----

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(app: &TestApp) -> String {
    app.url("/api/v1/ws").replacen("http://", "ws://", 1)
}

/// Opens a socket, with a bearer credential in the handshake or none; on a refused handshake,
/// the HTTP status and JSON body.
async fn try_connect(app: &TestApp, bearer: Option<&str>) -> Result<Ws, (u16, Value)> {
    let mut req = ws_url(app).into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

/// The next text frame as JSON, or the close as `{"close": code, "reason": …}`.
async fn next(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("nothing within 5 s"),
            Ok(None) | Ok(Some(Err(_))) => return json!({"close": 1006}),
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(Message::Close(f)))) => {
                return match f {
                    Some(f) => json!({"close": u16::from(f.code), "reason": f.reason.as_str()}),
                    None => json!({"close": 1005}),
                }
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// A socket authenticated in the handshake (`Authorization: Bearer`), after its `ready`.
async fn open_with_header(app: &TestApp, token: &str) -> Ws {
    let mut ws = try_connect(app, Some(token))
        .await
        .unwrap_or_else(|e| panic!("handshake refused: {e:?}"));
    assert_eq!(next(&mut ws).await["type"], "ready");
    ws
}

/// A socket that authenticates with its first message; what the server answered.
async fn open_with_message(app: &TestApp, token: &str) -> (Ws, Value) {
    let mut ws = try_connect(app, None).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "token": token}).to_string().into(),
    ))
    .await
    .unwrap();
    let got = next(&mut ws).await;
    (ws, got)
}

async fn assert_alive(ws: &mut Ws) {
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(ws).await["type"], "pong");
}

async fn a_keys_websocket_counts_as_one_request(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, key) = new_key(&app, &owner, json!(["conversations:read"])).await;
    let mut by_header = open_with_header(&app, &key).await;
    let (mut by_message, ready) = open_with_message(&app, &key).await;
    assert_eq!(ready["type"], "ready");
    // Each socket re-checks its key every second of real time (not the test clock): let a
    // few re-checks happen, which must not count.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_alive(&mut by_header).await;
    assert_alive(&mut by_message).await;
    app.services
        .api_key_usage
        .flush(&app.services)
        .await
        .unwrap();
    let k = app
        .get(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(
        k.body["total_requests"], 2,
        "two sockets opened, each counted once: {:?}",
        k.body
    );
}

async fn ws_audit_records(app: &TestApp, owner: &Session) -> Vec<Value> {
    let r = app
        .get(
            "/api/v1/audit-logs?action=platform.impersonation.request&limit=500",
            &owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["metadata"]["path"] == "/api/v1/ws")
        .cloned()
        .collect()
}

async fn an_impersonated_websocket_is_audited_once(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let root = app.super_admin("root@platform.example").await;
    let token = impersonate(&app, &root, &owner.tenant_id, false).await;
    let mut by_header = open_with_header(&app, &token).await;
    let (mut by_message, ready) = open_with_message(&app, &token).await;
    assert_eq!(ready["type"], "ready");
    assert_alive(&mut by_header).await;
    assert_alive(&mut by_message).await;
    let records = ws_audit_records(&app, &owner).await;
    assert_eq!(records.len(), 2, "one record per socket: {records:?}");
    for e in &records {
        assert_eq!(e["actor_email"], "root@platform.example");
        assert_eq!(
            e["metadata"]["impersonating"]["email"],
            "owner@acme.example"
        );
        assert_eq!(e["metadata"]["status"], 101);
    }
    // The owner's own sockets are not impersonations.
    let _own = open_with_header(&app, &owner.access_token).await;
    assert_eq!(ws_audit_records(&app, &owner).await.len(), 2);
}

async fn open_websockets_are_limited_per_user_and_per_key(db: Db) {
    let app = spawn_app_with(db, |c| c.ws_max_per_user = 2).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let first = open_with_header(&app, &owner.access_token).await;
    let (_second, ready) = open_with_message(&app, &owner.access_token).await;
    assert_eq!(ready["type"], "ready");
    // The next handshake carrying the owner's credential: 429 with the standard error body.
    let Err((status, body)) = try_connect(&app, Some(&owner.access_token)).await else {
        panic!("a third socket of the owner was accepted");
    };
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_websockets", "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    // A socket authenticating by message is closed with 4429.
    let (_, got) = open_with_message(&app, &owner.access_token).await;
    assert_eq!(got, json!({"close": 4429, "reason": "too_many_websockets"}));
    // Other users, and each API key, have their own budget.
    let _agents = open_with_header(&app, &agent.access_token).await;
    let (_, key) = new_key(&app, &owner, json!(["conversations:read"])).await;
    let _k1 = open_with_header(&app, &key).await;
    let _k2 = open_with_header(&app, &key).await;
    let refused = try_connect(&app, Some(&key)).await.err().map(|(s, _)| s);
    assert_eq!(refused, Some(429), "the key's third socket");
    // Closing a socket frees its place.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match try_connect(&app, Some(&owner.access_token)).await {
            Ok(_) => break,
            Err((429, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the freed place was not given back: {e:?}"),
        }
    }
}
