//! Password reset by mail: the story, enumeration, the limits, single use under concurrency,
//! newer-voids-older, expiry, sessions revoked, the lock lifted, the policy, and the
//! "password changed" mail.

use crate::support::OTHER_PASSWORD;
use crate::support::{assert_error, audit_count, field_messages, login_resp, retry_after};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

both!(
    a_person_forgets_the_password_and_resets_it_by_mail,
    every_address_gets_the_same_answer,
    at_most_five_requests_an_hour_per_address,
    at_most_five_mails_an_hour_per_account,
    a_token_works_once_even_under_concurrent_resets,
    a_newer_token_voids_the_older_and_tokens_expire,
    a_reset_lifts_the_lock,
    the_policy_applies_and_a_refused_password_keeps_the_token,
    changing_the_password_mails_the_user,
    keys_and_impersonations_are_refused,
    spent_codes_and_tokens_are_pruned_after_a_day,
);

const NEW_PASSWORD: &str = "amber-falcon-drifts-northward";

async fn forgot(app: &TestApp, email: &str) -> Resp {
    app.post(
        "/api/v1/auth/password/forgot",
        None,
        json!({ "email": email }),
    )
    .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Resp {
    app.post(
        "/api/v1/auth/password/reset",
        None,
        json!({ "token": token, "new_password": password }),
    )
    .await
}

fn link_prefix(app: &TestApp) -> String {
    format!(
        "{}/reset-password?token=",
        app.services.settings.public_url.trim_end_matches('/')
    )
}

/// Waits until `n` reset mails went to `email` and returns the newest one's token.
async fn nth_token(app: &TestApp, email: &str, n: usize) -> String {
    for _ in 0..100 {
        let mails = app.mails_of(email, "password_reset").await;
        if mails.len() >= n {
            let link = mails[n - 1]
                .link(&link_prefix(app))
                .expect("a reset link in the mail");
            return link.trim_start_matches(&link_prefix(app)).to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reset mail number {n} to {email}");
}

async fn a_person_forgets_the_password_and_resets_it_by_mail(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let other = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = forgot(&app, "Ana@Acme.example ").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body, json!({}));
    let mail = app.wait_mail("ana@acme.example", "password_reset").await;
    let link = mail.link(&link_prefix(&app)).expect("reset link");
    let token = link.trim_start_matches(&link_prefix(&app)).to_owned();
    assert!(token.starts_with("pal_pr_"), "{token}");
    assert!(!mail.subject.contains(&token));

    let r = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["sessions_revoked"], 2);
    // Every session is signed out, refresh tokens included.
    for s in [&owner, &other] {
        assert_error(
            &app.get("/api/v1/me", &s.access_token).await,
            StatusCode::UNAUTHORIZED,
            "session_revoked",
        );
        let r = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": s.refresh_token}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_error(
        &login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    let fresh = app.login("ana@acme.example", NEW_PASSWORD).await;
    // The link reached the mailbox: the address counts as verified.
    let me = app.get("/api/v1/me", &fresh.access_token).await;
    assert_eq!(me.body["email_verified"], true, "{}", me.body);
    let changed = app.wait_mail("ana@acme.example", "password_changed").await;
    assert!(changed.text.contains("reset"), "{}", changed.text);
    assert_eq!(audit_count(&app, "auth.password.reset").await, 1);
    assert_eq!(audit_count(&app, "auth.password.reset_requested").await, 1);
    // Used: refused.
    assert_error(
        &reset(&app, &token, OTHER_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    );
}

async fn every_address_gets_the_same_answer(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let gone = crate::support::create_user(&app, &owner, "gone@acme.example", "agent").await;
    let r = app
        .delete(&format!("/api/v1/users/{gone}"), &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let mut answers = Vec::new();
    for email in [
        "ana@acme.example",
        "nobody@acme.example",
        "gone@acme.example",
        "not an address",
    ] {
        let r = forgot(&app, email).await;
        answers.push((r.status, r.body.clone()));
        // No header tells them apart either (beyond the request id).
        assert!(r.header("retry-after").is_none());
    }
    assert!(
        answers
            .iter()
            .all(|a| *a == (StatusCode::ACCEPTED, json!({}))),
        "{answers:?}"
    );
    app.wait_mail("ana@acme.example", "password_reset").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.mails_to("nobody@acme.example").await.is_empty());
    assert!(app
        .mails_of("gone@acme.example", "password_reset")
        .await
        .is_empty());
    // Malformed requests are still refused as such.
    let r = app
        .post("/api/v1/auth/password/forgot", None, json!({"mail": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

async fn at_most_five_requests_an_hour_per_address(db: Db) {
    let app = spawn_app(db).await;
    for i in 0..5 {
        let r = forgot(&app, &format!("n{i}@nowhere.example")).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    let r = forgot(&app, "n6@nowhere.example").await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(retry_after(&r) > 0);
}

async fn at_most_five_mails_an_hour_per_account(db: Db) {
    let app = spawn_app_with(db, |c| c.rate_limit_password_forgot_per_hour = 0).await;
    app.register("Acme", "ana@acme.example").await;
    for n in 1..=5 {
        assert_eq!(
            forgot(&app, "ana@acme.example").await.status,
            StatusCode::ACCEPTED
        );
        nth_token(&app, "ana@acme.example", n).await;
    }
    // The sixth is answered the same, and sends nothing.
    assert_eq!(
        forgot(&app, "ana@acme.example").await.status,
        StatusCode::ACCEPTED
    );
    for _ in 0..100 {
        if audit_count(&app, "auth.password.reset_throttled").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(audit_count(&app, "auth.password.reset_throttled").await, 1);
    assert_eq!(
        app.mails_of("ana@acme.example", "password_reset")
            .await
            .len(),
        5
    );
    // An hour later, one more.
    app.clock.advance(time::Duration::seconds(3601));
    forgot(&app, "ana@acme.example").await;
    let token = nth_token(&app, "ana@acme.example", 6).await;
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn a_token_works_once_even_under_concurrent_resets(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    forgot(&app, "ana@acme.example").await;
    let token = nth_token(&app, "ana@acme.example", 1).await;
    let (a, b) = tokio::join!(
        reset(&app, &token, NEW_PASSWORD),
        reset(&app, &token, OTHER_PASSWORD)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{} {}",
        a.body,
        b.body
    );
    let loser = if a.status == StatusCode::OK { &b } else { &a };
    assert_eq!(loser.code(), "invalid_token");
    let winner = if a.status == StatusCode::OK {
        NEW_PASSWORD
    } else {
        OTHER_PASSWORD
    };
    app.login("ana@acme.example", winner).await;
    assert_eq!(audit_count(&app, "auth.password.reset").await, 1);
}

async fn a_newer_token_voids_the_older_and_tokens_expire(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    forgot(&app, "ana@acme.example").await;
    let first = nth_token(&app, "ana@acme.example", 1).await;
    forgot(&app, "ana@acme.example").await;
    let second = nth_token(&app, "ana@acme.example", 2).await;
    assert_ne!(first, second);
    assert_error(
        &reset(&app, &first, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    );
    // Thirty minutes later the newest is dead too.
    app.clock.advance(time::Duration::seconds(30 * 60 + 1));
    assert_error(
        &reset(&app, &second, NEW_PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_token",
    );
    for bad in [
        "",
        "pal_pr_",
        "pal_pr_nonsense",
        "pal_rt_whatever",
        &"x".repeat(500),
    ] {
        assert_error(
            &reset(&app, bad, NEW_PASSWORD).await,
            StatusCode::BAD_REQUEST,
            "invalid_token",
        );
    }
    app.login("ana@acme.example", GOOD_PASSWORD).await;
}

async fn a_reset_lifts_the_lock(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    // A user who has never signed in, so no address is known to be theirs.
    crate::support::create_user(&app, &owner, "bob@acme.example", "agent").await;
    for _ in 0..5 {
        login_resp(&app, "bob@acme.example", "wrong-password-entirely").await;
    }
    assert_error(
        &login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "account_locked",
    );
    forgot(&app, "bob@acme.example").await;
    let token = nth_token(&app, "bob@acme.example", 1).await;
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    app.login("bob@acme.example", NEW_PASSWORD).await;
}

async fn the_policy_applies_and_a_refused_password_keeps_the_token(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    forgot(&app, "ana@acme.example").await;
    let token = nth_token(&app, "ana@acme.example", 1).await;
    let r = reset(&app, &token, "short").await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "new_password").is_empty(), "{}", r.body);
    // History: the current password is refused.
    let r = reset(&app, &token, GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "new_password").is_empty(), "{}", r.body);
    let r = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn changing_the_password_mails_the_user(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post(
            "/api/v1/auth/password",
            Some(&owner.access_token),
            json!({"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mail = app.wait_mail("ana@acme.example", "password_changed").await;
    assert!(mail.text.contains("changed"), "{}", mail.text);
    assert!(!mail.text.contains(NEW_PASSWORD));
    let forgot_link = format!(
        "{}/forgot-password",
        app.services.settings.public_url.trim_end_matches('/')
    );
    assert!(mail.link(&forgot_link).is_some(), "{}", mail.text);
}

async fn keys_and_impersonations_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "sync", "scopes": ["contacts:read"]}),
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": true}),
        )
        .await;
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    forgot(&app, "ana@acme.example").await;
    let token = nth_token(&app, "ana@acme.example", 1).await;
    for (credential, code) in [
        (&key, "api_key_not_allowed"),
        (&imp, "impersonation_forbidden"),
    ] {
        let r = app
            .post(
                "/api/v1/auth/password/forgot",
                Some(credential),
                json!({"email": "ana@acme.example"}),
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, code);
        let r = app
            .post(
                "/api/v1/auth/password/reset",
                Some(credential),
                json!({"token": token, "new_password": NEW_PASSWORD}),
            )
            .await;
        assert_error(&r, StatusCode::FORBIDDEN, code);
    }
    // The user's own session may ask (a signed-in person who forgot nothing but wants a link).
    let r = app
        .post(
            "/api/v1/auth/password/forgot",
            Some(&owner.access_token),
            json!({"email": "ana@acme.example"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // Nothing above spent the token... but the second request voided it for a newer one.
    let newest = nth_token(&app, "ana@acme.example", 2).await;
    assert_eq!(
        reset(&app, &newest, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

async fn spent_codes_and_tokens_are_pruned_after_a_day(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    app.wait_mail("ana@acme.example", "email_verification")
        .await;
    let r = app
        .post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": "ana@acme.example"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    app.wait_mail("ana@acme.example", "password_reset").await;
    let count = |table: &'static str| {
        let app = &app;
        async move {
            app.db
                .count_as_owner(&format!("SELECT COUNT(*) FROM {table}"))
                .await
                .unwrap()
        }
    };
    // Within the day they stay (the sending limits count them).
    app.clock.advance(time::Duration::hours(23));
    palisade_core::auth::login_history::prune(&app.services)
        .await
        .unwrap();
    assert_eq!(count("email_codes").await, 1);
    assert_eq!(count("password_resets").await, 1);
    app.clock.advance(time::Duration::hours(2));
    palisade_core::auth::login_history::prune(&app.services)
        .await
        .unwrap();
    assert_eq!(count("email_codes").await, 0);
    assert_eq!(count("password_resets").await, 0);
}
