//! WhatsApp message templates: sync from Meta (the simulator) through every page, create with
//! every local refusal before Meta is called, delete at Meta and here, Meta's status, quality
//! and category webhooks (with the admins' notification), the local check before a template
//! message is queued, and who may do what (roles, API key scopes, another tenant,
//! impersonation), with concurrent syncs and creations.

use crate::support::{subscribe_webhook, whatsapp_fixture, whatsapp_fixture_with, WhatsAppFixture};
use palisade_testkit::{Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    sync_pages_through_meta_and_makes_the_stored_templates_match,
    a_template_is_created_reviewed_and_deleted_with_its_events,
    bad_templates_are_refused_before_meta_sees_them,
    status_quality_and_category_webhooks_update_templates_and_notify_admins,
    sends_are_checked_against_the_stored_template_before_queueing,
    roles_scopes_tenants_and_impersonation_decide_who_works_templates,
    concurrent_syncs_and_creations_keep_one_row_per_template,
);

const GRAPH: &str = "v25.0";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Creates a template directly at the simulator (as in Meta's WhatsApp Manager).
async fn meta_create(f: &WhatsAppFixture, name: &str, category: &str) -> String {
    let r = f
        .app
        .client
        .post(format!("{}/{GRAPH}/{}/message_templates", f.sim, f.waba_id))
        .bearer_auth(&f.access_token)
        .json(
            &json!({"name": name, "language": "en_US", "category": category,
                      "components": [{"type": "BODY", "text": "Hello from the shop"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The templates the simulator holds for the fixture's WABA (every page).
async fn meta_names(f: &WhatsAppFixture) -> Vec<String> {
    let r = f
        .app
        .client
        .get(format!(
            "{}/{GRAPH}/{}/message_templates?limit=1000",
            f.sim, f.waba_id
        ))
        .bearer_auth(&f.access_token)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn sim_control(f: &WhatsAppFixture, path: &str, body: Value) {
    let r = f
        .app
        .client
        .post(format!("{}{path}", f.sim))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
}

/// Processes Meta's webhooks until `done` holds for the template at `path`.
async fn wait_for(f: &WhatsAppFixture, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        palisade_core::whatsapp::inbound::process_pending(&f.app.services)
            .await
            .unwrap();
        last = f.app.get(path, &f.owner.access_token).await.body;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never reached the expected state: {last}");
}

async fn list(app: &TestApp, t: &str, query: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/whatsapp/templates{query}"), t)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
    r.body
}

fn names(page: &Value) -> Vec<String> {
    let mut n: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

/// The stored template named `name`.
async fn stored(f: &WhatsAppFixture, name: &str) -> Value {
    let page = list(
        &f.app,
        &f.owner.access_token,
        &format!("?q={name}&limit=200"),
    )
    .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no template {name}: {page}"))
}

async fn sync(f: &WhatsAppFixture, token: &str) -> (StatusCode, Value) {
    let r = f
        .app
        .post(
            "/api/v1/whatsapp/templates/sync",
            Some(token),
            json!({ "connection_id": f.connection_id }),
        )
        .await;
    (r.status, r.body)
}

fn order_update(name: &str) -> Value {
    json!({
        "name": name, "language": "en_US", "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-1"]}},
            {"type": "BODY", "text": "Hi {{1}}, your order ships on {{2}}.",
             "example": {"body_text": [["Ana", "Monday"]]}},
            {"type": "FOOTER", "text": "Acme shop"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Thanks"}]}
        ]
    })
}

async fn key(app: &TestApp, t: &str, scopes: Value) -> String {
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

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.count_as_owner(sql).await.unwrap()
}

async fn notifications(app: &TestApp, s: &Session) -> Vec<Value> {
    let r = app.get("/api/v1/notifications", &s.access_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "template.attention")
        .cloned()
        .collect()
}

async fn sync_pages_through_meta_and_makes_the_stored_templates_match(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    // 103 more at Meta: with the 2 every WABA starts with, two pages of Meta's list (100 a page).
    for i in 0..103 {
        let category = if i % 2 == 0 { "MARKETING" } else { "UTILITY" };
        meta_create(&f, &format!("promo_{i:03}"), category).await;
    }
    // Meta reviews them (at once in the simulator's test settings).
    for _ in 0..200 {
        let approved = f
            .app
            .client
            .get(format!(
                "{}/{GRAPH}/{}/message_templates?status=APPROVED&limit=1000",
                f.sim, f.waba_id
            ))
            .bearer_auth(&f.access_token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if approved["data"].as_array().unwrap().len() == 105 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, r) = sync(&f, t).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["fetched"].as_u64(),
            r["created"].as_u64(),
            r["updated"].as_u64(),
            r["removed"].as_u64()
        ),
        (Some(105), Some(105), Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r["connection_id"], f.connection_id.as_str());
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM message_templates").await,
        105
    );

    // Listed in pages, newest first, each once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(&f.app, t, &format!("?limit=40{cursor}")).await;
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 105);

    // Filters: name, category, status, connection.
    let hello = stored(&f, "hello_world").await;
    assert_eq!(hello["status"], "APPROVED");
    assert_eq!(hello["category"], "UTILITY");
    assert_eq!(hello["quality_score"], "GREEN");
    assert_eq!(hello["parameters"], json!({"header": 0, "body": 0}));
    assert!(hello["synced_at"].is_string());
    let order = stored(&f, "order_confirmation").await;
    assert_eq!(order["parameters"], json!({"header": 0, "body": 2}));
    assert_eq!(
        names(&list(&f.app, t, "?q=ORDER_conf").await),
        ["order_confirmation"]
    );
    let marketing = list(&f.app, t, "?category=marketing&limit=200").await;
    assert_eq!(marketing["data"].as_array().unwrap().len(), 52);
    let approved = list(&f.app, t, "?status=approved&limit=200").await;
    assert_eq!(approved["data"].as_array().unwrap().len(), 105);
    assert_eq!(list(&f.app, t, "?status=PAUSED").await["data"], json!([]));
    let by_conn = list(
        &f.app,
        t,
        &format!("?connection_id={}&limit=200", f.connection_id),
    )
    .await;
    assert_eq!(by_conn["data"].as_array().unwrap().len(), 105);
    let r = f
        .app
        .get("/api/v1/whatsapp/templates?category=SERVICE", t)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = f.app.get("/api/v1/whatsapp/templates?cursor=nope", t).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let one = f
        .app
        .get(&format!("/api/v1/whatsapp/templates/{}", id(&hello)), t)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, hello);

    // Meta pauses one and deletes another; the next sync removes the deleted one, and the
    // paused one is updated (by the sync, or by Meta's status webhook if that came first),
    // with one notification to the admins either way; the rest keep their updated_at.
    sim_control(
        &f,
        &format!(
            "/_sim/templates/{}/status",
            hello["meta_id"].as_str().unwrap()
        ),
        json!({"status": "PAUSED"}),
    )
    .await;
    let gone = f
        .app
        .client
        .delete(format!(
            "{}/{GRAPH}/{}/message_templates?name=promo_000",
            f.sim, f.waba_id
        ))
        .bearer_auth(&f.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::OK);
    let (status, r) = sync(&f, t).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["fetched"].as_u64(),
            r["created"].as_u64(),
            r["removed"].as_u64()
        ),
        (Some(104), Some(0), Some(1)),
        "{r}"
    );
    assert!(r["updated"].as_u64().unwrap() <= 1, "{r}");
    let hpath = format!("/api/v1/whatsapp/templates/{}", id(&hello));
    wait_for(&f, &hpath, |v| v["status"] == "PAUSED").await;
    assert_eq!(
        stored(&f, "order_confirmation").await["updated_at"],
        order["updated_at"]
    );
    assert!(names(&list(&f.app, t, "?q=promo_000").await).is_empty());
    let n = notifications(&f.app, &f.owner).await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["data"]["name"], "hello_world");
    assert_eq!(n[0]["target_id"], hello["id"]);
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'template.synced'"
        )
        .await,
        2
    );
}

async fn a_template_is_created_reviewed_and_deleted_with_its_events(db: Db) {
    let f = whatsapp_fixture_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let t = &f.owner.access_token;
    subscribe_webhook(&f.app, t, "template.*").await;
    // Held for review, so the PENDING answer is what is stored first.
    sim_control(
        &f,
        "/_sim/config",
        json!({"template_review_delay_ms": 600_000}),
    )
    .await;
    let mut body = order_update("shipping_update");
    body["connection_id"] = json!(f.connection_id);
    let r = f
        .app
        .post("/api/v1/whatsapp/templates", Some(t), body.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(r.body["category"], "UTILITY");
    assert_eq!(r.body["parameters"], json!({"header": 1, "body": 2}));
    assert!(r.body["synced_at"].is_null());
    assert!(meta_names(&f).await.contains(&"shipping_update".to_owned()));
    let path = format!("/api/v1/whatsapp/templates/{}", id(&r.body));
    assert_eq!(f.app.get(&path, t).await.body, r.body);

    // The same name and language again: refused here (Meta is not asked twice).
    let again = f
        .app
        .post("/api/v1/whatsapp/templates", Some(t), body.clone())
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.code(), "template_exists");
    // Another language of the same name is another template.
    let mut pt = body.clone();
    pt["language"] = json!("pt_BR");
    let r_pt = f.app.post("/api/v1/whatsapp/templates", Some(t), pt).await;
    assert_eq!(r_pt.status, StatusCode::CREATED, "{}", r_pt.body);

    // Meta approves it (status webhook): stored as APPROVED.
    sim_control(
        &f,
        &format!(
            "/_sim/templates/{}/status",
            r.body["meta_id"].as_str().unwrap()
        ),
        json!({"status": "APPROVED"}),
    )
    .await;
    let approved = wait_for(&f, &path, |v| v["status"] == "APPROVED").await;
    assert!(approved["synced_at"].is_string());
    assert!(notifications(&f.app, &f.owner).await.is_empty());

    // Deleted at Meta, then here.
    assert_eq!(f.app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    // Only this language is gone at Meta; the pt_BR one stays.
    let at_meta = meta_names(&f).await;
    assert_eq!(
        at_meta.iter().filter(|n| *n == "shipping_update").count(),
        1,
        "{at_meta:?}"
    );
    assert_eq!(f.app.get(&path, t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(f.app.delete(&path, t).await.status, StatusCode::NOT_FOUND);

    for (event, n) in [
        ("template.created", 2),
        ("template.updated", 1),
        ("template.deleted", 1),
    ] {
        assert_eq!(
            count(
                &f.app,
                &format!("SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = '{event}'")
            )
            .await,
            n,
            "{event}"
        );
    }
    for (action, n) in [
        ("template.created", 2),
        ("template.updated", 1),
        ("template.deleted", 1),
    ] {
        assert_eq!(
            count(
                &f.app,
                &format!("SELECT COUNT(*) FROM audit_log WHERE action = '{action}'")
            )
            .await,
            n,
            "{action}"
        );
    }
}

/// One change that makes a valid request invalid.
type Change = Box<dyn Fn(&mut Value)>;

async fn bad_templates_are_refused_before_meta_sees_them(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    let good = || {
        let mut b = order_update("fine_name");
        b["connection_id"] = json!(f.connection_id);
        b
    };
    let long = |n: usize| "a".repeat(n);
    let cases: Vec<(&str, Change)> = vec![
        (
            "name",
            Box::new(|b: &mut Value| b["name"] = json!("Order Update")),
        ),
        (
            "name",
            Box::new(move |b: &mut Value| b["name"] = json!(long(513))),
        ),
        (
            "language",
            Box::new(|b: &mut Value| b["language"] = json!("english")),
        ),
        (
            "category",
            Box::new(|b: &mut Value| b["category"] = json!("SERVICE")),
        ),
        (
            "components",
            Box::new(|b: &mut Value| b["components"] = json!({"type": "BODY"})),
        ),
        (
            "components",
            Box::new(|b: &mut Value| {
                b["components"] = json!([{"type": "FOOTER", "text": "f"}]);
            }),
        ),
        (
            "components.body.text",
            Box::new(|b: &mut Value| {
                b["components"][1]["text"] = json!("Hi {{1}}, order {{3}} ships.");
            }),
        ),
        (
            "components.body.text",
            Box::new(|b: &mut Value| {
                b["components"][1]["text"] = json!("{{1}}, your order {{2}} ships.");
            }),
        ),
        (
            "components.body.text",
            Box::new(move |b: &mut Value| {
                b["components"][1]["text"] = json!(long(1025));
            }),
        ),
        (
            "components.body.example",
            Box::new(|b: &mut Value| {
                b["components"][1]["example"] = json!({"body_text": [["Ana"]]});
            }),
        ),
        (
            "components.header.example",
            Box::new(|b: &mut Value| {
                b["components"][0]["example"] = json!({});
            }),
        ),
        (
            "components.header.text",
            Box::new(move |b: &mut Value| {
                b["components"][0]["text"] = json!(long(61));
            }),
        ),
        (
            "components.footer.text",
            Box::new(|b: &mut Value| {
                b["components"][2]["text"] = json!("Call {{1}}");
            }),
        ),
        (
            "components.buttons",
            Box::new(move |b: &mut Value| {
                b["components"][3]["buttons"][0]["text"] = json!(long(26));
            }),
        ),
        (
            "connection_id",
            Box::new(|b: &mut Value| {
                b["connection_id"] = json!(uuid::Uuid::new_v4());
            }),
        ),
    ];
    for (field, change) in &cases {
        let mut b = good();
        change(&mut b);
        let r = f
            .app
            .post("/api/v1/whatsapp/templates", Some(t), b.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.body
        );
        assert_eq!(r.code(), "validation_failed", "{field}: {}", r.body);
        assert!(
            r.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            r.body
        );
    }
    // Every failing field at once.
    let r = f
        .app
        .post(
            "/api/v1/whatsapp/templates",
            Some(t),
            json!({"connection_id": f.connection_id, "name": "X", "language": "EN",
                   "category": "nope", "components": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for field in ["name", "language", "category", "components"] {
        assert!(
            r.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            r.body
        );
    }
    // Wrong types and unknown fields.
    for b in [
        json!({"connection_id": f.connection_id, "name": 5, "language": "en", "category": "UTILITY", "components": []}),
        json!({"connection_id": f.connection_id, "name": "a", "language": "en", "category": "UTILITY", "components": [], "extra": 1}),
        json!({"name": "a"}),
    ] {
        let r = f.app.post("/api/v1/whatsapp/templates", Some(t), b).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    }
    // Meta never saw any of them; nothing is stored.
    assert_eq!(meta_names(&f).await.len(), 2);
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM message_templates").await,
        0
    );

    // What passes here but Meta refuses is 422 meta_refused with Meta's words.
    meta_create(&f, "taken_at_meta", "UTILITY").await;
    let mut b = good();
    b["name"] = json!("taken_at_meta");
    let r = f.app.post("/api/v1/whatsapp/templates", Some(t), b).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "meta_refused");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{}",
        r.body
    );
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM message_templates").await,
        0
    );

    // A disconnected connection: 409 for sync, create and delete.
    let d = f
        .app
        .post(
            &format!(
                "/api/v1/whatsapp/connections/{}/disconnect",
                f.connection_id
            ),
            Some(t),
            json!({}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.body);
    let (status, r) = sync(&f, t).await;
    assert_eq!(status, StatusCode::CONFLICT, "{r}");
    let r = f
        .app
        .post("/api/v1/whatsapp/templates", Some(t), good())
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "connection_disconnected");
}

async fn status_quality_and_category_webhooks_update_templates_and_notify_admins(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    let admin = f
        .app
        .add_user(&f.owner, "admin@acme.example", "admin")
        .await;
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    f.sync_templates().await;
    let hello = stored(&f, "hello_world").await;
    let order = stored(&f, "order_confirmation").await;
    let hpath = format!("/api/v1/whatsapp/templates/{}", id(&hello));
    let opath = format!("/api/v1/whatsapp/templates/{}", id(&order));
    let meta_id = |v: &Value| v["meta_id"].as_str().unwrap().to_owned();

    sim_control(
        &f,
        &format!("/_sim/templates/{}/quality", meta_id(&hello)),
        json!({"score": "YELLOW"}),
    )
    .await;
    wait_for(&f, &hpath, |v| v["quality_score"] == "YELLOW").await;
    sim_control(
        &f,
        &format!("/_sim/templates/{}/category", meta_id(&hello)),
        json!({"category": "MARKETING"}),
    )
    .await;
    wait_for(&f, &hpath, |v| v["category"] == "MARKETING").await;
    // Neither is a reason to bother anyone.
    assert!(notifications(&f.app, &f.owner).await.is_empty());

    sim_control(
        &f,
        &format!("/_sim/templates/{}/status", meta_id(&hello)),
        json!({"status": "PAUSED"}),
    )
    .await;
    wait_for(&f, &hpath, |v| v["status"] == "PAUSED").await;
    sim_control(
        &f,
        &format!("/_sim/templates/{}/status", meta_id(&order)),
        json!({"status": "REJECTED", "reason": "INVALID_FORMAT"}),
    )
    .await;
    let rejected = wait_for(&f, &opath, |v| v["status"] == "REJECTED").await;
    assert_eq!(rejected["rejection_reason"], "INVALID_FORMAT");
    // A status Meta added since is kept as Meta sent it.
    sim_control(
        &f,
        &format!("/_sim/templates/{}/status", meta_id(&order)),
        json!({"status": "PENDING_DELETION"}),
    )
    .await;
    let other = wait_for(&f, &opath, |v| v["status"] == "PENDING_DELETION").await;
    assert!(other["rejection_reason"].is_null());

    // Both admins (the owner is one) hear about the paused and the rejected template; the
    // agent does not.
    for s in [&f.owner, &admin] {
        let n = notifications(&f.app, s).await;
        let mut statuses: Vec<&str> = n
            .iter()
            .map(|n| n["data"]["status"].as_str().unwrap())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, ["PAUSED", "REJECTED"], "{n:?}");
    }
    assert!(notifications(&f.app, &agent).await.is_empty());
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'template.updated'"
        )
        .await,
        5
    );

    // A webhook about a template not stored here (created at Meta after the last sync) changes
    // nothing and is noted on its event.
    let fresh = meta_create(&f, "not_synced_yet", "UTILITY").await;
    sim_control(
        &f,
        &format!("/_sim/templates/{fresh}/status"),
        json!({"status": "PAUSED"}),
    )
    .await;
    for _ in 0..100 {
        palisade_core::whatsapp::inbound::process_pending(&f.app.services)
            .await
            .unwrap();
        if count(
            &f.app,
            "SELECT COUNT(*) FROM whatsapp_inbound_events WHERE error LIKE '%not stored here%'",
        )
        .await
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM whatsapp_inbound_events WHERE error LIKE '%not stored here%'",
        )
        .await
            > 0
    );
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM message_templates").await,
        2
    );
    assert_eq!(f.app.get(&hpath, t).await.body["status"], "PAUSED");
}

async fn sends_are_checked_against_the_stored_template_before_queueing(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    f.customer_message("text", json!({"body": "Hi"})).await;
    let mut conv = String::new();
    for _ in 0..200 {
        palisade_core::whatsapp::inbound::process_pending(&f.app.services)
            .await
            .unwrap();
        let c = f.app.get("/api/v1/conversations", t).await.body;
        if let Some(c) = c["data"].as_array().unwrap().first() {
            conv = c["id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!conv.is_empty(), "the customer's message never arrived");
    let path = format!("/api/v1/conversations/{conv}/messages");
    let send = |name: &str, language: &str, params: usize| {
        let parameters: Vec<Value> = (0..params)
            .map(|i| json!({"type": "text", "text": format!("p{i}")}))
            .collect();
        let mut template = json!({"name": name, "language": language});
        if params > 0 {
            template["components"] = json!([{"type": "body", "parameters": parameters}]);
        }
        json!({"type": "template", "template": template})
    };
    let outbound = "SELECT COUNT(*) FROM messages WHERE direction = 'outbound'";

    // Nothing synced yet: no template is known.
    let r = f
        .app
        .post(&path, Some(t), send("hello_world", "en_US", 0))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "template_not_found");
    f.sync_templates().await;
    for (body, code, needle) in [
        (
            send("no_such_template", "en_US", 0),
            "template_not_found",
            "no_such_template",
        ),
        (
            send("hello_world", "pt_BR", 0),
            "template_language_unavailable",
            "en_US",
        ),
        (
            send("order_confirmation", "en_US", 1),
            "template_parameter_mismatch",
            "takes 2 body",
        ),
        (
            send("order_confirmation", "en_US", 3),
            "template_parameter_mismatch",
            "3 given",
        ),
        (
            send("order_confirmation", "en_US", 0),
            "template_parameter_mismatch",
            "0 given",
        ),
        (
            send("hello_world", "en_US", 1),
            "template_parameter_mismatch",
            "takes 0 body",
        ),
    ] {
        let r = f.app.post(&path, Some(t), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert_eq!(r.code(), code, "{body}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(count(&f.app, outbound).await, 0);

    // Paused at Meta (the webhook processed): refused here, before any Graph call.
    let hello = stored(&f, "hello_world").await;
    sim_control(
        &f,
        &format!(
            "/_sim/templates/{}/status",
            hello["meta_id"].as_str().unwrap()
        ),
        json!({"status": "PAUSED"}),
    )
    .await;
    wait_for(
        &f,
        &format!("/api/v1/whatsapp/templates/{}", id(&hello)),
        |v| v["status"] == "PAUSED",
    )
    .await;
    let r = f
        .app
        .post(&path, Some(t), send("hello_world", "en_US", 0))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "template_not_approved");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PAUSED"));
    assert_eq!(count(&f.app, outbound).await, 0);

    // The approved one with its two parameters (and `{code}` as Meta's object) is queued.
    let mut ok = send("order_confirmation", "en_US", 2);
    ok["template"]["language"] = json!({"code": "en_US", "policy": "deterministic"});
    let r = f.app.post(&path, Some(t), ok).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(count(&f.app, outbound).await, 1);
}

async fn impersonate(app: &TestApp, root: &Session, tenant: &str, write: bool) -> String {
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{tenant}/impersonate"),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": write}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn roles_scopes_tenants_and_impersonation_decide_who_works_templates(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    f.sync_templates().await;
    let hello = stored(&f, "hello_world").await;
    let hpath = format!("/api/v1/whatsapp/templates/{}", id(&hello));
    let mut new = order_update("by_someone");
    new["connection_id"] = json!(f.connection_id);

    // Unauthenticated.
    let r = f
        .app
        .client
        .get(f.app.url("/api/v1/whatsapp/templates"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Agents read, nothing more.
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    let ta = &agent.access_token;
    assert_eq!(f.app.get(&hpath, ta).await.status, StatusCode::OK);
    assert_eq!(
        list(&f.app, ta, "").await["data"].as_array().unwrap().len(),
        2
    );
    assert_eq!(sync(&f, ta).await.0, StatusCode::FORBIDDEN);
    let r = f
        .app
        .post("/api/v1/whatsapp/templates", Some(ta), new.clone())
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(f.app.delete(&hpath, ta).await.status, StatusCode::FORBIDDEN);

    // API keys: templates:read reads; templates:write syncs and creates; templates:delete deletes.
    let ro = key(&f.app, t, json!(["templates:read"])).await;
    assert_eq!(f.app.get(&hpath, &ro).await.status, StatusCode::OK);
    let (status, body) = sync(&f, &ro).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_scope");
    assert_eq!(
        f.app.delete(&hpath, &ro).await.status,
        StatusCode::FORBIDDEN
    );
    let other_scope = key(&f.app, t, json!(["deals:read"])).await;
    assert_eq!(
        f.app
            .get("/api/v1/whatsapp/templates", &other_scope)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let rw = key(&f.app, t, json!(["templates:write"])).await;
    assert_eq!(sync(&f, &rw).await.0, StatusCode::OK);
    let r = f
        .app
        .post("/api/v1/whatsapp/templates", Some(&rw), new.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let created = format!("/api/v1/whatsapp/templates/{}", id(&r.body));
    assert_eq!(
        f.app.delete(&created, &rw).await.status,
        StatusCode::FORBIDDEN
    );
    let del = key(&f.app, t, json!(["templates:delete"])).await;
    assert_eq!(
        f.app.delete(&created, &del).await.status,
        StatusCode::NO_CONTENT
    );

    // Another tenant: 404 for the ids, 422 for the connection.
    let other = f.app.register("Other", "owner@other.example").await;
    let to = &other.access_token;
    assert_eq!(f.app.get(&hpath, to).await.status, StatusCode::NOT_FOUND);
    assert_eq!(f.app.delete(&hpath, to).await.status, StatusCode::NOT_FOUND);
    assert_eq!(list(&f.app, to, "").await["data"], json!([]));
    let (status, body) = sync(&f, to).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["connection_id"].is_array(),
        "{body}"
    );
    let r = f
        .app
        .post("/api/v1/whatsapp/templates", Some(to), new.clone())
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body["error"]["fields"]["connection_id"].is_array(),
        "{}",
        r.body
    );
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM message_templates").await,
        2,
        "nothing of the other tenant's requests was stored"
    );

    // Impersonation: read-only reads, never writes; write impersonation syncs.
    let root = f.app.super_admin("root@platform.example").await;
    let ro_imp = impersonate(&f.app, &root, &f.owner.tenant_id, false).await;
    assert_eq!(f.app.get(&hpath, &ro_imp).await.status, StatusCode::OK);
    let (status, body) = sync(&f, &ro_imp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "impersonation_read_only");
    assert_eq!(
        f.app.delete(&hpath, &ro_imp).await.status,
        StatusCode::FORBIDDEN
    );
    let w_imp = impersonate(&f.app, &root, &f.owner.tenant_id, true).await;
    assert_eq!(sync(&f, &w_imp).await.0, StatusCode::OK);

    // The admin deletes.
    assert_eq!(f.app.delete(&hpath, t).await.status, StatusCode::NO_CONTENT);
    assert_eq!(f.app.get(&hpath, t).await.status, StatusCode::NOT_FOUND);
}

async fn concurrent_syncs_and_creations_keep_one_row_per_template(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    for i in 0..5 {
        meta_create(&f, &format!("bulk_{i}"), "UTILITY").await;
    }
    let (a, b) = tokio::join!(sync(&f, t), sync(&f, t));
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        a.1,
        b.1
    );
    // One of them created the 7; the other found them all.
    let created = a.1["created"].as_u64().unwrap() + b.1["created"].as_u64().unwrap();
    assert_eq!(created, 7, "{} {}", a.1, b.1);
    assert_eq!(
        count(&f.app, "SELECT COUNT(*) FROM message_templates").await,
        7
    );

    let mut body = order_update("race_me");
    body["connection_id"] = json!(f.connection_id);
    let (x, y) = tokio::join!(
        f.app
            .post("/api/v1/whatsapp/templates", Some(t), body.clone()),
        f.app
            .post("/api/v1/whatsapp/templates", Some(t), body.clone())
    );
    let mut statuses = [x.status.as_u16(), y.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses[0], 201, "{} {}", x.body, y.body);
    assert!(matches!(statuses[1], 409 | 422), "{} {}", x.body, y.body);
    assert_eq!(
        count(
            &f.app,
            "SELECT COUNT(*) FROM message_templates WHERE name = 'race_me'"
        )
        .await,
        1
    );
}
