//! Outbound WhatsApp messaging: agents (and API keys) reply in a conversation; the message is
//! queued durably, sent through the Graph API (the simulator), and its status follows Meta's
//! status webhooks. The 24-hour customer service window is enforced before anything is queued.

use crate::support::{whatsapp_fixture_with, WhatsAppFixture};
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    a_reply_inside_the_window_is_sent_and_follows_its_statuses,
    outside_the_window_only_templates_are_accepted,
    graph_errors_fail_permanently_or_are_retried,
    who_may_send,
    conversations_are_assigned_labelled_resolved_and_noted,
    media_and_interactive_messages_are_sent,
    an_agents_reply_is_sent_at_once_not_at_the_senders_next_tick
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

/// The sender's worker is off: these tests run its rounds themselves (`send_pending`), so a
/// queued message stays queued until they do (the worker would take an agent's message at
/// once: it is woken when one is queued).
async fn setup(db: Db) -> Setup {
    Setup(whatsapp_fixture_with(db, |c| c.outbound_worker_interval_ms = 0).await)
}

impl Setup {
    /// A customer writes (through the simulator); returns the conversation's id.
    async fn customer_writes(&self, text: &str) -> String {
        let r = self
            .app
            .client
            .post(format!("{}/_sim/inbound", self.sim))
            .json(&json!({
                "phone_number_id": self.phone_number_id, "from": "447700900123",
                "profile_name": "Ana Souza", "type": "text", "text": {"body": text},
            }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        for _ in 0..200 {
            self.settle().await;
            let convs = self
                .app
                .get("/api/v1/conversations", &self.owner.access_token)
                .await
                .body;
            if let Some(c) = convs["data"].as_array().unwrap().first() {
                return c["id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the customer's message never arrived");
    }

    async fn message(&self, conv: &str, id: &str) -> Value {
        let r = self
            .app
            .get(
                &format!("/api/v1/conversations/{conv}/messages?limit=200"),
                &self.owner.access_token,
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

    /// Runs the sender (and the inbound processor) until the message's status is one of `want`.
    async fn wait_status(&self, conv: &str, id: &str, want: &[&str]) -> Value {
        let mut m = Value::Null;
        for _ in 0..200 {
            palisade_core::whatsapp::outbound::send_pending(&self.app.services)
                .await
                .unwrap();
            self.settle().await;
            m = self.message(conv, id).await;
            if want.iter().any(|w| m["status"] == *w) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("message never reached {want:?}: {m}");
    }

    async fn sent(&self) -> Vec<Value> {
        self.app
            .client
            .get(format!(
                "{}/_sim/phone-numbers/{}/outbound",
                self.sim, self.phone_number_id
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

    async fn force_status(&self, wamid: &str, status: &str) {
        let r = self
            .app
            .client
            .post(format!(
                "{}/_sim/phone-numbers/{}/outbound/{wamid}/status",
                self.sim, self.phone_number_id
            ))
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

fn text(body: &str) -> Value {
    json!({"type": "text", "text": {"body": body}})
}

fn hello_world() -> Value {
    json!({"type": "template", "template": {"name": "hello_world", "language": "en_US"}})
}

async fn a_reply_inside_the_window_is_sent_and_follows_its_statuses(db: Db) {
    let s = setup(db).await;
    // Statuses come only when the test asks (the automatic ones could race the wamid's storage).
    s.sim_config(json!({"auto_status": false})).await;
    let conv = s.customer_writes("Hello, is my order ready?").await;
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            text("Yes, it ships today."),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["status"], "queued");
    assert_eq!(r.body["direction"], "outbound");
    assert_eq!(r.body["type"], "text");
    assert_eq!(r.body["text"], "Yes, it ships today.");
    assert!(r.body["wamid"].is_null());
    assert_eq!(r.body["author_id"], s.owner.user_id.as_str());
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_outbound_queue")
            .await
            .unwrap(),
        1
    );

    let m = s.wait_status(&conv, &id, &["sent"]).await;
    let wamid = m["wamid"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");
    assert!(m["error"].is_null());
    let sent = s.sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["wamid"], wamid.as_str());
    assert_eq!(sent[0]["to"], "447700900123");
    assert_eq!(sent[0]["type"], "text");
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_outbound_queue")
            .await
            .unwrap(),
        0
    );

    // Meta's status webhooks move it forward.
    s.force_status(&wamid, "delivered").await;
    let m = s.wait_status(&conv, &id, &["delivered"]).await;
    assert_eq!(m["wamid"], wamid.as_str());
    s.force_status(&wamid, "read").await;
    s.wait_status(&conv, &id, &["read"]).await;
    // Sending again does not resend it.
    palisade_core::whatsapp::outbound::send_pending(&s.app.services)
        .await
        .unwrap();
    assert_eq!(s.sent().await.len(), 1);
}

async fn outside_the_window_only_templates_are_accepted(db: Db) {
    let mut s = setup(db).await;
    let conv = s.customer_writes("Hi").await;
    s.app.clock.advance(time::Duration::hours(25));
    // Access tokens live 15 minutes: sign in again.
    s.owner = s.app.login(&s.owner.email, &s.owner.password).await;
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            text("Are you still there?"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "outside_customer_service_window");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("template"),
        "{:?}",
        r.body
    );
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            json!({"type": "image", "image": {"link": "https://example.com/a.png"}}),
        )
        .await;
    assert_eq!(r.code(), "outside_customer_service_window");
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM messages WHERE direction = 'outbound'")
            .await
            .unwrap(),
        0
    );

    // A template is checked against the stored ones first: synced from Meta, then accepted.
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            hello_world(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.code(), "template_not_found");
    s.sync_templates().await;
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            hello_world(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["type"], "template");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let m = s
        .wait_status(&conv, &id, &["sent", "delivered", "read"])
        .await;
    assert!(m["wamid"].as_str().unwrap().starts_with("wamid."));
    let sent = s.sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "template");

    // Malformed messages are refused precisely.
    for (body, status) in [
        (json!({"type": "text", "text": {"body": ""}}), 422),
        (
            json!({"type": "template", "template": {"name": "Bad Name", "language": "en_US"}}),
            422,
        ),
        (
            json!({"type": "template", "template": {"name": "hello_world", "language": 5}}),
            422,
        ),
        (json!({"type": "video", "video": {}}), 422),
        (json!({"type": "location", "location": {}}), 422),
        (
            json!({"type": "text", "text": {"body": "x"}, "extra": 1}),
            422,
        ),
    ] {
        let r = s
            .app
            .post(
                &format!("/api/v1/conversations/{conv}/messages"),
                Some(&s.owner.access_token),
                body.clone(),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{body}: {:?}", r.body);
    }
}

async fn graph_errors_fail_permanently_or_are_retried(db: Db) {
    let s = setup(db).await;
    s.sim_config(json!({"auto_status": false})).await;
    let conv = s.customer_writes("Hi").await;
    // A template Meta does not have (stored here under a name Meta no longer knows, as when it
    // was deleted at Meta after the last sync): 132001, permanent.
    s.sync_templates().await;
    s.app
        .db
        .execute_as_owner(
            "UPDATE message_templates SET name = 'no_such_template' WHERE name = 'hello_world'",
        )
        .await
        .unwrap();
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            json!({"type": "template", "template": {"name": "no_such_template", "language": "en_US"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let m = s.wait_status(&conv, &id, &["failed"]).await;
    assert!(m["wamid"].is_null());
    assert_eq!(m["error"][0]["code"], 132001, "{m}");
    assert!(!m["error"][0]["message"].as_str().unwrap().is_empty());
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_outbound_queue")
            .await
            .unwrap(),
        0
    );

    // Throughput exhausted (130429): retried with backoff, then sent.
    s.sim_config(json!({"throughput_per_second": 0})).await;
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            text("Retry me"),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        palisade_core::whatsapp::outbound::send_pending(&s.app.services)
            .await
            .unwrap();
        let n = s
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
    assert_eq!(s.message(&conv, &id).await["status"], "queued");
    s.sim_config(json!({"throughput_per_second": 80})).await;
    // Not due yet: nothing is sent before the backoff has passed.
    palisade_core::whatsapp::outbound::send_pending(&s.app.services)
        .await
        .unwrap();
    assert_eq!(s.message(&conv, &id).await["status"], "queued");
    s.app.clock.advance(time::Duration::seconds(5));
    let m = s.wait_status(&conv, &id, &["sent"]).await;
    assert!(m["wamid"].as_str().unwrap().starts_with("wamid."));
}

async fn who_may_send(db: Db) {
    let s = setup(db).await;
    s.sim_config(json!({"auto_status": false})).await;
    let conv = s.customer_writes("Hi").await;
    let path = format!("/api/v1/conversations/{conv}/messages");

    // An agent of the tenant may send.
    let agent = s
        .app
        .add_user(&s.owner, "agent@acme.example", "agent")
        .await;
    let r = s
        .app
        .post(&path, Some(&agent.access_token), text("From the agent"))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["author_id"], agent.user_id.as_str());

    // Another tenant sees nothing.
    let other = s.app.register("Other", "owner@other.example").await;
    let r = s
        .app
        .post(&path, Some(&other.access_token), text("Intruder"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);

    // API keys: conversations:write may send; read_only may not.
    let key = |scopes: Value| {
        let s = &s;
        async move {
            let r = s
                .app
                .post(
                    "/api/v1/api-keys",
                    Some(&s.owner.access_token),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["key"].as_str().unwrap().to_owned()
        }
    };
    let ro = key(json!(["read_only"])).await;
    let r = s.app.post(&path, Some(&ro), text("Read-only")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let rw = key(json!(["conversations:write", "conversations:read"])).await;
    let r = s.app.post(&path, Some(&rw), text("By key")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);

    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM messages WHERE direction = 'outbound'")
            .await
            .unwrap(),
        2
    );
}

async fn conversations_are_assigned_labelled_resolved_and_noted(db: Db) {
    let s = setup(db).await;
    s.sim_config(json!({"auto_status": false})).await;
    let conv = s.customer_writes("Hi").await;
    let path = format!("/api/v1/conversations/{conv}");
    let agent = s
        .app
        .add_user(&s.owner, "agent@acme.example", "agent")
        .await;

    let r = s
        .app
        .patch(
            &path,
            &agent.access_token,
            json!({"status": "pending", "assignee_id": agent.user_id, "labels": ["vip", " billing ", "vip"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["assignee_id"], agent.user_id.as_str());
    assert_eq!(r.body["labels"], json!(["vip", "billing"]));
    // Absent fields stay; null unassigns.
    let r = s
        .app
        .patch(&path, &s.owner.access_token, json!({"assignee_id": null}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["assignee_id"].is_null());
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["labels"], json!(["vip", "billing"]));
    let r = s.app.get(&path, &s.owner.access_token).await;
    assert_eq!(r.body["labels"], json!(["vip", "billing"]));

    // The assignee must be a user of the tenant.
    let other = s.app.register("Other", "owner@other.example").await;
    for body in [
        json!({"assignee_id": other.user_id}),
        json!({"assignee_id": "01890000-0000-7000-8000-000000000000"}),
        json!({"status": "closed"}),
        json!({"labels": [""]}),
    ] {
        let r = s
            .app
            .patch(&path, &s.owner.access_token, body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            r.body
        );
    }
    let r = s
        .app
        .patch(&path, &other.access_token, json!({"status": "resolved"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s
        .app
        .patch(&path, &s.owner.access_token, json!({"status": "resolved"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM audit_log WHERE action = 'conversation.updated'")
            .await
            .unwrap()
            >= 3
    );

    // Notes are stored, listed and never sent.
    let r = s
        .app
        .post(
            &format!("{path}/notes"),
            Some(&agent.access_token),
            json!({"body": "Customer prefers email."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["type"], "note");
    assert_eq!(r.body["direction"], "internal");
    assert_eq!(r.body["status"], "recorded");
    assert_eq!(r.body["text"], "Customer prefers email.");
    let id = r.body["id"].as_str().unwrap().to_owned();
    palisade_core::whatsapp::outbound::send_pending(&s.app.services)
        .await
        .unwrap();
    assert_eq!(s.message(&conv, &id).await["status"], "recorded");
    assert!(s.sent().await.is_empty());
    let r = s
        .app
        .post(
            &format!("{path}/notes"),
            Some(&agent.access_token),
            json!({"body": " "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .app
        .post(
            &format!("{path}/notes"),
            Some(&other.access_token),
            json!({"body": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn media_and_interactive_messages_are_sent(db: Db) {
    let s = setup(db).await;
    s.sim_config(json!({"auto_status": false})).await;
    let conv = s.customer_writes("Hi").await;
    let path = format!("/api/v1/conversations/{conv}/messages");
    let image = json!({"type": "image", "image": {"link": "https://example.com/a.png", "caption": "Your order"}});
    let buttons = json!({"type": "interactive", "interactive": {
        "type": "button",
        "body": {"text": "Change or cancel?"},
        "action": {"buttons": [
            {"type": "reply", "reply": {"id": "change", "title": "Change"}},
            {"type": "reply", "reply": {"id": "cancel", "title": "Cancel"}}
        ]}
    }});
    let mut ids = Vec::new();
    for body in [image, buttons] {
        let r = s
            .app
            .post(&path, Some(&s.owner.access_token), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{body}: {:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let m = s.wait_status(&conv, id, &["sent"]).await;
        assert!(m["wamid"].as_str().unwrap().starts_with("wamid."));
    }
    let sent = s.sent().await;
    // Two senders (the worker and this test) may send them in either order, as Meta may
    // deliver them.
    let mut kinds: Vec<&str> = sent.iter().map(|m| m["type"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["image", "interactive"]);
    assert_eq!(s.message(&conv, &ids[0]).await["text"], "Your order");

    for bad in [
        json!({"type": "image", "image": {}}),
        json!({"type": "image", "image": {"id": "1", "link": "https://example.com/a.png"}}),
        json!({"type": "image", "image": {"link": "ftp://example.com/a.png"}}),
        json!({"type": "audio", "audio": {"id": "1", "caption": "no"}}),
        json!({"type": "interactive", "interactive": {"type": "carousel", "action": {}}}),
        json!({"type": "interactive", "interactive": {"type": "button"}}),
    ] {
        let r = s
            .app
            .post(&path, Some(&s.owner.access_token), bad.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            r.body
        );
    }
}

/// The sender is woken when a person's message is queued: with its timer at a minute, a reply
/// still reaches Meta (the simulator) within a couple of seconds.
async fn an_agents_reply_is_sent_at_once_not_at_the_senders_next_tick(db: Db) {
    let s = Setup(whatsapp_fixture_with(db, |c| c.outbound_worker_interval_ms = 60_000).await);
    let conv = s.customer_writes("Hello, is my order ready?").await;
    // The sender's round at start is long over; its next tick is a minute away.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = std::time::Instant::now();
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&s.owner.access_token),
            text("Yes, it ships today."),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    while s.sent().await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the reply waited for the sender's timer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = s.sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["body"]["text"]["body"], "Yes, it ships today.");
}
