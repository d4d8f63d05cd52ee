//! Access and refresh tokens, and the browser's cookies with CSRF protection.

use crate::support::{
    assert_error, audit_count, cookie, cookie_value, json_with, raw, set_cookies,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use palisade_testkit::{spawn_app, Db, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    missing_garbage_and_tampered_tokens_are_401,
    unsigned_and_foreign_tokens_are_401,
    access_tokens_expire_after_15_minutes,
    refresh_rotates_and_reuse_signs_the_session_out,
    refresh_never_extends_the_session_beyond_30_days,
    bad_refresh_requests,
    login_sets_host_cookies,
    cookie_requests_need_the_csrf_header,
    cookie_refresh_needs_the_csrf_header,
    logout_clears_the_cookies,
    csrf_tokens_survive_a_signing_key_appended_to_the_ring,
);

async fn refresh(app: &TestApp, token: &str) -> palisade_testkit::Resp {
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": token }),
    )
    .await
}

async fn missing_garbage_and_tampered_tokens_are_401(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = raw(&app, Method::GET, "/api/v1/me", &[], None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for garbage in ["garbage", "a.b.c", "", "Bearer"] {
        let r = app.get("/api/v1/me", garbage).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{garbage:?}: {}",
            r.body
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = app.get("/api/v1/me", "garbage").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    // A different scheme is not a bearer token.
    let r = raw(
        &app,
        Method::GET,
        "/api/v1/me",
        &[("authorization", &format!("Basic {}", owner.access_token))],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Tampering with the payload (another user id) or the signature.
    let parts: Vec<&str> = owner.access_token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!(uuid::Uuid::new_v4());
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let r = app.get("/api/v1/me", &forged).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 0x01;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    let r = app.get("/api/v1/me", &bad_sig).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    // The genuine one still works.
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
}

async fn unsigned_and_foreign_tokens_are_401(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let parts: Vec<&str> = owner.access_token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&none_header).unwrap()),
        parts[1]
    );
    let r = app.get("/api/v1/me", &none).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    // A token from another deployment (its own keys) is refused.
    let other = spawn_app(db).await;
    let stranger = other.register("Other", "eve@other.example").await;
    let r = app.get("/api/v1/me", &stranger.access_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
}

async fn access_tokens_expire_after_15_minutes(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    app.clock.advance(time::Duration::minutes(14));
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    app.clock.advance(time::Duration::minutes(2));
    let r = app.get("/api/v1/me", &owner.access_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "token_expired");
    // The refresh token still gets a fresh access token.
    let r = refresh(&app, &owner.refresh_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let me = app
        .get("/api/v1/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK);
}

async fn refresh_rotates_and_reuse_signs_the_session_out(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let other = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = refresh(&app, &owner.refresh_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_access = r.body["access_token"].as_str().unwrap().to_owned();
    let new_refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, owner.refresh_token, "rotated");
    assert_eq!(
        r.body["session_id"], owner.session_id,
        "same session after a refresh"
    );
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(
        app.get("/api/v1/me", &new_access).await.status,
        StatusCode::OK
    );
    // The old refresh token presented again: theft is assumed and the session ends.
    let r = refresh(&app, &owner.refresh_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "refresh_token_reused");
    for t in [&new_access, &owner.access_token] {
        let r = app.get("/api/v1/me", t).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "session_revoked");
    }
    let r = refresh(&app, &new_refresh).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the family is dead: {}",
        r.body
    );
    assert_eq!(audit_count(&app, "auth.refresh.reuse_detected").await, 1);
    // Other sessions of the same user are untouched.
    assert_eq!(
        app.get("/api/v1/me", &other.access_token).await.status,
        StatusCode::OK
    );
    let revoked = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(revoked, 1);
}

async fn refresh_never_extends_the_session_beyond_30_days(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    app.clock.advance(time::Duration::days(29));
    let r = refresh(&app, &owner.refresh_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let next = r.body["refresh_token"].as_str().unwrap().to_owned();
    app.clock
        .advance(time::Duration::days(1) + time::Duration::minutes(1));
    let r = refresh(&app, &next).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    // And a token never used before is dead as well after 30 days.
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    app.clock
        .advance(time::Duration::days(30) + time::Duration::seconds(1));
    let r = refresh(&app, &owner.refresh_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
}

async fn bad_refresh_requests(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    for bad in [
        "garbage",
        "pal_rt_",
        "pal_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = refresh(&app, bad).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    }
    // The access token is not a refresh token.
    let r = refresh(&app, &owner.access_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    let r = raw(&app, Method::POST, "/api/v1/auth/refresh", &[], None).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "refresh_token_missing");
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/refresh",
        &[("content-type", "application/json")],
        Some(b"{\"refresh_token\": ".to_vec()),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "malformed_json");
    let r = app
        .post("/api/v1/auth/refresh", None, json!({"refresh_token": 5}))
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": owner.refresh_token, "extra": 1}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // None of that consumed the real token.
    assert_eq!(
        refresh(&app, &owner.refresh_token).await.status,
        StatusCode::OK
    );
}

async fn login_sets_host_cookies(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let r = crate::support::login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let all = set_cookies(&r);
    for name in ["__Host-palisade_access", "__Host-palisade_refresh"] {
        let c = cookie(&all, name);
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{name} lacks {attr}: {c}");
        }
        assert!(
            !c.contains("Domain="),
            "__Host- cookies have no Domain: {c}"
        );
    }
    let access = cookie(&all, "__Host-palisade_access");
    assert_eq!(
        cookie_value(access),
        r.body["access_token"].as_str().unwrap()
    );
    assert!(access.contains("Max-Age=900"), "{access}");
    let refresh_c = cookie(&all, "__Host-palisade_refresh");
    assert_eq!(
        cookie_value(refresh_c),
        r.body["refresh_token"].as_str().unwrap()
    );
    let csrf = cookie(&all, "__Host-palisade_csrf");
    assert!(csrf.contains("Secure") && csrf.contains("SameSite=Strict"));
    assert!(
        !csrf.contains("HttpOnly"),
        "scripts must read the CSRF cookie: {csrf}"
    );
    assert_eq!(cookie_value(csrf), r.body["csrf_token"].as_str().unwrap());
    // Registration sets them too.
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"tenant_name": "B", "name": "Bo", "email": "bo@b.example", "password": GOOD_PASSWORD}),
        )
        .await;
    let all = set_cookies(&r);
    cookie(&all, "__Host-palisade_access");
    cookie(&all, "__Host-palisade_refresh");
    cookie(&all, "__Host-palisade_csrf");
}

async fn cookie_requests_need_the_csrf_header(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let r = crate::support::login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let csrf = r.body["csrf_token"].as_str().unwrap().to_owned();
    let jar = format!("__Host-palisade_access={access}; __Host-palisade_csrf={csrf}");
    // Safe requests need no CSRF token.
    let me = raw(&app, Method::GET, "/api/v1/me", &[("cookie", &jar)], None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    // An unsafe request without the header, or with a wrong one, is refused and changes nothing.
    for headers in [
        vec![("cookie", jar.as_str())],
        vec![("cookie", jar.as_str()), ("x-csrf-token", "deadbeef")],
        vec![("cookie", jar.as_str()), ("x-csrf-token", "")],
    ] {
        let r = json_with(
            &app,
            Method::PATCH,
            "/api/v1/tenant",
            &headers,
            json!({"name": "Hijacked"}),
        )
        .await;
        assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
    }
    let t = app.get("/api/v1/tenant", &access).await;
    assert_eq!(t.body["name"], "Acme");
    // With the header it goes through.
    let r = json_with(
        &app,
        Method::PATCH,
        "/api/v1/tenant",
        &[("cookie", &jar), ("x-csrf-token", &csrf)],
        json!({"name": "Acme Renamed"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Acme Renamed");
    // Another session's CSRF token does not fit this session.
    let other = crate::support::login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    let other_csrf = other.body["csrf_token"].as_str().unwrap();
    assert_ne!(other_csrf, csrf);
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        &[("cookie", &jar), ("x-csrf-token", other_csrf)],
        None,
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
    // Bearer requests need no CSRF token.
    let r = app
        .patch("/api/v1/tenant", &access, json!({"name": "Acme"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        &[("cookie", &jar), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = raw(&app, Method::GET, "/api/v1/me", &[("cookie", &jar)], None).await;
    assert_error(&me, StatusCode::UNAUTHORIZED, "session_revoked");
}

async fn cookie_refresh_needs_the_csrf_header(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let r = crate::support::login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    let all = set_cookies(&r);
    let refresh_v = cookie_value(cookie(&all, "__Host-palisade_refresh")).to_owned();
    let csrf_v = cookie_value(cookie(&all, "__Host-palisade_csrf")).to_owned();
    let jar = format!("__Host-palisade_refresh={refresh_v}; __Host-palisade_csrf={csrf_v}");
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/refresh",
        &[("cookie", &jar)],
        None,
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/refresh",
        &[("cookie", &jar), ("x-csrf-token", "nope")],
        None,
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
    let r = raw(
        &app,
        Method::POST,
        "/api/v1/auth/refresh",
        &[("cookie", &jar), ("x-csrf-token", &csrf_v)],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = set_cookies(&r);
    assert_ne!(
        cookie_value(cookie(&new, "__Host-palisade_refresh")),
        refresh_v,
        "the cookie carries the rotated token"
    );
}

async fn logout_clears_the_cookies(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post("/api/v1/auth/logout", Some(&owner.access_token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let all = set_cookies(&r);
    for name in [
        "__Host-palisade_access",
        "__Host-palisade_refresh",
        "__Host-palisade_csrf",
    ] {
        let c = cookie(&all, name);
        assert!(c.contains("Max-Age=0"), "{c}");
        assert_eq!(cookie_value(c), "");
    }
}

/// Appending a signing key (a rotation) must not break browsers already signed in: their CSRF
/// tokens keep verifying until their sessions end (issue 11, item 5). Before, the CSRF key was
/// derived from the newest signing key only.
async fn csrf_tokens_survive_a_signing_key_appended_to_the_ring(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let r = crate::support::login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let csrf = r.body["csrf_token"].as_str().unwrap().to_owned();
    let jar = format!("__Host-palisade_access={access}; __Host-palisade_csrf={csrf}");
    let ring =
        secrecy::ExposeSecret::expose_secret(app.config.signing_keys.as_ref().unwrap()).to_owned();
    let rotated = format!("{ring},{}", palisade_core::crypto::generate_ring_text());
    let restarted = app
        .spawn_peer_with(|raw| raw.signing_keys = Some(rotated.into()))
        .await;
    let r = json_with(
        &restarted,
        Method::PATCH,
        "/api/v1/tenant",
        &[("cookie", &jar), ("x-csrf-token", &csrf)],
        json!({"name": "Acme Rotated"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A wrong token is still refused, and a new sign-in gets a token of the newest key, which
    // works too.
    let r = json_with(
        &restarted,
        Method::PATCH,
        "/api/v1/tenant",
        &[("cookie", &jar), ("x-csrf-token", &"0".repeat(csrf.len()))],
        json!({"name": "Hijacked"}),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "csrf_failed");
    let fresh = crate::support::login_resp(&restarted, "ana@acme.example", GOOD_PASSWORD).await;
    let fresh_csrf = fresh.body["csrf_token"].as_str().unwrap().to_owned();
    let fresh_access = fresh.body["access_token"].as_str().unwrap().to_owned();
    let fresh_jar =
        format!("__Host-palisade_access={fresh_access}; __Host-palisade_csrf={fresh_csrf}");
    let r = json_with(
        &restarted,
        Method::PATCH,
        "/api/v1/tenant",
        &[("cookie", &fresh_jar), ("x-csrf-token", &fresh_csrf)],
        json!({"name": "Acme Fresh"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
