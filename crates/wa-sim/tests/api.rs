//! Graph API surface: auth, send validation, templates, window, rate limits, media, phone info.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use palisade_wa_sim::SimConfig;
use serde_json::{json, Value};

#[tokio::test]
async fn auth_errors_are_190_and_10() {
    let env = start(SimConfig::testing()).await;
    let phone = env.phone().await;
    let other = env.phone().await;

    let (status, body) = env.send_as(&phone, None, text("16505551234", "hi")).await;
    assert_graph_error(status, &body, 401, 190);
    assert_eq!(body["error"]["type"], "OAuthException");

    let (status, body) = env
        .send_as(
            &phone,
            Some("EAAGnot-a-real-token"),
            text("16505551234", "hi"),
        )
        .await;
    assert_graph_error(status, &body, 401, 190);

    // The header carries Graph's www-authenticate challenge.
    let resp = env
        .http
        .post(env.url(&format!("/{V}/{}/messages", phone.id)))
        .json(&text("16505551234", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("OAuth \"Facebook Platform\""));

    // A valid token of another number: permission error 10.
    let (status, body) = env
        .send_as(&phone, Some(&other.token), text("16505551234", "hi"))
        .await;
    assert_graph_error(status, &body, 403, 10);

    // ?access_token= works like the header (Chatwoot style).
    let resp = env
        .http
        .get(env.url(&format!(
            "/{V}/{}/message_templates?access_token={}",
            phone.waba_id, phone.token
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Unversioned / malformed versions are unknown paths.
    let resp = env
        .http
        .post(env.url(&format!("/23/{}/messages", phone.id)))
        .bearer_auth(&phone.token)
        .json(&text("16505551234", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn send_validation_errors() {
    let env = start(SimConfig::testing()).await;
    let phone = env.phone().await;
    env.inbound(&phone, "16505551234", "hello").await;
    let to = "16505551234";

    // messaging_product
    let mut body = text(to, "hi");
    body["messaging_product"] = json!("facebook");
    let (s, b) = env.send(&phone, body).await;
    assert_graph_error(s, &b, 400, 100);
    let mut body = text(to, "hi");
    body.as_object_mut().unwrap().remove("messaging_product");
    let (s, b) = env.send(&phone, body).await;
    assert_graph_error(s, &b, 400, 100);

    // unknown type
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "to": to, "type": "hologram", "hologram": {}}),
        )
        .await;
    assert_graph_error(s, &b, 400, 131051);

    // missing required fields
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {}}),
        )
        .await;
    assert_graph_error(s, &b, 400, 131008);
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}),
        )
        .await;
    assert_graph_error(s, &b, 400, 131008);
    let (s, b) = env
        .send(&phone, json!({"messaging_product": "whatsapp", "to": to, "type": "image", "image": {"caption": "c"}}))
        .await;
    assert_graph_error(s, &b, 400, 131008);

    // length / count limits
    let (s, b) = env.send(&phone, text(to, &"a".repeat(4097))).await;
    assert_graph_error(s, &b, 400, 131009);
    let buttons: Vec<Value> = (0..4)
        .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("B{i}")}}))
        .collect();
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "to": to, "type": "interactive",
                   "interactive": {"type": "button", "body": {"text": "pick"},
                                   "action": {"buttons": buttons}}}),
        )
        .await;
    assert_graph_error(s, &b, 400, 131009);
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "to": to, "type": "interactive",
                   "interactive": {"type": "button", "body": {"text": "pick"},
                                   "action": {"buttons": [{"type": "reply", "reply": {"id": "x", "title": "A title longer than 20"}}]}}}),
        )
        .await;
    assert_graph_error(s, &b, 400, 131009);
    let rows: Vec<Value> = (0..11)
        .map(|i| json!({"id": format!("r{i}"), "title": format!("Row {i}")}))
        .collect();
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "to": to, "type": "interactive",
                   "interactive": {"type": "list", "body": {"text": "pick"},
                                   "action": {"button": "Options", "sections": [{"title": "All", "rows": rows}]}}}),
        )
        .await;
    assert_graph_error(s, &b, 400, 131009);

    // Not JSON at all.
    let resp = env
        .http
        .post(env.url(&format!("/{V}/{}/messages", phone.id)))
        .bearer_auth(&phone.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("messaging_product=whatsapp&to=1&type=text")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["error"]["code"], 100);

    // Every valid type of the reference is accepted, with Meta's success body.
    let valid = [
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1 (650) 555-1234", "type": "text",
               "text": {"preview_url": true, "body": "https://www.meta.com/"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "text", "context": {"message_id": "wamid.X"}, "text": {"body": "reply"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "image", "image": {"link": "https://example.com/a.png", "caption": "c"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "document", "document": {"link": "https://example.com/i.pdf", "filename": "i.pdf"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "audio", "audio": {"link": "https://example.com/a.ogg"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "location", "location": {"latitude": 37.46, "longitude": -122.21, "name": "HQ"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "contacts", "contacts": [{"name": {"formatted_name": "Chandler Bing", "first_name": "Chandler"}}]}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "interactive",
               "interactive": {"type": "button", "header": {"type": "text", "text": "Hi"}, "body": {"text": "Change?"}, "footer": {"text": "Lucky Shrub"},
                               "action": {"buttons": [{"type": "reply", "reply": {"id": "change-button", "title": "Change"}},
                                                      {"type": "reply", "reply": {"id": "cancel-button", "title": "Cancel"}}]}}}),
        json!({"messaging_product": "whatsapp", "to": to, "type": "interactive",
               "interactive": {"type": "list", "header": {"type": "text", "text": "Choose Shipping Option"}, "body": {"text": "Which?"},
                               "action": {"button": "Shipping Options", "sections": [{"title": "I want it ASAP!", "rows": [
                                   {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}]}]}}}),
    ];
    for body in valid {
        let (s, b) = env.send(&phone, body.clone()).await;
        assert_eq!(s, 200, "{body} → {b}");
        assert_eq!(b["messaging_product"], "whatsapp");
        assert_eq!(
            b["contacts"][0]["input"], body["to"],
            "input echoed verbatim"
        );
        assert_eq!(b["contacts"][0]["wa_id"], "16505551234");
        assert!(b["messages"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("wamid."));
    }
}

#[tokio::test]
async fn mark_as_read_and_typing_indicator() {
    let env = start(SimConfig::testing()).await;
    let phone = env.phone().await;
    let wamid = env.inbound(&phone, "16505551234", "hello").await;
    let (s, b) = env
        .send(
            &phone,
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid,
                              "typing_indicator": {"type": "text"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"success": true}));
    let (s, b) = env
        .send(&phone, json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.unknown"}))
        .await;
    assert_graph_error(s, &b, 400, 100);
}

#[tokio::test]
async fn templates_list_create_and_send_errors() {
    let env = start(SimConfig::testing()).await;
    let phone = env.phone().await;
    let to = "16505551234"; // no window: templates are still allowed

    // List: seeded templates, paging with cursors.
    let (s, list) = env
        .graph_get(
            &phone,
            &format!("/{V}/{}/message_templates?limit=1", phone.waba_id),
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["name"], "hello_world");
    assert_eq!(list["data"][0]["status"], "APPROVED");
    let next = list["paging"]["next"].as_str().unwrap().to_owned();
    assert_eq!(next.matches("limit=").count(), 1, "{next}");
    assert!(list["paging"]["cursors"]["after"].is_string());
    let page2: Value = env
        .http
        .get(&next)
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["data"][0]["name"], "order_confirmation");
    assert!(page2["paging"].get("next").is_none(), "{page2}");
    let (_, filtered) = env
        .graph_get(
            &phone,
            &format!(
                "/{V}/{}/message_templates?fields=name,status&name=hello",
                phone.waba_id
            ),
        )
        .await;
    assert_eq!(
        filtered["data"],
        json!([{"name": "hello_world", "status": "APPROVED", "id": list["data"][0]["id"]}])
    );

    // 132001: unknown template, wrong language.
    let tpl = |name: &str, lang: &str, params: Vec<&str>| {
        let parameters: Vec<Value> = params
            .iter()
            .map(|p| json!({"type": "text", "text": p}))
            .collect();
        json!({"messaging_product": "whatsapp", "to": to, "type": "template",
               "template": {"name": name, "language": {"code": lang},
                            "components": [{"type": "body", "parameters": parameters}]}})
    };
    let (s, b) = env
        .send(&phone, tpl("no_such_template", "en_US", vec![]))
        .await;
    assert_graph_error(s, &b, 400, 132001);
    let (s, b) = env
        .send(&phone, tpl("order_confirmation", "pt_BR", vec!["a", "b"]))
        .await;
    assert_graph_error(s, &b, 400, 132001);

    // 132000: parameter count mismatch.
    let (s, b) = env
        .send(&phone, tpl("order_confirmation", "en_US", vec!["Jessica"]))
        .await;
    assert_graph_error(s, &b, 400, 132000);
    let (s, b) = env
        .send(&phone, tpl("hello_world", "en_US", vec!["extra"]))
        .await;
    assert_graph_error(s, &b, 400, 132000);

    // Correct: accepted outside the window. Component types are case-insensitive.
    let mut ok_body = tpl(
        "order_confirmation",
        "en_US",
        vec!["Jessica", "SKBUP2-4CPIG9"],
    );
    ok_body["template"]["components"][0]["type"] = json!("BODY");
    let (s, b) = env.send(&phone, ok_body).await;
    assert_eq!(s, 200, "{b}");
    let hello = json!({"messaging_product": "whatsapp", "to": to, "type": "template",
                       "template": {"name": "hello_world", "language": {"code": "en_US"}}});
    let (s, b) = env.send(&phone, hello).await;
    assert_eq!(s, 200, "{b}");

    // Create: PENDING, then APPROVED (review delay 0), then sendable.
    let resp = env
        .http
        .post(env.url(&format!("/{V}/{}/message_templates", phone.waba_id)))
        .bearer_auth(&phone.token)
        .json(
            &json!({"name": "shipping_update", "category": "utility", "language": "en",
                      "parameter_format": "positional",
                      "components": [{"type": "BODY", "text": "Order {{1}} ships {{2}}.",
                                      "example": {"body_text": [["42", "today"]]}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["category"], "UTILITY");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut approved = false;
    for _ in 0..100 {
        let (_, t) = env
            .graph_get(&phone, &format!("/{V}/{id}?fields=status"))
            .await;
        if t["status"] == "APPROVED" {
            assert_eq!(t, json!({"status": "APPROVED", "id": id}));
            approved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(approved);
    let (s, b) = env
        .send(&phone, tpl("shipping_update", "en", vec!["42", "today"]))
        .await;
    assert_eq!(s, 200, "{b}");

    // Invalid creation: uppercase name, duplicate.
    for bad in [
        json!({"name": "Bad Name", "category": "utility", "language": "en", "components": [{"type": "BODY", "text": "x"}]}),
        json!({"name": "shipping_update", "category": "utility", "language": "en", "components": [{"type": "BODY", "text": "x"}]}),
        json!({"name": "no_example", "category": "utility", "language": "en", "components": [{"type": "BODY", "text": "x {{1}}"}]}),
    ] {
        let resp = env
            .http
            .post(env.url(&format!("/{V}/{}/message_templates", phone.waba_id)))
            .bearer_auth(&phone.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["error"]["code"], 100);
    }

    // A template that is no longer APPROVED gives 132001.
    let (s, _) = env
        .post(
            &format!("/_sim/templates/{id}/status"),
            json!({"status": "PAUSED"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = env
        .send(&phone, tpl("shipping_update", "en", vec!["42", "today"]))
        .await;
    assert_graph_error(s, &b, 400, 132001);

    // Delete by name.
    let resp = env
        .http
        .delete(env.url(&format!(
            "/{V}/{}/message_templates?name=shipping_update",
            phone.waba_id
        )))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"success": true})
    );
}

/// A status set through the control API during the review delay stands (the review approves
/// only a template still `PENDING`), and with automatic approval off a template waits for the
/// control API.
#[tokio::test]
async fn a_review_never_overrides_a_status_set_by_hand() {
    let env = start(SimConfig {
        template_review_delay_ms: 200,
        ..SimConfig::testing()
    })
    .await;
    let (phone, _receiver) = env.subscribed_phone().await;
    // Submits a template; returns its id.
    let create = |name: &'static str| {
        let sent = env
            .http
            .post(env.url(&format!("/{V}/{}/message_templates", phone.waba_id)))
            .bearer_auth(&phone.token)
            .json(
                &json!({"name": name, "category": "utility", "language": "en",
                          "components": [{"type": "BODY", "text": "Hello"}]}),
            )
            .send();
        async move {
            let created: Value = sent.await.unwrap().json().await.unwrap();
            created["id"].as_str().unwrap().to_owned()
        }
    };
    let status = |id: String| {
        let env = &env;
        let phone = &phone;
        async move {
            env.graph_get(phone, &format!("/{V}/{id}?fields=status"))
                .await
                .1["status"]
                .clone()
        }
    };
    let rejected = create("rejected_by_hand").await;
    let (s, _) = env
        .post(
            &format!("/_sim/templates/{rejected}/status"),
            json!({"status": "REJECTED", "reason": "INVALID_FORMAT"}),
        )
        .await;
    assert_eq!(s, 200);
    let reviewed = create("approved_by_review").await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(status(rejected).await, "REJECTED");
    assert_eq!(status(reviewed).await, "APPROVED");

    let (s, _) = env
        .post("/_sim/config", json!({"template_auto_approve": false}))
        .await;
    assert_eq!(s, 200);
    let waiting = create("waits_for_a_decision").await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(status(waiting).await, "PENDING");
}

#[tokio::test]
async fn customer_service_window_and_accept_then_fail() {
    let env = start(SimConfig::testing()).await;
    let (phone, receiver) = env.subscribed_phone().await;
    let customer = "16505551234";

    // Outside the window: 131047 synchronously.
    let (s, b) = env.send(&phone, text(customer, "hello?")).await;
    assert_graph_error(s, &b, 400, 131047);

    // The customer writes: the window opens for that customer only.
    env.inbound(&phone, customer, "hi there").await;
    let (s, b) = env.send(&phone, text(customer, "welcome back")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = env.send(&phone, text("16505559999", "cold")).await;
    assert_graph_error(s, &b, 400, 131047);

    // The window closes after window_ms.
    env.config(json!({"window_ms": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (s, b) = env.send(&phone, text(customer, "too late")).await;
    assert_graph_error(s, &b, 400, 131047);

    // accept-then-fail: 200 with a wamid, then a failed status carrying 131047.
    let cfg = env.config(json!({"accept_then_fail": true})).await;
    assert_eq!(cfg["accept_then_fail"], true);
    let (s, b) = env.send(&phone, text("16505557777", "hello?")).await;
    assert_eq!(s, 200, "{b}");
    let wamid = b["messages"][0]["id"].as_str().unwrap().to_owned();
    let statuses = receiver.wait_statuses(&wamid, 1).await;
    let failed = &statuses[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["recipient_id"], "16505557777");
    assert_eq!(failed["errors"][0]["code"], 131047);
    assert_eq!(failed["errors"][0]["title"], failed["errors"][0]["message"]);
    assert!(failed.get("pricing").is_none());
    let out = env.outbound(&phone).await;
    let last = out.last().unwrap();
    assert_eq!(last["wamid"], wamid.as_str());
    assert_eq!(last["status"], "failed");
    // No sent/delivered/read for it.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        receiver
            .statuses()
            .iter()
            .filter(|s| s["id"] == wamid.as_str())
            .count(),
        1
    );
}

#[tokio::test]
async fn throughput_and_pair_rate_limits() {
    let mut config = SimConfig::testing();
    config.auto_status = false;
    let env = start(config).await;
    let phone = env.phone().await;
    let hello = |to: String| {
        json!({"messaging_product": "whatsapp", "to": to, "type": "template",
               "template": {"name": "hello_world", "language": {"code": "en_US"}}})
    };

    // Default: 80 per second.
    let cfg = env.get_json("/_sim/config").await;
    assert_eq!(cfg["throughput_per_second"], 80);

    env.config(json!({"throughput_per_second": 5})).await;
    let mut codes = Vec::new();
    for i in 0..7 {
        let (s, b) = env.send(&phone, hello(format!("1650555{i:04}"))).await;
        codes.push(if s == 200 {
            0
        } else {
            b["error"]["code"].as_u64().unwrap()
        });
        if s != 200 {
            assert_graph_error(s, &b, 400, 130429);
        }
    }
    assert_eq!(codes, vec![0, 0, 0, 0, 0, 130429, 130429]);
    // The window slides: after a second, sending works again.
    tokio::time::sleep(std::time::Duration::from_millis(1050)).await;
    let (s, _) = env.send(&phone, hello("16505550001".into())).await;
    assert_eq!(s, 200);

    // Pair rate limit: burst of 2 to one recipient, then 131056; other recipients unaffected.
    env.config(json!({"throughput_per_second": 1000, "pair_burst": 2, "pair_interval_ms": 60000}))
        .await;
    let (s1, _) = env.send(&phone, hello("447700900123".into())).await;
    let (s2, _) = env.send(&phone, hello("447700900123".into())).await;
    let (s3, b3) = env.send(&phone, hello("447700900123".into())).await;
    assert_eq!((s1, s2), (200, 200));
    assert_graph_error(s3, &b3, 400, 131056);
    let (s, _) = env.send(&phone, hello("447700900124".into())).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn phone_number_info() {
    let env = start(SimConfig::testing()).await;
    let (s, created) = env
        .post(
            "/_sim/phone-numbers",
            json!({"display_phone_number": "+1 555-078-3881", "verified_name": "Lucky Shrub"}),
        )
        .await;
    assert_eq!(s, 201);
    for key in [
        "phone_number_id",
        "waba_id",
        "access_token",
        "app_secret",
        "display_phone_number",
    ] {
        assert!(created[key].is_string(), "{key} in {created}");
    }
    assert_eq!(created["display_phone_number"], "15550783881");
    let phone = Phone {
        id: created["phone_number_id"].as_str().unwrap().into(),
        waba_id: created["waba_id"].as_str().unwrap().into(),
        token: created["access_token"].as_str().unwrap().into(),
        secret: created["app_secret"].as_str().unwrap().into(),
        display: "15550783881".into(),
    };
    let (s, info) = env
        .graph_get(&phone, &format!("/{V}/{}?fields=quality_rating,throughput,display_phone_number,verified_name,whatsapp_business_manager_messaging_limit", phone.id))
        .await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(
        info,
        json!({"quality_rating": "GREEN", "throughput": {"level": "STANDARD"},
               "display_phone_number": "15550783881", "verified_name": "Lucky Shrub",
               "whatsapp_business_manager_messaging_limit": "TIER_250", "id": phone.id})
    );
    let (s, b) = env
        .graph_get(&phone, &format!("/{V}/{}?fields=nonsense", phone.id))
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], 100);
    let (s, b) = env
        .graph_get(&phone, &format!("/{V}/999999999999999"))
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], 100);
}

#[tokio::test]
async fn media_upload_url_download_and_expiry() {
    let mut config = SimConfig::testing();
    config.media_url_ttl_ms = 300;
    let env = start(config).await;
    let phone = env.phone().await;
    let other = env.phone().await;
    let png = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();

    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", "image/png")
        .part(
            "file",
            reqwest::multipart::Part::bytes(png.clone())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let resp = env
        .http
        .post(env.url(&format!("/{V}/{}/media", phone.id)))
        .bearer_auth(&phone.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let up: Value = resp.json().await.unwrap();
    let media_id = up["id"].as_str().unwrap().to_owned();

    // Unsupported MIME → 131053.
    let form = reqwest::multipart::Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", "application/x-msdownload")
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("x.exe"),
        );
    let resp = env
        .http
        .post(env.url(&format!("/{V}/{}/media", phone.id)))
        .bearer_auth(&phone.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], 131053);

    // Retrieve the URL.
    let (s, info) = env
        .graph_get(
            &phone,
            &format!("/{V}/{media_id}?phone_number_id={}", phone.id),
        )
        .await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["messaging_product"], "whatsapp");
    assert_eq!(info["mime_type"], "image/png");
    assert_eq!(info["file_size"], png.len());
    assert_eq!(info["id"], media_id.as_str());
    assert!(info["sha256"].is_string());
    let url = info["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&env.base),
        "absolute URL on the simulator's host: {url}"
    );

    // Another number cannot see it.
    let (s, _) = env.graph_get(&other, &format!("/{V}/{media_id}")).await;
    assert_eq!(s, 403);

    // Download needs the bearer token.
    let resp = env.http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = env
        .http
        .get(&url)
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), png);

    // A tampered URL is refused.
    let tampered = url.replace("hash=", "hash=00");
    let resp = env
        .http
        .get(&tampered)
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Sending by id works for our media, not for unknown ids.
    env.inbound(&phone, "16505551234", "send me the picture")
        .await;
    let (s, b) = env
        .send(&phone, json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "image", "image": {"id": media_id}}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = env
        .send(&phone, json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "image", "image": {"id": "123"}}))
        .await;
    assert_graph_error(s, &b, 400, 100);

    // Expired URL → 404; a fresh GET /{media-id} gives a working one.
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let resp = env
        .http
        .get(&url)
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (_, info) = env.graph_get(&phone, &format!("/{V}/{media_id}")).await;
    let resp = env
        .http
        .get(info["url"].as_str().unwrap())
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Delete.
    let resp = env
        .http
        .delete(env.url(&format!("/{V}/{media_id}")))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"success": true})
    );
    let (s, _) = env.graph_get(&phone, &format!("/{V}/{media_id}")).await;
    assert_eq!(s, 400);
}
