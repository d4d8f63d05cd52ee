//! The console on a phone (390 × 844): the main navigation folds behind a "Menu" button that
//! opens without script, and the pages that used to scroll sideways or wrap badly fit. A
//! ticket list (rows stacked), analytics (filter fields on one line at desktop width even
//! when the time zone's hint wraps), the contacts, users, API keys and audit lists (rows
//! stacked), security alerts ("Resolve…" a button) and the deals board (stages stacked) with a
//! deal's history. Screenshots: `phone-tickets`, `phone-contacts`, `phone-users`,
//! `phone-api-keys`, `phone-audit`, `phone-analytics`, `phone-alerts`, `phone-deals` and
//! `phone-deal` at both sizes.

use crate::harness::{label, role, steps, text, Db, Page, Server};
use serde_json::json;
use std::time::Duration;

crate::both!(on_a_phone_the_menu_opens_and_the_pages_fit);

/// The phone the issue was found on.
async fn phone(page: &Page) {
    page.set_size(390, 844).await;
}

/// How many distinct tops the analytics filter controls have (1: one aligned line).
async fn filter_control_tops(page: &Page) -> u64 {
    page.eval(
        "new Set([...document.querySelectorAll('.analytics-filters .form-row > .field > :is(input, select)')]\
         .map(e => Math.round(e.getBoundingClientRect().top))).size",
    )
    .await
    .as_u64()
    .unwrap_or(0)
}

async fn on_a_phone_the_menu_opens_and_the_pages_fit(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;
    steps::register_and_skip_verification(&page).await;

    // The navigation is folded behind "Menu"; opened, its links are there by name.
    phone(&page).await;
    assert!(!page.is_visible(&role("link", "Contacts")).await);
    assert_eq!(
        page.eval("document.querySelector('.menu-toggle').open")
            .await,
        false
    );
    page.click(&role("button", "Menu")).await;
    assert_eq!(
        page.eval("document.querySelector('.menu-toggle').open")
            .await,
        true
    );
    page.click(&role("link", "Contacts")).await;
    page.wait_for_path("/contacts").await;
    // A new page starts folded again.
    assert!(!page.is_visible(&role("link", "Tickets")).await);
    page.assert_accessible().await;

    // A contact, a ticket for her and a deal with her.
    page.goto("/contacts/new").await;
    page.fill(&label("Name"), "Cara Lima").await;
    page.fill(&label("Phone"), "+44 7700 900123").await;
    page.click(&role("button", "Create contact")).await;
    page.wait_for(&role("heading", "Cara Lima")).await;

    page.goto("/tickets/new").await;
    page.fill(
        &label("Subject"),
        "Refund for the order placed on the website last Tuesday",
    )
    .await;
    page.fill(&label("Contact (optional)"), "Cara Lima (+447700900123)")
        .await;
    page.click(&role("button", "Open ticket")).await;
    page.wait_for(&role(
        "heading",
        "Refund for the order placed on the website last Tuesday",
    ))
    .await;

    // The list: every column of the row readable without scrolling sideways.
    page.goto("/tickets").await;
    page.wait_for(&role("cell", "Normal")).await;
    phone(&page).await;
    page.assert_accessible().await;
    page.screenshot("phone-tickets").await;

    // The contacts, the team, the API keys and the audit log stack the same way: on a phone
    // no table scrolls sideways in its frame.
    page.goto("/settings/api-keys").await;
    page.fill(&label("Name"), "Warehouse sync").await;
    page.click(&label("contacts:read")).await;
    page.click(&role("button", "Create key")).await;
    page.wait_for(&role("button", "Copy key")).await;
    for (path, cell, shot) in [
        ("/contacts", "Cara Lima", "phone-contacts"),
        ("/settings/users", steps::OWNER_EMAIL, "phone-users"),
        ("/settings/api-keys", "Warehouse sync", "phone-api-keys"),
        ("/audit", "contact.created", "phone-audit"),
    ] {
        page.goto(path).await;
        page.wait_for(&role("cell", cell)).await;
        phone(&page).await;
        assert_eq!(
            page.eval(
                "[...document.querySelectorAll('.table-wrap')]\
                 .filter(e => e.scrollWidth > e.clientWidth).length"
            )
            .await,
            0,
            "{path}: a table scrolls sideways on a phone"
        );
        page.assert_accessible().await;
        page.screenshot(shot).await;
    }

    // Analytics: at desktop width the filter controls share one line.
    page.goto("/analytics").await;
    page.wait_for(&role("heading", "Overview")).await;
    assert_eq!(filter_control_tops(&page).await, 1);
    page.screenshot("phone-analytics").await;

    // The deals board, stages stacked on a phone, and a deal's history.
    page.goto("/deals/new").await;
    page.fill(&label("Title"), "Fleet renewal").await;
    page.fill(&label("Value"), "1250.50").await;
    page.fill(&label("Contact"), "Cara Lima (+447700900123)")
        .await;
    page.click(&role("button", "Create deal")).await;
    page.wait_for(&role("heading", "Fleet renewal")).await;
    page.screenshot("phone-deal").await;
    page.goto("/deals").await;
    page.wait_for(&role("link", "Fleet renewal")).await;
    page.screenshot("phone-deals").await;

    // Security alerts: ten wrong passwords raise one; "Resolve…" opens its form.
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
    page.screenshot("phone-alerts").await;
    phone(&page).await;
    page.click(&role("button", "Resolve…")).await;
    page.wait_for(&label("Note (optional)")).await;
    page.wait_for(&text("Resolve")).await;
    page.assert_accessible().await;
    page.assert_clean().await;
}
