//! Enforcement: `require_2fa` on the tenant, restricted sessions until a factor is enrolled,
//! and the last factor that cannot be removed while one is required.

use crate::support::{assert_error, audit_count, login_resp};
use crate::two_factor::{enable_totp, mfa_token, next_step, second_step, totp_now};
use palisade_testkit::{spawn_app, Db, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    admins_without_a_factor_are_restricted_until_they_enrol,
    everyone_restricts_agents_and_new_sign_ins_too,
    the_last_factor_cannot_be_removed_while_required,
    only_admins_set_the_requirement_and_bad_values_are_refused,
    super_admins_must_in_production,
    a_restricted_session_cannot_listen_on_the_websocket,
);

async fn admins_without_a_factor_are_restricted_until_they_enrol(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let t = app.get("/api/v1/tenant", &owner.access_token).await;
    assert_eq!(t.body["require_2fa"], "off");
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "admins"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["require_2fa"], "admins");
    assert_eq!(audit_count(&app, "tenant.updated").await, 1);

    // The owner's existing session is restricted at once; the agent is not concerned.
    let blocked = app.get("/api/v1/contacts", &owner.access_token).await;
    assert_error(&blocked, StatusCode::FORBIDDEN, "2fa_enrollment_required");
    assert_error(
        &app.get("/api/v1/tenant", &owner.access_token).await,
        StatusCode::FORBIDDEN,
        "2fa_enrollment_required",
    );
    assert_error(
        &app.get("/api/v1/auth/sessions", &owner.access_token).await,
        StatusCode::FORBIDDEN,
        "2fa_enrollment_required",
    );
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(st.status, StatusCode::OK);
    assert_eq!(st.body["required"], true);
    assert_eq!(
        app.get("/api/v1/contacts", &agent.access_token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/auth/2fa", &agent.access_token).await.body["required"],
        false
    );
    // Signing in again gives a restricted session too (there is no factor to ask for).
    let r = login_resp(&app, &owner.email, GOOD_PASSWORD).await;
    let fresh = r.body["access_token"].as_str().unwrap().to_owned();
    assert_error(
        &app.get("/api/v1/contacts", &fresh).await,
        StatusCode::FORBIDDEN,
        "2fa_enrollment_required",
    );
    // The sign-in routes never refuse a leftover credential.
    let r = app
        .send(
            Method::POST,
            "/api/v1/auth/login",
            Some(&fresh),
            Some(json!({"email": owner.email, "password": GOOD_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Enrolment opens the same session at once.
    enable_totp(&app, &owner).await;
    assert_eq!(
        app.get("/api/v1/contacts", &owner.access_token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/contacts", &fresh).await.status,
        StatusCode::OK
    );
    // Logout stays open to a restricted session.
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "everyone"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_error(
        &app.get("/api/v1/contacts", &agent.access_token).await,
        StatusCode::FORBIDDEN,
        "2fa_enrollment_required",
    );
    assert_eq!(
        app.post("/api/v1/auth/logout", Some(&agent.access_token), json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

async fn everyone_restricts_agents_and_new_sign_ins_too(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    enable_totp(&app, &owner).await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "everyone"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = login_resp(&app, &agent.email, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let restricted = r.body["access_token"].as_str().unwrap().to_owned();
    for path in ["/api/v1/contacts", "/api/v1/conversations", "/api/v1/users"] {
        assert_error(
            &app.get(path, &restricted).await,
            StatusCode::FORBIDDEN,
            "2fa_enrollment_required",
        );
    }
    // The enrolment routes are open: the agent enrols and is free.
    let agent_session = palisade_testkit::Session {
        access_token: restricted.clone(),
        ..agent.clone()
    };
    let (uri, _) = enable_totp(&app, &agent_session).await;
    assert_eq!(
        app.get("/api/v1/contacts", &restricted).await.status,
        StatusCode::OK
    );
    // From now on the agent's sign-in asks for the code.
    next_step(&app);
    let t = mfa_token(&app, &agent.email).await;
    let r = second_step(&app, &t, "code", &totp_now(&app, &uri)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The owner (with TOTP) was never restricted.
    assert_eq!(
        app.get("/api/v1/contacts", &owner.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

async fn the_last_factor_cannot_be_removed_while_required(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (uri, codes) = enable_totp(&app, &owner).await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "admins"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    next_step(&app);
    let del = |code: String| {
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            app.send(
                Method::DELETE,
                "/api/v1/auth/2fa/totp",
                Some(&token),
                Some(json!({"password": GOOD_PASSWORD, "code": code})),
            )
            .await
        }
    };
    assert_error(
        &del(totp_now(&app, &uri)).await,
        StatusCode::CONFLICT,
        "2fa_required",
    );
    // The refusal spent nothing: the recovery codes are all there.
    let st = app.get("/api/v1/auth/2fa", &owner.access_token).await;
    assert_eq!(st.body["recovery_codes_left"], 10);
    assert_eq!(st.body["totp"], true);
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "off"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(del(codes[0].clone()).await.status, StatusCode::NO_CONTENT);
}

async fn only_admins_set_the_requirement_and_bad_values_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let other = app.register("Globex", "cy@globex.example").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &agent.access_token,
            json!({"require_2fa": "off"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    for bad in [json!("all"), json!(true), json!("ADMINS")] {
        let r = app
            .patch(
                "/api/v1/tenant",
                &owner.access_token,
                json!({"require_2fa": bad}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
    }
    // Another tenant's setting is its own.
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "everyone"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/tenant", &other.access_token).await.body["require_2fa"],
        "off"
    );
    assert_eq!(
        app.get("/api/v1/contacts", &other.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

async fn super_admins_must_in_production(db: Db) {
    // Development: not required (production is covered by the unit test of
    // `core::auth::restriction`, since a production start refuses a test setup).
    let app = spawn_app(db).await;
    let root = app.super_admin("root@platform.example").await;
    let st = app.get("/api/v1/auth/2fa", &root.access_token).await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.body);
    assert_eq!(st.body["required"], false);
    assert_eq!(
        app.get("/api/v1/admin/tenants", &root.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

async fn a_restricted_session_cannot_listen_on_the_websocket(db: Db) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "admins"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let url = app.url("/api/v1/ws").replacen("http://", "ws://", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "token": owner.access_token})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                assert_eq!(u16::from(f.code), 4403);
                assert_eq!(f.reason.as_str(), "2fa_enrollment_required");
                break;
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                assert_ne!(
                    t.as_str(),
                    r#"{"type":"ready"}"#,
                    "the socket must not open"
                );
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a close, got {other:?}"),
        }
    }
}
