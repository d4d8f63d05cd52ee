//! The console's account pages over plain HTTP: `/settings/profile` and `/settings/security`
//! for each role, the sub-navigation, escaping, login history paging, the people the session
//! layer sends there (a required second factor, an expired password) and impersonations,
//! which the API refuses; `/settings` and the sessions link of the new-device mail. The
//! browser suite drives the same pages in Chromium.

use crate::two_factor::enable_totp;
use palisade_testkit::{spawn_app, Db, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(
    signed_out_visitors_are_sent_to_sign_in,
    an_admin_sees_the_profile_and_every_settings_section,
    an_agent_cannot_rename_themself_and_sees_no_admin_sections,
    the_security_page_lists_this_person_s_sessions_and_factors_only,
    names_are_escaped_on_the_account_pages,
    the_login_history_pages_with_the_api_cursor,
    a_required_second_factor_sends_the_person_to_security_and_says_why,
    an_expired_password_sends_the_person_to_the_profile_and_says_why,
    an_impersonation_is_refused_the_security_settings,
    settings_and_the_mailed_sessions_link_lead_to_their_pages,
);

struct Page {
    status: StatusCode,
    location: String,
    text: String,
}

/// A console page as seen with `access_token` in the API's session cookie.
async fn page(app: &TestApp, access_token: &str, path: &str) -> Page {
    let r = crate::console::signed_in_get(app, access_token, path).await;
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Page {
        status,
        location,
        text: r.text().await.unwrap_or_default(),
    }
}

async fn signed_out_visitors_are_sent_to_sign_in(db: Db) {
    let app = spawn_app(db).await;
    for path in ["/settings/profile", "/settings/security"] {
        let p = page(&app, "", path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location, format!("/login?next={path}"));
    }
}

async fn an_admin_sees_the_profile_and_every_settings_section(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let p = page(&app, &owner.access_token, "/settings/profile").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.text.matches("<h1").count(), 1);
    assert!(p.text.contains("<h1>Profile</h1>"));
    assert!(p
        .text
        .contains(r#"<a href="/settings/profile" aria-current="page">Profile</a>"#));
    for section in ["users", "api-keys", "webhooks", "whatsapp", "tenant"] {
        assert!(
            p.text.contains(&format!(r#"href="/settings/{section}""#)),
            "{section}"
        );
    }
    // The name through the API's user route, the password through the password route.
    assert!(p.text.contains(&format!(
        r#"data-api="PATCH /api/v1/users/{}""#,
        owner.user_id
    )));
    assert!(p.text.contains(r#"data-api="POST /api/v1/auth/password""#));
    assert!(p.text.contains(r#"name="current_password""#));
    assert!(p.text.contains(r#"name="new_password""#));
    assert!(p.text.contains("ana@acme.example"));
    let s = page(&app, &owner.access_token, "/settings/security").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert!(s
        .text
        .contains(r#"<a href="/settings/security" aria-current="page">Security</a>"#));
    assert!(s.text.contains("/static/security.js?v="));
}

async fn an_agent_cannot_rename_themself_and_sees_no_admin_sections(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let p = page(&app, &agent.access_token, "/settings/profile").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(
        !p.text.contains("PATCH /api/v1/users/"),
        "the API would refuse"
    );
    assert!(p.text.contains("ask an admin"));
    assert!(p.text.contains(r#"data-api="POST /api/v1/auth/password""#));
    for section in ["users", "api-keys", "webhooks", "whatsapp", "tenant"] {
        assert!(
            !p.text.contains(&format!(r#"href="/settings/{section}""#)),
            "{section}"
        );
    }
    let s = page(&app, &agent.access_token, "/settings/security").await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(s.text.contains("Set up authenticator app"));
}

async fn the_security_page_lists_this_person_s_sessions_and_factors_only(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let second = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let other = app.register("Globex", "gus@globex.example").await;
    let s = page(&app, &owner.access_token, "/settings/security").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert!(s.text.contains("This device"));
    // The other session can be revoked, this one is signed out with "Sign out".
    assert!(s.text.contains(&format!(
        r#"data-api="DELETE /api/v1/auth/sessions/{}""#,
        second.session_id
    )));
    assert!(!s.text.contains(&format!(
        "DELETE /api/v1/auth/sessions/{}",
        owner.session_id
    )));
    assert!(
        !s.text.contains(&other.session_id),
        "another tenant's session"
    );
    assert!(s
        .text
        .contains(r#"data-api="POST /api/v1/auth/logout-all""#));
    assert!(s.text.contains(r#"data-then="go:/login""#));
    assert!(s.text.contains("data-confirm="));
    assert!(s.text.contains("You have no passkeys yet"));
    assert!(s.text.contains("Set up authenticator app"));
    // With TOTP on: the codes left, regeneration and removal.
    enable_totp(&app, &owner).await;
    let s = page(&app, &owner.access_token, "/settings/security").await;
    assert!(s.text.contains("10 recovery codes left"), "{}", s.text);
    assert!(s
        .text
        .contains(r#"data-api="POST /api/v1/auth/2fa/recovery-codes""#));
    assert!(s
        .text
        .contains(r#"data-api="DELETE /api/v1/auth/2fa/totp""#));
    assert!(!s.text.contains("Set up authenticator app"));
    // Another tenant's owner sees none of it.
    let o = page(&app, &other.access_token, "/settings/security").await;
    assert!(!o.text.contains(&owner.session_id));
    assert!(o.text.contains("Set up authenticator app"));
}

async fn names_are_escaped_on_the_account_pages(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let evil = r#"<img src=x onerror=alert(1)>"#;
    let r = app
        .patch(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token,
            json!({ "name": evil }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let agent = app.login("bo@acme.example", GOOD_PASSWORD).await;
    for path in ["/settings/profile", "/settings/security"] {
        let p = page(&app, &agent.access_token, path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(!p.text.contains(evil), "{path}: {}", p.text);
        assert!(
            p.text.contains("&lt;img src=x onerror=alert(1)&gt;")
                || p.text.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{path}"
        );
    }
}

async fn the_login_history_pages_with_the_api_cursor(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    for _ in 0..21 {
        app.login("ana@acme.example", GOOD_PASSWORD).await;
    }
    let first = page(&app, &owner.access_token, "/settings/security").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.text.contains("<th scope=\"col\">Result</th>"));
    let at = first
        .text
        .find("/settings/security?cursor=")
        .expect("a next page link");
    let next: String = first.text[at..]
        .chars()
        .take_while(|c| *c != '#' && *c != '"')
        .collect();
    assert!(first.text.contains("Next page"));
    assert!(!first.text.contains("Previous (newest)"));
    let second = page(&app, &owner.access_token, &next).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert!(second.text.contains("Previous (newest)"));
    assert!(second.text.contains("Signed in"));
    assert!(!second.text.contains("Next page"), "22 attempts: two pages");
    let bad = page(&app, &owner.access_token, "/settings/security?cursor=nope").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("cursor"));
}

async fn a_required_second_factor_sends_the_person_to_security_and_says_why(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"require_2fa": "admins"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let inbox = page(&app, &owner.access_token, "/inbox").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER);
    assert_eq!(inbox.location, "/settings/security");
    let s = page(&app, &owner.access_token, "/settings/security").await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert!(s
        .text
        .contains("Your organisation requires two-step sign-in"));
    assert!(s
        .text
        .contains(r#"data-api="POST /api/v1/auth/2fa/totp/setup""#));
    assert!(s.text.contains("data-passkey-register"));
    enable_totp(&app, &owner).await;
    let s = page(&app, &owner.access_token, "/settings/security").await;
    assert!(!s
        .text
        .contains("Your organisation requires two-step sign-in"));
    assert_eq!(
        page(&app, &owner.access_token, "/inbox").await.status,
        StatusCode::OK
    );
}

async fn an_expired_password_sends_the_person_to_the_profile_and_says_why(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"password_policy": "compliance"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.clock.advance(time::Duration::days(91));
    let expired = app.login("ana@acme.example", GOOD_PASSWORD).await;
    for path in ["/inbox", "/settings/security"] {
        let p = page(&app, &expired.access_token, path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location, "/settings/profile");
    }
    let p = page(&app, &expired.access_token, "/settings/profile").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains("Your password has expired"));
    assert!(p.text.contains(r#"data-then="go:/inbox""#));
}

async fn an_impersonation_is_refused_the_security_settings(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #42", "write": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let s = page(&app, &token, "/settings/security").await;
    assert_eq!(s.status, StatusCode::FORBIDDEN, "{}", s.text);
    assert!(s.text.contains("not available under an impersonation"));
    assert!(s.text.contains("an impersonation cannot see or change"));
    assert!(s.text.contains("Impersonating"), "the banner stays");
    assert!(!s.text.contains("data-api="), "no form to use");
    assert!(!s.text.contains(&owner.session_id));
    let p = page(&app, &token, "/settings/profile").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.text.contains("An impersonation cannot change passwords"));
    assert!(!p.text.contains("/api/v1/auth/password"));
    assert!(!p.text.contains("PATCH /api/v1/users/"));
}

async fn settings_and_the_mailed_sessions_link_lead_to_their_pages(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    // The new-device mail links to `SESSIONS_PAGE`: a section of the security page.
    let mailed = palisade_core::auth::login_history::SESSIONS_PAGE;
    for (path, to) in [
        ("/settings", "/settings/profile"),
        (mailed, "/settings/security#sessions"),
    ] {
        let p = page(&app, &owner.access_token, path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}: {}", p.text);
        assert_eq!(p.location, to, "{path}");
        // Signed out, the page it leads to asks for a sign-in first.
        let p = page(&app, "", path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location, to, "{path}");
        let target = to.split('#').next().unwrap();
        let p = page(&app, "", target).await;
        assert_eq!(p.location, format!("/login?next={target}"), "{path}");
    }
    let security = page(&app, &owner.access_token, "/settings/security").await;
    assert_eq!(security.status, StatusCode::OK, "{}", security.text);
    assert_eq!(
        security.text.matches(r#"id="sessions""#).count(),
        1,
        "the section the link points at"
    );
    let at = security.text.find(r#"id="sessions""#).unwrap();
    assert!(
        security.text[at..].contains("Where you're signed in"),
        "it is the sessions section"
    );
}
