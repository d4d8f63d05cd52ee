//! Email verification: the code mailed at registration, verify and resend, their refusals, the
//! `required` mode's restriction, and invitations that verify the address.

use crate::support::{assert_error, audit_count, retry_after};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp, Session, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(
    a_person_registers_verifies_and_me_shows_it,
    wrong_expired_and_replaced_codes_are_invalid,
    five_wrong_tries_kill_the_code,
    resending_is_limited_to_one_a_minute_and_five_an_hour,
    concurrent_tries_share_one_budget_and_one_use,
    required_mode_lets_an_unverified_user_reach_only_the_allowed_routes,
    keys_and_impersonations_cannot_verify_or_resend,
    an_invitation_is_mailed_and_accepting_it_verifies_the_address,
);

async fn verify(app: &TestApp, s: &Session, code: &str) -> Resp {
    app.post(
        "/api/v1/auth/email/verify",
        Some(&s.access_token),
        json!({ "code": code }),
    )
    .await
}

async fn resend(app: &TestApp, token: &str) -> Resp {
    app.post("/api/v1/auth/email/resend", Some(token), json!({}))
        .await
}

async fn latest_code(app: &TestApp, email: &str) -> String {
    app.wait_mail(email, "email_verification")
        .await
        .code(6)
        .expect("a 6-digit code in the mail")
}

/// A code that is not `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn a_person_registers_verifies_and_me_shows_it(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mail = app
        .wait_mail("ana@acme.example", "email_verification")
        .await;
    let code = mail.code(6).unwrap();
    assert!(
        !mail.subject.contains(&code),
        "no secret in the subject: {}",
        mail.subject
    );
    assert!(mail.html.contains(&code));
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["email_verified"], false, "{}", me.body);
    let user = format!("/api/v1/users/{}", owner.user_id);
    assert_eq!(
        app.get(&user, &owner.access_token).await.body["email_verified"],
        false
    );

    let r = verify(&app, &owner, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({ "email_verified": true }));
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["email_verified"], true, "{}", me.body);
    assert_eq!(
        app.get(&user, &owner.access_token).await.body["email_verified"],
        true
    );
    assert_eq!(audit_count(&app, "auth.email.verified").await, 1);

    // Already verified: verifying again is a success, asking for a code a conflict.
    let again = verify(&app, &owner, &code).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_error(
        &resend(&app, &owner.access_token).await,
        StatusCode::CONFLICT,
        "already_verified",
    );
    assert_eq!(audit_count(&app, "auth.email.verified").await, 1);
}

async fn wrong_expired_and_replaced_codes_are_invalid(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let first = latest_code(&app, "ana@acme.example").await;
    assert_error(
        &verify(&app, &owner, &wrong(&first)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
    );
    for junk in ["", "12345", "1234567", "abcdef"] {
        assert_error(
            &verify(&app, &owner, junk).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
        );
    }
    let r = app
        .post(
            "/api/v1/auth/email/verify",
            Some(&owner.access_token),
            json!({ "code": 123456 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // A code lives ten minutes.
    app.clock.advance(time::Duration::seconds(10 * 60 + 1));
    assert_error(
        &verify(&app, &owner, &first).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_code",
    );

    // A new code voids the old one.
    let r = resend(&app, &owner.access_token).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body, json!({}));
    assert_eq!(
        app.mails_of("ana@acme.example", "email_verification")
            .await
            .len(),
        2
    );
    let second = latest_code(&app, "ana@acme.example").await;
    if second != first {
        assert_error(
            &verify(&app, &owner, &first).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
        );
    }
    let r = verify(&app, &owner, &second).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn five_wrong_tries_kill_the_code(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let code = latest_code(&app, "ana@acme.example").await;
    for _ in 0..5 {
        assert_error(
            &verify(&app, &owner, &wrong(&code)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
        );
    }
    // Dead, even for the right code.
    assert_error(
        &verify(&app, &owner, &code).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.body["email_verified"],
        false
    );
    // A new code works.
    assert_eq!(
        resend(&app, &owner.access_token).await.status,
        StatusCode::ACCEPTED
    );
    let fresh = latest_code(&app, "ana@acme.example").await;
    let r = verify(&app, &owner, &fresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn resending_is_limited_to_one_a_minute_and_five_an_hour(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    // The code sent at registration does not count: the first resend goes out at once.
    for i in 0..5 {
        let r = resend(&app, &owner.access_token).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "resend {i}: {}", r.body);
        let r = resend(&app, &owner.access_token).await;
        assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
        let wait = retry_after(&r);
        assert!((1..=60).contains(&wait), "{wait}");
        app.clock.advance(time::Duration::seconds(61));
    }
    assert_eq!(
        app.mails_of("ana@acme.example", "email_verification")
            .await
            .len(),
        6
    );
    // A sixth within the hour is refused, with the wait until the oldest leaves the window.
    let r = resend(&app, &owner.access_token).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait = retry_after(&r);
    assert!(wait > 60 && wait <= 3600, "{wait}");
    app.clock.advance(time::Duration::seconds(wait as i64));
    // The access token expired meanwhile: sign in again.
    let again = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = resend(&app, &again.access_token).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    // Only the newest code works.
    let code = latest_code(&app, "ana@acme.example").await;
    assert_eq!(verify(&app, &again, &code).await.status, StatusCode::OK);
}

async fn concurrent_tries_share_one_budget_and_one_use(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let code = latest_code(&app, "ana@acme.example").await;
    // Ten wrong guesses at once: at most five are counted as tries; the code then is dead.
    let bad = wrong(&code);
    let guesses: Vec<_> = (0..10).map(|_| verify(&app, &owner, &bad)).collect();
    let answers = futures_util::future::join_all(guesses).await;
    let invalid = answers
        .iter()
        .filter(|r| r.status == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    let dead = answers
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((invalid, dead), (5, 5), "{answers:?}");
    assert_error(
        &verify(&app, &owner, &code).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );

    // The right code twice at once: verified once.
    assert_eq!(
        resend(&app, &owner.access_token).await.status,
        StatusCode::ACCEPTED
    );
    let code = latest_code(&app, "ana@acme.example").await;
    let (a, b) = tokio::join!(verify(&app, &owner, &code), verify(&app, &owner, &code));
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(audit_count(&app, "auth.email.verified").await, 1);
}

async fn create_key(app: &TestApp, admin: &Session) -> String {
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": "sync", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["key"].as_str().unwrap().to_owned()
}

async fn required_mode_lets_an_unverified_user_reach_only_the_allowed_routes(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.email_verification = palisade_core::settings::EmailVerification::Required;
    })
    .await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = owner.access_token.as_str();
    assert_error(
        &app.get("/api/v1/contacts", t).await,
        StatusCode::FORBIDDEN,
        "email_unverified",
    );
    assert_error(
        &app.get("/api/v1/users", t).await,
        StatusCode::FORBIDDEN,
        "email_unverified",
    );
    assert_error(
        &app.post(
            "/api/v1/auth/password",
            Some(t),
            json!({"current_password": GOOD_PASSWORD, "new_password": "velvet-harbor-crimson-mosaic"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "email_unverified",
    );
    // Allowed: who am I, sessions, resend, verify.
    let me = app.get("/api/v1/me", t).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["email_verified"], false);
    let sessions = app.get("/api/v1/auth/sessions", t).await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.body);
    let other = app.login("ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(
        app.delete(&format!("/api/v1/auth/sessions/{}", other.session_id), t)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(resend(&app, t).await.status, StatusCode::ACCEPTED);
    let code = latest_code(&app, "ana@acme.example").await;
    assert_eq!(verify(&app, &owner, &code).await.status, StatusCode::OK);
    // Verified: everything opens, at once, on this session.
    let r = app.get("/api/v1/contacts", t).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Logout stays open to an unverified user.
    let bob = app.register("Bobco", "bob@bobco.example").await;
    let r = app
        .post("/api/v1/auth/logout", Some(&bob.access_token), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // An API key acts for its creator: an unverified creator's key is refused too. The key is
    // made on a node in the optional mode; this node (required) refuses it.
    let optional = app
        .spawn_peer_with(|c| {
            c.email_verification = palisade_core::settings::EmailVerification::Optional;
        })
        .await;
    let carl = optional.register("Carlco", "carl@carlco.example").await;
    let key = create_key(&optional, &carl).await;
    assert_eq!(
        optional.get("/api/v1/contacts", &key).await.status,
        StatusCode::OK
    );
    assert_error(
        &app.get("/api/v1/contacts", &key).await,
        StatusCode::FORBIDDEN,
        "email_unverified",
    );
}

async fn keys_and_impersonations_cannot_verify_or_resend(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let key = create_key(&app, &owner).await;
    assert_error(
        &app.post(
            "/api/v1/auth/email/verify",
            Some(&key),
            json!({"code": "123456"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "api_key_not_allowed",
    );
    assert_error(
        &resend(&app, &key).await,
        StatusCode::FORBIDDEN,
        "api_key_not_allowed",
    );
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let imp = r.body["access_token"].as_str().unwrap();
    let code = latest_code(&app, "ana@acme.example").await;
    assert_error(
        &app.post(
            "/api/v1/auth/email/verify",
            Some(imp),
            json!({ "code": code }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "impersonation_forbidden",
    );
    assert_error(
        &resend(&app, imp).await,
        StatusCode::FORBIDDEN,
        "impersonation_forbidden",
    );
    // Unauthenticated: 401.
    let r = app
        .post("/api/v1/auth/email/verify", None, json!({ "code": code }))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The owner's own code still works: nothing above spent it.
    assert_eq!(verify(&app, &owner, &code).await.status, StatusCode::OK);
}

async fn an_invitation_is_mailed_and_accepting_it_verifies_the_address(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "ivy@acme.example", "name": "Ivy", "role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = r.body["invite_token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["email_verified"], false, "{}", r.body);
    let mail = app.wait_mail("ivy@acme.example", "invitation").await;
    let prefix = format!(
        "{}/accept-invite?token=",
        app.services.settings.public_url.trim_end_matches('/')
    );
    let link = mail.link(&prefix).expect("an accept-invite link");
    assert_eq!(link, format!("{prefix}{token}"));
    assert!(!mail.subject.contains(&token));
    // A user created with a password gets no invitation.
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "pat@acme.example", "name": "Pat", "role": "agent", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(app
        .mails_of("pat@acme.example", "invitation")
        .await
        .is_empty());

    let r = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": link.trim_start_matches(&prefix), "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let me = app
        .get("/api/v1/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.body["email_verified"], true, "{}", me.body);
}
