//! The whole first day, through the pages only, as the issue tells it: register, verify the
//! address with the mailed code, connect a (simulated) WhatsApp number and paste its callback
//! URL and verify token where Meta's dashboard would take them (the simulator's subscribe call),
//! then a customer's message arrives live in the open inbox, the owner replies and watches the
//! reply reach "read".

use crate::harness::{css, label, role, steps, text, Db, Page, Server};
use serde_json::{json, Value};

crate::both!(register_verify_connect_receive_reply_and_see_it_read);

async fn sim_post(server: &Server, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", server.sim_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status}: {body}");
    body
}

/// What the page shows in an element, by id.
async fn shown(page: &Page, id: &str) -> String {
    page.eval(&format!(
        "document.getElementById('{id}').textContent.trim()"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn register_verify_connect_receive_reply_and_see_it_read(db: Db) {
    let server = Server::start(db).await;
    let page = Page::open(&server).await;

    // Register and verify the address.
    page.goto("/").await;
    page.wait_for_path("/login").await;
    steps::register_and_verify(&server, &page).await;

    // Connect the number Meta (the simulator) gave the business.
    let number = sim_post(
        &server,
        "/_sim/phone-numbers",
        json!({"display_phone_number": "+1 555 0100", "verified_name": "Acme Support"}),
    )
    .await;
    steps::connect_number(&page, &number).await;
    page.wait_for(&text("Paste these into Meta's dashboard"))
        .await;
    let callback_url = shown(&page, "new-callback-url").await;
    let verify_token = shown(&page, "new-verify-token").await;
    assert!(
        callback_url.starts_with(&server.url("/webhooks/whatsapp/")),
        "{callback_url}"
    );
    assert!(!verify_token.is_empty(), "the verify token is shown");
    // "Meta's dashboard": the simulator verifies the callback with the token, as Meta does.
    let pid = number["phone_number_id"].as_str().unwrap().to_owned();
    sim_post(
        &server,
        &format!("/_sim/phone-numbers/{pid}/subscribe"),
        json!({"callback_url": callback_url, "verify_token": verify_token}),
    )
    .await;

    // A customer writes; the open inbox shows it without a reload.
    page.goto("/inbox").await;
    page.wait_for(&text("No conversations yet")).await;
    page.wait_for(&css("[data-live-status][data-state=\"live\"]"))
        .await;
    sim_post(
        &server,
        "/_sim/inbound",
        json!({"phone_number_id": pid, "from": "5511987654321", "profile_name": "Carla Mendes",
            "type": "text", "text": {"body": "Hi! Do you deliver on Sundays?"}}),
    )
    .await;
    page.wait_for(&text("Carla Mendes")).await;

    // Reply, and watch it reach "read".
    page.click(&text("Carla Mendes")).await;
    page.wait_for(&text("Hi! Do you deliver on Sundays?")).await;
    page.fill(&label("Message"), "We do, from 9 to 1.").await;
    page.click(&role("button", "Send")).await;
    page.wait_for(&text("We do, from 9 to 1.")).await;
    page.wait_for(&css(".msg-outbound .status-read")).await;
    page.assert_clean().await;
}
