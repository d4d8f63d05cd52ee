//! Broadcast campaigns as an admin runs one: open Campaigns from the navigation, start a new
//! campaign, choose the template (its variables become rows), make a mistake (the field says
//! what is wrong), fix it, create the draft, start it after the confirmation, and watch the
//! counts change as the simulator accepts and delivers the messages, until it completes; the
//! analytics dashboard then shows its funnel. Screenshots: `campaign-new` (the form with its
//! field errors), `campaign` (the detail page with its counts and recipients), `campaigns` (the
//! list) and `analytics-campaigns` (the funnel) at both sizes.

use crate::harness::{label, role, text, Db, Page, Server};
use crate::inbox::{sign_in, tenant_with_number};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

crate::both!(an_admin_creates_starts_and_follows_a_campaign);

/// Syncs the number's templates (the simulator's approved `hello_world` and
/// `order_confirmation`) and adds two contacts tagged `vip` and one without the tag.
async fn templates_and_contacts(server: &Server, token: &str) {
    let http = reqwest::Client::new();
    let conns: Value = http
        .get(server.url("/api/v1/whatsapp/connections"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = conns.get("data").unwrap_or(&conns);
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let r = http
        .post(server.url("/api/v1/whatsapp/templates/sync"))
        .bearer_auth(token)
        .json(&json!({"connection_id": id}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    for body in [
        json!({"phone": "+5511987654321", "name": "Carla Mendes", "tags": ["vip"]}),
        json!({"phone": "+447700900202", "name": "Bo Chen", "tags": ["vip"]}),
        json!({"phone": "+447700900203", "name": "Dee Roy"}),
    ] {
        let r = http
            .post(server.url("/api/v1/contacts"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

/// The value the page shows for the count `label`.
async fn count(page: &Page, label: &str) -> String {
    page.eval(&format!(
        "(() => {{ const f = [...document.querySelectorAll('.figure')]
            .find((f) => f.querySelector('dt').textContent === '{label}');
          return f ? f.querySelector('.figure-value').textContent : ''; }})()"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn an_admin_creates_starts_and_follows_a_campaign(db: Db) {
    let server = Server::start(db).await;
    let (token, _) = tenant_with_number(&server).await;
    templates_and_contacts(&server, &token).await;
    let page = Page::open(&server).await;
    sign_in(&page, "ana@acme.example").await;

    page.click(&role("link", "Campaigns")).await;
    page.wait_for_path("/campaigns").await;
    page.wait_for(&text("No campaigns yet")).await;
    page.click(&role("link", "New campaign")).await;
    page.wait_for(&role("heading", "New campaign")).await;

    // Choosing the template gives one row per variable.
    page.fill(
        &label("Template"),
        "order_confirmation (en_US) · 2 variables",
    )
    .await;
    // The first template's rows are on the page already: wait for the page the button loads, or
    // what is typed next would go into the old one.
    page.click_and_wait_reload(&role("button", "Choose template"))
        .await;
    page.wait_for(&label("Body {{2}}: text or attribute key"))
        .await;
    page.fill(&label("Body {{1}}: value from"), "Contact's name")
        .await;
    page.fill(&label("Body {{1}}: fallback"), "friend").await;
    page.fill(&label("Body {{2}}: text or attribute key"), "SPRING-24")
        .await;
    page.fill(&label("Tags"), "vip, not!a tag").await;

    // A mistake: no name and a bad tag, said at their fields.
    page.click(&role("button", "Create campaign")).await;
    page.wait_for(&text("check the fields marked below")).await;
    page.wait_for(&text("may contain only letters")).await;
    for field in ["name", "tags"] {
        assert_eq!(
            page.eval(&format!(
                "document.getElementById('{field}').getAttribute('aria-invalid')"
            ))
            .await,
            "true",
            "{field}"
        );
    }
    page.assert_accessible().await;
    page.screenshot("campaign-new").await;

    // Fixed: the draft, then started after the confirmation.
    page.fill(&label("Name"), "Spring sale").await;
    page.fill(&label("Tags"), "vip").await;
    page.click(&role("button", "Create campaign")).await;
    page.wait_for(&role("heading", "Spring sale")).await;
    page.wait_for(&text("order_confirmation (en_US)")).await;
    page.wait_for(&text("Draft")).await;

    // A draft is edited on the same form, filled from the campaign; saving returns to it.
    page.click(&role("link", "Edit")).await;
    page.wait_for(&role("heading", "Edit campaign")).await;
    page.wait_for(&text("Body {{2}}: text or attribute key"))
        .await;
    page.assert_accessible().await;
    page.screenshot("campaign-edit").await;
    page.fill(&label("Except contacts tagged"), "lead").await;
    page.click(&role("button", "Save changes")).await;
    page.wait_for(&role("heading", "Spring sale")).await;
    page.wait_for(&text("except those tagged lead")).await;
    page.click(&role("button", "Start")).await;
    page.wait_for(&text("Start the campaign Spring sale?"))
        .await;
    page.click(&role("button", "Yes, start")).await;
    // Running (Pause offered), or with two recipients possibly completed already by the time
    // the page is drawn again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !page.is_visible(&role("button", "Pause")).await
        && !page.is_visible(&text("Completed")).await
    {
        assert!(
            Instant::now() < deadline,
            "not started: {}",
            page.body_text().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&page, "Targeted").await, "2");

    // The counts follow the simulator: queued, sent, then delivered (or already read), and the
    // campaign completes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let number = |s: String| s.parse::<i64>().unwrap_or(0);
    while number(count(&page, "Delivered").await) + number(count(&page, "Read").await) != 2 {
        assert!(
            Instant::now() < deadline,
            "not delivered: {}",
            page.body_text().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        page.click(&role("link", "Refresh counts")).await;
        page.wait_loaded().await;
    }
    page.wait_for(&text("Completed")).await;
    page.wait_for(&role("link", "Carla Mendes (+5511987654321)"))
        .await;
    assert!(
        !page.is_visible(&text("Dee Roy")).await,
        "not in the audience"
    );
    page.assert_accessible().await;
    page.screenshot("campaign").await;

    page.click(&role("link", "Campaigns")).await;
    page.wait_for(&role("link", "Spring sale")).await;
    page.wait_for(&text("2 / 2")).await;
    page.assert_accessible().await;
    page.screenshot("campaigns").await;

    // The analytics dashboard's funnel: both recipients got at least as far as delivered.
    page.click(&role("link", "Analytics")).await;
    page.wait_for(&role("heading", "Campaigns")).await;
    page.wait_for(&role("link", "Spring sale")).await;
    let row = page
        .eval("[...document.querySelectorAll('#campaigns-table tbody td')].map(c => c.dataset.label + '=' + c.textContent.trim()).join('|')")
        .await;
    assert!(
        row.as_str().is_some_and(
            |r| r.starts_with("Status=completed|Targeted=2|Sent=2|Delivered=2 (100%)|")
        ),
        "{row}"
    );
    page.eval("document.getElementById('campaigns-heading').scrollIntoView()")
        .await;
    page.assert_accessible().await;
    page.screenshot("analytics-campaigns").await;
    page.assert_clean().await;
}
