//! Contact events and the one view: `contact.*` events queued with the change, a contact an
//! inbound message creates announced once, and the same JSON in the API, events and exports.

use super::{contact_by_phone, create, csv_fields, customer_says, queued};
use crate::support::subscribe_webhook;
use palisade_testkit::{spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    contact_events_are_queued_with_the_change,
    a_contact_an_inbound_message_creates_is_announced_once,
    a_contact_is_the_same_in_the_api_events_and_exports,
);

async fn contact_events_are_queued_with_the_change(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let wid = subscribe_webhook(&app, t, "contact.*").await;
    let c = create(&app, t, json!({"phone": "+447700900123", "name": "Ana"})).await;
    let path = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
    app.patch(&path, t, json!({"tags": ["vip"]})).await;
    // A refused change queues nothing.
    app.patch(&path, t, json!({"email": "bad"})).await;
    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    let d = app
        .get(&format!("/api/v1/webhooks/{wid}/deliveries"), t)
        .await;
    let mut types: Vec<String> = d.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["event_type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["contact.created", "contact.deleted", "contact.updated"]
    );
    for event in ["contact.created", "contact.updated", "contact.deleted"] {
        assert_eq!(queued(&app, event, "+447700900123").await, 1, "{event}");
    }
}

/// A customer who writes first becomes a contact, announced with `contact.created` in the
/// processing transaction; their next messages, and a customer the tenant created through the
/// API before they wrote, announce nothing more.
async fn a_contact_an_inbound_message_creates_is_announced_once(db: Db) {
    let s = crate::support::whatsapp_fixture_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let t = &s.owner.access_token;
    let wid = subscribe_webhook(&s.app, t, "contact.created").await;
    let announced = |phone: &'static str| queued(&s.app, "contact.created", phone);
    customer_says(&s, "447700900123", "Hello").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(announced("+447700900123").await, 1);
    let d = s
        .app
        .get(&format!("/api/v1/webhooks/{wid}/deliveries"), t)
        .await;
    assert_eq!(
        d.body["data"][0]["event_type"], "contact.created",
        "{}",
        d.body
    );
    let payload = s
        .app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM webhook_deliveries
             WHERE CAST(payload AS TEXT) LIKE '%{}%' AND CAST(payload AS TEXT) LIKE '%Customer%'",
            c["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(
        payload, 1,
        "the event carries the contact with its profile name"
    );
    customer_says(&s, "447700900123", "Are you there?").await;
    assert_eq!(announced("+447700900123").await, 1);

    create(&s.app, t, json!({"phone": "+447700900555", "name": "Bo"})).await;
    assert_eq!(announced("+447700900555").await, 1);
    customer_says(&s, "447700900555", "Hi, Bo here").await;
    assert_eq!(announced("+447700900555").await, 1);
}

/// One contact is one JSON object wherever it leaves the server: the REST answers (create, get,
/// list, edit), the `contact.created` and `contact.updated` events' data and the JSON Lines
/// export are equal, and the CSV row has the same values column by column.
async fn a_contact_is_the_same_in_the_api_events_and_exports(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let wid = subscribe_webhook(&app, t, "contact.*").await;
    let created = create(
        &app,
        t,
        json!({"phone": "+447700900123", "name": "Ana Lima", "email": "ana@example.com",
               "tags": ["vip", "lead:hot"], "custom_attributes": {"plan": "gold", "seats": 3, "vip": true, "note": null},
               "marketing_opt_in": true}),
    )
    .await;
    let path = format!("/api/v1/contacts/{}", created["id"].as_str().unwrap());
    assert_eq!(app.get(&path, t).await.body, created);
    let updated = app
        .patch(
            &path,
            t,
            json!({"marketing_opt_in": false, "tags": ["vip"]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let updated = updated.body;
    assert_eq!(updated["opt_out_source"], "api");
    assert_eq!(app.get(&path, t).await.body, updated);
    assert_eq!(
        app.get("/api/v1/contacts", t).await.body["data"][0],
        updated
    );

    let d = app
        .get(&format!("/api/v1/webhooks/{wid}/deliveries"), t)
        .await;
    let event = |kind: &str| {
        d.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["event_type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {}", d.body))["payload"]["data"]
            .clone()
    };
    assert_eq!(event("contact.created"), created);
    assert_eq!(event("contact.updated"), updated);

    let export = |format: &str| {
        let app = &app;
        let url = app.url(&format!("/api/v1/contacts/export?format={format}"));
        async move {
            let r = app.client.get(url).bearer_auth(t).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let jsonl = export("jsonl").await;
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line, updated);

    let csv = export("csv").await;
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().unwrap());
    let row = csv_fields(lines.next().unwrap());
    assert_eq!(header.len(), row.len());
    for (column, value) in header.iter().zip(&row) {
        let want = match &updated[column.as_str()] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(tags) => tags
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        };
        assert_eq!(value, &want, "CSV column {column}");
    }
    assert_eq!(
        header.len(),
        updated.as_object().unwrap().len(),
        "every field is a column"
    );
}
