//! The account pages in Chromium: TOTP enrolment on `/settings/security` (QR code, the secret as
//! text, recovery codes shown once) and then a sign-in with a code on `/login`; a passkey added
//! with Chromium's virtual authenticator and then "Sign in with a passkey"; revoking another
//! session and signing out everywhere. Screenshots of `/settings/security` at both sizes, at the
//! top and at its sessions (where the new-device mail's link leads).

use crate::harness::{label, role, text, Db, Page, Server};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

crate::both!(
    enrolling_totp_then_signing_in_with_a_code,
    adding_a_passkey_then_signing_in_with_it,
    revoking_a_session_and_signing_out_everywhere,
);

// The first two tests here were flaky when app.js ran twice (it was loaded under two URLs):
// every data-api form was sent twice. Two TOTP setups each stored a new secret, and the page
// could show the one that lost, so its code was "incorrect"; two confirmation dialogs opened,
// and the lower one's button was covered by the upper one. They now check that each form is
// sent once and that one dialog opens.

const EMAIL: &str = "ana@acme.example";
const PASSWORD: &str = "correct-orbit-lantern-quietly";

/// An organisation and its owner, through the API (the registration page has its own tests).
async fn register(server: &Server) {
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"tenant_name": "Acme", "name": "Ana Lima", "email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "registration: {}", r.status());
}

async fn sign_in(page: &Page) {
    page.goto("/login").await;
    page.fill(&label("Email"), EMAIL).await;
    page.fill(&label("Password"), PASSWORD).await;
    page.click(&role("button", "Sign in")).await;
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The 30-second TOTP step of Unix time `secs`.
fn step(secs: u64) -> u64 {
    secs / 30
}

fn code(uri: &str, at: u64) -> String {
    totp_rs::Totp::from_url(uri)
        .expect("an otpauth URI")
        .generate(at)
        .to_string()
}

async fn enrolling_totp_then_signing_in_with_a_code(db: Db) {
    let server = Server::start(db).await;
    register(&server).await;
    let page = Page::open(&server).await;
    sign_in(&page).await;
    page.wait_for_path("/inbox").await;
    page.goto("/settings/security").await;
    page.wait_for(&role("heading", "Authenticator app")).await;
    page.fill(&label("Password"), PASSWORD).await;
    page.click(&role("button", "Set up authenticator app"))
        .await;

    page.wait_for(&text("Scan this QR code")).await;
    let qr = page
        .eval(
            "(() => { const i = document.querySelector('[data-totp-qr]'); \
             return i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/svg+xml'); })()",
        )
        .await;
    assert_eq!(qr, json!(true), "the QR code is an image that loaded");
    let secret = page
        .eval("document.querySelector('[data-totp-secret]').textContent")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 16, "the secret is shown as text: {secret}");
    page.wait_for(&text(&secret)).await;
    let uri = page
        .eval("document.querySelector('[data-totp-link]').href")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let enrolled_at = now_secs();
    page.fill(&label("6-digit code"), &code(&uri, enrolled_at))
        .await;
    page.click(&role("button", "Turn on")).await;

    page.wait_for(&role("heading", "Save your recovery codes"))
        .await;
    // Each form was sent once (a second setup would have replaced the secret shown).
    assert_eq!(page.requests_to("/api/v1/auth/2fa/totp/setup").await, 1);
    assert_eq!(page.requests_to("/api/v1/auth/2fa/totp/confirm").await, 1);
    let codes = page
        .eval("document.querySelector('[data-recovery-list]').textContent")
        .await;
    assert_eq!(codes.as_str().unwrap().lines().count(), 10, "{codes}");
    page.wait_for(&role("button", "Copy codes")).await;
    page.assert_accessible().await;
    page.click(&role("link", "I saved them")).await;
    page.wait_for(&text("10 recovery codes left")).await;
    page.assert_accessible().await;
    page.screenshot("security").await;
    page.assert_clean().await;

    // Sign out, then back in with the password and a code. The code used to enrol cannot be
    // replayed, nor any code of its 30-second step: the code of the step after it is, as the
    // server accepts one step of clock skew either way (no need to wait for that step).
    page.click(&role("button", "Sign out")).await;
    page.wait_for(&role("button", "Sign in")).await;
    sign_in(&page).await;
    page.wait_for(&label("Authentication code")).await;
    let next_step = (step(enrolled_at) + 1).max(step(now_secs()));
    page.fill(&label("Authentication code"), &code(&uri, next_step * 30))
        .await;
    page.click(&role("button", "Verify")).await;
    page.wait_for_path("/inbox").await;
    page.assert_clean().await;
}

async fn adding_a_passkey_then_signing_in_with_it(db: Db) {
    let server = Server::start(db).await;
    register(&server).await;
    let page = Page::open(&server).await;
    let authenticator = page.add_virtual_authenticator().await;
    sign_in(&page).await;
    page.wait_for_path("/inbox").await;
    page.goto("/settings/security").await;
    page.wait_for(&text("You have no passkeys yet")).await;
    page.fill(&label("Passkey name"), "Work laptop").await;
    page.click(&role("button", "Add a passkey")).await;
    page.wait_for(&role("button", "Remove passkey Work laptop"))
        .await;
    assert_eq!(page.passkeys(&authenticator).await, 1);
    page.assert_accessible().await;
    page.assert_clean().await;

    page.click(&role("button", "Sign out")).await;
    page.wait_for(&role("button", "Sign in with a passkey"))
        .await;
    page.click(&role("button", "Sign in with a passkey")).await;
    page.wait_for_path("/inbox").await;
    page.goto("/settings/security").await;
    page.wait_for(&text("Passkey")).await;
    let body = page.body_text().await;
    assert!(!body.contains("Never"), "the passkey was just used: {body}");
    page.assert_clean().await;
}

async fn revoking_a_session_and_signing_out_everywhere(db: Db) {
    let server = Server::start(db).await;
    register(&server).await;
    // Another device.
    let client = reqwest::Client::new();
    let other: serde_json::Value = client
        .post(server.url("/api/v1/auth/login"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_token = other["access_token"].as_str().unwrap().to_owned();
    let me = |token: String| {
        let client = client.clone();
        let url = server.url("/api/v1/me");
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(me(other_token.clone()).await.is_success());

    let page = Page::open(&server).await;
    sign_in(&page).await;
    page.wait_for_path("/inbox").await;
    page.goto("/settings/security").await;
    page.wait_for(&text("This device")).await;
    // Two other sessions: the one registration opened (no browser) and the Firefox one.
    let revoke = role("button", "Revoke the session of Firefox 128.0 on Linux");
    page.click(&revoke).await;
    page.wait_for(&role("button", "Revoke session")).await;
    assert_eq!(
        page.eval("document.querySelectorAll('dialog[open]').length")
            .await,
        json!(1)
    );
    page.click(&role("button", "Revoke session")).await;
    page.wait_gone(&revoke).await;
    page.wait_for(&text("This device")).await;
    page.wait_for(&role("button", "Revoke the session of an unknown browser"))
        .await;
    // The revoked session is refused within a second, on every node.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while me(other_token.clone()).await.is_success() {
        assert!(std::time::Instant::now() < deadline, "still signed in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The dialog opens on "Cancel"; a keyboard user moves to the confirmation.
    // The link of the new-device mail: the sessions section of this page.
    page.goto("/settings/sessions").await;
    page.wait_for_path("/settings/security").await;
    assert_eq!(page.eval("location.hash").await, json!("#sessions"));
    page.wait_for(&role("heading", "Where you're signed in"))
        .await;
    page.assert_accessible().await;
    page.screenshot("security-sessions").await;

    page.click(&role("button", "Sign out everywhere")).await;
    page.wait_for(&role("button", "Yes, sign out everywhere"))
        .await;
    assert_eq!(
        page.eval("document.querySelectorAll('dialog[open]').length")
            .await,
        json!(1)
    );
    assert_eq!(page.focused().await, r#"button "Cancel""#);
    page.press("Tab").await;
    assert_eq!(page.focused().await, r#"button "Yes, sign out everywhere""#);
    page.press("Enter").await;
    page.wait_for_path("/login").await;
    page.goto("/settings/security").await;
    page.wait_for_path("/login?next=/settings/security").await;
    page.assert_clean().await;
}
