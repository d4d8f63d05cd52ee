//! Inbound WhatsApp messaging: Meta's signed webhook POSTs (from the simulator and by hand),
//! stored durably, processed into contacts, conversations and messages, read through the API.

use crate::support::meta_signature as sign;
use crate::support::{whatsapp_fixture, WhatsAppFixture};
use palisade_testkit::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    a_customer_message_from_the_simulator_reaches_the_api,
    statuses_move_forward_and_redeliveries_change_nothing,
    bad_signatures_big_bodies_and_bad_json_are_handled,
    the_database_keeps_a_message_on_its_conversations_connection,
    conversations_are_listed_by_status_assignee_and_label
);

/// The shared WhatsApp fixture, with this module's helpers on top.
struct Setup(WhatsAppFixture);

impl std::ops::Deref for Setup {
    type Target = WhatsAppFixture;
    fn deref(&self) -> &WhatsAppFixture {
        &self.0
    }
}

impl std::ops::DerefMut for Setup {
    fn deref_mut(&mut self) -> &mut WhatsAppFixture {
        &mut self.0
    }
}

async fn setup(db: Db) -> Setup {
    Setup(whatsapp_fixture(db).await)
}

impl Setup {
    fn hook(&self) -> String {
        self.app
            .url(&format!("/webhooks/whatsapp/{}", self.connection_id))
    }

    async fn post_raw(&self, body: Vec<u8>, signature: Option<String>) -> reqwest::Response {
        let mut req = self
            .app
            .client
            .post(self.hook())
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.unwrap()
    }

    /// Posts a body the server refuses by its Content-Length; returns the response status. Over
    /// raw TCP, because the server may answer 413 and close before the client has written the
    /// whole body, which an HTTP client reports as a broken pipe instead of the response.
    async fn post_oversized(&self, body: &[u8], signature: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let url = reqwest::Url::parse(&self.hook()).unwrap();
        let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             x-hub-signature-256: {signature}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            url.path(),
            url.host_str().unwrap(),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let _ = stream.write_all(body).await; // may fail once the server has answered
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
    }

    /// Posts `payload` signed with the connection's app secret; expects 200 `{}`.
    async fn deliver(&self, payload: &Value) {
        let body = serde_json::to_vec(payload).unwrap();
        let sig = sign(&self.app_secret, &body);
        let r = self.post_raw(body, Some(sig)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
        self.settle().await;
    }

    fn envelope(&self, values: Vec<Value>) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "1",
                "changes": values.into_iter().map(|v| json!({"field": "messages", "value": v})).collect::<Vec<_>>(),
            }]
        })
    }

    fn value(&self, extra: Value) -> Value {
        let mut v = json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": self.phone_number_id},
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn text_value(&self, from: &str, name: &str, wamid: &str, text: &str) -> Value {
        self.value(json!({
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": "1750000000", "type": "text", "text": {"body": text}}],
        }))
    }

    fn status_value(&self, wamid: &str, status: &str) -> Value {
        let mut st = json!({"id": wamid, "status": status, "timestamp": "1750000100", "recipient_id": "15551230000"});
        if status == "failed" {
            st["errors"] =
                json!([{"code": 131049, "title": "not delivered", "message": "not delivered"}]);
        }
        self.value(json!({ "statuses": [st] }))
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app.db.count_as_owner(sql).await.unwrap()
    }

    async fn message(&self, wamid: &str) -> Value {
        let convs = self
            .app
            .get("/api/v1/conversations", &self.owner.access_token)
            .await;
        for c in convs.body["data"].as_array().unwrap() {
            let msgs = self
                .app
                .get(
                    &format!(
                        "/api/v1/conversations/{}/messages",
                        c["id"].as_str().unwrap()
                    ),
                    &self.owner.access_token,
                )
                .await;
            for m in msgs.body["data"].as_array().unwrap() {
                if m["wamid"] == wamid {
                    return m.clone();
                }
            }
        }
        panic!("no message {wamid}");
    }
}

async fn a_customer_message_from_the_simulator_reaches_the_api(db: Db) {
    let s = setup(db).await;
    let r = s
        .app
        .client
        .post(format!("{}/_sim/inbound", s.sim))
        .json(&json!({
            "phone_number_id": s.phone_number_id, "from": "447700900123",
            "profile_name": "Ana Souza", "type": "text", "text": {"body": "Hello, is my order ready?"},
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // The simulator delivers asynchronously: wait for the stored event, then process it.
    let mut convs = Value::Null;
    for _ in 0..200 {
        s.settle().await;
        convs = s
            .app
            .get("/api/v1/conversations", &s.owner.access_token)
            .await
            .body;
        if !convs["data"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let list = convs["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{convs}");
    let conv = &list[0];
    assert_eq!(conv["status"], "open");
    assert_eq!(conv["contact_phone"], "+447700900123");
    assert_eq!(conv["contact_name"], "Ana Souza");
    assert_eq!(conv["connection_id"], s.connection_id.as_str());
    assert!(convs["next_cursor"].is_null());
    let conv_id = conv["id"].as_str().unwrap().to_owned();

    let contacts = s.app.get("/api/v1/contacts", &s.owner.access_token).await;
    assert_eq!(contacts.status, StatusCode::OK);
    let contact = &contacts.body["data"][0];
    assert_eq!(contact["phone"], "+447700900123");
    assert_eq!(contact["wa_profile_name"], "Ana Souza");
    let contact_id = contact["id"].as_str().unwrap().to_owned();
    let one = s
        .app
        .get(
            &format!("/api/v1/contacts/{contact_id}"),
            &s.owner.access_token,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["id"], contact_id.as_str());

    let msgs = s
        .app
        .get(
            &format!("/api/v1/conversations/{conv_id}/messages"),
            &s.owner.access_token,
        )
        .await;
    assert_eq!(msgs.status, StatusCode::OK, "{:?}", msgs.body);
    let m = &msgs.body["data"][0];
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["type"], "text");
    assert_eq!(m["text"], "Hello, is my order ready?");
    assert_eq!(m["status"], "received");
    assert!(m["wamid"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(m["body"]["text"]["body"], "Hello, is my order ready?");

    // Agents and read-scoped API keys may read; a filter works.
    let agent = s
        .app
        .add_user(&s.owner, "agent@acme.example", "agent")
        .await;
    let open = s
        .app
        .get("/api/v1/conversations?status=open", &agent.access_token)
        .await;
    assert_eq!(open.body["data"].as_array().unwrap().len(), 1);
    let resolved = s
        .app
        .get("/api/v1/conversations?status=resolved", &agent.access_token)
        .await;
    assert_eq!(resolved.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        s.app
            .get("/api/v1/conversations?status=weird", &agent.access_token)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let key = |scopes: Value| {
        let s = &s;
        async move {
            let k = s
                .app
                .post(
                    "/api/v1/api-keys",
                    Some(&s.owner.access_token),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
            k.body["key"].as_str().unwrap().to_owned()
        }
    };
    let conv_key = key(json!(["conversations:read"])).await;
    assert_eq!(
        s.app
            .get(&format!("/api/v1/conversations/{conv_id}"), &conv_key)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        s.app.get("/api/v1/contacts", &conv_key).await.status,
        StatusCode::FORBIDDEN,
        "contacts need contacts:read"
    );

    // Another tenant sees none of it.
    let other = s.app.register("Other", "owner@other.example").await;
    for path in [
        format!("/api/v1/conversations/{conv_id}"),
        format!("/api/v1/conversations/{conv_id}/messages"),
        format!("/api/v1/contacts/{contact_id}"),
    ] {
        let r = s.app.get(&path, &other.access_token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        s.app
            .get("/api/v1/conversations", &other.access_token)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // A connection with history cannot be deleted (disconnect it instead).
    let del = s
        .app
        .delete(
            &format!("/api/v1/whatsapp/connections/{}", s.connection_id),
            &s.owner.access_token,
        )
        .await;
    assert_eq!(del.status, StatusCode::CONFLICT);
}

async fn statuses_move_forward_and_redeliveries_change_nothing(db: Db) {
    let s = setup(db).await;
    let m1 = s.envelope(vec![s.text_value("15551230000", "Bo", "wamid.ONE", "hi")]);
    s.deliver(&m1).await;
    // The same payload again, and the message repeated inside one payload: still one message.
    s.deliver(&m1).await;
    let twice = s.envelope(vec![
        s.text_value("15551230000", "Bo", "wamid.ONE", "hi"),
        s.text_value("15551230000", "Bo", "wamid.ONE", "hi"),
    ]);
    s.deliver(&twice).await;
    assert_eq!(s.count("SELECT COUNT(*) FROM messages").await, 1);
    assert_eq!(s.count("SELECT COUNT(*) FROM contacts").await, 1);
    assert_eq!(s.count("SELECT COUNT(*) FROM conversations").await, 1);

    // Forward only: delivered, then a late sent is ignored, read wins, nothing moves it back.
    for (status, expect) in [
        ("delivered", "delivered"),
        ("sent", "delivered"),
        ("read", "read"),
        ("delivered", "read"),
        ("failed", "read"),
    ] {
        s.deliver(&s.envelope(vec![s.status_value("wamid.ONE", status)]))
            .await;
        assert_eq!(
            s.message("wamid.ONE").await["status"],
            expect,
            "after {status}"
        );
    }
    // Failed records Meta's error; a later read does not undo it.
    s.deliver(&s.envelope(vec![s.text_value(
        "15551230000",
        "Bo",
        "wamid.TWO",
        "again",
    )]))
    .await;
    s.deliver(&s.envelope(vec![s.status_value("wamid.TWO", "failed")]))
        .await;
    s.deliver(&s.envelope(vec![s.status_value("wamid.TWO", "read")]))
        .await;
    let two = s.message("wamid.TWO").await;
    assert_eq!(two["status"], "failed");
    assert_eq!(two["error"][0]["code"], 131049);
    // A status for a message we do not have changes nothing and is not an error.
    s.deliver(&s.envelope(vec![s.status_value("wamid.UNKNOWN", "read")]))
        .await;

    // A batch: several entries and changes, several senders, several types, all processed.
    let batch = json!({
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [
                {"field": "messages", "value": s.text_value("15551230001", "Cy", "wamid.B1", "one")},
                {"field": "messages", "value": s.value(json!({
                    "contacts": [{"profile": {"name": "Di"}, "wa_id": "15551230002"}],
                    "messages": [
                        {"from": "15551230002", "id": "wamid.B2", "timestamp": "1750000001", "type": "image",
                         "image": {"id": "123", "mime_type": "image/jpeg", "sha256": "x"}},
                        {"from": "15551230002", "id": "wamid.B3", "timestamp": "1750000002", "type": "hologram",
                         "hologram": {"depth": 3}, "context": {"from": "15550001111", "id": "wamid.ONE"}},
                    ]}))},
            ]},
            {"id": "1", "changes": [
                {"field": "messages", "value": s.text_value("15551230000", "Bo Renamed", "wamid.B4", "four")},
                {"field": "messages", "value": s.status_value("wamid.TWO", "delivered")},
            ]},
        ]
    });
    s.deliver(&batch).await;
    assert_eq!(s.count("SELECT COUNT(*) FROM messages").await, 6);
    assert_eq!(s.count("SELECT COUNT(*) FROM contacts").await, 3);
    assert_eq!(s.count("SELECT COUNT(*) FROM conversations").await, 3);
    let unknown = s.message("wamid.B3").await;
    assert_eq!(unknown["type"], "hologram");
    assert_eq!(unknown["body"]["hologram"]["depth"], 3, "stored raw");
    assert_eq!(unknown["context_wamid"], "wamid.ONE");
    assert!(unknown["text"].is_null());
    assert_eq!(s.message("wamid.B2").await["body"]["image"]["id"], "123");
    let contacts = s.app.get("/api/v1/contacts", &s.owner.access_token).await;
    let bo = contacts.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["phone"] == "+15551230000")
        .unwrap()
        .clone();
    assert_eq!(bo["wa_profile_name"], "Bo Renamed");
    // Messages page oldest first, with a cursor.
    let conv = s.message("wamid.ONE").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p1 = s
        .app
        .get(
            &format!("/api/v1/conversations/{conv}/messages?limit=2"),
            &s.owner.access_token,
        )
        .await;
    let wamids: Vec<&str> = p1.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["wamid"].as_str().unwrap())
        .collect();
    assert_eq!(wamids, ["wamid.ONE", "wamid.TWO"]);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = s
        .app
        .get(
            &format!("/api/v1/conversations/{conv}/messages?limit=2&cursor={cursor}"),
            &s.owner.access_token,
        )
        .await;
    assert_eq!(p2.body["data"][0]["wamid"], "wamid.B4");
    assert!(p2.body["next_cursor"].is_null());
    assert_eq!(
        s.count("SELECT COUNT(*) FROM whatsapp_inbound_events WHERE error IS NOT NULL")
            .await,
        0
    );
}

async fn bad_signatures_big_bodies_and_bad_json_are_handled(db: Db) {
    let s = setup(db).await;
    let payload =
        serde_json::to_vec(&s.envelope(vec![s.text_value("15551230000", "Bo", "wamid.X", "hi")]))
            .unwrap();
    // Wrong signature, missing signature, a signature for other bytes: 401, nothing stored.
    let r = s
        .post_raw(payload.clone(), Some(sign("not-the-secret", &payload)))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(TestApp::read(r).await.code(), "signature_invalid");
    let r = s.post_raw(payload.clone(), None).await;
    assert_eq!(TestApp::read(r).await.code(), "signature_missing");
    let r = s
        .post_raw(payload.clone(), Some(sign(&s.app_secret, b"{}")))
        .await;
    assert_eq!(TestApp::read(r).await.code(), "signature_invalid");
    let r = s.post_raw(payload.clone(), Some("sha256=zz".into())).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let unknown = s
        .app
        .client
        .post(
            s.app
                .url(&format!("/webhooks/whatsapp/{}", uuid::Uuid::now_v7())),
        )
        .header("X-Hub-Signature-256", sign(&s.app_secret, &payload))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(TestApp::read(unknown).await.code(), "unknown_connection");
    assert_eq!(
        s.count("SELECT COUNT(*) FROM whatsapp_inbound_events")
            .await,
        0
    );
    // The refusals are counted per minute; written at once here, as at shutdown.
    palisade_core::whatsapp::webhook_refusals::flush(&s.app.services, true).await;
    let audit = s
        .app
        .get(
            "/api/v1/audit-logs?action=whatsapp.webhook.signature_invalid",
            &s.owner.access_token,
        )
        .await;
    let records = audit.body["data"].as_array().unwrap();
    assert_eq!(
        records.len(),
        1,
        "the tenant's chain records its refusals, one record a minute: {:?}",
        audit.body
    );
    assert_eq!(records[0]["metadata"]["count"], 4);

    // Over 3 MB: 413, nothing stored.
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let sig = sign(&s.app_secret, &big);
    assert_eq!(s.post_oversized(&big, &sig).await, 413);
    assert_eq!(
        s.count("SELECT COUNT(*) FROM whatsapp_inbound_events")
            .await,
        0
    );

    // Not JSON but correctly signed: acknowledged, stored, recorded as failed processing.
    let junk = b"{\"object\": \"whatsapp_business_account\", \"entry\": [".to_vec();
    let sig = sign(&s.app_secret, &junk);
    let r = s.post_raw(junk, Some(sig)).await;
    assert_eq!(r.status(), StatusCode::OK);
    s.settle().await;
    assert_eq!(
        s.count(
            "SELECT COUNT(*) FROM whatsapp_inbound_events
             WHERE processed_at IS NOT NULL AND error LIKE '%not JSON%'"
        )
        .await,
        1
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM messages").await, 0);
    // Over the API's 1 MB limit but within Meta's 3 MB: accepted and processed.
    let mut padded = payload.clone();
    padded.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    let sig = sign(&s.app_secret, &padded);
    let r = s.post_raw(padded, Some(sig)).await;
    assert_eq!(r.status(), StatusCode::OK);
    s.settle().await;
    assert_eq!(s.count("SELECT COUNT(*) FROM messages").await, 1);

    // Disconnected: refused like an unknown connection.
    let d = s
        .app
        .post(
            &format!(
                "/api/v1/whatsapp/connections/{}/disconnect",
                s.connection_id
            ),
            Some(&s.owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    let r = s
        .post_raw(payload.clone(), Some(sign(&s.app_secret, &payload)))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(TestApp::read(r).await.code(), "connection_disconnected");
}

/// The schema itself refuses a message stored on another connection than its conversation's,
/// or under another tenant (PostgreSQL: one composite foreign key; SQLite: a trigger, see
/// migration 0012). Written as the owner, past every application check.
async fn the_database_keeps_a_message_on_its_conversations_connection(db: Db) {
    let s = setup(db).await;
    s.deliver(&s.envelope(vec![s.text_value(
        "447700900123",
        "Ana",
        "wamid.key1",
        "hi",
    )]))
    .await;
    // A second number of the same tenant, and another tenant.
    crate::support::connect_sim_number(&s.app, &s.sim, &s.owner, "Sales").await;
    s.app.register("Other", "owner@other.example").await;

    let insert = |tenant: &str, connection: &str| {
        let id = match s.app.db.kind() {
            Db::Sqlite => "randomblob(16)",
            Db::Postgres => "gen_random_uuid()",
        };
        format!(
            "INSERT INTO messages (id, tenant_id, conversation_id, connection_id, wamid, direction,
                 type, body, text, status, created_at, status_updated_at)
             SELECT {id}, {tenant}, v.id, {connection}, NULL, 'internal', 'note', '{{}}', 'x',
                 'recorded', v.created_at, v.created_at
             FROM conversations v"
        )
    };
    let other_connection =
        "(SELECT c.id FROM whatsapp_connections c WHERE c.id <> v.connection_id)";
    let other_tenant = "(SELECT t.id FROM tenants t WHERE t.id <> v.tenant_id)";
    assert!(s
        .app
        .db
        .execute_as_owner(&insert("v.tenant_id", other_connection))
        .await
        .is_err());
    assert!(s
        .app
        .db
        .execute_as_owner(&insert(other_tenant, "v.connection_id"))
        .await
        .is_err());
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE text = 'x'")
            .await,
        0
    );
    // The same statement with the conversation's own tenant and connection is accepted.
    s.app
        .db
        .execute_as_owner(&insert("v.tenant_id", "v.connection_id"))
        .await
        .unwrap();
    assert_eq!(
        s.count("SELECT COUNT(*) FROM messages WHERE text = 'x'")
            .await,
        1
    );
}

/// `GET /api/v1/conversations?status=&assignee=&label=`: every given filter applies, `me` and
/// `none` name the caller and nobody, bad values are refused with the field named, and another
/// tenant's user id finds nothing.
async fn conversations_are_listed_by_status_assignee_and_label(db: Db) {
    let s = setup(db).await;
    let t = s.owner.access_token.clone();
    for (i, from) in ["447700900001", "447700900002", "447700900003"]
        .iter()
        .enumerate()
    {
        s.deliver(&s.envelope(vec![s.text_value(
            from,
            "Customer",
            &format!("wamid.filter{i}"),
            "hi",
        )]))
        .await;
    }
    let agent = s
        .app
        .add_user(&s.owner, "agent@acme.example", "agent")
        .await;
    let all = s.app.get("/api/v1/conversations", &t).await;
    let ids: Vec<String> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "{}", all.body);
    let patch = |id: &str, body: Value| {
        let (app, t) = (&s.app, &t);
        let path = format!("/api/v1/conversations/{id}");
        async move {
            let r = app.patch(&path, t, body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
    };
    patch(
        &ids[0],
        json!({"assignee_id": agent.user_id, "labels": ["vip", "billing"]}),
    )
    .await;
    patch(
        &ids[1],
        json!({"assignee_id": s.owner.user_id, "labels": ["vip"], "status": "pending"}),
    )
    .await;
    let list = |query: &'static str, token: String| {
        let app = &s.app;
        async move {
            let r = app
                .get(&format!("/api/v1/conversations?{query}"), &token)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            let mut found: Vec<String> = r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
            found.sort();
            found
        }
    };
    let sorted = |list: &[&String]| {
        let mut v: Vec<String> = list.iter().map(|s| (*s).clone()).collect();
        v.sort();
        v
    };
    assert_eq!(
        list("label=vip", t.clone()).await,
        sorted(&[&ids[0], &ids[1]])
    );
    assert_eq!(
        list("label=%20billing%20", t.clone()).await,
        sorted(&[&ids[0]])
    );
    assert_eq!(list("label=VIP", t.clone()).await, Vec::<String>::new());
    let by_agent = format!("assignee={}", agent.user_id);
    let r = s
        .app
        .get(&format!("/api/v1/conversations?{by_agent}"), &t)
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["data"][0]["id"], ids[0].as_str());
    assert_eq!(
        list("assignee=me", agent.access_token.clone()).await,
        sorted(&[&ids[0]])
    );
    assert_eq!(list("assignee=me", t.clone()).await, sorted(&[&ids[1]]));
    assert_eq!(list("assignee=none", t.clone()).await, sorted(&[&ids[2]]));
    assert_eq!(
        list("label=vip&status=pending&assignee=me", t.clone()).await,
        sorted(&[&ids[1]])
    );
    assert_eq!(
        list("label=vip&status=open", t.clone()).await,
        sorted(&[&ids[0]])
    );
    // Another tenant's user: nothing (and another tenant's caller sees none of these anyway).
    let other = s.app.register("Other", "owner@other.example").await;
    let r = s
        .app
        .get(
            &format!("/api/v1/conversations?assignee={}", other.user_id),
            &t,
        )
        .await;
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(
        list("assignee=none", other.access_token.clone()).await,
        Vec::<String>::new()
    );
    for (query, field) in [
        ("assignee=someone", "assignee"),
        ("label=", "label"),
        ("status=closed", "status"),
    ] {
        let r = s
            .app
            .get(&format!("/api/v1/conversations?{query}"), &t)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            r.body
        );
        assert!(r.body.to_string().contains(field), "{query}: {}", r.body);
    }
}
