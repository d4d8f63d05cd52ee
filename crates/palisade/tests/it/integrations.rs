//! Store integrations (WooCommerce): an admin connects a shop (secret shown once) and sets its
//! rules; the shop's signed order webhooks create the customer's contact and the order on it,
//! idempotently on the delivery id, and a matching rule sends its template through the
//! simulator. Every refusal: bad, missing or tampered signatures and unknown ids (one answer,
//! nothing written, limited per address), roles, API keys, impersonation, another tenant's ids,
//! a suspended tenant.

use crate::support::{audit_count, raw, subscribe_webhook, whatsapp_fixture_with, WhatsAppFixture};
use base64::Engine;
use palisade_testkit::{spawn_app, Db, Resp, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

both!(
    an_integration_shows_its_secret_once_and_its_rules_are_validated,
    a_signed_order_creates_the_contact_and_the_order_and_a_replay_does_nothing,
    two_identical_deliveries_at_once_record_one_order_and_send_once,
    a_status_change_rule_sends_the_template_and_a_failed_send_is_recorded,
    refused_deliveries_answer_alike_and_write_nothing,
    only_the_tenants_admins_manage_integrations,
    a_suspended_tenant_refuses_deliveries,
    a_late_delivery_of_an_older_state_changes_nothing_and_sends_nothing,
);

/// base64(HMAC-SHA256(secret, body)), as WooCommerce signs its deliveries.
fn wc_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn order(id: u64, status: &str) -> Value {
    json!({
        "id": id, "number": id.to_string(), "status": status, "currency": "GBP",
        "total": "29.35",
        "billing": {
            "first_name": "Ana", "last_name": "Souza", "email": "Ana@Example.com",
            "phone": "07700 900456", "country": "GB",
        },
        "line_items": [
            {"name": "T-shirt", "quantity": 2, "total": "20.00"},
            {"name": "Mug", "quantity": 1, "total": "9.35"},
        ],
    })
}

/// Creates an integration as `token`; returns its id and secret.
async fn create(app: &TestApp, token: &str) -> (String, String) {
    let r = app
        .post(
            "/api/v1/integrations",
            Some(token),
            json!({"kind": "woocommerce", "name": "Shop"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Posts `body` to the integration's callback URL, signed with `secret` (unsigned if `None`).
async fn deliver(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
    topic: &str,
    delivery: &str,
    body: &[u8],
) -> Resp {
    let sig = secret.map(|s| wc_signature(s, body));
    let mut headers = vec![
        ("content-type", "application/json"),
        ("x-wc-webhook-topic", topic),
        ("x-wc-webhook-delivery-id", delivery),
        ("x-wc-webhook-source", "https://shop.example/"),
    ];
    if let Some(sig) = &sig {
        headers.push(("x-wc-webhook-signature", sig));
    }
    raw(
        app,
        Method::POST,
        &format!("/webhooks/integrations/{id}"),
        &headers,
        Some(body.to_vec()),
    )
    .await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.count_as_owner(sql).await.unwrap()
}

async fn contact_orders(app: &TestApp, token: &str, contact: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/contacts/{contact}/orders"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn the_contact(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/v1/contacts?q=%2B447700900456", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.body);
    list[0].clone()
}

async fn an_integration_shows_its_secret_once_and_its_rules_are_validated(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let created = app
        .post(
            "/api/v1/integrations",
            Some(t),
            json!({"kind": "woocommerce", "name": "My shop"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap();
    assert!(secret.len() >= 40, "{secret}");
    assert_eq!(created.body["kind"], "woocommerce");
    assert!(created.body["callback_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/webhooks/integrations/{id}")));
    assert_eq!(created.body["rules"], json!([]));
    // Never shown again, and never stored in clear.
    let path = format!("/api/v1/integrations/{id}");
    let got = app.get(&path, t).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body.get("secret").is_none(), "{}", got.body);
    let list = app.get("/api/v1/integrations", t).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(secret));
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) FROM integrations WHERE secret_ciphertext LIKE '%{secret}%'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE CAST(metadata AS TEXT) LIKE '%{secret}%' \
                 OR CAST(after AS TEXT) LIKE '%{secret}%'"
            )
        )
        .await,
        0
    );

    // Bad input: each problem named.
    for (body, field) in [
        (json!({"kind": "shopify", "name": "x"}), "kind"),
        (json!({"kind": "woocommerce", "name": ""}), "name"),
    ] {
        let r = app.post("/api/v1/integrations", Some(t), body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.body["error"]["fields"][field].is_array(), "{}", r.body);
    }
    let r = app
        .post(
            "/api/v1/integrations",
            Some(t),
            json!({"kind": "woocommerce", "name": "x", "extra": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let bad = app
        .patch(
            &path,
            t,
            json!({"rules": [
                {"on": "order.shipped", "template": {"name": "Bad Name", "language": "english"},
                 "parameters": [{"type": "literal"}, {"type": "contact_field", "field": "age"}]},
            ]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let messages: Vec<String> = bad.body["error"]["fields"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages.len(), 5, "{messages:?}");
    assert!(messages.iter().all(|m| m.starts_with("rule 0: ")));
    let r = app.patch(&path, t, json!({"rules": {"on": "x"}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app
        .patch(&path, t, json!({"connection_id": uuid::Uuid::now_v7()}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    let rules = json!([{
        "on": "order.status_changed", "status": "completed",
        "template": {"name": "order_confirmation", "language": "en_US"},
        "parameters": [
            {"type": "contact_field", "field": "name", "fallback": "there"},
            {"type": "order_field", "field": "number"},
        ],
    }]);
    let ok = app
        .patch(&path, t, json!({"name": "Main shop", "rules": rules}))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["name"], "Main shop");
    assert_eq!(
        ok.body["rules"][0]["template"]["name"],
        "order_confirmation"
    );
    assert_eq!(ok.body["rules"][0]["parameters"][1]["type"], "order_field");
    assert_eq!(app.get(&path, t).await.body, ok.body);

    // Rotation: a new secret, shown once; the old one no longer verifies.
    let rotated = app
        .post(&format!("{path}/rotate-secret"), Some(t), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let body = serde_json::to_vec(&order(1, "processing")).unwrap();
    let old = deliver(&app, &id, Some(secret), "order.created", "d1", &body).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.body);

    assert_eq!(audit_count(&app, "integration.created").await, 1);
    assert_eq!(audit_count(&app, "integration.updated").await, 1);
    assert_eq!(audit_count(&app, "integration.secret_rotated").await, 1);

    let r = app.delete(&path, t).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, "integration.deleted").await, 1);
    let r = deliver(&app, &id, Some(new_secret), "order.created", "d2", &body).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

async fn fixture(db: Db) -> WhatsAppFixture {
    whatsapp_fixture_with(db, |_| {}).await
}

/// The shop's notification template, `order_confirmation` (two body variables), which every
/// simulated WABA holds approved, synced as a business would before writing a rule that sends it.
async fn approved_confirmation(fx: &WhatsAppFixture) {
    fx.sync_templates().await;
    let r = fx
        .app
        .get(
            "/api/v1/whatsapp/templates?q=order_confirmation",
            &fx.owner.access_token,
        )
        .await;
    assert_eq!(
        r.body["data"][0]["name"], "order_confirmation",
        "{}",
        r.body
    );
    assert_eq!(r.body["data"][0]["status"], "APPROVED", "{}", r.body);
}

async fn a_signed_order_creates_the_contact_and_the_order_and_a_replay_does_nothing(db: Db) {
    let fx = fixture(db).await;
    let app = &fx.app;
    let t = &fx.owner.access_token;
    let (id, secret) = create(app, t).await;
    let body = serde_json::to_vec(&order(1001, "processing")).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.created", "5001", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["result"], "recorded");

    // The customer, normalised to E.164 from the national number and the billing country.
    let contact = the_contact(app, t).await;
    assert_eq!(contact["phone"], "+447700900456");
    assert_eq!(contact["name"], "Ana Souza");
    assert_eq!(contact["email"], "ana@example.com");
    // No consent implied.
    assert_eq!(contact["marketing_opt_in"], false, "{contact}");
    let cid = contact["id"].as_str().unwrap();
    let orders = contact_orders(app, t, cid).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["external_id"], "1001");
    assert_eq!(orders[0]["status"], "processing");
    assert_eq!(orders[0]["total"], "29.35");
    assert_eq!(orders[0]["currency"], "GBP");
    assert_eq!(orders[0]["line_summary"], "2 × T-shirt, 1 × Mug");
    assert_eq!(orders[0]["notification"], Value::Null);
    assert_eq!(audit_count(app, "integration.order_recorded").await, 1);
    // …and on the contact's page in the console, for every member (an agent here).
    let agent = app.add_user(&fx.owner, "agent@acme.example", "agent").await;
    let r =
        crate::console::signed_in_get(app, &agent.access_token, &format!("/contacts/{cid}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    for shown in [
        "<h2 id=\"orders-heading\">Orders</h2>",
        "Order 1001",
        "processing",
        "29.35 GBP",
        "2 × T-shirt, 1 × Mug",
    ] {
        assert!(html.contains(shown), "{shown} is not on the page:\n{html}");
    }

    // The same delivery again: answered, nothing done.
    let again = deliver(app, &id, Some(&secret), "order.created", "5001", &body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["result"], "replay");
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM integration_orders").await,
        1
    );
    assert_eq!(audit_count(app, "integration.order_recorded").await, 1);

    // An update of the same order (another delivery) updates it; a known contact keeps its
    // edited name.
    let r = app
        .patch(
            &format!("/api/v1/contacts/{cid}"),
            t,
            json!({"name": "Ana S."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut updated = order(1001, "on-hold");
    updated["total"] = json!("31.00");
    let body = serde_json::to_vec(&updated).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.updated", "5002", &body).await;
    assert_eq!(r.body["result"], "recorded", "{}", r.body);
    let orders = contact_orders(app, t, cid).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["status"], "on-hold");
    assert_eq!(orders[0]["total"], "31.00");
    assert_eq!(the_contact(app, t).await["name"], "Ana S.");
    assert_eq!(count(app, "SELECT COUNT(*) FROM contacts").await, 1);

    // Other topics are answered and ignored; a signed body that is not an order is a 400.
    let r = deliver(app, &id, Some(&secret), "product.created", "5003", b"{}").await;
    assert_eq!(r.body["result"], "ignored", "{}", r.body);
    let r = deliver(
        app,
        &id,
        Some(&secret),
        "order.created",
        "5004",
        b"not json",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "invalid_body");
    let r = deliver(app, &id, Some(&secret), "order.created", "", &body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // An order without a usable phone is recorded without a contact.
    let mut no_phone = order(1002, "pending");
    no_phone["billing"]["phone"] = json!("");
    let body = serde_json::to_vec(&no_phone).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.created", "5005", &body).await;
    assert_eq!(r.body["result"], "recorded", "{}", r.body);
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM integration_orders WHERE contact_id IS NULL"
        )
        .await,
        1
    );

    // Erasing the contact erases its orders.
    let r = app.delete(&format!("/api/v1/contacts/{cid}"), t).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM integration_orders").await,
        1
    );
}

async fn set_rules(app: &TestApp, t: &str, id: &str, rules: Value) {
    let r = app
        .patch(
            &format!("/api/v1/integrations/{id}"),
            t,
            json!({ "rules": rules }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

fn confirmation_rule(on: &str, status: Option<&str>) -> Value {
    json!({
        "on": on, "status": status,
        "template": {"name": "order_confirmation", "language": "en_US"},
        "parameters": [
            {"type": "contact_field", "field": "name", "fallback": "there"},
            {"type": "order_field", "field": "number"},
        ],
    })
}

/// Runs the sender until the simulator has `n` outbound messages; returns them.
async fn sent(fx: &WhatsAppFixture, n: usize) -> Vec<Value> {
    let mut list = Vec::new();
    for _ in 0..200 {
        palisade_core::whatsapp::outbound::send_pending(&fx.app.services)
            .await
            .unwrap();
        list = fx
            .app
            .client
            .get(format!(
                "{}/_sim/phone-numbers/{}/outbound",
                fx.sim, fx.phone_number_id
            ))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} sent messages, the simulator has {list:?}");
}

async fn two_identical_deliveries_at_once_record_one_order_and_send_once(db: Db) {
    let fx = fixture(db).await;
    approved_confirmation(&fx).await;
    let app = &fx.app;
    let t = &fx.owner.access_token;
    let (id, secret) = create(app, t).await;
    set_rules(
        app,
        t,
        &id,
        json!([confirmation_rule("order.created", None)]),
    )
    .await;
    let body = serde_json::to_vec(&order(2001, "processing")).unwrap();
    let (a, b) = tokio::join!(
        deliver(app, &id, Some(&secret), "order.created", "7001", &body),
        deliver(app, &id, Some(&secret), "order.created", "7001", &body),
    );
    let mut results = [
        a.body["result"].as_str().unwrap_or_default().to_owned(),
        b.body["result"].as_str().unwrap_or_default().to_owned(),
    ];
    results.sort();
    assert_eq!(results, ["recorded", "replay"], "{} {}", a.body, b.body);
    // And the same order by two different deliveries at once (created and updated): one order.
    let (c, d) = tokio::join!(
        deliver(app, &id, Some(&secret), "order.created", "7002", &body),
        deliver(app, &id, Some(&secret), "order.updated", "7003", &body),
    );
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM integration_orders").await,
        1
    );
    assert_eq!(count(app, "SELECT COUNT(*) FROM contacts").await, 1);
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound'"
        )
        .await,
        1
    );
    let out = sent(&fx, 1).await;
    assert_eq!(out.len(), 1, "{out:?}");
}

async fn a_status_change_rule_sends_the_template_and_a_failed_send_is_recorded(db: Db) {
    let fx = fixture(db).await;
    approved_confirmation(&fx).await;
    let app = &fx.app;
    let t = &fx.owner.access_token;
    let (id, secret) = create(app, t).await;
    set_rules(
        app,
        t,
        &id,
        json!([confirmation_rule("order.status_changed", Some("completed"))]),
    )
    .await;
    let created = serde_json::to_vec(&order(3001, "processing")).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.created", "8001", &created).await;
    assert_eq!(r.body["result"], "recorded", "{}", r.body);
    // Another status than the rule's: nothing sent.
    let held = serde_json::to_vec(&order(3001, "on-hold")).unwrap();
    deliver(app, &id, Some(&secret), "order.updated", "8002", &held).await;
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound'"
        )
        .await,
        0
    );
    let done = serde_json::to_vec(&order(3001, "completed")).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.updated", "8003", &done).await;
    assert_eq!(r.body["result"], "recorded", "{}", r.body);
    let contact = the_contact(app, t).await;
    let orders = contact_orders(app, t, contact["id"].as_str().unwrap()).await;
    assert_eq!(orders[0]["status"], "completed");
    assert_eq!(orders[0]["notification"], "queued", "{}", orders[0]);
    assert!(orders[0]["message_id"].is_string());
    let out = sent(&fx, 1).await;
    assert_eq!(out[0]["type"], "template");
    assert_eq!(out[0]["to"], "447700900456", "{}", out[0]);
    let template = &out[0]["body"]["template"];
    assert_eq!(template["name"], "order_confirmation", "{}", out[0]);
    assert_eq!(
        template["components"][0]["parameters"],
        json!([{"type": "text", "text": "Ana Souza"}, {"type": "text", "text": "3001"}]),
        "{}",
        out[0]
    );
    // The same status again: no second send.
    let r = deliver(app, &id, Some(&secret), "order.updated", "8004", &done).await;
    assert_eq!(r.body["result"], "recorded");
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound'"
        )
        .await,
        1
    );

    // A rule whose parameter has no value: the failure is on the order, the shop gets 200.
    set_rules(
        app,
        t,
        &id,
        json!([{
            "on": "order.created",
            "template": {"name": "order_confirmation", "language": "en_US"},
            "parameters": [
                {"type": "contact_field", "field": "custom_attributes.loyalty_id"},
                {"type": "order_field", "field": "number"},
            ],
        }]),
    )
    .await;
    let body = serde_json::to_vec(&order(3002, "processing")).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.created", "8005", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let orders = contact_orders(app, t, contact["id"].as_str().unwrap()).await;
    let failed = orders.iter().find(|o| o["external_id"] == "3002").unwrap();
    assert_eq!(failed["notification"], "failed", "{failed}");
    assert!(failed["notification_error"]
        .as_str()
        .unwrap()
        .contains("custom_attributes.loyalty_id"));
    // A rule naming a template that is not approved here: refused before any Graph call,
    // recorded on the order, and the shop still gets 200.
    set_rules(
        app,
        t,
        &id,
        json!([{
            "on": "order.created",
            "template": {"name": "order_shipped", "language": "en_US"},
            "parameters": [],
        }]),
    )
    .await;
    let body = serde_json::to_vec(&order(3004, "processing")).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.created", "8007", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let orders = contact_orders(app, t, contact["id"].as_str().unwrap()).await;
    let unknown = orders.iter().find(|o| o["external_id"] == "3004").unwrap();
    assert_eq!(unknown["notification"], "failed", "{unknown}");
    assert!(
        unknown["notification_error"]
            .as_str()
            .unwrap()
            .contains("order_shipped"),
        "{unknown}"
    );
    // A contact who opted out is skipped.
    let r = app
        .patch(
            &format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap()),
            t,
            json!({"marketing_opt_in": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["opted_out"], true, "{}", r.body);
    set_rules(
        app,
        t,
        &id,
        json!([confirmation_rule("order.created", None)]),
    )
    .await;
    let body = serde_json::to_vec(&order(3003, "processing")).unwrap();
    let r = deliver(app, &id, Some(&secret), "order.created", "8006", &body).await;
    assert_eq!(r.body["result"], "recorded", "{}", r.body);
    let orders = contact_orders(app, t, contact["id"].as_str().unwrap()).await;
    let skipped = orders.iter().find(|o| o["external_id"] == "3003").unwrap();
    assert_eq!(skipped["notification"], "skipped", "{skipped}");
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound'"
        )
        .await,
        1
    );
}

async fn refused_deliveries_answer_alike_and_write_nothing(db: Db) {
    let fx = whatsapp_fixture_with(db, |c| c.rate_limit_webhook_failures_per_minute = 6).await;
    let app = &fx.app;
    let t = &fx.owner.access_token;
    let (id, secret) = create(app, t).await;
    let audit_before = count(app, "SELECT COUNT(*) FROM audit_log").await;

    // WooCommerce's ping on creation: unsigned, form-encoded, answered 200 without effect.
    let ping = raw(
        app,
        Method::POST,
        &format!("/webhooks/integrations/{id}"),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(b"webhook_id=17".to_vec()),
    )
    .await;
    assert_eq!(ping.status, StatusCode::OK, "{}", ping.body);
    assert_eq!(ping.body["result"], "ping");

    let body = serde_json::to_vec(&order(4001, "processing")).unwrap();
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let unknown = uuid::Uuid::now_v7().to_string();
    let refusals = [
        deliver(app, &id, None, "order.created", "9001", &body).await,
        deliver(
            app,
            &id,
            Some("not the secret"),
            "order.created",
            "9002",
            &body,
        )
        .await,
        {
            // Signed over the original body, sent with a changed one.
            let sig = wc_signature(&secret, &body);
            raw(
                app,
                Method::POST,
                &format!("/webhooks/integrations/{id}"),
                &[
                    ("x-wc-webhook-topic", "order.created"),
                    ("x-wc-webhook-delivery-id", "9003"),
                    ("x-wc-webhook-signature", &sig),
                ],
                Some(tampered),
            )
            .await
        },
        deliver(app, &unknown, Some(&secret), "order.created", "9004", &body).await,
    ];
    for r in &refusals {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "signature_invalid");
        assert_eq!(
            r.body["error"]["message"],
            refusals[0].body["error"]["message"]
        );
    }
    // A flood of refusals is limited per address and writes nothing.
    let mut limited = false;
    for i in 0..10 {
        let r = deliver(
            app,
            &id,
            Some("wrong"),
            "order.created",
            &format!("f{i}"),
            &body,
        )
        .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "refusals were never limited");
    // A correctly signed delivery is still accepted from that address.
    let r = deliver(app, &id, Some(&secret), "order.created", "9005", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM integration_deliveries").await,
        1
    );
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM integration_orders").await,
        1
    );
    // The only audit record since is the accepted delivery's.
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM audit_log").await,
        audit_before + 1
    );
    // An oversized body is refused before it is read.
    let big = vec![b' '; 2 * 1024 * 1024];
    let r = deliver(app, &id, Some(&secret), "order.created", "9006", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn only_the_tenants_admins_manage_integrations(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let (id, _) = create(&app, t).await;
    let path = format!("/api/v1/integrations/{id}");

    let r = app.get("/api/v1/integrations", "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let a = &agent.access_token;
    assert_eq!(
        app.get("/api/v1/integrations", a).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get(&path, a).await.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/integrations",
            Some(a),
            json!({"kind": "woocommerce", "name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.patch(&path, a, json!({"name": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&path, a).await.status, StatusCode::FORBIDDEN);

    // API keys never manage integrations, whatever their scopes.
    let k = app
        .post(
            "/api/v1/api-keys",
            Some(t),
            json!({"name": "k", "scopes": ["full_access"]}),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
    let key = k.body["key"].as_str().unwrap();
    let r = app.get("/api/v1/integrations", key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "api_key_not_allowed");

    // Impersonation, read-only or not, never sees or changes them (they hold a secret).
    let root = app.super_admin("root@platform.example").await;
    for write in [false, true] {
        let imp = app
            .post(
                &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
                Some(&root.access_token),
                json!({"reason": "ticket #7", "write": write}),
            )
            .await;
        assert_eq!(imp.status, StatusCode::CREATED, "{}", imp.body);
        let it = imp.body["access_token"].as_str().unwrap();
        let r = app.get(&path, it).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let r = app.patch(&path, it, json!({"name": "x"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }

    // Another tenant's admin: 404, never the row.
    let other = app.register("Globex", "owner@globex.example").await;
    let o = &other.access_token;
    assert_eq!(app.get(&path, o).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.patch(&path, o, json!({"name": "x"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("{path}/rotate-secret"), Some(o), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.delete(&path, o).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/v1/integrations", o).await.body["data"],
        json!([])
    );
    let c = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+447700900999"}),
        )
        .await;
    let cid = c.body["id"].as_str().unwrap();
    let r = app.get(&format!("/api/v1/contacts/{cid}/orders"), o).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Agents read a contact's orders.
    let r = app.get(&format!("/api/v1/contacts/{cid}/orders"), a).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.get(&path, t).await.status, StatusCode::OK);
}

async fn a_suspended_tenant_refuses_deliveries(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, secret) = create(&app, &owner.access_token).await;
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "unpaid invoices"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let body = serde_json::to_vec(&order(5001, "processing")).unwrap();
    let r = deliver(&app, &id, Some(&secret), "order.created", "1", &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "tenant_suspended");
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM integration_orders").await,
        0
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM contacts").await, 0);
    // Reactivated, the shop's retry is recorded.
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/reactivate", owner.tenant_id),
            Some(&root.access_token),
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let mut recorded = false;
    for _ in 0..50 {
        let r = deliver(&app, &id, Some(&secret), "order.created", "1", &body).await;
        if r.status == StatusCode::OK {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recorded);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM integration_orders").await,
        1
    );
}

/// WooCommerce retries a failed delivery later, and two updates of one order can race: a
/// delivery describing the order as of an older `date_modified_gmt` than the stored one must
/// neither put the older status back nor send that status's template. Each applied delivery
/// reaches the tenant's webhooks as `order.created` / `order.updated`; a stale one or a replay
/// does not.
async fn a_late_delivery_of_an_older_state_changes_nothing_and_sends_nothing(db: Db) {
    let fx = whatsapp_fixture_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    approved_confirmation(&fx).await;
    let app = &fx.app;
    let t = &fx.owner.access_token;
    subscribe_webhook(app, t, "order.*").await;
    let (id, secret) = create(app, t).await;
    set_rules(
        app,
        t,
        &id,
        json!([confirmation_rule(
            "order.status_changed",
            Some("processing")
        )]),
    )
    .await;
    let at = |status: &str, modified: &str| {
        let mut o = order(3001, status);
        o["date_modified_gmt"] = json!(modified);
        serde_json::to_vec(&o).unwrap()
    };
    let send = |topic: &'static str, delivery: &'static str, body: Vec<u8>| {
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let r = deliver(app, &id, Some(&secret), topic, delivery, &body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["result"].as_str().unwrap().to_owned()
        }
    };
    let pending = at("pending", "2026-12-06T10:00:00");
    assert_eq!(send("order.created", "9001", pending).await, "recorded");
    let completed = at("completed", "2026-12-06T10:05:00");
    assert_eq!(send("order.updated", "9003", completed).await, "recorded");
    // The processing update (10:02) arrives last: older than what is stored.
    let processing = at("processing", "2026-12-06T10:02:00");
    assert_eq!(send("order.updated", "9002", processing).await, "stale");

    let contact = the_contact(app, t).await;
    let orders = contact_orders(app, t, contact["id"].as_str().unwrap()).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["status"], "completed", "{}", orders[0]);
    assert_eq!(orders[0]["shop_modified_at"], "2026-12-06T10:05:00Z");
    // The rule for `processing` did not fire on the stale delivery.
    assert_eq!(orders[0]["notification"], Value::Null, "{}", orders[0]);
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound'"
        )
        .await,
        0
    );
    assert_eq!(audit_count(app, "integration.order_stale").await, 1);
    assert_eq!(audit_count(app, "integration.order_recorded").await, 2);

    // A newer delivery in the same second as the stored one still applies (the shop's clock
    // has whole seconds), and one without a time cannot be compared, so it applies too.
    let refunded = at("refunded", "2026-12-06T10:05:00");
    assert_eq!(send("order.updated", "9004", refunded).await, "recorded");
    let untimed = serde_json::to_vec(&order(3001, "processing")).unwrap();
    assert_eq!(send("order.updated", "9005", untimed).await, "recorded");
    let orders = contact_orders(app, t, contact["id"].as_str().unwrap()).await;
    assert_eq!(orders[0]["status"], "processing");
    assert_eq!(orders[0]["notification"], "queued", "{}", orders[0]);
    // The stored time stays the newest the shop gave.
    assert_eq!(orders[0]["shop_modified_at"], "2026-12-06T10:05:00Z");
    // A replay changes nothing and tells nobody.
    let again = at("completed", "2026-12-06T10:05:00");
    assert_eq!(send("order.updated", "9003", again).await, "replay");

    for (event, n) in [("order.created", 1), ("order.updated", 3)] {
        let sql = format!("SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = '{event}'");
        assert_eq!(count(app, &sql).await, n, "{event}");
    }
    let sql = "SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = 'order.updated'
               AND CAST(payload AS TEXT) LIKE '%refunded%'";
    assert_eq!(count(app, sql).await, 1);
}
