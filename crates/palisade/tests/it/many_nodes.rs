//! Several nodes on one database and one Redis (`PALISADE_REDIS_URL`): the sign-in limit per
//! address holds across the nodes together, revocations and suspensions reach the other node
//! within a second (carried by Redis), a credential's reads on both nodes count together for
//! `mass_data_access`, and a node whose Redis is unreachable keeps limiting on
//! its own and says so in `/readyz`. The realtime loop across nodes over Redis is in
//! `realtime.rs`. Each test app has a Redis key prefix of its own (`use_redis`), so tests
//! running at once never share a budget or a channel.

use crate::support::{assert_error, contacts_and_reader_key};
use futures_util::StreamExt;
use palisade_testkit::{redis_url, spawn_app_with, use_redis, Db, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

both_with_redis!(
    the_login_limit_per_address_holds_across_both_nodes,
    a_session_revoked_on_one_node_is_refused_on_the_other_within_a_second,
    a_tenant_suspended_on_one_node_is_refused_on_the_other_within_a_second,
    readyz_reports_redis,
    api_key_usage_of_both_nodes_is_summed_in_redis_and_written_once,
    records_read_on_both_nodes_count_together_for_mass_data_access,
);

both!(without_redis_limits_stay_per_node_and_readyz_says_so);

async fn two_nodes(db: Db, login_per_minute: u32) -> (TestApp, TestApp) {
    let a = spawn_app_with(db, |c| {
        use_redis(c);
        c.rate_limit_login_per_minute = login_per_minute;
    })
    .await;
    let b = a.spawn_peer().await;
    (a, b)
}

async fn login(node: &TestApp, email: &str) -> palisade_testkit::Resp {
    node.post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": "not-the-password"}),
    )
    .await
}

/// Polls `GET /api/v1/me` on `node` until it is refused with 401; returns how long it took.
async fn until_refused(node: &TestApp, token: &str, status: StatusCode) -> Duration {
    let start = Instant::now();
    loop {
        let r = node.get("/api/v1/me", token).await;
        if r.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the change never arrived: {} {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Five sign-ins a minute per address (the default), spent on two nodes: ten attempts at once,
/// five to each node, and exactly five get past the limit; the next one on either node is
/// refused with a wait.
async fn the_login_limit_per_address_holds_across_both_nodes(db: Db) {
    let (a, b) = two_nodes(db, 5).await;
    let attempts = (0..10).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        // A different (unknown) account each time: the account lock must not be what refuses.
        async move { login(node, &format!("nobody{i}@acme.example")).await }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let limited = answers
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    for r in &answers {
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        } else {
            assert_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
    }
    assert_eq!(limited, 5, "two nodes let {} through", 10 - limited);
    for node in [&a, &b] {
        let r = login(node, "late@acme.example").await;
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
    }
}

async fn a_session_revoked_on_one_node_is_refused_on_the_other_within_a_second(db: Db) {
    let (a, b) = two_nodes(db, 0).await;
    let owner = a.register("Acme", "owner@acme.example").await;
    // Node B verifies and caches the token.
    assert_eq!(
        b.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    // What travels: listen on the deployment's channel like a third node would.
    let client = redis::Client::open(redis_url().unwrap()).unwrap();
    let mut heard = client.get_async_pubsub().await.unwrap();
    heard
        .subscribe(format!("{}:auth_changes", a.config.redis_key_prefix))
        .await
        .unwrap();
    let r = a
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&owner.access_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let took = until_refused(&b, &owner.access_token, StatusCode::UNAUTHORIZED).await;
    assert!(
        took < Duration::from_secs(1),
        "node B still accepted the revoked token after {took:?}"
    );
    let msg = tokio::time::timeout(Duration::from_secs(2), heard.on_message().next())
        .await
        .expect("the revocation was published on Redis")
        .unwrap();
    let payload: String = msg.get_payload().unwrap();
    let parts: Vec<&str> = payload.split(' ').collect();
    assert_eq!(parts.len(), 4, "{payload}");
    assert_eq!(parts[2], "session", "{payload}");
}

async fn a_tenant_suspended_on_one_node_is_refused_on_the_other_within_a_second(db: Db) {
    let (a, b) = two_nodes(db, 0).await;
    let root = a.super_admin("root@platform.example").await;
    let owner = a.register("Acme", "owner@acme.example").await;
    assert_eq!(
        b.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    let r = a
        .post(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "unpaid invoices"}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let took = until_refused(&b, &owner.access_token, StatusCode::FORBIDDEN).await;
    assert!(
        took < Duration::from_secs(1),
        "node B served a suspended tenant for {took:?}"
    );
    let r = b.get("/api/v1/me", &owner.access_token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "tenant_suspended");
}

/// Each node adds its counts to Redis; the node holding the writer's lease writes the sum.
async fn api_key_usage_of_both_nodes_is_summed_in_redis_and_written_once(db: Db) {
    let (a, b) = two_nodes(db, 0).await;
    let owner = a.register("Acme", "owner@acme.example").await;
    let r = a
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": ["read_only"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["api_key"]["id"].as_str().unwrap().to_owned();
    let key = r.body["key"].as_str().unwrap().to_owned();
    for node in [&a, &a, &a, &b, &b] {
        assert_eq!(
            node.get("/api/v1/tenant", &key).await.status,
            StatusCode::OK
        );
    }
    // The writer's lease (20 s) is ended by hand where a test cannot wait for it; the nodes'
    // own flushers took it at start.
    let client = redis::Client::open(redis_url().unwrap()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let lease = format!("{}:api_key_usage_writer", a.config.redis_key_prefix);
    redis::cmd("DEL")
        .arg(&lease)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    // Node B flushes first and takes the lease: it writes its own 2 (A's are not in Redis
    // yet). Node A then adds its 3 to Redis; the lease is B's, so A writes nothing.
    b.services.api_key_usage.flush(&b.services).await.unwrap();
    assert_eq!(total(&a, &id, &owner.access_token).await, 2);
    a.services.api_key_usage.flush(&a.services).await.unwrap();
    assert_eq!(
        total(&a, &id, &owner.access_token).await,
        2,
        "only the lease holder writes"
    );
    // The first round after the lease ends writes what A added.
    redis::cmd("DEL")
        .arg(&lease)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    a.services.api_key_usage.flush(&a.services).await.unwrap();
    assert_eq!(total(&b, &id, &owner.access_token).await, 5);
    let after = b
        .get(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert!(after.body["last_used_at"].is_string());
    assert_eq!(after.body["last_used_ip"], "127.0.0.1");
}

/// `mass_data_access` counts a credential's reads on every node (Redis): four contacts read
/// on each of two nodes with a limit of five raise it, which each node alone (four) would not.
async fn records_read_on_both_nodes_count_together_for_mass_data_access(db: Db) {
    let a = spawn_app_with(db, |c| {
        use_redis(c);
        c.detect_read_records = 5;
    })
    .await;
    let b = a.spawn_peer().await;
    let owner = a.register("Acme", "owner@acme.example").await;
    let (key, key_id) = contacts_and_reader_key(&a, &owner.access_token, "+4477009003", 4).await;
    assert_eq!(a.get("/api/v1/contacts", &key).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        mass_alerts(&a, &owner.access_token).await.is_empty(),
        "four reads: under the limit"
    );
    assert_eq!(b.get("/api/v1/contacts", &key).await.status, StatusCode::OK);
    let start = Instant::now();
    let found = loop {
        let found = mass_alerts(&b, &owner.access_token).await;
        if !found.is_empty() {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no alert after eight reads on two nodes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found[0]["subject"]["type"], "api_key");
    assert_eq!(found[0]["subject"]["id"], key_id.as_str());
    assert!(
        found[0]["summary"]
            .as_str()
            .unwrap()
            .contains("8 contacts or messages"),
        "{}",
        found[0]["summary"]
    );
}

async fn mass_alerts(node: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let r = node
        .get("/api/v1/security/alerts?rule=mass_data_access", token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"].as_array().cloned().unwrap_or_default()
}

async fn total(node: &TestApp, id: &str, token: &str) -> serde_json::Value {
    node.get(&format!("/api/v1/api-keys/{id}"), token)
        .await
        .body["total_requests"]
        .clone()
}

async fn readyz_reports_redis(db: Db) {
    let (a, _b) = two_nodes(db, 0).await;
    let r = a.client.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "redis": "ok"}));
}

/// Redis configured but unreachable (a closed port): each node still enforces the sign-in limit
/// on its own, counts the fallback, and `/readyz` says Redis is unavailable while the node stays
/// ready. Needs no running Redis.
async fn without_redis_limits_stay_per_node_and_readyz_says_so(db: Db) {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = spawn_app_with(db, |c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}").into());
        c.redis_key_prefix = format!("palisade-test-{}", uuid_like());
        c.rate_limit_login_per_minute = 5;
        c.metrics_listen = "127.0.0.1:0".into();
    })
    .await;
    let b = a.spawn_peer().await;
    let fallbacks_before = fallbacks(&a).await;
    for node in [&a, &b] {
        for i in 0..5 {
            let r = login(node, &format!("nobody{i}@acme.example")).await;
            assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
        let r = login(node, "sixth@acme.example").await;
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        assert!(r.header("retry-after").is_some());
    }
    assert!(
        fallbacks(&a).await >= fallbacks_before + 12.0,
        "every decision made without Redis is counted"
    );
    let r = a.client.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the node still serves");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "redis": "unavailable"}));
    // Without PALISADE_REDIS_URL the answer is as it always was.
    let plain = spawn_app_with(db, |_| {}).await;
    let body: serde_json::Value = plain
        .client
        .get(plain.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"status": "ready"}));
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// `palisade_redis_fallbacks_total{limit="login"}` as the app's metrics listener reports it
/// (the recorder is one per process: a delta is what a test may assert).
async fn fallbacks(app: &TestApp) -> f64 {
    let text = crate::metrics::scrape(app).await.text;
    text.lines()
        .find(|l| l.starts_with("palisade_redis_fallbacks_total{limit=\"login\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}
