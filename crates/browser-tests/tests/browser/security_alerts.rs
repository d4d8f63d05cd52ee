//! The security alerts page as an admin uses it: ten failed sign-ins of one account raise an
//! "Account under attack" alert, listed with its severity and the metrics on top; the admin
//! acknowledges it, then resolves it with a note. Screenshot: `security-alerts` at both sizes.

use crate::harness::{label, role, steps, text, Db, Page, Server};
use serde_json::json;
use std::time::Duration;

crate::both!(an_admin_acknowledges_then_resolves_an_alert);

async fn an_admin_acknowledges_then_resolves_an_alert(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    steps::register_and_skip_verification(&page).await;

    page.click(&role("link", "Security")).await;
    page.wait_for_path("/security/alerts").await;
    page.wait_for(&text("No security alerts")).await;

    // Someone tries passwords on Ana's account.
    let http = reqwest::Client::new();
    for i in 0..10 {
        let r = http
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": steps::OWNER_EMAIL, "password": format!("wrong-guess-{i}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // Raised within 5 s of the tenth failure.
    let mut listed = false;
    for _ in 0..40 {
        page.goto("/security/alerts").await;
        if page.body_text().await.contains("Account under attack") {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(listed, "the alert is listed: {}", page.body_text().await);
    page.wait_for(&text(steps::OWNER_EMAIL)).await;
    page.wait_for(&role("cell", "high")).await;
    assert_unresolved(&page, "1").await;
    page.assert_accessible().await;
    page.screenshot("security-alerts").await;

    page.click(&role("button", "Acknowledge")).await;
    page.wait_for(&text("acknowledged")).await;
    page.wait_gone(&role("button", "Acknowledge")).await;

    page.click(&role("button", "Resolve…")).await;
    page.fill(&label("Note (optional)"), "Ana changed her password")
        .await;
    page.click(&role("button", "Resolve")).await;
    page.wait_for(&text("resolved")).await;
    page.wait_gone(&role("button", "Resolve…")).await;
    assert_unresolved(&page, "0").await;
    page.assert_accessible().await;
    page.assert_clean().await;
}

/// The "Unresolved alerts" figure reads `want`, polled for up to 5 s: after a form posts, the
/// old page can still be on screen (its status filter also says "resolved") or be unloading.
async fn assert_unresolved(page: &Page, want: &str) {
    let js = "(document.querySelector('.metric dd') || {textContent: ''}).textContent.trim()";
    let started = std::time::Instant::now();
    loop {
        let got = page.try_eval(js).await.unwrap_or_default();
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "unresolved alerts: {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
