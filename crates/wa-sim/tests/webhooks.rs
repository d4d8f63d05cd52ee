//! Webhook emitter: subscription handshake, signed envelopes, statuses, batching, duplicates,
//! retries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use palisade_wa_sim::{signature_header, SimConfig};
use serde_json::{json, Value};

#[test]
fn signature_matches_reference_test_vector() {
    // Reference §1.2.
    assert_eq!(
        signature_header(
            "test_app_secret",
            br#"{"object":"whatsapp_business_account","entry":[]}"#
        ),
        "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756"
    );
}

#[tokio::test]
async fn subscribe_handshake_success_and_failures() {
    let env = start(SimConfig::testing()).await;
    let phone = env.phone().await;
    let receiver = receiver("my-verify-token").await;

    // Success: Meta's GET with hub.mode, hub.verify_token and a numeric hub.challenge.
    let (s, b) = env.subscribe(&phone, &receiver, "my-verify-token").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["verified"], true);
    let gets = receiver.state.gets.lock().unwrap().clone();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0]["hub.mode"], "subscribe");
    assert_eq!(gets[0]["hub.verify_token"], "my-verify-token");
    assert!(gets[0]["hub.challenge"].chars().all(|c| c.is_ascii_digit()));

    // Wrong verify token: the receiver answers 403 → 4xx with a clear message.
    let (s, b) = env.subscribe(&phone, &receiver, "wrong-token").await;
    assert!((400..500).contains(&s), "{s} {b}");
    assert!(b["error"].as_str().unwrap().contains("403"), "{b}");

    // 200 but not the challenge, and a JSON-quoted challenge: refused too.
    *receiver.state.challenge.lock().unwrap() = Challenge::Wrong;
    let (s, b) = env.subscribe(&phone, &receiver, "my-verify-token").await;
    assert!((400..500).contains(&s), "{s} {b}");
    assert!(b["error"].as_str().unwrap().contains("challenge"), "{b}");
    *receiver.state.challenge.lock().unwrap() = Challenge::JsonQuoted;
    let (s, _) = env.subscribe(&phone, &receiver, "my-verify-token").await;
    assert!((400..500).contains(&s));

    // Unreachable callback.
    let (s, b) = env
        .post(
            &format!("/_sim/phone-numbers/{}/subscribe", phone.id),
            json!({"callback_url": "http://127.0.0.1:9/webhook", "verify_token": "x"}),
        )
        .await;
    assert!((400..500).contains(&s), "{s} {b}");

    // The first (successful) subscription still holds: webhooks arrive.
    env.inbound(&phone, "16505551234", "still there?").await;
    receiver.wait_posts(1).await;
}

#[tokio::test]
async fn inbound_message_is_a_signed_meta_envelope() {
    let env = start(SimConfig::testing()).await;
    let (phone, receiver) = env.subscribed_phone().await;

    let original = env
        .inbound(&phone, "16505551234", "Does it come in another color?")
        .await;
    let (s, b) = env
        .post(
            "/_sim/inbound",
            json!({"phone_number_id": phone.id, "from": "16505551234", "type": "interactive",
                   "interactive": {"type": "button_reply", "button_reply": {"id": "cancel-button", "title": "Cancel"}},
                   "context": {"id": "wamid.ours"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let posts = receiver.wait_posts(2).await;

    for post in &posts {
        assert!(
            verify_signature(&phone.secret, post),
            "signature must verify over the raw body"
        );
        assert!(!verify_signature("some-other-secret", post));
        assert_eq!(post.headers["content-type"], "application/json");
    }
    let first = posts
        .iter()
        .map(Received::json)
        .find(|v| v["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == original.as_str())
        .unwrap();
    assert_eq!(first["object"], "whatsapp_business_account");
    let entry = &first["entry"][0];
    assert_eq!(entry["id"], phone.waba_id.as_str());
    let change = &entry["changes"][0];
    assert_eq!(change["field"], "messages");
    let value = &change["value"];
    assert_eq!(value["messaging_product"], "whatsapp");
    assert_eq!(
        value["metadata"],
        json!({"display_phone_number": phone.display, "phone_number_id": phone.id})
    );
    assert_eq!(
        value["contacts"],
        json!([{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}])
    );
    let msg = &value["messages"][0];
    assert_eq!(msg["from"], "16505551234");
    assert!(msg["id"].as_str().unwrap().starts_with("wamid."));
    assert!(
        msg["timestamp"].as_str().unwrap().parse::<u64>().is_ok(),
        "timestamp is a string"
    );
    assert_eq!(msg["type"], "text");
    assert_eq!(
        msg["text"],
        json!({"body": "Does it come in another color?"})
    );
    assert!(value.get("statuses").is_none());

    let second = posts
        .iter()
        .map(Received::json)
        .find(|v| v["entry"][0]["changes"][0]["value"]["messages"][0]["type"] == "interactive")
        .unwrap();
    let msg = &second["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(msg["interactive"]["button_reply"]["id"], "cancel-button");
    assert_eq!(
        msg["context"],
        json!({"id": "wamid.ours", "from": phone.display})
    );

    // Inbound media: bytes stored, webhook carries id/mime_type/sha256/url, downloadable.
    let (s, b) = env
        .post(
            "/_sim/inbound",
            json!({"phone_number_id": phone.id, "from": "16505551234", "type": "image",
                   "image": {"caption": "look", "data_base64": "aGVsbG8="}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let image = &b["message"]["image"];
    assert_eq!(image["mime_type"], "image/jpeg");
    assert!(image.get("data_base64").is_none());
    let (s, info) = env
        .graph_get(&phone, &format!("/{V}/{}", image["id"].as_str().unwrap()))
        .await;
    assert_eq!(s, 200);
    let bytes = env
        .http
        .get(info["url"].as_str().unwrap())
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello");
}

#[tokio::test]
async fn statuses_progress_sent_delivered_read() {
    let mut config = SimConfig::testing();
    // Deliveries are concurrent (as at Meta); leave room so arrival order is emission order.
    config.status_step_delay_ms = 30;
    let env = start(config).await;
    let (phone, receiver) = env.subscribed_phone().await;
    env.inbound(&phone, "16505551234", "hi").await;

    // v23: conversation + pricing on sent and delivered, nothing extra on read.
    let mut body = text("16505551234", "hello");
    body["biz_opaque_callback_data"] = json!("ticket-7");
    let (s, b) = env.send(&phone, body).await;
    assert_eq!(s, 200, "{b}");
    let wamid = b["messages"][0]["id"].as_str().unwrap().to_owned();
    let statuses = receiver.wait_statuses(&wamid, 3).await;
    let order: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["sent", "delivered", "read"]);
    let sent = &statuses[0];
    assert_eq!(sent["recipient_id"], "16505551234");
    assert!(sent["timestamp"].is_string());
    assert_eq!(sent["biz_opaque_callback_data"], "ticket-7");
    assert_eq!(sent["conversation"]["origin"]["type"], "service");
    assert!(sent["conversation"]["expiration_timestamp"].is_string());
    assert_eq!(
        sent["pricing"],
        json!({"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"})
    );
    assert!(statuses[1]["conversation"]["id"].is_string());
    assert!(statuses[1]["conversation"]
        .get("expiration_timestamp")
        .is_none());
    assert!(statuses[1]["pricing"].is_object());
    assert!(statuses[2].get("pricing").is_none());
    assert!(statuses[2].get("conversation").is_none());
    for post in receiver.ok_posts() {
        assert!(verify_signature(&phone.secret, &post));
    }
    let out = env.outbound(&phone).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["wamid"], wamid.as_str());
    assert_eq!(out[0]["to"], "16505551234");
    assert_eq!(out[0]["type"], "text");
    assert_eq!(out[0]["body"]["text"]["body"], "hello");
    assert_eq!(out[0]["status"], "read");

    // v24: no conversation object.
    let resp = env
        .http
        .post(env.url(&format!("/v24.0/{}/messages", phone.id)))
        .bearer_auth(&phone.token)
        .json(&text("16505551234", "newer"))
        .send()
        .await
        .unwrap();
    let b: Value = resp.json().await.unwrap();
    let wamid24 = b["messages"][0]["id"].as_str().unwrap().to_owned();
    let statuses = receiver.wait_statuses(&wamid24, 3).await;
    assert!(statuses.iter().all(|s| s.get("conversation").is_none()));
    assert!(statuses[0]["pricing"].is_object());

    // skip_delivered_rate 1.0: sent → read.
    env.config(json!({"skip_delivered_rate": 1.0})).await;
    let (_, b) = env.send(&phone, text("16505551234", "quick")).await;
    let wamid_skip = b["messages"][0]["id"].as_str().unwrap().to_owned();
    let statuses = receiver.wait_statuses(&wamid_skip, 2).await;
    let order: Vec<&str> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["sent", "read"]);
    assert!(
        statuses[1]["pricing"].is_object(),
        "pricing rides on read when delivered is skipped"
    );
}

#[tokio::test]
async fn manual_status_when_auto_status_is_off() {
    let mut config = SimConfig::testing();
    config.auto_status = false;
    let env = start(config).await;
    let (phone, receiver) = env.subscribed_phone().await;
    env.inbound(&phone, "16505551234", "hi").await;
    receiver.wait_posts(1).await;

    let (_, b) = env.send(&phone, text("16505551234", "hello")).await;
    let wamid = b["messages"][0]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(receiver.statuses().is_empty(), "auto status is off");
    assert_eq!(env.outbound(&phone).await[0]["status"], "accepted");

    let path = format!("/_sim/phone-numbers/{}/outbound/{wamid}/status", phone.id);
    let (s, b) = env.post(&path, json!({"status": "delivered"})).await;
    assert_eq!(s, 200, "{b}");
    let st = receiver.wait_statuses(&wamid, 1).await;
    assert_eq!(st[0]["status"], "delivered");
    assert_eq!(env.outbound(&phone).await[0]["status"], "delivered");

    let (s, b) = env
        .post(&path, json!({"status": "failed", "error": {"code": 131026, "title": "Message undeliverable"}}))
        .await;
    assert_eq!(s, 200, "{b}");
    let st = receiver.wait_statuses(&wamid, 2).await;
    assert_eq!(st[1]["status"], "failed");
    assert_eq!(st[1]["errors"][0]["code"], 131026);
    assert_eq!(st[1]["errors"][0]["message"], "Message undeliverable");

    let (s, _) = env.post(&path, json!({"status": "bogus"})).await;
    assert_eq!(s, 400);
    let (s, _) = env
        .post(
            &format!(
                "/_sim/phone-numbers/{}/outbound/wamid.nope/status",
                phone.id
            ),
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn batching_with_rate_one() {
    let mut config = SimConfig::testing();
    config.batch_rate = 1.0;
    config.batch_window_ms = 400;
    let env = start(config).await;
    let (phone, receiver) = env.subscribed_phone().await;

    let a = env.inbound(&phone, "16505551234", "one").await;
    let b = env.inbound(&phone, "16505551235", "two").await;
    let c = env.inbound(&phone, "16505551236", "three").await;
    let posts = receiver.wait_posts(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(receiver.ok_posts().len(), 1, "one POST for the whole batch");
    let body = posts[0].json();
    assert!(verify_signature(&phone.secret, &posts[0]));
    let changes = body["entry"][0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3);
    let ids: Vec<&str> = changes
        .iter()
        .map(|c| c["value"]["messages"][0]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str(), c.as_str()]);
    for c in changes {
        assert_eq!(c["field"], "messages");
        assert_eq!(c["value"]["metadata"]["phone_number_id"], phone.id.as_str());
    }
}

#[tokio::test]
async fn duplicates_with_rate_one() {
    let mut config = SimConfig::testing();
    config.duplicate_rate = 1.0;
    let env = start(config).await;
    let (phone, receiver) = env.subscribed_phone().await;

    env.inbound(&phone, "16505551234", "dup me").await;
    let posts = receiver.wait_posts(2).await;
    assert_eq!(posts[0].body, posts[1].body, "byte-identical duplicate");
    assert_eq!(
        posts[0].headers["x-hub-signature-256"],
        posts[1].headers["x-hub-signature-256"]
    );
    let log = wait_for_deliveries(&env, 2).await;
    assert_eq!(log.iter().filter(|d| d["duplicate"] == true).count(), 1);
}

async fn wait_for_deliveries(env: &Env, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let d = env.deliveries().await;
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} deliveries");
}

#[tokio::test]
async fn retries_on_500_with_backoff() {
    let env = start(SimConfig::testing()).await;
    let (phone, receiver) = env.subscribed_phone().await;
    *receiver.state.fail_next.lock().unwrap() = 2;

    let wamid = env.inbound(&phone, "16505551234", "retry me").await;
    let ok = receiver.wait_posts(1).await;
    let all = receiver.posts();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.iter().map(|p| p.answered).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    assert!(
        all.iter().all(|p| p.body == ok[0].body),
        "retries resend the same bytes"
    );
    assert_eq!(
        ok[0].json()["entry"][0]["changes"][0]["value"]["messages"][0]["id"],
        wamid.as_str()
    );

    let log = wait_for_deliveries(&env, 3).await;
    let attempts: Vec<(u64, Value)> = log
        .iter()
        .map(|d| (d["attempt"].as_u64().unwrap(), d["status"].clone()))
        .collect();
    assert_eq!(
        attempts,
        vec![(1, json!(500)), (2, json!(500)), (3, json!(200))]
    );
    for d in &log {
        assert_eq!(d["url"], receiver.url().as_str());
        assert!(d["latency_ms"].is_u64());
        assert_eq!(d["delivery_id"], log[0]["delivery_id"]);
    }
    // Backoff: 20 ms then 40 ms between attempts at least.
    let at: Vec<u64> = log.iter().map(|d| d["at_ms"].as_u64().unwrap()).collect();
    assert!(at[1] - at[0] >= 15 && at[2] - at[1] >= 35, "{at:?}");

    // A receiver that keeps failing: attempts are capped.
    env.post(
        &format!("/_sim/phone-numbers/{}/subscribe", phone.id),
        json!({"callback_url": receiver.url(), "verify_token": "vt"}),
    )
    .await;
    let (s, _) = env
        .control(reqwest::Method::DELETE, "/_sim/deliveries", json!({}))
        .await;
    assert_eq!(s, 204);
    *receiver.state.fail_next.lock().unwrap() = 100;
    env.config(json!({"max_delivery_attempts": 3, "retry_base_delay_ms": 1}))
        .await;
    env.inbound(&phone, "16505551234", "nobody home").await;
    let log = wait_for_deliveries(&env, 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        env.deliveries().await.len(),
        3,
        "gives up after max_delivery_attempts"
    );
    assert!(log.iter().all(|d| d["status"] == 500));
}

#[tokio::test]
async fn unsubscribed_numbers_send_nothing_and_unknown_numbers_404() {
    let env = start(SimConfig::testing()).await;
    let phone = env.phone().await;
    env.inbound(&phone, "16505551234", "into the void").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(env.deliveries().await.is_empty());
    let (s, _) = env
        .post("/_sim/inbound", json!({"phone_number_id": "1", "from": "16505551234", "type": "text", "text": {"body": "x"}}))
        .await;
    assert_eq!(s, 404);
    let (s, _) = env
        .post(
            "/_sim/phone-numbers/1/subscribe",
            json!({"callback_url": "http://127.0.0.1:9/", "verify_token": "x"}),
        )
        .await;
    assert_eq!(s, 404);
}
