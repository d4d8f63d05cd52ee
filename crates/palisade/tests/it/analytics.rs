//! `/api/v1/analytics/*` on a small data set written straight into the tables (exact times):
//! exact counts, percentiles and deal values; local-day buckets in `America/New_York` across
//! the March daylight-saving change (a 23-hour day) and in `Asia/Kolkata` (+05:30); weeks;
//! every refusal; API key scopes, roles and a read-only impersonation; another tenant's rows
//! never counted; and the `resolved_at` a status change writes.

use crate::support::{connect_sim_number, whatsapp_fixture, WhatsAppFixture};
use palisade_core::clock::Clock;
use palisade_testkit::{Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    the_overview_counts_exactly_in_local_days_across_a_dst_change,
    buckets_follow_kolkata_weeks_and_rfc3339_ranges,
    conversations_agents_and_deals_break_it_down,
    bad_queries_are_refused_with_precise_errors,
    scopes_roles_and_tenants_decide_who_reads_what,
    resolving_and_reopening_a_conversation_moves_its_resolution_time,
    counts_come_from_slots_and_the_ends_of_a_range_on_every_number,
);

/// A time as both databases store it (SQLite compares the text).
fn at(t: &str) -> String {
    assert_eq!(t.len(), 20, "{t}");
    format!("{}.000000000Z", &t[..19])
}

fn new_id(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "randomblob(16)",
        Db::Postgres => "gen_random_uuid()",
    }
}

struct Seed {
    f: WhatsAppFixture,
    agent: Session,
    other: Session,
    other_connection: String,
    wamid: std::sync::atomic::AtomicU32,
    /// Phone → contact id.
    contacts: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Seed {
    fn app(&self) -> &TestApp {
        &self.f.app
    }

    fn t(&self) -> &str {
        &self.f.owner.access_token
    }

    async fn sql(&self, sql: &str) {
        self.app()
            .db
            .execute_as_owner(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    }

    async fn contact(&self, token: &str, phone: &str) {
        let r = self
            .app()
            .post("/api/v1/contacts", Some(token), json!({"phone": phone}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        self.contacts
            .lock()
            .unwrap()
            .insert(phone.to_owned(), r.body["id"].as_str().unwrap().to_owned());
    }

    /// A conversation of the contact `phone` on its tenant's number, created at `created`.
    async fn conversation(
        &self,
        token: &str,
        phone: &str,
        status: &str,
        created: &str,
        resolved: Option<&str>,
        assignee: Option<&str>,
    ) {
        self.contact(token, phone).await;
        let assignee = assignee.map_or("NULL".to_owned(), |e| {
            format!("(SELECT u.id FROM users u WHERE u.email = '{e}')")
        });
        let resolved = resolved.map_or("NULL".to_owned(), |r| format!("'{}'", at(r)));
        self.sql(&format!(
            "INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status,
                 last_message_at, created_at, updated_at, assignee_id, resolved_at)
             SELECT {}, c.tenant_id, c.id, w.id, '{status}', '{created}', '{created}', '{created}',
                 {assignee}, {resolved}
             FROM contacts c JOIN whatsapp_connections w ON w.tenant_id = c.tenant_id
             WHERE c.phone = '{phone}'",
            new_id(self.app().db.kind()),
            created = at(created),
        ))
        .await;
    }

    /// A message in the conversation of `phone`, written by `author` (an email) when outbound.
    async fn message(&self, phone: &str, direction: &str, when: &str, author: Option<&str>) {
        let n = self
            .wamid
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let status = match direction {
            "inbound" => "received",
            "outbound" => "sent",
            _ => "recorded",
        };
        let author = author.map_or("NULL".to_owned(), |e| {
            format!("(SELECT u.id FROM users u WHERE u.email = '{e}')")
        });
        self.sql(&format!(
            "INSERT INTO messages (id, tenant_id, conversation_id, connection_id, wamid, direction,
                 type, body, text, status, created_at, status_updated_at, author_id)
             SELECT {}, v.tenant_id, v.id, v.connection_id, 'wamid.a{n}', '{direction}', 'text',
                 '{{}}', 'x', '{status}', '{when}', '{when}', {author}
             FROM conversations v JOIN contacts c ON c.id = v.contact_id
             WHERE c.phone = '{phone}'",
            new_id(self.app().db.kind()),
            when = at(when),
        ))
        .await;
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let r = self.app().get(path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body
    }
}

/// Acme (owner owner@, agent bo@) with four conversations around 2026-03-08 (New York's spring
/// change: 02:00 EST becomes 03:00 EDT, 07:00 UTC) and five deals; Other with one conversation
/// and one won deal in the same days.
async fn seed(db: Db) -> Seed {
    let f = whatsapp_fixture(db).await;
    let agent = f.app.add_user(&f.owner, "bo@acme.example", "agent").await;
    let other = f.app.register("Other", "owner@other.example").await;
    let (_, conn) = connect_sim_number(&f.app, &f.sim, &other, "Other").await;
    let s = Seed {
        other_connection: conn["connection"]["id"].as_str().unwrap().to_owned(),
        f,
        agent,
        other,
        wamid: std::sync::atomic::AtomicU32::new(0),
        contacts: Default::default(),
    };
    let owner_email = s.f.owner.email.clone();
    let (t, a) = (s.t().to_owned(), Some("bo@acme.example"));
    let o = Some(owner_email.as_str());

    // c1: new on Mar 7, answered after 300 s, resolved 15 h after it began (Mar 8 local).
    s.conversation(
        &t,
        "+15550000001",
        "resolved",
        "2026-03-07T15:00:00Z",
        Some("2026-03-08T06:00:00Z"),
        a,
    )
    .await;
    s.message("+15550000001", "inbound", "2026-03-07T15:00:00Z", None)
        .await;
    s.message("+15550000001", "outbound", "2026-03-07T15:05:00Z", a)
        .await;
    s.message("+15550000001", "inbound", "2026-03-07T15:10:00Z", None)
        .await;
    // 04:30 UTC on Mar 8 is 23:30 on Mar 7 in New York.
    s.message("+15550000001", "outbound", "2026-03-08T04:30:00Z", a)
        .await;
    s.message("+15550000001", "internal", "2026-03-07T16:00:00Z", a)
        .await;
    // c2: new at 23:30 local on Mar 7, answered an hour later (00:30 on Mar 8 local).
    s.conversation(&t, "+15550000002", "open", "2026-03-08T04:30:00Z", None, o)
        .await;
    s.message("+15550000002", "inbound", "2026-03-08T04:30:00Z", None)
        .await;
    s.message("+15550000002", "outbound", "2026-03-08T05:30:00Z", o)
        .await;
    // c3: 04:30 UTC on Mar 9 is 00:30 EDT on Mar 9 (with 24-hour days from Mar 7 05:00 UTC it
    // would fall on Mar 8); never answered. Its message at `to` is outside the range.
    s.conversation(
        &t,
        "+15550000003",
        "pending",
        "2026-03-09T04:30:00Z",
        None,
        None,
    )
    .await;
    s.message("+15550000003", "inbound", "2026-03-09T04:30:00Z", None)
        .await;
    s.message("+15550000003", "inbound", "2026-03-10T04:00:00Z", None)
        .await;
    // c4: created before the range, answered and resolved in it (3 days after it began).
    s.conversation(
        &t,
        "+15550000004",
        "resolved",
        "2026-03-06T12:00:00Z",
        Some("2026-03-09T12:00:00Z"),
        a,
    )
    .await;
    s.message("+15550000004", "inbound", "2026-03-06T12:00:00Z", None)
        .await;
    s.message("+15550000004", "outbound", "2026-03-09T11:00:00Z", a)
        .await;

    // Other: one conversation, answered and resolved, in the same days.
    let ot = s.other.access_token.clone();
    s.conversation(
        &ot,
        "+15550000009",
        "resolved",
        "2026-03-08T12:00:00Z",
        Some("2026-03-08T13:00:00Z"),
        None,
    )
    .await;
    s.message("+15550000009", "inbound", "2026-03-08T12:00:00Z", None)
        .await;
    s.message("+15550000009", "outbound", "2026-03-08T12:00:10Z", None)
        .await;

    // Deals: won EUR 100.00 and USD 25.00 and lost EUR 7.00 on Mar 8; won EUR 50.00 in
    // February; one open; Other won EUR 0.01.
    for (token, phone, title, value, currency, stage) in [
        (&t, "+15550000001", "D1", 10_000, "EUR", Some("Won")),
        (&t, "+15550000002", "D2", 2_500, "USD", Some("Won")),
        (&t, "+15550000003", "D3", 700, "EUR", Some("Lost")),
        (&t, "+15550000004", "D4", 999, "EUR", None),
        (&t, "+15550000001", "D5", 5_000, "EUR", Some("Won")),
        (&ot, "+15550000009", "D9", 1, "EUR", Some("Won")),
    ] {
        let contact_id = s.contacts.lock().unwrap()[phone].clone();
        let pipeline = s.get(token, "/api/v1/pipelines").await["data"][0].clone();
        let r = s
            .app()
            .post(
                "/api/v1/deals",
                Some(token),
                json!({"title": title, "value_minor": value, "currency": currency,
                       "contact_id": contact_id, "pipeline_id": pipeline["id"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        if let Some(stage) = stage {
            let stage_id = pipeline["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == stage)
                .unwrap()["id"]
                .clone();
            let r = s
                .app()
                .patch(
                    &format!("/api/v1/deals/{}", r.body["id"].as_str().unwrap()),
                    token,
                    json!({"stage_id": stage_id}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
    }
    s.sql(&format!(
        "UPDATE deal_stage_history SET changed_at = '{}'",
        at("2026-03-08T12:00:00Z")
    ))
    .await;
    s.sql(&format!(
        "UPDATE deal_stage_history SET changed_at = '{}'
         WHERE deal_id = (SELECT d.id FROM deals d WHERE d.title = 'D5')",
        at("2026-02-01T12:00:00Z")
    ))
    .await;
    s
}

const NY: &str = "from=2026-03-07&to=2026-03-10&tz=America/New_York";

fn column(body: &Value, field: &str) -> Vec<i64> {
    body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[field].as_i64().unwrap())
        .collect()
}

fn starts(body: &Value) -> Vec<String> {
    body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_overview_counts_exactly_in_local_days_across_a_dst_change(db: Db) {
    let s = seed(db).await;
    let o = s
        .get(s.t(), &format!("/api/v1/analytics/overview?{NY}"))
        .await;
    assert_eq!(starts(&o), ["2026-03-07", "2026-03-08", "2026-03-09"]);
    assert_eq!(o["from"], "2026-03-07T05:00:00Z");
    // Mar 8 is 23 hours long: Mar 9 starts at 04:00 UTC.
    assert_eq!(o["to"], "2026-03-10T04:00:00Z");
    assert_eq!(column(&o, "messages_in"), [3, 0, 1], "{o}");
    assert_eq!(column(&o, "messages_out"), [2, 1, 1], "{o}");
    assert_eq!(column(&o, "conversations_new"), [2, 0, 1], "{o}");
    assert_eq!(column(&o, "conversations_resolved"), [0, 1, 1], "{o}");
    assert_eq!(
        (
            &o["messages_in"],
            &o["messages_out"],
            &o["conversations_new"],
            &o["conversations_resolved"]
        ),
        (&json!(4), &json!(4), &json!(3), &json!(2))
    );
    // First response: c1 300 s, c2 3600 s (c3 unanswered, c4 created before the range).
    assert_eq!(
        o["first_response_seconds"],
        json!({"median": 1950.0, "p90": 3270.0, "count": 2})
    );
    // Resolution: c1 54,000 s, c4 259,200 s.
    assert_eq!(
        o["resolution_seconds"],
        json!({"median": 156600.0, "p90": 238680.0, "count": 2})
    );
    assert_eq!(o["deals_won"], json!({"EUR": 10000, "USD": 2500}));
    assert_eq!(o["deals_lost"], json!({"EUR": 700}));

    // Other tenant sees only its own rows.
    let other = s
        .get(
            &s.other.access_token,
            &format!("/api/v1/analytics/overview?{NY}"),
        )
        .await;
    assert_eq!(column(&other, "messages_in"), [0, 1, 0], "{other}");
    assert_eq!(other["messages_out"], 1);
    assert_eq!(
        other["first_response_seconds"],
        json!({"median": 10.0, "p90": 10.0, "count": 1})
    );
    assert_eq!(other["deals_won"], json!({"EUR": 1}));
    assert_eq!(other["deals_lost"], json!({}));

    // Filtered to Acme's number: the same; to none in the range: zeros and nulls.
    let same = s
        .get(
            s.t(),
            &format!(
                "/api/v1/analytics/overview?{NY}&connection_id={}",
                s.f.connection_id
            ),
        )
        .await;
    assert_eq!(same["buckets"], o["buckets"]);
    let empty = s
        .get(
            s.t(),
            "/api/v1/analytics/overview?from=2025-01-01&to=2025-01-03",
        )
        .await;
    assert_eq!(column(&empty, "messages_in"), [0, 0]);
    assert_eq!(
        empty["first_response_seconds"],
        json!({"median": null, "p90": null, "count": 0})
    );
    assert_eq!(empty["deals_won"], json!({}));
}

async fn buckets_follow_kolkata_weeks_and_rfc3339_ranges(db: Db) {
    let s = seed(db).await;
    // Kolkata's days start at 18:30 UTC the evening before.
    let k = s
        .get(
            s.t(),
            "/api/v1/analytics/overview?from=2026-03-07&to=2026-03-10&tz=Asia/Kolkata",
        )
        .await;
    assert_eq!(k["from"], "2026-03-06T18:30:00Z");
    assert_eq!(starts(&k), ["2026-03-07", "2026-03-08", "2026-03-09"]);
    assert_eq!(column(&k, "messages_in"), [2, 1, 1], "{k}");
    assert_eq!(column(&k, "messages_out"), [1, 2, 1], "{k}");
    assert_eq!(column(&k, "conversations_new"), [1, 1, 1], "{k}");
    assert_eq!(column(&k, "conversations_resolved"), [0, 1, 1], "{k}");

    // Weeks start on Monday (Mar 7 is a Saturday); the first is clipped to the range.
    let w = s
        .get(
            s.t(),
            &format!("/api/v1/analytics/overview?{NY}&interval=week"),
        )
        .await;
    assert_eq!(w["interval"], "week");
    assert_eq!(starts(&w), ["2026-03-02", "2026-03-09"]);
    assert_eq!(column(&w, "messages_in"), [3, 1], "{w}");
    assert_eq!(column(&w, "messages_out"), [3, 1], "{w}");

    // RFC 3339 bounds: [from, to) to the second.
    let r = s
        .get(
            s.t(),
            "/api/v1/analytics/overview?from=2026-03-07T15:05:00Z&to=2026-03-07T10:10:00-05:00",
        )
        .await;
    assert_eq!(starts(&r), ["2026-03-07"]);
    assert_eq!(
        (r["messages_in"].as_i64(), r["messages_out"].as_i64()),
        (Some(0), Some(1))
    );
}

async fn conversations_agents_and_deals_break_it_down(db: Db) {
    let s = seed(db).await;
    let c = s
        .get(s.t(), &format!("/api/v1/analytics/conversations?{NY}"))
        .await;
    assert_eq!(
        c["by_status"],
        json!({"open": 1, "pending": 1, "resolved": 1})
    );
    // The console's dashboard draws the same split (its last day is included).
    let (status, html) = crate::console::signed_in_page(
        s.app(),
        s.t(),
        "/analytics?period=custom&from=2026-03-07&to=2026-03-09&tz=America/New_York",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(
            r#"<desc id="status-bar-desc">Open 1 (33%), Pending 1 (33%), Resolved 1 (33%).</desc>"#
        ),
        "{html}"
    );
    assert_eq!(column(&c, "conversations_new"), [2, 0, 1]);
    assert_eq!(
        (
            c["conversations_new"].as_i64(),
            c["conversations_resolved"].as_i64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(c["first_response_seconds"]["median"], 1950.0);
    assert_eq!(c["resolution_seconds"]["p90"], 238680.0);

    let a = s
        .get(s.t(), &format!("/api/v1/analytics/agents?{NY}"))
        .await;
    let rows = a["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{a}");
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["user_id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {a}"))
            .clone()
    };
    let bo = row(&s.agent.user_id);
    assert_eq!(
        (
            &bo["conversations_assigned"],
            &bo["conversations_resolved"],
            &bo["messages_sent"]
        ),
        (&json!(1), &json!(2), &json!(3))
    );
    assert_eq!(
        bo["first_response_seconds"],
        json!({"median": 300.0, "p90": 300.0, "count": 1})
    );
    let ana = row(&s.f.owner.user_id);
    assert_eq!(
        (
            &ana["conversations_assigned"],
            &ana["conversations_resolved"],
            &ana["messages_sent"]
        ),
        (&json!(1), &json!(0), &json!(1))
    );
    assert_eq!(ana["first_response_seconds"]["median"], 3600.0);

    let d = s.get(s.t(), &format!("/api/v1/analytics/deals?{NY}")).await;
    assert_eq!(d["deals_won"], json!({"EUR": 10000, "USD": 2500}));
    assert_eq!(d["deals_lost"], json!({"EUR": 700}));
    let stages = d["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 6, "{d}");
    let stage = |kind: &str| {
        stages
            .iter()
            .find(|s| s["kind"] == kind && (kind != "open" || s["position"] == 0))
            .unwrap()
            .clone()
    };
    // The won stage holds D1, D2 and D5 now (D5 was won in February).
    let won = stage("won");
    assert_eq!(
        (won["count"].as_i64(), won["name"].as_str()),
        (Some(3), Some("Won"))
    );
    assert_eq!(won["value_minor"], json!({"EUR": 15000, "USD": 2500}));
    assert_eq!(stage("lost")["value_minor"], json!({"EUR": 700}));
    let first = stage("open");
    assert_eq!(first["count"], 1);
    assert_eq!(first["value_minor"], json!({"EUR": 999}));
    // Empty stages are listed with nothing in them.
    assert!(stages
        .iter()
        .any(|s| s["count"] == 0 && s["value_minor"] == json!({})));
}

async fn bad_queries_are_refused_with_precise_errors(db: Db) {
    let s = seed(db).await;
    let fields = |body: &Value| -> Vec<String> {
        body["error"]["fields"]
            .as_object()
            .unwrap_or_else(|| panic!("no fields in {body}"))
            .keys()
            .cloned()
            .collect()
    };
    for (query, expected) in [
        ("from=&to=", vec!["from", "to"]),
        // `to` is now when left out: a `from` in the future is after it.
        ("from=2099-03-01", vec!["to"]),
        ("from=yesterday&to=2026-03-02", vec!["from"]),
        ("from=2026-03-01&to=2026-13-02", vec!["to"]),
        ("from=2026-03-02&to=2026-03-01", vec!["to"]),
        ("from=2026-03-01&to=2026-03-01", vec!["to"]),
        ("from=2025-01-01&to=2026-01-03", vec!["to"]),
        (
            "from=2026-03-01&to=2026-03-02&interval=month",
            vec!["interval"],
        ),
        ("from=2026-03-01&to=2026-03-02&tz=Mars/Olympus", vec!["tz"]),
        (
            "from=2026-03-01&to=2026-03-02&tz=../../etc/passwd",
            vec!["tz"],
        ),
        ("from=2026-03-01&to=2026-03-02&tz=", vec!["tz"]),
        (
            &format!(
                "from=2026-03-01&to=2026-03-02&connection_id={}",
                s.other_connection
            ),
            vec!["connection_id"],
        ),
    ] {
        for endpoint in ["overview", "conversations", "agents", "deals"] {
            let r = s
                .app()
                .get(&format!("/api/v1/analytics/{endpoint}?{query}"), s.t())
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{query}: {}",
                r.body
            );
            assert_eq!(r.code(), "validation_failed", "{query}");
            assert_eq!(fields(&r.body), expected, "{endpoint}?{query}: {}", r.body);
        }
    }
    // Without a range: the last 30 local days, today's until now.
    for endpoint in ["overview", "conversations"] {
        let body = s
            .get(
                s.t(),
                &format!("/api/v1/analytics/{endpoint}?tz=America/New_York"),
            )
            .await;
        assert_eq!(starts(&body).len(), 30, "{endpoint}: {body}");
        let today = time::OffsetDateTime::now_utc()
            .to_offset(time::macros::offset!(-5))
            .date();
        let last = starts(&body).last().cloned().unwrap_or_default();
        // New York is 4 or 5 hours behind UTC: its date now is one of these two.
        let near = [today, today.next_day().unwrap_or(today)].map(|d| d.to_string());
        assert!(
            near.contains(&last),
            "{endpoint}: last bucket {last}, today {today}"
        );
    }
    // A year and a day is allowed (a leap year fits whole).
    s.get(
        s.t(),
        "/api/v1/analytics/overview?from=2027-01-01&to=2028-01-02",
    )
    .await;
    for query in [
        "from=2026-03-01&to=2026-03-02&connection_id=nope",
        "from=2026-03-01&to=2026-03-02&campaign=1",
    ] {
        let r = s
            .app()
            .get(&format!("/api/v1/analytics/overview?{query}"), s.t())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(r.code(), "invalid_query");
    }
}

async fn scopes_roles_and_tenants_decide_who_reads_what(db: Db) {
    let s = seed(db).await;
    let path = format!("/api/v1/analytics/overview?{NY}");
    let owner_view = s.get(s.t(), &path).await;
    // An agent reads the same.
    assert_eq!(s.get(&s.agent.access_token, &path).await, owner_view);
    // No credential.
    let r = s.app().client.get(s.app().url(&path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // API keys: analytics:read reads every endpoint; another scope reads none.
    let key = |scopes: Value| {
        let app = s.app();
        let t = s.t().to_owned();
        async move {
            let k = app
                .post(
                    "/api/v1/api-keys",
                    Some(&t),
                    json!({"name": "k", "scopes": scopes}),
                )
                .await;
            assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
            k.body["key"].as_str().unwrap().to_owned()
        }
    };
    let reader = key(json!(["analytics:read"])).await;
    let deals_only = key(json!(["deals:read", "conversations:read"])).await;
    let read_only = key(json!(["read_only"])).await;
    for endpoint in ["overview", "conversations", "agents", "deals"] {
        let p = format!("/api/v1/analytics/{endpoint}?{NY}");
        s.get(&reader, &p).await;
        s.get(&read_only, &p).await;
        let r = s.app().get(&p, &deals_only).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{p}: {}", r.body);
        assert_eq!(r.code(), "insufficient_scope");
    }
    assert_eq!(s.get(&reader, &path).await, owner_view);
    // A read-only impersonation reads them (support sees what the tenant sees).
    let root = s.app().super_admin("root@platform.example").await;
    let r = s
        .app()
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", s.f.owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&imp, &path).await, owner_view);
    // A super admin outside an impersonation reads no tenant's analytics.
    let r = s.app().get(&path, &root.access_token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

async fn resolving_and_reopening_a_conversation_moves_its_resolution_time(db: Db) {
    let s = seed(db).await;
    // c2 (open since 2026-03-08T04:30Z) is resolved now through the API (the test clock).
    let list = s.get(s.t(), "/api/v1/conversations?status=open").await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/conversations/{id}");
    let r = s
        .app()
        .patch(&path, s.t(), json!({"status": "resolved"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let now = s.app().clock.now();
    let day = |t: time::OffsetDateTime| {
        let d = t.date();
        (d.to_string(), d.next_day().unwrap().to_string())
    };
    let (today, tomorrow) = day(now);
    let q = format!("/api/v1/analytics/conversations?from={today}&to={tomorrow}");
    let c = s.get(s.t(), &q).await;
    assert_eq!(c["conversations_resolved"], 1, "{c}");
    let created = time::macros::datetime!(2026-03-08 04:30 UTC);
    let expected = (now - created).as_seconds_f64();
    let median = c["resolution_seconds"]["median"].as_f64().unwrap();
    assert!((median - expected).abs() < 0.002, "{median} vs {expected}");
    // Reopened: no longer resolved in any range.
    let r = s.app().patch(&path, s.t(), json!({"status": "open"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let c = s.get(s.t(), &q).await;
    assert_eq!(c["conversations_resolved"], 0, "{c}");
    assert_eq!(c["resolution_seconds"]["count"], 0);
}

/// The counts come from `message_counts` (15-minute slots kept by triggers on `messages`) and
/// the conversations' first-response columns: a +05:45 zone, a range whose ends are inside
/// slots, a second number of the tenant with and without the filter, and a contact's erasure
/// (its conversation and first response go, the message counts stay).
async fn counts_come_from_slots_and_the_ends_of_a_range_on_every_number(db: Db) {
    let s = seed(db).await;
    let bo = Some("bo@acme.example");
    // 18:20 UTC on Mar 7 is Mar 7 in Kolkata (days start 18:30 UTC), Mar 8 in Kathmandu
    // (18:15 UTC) and 13:20 on Mar 7 in New York.
    s.message("+15550000001", "inbound", "2026-03-07T18:20:00Z", None)
        .await;
    let day =
        |tz: &str| format!("/api/v1/analytics/overview?from=2026-03-07&to=2026-03-10&tz={tz}");
    let k = s.get(s.t(), &day("Asia/Kolkata")).await;
    assert_eq!(column(&k, "messages_in"), [3, 1, 1], "{k}");
    assert_eq!(column(&k, "messages_out"), [1, 2, 1], "{k}");
    let n = s.get(s.t(), &day("Asia/Kathmandu")).await;
    assert_eq!(n["from"], "2026-03-06T18:15:00Z");
    assert_eq!(column(&n, "messages_in"), [2, 2, 1], "{n}");
    assert_eq!(column(&n, "messages_out"), [1, 2, 1], "{n}");
    // c1 keeps its first inbound message (15:00) and first response (300 s).
    let o = s
        .get(s.t(), &format!("/api/v1/analytics/overview?{NY}"))
        .await;
    assert_eq!(column(&o, "messages_in"), [4, 0, 1], "{o}");
    assert_eq!(o["first_response_seconds"]["median"], 1950.0);

    // Ends inside slots: [15:04, 15:15) and [04:30, 04:31) are read from the messages, the
    // slots between from the counts.
    let edges = "from=2026-03-07T15:04:00Z&to=2026-03-08T04:31:00Z";
    let r = s
        .get(s.t(), &format!("/api/v1/analytics/overview?{edges}"))
        .await;
    assert_eq!(starts(&r), ["2026-03-07", "2026-03-08"]);
    assert_eq!(column(&r, "messages_in"), [2, 1], "{r}");
    assert_eq!(column(&r, "messages_out"), [1, 1], "{r}");
    let a = s
        .get(s.t(), &format!("/api/v1/analytics/agents?{edges}"))
        .await;
    let sent = |a: &Value, id: &str| {
        a["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["user_id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {a}"))["messages_sent"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(sent(&a, &s.agent.user_id), 2, "{a}");
    assert_eq!(sent(&a, &s.f.owner.user_id), 0, "{a}");

    // A second number: counted without the filter, alone with its own.
    let (_, second) = connect_sim_number(&s.f.app, &s.f.sim, &s.f.owner, "Second").await;
    let second = second["connection"]["id"].as_str().unwrap().to_owned();
    s.contact(s.t(), "+15550000005").await;
    s.sql(&format!(
        "INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status,
             last_message_at, created_at, updated_at)
         SELECT {}, c.tenant_id, c.id, w.id, 'open', '{t}', '{t}', '{t}'
         FROM contacts c JOIN whatsapp_connections w
             ON w.tenant_id = c.tenant_id AND w.display_name = 'Second'
         WHERE c.phone = '+15550000005'",
        new_id(db),
        t = at("2026-03-08T12:00:00Z"),
    ))
    .await;
    s.message("+15550000005", "inbound", "2026-03-08T12:00:00Z", None)
        .await;
    s.message("+15550000005", "outbound", "2026-03-08T12:01:00Z", bo)
        .await;
    let all = s
        .get(s.t(), &format!("/api/v1/analytics/overview?{NY}"))
        .await;
    assert_eq!(column(&all, "messages_in"), [4, 1, 1], "{all}");
    assert_eq!(column(&all, "messages_out"), [2, 2, 1], "{all}");
    let first = s
        .get(
            s.t(),
            &format!(
                "/api/v1/analytics/overview?{NY}&connection_id={}",
                s.f.connection_id
            ),
        )
        .await;
    assert_eq!(column(&first, "messages_in"), [4, 0, 1], "{first}");
    assert_eq!(column(&first, "messages_out"), [2, 1, 1], "{first}");
    let on_second = format!("{NY}&connection_id={second}");
    let only = s
        .get(s.t(), &format!("/api/v1/analytics/overview?{on_second}"))
        .await;
    assert_eq!(column(&only, "messages_in"), [0, 1, 0], "{only}");
    assert_eq!(column(&only, "messages_out"), [0, 1, 0], "{only}");
    assert_eq!(column(&only, "conversations_new"), [0, 1, 0], "{only}");
    assert_eq!(
        only["first_response_seconds"],
        json!({"median": 60.0, "p90": 60.0, "count": 1})
    );
    let a = s
        .get(s.t(), &format!("/api/v1/analytics/agents?{on_second}"))
        .await;
    assert_eq!(sent(&a, &s.agent.user_id), 1, "{a}");
    // Another tenant's number is refused, its rows never counted.
    let r = s
        .app()
        .get(
            &format!(
                "/api/v1/analytics/overview?{NY}&connection_id={}",
                s.other_connection
            ),
            s.t(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // Erasing the contact removes its conversation and first response; the message counts
    // (no personal data) stay.
    let id = s.contacts.lock().unwrap()["+15550000005"].clone();
    let r = s
        .app()
        .delete(&format!("/api/v1/contacts/{id}"), s.t())
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let erased = s
        .get(s.t(), &format!("/api/v1/analytics/overview?{on_second}"))
        .await;
    assert_eq!(column(&erased, "messages_in"), [0, 1, 0], "{erased}");
    assert_eq!(column(&erased, "messages_out"), [0, 1, 0], "{erased}");
    assert_eq!(column(&erased, "conversations_new"), [0, 0, 0], "{erased}");
    assert_eq!(erased["first_response_seconds"]["count"], 0, "{erased}");
}
