//! Contacts: created and edited through the API with every input rule enforced, erased with
//! their conversations, exported by admins, and opted out by an inbound STOP.
//!
//! One file per topic, so `cargo test contacts::` still runs them all and
//! `cargo test contacts::export::` only the exports; this file holds what they share: creating
//! a contact and a key, a customer writing through the simulator, an endpoint that keeps its
//! deliveries queued, and reading a CSV line.

mod access;
mod api;
mod events;
mod export;
mod inbound;

use palisade_testkit::{Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/v1/contacts", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn key(app: &TestApp, owner: &Session, scopes: Value) -> String {
    let k = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
    k.body["key"].as_str().unwrap().to_owned()
}

fn ids(r: &Value) -> Vec<String> {
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends a text from `from` through the simulator and waits until it is stored.
async fn customer_says(s: &crate::support::WhatsAppFixture, from: &str, text: &str) {
    customer_sends(s, from, json!({"type": "text", "text": {"body": text}})).await;
}

/// Sends a message (`{type, <type>: {…}}`) from `from` through the simulator and waits until it
/// is stored.
async fn customer_sends(s: &crate::support::WhatsAppFixture, from: &str, message: Value) {
    let text = message.to_string();
    let mut req = json!({
        "phone_number_id": s.phone_number_id, "from": from, "profile_name": "Customer",
    });
    for (k, v) in message.as_object().unwrap() {
        req[k] = v.clone();
    }
    let r = s
        .app
        .client
        .post(format!("{}/_sim/inbound", s.sim))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let wamid = r.json::<Value>().await.unwrap()["wamid"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..400 {
        palisade_core::whatsapp::inbound::process_pending(&s.app.services)
            .await
            .unwrap();
        let stored = s
            .app
            .db
            .count_as_owner(&format!(
                "SELECT COUNT(*) FROM messages WHERE wamid = '{wamid}'"
            ))
            .await
            .unwrap();
        let pending = s
            .app
            .db
            .count_as_owner(
                "SELECT COUNT(*) FROM whatsapp_inbound_events WHERE processed_at IS NULL",
            )
            .await
            .unwrap();
        if stored == 1 && pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the customer's message {text:?} never arrived");
}

async fn contact_by_phone(s: &crate::support::WhatsAppFixture, phone: &str) -> Value {
    let r = s
        .app
        .get(
            &format!("/api/v1/contacts?q={}", phone.trim_start_matches('+')),
            &s.owner.access_token,
        )
        .await;
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.body);
    list[0].clone()
}

/// Deliveries of `event` queued whose payload mentions `text`.
async fn queued(app: &TestApp, event: &str, text: &str) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = '{event}'
             AND CAST(payload AS TEXT) LIKE '%{text}%'"
        ))
        .await
        .unwrap()
}

/// The fields of one CSV line (every field quoted, `""` for a quote inside).
pub(crate) fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}
