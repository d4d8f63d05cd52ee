//! The operator's and the admin's plumbing pages: connecting a simulated WhatsApp number shows
//! the callback URL and verify token; the webhooks page; a super admin impersonates a tenant's
//! owner from `/admin/tenants`, sees the banner on the pages and ends it with "End".

use crate::harness::{label, role, steps, text, Db, Page, Server};

crate::both!(
    connecting_a_simulated_number_shows_what_to_paste_into_meta,
    an_operator_impersonates_an_owner_and_ends_it,
);

const PASSWORD: &str = "correct-orbit-lantern-quietly";

async fn connecting_a_simulated_number_shows_what_to_paste_into_meta(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    steps::register_and_skip_verification(&page).await;
    let number: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_sim/phone-numbers", server.sim_url))
        .json(&serde_json::json!({"display_phone_number": "+1 555 0100", "verified_name": "Acme Support"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page.goto("/settings/whatsapp").await;
    page.wait_for(&text("No number connected yet")).await;
    page.assert_accessible().await;
    steps::connect_number(&page, &number).await;
    page.wait_for(&text("Paste these into Meta's dashboard"))
        .await;
    page.wait_for(&role("button", "Copy the verify token"))
        .await;
    let shown = page.body_text().await;
    assert!(shown.contains("/webhooks/whatsapp/"), "{shown}");
    page.screenshot("settings-whatsapp-connected").await;
    page.goto("/settings/whatsapp").await;
    page.wait_for(&role("button", "Disconnect Support")).await;
    page.screenshot("settings-whatsapp").await;

    page.goto("/settings/webhooks").await;
    page.wait_for(&role("heading", "Webhooks")).await;
    page.assert_accessible().await;
    page.screenshot("settings-webhooks").await;
    page.assert_clean().await;
}

async fn an_operator_impersonates_an_owner_and_ends_it(db: Db) {
    let server = Server::start(db).await;
    let owner = Page::open(&server).await;
    steps::register_and_skip_verification(&owner).await;
    server
        .create_super_admin("root@platform.example", "Platform Operator", PASSWORD)
        .await;

    let page = Page::open(&server).await;
    page.goto("/login").await;
    page.fill(&label("Email"), "root@platform.example").await;
    page.fill(&label("Password"), PASSWORD).await;
    page.click(&role("button", "Sign in")).await;
    page.wait_for_path("/admin/tenants").await;
    page.wait_for(&role("heading", "Tenants")).await;
    page.assert_accessible().await;
    page.screenshot("admin-tenants").await;

    page.click(&text("Impersonate…")).await;
    page.fill(
        &label("Reason for impersonating Acme"),
        "Ticket 42: cannot send",
    )
    .await;
    page.click(&role("button", "Start impersonation")).await;
    page.wait_for_path("/inbox").await;
    page.wait_for(&text("Impersonating Ana Lima")).await;
    page.wait_for(&text("Reason: Ticket 42: cannot send")).await;
    page.wait_for(&text("min left")).await;
    page.assert_accessible().await;
    page.screenshot("impersonation-banner").await;

    page.click(&role("button", "End")).await;
    page.wait_for_path("/admin/tenants").await;
    page.wait_for(&role("heading", "Tenants")).await;
    assert!(!page.is_visible(&text("Impersonating")).await);
    page.assert_clean().await;
    owner.assert_clean().await;
}
