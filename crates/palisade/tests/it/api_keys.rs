//! API keys: issuing, scoping, authenticating, revoking, usage.

use palisade_testkit::{spawn_app, spawn_app_with, Db, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

both!(
    an_admin_issues_a_key_shown_once,
    keys_are_refused_what_they_may_not_do,
    revoked_expired_deleted_and_foreign_keys_fail_at_once,
    a_creators_deletion_or_demotion_revokes_their_keys,
    usage_is_recorded_without_a_write_per_request,
    other_tenants_keys_are_not_found
);

async fn create(app: &TestApp, admin: &Session, body: Value) -> palisade_testkit::Resp {
    app.post("/api/v1/api-keys", Some(&admin.access_token), body)
        .await
}

async fn new_key(app: &TestApp, admin: &Session, body: Value) -> (String, String) {
    let r = create(app, admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["api_key"]["id"].as_str().unwrap().to_owned(),
        r.body["key"].as_str().unwrap().to_owned(),
    )
}

async fn an_admin_issues_a_key_shown_once(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = create(&app, &owner, json!({"name": "CRM sync", "scopes": ["contacts:read", "read_only"], "expires_at": "2099-01-01T00:00:00Z", "allowed_ips": ["127.0.0.1", "10.0.0.0/8"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.body["key"].as_str().unwrap();
    let re_ok = key.starts_with("pal_live_")
        && key.len() == 58
        && key[9..].chars().all(|c| c.is_ascii_alphanumeric());
    assert!(re_ok, "documented shape pal_live_[0-9A-Za-z]{{49}}: {key}");
    let k = &r.body["api_key"];
    assert_eq!(k["name"], "CRM sync");
    assert!(key.starts_with(k["prefix"].as_str().unwrap()));
    assert_eq!(k["scopes"], json!(["contacts:read", "read_only"]));
    assert_eq!(k["status"], "active");
    assert!(k["created_at"].is_string() && k["expires_at"].is_string());
    // The secret never appears again.
    let list = app.get("/api/v1/api-keys", &owner.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(key));
    let stored = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM api_keys")
        .await
        .unwrap();
    assert_eq!(stored, 1);
    // Rename and rescope.
    let id = k["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/api-keys/{id}"),
            &owner.access_token,
            json!({"name": "Renamed", "scopes": ["analytics:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["scopes"], json!(["analytics:read"]));
    // Refusals at creation, each naming the problem.
    let r = create(
        &app,
        &owner,
        json!({"name": "x", "scopes": ["contacts:read", "contacts:admin", "everything"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let msg = r.body["error"]["fields"]["scopes"][0].as_str().unwrap();
    assert!(
        msg.contains("contacts:admin") && msg.contains("everything"),
        "{msg}"
    );
    let r = create(&app, &owner, json!({"name": "x", "scopes": []})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = create(
        &app,
        &owner,
        json!({"name": "x", "scopes": ["read_only"], "allowed_ips": ["not-an-ip"]}),
    )
    .await;
    assert!(
        r.body["error"]["fields"]["allowed_ips"].is_array(),
        "{:?}",
        r.body
    );
    let r = create(
        &app,
        &owner,
        json!({"name": "x", "scopes": ["read_only"], "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert!(
        r.body["error"]["fields"]["expires_at"].is_array(),
        "{:?}",
        r.body
    );
    let r = create(&app, &owner, json!({"name": "", "scopes": ["read_only"]})).await;
    assert!(r.body["error"]["fields"]["name"].is_array());
    // Audited.
    let audit = app
        .get("/api/v1/audit-logs?action=api_key.*", &owner.access_token)
        .await;
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"api_key.created") && actions.contains(&"api_key.updated"),
        "{actions:?}"
    );
    assert!(
        !audit.body.to_string().contains(key),
        "the secret is never audited"
    );
}

async fn keys_are_refused_what_they_may_not_do(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let r = create(&app, &agent, json!({"name": "x", "scopes": ["read_only"]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "agents do not manage keys");
    let (_, key) = new_key(
        &app,
        &owner,
        json!({"name": "full", "scopes": ["full_access"]}),
    )
    .await;
    // A key authenticates as its tenant...
    let t = app.get("/api/v1/tenant", &key).await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    assert_eq!(t.body["id"], owner.tenant_id.as_str());
    // ...but never manages users, keys or sessions, whatever its scopes.
    for (method, path) in [
        (Method::GET, "/api/v1/users"),
        (Method::GET, "/api/v1/api-keys"),
        (Method::GET, "/api/v1/audit-logs"),
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/auth/sessions"),
    ] {
        let r = app.send(method.clone(), path, Some(&key), None).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
    }
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&key),
            json!({"name": "child", "scopes": ["read_only"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "api_key_not_allowed");
    let r = app
        .post(
            "/api/v1/users",
            Some(&key),
            json!({"email": "x@acme.example", "name": "X", "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&key),
            json!({"current_password": "a", "new_password": "b"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn rejected(app: &TestApp, key: &str) -> bool {
    let r = app.get("/api/v1/tenant", key).await;
    r.status == StatusCode::UNAUTHORIZED && r.code() == "invalid_api_key"
}

async fn revoked_expired_deleted_and_foreign_keys_fail_at_once(db: Db) {
    let app = spawn_app(db).await;
    let peer = app.spawn_peer().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, key) = new_key(&app, &owner, json!({"name": "k", "scopes": ["read_only"]})).await;
    assert_eq!(
        peer.get("/api/v1/tenant", &key).await.status,
        StatusCode::OK,
        "the peer caches the key"
    );
    let r = app
        .post(
            &format!("/api/v1/api-keys/{id}/revoke"),
            Some(&owner.access_token),
            json!({"reason": "leaked in a log"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "revoked");
    assert_eq!(r.body["revocation_reason"], "leaked in a log");
    assert_eq!(r.body["revoked_by"], owner.user_id.as_str());
    assert!(rejected(&app, &key).await, "at once on the revoking node");
    let start = Instant::now();
    while !rejected(&peer, &key).await {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the peer still accepts a revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = app
        .post(
            &format!("/api/v1/api-keys/{id}/revoke"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Deleted.
    let (id, key) = new_key(&app, &owner, json!({"name": "k2", "scopes": ["read_only"]})).await;
    assert_eq!(app.get("/api/v1/tenant", &key).await.status, StatusCode::OK);
    assert_eq!(
        app.delete(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(rejected(&app, &key).await);
    assert_eq!(
        app.get(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Not from this address.
    let (_, key) = new_key(
        &app,
        &owner,
        json!({"name": "k4", "scopes": ["read_only"], "allowed_ips": ["10.9.9.9"]}),
    )
    .await;
    assert!(rejected(&app, &key).await);
    let (_, key) = new_key(
        &app,
        &owner,
        json!({"name": "k5", "scopes": ["read_only"], "allowed_ips": ["127.0.0.0/8", "::1"]}),
    )
    .await;
    assert_eq!(app.get("/api/v1/tenant", &key).await.status, StatusCode::OK);

    // Mistyped (checksum) and made-up keys.
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
    assert!(rejected(&app, &String::from_utf8(typo).unwrap()).await);
    assert!(
        rejected(
            &app,
            "pal_live_0000000000000000000000000000000000000000000000000"
        )
        .await
    );

    // Expired (last: moving the clock also expires the owner's access token).
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, key) = new_key(
        &app,
        &owner,
        json!({"name": "k3", "scopes": ["read_only"], "expires_at": soon}),
    )
    .await;
    assert_eq!(app.get("/api/v1/tenant", &key).await.status, StatusCode::OK);
    app.clock.advance(time::Duration::hours(2));
    assert!(rejected(&app, &key).await);
}

async fn a_creators_deletion_or_demotion_revokes_their_keys(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let (id, key) = new_key(
        &app,
        &admin,
        json!({"name": "by admin", "scopes": ["read_only"]}),
    )
    .await;
    assert_eq!(app.get("/api/v1/tenant", &key).await.status, StatusCode::OK);
    let r = app
        .patch(
            &format!("/api/v1/users/{}", admin.user_id),
            &owner.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        rejected(&app, &key).await,
        "demoting the creator revokes the key"
    );
    let k = app
        .get(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(k.body["status"], "revoked");
    assert_eq!(k.body["revocation_reason"], "creator demoted");

    let other = app.add_user(&owner, "other@acme.example", "admin").await;
    let (_, key) = new_key(
        &app,
        &other,
        json!({"name": "by other", "scopes": ["read_only"]}),
    )
    .await;
    let root = app.super_admin("root@platform.example").await;
    assert_eq!(
        app.delete(
            &format!("/api/v1/users/{}", other.user_id),
            &root.access_token
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert!(
        rejected(&app, &key).await,
        "deleting the creator revokes the key"
    );
}

async fn usage_is_recorded_without_a_write_per_request(db: Db) {
    let app = spawn_app_with(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, key) = new_key(&app, &owner, json!({"name": "k", "scopes": ["read_only"]})).await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/tenant", &key).await.status, StatusCode::OK);
    }
    let before = app
        .get(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(
        before.body["total_requests"], 0,
        "nothing written per request"
    );
    app.services
        .api_key_usage
        .flush(&app.services)
        .await
        .unwrap();
    let after = app
        .get(&format!("/api/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(after.body["total_requests"], 5);
    assert!(after.body["last_used_at"].is_string());
    assert_eq!(after.body["last_used_ip"], "127.0.0.1");
}

async fn other_tenants_keys_are_not_found(db: Db) {
    let app = spawn_app(db).await;
    let a = app.register("A", "a@a.example").await;
    let b = app.register("B", "b@b.example").await;
    let (id, key) = new_key(&app, &a, json!({"name": "a's", "scopes": ["read_only"]})).await;
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/api-keys/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/api-keys/{id}"),
            Some(json!({"name": "mine now"})),
        ),
        (
            Method::POST,
            format!("/api/v1/api-keys/{id}/revoke"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("/api/v1/api-keys/{id}"), None),
    ] {
        let r = app
            .send(method.clone(), &path, Some(&b.access_token), body)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    assert!(
        app.get("/api/v1/api-keys", &b.access_token).await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A's key still works and sees only A.
    let t = app.get("/api/v1/tenant", &key).await;
    assert_eq!(t.body["id"], a.tenant_id.as_str());
    let malformed = app
        .get("/api/v1/api-keys/not-a-uuid", &a.access_token)
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
}
