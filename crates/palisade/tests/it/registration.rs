//! Registration: the response shape, duplicates, validation, bad bodies and the rate limit.

use crate::support::{assert_error, field_messages, raw, retry_after};
use palisade_testkit::{spawn_app, spawn_app_with, Db, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    register_returns_tenant_owner_and_tokens,
    duplicate_email_is_409_email_taken,
    weak_password_lists_every_failed_rule,
    password_built_from_who_you_are_is_weak,
    invalid_fields_are_all_listed,
    malformed_bodies_are_4xx_never_500,
    oversized_body_is_413,
    registrations_are_rate_limited_per_address,
);

fn reg(email: &str, password: &str) -> Value {
    json!({"tenant_name": "Acme Widgets", "name": "Ana Lima", "email": email, "password": password})
}

async fn count(app: &TestApp, table: &str) -> i64 {
    app.db
        .count_as_owner(&format!("SELECT COUNT(*) FROM {table}"))
        .await
        .unwrap()
}

async fn register_returns_tenant_owner_and_tokens(db: Db) {
    let app = spawn_app(db).await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            reg("  Ana@Acme.Example ", GOOD_PASSWORD),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let b = &r.body;
    let tenant_id = b["tenant"]["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(tenant_id).is_ok());
    assert_eq!(b["tenant"]["name"], "Acme Widgets");
    assert!(uuid::Uuid::parse_str(b["user"]["id"].as_str().unwrap()).is_ok());
    assert_eq!(
        b["user"]["email"], "ana@acme.example",
        "emails are trimmed and lower-cased"
    );
    assert_eq!(b["user"]["name"], "Ana Lima");
    assert_eq!(b["user"]["role"], "admin");
    assert_eq!(b["user"]["is_owner"], true);
    assert_eq!(b["user"]["tenant_id"], tenant_id);
    assert!(
        b["user"].get("password_hash").is_none() && !b.to_string().contains("argon2"),
        "no hash in the response"
    );
    let access = b["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3, "a JWT");
    assert!(b["refresh_token"].as_str().unwrap().starts_with("pal_rt_"));
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["password_expired"], false);
    assert!(uuid::Uuid::parse_str(b["session_id"].as_str().unwrap()).is_ok());
    // The tokens work and identify the new owner.
    let me = app.get("/api/v1/me", access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], b["user"]["id"]);
    assert_eq!(me.body["session_id"], b["session_id"]);
    // What is stored.
    assert_eq!(count(&app, "tenants").await, 1);
    assert_eq!(count(&app, "users").await, 1);
    assert_eq!(count(&app, "sessions").await, 1);
    let plain = app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM users WHERE password_hash = '{GOOD_PASSWORD}'"
        ))
        .await
        .unwrap();
    assert_eq!(plain, 0, "the password is stored hashed");
    assert_eq!(
        crate::support::audit_count(&app, "tenant.registered").await,
        1
    );
}

async fn duplicate_email_is_409_email_taken(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    for email in ["ana@acme.example", "ANA@Acme.example"] {
        let r = app
            .post("/api/v1/auth/register", None, reg(email, GOOD_PASSWORD))
            .await;
        assert_error(&r, StatusCode::CONFLICT, "email_taken");
    }
    assert_eq!(count(&app, "tenants").await, 1, "no second tenant is left");
    assert_eq!(count(&app, "users").await, 1);
}

async fn weak_password_lists_every_failed_rule(db: Db) {
    let app = spawn_app(db).await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            reg("ana@acme.example", "password"),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let msgs = field_messages(&r, "password");
    assert!(
        msgs.iter().any(|m| m.contains("at least 12 characters")),
        "min_length: {msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("commonly used")),
        "common: {msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("too easy to guess")),
        "strength: {msgs:?}"
    );
    assert!(
        !r.body.to_string().contains("\"password\":\"password\""),
        "the password is not echoed"
    );
    // Too long is refused as well.
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            reg("ana@acme.example", &"ab1!".repeat(40)),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "password")
        .iter()
        .any(|m| m.contains("at most 128")));
    assert_eq!(count(&app, "tenants").await, 0);
    assert_eq!(count(&app, "users").await, 0);
}

async fn password_built_from_who_you_are_is_weak(db: Db) {
    let app = spawn_app(db).await;
    // Strong in general, but made of the user's own email.
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            reg("ana@acme.example", "Ana@Acme.example1"),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "password")
        .iter()
        .any(|m| m.contains("too easy to guess")));
    assert_eq!(count(&app, "users").await, 0);
}

async fn invalid_fields_are_all_listed(db: Db) {
    let app = spawn_app(db).await;
    for bad in [
        "not-an-email",
        "ana@",
        "@acme.example",
        "ana@localhost",
        "ana lima@acme.example",
        "",
    ] {
        let r = app
            .post("/api/v1/auth/register", None, reg(bad, GOOD_PASSWORD))
            .await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            !field_messages(&r, "email").is_empty(),
            "{bad:?}: {}",
            r.body
        );
    }
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"tenant_name": "  ", "name": "", "email": "nope", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for f in ["tenant_name", "name", "email"] {
        assert!(!field_messages(&r, f).is_empty(), "{f}: {}", r.body);
    }
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"tenant_name": "x".repeat(101), "name": "Ana", "email": "a@a.example", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "tenant_name").is_empty());
    assert_eq!(count(&app, "tenants").await, 0);
}

async fn malformed_bodies_are_4xx_never_500(db: Db) {
    let app = spawn_app(db).await;
    let json_ct = [("content-type", "application/json")];
    let good = serde_json::to_vec(&reg("ana@acme.example", GOOD_PASSWORD)).unwrap();
    /// What is wrong, headers, body, expected status and code.
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "unknown field",
            json_ct.to_vec(),
            serde_json::to_vec(&json!({"tenant_name": "A", "name": "B", "email": "a@a.example", "password": GOOD_PASSWORD, "role": "super_admin"})).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "malformed JSON",
            json_ct.to_vec(),
            b"{\"tenant_name\": \"A\",".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "wrong type",
            json_ct.to_vec(),
            serde_json::to_vec(&json!({"tenant_name": "A", "name": "B", "email": "a@a.example", "password": 123_456_789_012_u64})).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "missing field",
            json_ct.to_vec(),
            serde_json::to_vec(&json!({"tenant_name": "A", "name": "B", "email": "a@a.example"})).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "not an object",
            json_ct.to_vec(),
            b"[1,2,3]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "no content type",
            vec![],
            good.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "text/plain",
            vec![("content-type", "text/plain")],
            good.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "empty body",
            json_ct.to_vec(),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
    ];
    for (what, headers, body, status, code) in cases {
        let r = raw(
            &app,
            Method::POST,
            "/api/v1/auth/register",
            &headers,
            Some(body),
        )
        .await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_error(&r, status, code);
        assert!(
            r.body["error"]["message"].as_str().unwrap().len() > 3,
            "{what}: the message says what is wrong"
        );
    }
    // The wrong-type message names the field.
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/register",
        &json_ct,
        Some(
            serde_json::to_vec(
                &json!({"tenant_name": "A", "name": "B", "email": "a@a.example", "password": 5}),
            )
            .unwrap(),
        ),
    )
    .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password")
            || r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("string"),
        "{}",
        r.body
    );
    assert_eq!(count(&app, "tenants").await, 0);
    // The same rules hold on another endpoint.
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/login",
        &json_ct,
        Some(b"{nope".to_vec()),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");
}

async fn oversized_body_is_413(db: Db) {
    let app = spawn_app(db).await;
    let big = "x".repeat(1024 * 1024 + 10);
    let body = serde_json::to_vec(&json!({
        "tenant_name": "Acme", "name": big, "email": "ana@acme.example", "password": GOOD_PASSWORD
    }))
    .unwrap();
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/register",
        &[("content-type", "application/json")],
        Some(body),
    )
    .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    assert_eq!(count(&app, "tenants").await, 0);
    // Just under the limit is parsed (and then refused for the over-long name, not the size).
    let name = "x".repeat(1000 * 1000);
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"tenant_name": "Acme", "name": name, "email": "ana@acme.example", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

async fn registrations_are_rate_limited_per_address(db: Db) {
    let app = spawn_app_with(db, |raw| raw.rate_limit_register_per_hour = 3).await;
    for i in 0..3 {
        app.register(&format!("T{i}"), &format!("o{i}@t.example"))
            .await;
    }
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            reg("late@t.example", GOOD_PASSWORD),
        )
        .await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait = retry_after(&r);
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
    assert_eq!(count(&app, "tenants").await, 3, "the 4th was not created");
    // Login is a separate budget.
    let r = crate::support::login_resp(&app, "o0@t.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
}
