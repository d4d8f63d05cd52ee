//! Sending an uploaded file as WhatsApp media from a conversation: the upload (the ticket
//! attachments' checks, quota and audit), the send by `attachment_id` (Meta's type and size
//! limits, another tenant's files, scopes, roles, read-only impersonation), and the sender,
//! which uploads the file to the Graph media endpoint (the simulator) once and sends its id;
//! a file Meta refuses at upload (131053) fails the message for good.

use crate::support::WhatsAppFixture;
use crate::support::{assert_error, audit_count, whatsapp_fixture, whatsapp_fixture_with};
use palisade_testkit::{Db, Resp, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

both!(
    an_uploaded_file_is_sent_as_whatsapp_media_once_uploaded,
    types_sizes_shapes_and_other_tenants_are_refused,
    ticket_attachments_scopes_roles_impersonation_and_quota,
    a_file_meta_refuses_fails_the_message_with_131053_and_is_not_retried,
);

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n";

fn png() -> Vec<u8> {
    let mut b =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    b.extend_from_slice(b"\0\0\0\0IEND\xAE\x42\x60\x82");
    b
}

fn multipart(filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----palisade-test-boundary-media-send";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_to(app: &TestApp, token: &str, path: &str, name: &str, bytes: &[u8]) -> Resp {
    let (ct, body) = multipart(name, bytes);
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("request");
    TestApp::read(r).await
}

async fn upload(app: &TestApp, token: &str, conv: &str, name: &str, bytes: &[u8]) -> Resp {
    upload_to(
        app,
        token,
        &format!("/api/v1/conversations/{conv}/attachments"),
        name,
        bytes,
    )
    .await
}

async fn send(app: &TestApp, token: &str, conv: &str, body: Value) -> Resp {
    app.post(
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(token),
        body,
    )
    .await
}

fn file_message(kind: &str, attachment: &Value, extra: Value) -> Value {
    let mut o = json!({ "attachment_id": attachment });
    if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json!({ "type": kind, kind: o })
}

/// Processes stored webhook events until none is left.
async fn settle(app: &TestApp) {
    for _ in 0..100 {
        palisade_core::whatsapp::inbound::process_pending(&app.services)
            .await
            .unwrap();
        let left = app
            .db
            .count_as_owner(
                "SELECT COUNT(*) FROM whatsapp_inbound_events WHERE processed_at IS NULL",
            )
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("inbound events left unprocessed");
}

/// The customer writes; returns the conversation's id.
async fn conversation(f: &WhatsAppFixture) -> String {
    f.customer_message("text", json!({"body": "Can you send the invoice?"}))
        .await;
    for _ in 0..200 {
        settle(&f.app).await;
        let convs = f
            .app
            .get("/api/v1/conversations", &f.owner.access_token)
            .await
            .body;
        if let Some(c) = convs["data"].as_array().unwrap().first() {
            return c["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the customer's message never arrived");
}

async fn message(f: &WhatsAppFixture, conv: &str, id: &str) -> Value {
    let r = f
        .app
        .get(
            &format!("/api/v1/conversations/{conv}/messages?limit=200"),
            &f.owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no message {id}"))
}

async fn wait_status(f: &WhatsAppFixture, conv: &str, id: &str, want: &[&str]) -> Value {
    let mut m = Value::Null;
    for _ in 0..200 {
        palisade_core::whatsapp::outbound::send_pending(&f.app.services)
            .await
            .unwrap();
        m = message(f, conv, id).await;
        if want.iter().any(|w| m["status"] == *w) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("message never reached {want:?}: {m}");
}

/// What the simulator received on the number.
async fn sim_outbound(f: &WhatsAppFixture) -> Vec<Value> {
    f.app
        .client
        .get(format!(
            "{}/_sim/phone-numbers/{}/outbound",
            f.sim, f.phone_number_id
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

async fn sim_config(f: &WhatsAppFixture, patch: Value) {
    let r = f
        .app
        .client
        .post(format!("{}/_sim/config", f.sim))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// The simulator's record of an uploaded media id (`GET /{media_id}`).
async fn sim_media(f: &WhatsAppFixture, media_id: &str) -> Value {
    let r = f
        .app
        .client
        .get(format!(
            "{}/v25.0/{media_id}?phone_number_id={}",
            f.sim, f.phone_number_id
        ))
        .bearer_auth(&f.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn an_uploaded_file_is_sent_as_whatsapp_media_once_uploaded(db: Db) {
    // The sender's worker is off (it would take the message at once: it is woken when a
    // person's message is queued); the test runs its rounds.
    let f = whatsapp_fixture_with(db, |c| c.outbound_worker_interval_ms = 0).await;
    let t = &f.owner.access_token;
    let conv = conversation(&f).await;
    let bytes = png();
    let r = upload(&f.app, t, &conv, "invoice.png", &bytes).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["conversation_id"], conv.as_str());
    assert!(r.body["ticket_id"].is_null());
    assert_eq!(r.body["content_type"], "image/png");
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(r.body["sha256"], sha.as_str());
    let attachment = r.body["id"].clone();
    assert_eq!(audit_count(&f.app, "attachment.uploaded").await, 1);

    let r = send(
        &f.app,
        t,
        &conv,
        file_message("image", &attachment, json!({"caption": "Your invoice"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["type"], "image");
    assert_eq!(r.body["text"], "Your invoice");
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(audit_count(&f.app, "attachment.sent").await, 1);
    // Nothing is uploaded in the request.
    assert_eq!(audit_count(&f.app, "attachment.media_uploaded").await, 0);

    let m = wait_status(&f, &conv, &id, &["sent", "delivered", "read"]).await;
    assert!(m["wamid"].as_str().unwrap().starts_with("wamid."));
    // The thread shows the file sent, downloadable through the audited attachment route.
    assert_eq!(m["media"]["status"], "stored");
    assert_eq!(m["media"]["sha256"], sha.as_str());
    assert_eq!(m["media"]["mime_type"], "image/png");
    let url = format!("/api/v1/attachments/{}", attachment.as_str().unwrap());
    assert_eq!(m["media"]["download_url"], url.as_str());

    // Meta got an image message with the id of the uploaded file, not our attachment id.
    let out = sim_outbound(&f).await;
    let sent = out
        .iter()
        .find(|o| o["wamid"] == m["wamid"] || o["id"] == m["wamid"])
        .unwrap_or_else(|| panic!("not at the simulator: {out:?}"));
    let body = if sent["body"].is_object() {
        &sent["body"]
    } else {
        sent
    };
    assert_eq!(body["type"], "image", "{sent}");
    assert_eq!(body["image"]["caption"], "Your invoice");
    assert!(body["image"].get("attachment_id").is_none(), "{sent}");
    let media_id = body["image"]["id"].as_str().unwrap().to_owned();
    let meta = sim_media(&f, &media_id).await;
    assert_eq!(meta["sha256"], sha.as_str());
    assert_eq!(meta["mime_type"], "image/png");
    let stored: i64 = f
        .app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM outbound_media WHERE media_id = '{media_id}'"
        ))
        .await
        .unwrap();
    assert_eq!(stored, 1);
    assert_eq!(audit_count(&f.app, "attachment.media_uploaded").await, 1);

    // A send retried (throughput exhausted) does not upload the file again.
    sim_config(
        &f,
        json!({"auto_status": false, "throughput_per_second": 0}),
    )
    .await;
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("image", &attachment, json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id2 = r.body["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        palisade_core::whatsapp::outbound::send_pending(&f.app.services)
            .await
            .unwrap();
        let n = f
            .app
            .db
            .count_as_owner(
                "SELECT COUNT(*) FROM whatsapp_outbound_queue WHERE attempts >= 1 AND last_error IS NOT NULL",
            )
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(message(&f, &conv, &id2).await["status"], "queued");
    assert_eq!(audit_count(&f.app, "attachment.media_uploaded").await, 2);
    sim_config(&f, json!({"throughput_per_second": 80})).await;
    f.app.clock.advance(time::Duration::seconds(5));
    wait_status(&f, &conv, &id2, &["sent"]).await;
    assert_eq!(audit_count(&f.app, "attachment.media_uploaded").await, 2);

    // The file downloads (audited).
    let d = f
        .app
        .client
        .get(f.app.url(&url))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), StatusCode::OK);
    assert_eq!(d.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(audit_count(&f.app, "attachment.downloaded").await, 1);
}

async fn types_sizes_shapes_and_other_tenants_are_refused(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    let conv = conversation(&f).await;
    let pdf = upload(&f.app, t, &conv, "terms.pdf", PDF).await;
    assert_eq!(pdf.status, StatusCode::CREATED, "{}", pdf.body);
    let pdf_id = pdf.body["id"].clone();
    // A PDF is not an image WhatsApp takes: the accepted types are named.
    let r = send(&f.app, t, &conv, file_message("image", &pdf_id, json!({}))).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "media_type_not_allowed",
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/jpeg, image/png"),
        "{}",
        r.body
    );
    // A hostile file is refused by the upload checks, and the refusal is audited against the
    // conversation.
    let r = upload(
        &f.app,
        t,
        &conv,
        "photo.png",
        b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff",
    )
    .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "file_type_not_allowed",
    );
    let refused = f
        .app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'attachment.refused' \
             AND target_type = 'conversation'",
        )
        .await
        .unwrap();
    assert_eq!(refused, 1);
    // A CSV is accepted as an upload but WhatsApp takes no CSV document.
    let csv = upload(&f.app, t, &conv, "rows.csv", b"a,b\n1,2\n").await;
    assert_eq!(csv.status, StatusCode::CREATED, "{}", csv.body);
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("document", &csv.body["id"], json!({})),
    )
    .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "media_type_not_allowed",
    );
    // Over Meta's limit for the type (5 MiB for images): the limit is named.
    let img = upload(&f.app, t, &conv, "big.png", &png()).await;
    f.app
        .db
        .execute_as_owner(&format!(
            "UPDATE attachments SET size_bytes = {} WHERE sha256 = '{}'",
            5 * 1024 * 1024 + 1,
            img.body["sha256"].as_str().unwrap()
        ))
        .await
        .unwrap();
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("image", &img.body["id"], json!({})),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "media_too_large");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 MiB"),
        "{}",
        r.body
    );
    // Shapes: two sources, a malformed id, a caption on audio.
    for bad in [
        json!({"type": "image", "image": {"attachment_id": pdf_id, "link": "https://x.example/a.png"}}),
        json!({"type": "image", "image": {"attachment_id": "not-a-uuid"}}),
        json!({"type": "audio", "audio": {"attachment_id": pdf_id, "caption": "x"}}),
    ] {
        let r = send(&f.app, t, &conv, bad.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
    }
    // An unknown attachment.
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("document", &json!(uuid::Uuid::now_v7()), json!({})),
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    // A document takes the file's name unless one is given, and is sent.
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("document", &pdf_id, json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["body"]["document"]["filename"], "terms.pdf");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let m = wait_status(&f, &conv, &id, &["sent", "delivered", "read"]).await;
    assert_eq!(m["media"]["mime_type"], "application/pdf");
    // Nothing was queued for the refused ones.
    let queued = f
        .app
        .db
        .count_as_owner("SELECT COUNT(*) FROM outbound_media")
        .await
        .unwrap();
    assert_eq!(queued, 1);

    // Another tenant: neither our conversation nor our files; we not theirs.
    let other = f.app.register("Other", "owner@other.example").await;
    let o = &other.access_token;
    let r = upload(&f.app, o, &conv, "x.pdf", PDF).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let ticket = f
        .app
        .post("/api/v1/tickets", Some(o), json!({"subject": "Theirs"}))
        .await;
    let theirs = upload_to(
        &f.app,
        o,
        &format!(
            "/api/v1/tickets/{}/attachments",
            ticket.body["id"].as_str().unwrap()
        ),
        "theirs.pdf",
        PDF,
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("document", &theirs.body["id"], json!({})),
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let d = f
        .app
        .client
        .get(
            f.app
                .url(&format!("/api/v1/attachments/{}", pdf_id.as_str().unwrap())),
        )
        .bearer_auth(o)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), StatusCode::NOT_FOUND);
    // Not multipart.
    let r = f
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/attachments"),
            Some(t),
            json!({}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

async fn ticket_attachments_scopes_roles_impersonation_and_quota(db: Db) {
    let f = whatsapp_fixture_with(db, |c| {
        c.upload_quota_bytes_per_day = 3 * PDF.len() as u64;
    })
    .await;
    let t = &f.owner.access_token;
    let conv = conversation(&f).await;
    // A ticket's attachment is sent too (same tenant).
    let ticket = f
        .app
        .post(
            "/api/v1/tickets",
            Some(t),
            json!({"subject": "Invoice", "conversation_id": conv}),
        )
        .await;
    assert_eq!(ticket.status, StatusCode::CREATED, "{}", ticket.body);
    let tid = ticket.body["id"].as_str().unwrap().to_owned();
    let ta = upload_to(
        &f.app,
        t,
        &format!("/api/v1/tickets/{tid}/attachments"),
        "invoice.pdf",
        PDF,
    )
    .await;
    assert_eq!(ta.status, StatusCode::CREATED, "{}", ta.body);
    let ta_id = ta.body["id"].clone();
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("document", &ta_id, json!({"caption": "Here"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Deleting the ticket before the send does not take the file from the queued message.
    let del = f
        .app
        .client
        .delete(f.app.url(&format!("/api/v1/tickets/{tid}")))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    wait_status(&f, &conv, &id, &["sent", "delivered", "read"]).await;

    // API key scopes: conversations:write uploads; sending a conversation's file also needs
    // conversations:read, a ticket's tickets:read; tickets:write does not upload to a
    // conversation.
    let mk = |scopes: Value| {
        let app = &f.app;
        async move {
            let k = app
                .post(
                    "/api/v1/api-keys",
                    Some(t),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
            k.body["key"].as_str().unwrap().to_owned()
        }
    };
    let cw = mk(json!(["conversations:write"])).await;
    let up = upload(&f.app, &cw, &conv, "k.pdf", PDF).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    // Sending a file reads it: a conversation's needs conversations:read too.
    let r = send(
        &f.app,
        &cw,
        &conv,
        file_message("document", &up.body["id"], json!({})),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    let crw = mk(json!(["conversations:read", "conversations:write"])).await;
    let r = send(
        &f.app,
        &crw,
        &conv,
        file_message("document", &up.body["id"], json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let ticket2 = f
        .app
        .post("/api/v1/tickets", Some(t), json!({"subject": "Other"}))
        .await;
    let ta2 = upload_to(
        &f.app,
        t,
        &format!(
            "/api/v1/tickets/{}/attachments",
            ticket2.body["id"].as_str().unwrap()
        ),
        "t2.pdf",
        PDF,
    )
    .await;
    assert_eq!(ta2.status, StatusCode::CREATED, "{}", ta2.body);
    let r = send(
        &f.app,
        &cw,
        &conv,
        file_message("document", &ta2.body["id"], json!({})),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    let cwtr = mk(json!(["conversations:write", "tickets:read"])).await;
    let r = send(
        &f.app,
        &cwtr,
        &conv,
        file_message("document", &ta2.body["id"], json!({})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let tw = mk(json!(["tickets:write"])).await;
    let r = upload(&f.app, &tw, &conv, "no.pdf", PDF).await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    // Reading a conversation's file needs conversations:read.
    let url = format!("/api/v1/attachments/{}", up.body["id"].as_str().unwrap());
    let get = |key: String| {
        let app = &f.app;
        let url = url.clone();
        async move {
            app.client
                .get(app.url(&url))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(tw.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        get(mk(json!(["conversations:read"])).await).await,
        StatusCode::OK
    );
    // Agents upload and send.
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    let r = upload(&f.app, &agent.access_token, &conv, "a.pdf", PDF).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A read-only impersonation neither uploads nor sends.
    let root = f.app.super_admin("root@platform.example").await;
    let r = f
        .app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", f.owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "support case 16"}),
        )
        .await;
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    let r = upload(&f.app, &imp, &conv, "i.pdf", PDF).await;
    assert_error(&r, StatusCode::FORBIDDEN, "impersonation_read_only");
    let r = send(
        &f.app,
        &imp,
        &conv,
        file_message("document", &up.body["id"], json!({})),
    )
    .await;
    assert_error(&r, StatusCode::FORBIDDEN, "impersonation_read_only");
    // The owner has used the day's quota (3 files: the tickets' two and k.pdf, uploaded by a key
    // acting for the owner): the next upload is refused, and audited.
    let r = upload(&f.app, t, &conv, "over.pdf", PDF).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "upload_quota_exceeded");
}

/// Meta refuses the upload of the file (131053, a permanent refusal): the message fails with
/// that code and a readable reason at once, leaves the queue, and is neither retried nor sent
/// once Meta would take the file again.
async fn a_file_meta_refuses_fails_the_message_with_131053_and_is_not_retried(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    let conv = conversation(&f).await;
    let r = upload(&f.app, t, &conv, "invoice.png", &png()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let attachment = r.body["id"].clone();
    sim_config(&f, json!({"media_refuse_uploads": true})).await;
    let r = send(
        &f.app,
        t,
        &conv,
        file_message("image", &attachment, json!({"caption": "Your invoice"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let m = wait_status(&f, &conv, &id, &["failed"]).await;
    assert_eq!(m["error"][0]["code"], 131_053, "{m}");
    assert!(
        m["error"][0]["message"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{m}"
    );
    let queued = f
        .app
        .db
        .count_as_owner("SELECT COUNT(*) FROM whatsapp_outbound_queue")
        .await
        .unwrap();
    assert_eq!(queued, 0, "not retried");
    assert_eq!(audit_count(&f.app, "attachment.media_uploaded").await, 0);

    // Meta would take it now: the failed message stays failed and nothing is sent.
    sim_config(&f, json!({"media_refuse_uploads": false})).await;
    f.app.clock.advance(time::Duration::minutes(1));
    palisade_core::whatsapp::outbound::send_pending(&f.app.services)
        .await
        .unwrap();
    assert_eq!(message(&f, &conv, &id).await["status"], "failed");
    assert!(sim_outbound(&f).await.iter().all(|o| o["type"] != "image"));
}
