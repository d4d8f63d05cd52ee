//! The account-security story a person lives through, end to end, as issue 13's "done when"
//! tells it: register, verify the address by its mailed code, enable TOTP, sign out, sign in
//! with password and code, register a passkey and sign in with it alone, lose the phone and get
//! in with a recovery code, forget the password and reset it by mail. Every step reads the
//! mails a person would read.

use crate::passkeys::{add_passkey_for_story, passkey_app, passkey_device, passkey_sign_in};
use crate::support::login_resp;
use crate::two_factor::{enable_totp, next_step, second_step, totp_now};
use palisade_testkit::{Db, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(a_person_secures_their_account_and_gets_back_in_every_way);

const EMAIL: &str = "ana@acme.example";
const NEW_PASSWORD: &str = "harbour-violet-compass-quietly-92";

async fn a_person_secures_their_account_and_gets_back_in_every_way(db: Db) {
    let app = passkey_app(db).await;

    // Register, then verify the address with the code from the mail.
    let owner = app.register("Acme", EMAIL).await;
    let mail = app.wait_mail(EMAIL, "email_verification").await;
    assert!(
        !mail.subject.chars().any(|c| c.is_ascii_digit()),
        "no code in the subject"
    );
    let code = mail.code(6).expect("a 6-digit code in the mail");
    let r = app
        .post(
            "/api/v1/auth/email/verify",
            Some(&owner.access_token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["email_verified"], true);
    let me = app.get("/api/v1/me", &owner.access_token).await;
    assert_eq!(me.body["email_verified"], true, "{}", me.body);

    // Enable TOTP with an authenticator app; the recovery codes are shown once.
    let (uri, recovery_codes) = enable_totp(&app, &owner).await;
    assert_eq!(recovery_codes.len(), 10);
    app.wait_mail(EMAIL, "2fa_enabled").await;

    // Sign out, then sign in with the password and a code.
    let r = app
        .post("/api/v1/auth/logout", Some(&owner.access_token), json!({}))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let first = login_resp(&app, EMAIL, GOOD_PASSWORD).await;
    assert_eq!(first.body["mfa_required"], true, "{}", first.body);
    assert!(first.body.get("access_token").is_none());
    next_step(&app);
    let token = first.body["mfa_token"].as_str().unwrap();
    let r = second_step(&app, token, "code", &totp_now(&app, &uri)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut session = owner.clone();
    session.access_token = r.body["access_token"].as_str().unwrap().to_owned();

    // Register a passkey and sign in with it alone.
    let mut device = passkey_device();
    let key = add_passkey_for_story(&app, &session, &mut device, "Phone").await;
    app.wait_mail(EMAIL, "passkey_added").await;
    let r = passkey_sign_in(&app, &mut device, &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let by_passkey = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/me", &by_passkey).await.status,
        StatusCode::OK
    );

    // The phone is lost: a recovery code gets them in, once, and a mail says so.
    let first = login_resp(&app, EMAIL, GOOD_PASSWORD).await;
    let token = first.body["mfa_token"].as_str().unwrap().to_owned();
    let r = second_step(&app, &token, "recovery_code", &recovery_codes[0]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.wait_mail(EMAIL, "recovery_code_used").await;
    let again = login_resp(&app, EMAIL, GOOD_PASSWORD).await;
    let token = again.body["mfa_token"].as_str().unwrap().to_owned();
    let r = second_step(&app, &token, "recovery_code", &recovery_codes[0]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

    // The password is forgotten: reset it with the mailed link.
    let r = app
        .post(
            "/api/v1/auth/password/forgot",
            None,
            json!({"email": EMAIL}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let mail = app.wait_mail(EMAIL, "password_reset").await;
    assert!(!mail.subject.contains("pal_pr_"), "no token in the subject");
    let link = mail
        .link("http://localhost:8080/reset-password?token=")
        .expect("a reset link built from PALISADE_PUBLIC_URL");
    let reset_token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(reset_token.starts_with("pal_pr_"), "{link}");
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            json!({"token": reset_token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.wait_mail(EMAIL, "password_changed").await;
    // Every session ended; the old password is refused, the new one (with a code) works.
    assert_eq!(
        app.get("/api/v1/me", &by_passkey).await.status,
        StatusCode::UNAUTHORIZED
    );
    let old = login_resp(&app, EMAIL, GOOD_PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.body);
    let fresh = login_resp(&app, EMAIL, NEW_PASSWORD).await;
    assert_eq!(fresh.body["mfa_required"], true, "{}", fresh.body);
    next_step(&app);
    let token = fresh.body["mfa_token"].as_str().unwrap();
    let r = second_step(&app, token, "code", &totp_now(&app, &uri)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The login history tells the whole story, newest first.
    let me = r.body["access_token"].as_str().unwrap();
    let history = app.get("/api/v1/auth/login-history", me).await;
    let methods: Vec<&str> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "success")
        .map(|a| a["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["totp", "recovery_code", "passkey", "totp"],
        "{}",
        history.body
    );
}
