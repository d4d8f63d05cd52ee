//! Device sessions: listing, revoking one, logout, logout-all.

use crate::support::{assert_error, json_with, CHROME_WINDOWS, FIREFOX_LINUX};
use palisade_testkit::{spawn_app, Db, Resp, TestApp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    sessions_are_listed_with_device_and_current_flag,
    revoking_a_session_stops_its_tokens_at_once,
    another_users_session_is_not_found,
    logout_ends_this_session_only,
    logout_all_ends_every_session,
);

async fn login_as(app: &TestApp, ua: &str) -> Resp {
    let r = json_with(
        app,
        Method::POST,
        "/api/v1/auth/login",
        &[("user-agent", ua)],
        json!({"email": "ana@acme.example", "password": GOOD_PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

fn s(r: &Resp, k: &str) -> String {
    r.body[k].as_str().unwrap().to_owned()
}

async fn sessions_are_listed_with_device_and_current_flag(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let ff = login_as(&app, FIREFOX_LINUX).await;
    app.clock.advance(time::Duration::seconds(5));
    let chrome = login_as(&app, CHROME_WINDOWS).await;
    let list = app
        .get("/api/v1/auth/sessions", &s(&ff, "access_token"))
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "registration, Firefox and Chrome: {data:?}");
    // Newest first.
    assert_eq!(data[0]["id"], s(&chrome, "session_id"));
    assert_eq!(data[1]["id"], s(&ff, "session_id"));
    let f = &data[1];
    assert_eq!(f["browser"], "Firefox 128.0");
    assert_eq!(f["os"], "Linux");
    assert_eq!(f["user_agent"], FIREFOX_LINUX);
    assert_eq!(f["ip"], "127.0.0.1");
    assert_eq!(f["current"], true);
    assert!(f["created_at"].as_str().is_some() && f["expires_at"].as_str().is_some());
    let c = &data[0];
    assert!(c["browser"].as_str().unwrap().starts_with("Chrome"), "{c}");
    assert!(c["os"].as_str().unwrap().starts_with("Windows"), "{c}");
    assert_eq!(c["current"], false);
    assert_eq!(data.iter().filter(|x| x["current"] == true).count(), 1);
    // Seen from the other session, the flag moves.
    let list = app
        .get("/api/v1/auth/sessions", &s(&chrome, "access_token"))
        .await;
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data[0]["current"], true);
    assert_eq!(data[1]["current"], false);
    // Another user sees only their own.
    let owner2 = app.register("Other", "olga@other.example").await;
    let list = app.get("/api/v1/auth/sessions", &owner2.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

async fn revoking_a_session_stops_its_tokens_at_once(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let phone = app.login("ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/me", &phone.access_token).await.status,
        StatusCode::OK
    );
    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{}", phone.session_id),
            &owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = app.get("/api/v1/me", &phone.access_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "session_revoked");
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": phone.refresh_token}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let list = app.get("/api/v1/auth/sessions", &owner.access_token).await;
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], owner.session_id.as_str());
    // Revoking it again: nothing active by that id.
    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{}", phone.session_id),
            &owner.access_token,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    // The caller's own session keeps working.
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        crate::support::audit_count(&app, "auth.session.revoked").await,
        1
    );
}

async fn another_users_session_is_not_found(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let colleague = app.add_user(&owner, "bob@acme.example", "agent").await;
    let stranger = app.register("Other", "olga@other.example").await;
    for victim in [&colleague, &stranger] {
        let r = app
            .delete(
                &format!("/api/v1/auth/sessions/{}", victim.session_id),
                &owner.access_token,
            )
            .await;
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            app.get("/api/v1/me", &victim.access_token).await.status,
            StatusCode::OK,
            "the session survived"
        );
    }
    // The owner (an admin) cannot revoke an agent's session either: it is theirs to manage.
    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{}", owner.session_id),
            &colleague.access_token,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .delete(
            &format!("/api/v1/auth/sessions/{}", uuid::Uuid::new_v4()),
            &owner.access_token,
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app
        .delete("/api/v1/auth/sessions/not-a-uuid", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
}

async fn logout_ends_this_session_only(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let laptop = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = app
        .post("/api/v1/auth/logout", Some(&laptop.access_token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, serde_json::Value::Null, "204 has no body");
    let r = app.get("/api/v1/me", &laptop.access_token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "session_revoked");
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": laptop.refresh_token}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    let r = app.post("/api/v1/auth/logout", None, json!({})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(crate::support::audit_count(&app, "auth.logout").await, 1);
}

async fn logout_all_ends_every_session(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let a = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let b = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let colleague = app.add_user(&owner, "bob@acme.example", "agent").await;
    let r = app
        .post("/api/v1/auth/logout-all", Some(&a.access_token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["sessions_revoked"], 3);
    for sess in [&owner, &a, &b] {
        let r = app.get("/api/v1/me", &sess.access_token).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "session_revoked");
        let r = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": sess.refresh_token}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.get("/api/v1/me", &colleague.access_token).await.status,
        StatusCode::OK,
        "other users keep their sessions"
    );
    // Signing in again works.
    let fresh = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let list = app.get("/api/v1/auth/sessions", &fresh.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}
