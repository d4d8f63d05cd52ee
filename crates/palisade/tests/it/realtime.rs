//! The realtime websocket (`GET /api/v1/ws`): the whole loop a person sees (a customer writes
//! through the simulator, the message arrives on the socket, an agent answers, the answer's
//! status reaches `read`), how sockets authenticate, that they hear their tenant only, that
//! revocation and suspension close them, and (PostgreSQL) that events cross processes.

use crate::support::{whatsapp_fixture, WhatsAppFixture};
use futures_util::{SinkExt, StreamExt};
use palisade_testkit::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

both!(
    a_customer_message_arrives_live_and_the_reply_reaches_read,
    the_session_cookie_authenticates_same_origin_sockets_only,
    credentials_in_the_url_and_bad_tokens_are_refused,
    an_unverified_user_gets_no_socket_when_verification_is_required,
    a_socket_hears_its_own_tenant_only,
    revoking_the_session_closes_its_sockets,
    suspending_the_tenant_closes_its_sockets,
    an_expiring_token_is_replaced_in_band_or_the_socket_closes,
);

both_with_redis!(a_customer_message_received_by_one_node_reaches_a_socket_on_the_other_over_redis);

/// PostgreSQL only: SQLite runs as one process by design (local fan-out only).
mod an_event_caused_on_one_node_reaches_sockets_on_every_node {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if palisade_testkit::Db::postgres_url().is_none() {
            eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
            return;
        }
        super::an_event_caused_on_one_node_reaches_sockets_on_every_node(
            palisade_testkit::Db::Postgres,
        )
        .await
    }
}

/// PostgreSQL only: a node with no socket of the tenant sends its events across only once
/// another node has announced one.
mod a_node_without_sockets_sends_across_once_another_node_announces_one {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if palisade_testkit::Db::postgres_url().is_none() {
            eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
            return;
        }
        super::a_node_without_sockets_sends_across_once_another_node_announces_one(
            palisade_testkit::Db::Postgres,
        )
        .await
    }
}

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What a socket got: a JSON frame, or the close (code, reason).
#[derive(Debug)]
enum Got {
    Frame(Value),
    Closed(u16, String),
}

fn ws_url(app: &TestApp, path: &str) -> String {
    app.url(path).replacen("http://", "ws://", 1)
}

/// Opens a socket with extra handshake headers; the handshake must succeed.
async fn connect(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Ws {
    match try_connect(app, path, headers).await {
        Ok(ws) => ws,
        Err((status, body)) => panic!("handshake refused: {status} {body}"),
    }
}

/// Opens a socket; on a refused handshake, the HTTP status and JSON body.
async fn try_connect(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Value)> {
    let mut req = ws_url(app, path).into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
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

/// The next frame or close within `within`; `None` when nothing came.
async fn recv(ws: &mut Ws, within: Duration) -> Option<Got> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return None,
            Ok(None) => return Some(Got::Closed(1006, "ended without a close frame".into())),
            Ok(Some(Err(e))) => return Some(Got::Closed(1006, e.to_string())),
            Ok(Some(Ok(Message::Text(t)))) => {
                return Some(Got::Frame(serde_json::from_str(t.as_str()).unwrap()))
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                return Some(match f {
                    Some(f) => Got::Closed(u16::from(f.code), f.reason.as_str().to_owned()),
                    None => Got::Closed(1005, String::new()),
                })
            }
            Ok(Some(Ok(_))) => continue, // ping, pong
        }
    }
}

/// Reads frames until one of type `kind` satisfies `pred`; panics on a close or after 10 s.
async fn wait_for(ws: &mut Ws, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(ws, left).await {
            Some(Got::Frame(v)) if v["type"] == kind && pred(&v["data"]) => {
                return v["data"].clone()
            }
            Some(Got::Frame(v)) => seen.push(v),
            Some(Got::Closed(code, reason)) => {
                panic!("socket closed ({code} {reason}) while waiting for {kind}; seen {seen:?}")
            }
            None => panic!("no {kind} within 10 s; seen {seen:?}"),
        }
    }
}

/// The close that must come within 3 s (frames before it are skipped).
async fn closed(ws: &mut Ws) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(ws, left).await {
            Some(Got::Closed(code, reason)) => return (code, reason),
            Some(Got::Frame(_)) => continue,
            None => panic!("the socket is still open"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// A socket authenticated with the first message, after its `ready`.
async fn open(app: &TestApp, token: &str) -> Ws {
    let mut ws = connect(app, "/api/v1/ws", &[]).await;
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    match recv(&mut ws, Duration::from_secs(5)).await {
        Some(Got::Frame(v)) if v["type"] == "ready" => ws,
        other => panic!("expected ready, got {other:?}"),
    }
}

/// The socket answers a ping: it is open and served.
async fn assert_alive(ws: &mut Ws) {
    send(ws, json!({"type": "ping"})).await;
    wait_for(ws, "pong", |_| true).await;
}

async fn sim_post(fx: &WhatsAppFixture, path: &str, body: Value) -> Value {
    let r = fx
        .app
        .client
        .post(format!("{}{path}", fx.sim))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// A customer writes through the simulator (delivered to the server by signed webhook).
async fn customer_writes(fx: &WhatsAppFixture, text: &str) -> String {
    let r = sim_post(
        fx,
        "/_sim/inbound",
        json!({
            "phone_number_id": fx.phone_number_id, "from": "447700900123",
            "profile_name": "Ana Souza", "type": "text", "text": {"body": text},
        }),
    )
    .await;
    r["wamid"].as_str().unwrap().to_owned()
}

async fn a_customer_message_arrives_live_and_the_reply_reaches_read(db: Db) {
    let fx = whatsapp_fixture(db).await;
    // Statuses come when the test asks, so each one is seen (automatic ones may race the
    // wamid's storage and skip `delivered`).
    sim_post(&fx, "/_sim/config", json!({"auto_status": false})).await;
    let mut ws = open(&fx.app, &fx.owner.access_token).await;

    // The customer writes: the message and its new conversation arrive on the socket.
    let wamid = customer_writes(&fx, "Hello, is my order ready?").await;
    let inbound = wait_for(&mut ws, "message.created", |m| m["wamid"] == wamid.as_str()).await;
    assert_eq!(inbound["direction"], "inbound");
    assert_eq!(inbound["text"], "Hello, is my order ready?");
    assert_eq!(inbound["status"], "received");
    let conv = inbound["conversation_id"].as_str().unwrap().to_owned();
    let c = wait_for(&mut ws, "conversation.updated", |c| {
        c["id"] == conv.as_str()
    })
    .await;
    assert_eq!(c["status"], "open");
    assert_eq!(c["contact_phone"], "+447700900123");
    assert_eq!(c["contact_name"], "Ana Souza");
    // The data is what the REST API returns.
    let listed = fx
        .app
        .get(
            &format!("/api/v1/conversations/{conv}/messages"),
            &fx.owner.access_token,
        )
        .await;
    assert_eq!(listed.body["data"][0], inbound);

    // The agent answers: the queued message, then its statuses as Meta reports them.
    let r = fx
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&fx.owner.access_token),
            json!({"type": "text", "text": {"body": "Yes, it ships today."}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let queued = wait_for(&mut ws, "message.created", |m| m["id"] == id.as_str()).await;
    assert_eq!(
        queued, r.body,
        "the event carries the message as the API returned it"
    );
    let c = wait_for(&mut ws, "conversation.updated", |c| {
        c["id"] == conv.as_str()
    })
    .await;
    let rest = fx
        .app
        .get(
            &format!("/api/v1/conversations/{conv}"),
            &fx.owner.access_token,
        )
        .await;
    assert_eq!(
        c, rest.body,
        "the conversation as the API returns it after the reply"
    );
    let sent = wait_for(&mut ws, "message.status", |m| m["id"] == id.as_str()).await;
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["conversation_id"], conv.as_str());
    let out_wamid = sent["wamid"].as_str().unwrap().to_owned();
    assert!(out_wamid.starts_with("wamid."), "{sent}");
    for status in ["delivered", "read"] {
        sim_post(
            &fx,
            &format!(
                "/_sim/phone-numbers/{}/outbound/{out_wamid}/status",
                fx.phone_number_id
            ),
            json!({"status": status}),
        )
        .await;
        let m = wait_for(&mut ws, "message.status", |m| m["id"] == id.as_str()).await;
        assert_eq!(m["status"], status);
        assert!(m["error"].is_null());
    }

    // An internal note and a PATCH reach the socket too.
    let note = fx
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/notes"),
            Some(&fx.owner.access_token),
            json!({"body": "Customer is a VIP"}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);
    let n = wait_for(&mut ws, "message.created", |m| m["id"] == note.body["id"]).await;
    assert_eq!(n["direction"], "internal");
    assert_eq!(n["type"], "note");
    let r = fx
        .app
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            &fx.owner.access_token,
            json!({"status": "pending", "assignee_id": fx.owner.user_id, "labels": ["vip"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let c = wait_for(&mut ws, "conversation.updated", |c| {
        c["status"] == "pending"
    })
    .await;
    assert_eq!(c, r.body);
}

async fn the_session_cookie_authenticates_same_origin_sockets_only(db: Db) {
    let fx = whatsapp_fixture(db).await;
    let cookie = format!("__Host-palisade_access={}", fx.owner.access_token);
    let same_origin = fx.app.base_url.clone();
    // Same origin: ready at once, no auth message needed, and events flow.
    let mut ws = connect(
        &fx.app,
        "/api/v1/ws",
        &[("cookie", &cookie), ("origin", &same_origin)],
    )
    .await;
    wait_for(&mut ws, "ready", |_| true).await;
    let wamid = customer_writes(&fx, "Hi from a browser test").await;
    wait_for(&mut ws, "message.created", |m| m["wamid"] == wamid.as_str()).await;

    // Another site's page would ride the browser's cookie: refused before the upgrade.
    let refused = try_connect(
        &fx.app,
        "/api/v1/ws",
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await
    .expect_err("a cross-origin cookie upgrade must be refused");
    assert_eq!(refused.0, 403);
    assert_eq!(refused.1["error"]["code"], "origin_not_allowed");

    // A stale cookie: the socket opens and closes at once saying why.
    let mut ws = connect(
        &fx.app,
        "/api/v1/ws",
        &[
            ("cookie", "__Host-palisade_access=not-a-token"),
            ("origin", &same_origin),
        ],
    )
    .await;
    assert_eq!(closed(&mut ws).await, (4401, "invalid_token".into()));
}

async fn credentials_in_the_url_and_bad_tokens_are_refused(db: Db) {
    let fx = whatsapp_fixture(db).await;
    // Even a valid token is refused in the URL.
    for q in ["token", "access_token", "api_key"] {
        let refused = try_connect(
            &fx.app,
            &format!("/api/v1/ws?{q}={}", fx.owner.access_token),
            &[],
        )
        .await
        .expect_err("a token in the URL must be refused");
        assert_eq!(refused.0, 400, "{q}");
        assert_eq!(refused.1["error"]["code"], "token_in_url", "{q}");
    }
    // A plain GET is not a websocket.
    let r = fx.app.get("/api/v1/ws", &fx.owner.access_token).await;
    assert_eq!(r.status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(r.code(), "upgrade_required");

    // A bad token in the first message: closed with 4401 and the reason.
    let mut ws = connect(&fx.app, "/api/v1/ws", &[]).await;
    send(&mut ws, json!({"type": "auth", "token": "not-a-token"})).await;
    assert_eq!(closed(&mut ws).await, (4401, "invalid_token".into()));
    // A first message that is not auth.
    let mut ws = connect(&fx.app, "/api/v1/ws", &[]).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(closed(&mut ws).await, (4401, "auth_required".into()));

    // An API key needs conversations:read.
    let key = |scopes: Value| {
        let app = &fx.app;
        let token = fx.owner.access_token.clone();
        async move {
            let r = app
                .post(
                    "/api/v1/api-keys",
                    Some(&token),
                    json!({"name": "feed", "scopes": scopes}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["key"].as_str().unwrap().to_owned()
        }
    };
    let contacts_only = key(json!(["contacts:read"])).await;
    let mut ws = connect(&fx.app, "/api/v1/ws", &[]).await;
    send(&mut ws, json!({"type": "auth", "token": contacts_only})).await;
    assert_eq!(closed(&mut ws).await, (4403, "insufficient_scope".into()));
    let reader = key(json!(["conversations:read"])).await;
    let mut ws = open(&fx.app, &reader).await;
    let wamid = customer_writes(&fx, "Hello integration").await;
    wait_for(&mut ws, "message.created", |m| m["wamid"] == wamid.as_str()).await;
    // Unknown client messages get an error frame; the socket stays open.
    send(
        &mut ws,
        json!({"type": "subscribe", "tenant": "someone-else"}),
    )
    .await;
    let e = wait_for(&mut ws, "error", |_| true).await;
    assert_eq!(e["code"], "unknown_type");
    assert_alive(&mut ws).await;
}

async fn a_socket_hears_its_own_tenant_only(db: Db) {
    let fx = whatsapp_fixture(db).await;
    let other = fx.app.register("Globex", "owner@globex.example").await;
    let mut theirs = open(&fx.app, &other.access_token).await;
    let mut ours = open(&fx.app, &fx.owner.access_token).await;
    // Tenant A's events flow…
    let wamid = customer_writes(&fx, "Private to Acme").await;
    let m = wait_for(&mut ours, "message.created", |m| {
        m["wamid"] == wamid.as_str()
    })
    .await;
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    let r = fx
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/notes"),
            Some(&fx.owner.access_token),
            json!({"body": "internal only"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    wait_for(&mut ours, "message.created", |m| m["id"] == r.body["id"]).await;
    // …and tenant B's socket, open and served, heard none of them.
    match recv(&mut theirs, Duration::from_millis(1500)).await {
        None => {}
        Some(got) => panic!("tenant B's socket received {got:?}"),
    }
    assert_alive(&mut theirs).await;
}

async fn revoking_the_session_closes_its_sockets(db: Db) {
    let fx = whatsapp_fixture(db).await;
    let agent = fx
        .app
        .add_user(&fx.owner, "agent@acme.example", "agent")
        .await;
    let mut agent_ws = open(&fx.app, &agent.access_token).await;
    let mut owner_ws = open(&fx.app, &fx.owner.access_token).await;
    let r = fx
        .app
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&agent.access_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let started = Instant::now();
    assert_eq!(
        closed(&mut agent_ws).await,
        (4401, "session_revoked".into())
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "closed after {:?}",
        started.elapsed()
    );
    // Other sessions are untouched.
    assert_alive(&mut owner_ws).await;
    // Revoking from the session list works the same.
    let second = fx.app.login(&fx.owner.email, &fx.owner.password).await;
    let mut second_ws = open(&fx.app, &second.access_token).await;
    let r = fx
        .app
        .delete(
            &format!("/api/v1/auth/sessions/{}", second.session_id),
            &fx.owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        closed(&mut second_ws).await,
        (4401, "session_revoked".into())
    );
    assert_alive(&mut owner_ws).await;
}

async fn suspending_the_tenant_closes_its_sockets(db: Db) {
    let fx = whatsapp_fixture(db).await;
    let root = fx.app.super_admin("root@platform.example").await;
    let mut ws = open(&fx.app, &fx.owner.access_token).await;
    // A super admin has no tenant, so no feed.
    let mut root_ws = connect(&fx.app, "/api/v1/ws", &[]).await;
    send(
        &mut root_ws,
        json!({"type": "auth", "token": root.access_token}),
    )
    .await;
    let (code, _) = closed(&mut root_ws).await;
    assert_eq!(code, 4403);
    let r = fx
        .app
        .post(
            &format!("/api/v1/admin/tenants/{}/suspend", fx.owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "unpaid invoices"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let started = Instant::now();
    assert_eq!(closed(&mut ws).await, (4403, "tenant_suspended".into()));
    assert!(started.elapsed() < Duration::from_millis(1500));
    // And no new socket opens.
    let mut ws = connect(&fx.app, "/api/v1/ws", &[]).await;
    send(
        &mut ws,
        json!({"type": "auth", "token": fx.owner.access_token}),
    )
    .await;
    assert_eq!(closed(&mut ws).await, (4403, "tenant_suspended".into()));
}

async fn an_expiring_token_is_replaced_in_band_or_the_socket_closes(db: Db) {
    let app = palisade_testkit::spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let mut ws = open(&app, &owner.access_token).await;
    // Before the access token expires (15 minutes), the client sends a fresh one.
    app.clock.advance(time::Duration::minutes(14));
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let fresh = r.body["access_token"].as_str().unwrap().to_owned();
    send(&mut ws, json!({"type": "auth", "token": fresh})).await;
    wait_for(&mut ws, "ready", |_| true).await;
    // The first token has expired; the socket lives on with the fresh one.
    app.clock.advance(time::Duration::minutes(2));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_alive(&mut ws).await;
    // Another user's token cannot take over the socket.
    let other = app.register("Globex", "owner@globex.example").await;
    let mut theirs = open(&app, &other.access_token).await;
    send(&mut theirs, json!({"type": "auth", "token": fresh})).await;
    assert_eq!(
        closed(&mut theirs).await,
        (4403, "credential_mismatch".into())
    );
    // Once the fresh token expires too, the socket is closed saying why.
    app.clock.advance(time::Duration::minutes(14));
    assert_eq!(closed(&mut ws).await, (4401, "token_expired".into()));
}

async fn an_event_caused_on_one_node_reaches_sockets_on_every_node(db: Db) {
    let fx = whatsapp_fixture(db).await;
    let peer = fx.app.spawn_peer().await;
    let mut here = open(&fx.app, &fx.owner.access_token).await;
    let mut there = open(&peer, &fx.owner.access_token).await;
    // The simulator's webhooks reach the first node; the peer's socket hears the message.
    let wamid = customer_writes(&fx, "Hello, any node").await;
    let a = wait_for(&mut here, "message.created", |m| {
        m["wamid"] == wamid.as_str()
    })
    .await;
    let b = wait_for(&mut there, "message.created", |m| {
        m["wamid"] == wamid.as_str()
    })
    .await;
    assert_eq!(a, b);
    let conv = a["conversation_id"].as_str().unwrap().to_owned();
    // An event too large for NOTIFY (8000 bytes) crosses as a reference and arrives whole.
    let long = "é".repeat(4000);
    let r = fx
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&fx.owner.access_token),
            json!({"type": "text", "text": {"body": long}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let m = wait_for(&mut there, "message.created", |m| m["id"] == r.body["id"]).await;
    assert_eq!(m["text"], long.as_str());
    // Each socket gets each event once: nothing more about the inbound message on this node.
    wait_for(&mut here, "message.created", |m| m["id"] == r.body["id"]).await;
    let deadline = Instant::now() + Duration::from_millis(1000);
    while let Some(got) = recv(
        &mut here,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await
    {
        if let Got::Frame(v) = &got {
            assert!(
                !(v["type"] == "message.created"
                    && (v["data"]["wamid"] == wamid.as_str() || v["data"]["id"] == r.body["id"])),
                "delivered twice: {v}"
            );
        }
    }
}

/// With `PALISADE_REDIS_URL` the events travel over Redis pub/sub (on either database): a
/// customer's message that node A received reaches a socket on node B within a second, once.
async fn a_customer_message_received_by_one_node_reaches_a_socket_on_the_other_over_redis(db: Db) {
    let fx = crate::support::whatsapp_fixture_with(db, palisade_testkit::use_redis).await;
    let peer = fx.app.spawn_peer().await;
    let mut there = open(&peer, &fx.owner.access_token).await;
    // Node A hears of the peer's socket (presence travels the same way).
    let tenant = palisade_domain::TenantId::from_uuid(fx.owner.tenant_id.parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fx.app.services.realtime.wants(tenant) {
        assert!(
            Instant::now() < deadline,
            "the peer's socket was never announced"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The simulator's webhooks reach node A only.
    let started = Instant::now();
    let wamid = customer_writes(&fx, "Hello over Redis").await;
    let m = wait_for(&mut there, "message.created", |m| {
        m["wamid"] == wamid.as_str()
    })
    .await;
    let took = started.elapsed();
    assert_eq!(m["text"], "Hello over Redis");
    assert!(took < Duration::from_secs(1), "it took {took:?}");
    // Once: nothing more about that message on the peer.
    let deadline = Instant::now() + Duration::from_millis(500);
    while let Some(got) = recv(
        &mut there,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await
    {
        if let Got::Frame(v) = &got {
            assert!(
                !(v["type"] == "message.created" && v["data"]["wamid"] == wamid.as_str()),
                "delivered twice: {v}"
            );
        }
    }
}

async fn a_node_without_sockets_sends_across_once_another_node_announces_one(db: Db) {
    let fx = whatsapp_fixture(db).await;
    let peer = fx.app.spawn_peer().await;
    let tenant = palisade_domain::TenantId::from_uuid(fx.owner.tenant_id.parse().unwrap());
    let hub = fx.app.services.realtime.clone();
    // No socket anywhere: the first node would load and send nothing for the tenant.
    assert!(!hub.wants(tenant));
    // A socket opens on the peer only; the first node hears the peer's announcement.
    let mut there = open(&peer, &fx.owner.access_token).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !hub.wants(tenant) {
        assert!(
            Instant::now() < deadline,
            "the peer's socket was never announced"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The simulator's webhooks reach the first node; the peer's socket hears the message.
    let wamid = customer_writes(&fx, "Hello from a node with no sockets").await;
    let m = wait_for(&mut there, "message.created", |m| {
        m["wamid"] == wamid.as_str()
    })
    .await;
    assert_eq!(m["text"], "Hello from a node with no sockets");
}

async fn an_unverified_user_gets_no_socket_when_verification_is_required(db: Db) {
    let app = palisade_testkit::spawn_app_with(db, |c| {
        c.email_verification = palisade_core::settings::EmailVerification::Required;
    })
    .await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut ws = connect(&app, "/api/v1/ws", &[]).await;
    send(
        &mut ws,
        json!({"type": "auth", "token": owner.access_token}),
    )
    .await;
    assert_eq!(closed(&mut ws).await, (4403, "email_unverified".into()));
    let code = app
        .wait_mail("ana@acme.example", "email_verification")
        .await
        .code(6)
        .unwrap();
    let r = app
        .post(
            "/api/v1/auth/email/verify",
            Some(&owner.access_token),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut ws = open(&app, &owner.access_token).await;
    assert_alive(&mut ws).await;
}
