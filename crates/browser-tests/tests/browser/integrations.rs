//! Store integrations as an admin sets one up: connect a WooCommerce shop from the settings
//! navigation, copy the delivery URL and the secret shown once (a reload shows it no more),
//! add a rule that sends the approved `order_confirmation` template, rotate the secret (a new
//! one shown once), remove the rule and delete the shop; an agent gets the `403` page and no
//! link. A signed order delivery shows on its customer's contact page. Screenshots:
//! `integrations` (a shop with a rule) and `contact-orders` at both sizes.

use crate::analytics::{sign_in, tenant_with_number};
use crate::harness::{label, role, text, Db, Page, Server};
use serde_json::json;

crate::both!(an_admin_connects_a_shop_adds_a_rule_rotates_and_deletes);

async fn secret(page: &Page, id: &str) -> String {
    page.eval(&format!(
        "document.querySelector('{id}').textContent.trim()"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn an_admin_connects_a_shop_adds_a_rule_rotates_and_deletes(db: Db) {
    let server = Server::start(db).await;
    let (token, _, connection) = tenant_with_number(&server).await;
    // The templates a rule may send: every simulated WABA holds `order_confirmation` approved.
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/whatsapp/templates/sync"))
        .bearer_auth(&token)
        .json(&json!({ "connection_id": connection }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let page = Page::open(&server).await;
    sign_in(&page, "ana@acme.example").await;
    page.click(&role("link", "Settings")).await;
    page.click(&role("link", "Integrations")).await;
    page.wait_for_path("/settings/integrations").await;
    page.wait_for(&text("No shops connected yet")).await;

    page.fill(&label("Shop name"), "Acme Store").await;
    page.click(&role("button", "Connect shop")).await;
    page.wait_for(&text("Copy the secret now: it is shown only once."))
        .await;
    let first = secret(&page, "#new-integration-secret").await;
    assert!(first.starts_with("wcs_"), "{first}");
    let url = secret(&page, "#new-integration-url").await;
    assert!(url.contains("/webhooks/integrations/"), "{url}");
    page.assert_accessible().await;

    // Shown once: the list has the shop and its URL, never the secret.
    page.click(&role("link", "Done: show the list")).await;
    page.wait_for(&role("heading", "Acme Store")).await;
    let body = page.body_text().await;
    assert!(body.contains(&url), "the delivery URL stays");
    assert!(!body.contains(&first), "the secret is gone");
    assert!(!page
        .eval("document.documentElement.outerHTML")
        .await
        .as_str()
        .unwrap()
        .contains(&first));

    // A rule: when an order is completed, send order_confirmation with the contact's name and
    // the order number.
    page.click(&text("Add a rule to Acme Store")).await;
    page.fill(&label("When"), "An order's status changes").await;
    page.fill(&label("Status (optional)"), "completed").await;
    page.fill(&label("Template"), "order_confirmation (en_US)")
        .await;
    page.click(&label("Parameters")).await;
    page.type_text("contact.name | there").await;
    page.press("Enter").await;
    page.type_text("order.number").await;
    page.click(&role("button", "Add rule")).await;
    page.wait_for(&text(
        "When an order's status changes to completed, send order_confirmation (en_US) with {{1}} the contact's name (or “there”), {{2}} the order's number",
    ))
    .await;
    let stored = reqwest::Client::new()
        .get(server.url("/api/v1/integrations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        stored["data"][0]["rules"][0]["parameters"],
        json!([{"type": "contact_field", "field": "name", "fallback": "there"},
               {"type": "order_field", "field": "number"}])
    );
    page.assert_accessible().await;
    page.screenshot("integrations").await;

    // Rotate: asked first, then the new secret once.
    page.click(&role("button", "Rotate secret")).await;
    page.click(&role("button", "Rotate")).await;
    page.wait_for(&text("Copy the new secret now")).await;
    let id = stored["data"][0]["id"].as_str().unwrap();
    let second = secret(&page, &format!("#secret-value-{id}")).await;
    assert!(second.starts_with("wcs_") && second != first, "{second}");

    // The shop delivers an order signed with the new secret: its customer becomes a contact
    // and the order shows on the contact's page.
    let order = serde_json::to_vec(&json!({
        "id": 1001, "number": "1001", "status": "processing", "currency": "GBP",
        "total": "29.35",
        "billing": {"first_name": "Cara", "last_name": "Lima", "phone": "07700 900456",
                    "country": "GB"},
        "line_items": [{"name": "T-shirt", "quantity": 2, "total": "20.00"},
                       {"name": "Mug", "quantity": 1, "total": "9.35"}],
    }))
    .unwrap();
    let signature = {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(second.as_bytes()).unwrap();
        mac.update(&order);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("x-wc-webhook-topic", "order.created")
        .header("x-wc-webhook-delivery-id", "9001")
        .header("x-wc-webhook-signature", signature)
        .body(order)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    page.click(&role("link", "Contacts")).await;
    page.click(&role("link", "Cara Lima")).await;
    page.wait_for(&role("heading", "Orders")).await;
    page.wait_for(&text("Order 1001")).await;
    page.wait_for(&text("29.35 GBP")).await;
    page.assert_accessible().await;
    page.screenshot("contact-orders").await;

    // Remove the rule, then delete the shop.
    page.goto("/settings/integrations").await;
    page.click(&role("button", "Remove rule 1 of Acme Store"))
        .await;
    page.click(&role("button", "Remove")).await;
    page.wait_for(&text("No rules: orders are recorded")).await;
    page.click(&role("button", "Delete Acme Store")).await;
    page.click(&role("button", "Delete")).await;
    page.wait_for(&text("No shops connected yet")).await;
    page.assert_clean().await;

    // An agent: no link, and the page is refused.
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(
            &json!({"email": "bruno@acme.example", "name": "Bruno Costa", "role": "agent",
            "password": "correct-orbit-lantern-quietly"}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let agent = Page::open(&server).await;
    sign_in(&agent, "bruno@acme.example").await;
    agent.goto("/settings/profile").await;
    agent.wait_for(&role("heading", "Profile")).await;
    assert!(!agent.is_visible(&role("link", "Integrations")).await);
    agent.goto("/settings/integrations").await;
    agent.wait_for(&text("You can't open this page")).await;
    agent.take_problems().await;
}
