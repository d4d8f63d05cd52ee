//! Two real `palisade serve` processes on one PostgreSQL database and one Redis, as an operator
//! runs a deployment of two nodes (`many_nodes.rs` checks the same behaviour with in-process
//! nodes, on both databases): the sign-in limit per address holds across both processes
//! together; a session ended on one is refused by the other within a second; a note written
//! through one reaches a websocket held by the other within a second; a tenant suspended
//! through one is refused by the other within a second. A third node (the test's own, which
//! receives the simulator's webhooks) shares the database and Redis as well.

use crate::metrics::serve;
use crate::support::whatsapp_fixture_with;
use futures_util::StreamExt;
use palisade_testkit::{redis_url, use_redis, Db, TestDb, GOOD_PASSWORD};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// A child process killed when the test ends, however it ends.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn login(base: &str, address: &str, email: &str, password: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn me(base: &str, token: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// How long until `base` answers `/api/v1/me` with `status` (at most 3 s).
async fn until_refused(base: &str, token: &str, status: StatusCode) -> Duration {
    let start = Instant::now();
    loop {
        let (got, body) = me(base, token).await;
        if got == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the change never arrived: {got} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgres_and_redis_act_as_one_deployment() {
    if Db::postgres_url().is_none() || redis_url().is_none() {
        eprintln!(
            "skipped: set PALISADE_TEST_POSTGRES_URL and PALISADE_TEST_REDIS_URL to run two \
             processes"
        );
        return;
    }
    let fx = whatsapp_fixture_with(Db::Postgres, use_redis).await;
    fx.customer_message("text", json!({"body": "Is my order ready?"}))
        .await;
    let token = &fx.owner.access_token;
    let mut conversation = None;
    for _ in 0..200 {
        let r = fx.app.get("/api/v1/conversations", token).await;
        if let Some(c) = r.body["data"].as_array().and_then(|l| l.first()) {
            conversation = c["id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conversation = conversation.expect("the customer's message made a conversation");

    let TestDb::Postgres {
        app_url, admin_url, ..
    } = &fx.app.db
    else {
        unreachable!("a PostgreSQL fixture");
    };
    let signing = fx.app.config.signing_keys.as_ref().unwrap();
    let encryption = fx.app.config.encryption_keys.as_ref().unwrap();
    let redis = redis_url().unwrap();
    let env = [
        ("PALISADE_DATABASE_URL", app_url.as_str()),
        ("PALISADE_DATABASE_MIGRATION_URL", admin_url.as_str()),
        ("PALISADE_SIGNING_KEYS", signing.expose_secret()),
        ("PALISADE_ENCRYPTION_KEYS", encryption.expose_secret()),
        ("PALISADE_REDIS_URL", redis.as_str()),
        (
            "PALISADE_REDIS_KEY_PREFIX",
            fx.app.config.redis_key_prefix.as_str(),
        ),
        ("PALISADE_WHATSAPP_GRAPH_BASE_URL", fx.sim.as_str()),
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("PALISADE_RATE_LIMIT_LOGIN_PER_MINUTE", "5"),
        ("PALISADE_RATE_LIMIT_API_PER_MINUTE", "0"),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (child, a, _, _logs_a) = serve(dir_a.path(), &env);
    let _node_a = Node(child);
    let (child, b, _, _logs_b) = serve(dir_b.path(), &env);
    let _node_b = Node(child);
    let email = fx.owner.email.clone();

    // Five sign-ins a minute per address, spent on both processes: the sixth is refused, on
    // either, before any password is checked (the five tried a name that is no account, so
    // the owner's account is not locked by them).
    let spray = "203.0.113.50";
    for (i, node) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let (status, body) = login(node, spray, "nobody@acme.example", "Wrong-password-1234").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {body}");
    }
    for node in [&b, &a] {
        let (status, body) = login(node, spray, &email, GOOD_PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }

    // A session ended through A is refused by B within a second.
    let (status, body) = login(&a, "203.0.113.51", &email, GOOD_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&b, &ended).await.0, StatusCode::OK);
    let r = reqwest::Client::new()
        .post(format!("{a}/api/v1/auth/logout"))
        .bearer_auth(&ended)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let took = until_refused(&b, &ended, StatusCode::UNAUTHORIZED).await;
    assert!(took < Duration::from_secs(1), "B accepted it for {took:?}");

    // A note written through A reaches a websocket held by B within a second.
    let (status, body) = login(&a, "203.0.113.52", &email, GOOD_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let live = body["access_token"].as_str().unwrap().to_owned();
    let mut req = format!("{}/api/v1/ws", b.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {live}")).unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let frame = |m: Message| match m {
        Message::Text(t) => serde_json::from_str::<Value>(t.as_str()).ok(),
        _ => None,
    };
    let ready = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("B answered the socket")
        .unwrap()
        .unwrap();
    assert_eq!(frame(ready).unwrap()["type"], "ready");
    let r = reqwest::Client::new()
        .post(format!("{a}/api/v1/conversations/{conversation}/notes"))
        .bearer_auth(&live)
        .json(&json!({"body": "Call back after five"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let written = Instant::now();
    let note_id = r.json::<Value>().await.unwrap()["id"].clone();
    let note = loop {
        let left = Duration::from_secs(1).saturating_sub(written.elapsed());
        let m = tokio::time::timeout(left, ws.next())
            .await
            .expect("the note reached B's socket within a second")
            .unwrap()
            .unwrap();
        if let Some(v) = frame(m) {
            if v["type"] == "message.created" && v["data"]["id"] == note_id {
                break v;
            }
        }
    };
    assert_eq!(note["data"]["direction"], "internal", "{note}");
    assert_eq!(note["data"]["type"], "note", "{note}");

    // A tenant suspended through A is refused by B within a second.
    let root = fx.app.super_admin("root@platform.example").await;
    let r = reqwest::Client::new()
        .post(format!(
            "{a}/api/v1/admin/tenants/{}/suspend",
            fx.owner.tenant_id
        ))
        .bearer_auth(&root.access_token)
        .json(&json!({"reason": "unpaid invoices"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let took = until_refused(&b, &live, StatusCode::FORBIDDEN).await;
    assert!(took < Duration::from_secs(1), "B served it for {took:?}");
    // Both processes say why. (Not the fixture's in-process app: its clock is a `ManualClock`
    // stopped when the fixture started, so a token the real processes issued seconds later is
    // "not valid yet" to it once the run is slow — as CI's was.)
    for node in [&b, &a] {
        let (status, body) = me(node, &live).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "tenant_suspended", "{body}");
    }
}
