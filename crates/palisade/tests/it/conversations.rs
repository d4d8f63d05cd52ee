//! `GET /api/v1/conversations` as an inbox reads it: by last activity (the latest inbound or
//! outbound message), newest first, each with its last message, paged by an opaque cursor that
//! stays safe while conversations move, and narrowed by status, assignee and label.

use crate::support::{whatsapp_fixture_with, WhatsAppFixture};
use palisade_core::clock::Clock;
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    conversations_follow_their_last_inbound_or_outbound_message,
    the_cursor_neither_repeats_nor_skips_while_conversations_move,
    every_filter_pages_in_activity_order,
    another_tenant_and_bad_cursors_are_refused
);

struct Setup(WhatsAppFixture);

impl std::ops::Deref for Setup {
    type Target = WhatsAppFixture;
    fn deref(&self) -> &WhatsAppFixture {
        &self.0
    }
}

/// The sender is off (`outbound_worker_interval_ms = 0`): a reply stays `queued`, as the
/// list's items are compared with it (with the sender on, an agent's reply wakes it at once and
/// may be `sent` before the list is read).
async fn setup(db: Db) -> Setup {
    Setup(whatsapp_fixture_with(db, |c| c.outbound_worker_interval_ms = 0).await)
}

impl Setup {
    /// The application's (manual) clock, in Unix seconds.
    fn now_unix(&self) -> i64 {
        self.app.clock.now().unix_timestamp()
    }

    /// `from` writes `text`, sent at Unix time `at` (Meta's timestamp, the conversation's
    /// activity), through the simulator; waits until it is stored. Returns its conversation.
    async fn customer_writes(&self, from: &str, text: &str, at: i64) -> String {
        let r = self
            .app
            .client
            .post(format!("{}/_sim/inbound", self.sim))
            .json(&json!({
                "phone_number_id": self.phone_number_id, "from": from,
                "profile_name": "Customer", "type": "text", "text": {"body": text},
                "timestamp": at.to_string(),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let wamid = r.json::<Value>().await.unwrap()["wamid"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..200 {
            palisade_core::whatsapp::inbound::process_pending(&self.app.services)
                .await
                .unwrap();
            let stored = self
                .app
                .db
                .count_as_owner(&format!(
                    "SELECT COUNT(*) FROM messages WHERE wamid = '{wamid}'"
                ))
                .await
                .unwrap();
            if stored == 1 {
                let phone = format!("+{from}");
                let all = self.page_as(&self.owner.access_token, "limit=200").await;
                let found = all["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["contact_phone"] == phone.as_str() && c["status"] != "resolved")
                    .map(|c| c["id"].as_str().unwrap().to_owned());
                return found.unwrap_or_else(|| panic!("no conversation of {phone} in {all}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the customer's message was never stored");
    }

    /// An agent replies in `conversation` (stored `queued`, at the clock's time).
    async fn reply(&self, conversation: &str, text: &str) -> Value {
        let r = self
            .app
            .post(
                &format!("/api/v1/conversations/{conversation}/messages"),
                Some(&self.owner.access_token),
                json!({"type": "text", "text": {"body": text}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        r.body
    }

    async fn page_as(&self, token: &str, query: &str) -> Value {
        let r = self
            .app
            .get(&format!("/api/v1/conversations?{query}"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        r.body
    }

    /// The ids of one page, in order.
    async fn ids(&self, query: &str) -> Vec<String> {
        ids_of(&self.page_as(&self.owner.access_token, query).await)
    }

    /// The ids of every page of `query`, `limit` at a time, in order.
    async fn walk(&self, query: &str, limit: usize) -> Vec<String> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let q = match &cursor {
                Some(c) => format!("{query}&limit={limit}&cursor={c}"),
                None => format!("{query}&limit={limit}"),
            };
            let page = self.page_as(&self.owner.access_token, &q).await;
            let ids = ids_of(&page);
            assert!(ids.len() <= limit);
            all.extend(ids);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
        panic!("the pages never ended");
    }

    async fn patch(&self, id: &str, body: Value) {
        let r = self
            .app
            .patch(
                &format!("/api/v1/conversations/{id}"),
                &self.owner.access_token,
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
}

fn ids_of(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An inbound message and an agent's reply each move their conversation to the top; a note does
/// not. Each item carries its latest inbound or outbound message in short.
async fn conversations_follow_their_last_inbound_or_outbound_message(db: Db) {
    let s = setup(db).await;
    let t = s.now_unix();
    let a = s.customer_writes("447700900001", "first", t - 300).await;
    let b = s.customer_writes("447700900002", "second", t - 200).await;
    let long = "x".repeat(150);
    let c = s.customer_writes("447700900003", &long, t - 100).await;
    assert_eq!(
        s.ids("").await,
        [c.as_str(), b.as_str(), a.as_str()],
        "latest activity first"
    );

    // The oldest gets a reply: on top, with the reply as its last message.
    let reply = s.reply(&a, "We are on it").await;
    assert_eq!(s.ids("").await, [a.as_str(), c.as_str(), b.as_str()]);
    let page = s.page_as(&s.owner.access_token, "").await;
    let top = &page["data"][0];
    assert_eq!(top["last_message_at"], reply["created_at"]);
    assert_eq!(
        top["last_message"],
        json!({
            "id": reply["id"], "direction": "outbound", "type": "text", "text": "We are on it",
            "status": "queued", "created_at": reply["created_at"],
        })
    );
    // The long text is cut at 100 characters, and says so.
    let third = &page["data"][1];
    assert_eq!(third["last_message"]["direction"], "inbound");
    assert_eq!(
        third["last_message"]["text"],
        format!("{}…", "x".repeat(100))
    );
    // Every field of the conversation itself is there, as `GET /conversations/{id}` answers.
    let one = s
        .app
        .get(&format!("/api/v1/conversations/{a}"), &s.owner.access_token)
        .await;
    let mut listed = top.clone();
    listed.as_object_mut().unwrap().remove("last_message");
    assert_eq!(listed, one.body);

    // A note is not activity: the order and the preview stay.
    s.app.clock.advance(time::Duration::seconds(5));
    let r = s
        .app
        .post(
            &format!("/api/v1/conversations/{b}/notes"),
            Some(&s.owner.access_token),
            json!({"body": "call back tomorrow"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(s.ids("").await, [a.as_str(), c.as_str(), b.as_str()]);
    let page = s.page_as(&s.owner.access_token, "").await;
    assert_eq!(page["data"][2]["last_message"]["text"], "second");

    // A new inbound message of the middle one, newer than the reply: on top.
    s.customer_writes("447700900003", "any news?", s.now_unix() + 10)
        .await;
    assert_eq!(s.ids("").await, [c.as_str(), a.as_str(), b.as_str()]);
    let page = s.page_as(&s.owner.access_token, "").await;
    assert_eq!(page["data"][0]["last_message"]["text"], "any news?");

    // An inbound message dated before the conversation's activity does not move it back.
    s.customer_writes("447700900001", "late delivery", t - 1000)
        .await;
    assert_eq!(s.ids("").await, [c.as_str(), a.as_str(), b.as_str()]);
}

/// Pages are cut by (last activity, id): a conversation that moves to the top while a client
/// pages is never shown twice, and every other one exactly once.
async fn the_cursor_neither_repeats_nor_skips_while_conversations_move(db: Db) {
    let s = setup(db).await;
    let t = s.now_unix();
    let mut convs = Vec::new();
    // Two at the same second: the id breaks the tie.
    for (i, at) in [t - 500, t - 400, t - 300, t - 300, t - 100]
        .iter()
        .enumerate()
    {
        convs.push(
            s.customer_writes(&format!("4477009000{i:02}"), "hi", *at)
                .await,
        );
    }
    let all = s.ids("limit=200").await;
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], convs[4]);
    assert_eq!(all[3], convs[1]);
    assert_eq!(all[4], convs[0]);
    let mut tied = [convs[2].clone(), convs[3].clone()];
    tied.sort();
    tied.reverse();
    assert_eq!(all[1..3], tied[..], "same activity: newest id first");

    let first = s.page_as(&s.owner.access_token, "limit=2").await;
    assert_eq!(ids_of(&first), all[..2]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // While the client reads page one: one it has seen and one it has not move to the top.
    s.reply(&all[0], "seen, moved").await;
    s.app.clock.advance(time::Duration::seconds(1));
    s.reply(&all[3], "unseen, moved").await;
    let second = s
        .page_as(&s.owner.access_token, &format!("limit=2&cursor={cursor}"))
        .await;
    let third = match second["next_cursor"].as_str() {
        Some(c) => ids_of(
            &s.page_as(&s.owner.access_token, &format!("limit=2&cursor={c}"))
                .await,
        ),
        None => Vec::new(),
    };
    let mut later = ids_of(&second);
    later.extend(third);
    // The moved, unseen one is not on the later pages (it is before the cursor now); the seen one
    // is not repeated; the others come in order, each once.
    assert_eq!(later, [all[2].clone(), all[4].clone()]);
    // A fresh first page shows what moved.
    assert_eq!(s.ids("limit=2").await, [all[3].as_str(), all[0].as_str()]);
    // The same cursor read again gives the same page: nothing older moved.
    let again = s
        .page_as(&s.owner.access_token, &format!("limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids_of(&again), ids_of(&second));
}

/// Each filter (status, assignee as an id, `me`, `none` and `unassigned`, label) pages in
/// activity order, and the label's order follows new messages (its index is kept in step).
async fn every_filter_pages_in_activity_order(db: Db) {
    let s = setup(db).await;
    let agent = s
        .app
        .add_user(&s.owner, "agent@acme.example", "agent")
        .await;
    let t = s.now_unix();
    let mut convs = Vec::new();
    for i in 0..6 {
        convs.push(
            s.customer_writes(&format!("4477009001{i:02}"), "hello", t - 600 + i * 10)
                .await,
        );
    }
    // Newest first: 5, 4, 3, 2, 1, 0.
    let newest_first = |picked: &[usize]| -> Vec<String> {
        let mut v: Vec<usize> = picked.to_vec();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.into_iter().map(|i| convs[i].clone()).collect()
    };
    for i in [0, 2, 4] {
        s.patch(&convs[i], json!({"labels": ["vip", "billing"]}))
            .await;
    }
    for i in [1, 2, 5] {
        s.patch(
            &convs[i],
            json!({"assignee_id": agent.user_id, "status": "pending"}),
        )
        .await;
    }
    s.patch(&convs[3], json!({"assignee_id": s.owner.user_id}))
        .await;

    assert_eq!(s.walk("label=vip", 1).await, newest_first(&[0, 2, 4]));
    assert_eq!(s.walk("label=billing", 2).await, newest_first(&[0, 2, 4]));
    assert_eq!(s.walk("status=pending", 1).await, newest_first(&[1, 2, 5]));
    assert_eq!(s.walk("status=open", 2).await, newest_first(&[0, 3, 4]));
    let by_agent = format!("assignee={}", agent.user_id);
    assert_eq!(s.walk(&by_agent, 2).await, newest_first(&[1, 2, 5]));
    assert_eq!(s.walk("assignee=me", 1).await, newest_first(&[3]));
    assert_eq!(s.walk("assignee=none", 1).await, newest_first(&[0, 4]));
    assert_eq!(
        s.walk("assignee=unassigned", 1).await,
        newest_first(&[0, 4])
    );
    let agent_sees = ids_of(&s.page_as(&agent.access_token, "assignee=me").await);
    assert_eq!(agent_sees, newest_first(&[1, 2, 5]));
    assert_eq!(
        s.walk("label=vip&status=pending", 1).await,
        newest_first(&[2])
    );
    assert_eq!(
        s.walk(&format!("label=vip&{by_agent}&status=pending"), 1)
            .await,
        newest_first(&[2])
    );

    // The oldest labelled one gets a reply, another an inbound message: the label's pages follow.
    s.reply(&convs[0], "on it").await;
    assert_eq!(
        s.walk("label=vip", 1).await,
        [convs[0].as_str(), convs[4].as_str(), convs[2].as_str()]
    );
    s.customer_writes("447700900102", "me again", s.now_unix() + 30)
        .await;
    assert_eq!(
        s.walk("label=vip", 2).await,
        [convs[2].as_str(), convs[0].as_str(), convs[4].as_str()]
    );
    // Relabelling takes the conversation's current activity with it.
    s.patch(&convs[0], json!({"labels": ["billing"]})).await;
    s.patch(&convs[5], json!({"labels": ["vip"]})).await;
    assert_eq!(
        s.walk("label=vip", 1).await,
        [convs[2].as_str(), convs[5].as_str(), convs[4].as_str()]
    );
    assert_eq!(
        s.walk("label=billing", 5).await,
        [convs[2].as_str(), convs[0].as_str(), convs[4].as_str()]
    );

    // An erased contact's conversation leaves the label's list with it.
    let contact = s
        .app
        .get(
            &format!("/api/v1/conversations/{}", convs[2]),
            &s.owner.access_token,
        )
        .await
        .body["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .app
        .delete(
            &format!("/api/v1/contacts/{contact}"),
            &s.owner.access_token,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        s.walk("label=vip", 1).await,
        [convs[5].as_str(), convs[4].as_str()]
    );
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM conversation_labels")
            .await
            .unwrap(),
        4
    );
}

/// Another tenant sees none of these, whatever cursor or filter it sends; a cursor that this
/// list did not give out is a 400 that says so.
async fn another_tenant_and_bad_cursors_are_refused(db: Db) {
    let s = setup(db).await;
    let t = s.now_unix();
    let a = s.customer_writes("447700900201", "hello", t - 100).await;
    s.customer_writes("447700900202", "hello", t - 50).await;
    s.patch(&a, json!({"labels": ["vip"]})).await;
    let page = s.page_as(&s.owner.access_token, "limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();

    let other = s.app.register("Other", "owner@other.example").await;
    for query in [
        String::new(),
        "label=vip".to_owned(),
        "status=open".to_owned(),
        "assignee=none".to_owned(),
        format!("cursor={cursor}"),
        format!("label=vip&cursor={cursor}"),
        format!("assignee={}", s.owner.user_id),
    ] {
        let r = s.page_as(&other.access_token, &query).await;
        assert_eq!(r, json!({"data": [], "next_cursor": null}), "{query}");
    }

    for bad in [
        "x".to_owned(),
        uuid::Uuid::now_v7().to_string(),
        format!("{cursor}AA"),
        cursor[..cursor.len() - 1].to_owned(),
        "%20".to_owned(),
    ] {
        let r = s
            .app
            .get(
                &format!("/api/v1/conversations?cursor={bad}"),
                &s.owner.access_token,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_query", "{}", r.body);
        assert_eq!(
            r.body["error"]["message"],
            "cursor is not a cursor of this list: pass the previous page's next_cursor back unchanged"
        );
    }
}
