//! Data lifecycle: a suspended tenant's queued work (sends, media downloads, webhook
//! deliveries) pauses and resumes in order on reactivation; no media file outlives the erasure
//! of its contact, even mid-download; processed inbound webhook bodies are dropped after their
//! retention while redeliveries stay recognised. Workers are driven by calling them directly
//! (their background loops are off) and time moves with the manual clock.

use crate::support::meta_signature as sign;
use crate::support::{settle_inbound as settle, whatsapp_fixture_with, WhatsAppFixture};
use base64::Engine as _;
use palisade_testkit::{spawn_app_with, Db, Session, TestApp, GOOD_PASSWORD};

const ROOT: &str = "root@platform.example";
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

both!(
    a_suspended_tenants_queued_sends_wait_and_go_out_in_order_on_reactivation,
    a_suspended_tenants_media_downloads_wait_until_reactivation,
    a_suspended_tenants_webhook_deliveries_wait_and_the_pause_disables_nothing,
    a_contact_erased_while_its_media_downloads_leaves_no_file,
    processed_inbound_bodies_are_dropped_after_the_retention_and_duplicates_stay_recognised
);

// ---- helpers ----

/// The fixture with every background worker that a test drives by hand turned off.
async fn fixture(db: Db) -> WhatsAppFixture {
    let f = whatsapp_fixture_with(db, |c| {
        c.outbound_worker_interval_ms = 0;
        c.media_worker_interval_ms = 0;
    })
    .await;
    f.sim_config(json!({"auto_status": false})).await;
    f
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.count_as_owner(sql).await.unwrap()
}

/// The customer sends a message of `kind` through the simulator; waits until it is stored.
async fn customer_sends(f: &WhatsAppFixture, kind: &str, object: Value) {
    f.customer_message(kind, object).await;
    for _ in 0..200 {
        settle(&f.app).await;
        if count(
            &f.app,
            "SELECT COUNT(*) FROM messages WHERE direction = 'inbound'",
        )
        .await
            > 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the customer's message never arrived");
}

fn jpeg(len: usize) -> Vec<u8> {
    let mut v = vec![0xff, 0xd8, 0xff, 0xe0];
    v.extend((0..len.saturating_sub(4)).map(|i| (i * 31 % 251) as u8));
    v
}

fn image() -> Value {
    json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(jpeg(4_000))})
}

/// The files (and partial files) in the tenant's storage directory.
fn stored_files(f: &WhatsAppFixture) -> Vec<String> {
    let tenant = uuid::Uuid::parse_str(&f.owner.tenant_id).unwrap().simple();
    let dir = f.app.services.settings.storage_dir.join(tenant.to_string());
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Suspends or reactivates `tenant` as the platform's super admin (signed in afresh: the
/// clock may have moved past their last token).
async fn set_suspended(app: &TestApp, tenant: &str, suspended: bool) {
    let root = app.login(ROOT, GOOD_PASSWORD).await;
    let r = if suspended {
        app.post(
            &format!("/api/v1/admin/tenants/{tenant}/suspend"),
            Some(&root.access_token),
            json!({"reason": "unpaid invoices"}),
        )
        .await
    } else {
        app.post(
            &format!("/api/v1/admin/tenants/{tenant}/reactivate"),
            Some(&root.access_token),
            json!({}),
        )
        .await
    };
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn send_pending(app: &TestApp) -> usize {
    palisade_core::whatsapp::outbound::send_pending(&app.services)
        .await
        .unwrap()
}

async fn download_due(app: &TestApp) -> usize {
    palisade_core::whatsapp::media::download_due(&app.services)
        .await
        .unwrap()
}

async fn deliver_due(app: &TestApp) -> usize {
    palisade_core::webhooks::deliver_due(&app.services)
        .await
        .unwrap()
}

/// The texts the simulator received from the business, oldest first.
async fn sent_texts(f: &WhatsAppFixture) -> Vec<String> {
    let list: Value = f
        .app
        .client
        .get(format!(
            "{}/_sim/phone-numbers/{}/outbound",
            f.sim, f.phone_number_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["body"]["text"]["body"].as_str().unwrap_or("?").to_owned())
        .collect()
}

// ---- item 15: a suspended tenant's queued work ----

async fn a_suspended_tenants_queued_sends_wait_and_go_out_in_order_on_reactivation(db: Db) {
    let f = fixture(db).await;
    f.app.super_admin(ROOT).await;
    customer_sends(&f, "text", json!({"body": "Is my order ready?"})).await;
    let convs = f
        .app
        .get("/api/v1/conversations", &f.owner.access_token)
        .await;
    let conv = convs.body["data"][0]["id"].as_str().unwrap().to_owned();
    let texts = ["one", "two", "three"];
    for t in texts {
        let r = f
            .app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                Some(&f.owner.access_token),
                json!({"type": "text", "text": {"body": t}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    }

    set_suspended(&f.app, &f.owner.tenant_id, true).await;
    for _ in 0..3 {
        assert_eq!(
            send_pending(&f.app).await,
            0,
            "nothing is claimed while suspended"
        );
        f.app.clock.advance(time::Duration::minutes(5));
    }
    assert!(sent_texts(&f).await.is_empty());
    // Waiting, not failing: no attempt counted, no error, still queued.
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM whatsapp_outbound_queue WHERE attempts = 0 AND last_error IS NULL"
        )
        .await,
        3
    );
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM messages WHERE status = 'queued'"
        )
        .await,
        3
    );

    set_suspended(&f.app, &f.owner.tenant_id, false).await;
    assert_eq!(send_pending(&f.app).await, 3);
    assert_eq!(sent_texts(&f).await, texts, "every message, in order");
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM messages WHERE status = 'sent'"
        )
        .await,
        3
    );
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM whatsapp_outbound_queue").await,
        0
    );
}

async fn a_suspended_tenants_media_downloads_wait_until_reactivation(db: Db) {
    let f = fixture(db).await;
    f.app.super_admin(ROOT).await;
    customer_sends(&f, "image", image()).await;
    set_suspended(&f.app, &f.owner.tenant_id, true).await;
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM message_media WHERE status = 'pending'"
        )
        .await,
        1
    );
    for _ in 0..3 {
        assert_eq!(download_due(&f.app).await, 0);
        f.app.clock.advance(time::Duration::minutes(15));
    }
    assert!(stored_files(&f).is_empty(), "{:?}", stored_files(&f));
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM message_media WHERE status = 'pending' AND attempts = 0 AND error IS NULL"
        )
        .await,
        1
    );

    set_suspended(&f.app, &f.owner.tenant_id, false).await;
    assert_eq!(download_due(&f.app).await, 1);
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM message_media WHERE status = 'stored'"
        )
        .await,
        1
    );
    assert_eq!(stored_files(&f).len(), 1);
}

/// A local webhook receiver answering 200 unless told otherwise.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<String>>>,
    script: Arc<Mutex<std::collections::VecDeque<u16>>>,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let mut r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let state = state.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    state.got.lock().unwrap().push(id);
                    let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    axum::http::StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        r.url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        r
    }
    fn got(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }
    fn answer(&self, codes: &[u16]) {
        self.script.lock().unwrap().extend(codes);
    }
}

/// Queues a `webhook.test` delivery; returns its id (the `webhook-id` header).
async fn send_test(app: &TestApp, s: &Session, id: &str) -> String {
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&s.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn a_suspended_tenants_webhook_deliveries_wait_and_the_pause_disables_nothing(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let rx = Receiver::start().await;
    app.super_admin(ROOT).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = app
        .post(
            "/api/v1/webhooks",
            Some(&owner.access_token),
            json!({"url": rx.url, "events": ["webhook.test"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hook = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    let a = app
        .post(
            &format!("/api/v1/webhooks/{hook}/approve"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);

    // Queued while active, then the tenant is suspended: nothing goes out, nothing is counted.
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(send_test(&app, &owner, &hook).await);
    }
    set_suspended(&app, &owner.tenant_id, true).await;
    for _ in 0..3 {
        assert_eq!(deliver_due(&app).await, 0);
        app.clock.advance(time::Duration::minutes(10));
    }
    assert!(rx.got().is_empty(), "{:?}", rx.got());
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending' AND attempts = 0"
        )
        .await,
        3
    );
    set_suspended(&app, &owner.tenant_id, false).await;
    assert_eq!(deliver_due(&app).await, 3);
    assert_eq!(rx.got(), queued, "every delivery, in the order queued");

    // An endpoint failing when the tenant is suspended for two days is not disabled by the
    // first failure after reactivation: the pause is not failing time.
    let owner = app.login(&owner.email, &owner.password).await;
    rx.answer(&[503, 503]);
    let failing = send_test(&app, &owner, &hook).await;
    assert_eq!(deliver_due(&app).await, 1);
    set_suspended(&app, &owner.tenant_id, true).await;
    app.clock.advance(time::Duration::days(2));
    assert_eq!(deliver_due(&app).await, 0);
    set_suspended(&app, &owner.tenant_id, false).await;
    assert_eq!(deliver_due(&app).await, 1, "the retry is due");
    let owner = app.login(&owner.email, &owner.password).await;
    let w = app
        .get(&format!("/api/v1/webhooks/{hook}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "active", "{:?}", w.body);
    assert_eq!(w.body["consecutive_failures"], 2, "{:?}", w.body);
    // It recovers on the next attempt.
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(deliver_due(&app).await, 1);
    let got = rx.got();
    assert_eq!(got[3..], [failing.clone(), failing.clone(), failing]);
    let w = app
        .get(&format!("/api/v1/webhooks/{hook}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "active");
    assert_eq!(w.body["consecutive_failures"], 0);
}

// ---- item 16: no file outlives its erasure ----

async fn a_contact_erased_while_its_media_downloads_leaves_no_file(db: Db) {
    let f = fixture(db).await;
    // The simulator holds the download while the contact is erased.
    f.sim_config(json!({"media_hold_downloads": true})).await;
    customer_sends(&f, "image", image()).await;
    let worker = {
        let services = f.app.services.clone();
        tokio::spawn(async move { palisade_core::whatsapp::media::download_due(&services).await })
    };
    let mut waiting = false;
    for _ in 0..1000 {
        if f.sim_config(json!({})).await["media_downloads_waiting"] == 1 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting, "the download never reached the simulator");

    let contacts = f.app.get("/api/v1/contacts", &f.owner.access_token).await;
    let contact = contacts.body["data"][0]["id"].as_str().unwrap().to_owned();
    let r = f
        .app
        .delete(
            &format!("/api/v1/contacts/{contact}"),
            &f.owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // The download completes after the erasure committed: its file must not stay.
    f.sim_config(json!({"media_hold_downloads": false})).await;
    assert_eq!(worker.await.unwrap().unwrap(), 1);
    assert!(stored_files(&f).is_empty(), "{:?}", stored_files(&f));
    assert_eq!(count(&f.app, "SELECT COUNT(*) FROM message_media").await, 0);
}

// ---- item 18: inbound retention ----

/// A webhook body carrying one text message with `wamid`.
fn text_payload(f: &WhatsAppFixture, wamid: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": f.phone_number_id},
            "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": "447700900123"}],
            "messages": [{"from": "447700900123", "id": wamid, "timestamp": "1750000000",
                "type": "text", "text": {"body": format!("hello {wamid}")}}],
        }}]}]
    }))
    .unwrap()
}

async fn post_signed(f: &WhatsAppFixture, body: &[u8]) {
    let r = f
        .app
        .client
        .post(
            f.app
                .url(&format!("/webhooks/whatsapp/{}", f.connection_id)),
        )
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", sign(&f.app_secret, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    settle(&f.app).await;
}

async fn processed_inbound_bodies_are_dropped_after_the_retention_and_duplicates_stay_recognised(
    db: Db,
) {
    let f = fixture(db).await;
    assert_eq!(
        f.app.services.settings.inbound_retention_days, 7,
        "the default"
    );
    let old_a = text_payload(&f, "wamid.OLD_A");
    let old_b = text_payload(&f, "wamid.OLD_B");
    post_signed(&f, &old_a).await;
    post_signed(&f, &old_b).await;
    let prune = || palisade_core::whatsapp::retention::prune_inbound_bodies(&f.app.services);
    // Six days on, nothing is due yet.
    f.app.clock.advance(time::Duration::days(6));
    assert_eq!(prune().await.unwrap(), 0);
    f.app.clock.advance(time::Duration::days(2));
    // A recent event, and one of the old ones left unprocessed (as if its processing had
    // failed and waited for a retry).
    post_signed(&f, &text_payload(&f, "wamid.NEW")).await;
    f.app
        .db
        .execute_as_owner(
            "UPDATE whatsapp_inbound_events SET processed_at = NULL WHERE id =
                (SELECT id FROM whatsapp_inbound_events ORDER BY id LIMIT 1)",
        )
        .await
        .unwrap();
    let pruned = prune().await.unwrap();
    let bodies = |cond: &'static str| {
        let app = &f.app;
        async move {
            count(
                app,
                &format!("SELECT COUNT(*) FROM whatsapp_inbound_events WHERE {cond}"),
            )
            .await
        }
    };
    // The unprocessed one may have been processed again meanwhile (then it is recent): kept
    // either way. The old processed one is dropped; the recent one is kept.
    assert_eq!(pruned, 1);
    assert_eq!(
        bodies("body_pruned_at IS NOT NULL AND length(body) = 0").await,
        1
    );
    assert_eq!(
        bodies("body_pruned_at IS NULL AND length(body) > 0").await,
        2
    );
    assert_eq!(bodies("1 = 1").await, 3, "the rows stay");
    assert_eq!(prune().await.unwrap(), 0, "nothing left to drop");

    // Meta redelivers both old events byte for byte: still recognised, nothing duplicated.
    post_signed(&f, &old_a).await;
    post_signed(&f, &old_b).await;
    for wamid in ["wamid.OLD_A", "wamid.OLD_B", "wamid.NEW"] {
        assert_eq!(
            count(
                &f.app,
                &format!("SELECT COUNT(*) FROM messages WHERE wamid = '{wamid}'")
            )
            .await,
            1,
            "{wamid}"
        );
    }
}
