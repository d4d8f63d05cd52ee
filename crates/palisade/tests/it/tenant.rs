//! The tenant's settings, and the compliance password policy with its 90-day expiry.

use crate::support::{assert_error, audit_count, field_messages, login_resp, COMPLIANT_PASSWORD};
use palisade_testkit::{spawn_app, Db, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(
    read_and_rename_the_tenant,
    only_admins_change_the_tenant,
    compliance_enforces_composition,
    compliance_passwords_expire_after_90_days,
    modern_passwords_never_expire,
    super_admins_have_no_tenant,
);

async fn read_and_rename_the_tenant(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = app.get("/api/v1/tenant", &owner.access_token).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.body["id"], owner.tenant_id.as_str());
    assert_eq!(t.body["name"], "Acme");
    assert_eq!(t.body["status"], "active");
    assert_eq!(t.body["password_policy"], "modern");
    assert!(t.body["created_at"].as_str().is_some());
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"name": "  Acme Ltd  "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Acme Ltd");
    assert_eq!(r.body["password_policy"], "modern", "untouched");
    // The new name shows everywhere at once.
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["tenant"]["name"], "Acme Ltd");
    assert_eq!(
        app.get("/api/v1/tenant", &owner.access_token).await.body["name"],
        "Acme Ltd"
    );
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"password_policy": "strict"}), "password_policy"),
    ] {
        let r = app.patch("/api/v1/tenant", &owner.access_token, body).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(!field_messages(&r, field).is_empty(), "{}", r.body);
    }
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"status": "suspended"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let t = app.get("/api/v1/tenant", &owner.access_token).await;
    assert_eq!(t.body["name"], "Acme Ltd");
    assert_eq!(t.body["status"], "active");
    assert_eq!(audit_count(&app, "tenant.updated").await, 1);
}

async fn only_admins_change_the_tenant(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bob@acme.example", "agent").await;
    let t = app.get("/api/v1/tenant", &agent.access_token).await;
    assert_eq!(t.status, StatusCode::OK);
    assert_eq!(t.body["name"], "Acme");
    let r = app
        .patch(
            "/api/v1/tenant",
            &agent.access_token,
            json!({"name": "Mine"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .patch(
            "/api/v1/tenant",
            &agent.access_token,
            json!({"password_policy": "compliance"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let t = app.get("/api/v1/tenant", &owner.access_token).await;
    assert_eq!(t.body["name"], "Acme");
    assert_eq!(t.body["password_policy"], "modern");
    let r = crate::support::raw(&app, reqwest::Method::GET, "/api/v1/tenant", &[], None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn compliance_enforces_composition(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    // Accepted under modern; not under compliance.
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"password_policy": "compliance"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["password_policy"], "compliance");
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": GOOD_PASSWORD, "new_password": "velvet-harbor-crimson-mosaic"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let msgs = field_messages(&r, "new_password");
    assert!(msgs.iter().any(|m| m.contains("uppercase")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("digit")), "{msgs:?}");
    assert!(!msgs.iter().any(|m| m.contains("lowercase")), "{msgs:?}");
    assert!(!msgs.iter().any(|m| m.contains("symbol")), "{msgs:?}");
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": GOOD_PASSWORD, "new_password": COMPLIANT_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // New users' passwords follow it as well.
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "bob@acme.example", "name": "Bob", "role": "agent", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "password")
        .iter()
        .any(|m| m.contains("uppercase")));
    // And invited users'.
    let inv = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "cy@acme.example", "name": "Cy", "role": "agent"}),
        )
        .await;
    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": inv.body["invite_token"], "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Back to modern: composition no longer required.
    app.patch(
        "/api/v1/tenant",
        &owner.access_token,
        json!({"password_policy": "modern"}),
    )
    .await;
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": COMPLIANT_PASSWORD, "new_password": "velvet-harbor-crimson-mosaic"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn compliance_passwords_expire_after_90_days(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    app.add_user(&owner, "bob@acme.example", "agent").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"password_policy": "compliance"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.clock.advance(time::Duration::days(89));
    let r = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.body["password_expired"], false, "not yet");
    app.clock.advance(time::Duration::days(2));
    let r = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["password_expired"], true);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["password_expired"], true);
    for path in ["/api/v1/users", "/api/v1/tenant"] {
        let r = app.get(path, &token).await;
        assert_error(&r, StatusCode::FORBIDDEN, "password_expired");
    }
    let r = app
        .patch("/api/v1/tenant", &token, json!({"name": "Sneaky"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "password_expired");
    let r = app
        .post(
            "/api/v1/users",
            Some(&token),
            json!({"email": "x@acme.example", "name": "X", "role": "agent"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "password_expired");
    // Refreshing does not get around it.
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["password_expired"], true);
    let refreshed = r.body["access_token"].as_str().unwrap().to_owned();
    let r = app.get("/api/v1/users", &refreshed).await;
    assert_error(&r, StatusCode::FORBIDDEN, "password_expired");
    // The new password must follow the policy.
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&refreshed),
            json!({"current_password": GOOD_PASSWORD, "new_password": "velvet-harbor-crimson-mosaic"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app.get("/api/v1/users", &refreshed).await;
    assert_error(&r, StatusCode::FORBIDDEN, "password_expired");
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&refreshed),
            json!({"current_password": GOOD_PASSWORD, "new_password": COMPLIANT_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The session that changed it is free again at once.
    let me = app.get("/api/v1/me", &refreshed).await;
    assert_eq!(me.body["password_expired"], false);
    let r = app.get("/api/v1/users", &refreshed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = login_resp(&app, "ana@acme.example", COMPLIANT_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["password_expired"], false);
    let fresh = r.body["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/tenant", fresh).await.status,
        StatusCode::OK
    );
    // The agent's password is just as old.
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.body["password_expired"], true);
}

async fn modern_passwords_never_expire(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    app.clock.advance(time::Duration::days(400));
    let r = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["password_expired"], false);
    let t = r.body["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/users", t).await.status, StatusCode::OK);
}

async fn super_admins_have_no_tenant(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let sa = app.super_admin("root@platform.example").await;
    let r = app.get("/api/v1/tenant", &sa.access_token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .patch(
            "/api/v1/tenant",
            &sa.access_token,
            json!({"name": "Platform"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}
