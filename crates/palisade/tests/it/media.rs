//! Inbound media: a customer's file, sent through the simulator, is downloaded in the background
//! through the Graph media API into the tenant's storage and served back to the team; corrupted,
//! oversized and untrusted-host downloads fail with a reason; other tenants see nothing.

use crate::support::{assert_error, whatsapp_fixture, whatsapp_fixture_with, WhatsAppFixture};
use base64::Engine as _;
use palisade_testkit::{Db, Resp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;
use std::time::Duration;

both!(
    an_inbound_image_is_stored_and_served_byte_identical,
    a_corrupted_download_fails_on_the_sha256,
    media_urls_on_untrusted_hosts_are_not_fetched,
    oversized_media_fails,
    pending_media_answers_409_until_downloaded,
    an_expired_media_url_is_retried_with_a_fresh_one,
    erasing_a_contact_removes_its_media_files
);

/// Bytes that look like a JPEG and are not all alike.
fn jpeg(len: usize) -> Vec<u8> {
    let mut v = vec![0xff, 0xd8, 0xff, 0xe0];
    v.extend((0..len.saturating_sub(4)).map(|i| (i * 31 % 251) as u8));
    v
}

/// The customer sends a media message through the simulator; returns its wamid.
async fn send_media(f: &WhatsAppFixture, kind: &str, object: Value) -> String {
    f.customer_message(kind, object).await
}

/// The message with this wamid as the API shows it, once it exists.
async fn find_message(f: &WhatsAppFixture, wamid: &str) -> Option<Value> {
    palisade_core::whatsapp::inbound::process_pending(&f.app.services)
        .await
        .unwrap();
    let convs = f
        .app
        .get("/api/v1/conversations", &f.owner.access_token)
        .await;
    for c in convs.body["data"].as_array()? {
        let msgs = f
            .app
            .get(
                &format!("/api/v1/conversations/{}/messages", c["id"].as_str()?),
                &f.owner.access_token,
            )
            .await;
        if let Some(m) = msgs.body["data"]
            .as_array()?
            .iter()
            .find(|m| m["wamid"] == wamid)
        {
            return Some(m.clone());
        }
    }
    None
}

/// Waits until the message's media is no longer `pending`, and returns the message.
async fn settled(f: &WhatsAppFixture, wamid: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        if let Some(m) = find_message(f, wamid).await {
            if m["media"]["status"] != "pending" {
                return m;
            }
            last = m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("media of {wamid} never settled: {last}");
}

async fn download(f: &WhatsAppFixture, id: &str, token: &str) -> (Resp, Vec<u8>) {
    let r = f
        .app
        .client
        .get(f.app.url(&format!("/api/v1/messages/{id}/media")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (
        Resp {
            status,
            headers,
            body,
        },
        bytes,
    )
}

/// The files in the tenant's storage directory (names only).
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

async fn an_inbound_image_is_stored_and_served_byte_identical(db: Db) {
    let f = whatsapp_fixture(db).await;
    let bytes = jpeg(20_000);
    let wamid = send_media(
        &f,
        "image",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes), "caption": "my order"}),
    )
    .await;
    let m = settled(&f, &wamid).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let media = &m["media"];
    assert_eq!(media["status"], "stored", "{m}");
    assert_eq!(media["mime_type"], "image/jpeg");
    assert_eq!(media["size_bytes"], 20_000);
    assert_eq!(
        media["sha256"],
        format!("{:x}", sha2::Sha256::digest(&bytes))
    );
    assert_eq!(
        media["download_url"],
        format!("/api/v1/messages/{id}/media")
    );
    assert!(media["error"].is_null(), "{m}");

    // The owner downloads exactly the bytes, as an attachment that a browser will not render.
    let (r, got) = download(&f, &id, &f.owner.access_token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(got, bytes);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(r.header("content-length"), Some("20000"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"image-{}.jpg\"", id.replace('-', "")).as_str())
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );

    // On disk: one file, named by the server, in the tenant's own directory.
    let files = stored_files(&f);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].len() == 32 && files[0].bytes().all(|b| b.is_ascii_hexdigit()),
        "{files:?}"
    );

    // An agent reads conversations, so may download.
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    let (r, got) = download(&f, &id, &agent.access_token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(got, bytes);

    // API keys need conversations:read.
    let key = |scopes: Value| {
        let f = &f;
        async move {
            let r = f
                .app
                .post(
                    "/api/v1/api-keys",
                    Some(&f.owner.access_token),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["key"].as_str().unwrap().to_owned()
        }
    };
    let contacts_only = key(json!(["contacts:read"])).await;
    let (r, _) = download(&f, &id, &contacts_only).await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    let reader = key(json!(["conversations:read"])).await;
    let (r, got) = download(&f, &id, &reader).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(got, bytes);

    // A super admin acts on no tenant; another tenant's owner finds nothing.
    let root = f.app.super_admin("root@platform.example").await;
    let (r, _) = download(&f, &id, &root.access_token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let other = f.app.register("Other", "owner@other.example").await;
    let (r, _) = download(&f, &id, &other.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let (r, _) = download(&f, &uuid::Uuid::now_v7().to_string(), &f.owner.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let (r, _) = download(&f, "not-a-uuid", &f.owner.access_token).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");

    // A text message has no media: no `media` in its JSON, and 404 no_media.
    let r = f
        .app
        .client
        .post(format!("{}/_sim/inbound", f.sim))
        .json(
            &json!({"phone_number_id": f.phone_number_id, "from": "447700900123",
            "type": "text", "text": {"body": "did you get it?"}}),
        )
        .send()
        .await
        .unwrap();
    let text_wamid = r.json::<Value>().await.unwrap()["wamid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut text = None;
    for _ in 0..200 {
        text = find_message(&f, &text_wamid).await;
        if text.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let text = text.expect("the text message arrives");
    assert!(text.get("media").is_none(), "{text}");
    let (r, _) = download(&f, text["id"].as_str().unwrap(), &f.owner.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "no_media");
}

async fn a_corrupted_download_fails_on_the_sha256(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.sim_config(json!({"media_corrupt_downloads": true})).await;
    let wamid = send_media(
        &f,
        "document",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 invoice"),
               "filename": "invoice.pdf"}),
    )
    .await;
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "failed", "{m}");
    assert_eq!(m["media"]["error"]["code"], "sha256_mismatch", "{m}");
    assert!(m["media"]["sha256"].is_null(), "{m}");
    assert!(m["media"]["download_url"].is_null(), "{m}");
    let (r, _) = download(&f, m["id"].as_str().unwrap(), &f.owner.access_token).await;
    assert_error(&r, StatusCode::CONFLICT, "media_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sha256_mismatch"),
        "{}",
        r.body
    );
    // Nothing of the corrupted file is kept, not even a partial one.
    assert_eq!(stored_files(&f), Vec::<String>::new());

    // The same document, served intact, is stored under its sanitised name.
    f.sim_config(json!({"media_corrupt_downloads": false}))
        .await;
    let wamid = send_media(
        &f,
        "document",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 invoice"),
               "filename": "../Invoice \"May\".pdf"}),
    )
    .await;
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "stored", "{m}");
    let (r, got) = download(&f, m["id"].as_str().unwrap(), &f.owner.access_token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(got, b"%PDF-1.7 invoice");
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"Invoice__May_.pdf\"")
    );
}

async fn media_urls_on_untrusted_hosts_are_not_fetched(db: Db) {
    let f = whatsapp_fixture(db).await;
    // The simulator answers on localhost too, so only the host policy can stop the download.
    let port = reqwest::Url::parse(&f.sim).unwrap().port().unwrap();
    let other = format!("http://localhost:{port}");
    let probe = f
        .app
        .client
        .get(format!("{other}/_sim/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), StatusCode::OK, "localhost reaches the sim");
    f.sim_config(json!({"media_url_base": other})).await;
    let wamid = send_media(&f, "image", json!({})).await;
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "failed", "{m}");
    assert_eq!(m["media"]["error"]["code"], "host_not_allowed", "{m}");
    assert!(
        m["media"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("localhost"),
        "{m}"
    );
    let (r, _) = download(&f, m["id"].as_str().unwrap(), &f.owner.access_token).await;
    assert_error(&r, StatusCode::CONFLICT, "media_failed");
    assert_eq!(stored_files(&f), Vec::<String>::new());
}

async fn oversized_media_fails(db: Db) {
    // The global limit…
    let f = whatsapp_fixture_with(db, |c| c.media_max_bytes = 4096).await;
    let wamid = send_media(
        &f,
        "image",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(jpeg(5000))}),
    )
    .await;
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "failed", "{m}");
    assert_eq!(m["media"]["error"]["code"], "too_large", "{m}");
    let small = send_media(
        &f,
        "image",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(jpeg(4000))}),
    )
    .await;
    assert_eq!(settled(&f, &small).await["media"]["status"], "stored");
    drop(f);

    // …and WhatsApp's maximum for the type (stickers: 500 KB).
    let f = whatsapp_fixture(db).await;
    let sticker = vec![7u8; 500 * 1024 + 1];
    let wamid = send_media(
        &f,
        "sticker",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(&sticker)}),
    )
    .await;
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "failed", "{m}");
    assert_eq!(m["media"]["error"]["code"], "too_large", "{m}");
    assert_eq!(stored_files(&f), Vec::<String>::new());
}

async fn pending_media_answers_409_until_downloaded(db: Db) {
    // No media worker on this node: the job waits in the database.
    let f = whatsapp_fixture_with(db, |c| c.media_worker_interval_ms = 0).await;
    let bytes = jpeg(1000);
    let wamid = send_media(
        &f,
        "image",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}),
    )
    .await;
    let mut m = None;
    for _ in 0..200 {
        m = find_message(&f, &wamid).await;
        if m.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let m = m.expect("the image message arrives");
    assert_eq!(m["media"]["status"], "pending", "{m}");
    let id = m["id"].as_str().unwrap();
    let (r, _) = download(&f, id, &f.owner.access_token).await;
    assert_error(&r, StatusCode::CONFLICT, "media_pending");
    assert_eq!(r.header("retry-after"), Some("2"));

    // A worker (any node's) picks the durable job up.
    let n = palisade_core::whatsapp::media::download_due(&f.app.services)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (r, got) = download(&f, id, &f.owner.access_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(got, bytes);
    assert_eq!(
        f.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM message_media WHERE status = 'stored'")
            .await
            .unwrap(),
        1
    );
}

async fn an_expired_media_url_is_retried_with_a_fresh_one(db: Db) {
    let f = whatsapp_fixture(db).await;
    // Every URL the simulator hands out has already expired: its download answers 404.
    f.sim_config(json!({"media_url_ttl_ms": 0})).await;
    let bytes = jpeg(3000);
    let wamid = send_media(
        &f,
        "image",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}),
    )
    .await;
    let mut m = Value::Null;
    for _ in 0..300 {
        if let Some(found) = find_message(&f, &wamid).await {
            m = found;
            if m["media"]["error"]["code"] == "media_url_expired" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A transient failure: still pending, the reason shown, the next attempt scheduled later
    // (the test clock does not move by itself, so the worker leaves it alone).
    assert_eq!(m["media"]["status"], "pending", "{m}");
    assert_eq!(m["media"]["error"]["code"], "media_url_expired", "{m}");
    let id = m["id"].as_str().unwrap().to_owned();
    let (r, _) = download(&f, &id, &f.owner.access_token).await;
    assert_error(&r, StatusCode::CONFLICT, "media_pending");
    assert_eq!(
        palisade_core::whatsapp::media::download_due(&f.app.services)
            .await
            .unwrap(),
        0,
        "not due before its backoff"
    );

    // Later, with URLs that live: the retry asks Meta again and stores the file.
    f.sim_config(json!({"media_url_ttl_ms": 300_000})).await;
    f.app.clock.advance(time::Duration::seconds(5));
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "stored", "{m}");
    assert!(m["media"]["error"].is_null(), "{m}");
    let (r, got) = download(&f, &id, &f.owner.access_token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(got, bytes);
    assert_eq!(
        f.app
            .db
            .count_as_owner("SELECT attempts FROM message_media")
            .await
            .unwrap(),
        2
    );
}

async fn erasing_a_contact_removes_its_media_files(db: Db) {
    let f = whatsapp_fixture(db).await;
    let wamid = send_media(
        &f,
        "image",
        json!({"data_base64": base64::engine::general_purpose::STANDARD.encode(jpeg(4_000))}),
    )
    .await;
    let m = settled(&f, &wamid).await;
    assert_eq!(m["media"]["status"], "stored", "{m}");
    assert_eq!(stored_files(&f).len(), 1);
    let conversation = f
        .app
        .get(
            &format!(
                "/api/v1/conversations/{}",
                m["conversation_id"].as_str().unwrap()
            ),
            &f.owner.access_token,
        )
        .await;
    let contact = conversation.body["contact_id"].as_str().unwrap().to_owned();
    let r = f
        .app
        .delete(
            &format!("/api/v1/contacts/{contact}"),
            &f.owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert!(stored_files(&f).is_empty(), "{:?}", stored_files(&f));
    let (r, _) = download(&f, m["id"].as_str().unwrap(), &f.owner.access_token).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}
