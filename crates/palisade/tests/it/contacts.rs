//! Contacts: created and edited through the API with every input rule enforced, erased with
//! their conversations, exported by admins, and opted out by an inbound STOP.

use crate::support::{assert_error, audit_count, field_messages, whatsapp_fixture};
use palisade_testkit::{spawn_app, spawn_app_with, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    contacts_are_created_read_edited_and_erased,
    every_bad_input_is_a_precise_422,
    duplicate_phones_conflict_on_create_and_edit,
    roles_scopes_and_tenants_are_enforced,
    exports_stream_csv_and_jsonl,
    inbound_stop_opts_out_and_start_lifts_it,
    erasing_a_contact_removes_its_conversations_and_queued_sends,
    contact_events_are_queued_with_the_change,
    a_contact_an_inbound_message_creates_is_announced_once,
    a_contact_is_the_same_in_the_api_events_and_exports
);

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/v1/contacts", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn key(app: &TestApp, owner: &Session, scopes: Value) -> String {
    let k = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": scopes}),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{:?}", k.body);
    k.body["key"].as_str().unwrap().to_owned()
}

fn ids(r: &Value) -> Vec<String> {
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn contacts_are_created_read_edited_and_erased(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let ana = create(
        &app,
        t,
        json!({
            "phone": " +44 (7700) 900-123 ", "name": " Ana Lima ", "email": "Ana@Example.COM",
            "tags": [" VIP ", "vip", "Lead:Hot"], "custom_attributes": {"plan": "gold", "seats": 3, "vip": true, "note": null},
            "marketing_opt_in": true,
        }),
    )
    .await;
    assert_eq!(ana["phone"], "+447700900123");
    assert_eq!(ana["name"], "Ana Lima");
    assert_eq!(ana["email"], "ana@example.com");
    assert_eq!(ana["tags"], json!(["vip", "lead:hot"]));
    assert_eq!(
        ana["custom_attributes"],
        json!({"plan": "gold", "seats": 3, "vip": true, "note": null})
    );
    assert_eq!(ana["marketing_opt_in"], true);
    assert_eq!(ana["opted_out"], false);
    assert!(ana["opted_in_at"].is_string());
    assert!(ana["opted_out_at"].is_null() && ana["opt_out_source"].is_null());
    assert!(ana["wa_id"].is_null() && ana["wa_profile_name"].is_null());
    let ana_id = ana["id"].as_str().unwrap().to_owned();
    let bo = create(&app, t, json!({"phone": "+15550100199"})).await;
    assert_eq!(bo["tags"], json!([]));
    assert_eq!(bo["custom_attributes"], json!({}));
    assert_eq!(bo["marketing_opt_in"], false);
    assert_eq!(bo["opted_out"], false);
    let bo_id = bo["id"].as_str().unwrap().to_owned();

    let one = app.get(&format!("/api/v1/contacts/{ana_id}"), t).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, ana);

    // Filters: text (name, email, phone digits), tag, consent; newest first; pages.
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/contacts{q}"), t).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            r.body
        }
    };
    assert_eq!(ids(&list("").await), [bo_id.as_str(), ana_id.as_str()]);
    assert_eq!(ids(&list("?q=ana%20l").await), [ana_id.as_str()]);
    assert_eq!(ids(&list("?q=EXAMPLE.com").await), [ana_id.as_str()]);
    assert_eq!(ids(&list("?q=%2B1%20555").await), [bo_id.as_str()]);
    assert_eq!(ids(&list("?q=7700%20900").await), [ana_id.as_str()]);
    assert_eq!(ids(&list("?q=100%25").await), Vec::<String>::new());
    assert_eq!(ids(&list("?tag=VIP").await), [ana_id.as_str()]);
    assert_eq!(ids(&list("?tag=lead").await), Vec::<String>::new());
    assert_eq!(ids(&list("?opted_out=false").await).len(), 2);
    assert_eq!(ids(&list("?opted_out=true").await).len(), 0);
    let page = list("?limit=1").await;
    assert_eq!(ids(&page), [bo_id.as_str()]);
    assert_eq!(page["next_cursor"], bo_id.as_str());
    let rest = app
        .get(&format!("/api/v1/contacts?limit=1&cursor={bo_id}"), t)
        .await;
    assert_eq!(ids(&rest.body), [ana_id.as_str()]);
    assert!(rest.body["next_cursor"].is_null());

    // PATCH: null clears, absent keeps, opting out is recorded with its source.
    let r = app
        .patch(
            &format!("/api/v1/contacts/{ana_id}"),
            t,
            json!({"name": null, "tags": null, "custom_attributes": {"plan": "silver"}, "marketing_opt_in": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["name"].is_null());
    assert_eq!(r.body["email"], "ana@example.com");
    assert_eq!(r.body["tags"], json!([]));
    assert_eq!(r.body["custom_attributes"], json!({"plan": "silver"}));
    assert_eq!(r.body["marketing_opt_in"], false);
    assert_eq!(r.body["opted_out"], true);
    assert_eq!(r.body["opt_out_source"], "api");
    assert!(r.body["opted_out_at"].is_string() && r.body["opted_in_at"].is_null());
    assert_eq!(ids(&list("?opted_out=true").await), [ana_id.as_str()]);
    let r = app
        .patch(
            &format!("/api/v1/contacts/{ana_id}"),
            t,
            json!({"phone": "+447700900124", "email": null, "marketing_opt_in": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["phone"], "+447700900124");
    assert!(r.body["email"].is_null());
    assert_eq!(r.body["opted_out"], false);
    assert!(r.body["opt_out_source"].is_null() && r.body["opted_in_at"].is_string());
    // A PATCH that changes nothing writes nothing.
    let before = audit_count(&app, "contact.updated").await;
    let same = app
        .patch(
            &format!("/api/v1/contacts/{ana_id}"),
            t,
            json!({"marketing_opt_in": true}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.body["opted_in_at"], r.body["opted_in_at"]);
    assert_eq!(before, 2);
    assert_eq!(audit_count(&app, "contact.updated").await, 2);

    // The audit log records ids, consent and field names, never the contact's personal data.
    assert_eq!(audit_count(&app, "contact.created").await, 2);
    let pii = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'contact.%'
             AND (COALESCE(CAST(after AS TEXT), '') LIKE '%7700%' OR COALESCE(CAST(before AS TEXT), '') LIKE '%7700%'
                  OR CAST(metadata AS TEXT) LIKE '%example.com%')",
        )
        .await
        .unwrap();
    assert_eq!(pii, 0);
    let updated = app
        .get("/api/v1/audit-logs?action=contact.updated", t)
        .await;
    assert_eq!(
        updated.body["data"][1]["metadata"]["fields"],
        json!(["name", "tags", "custom_attributes", "marketing_opt_in"])
    );

    let del = app.delete(&format!("/api/v1/contacts/{ana_id}"), t).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    assert_error(
        &app.get(&format!("/api/v1/contacts/{ana_id}"), t).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.delete(&format!("/api/v1/contacts/{ana_id}"), t).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.patch(
            &format!("/api/v1/contacts/{ana_id}"),
            t,
            json!({"name": "X"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(audit_count(&app, "contact.deleted").await, 1);
    assert_eq!(ids(&list("").await), [bo_id.as_str()]);
}

async fn every_bad_input_is_a_precise_422(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let bad = |body: Value, field: &'static str| {
        let app = &app;
        async move {
            let r = app.post("/api/v1/contacts", Some(t), body.clone()).await;
            assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(
                !field_messages(&r, field).is_empty(),
                "{body} should name {field}: {}",
                r.body
            );
        }
    };
    for phone in [
        "447700900123",
        "+44 7700 900123 ext 5",
        "+0447700900123",
        "+1234567",
        "+1234567890123456",
        "+44/7700900123",
        "",
    ] {
        bad(json!({ "phone": phone }), "phone").await;
    }
    let ok = "+447700900123";
    bad(json!({"phone": ok, "email": "not-an-email"}), "email").await;
    bad(json!({"phone": ok, "name": "   "}), "name").await;
    bad(json!({"phone": ok, "name": "x".repeat(101)}), "name").await;
    bad(json!({"phone": ok, "tags": ["ok", ""]}), "tags").await;
    bad(json!({"phone": ok, "tags": ["x".repeat(51)]}), "tags").await;
    bad(json!({"phone": ok, "tags": ["<script>"]}), "tags").await;
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    bad(json!({"phone": ok, "tags": many}), "tags").await;
    bad(
        json!({"phone": ok, "custom_attributes": ["a"]}),
        "custom_attributes",
    )
    .await;
    bad(
        json!({"phone": ok, "custom_attributes": {"a": {"b": 1}}}),
        "custom_attributes",
    )
    .await;
    bad(
        json!({"phone": ok, "custom_attributes": {"a": [1]}}),
        "custom_attributes",
    )
    .await;
    bad(
        json!({"phone": ok, "custom_attributes": {"": 1}}),
        "custom_attributes",
    )
    .await;
    bad(
        json!({"phone": ok, "custom_attributes": {"k".repeat(65): 1}}),
        "custom_attributes",
    )
    .await;
    let keys: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    bad(
        json!({"phone": ok, "custom_attributes": keys}),
        "custom_attributes",
    )
    .await;
    bad(
        json!({"phone": ok, "custom_attributes": {"k": "x".repeat(8200)}}),
        "custom_attributes",
    )
    .await;
    // Several bad fields are all reported.
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "nope", "email": "nope", "tags": [""]}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    for f in ["phone", "email", "tags"] {
        assert!(!field_messages(&r, f).is_empty(), "{f}: {}", r.body);
    }
    // Shape errors come from the extractor.
    for body in [
        json!({"phone": ok, "surprise": 1}),
        json!({"name": "No phone"}),
        json!({"phone": 447700900123_i64}),
        json!({"phone": ok, "marketing_opt_in": "yes"}),
        json!({"phone": ok, "tags": "vip"}),
    ] {
        let r = app.post("/api/v1/contacts", Some(t), body).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM contacts")
            .await
            .unwrap(),
        0,
        "nothing refused was stored"
    );
    // PATCH validates the same way; a phone cannot be removed.
    let c = create(&app, t, json!({"phone": ok})).await;
    let path = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
    for (body, field) in [
        (json!({"phone": null}), "phone"),
        (json!({"phone": "0044"}), "phone"),
        (json!({"email": "@x"}), "email"),
        (json!({"tags": ["a b c", "bad\"quote"]}), "tags"),
        (json!({"custom_attributes": 3}), "custom_attributes"),
    ] {
        let r = app.patch(&path, t, body.clone()).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(!field_messages(&r, field).is_empty(), "{body}: {}", r.body);
    }
    assert_error(
        &app.patch(&path, t, json!({"wa_id": "1"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    // Bad ids and queries.
    assert_error(
        &app.get("/api/v1/contacts/not-a-uuid", t).await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    );
    let r = app.get("/api/v1/contacts?opted_out=maybe", t).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app.get("/api/v1/contacts?tag=%3Cb%3E", t).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "tag").is_empty());
    let r = app.get("/api/v1/contacts/export?format=xml", t).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
}

async fn duplicate_phones_conflict_on_create_and_edit(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let a = create(&app, t, json!({"phone": "+447700900123"})).await;
    let a_id = a["id"].as_str().unwrap();
    // The same number written differently is the same number.
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+44 7700-900-123"}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "contact_exists");
    assert!(
        r.body["error"]["message"].as_str().unwrap().contains(a_id),
        "the existing id is named: {}",
        r.body
    );
    let b = create(&app, t, json!({"phone": "+447700900124"})).await;
    let r = app
        .patch(
            &format!("/api/v1/contacts/{}", b["id"].as_str().unwrap()),
            t,
            json!({"phone": "+447700900123", "name": "Not saved"}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "contact_exists");
    assert!(r.body["error"]["message"].as_str().unwrap().contains(a_id));
    let b_now = app
        .get(
            &format!("/api/v1/contacts/{}", b["id"].as_str().unwrap()),
            t,
        )
        .await;
    assert_eq!(b_now.body["phone"], "+447700900124");
    assert!(
        b_now.body["name"].is_null(),
        "the refused change is not half-applied"
    );
    // Another tenant may have the same number.
    let other = app.register("Other", "owner@other.example").await;
    create(&app, &other.access_token, json!({"phone": "+447700900123"})).await;
}

async fn roles_scopes_and_tenants_are_enforced(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let a = &agent.access_token;
    // Agents read, create and edit contacts…
    let c = create(&app, a, json!({"phone": "+447700900123", "tags": ["x"]})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contacts/{id}");
    assert_eq!(app.get(&path, a).await.status, StatusCode::OK);
    assert_eq!(
        app.patch(&path, a, json!({"name": "Ana"})).await.status,
        StatusCode::OK
    );
    // …but neither delete nor export them.
    assert_error(
        &app.delete(&path, a).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &app.get("/api/v1/contacts/export?format=csv", a).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        app.get(&path, a).await.status,
        StatusCode::OK,
        "still there"
    );

    // API keys: each scope allows exactly its verbs.
    let read = key(&app, &owner, json!(["contacts:read"])).await;
    assert_eq!(app.get(&path, &read).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/contacts", &read).await.status,
        StatusCode::OK
    );
    assert_error(
        &app.post(
            "/api/v1/contacts",
            Some(&read),
            json!({"phone": "+447700900999"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.patch(&path, &read, json!({"name": "B"})).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.delete(&path, &read).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.get("/api/v1/contacts/export?format=csv", &read).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let conv_export = key(&app, &owner, json!(["conversations:export"])).await;
    let r = app
        .get("/api/v1/contacts/export?format=csv", &conv_export)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("contacts:export"));
    let write = key(&app, &owner, json!(["contacts:write"])).await;
    let w = create(&app, &write, json!({"phone": "+447700900555"})).await;
    assert_eq!(
        app.patch(
            &format!("/api/v1/contacts/{}", w["id"].as_str().unwrap()),
            &write,
            json!({"tags": ["api"]})
        )
        .await
        .status,
        StatusCode::OK
    );
    let export = key(&app, &owner, json!(["contacts:export"])).await;
    assert_eq!(
        app.get("/api/v1/contacts/export?format=jsonl", &export)
            .await
            .status,
        StatusCode::OK
    );

    // Another tenant's admin sees nothing and changes nothing.
    let other = app.register("Other", "owner@other.example").await;
    let o = &other.access_token;
    assert_error(&app.get(&path, o).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &app.patch(&path, o, json!({"name": "Mine"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.delete(&path, o).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(ids(&app.get("/api/v1/contacts", o).await.body).len(), 0);
    let other_key = key(&app, &other, json!(["contacts:delete", "contacts:read"])).await;
    assert_error(
        &app.delete(&path, &other_key).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Deleting takes contacts:delete.
    let delete = key(&app, &owner, json!(["contacts:delete"])).await;
    assert_eq!(
        app.delete(&path, &delete).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&path, &owner.access_token).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn exports_stream_csv_and_jsonl(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    create(
        &app,
        t,
        json!({"phone": "+447700900123", "name": "=HYPERLINK(\"x\")", "tags": ["vip", "b2b"],
               "custom_attributes": {"plan": "gold"}, "marketing_opt_in": false}),
    )
    .await;
    create(
        &app,
        t,
        json!({"phone": "+15550100199", "name": "Bo \"Bear\""}),
    )
    .await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .get(app.url(path))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
            let disp = r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_owned();
            (ctype, disp, r.text().await.unwrap())
        }
    };
    let (ctype, disp, csv) = get("/api/v1/contacts/export?format=csv").await;
    assert_eq!(ctype, "text/csv; charset=utf-8");
    assert!(disp.contains("contacts.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,phone,name,"));
    assert!(
        lines[1].contains("\"+15550100199\",\"Bo \"\"Bear\"\"\""),
        "{csv}"
    );
    assert!(
        lines[2].contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "formulas are neutralised: {csv}"
    );
    assert!(lines[2].contains("\"vip;b2b\""), "{csv}");
    assert!(
        lines[2].contains("\"{\"\"plan\"\":\"\"gold\"\"}\""),
        "{csv}"
    );
    assert!(lines[2].contains("\"api\""), "opt-out source: {csv}");

    let (ctype, _, jsonl) = get("/api/v1/contacts/export?format=jsonl&tag=vip").await;
    assert_eq!(ctype, "application/x-ndjson");
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["phone"], "+447700900123");
    assert_eq!(rows[0]["opted_out"], true);
    assert_eq!(rows[0]["custom_attributes"], json!({"plan": "gold"}));
    let (_, _, none) = get("/api/v1/contacts/export?format=jsonl&opted_out=false&q=nobody").await;
    assert!(none.is_empty());
    assert_eq!(audit_count(&app, "contact.exported").await, 3);
    let rec = app
        .get("/api/v1/audit-logs?action=contact.exported", t)
        .await;
    assert_eq!(rec.body["data"][1]["metadata"]["format"], "jsonl");
    assert_eq!(rec.body["data"][1]["metadata"]["tag"], "vip");
}

/// Sends a text from `from` through the simulator and waits until it is stored.
async fn customer_says(s: &crate::support::WhatsAppFixture, from: &str, text: &str) {
    customer_sends(s, from, json!({"type": "text", "text": {"body": text}})).await;
}

/// Sends a message (`{type, <type>: {…}}`) from `from` through the simulator and waits until it
/// is stored.
async fn customer_sends(s: &crate::support::WhatsAppFixture, from: &str, message: Value) {
    let text = message.to_string();
    let mut req = json!({
        "phone_number_id": s.phone_number_id, "from": from, "profile_name": "Customer",
    });
    for (k, v) in message.as_object().unwrap() {
        req[k] = v.clone();
    }
    let r = s
        .app
        .client
        .post(format!("{}/_sim/inbound", s.sim))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let wamid = r.json::<Value>().await.unwrap()["wamid"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..400 {
        palisade_core::whatsapp::inbound::process_pending(&s.app.services)
            .await
            .unwrap();
        let stored = s
            .app
            .db
            .count_as_owner(&format!(
                "SELECT COUNT(*) FROM messages WHERE wamid = '{wamid}'"
            ))
            .await
            .unwrap();
        let pending = s
            .app
            .db
            .count_as_owner(
                "SELECT COUNT(*) FROM whatsapp_inbound_events WHERE processed_at IS NULL",
            )
            .await
            .unwrap();
        if stored == 1 && pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the customer's message {text:?} never arrived");
}

async fn contact_by_phone(s: &crate::support::WhatsAppFixture, phone: &str) -> Value {
    let r = s
        .app
        .get(
            &format!("/api/v1/contacts?q={}", phone.trim_start_matches('+')),
            &s.owner.access_token,
        )
        .await;
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.body);
    list[0].clone()
}

async fn inbound_stop_opts_out_and_start_lifts_it(db: Db) {
    let s = whatsapp_fixture(db).await;
    customer_says(&s, "447700900123", "Hello there").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(c["opted_out"], false);
    assert_eq!(c["marketing_opt_in"], false);
    // A sentence containing the word is not the keyword.
    customer_says(&s, "447700900123", "please don't stop the offers").await;
    assert_eq!(
        contact_by_phone(&s, "+447700900123").await["opted_out"],
        false
    );
    customer_says(&s, "447700900123", "  Stop! ").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(c["opted_out"], true, "{c}");
    assert_eq!(c["opt_out_source"], "keyword");
    assert_eq!(c["marketing_opt_in"], false);
    let at = time::OffsetDateTime::parse(
        c["opted_out_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let drift = (time::OffsetDateTime::now_utc() - at).whole_seconds().abs();
    assert!(drift < 120, "the opt-out time is the message's: {at}");
    assert_eq!(audit_count(&s.app, "contact.opted_out").await, 1);
    // A second STOP changes nothing more.
    customer_says(&s, "447700900123", "STOP").await;
    let again = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(again["opted_out_at"], c["opted_out_at"]);
    assert_eq!(audit_count(&s.app, "contact.opted_out").await, 1);
    // A localized keyword works for another contact; an ordinary message leaves a third alone.
    customer_says(&s, "33612345678", "arrêt").await;
    assert_eq!(
        contact_by_phone(&s, "+33612345678").await["opted_out"],
        true
    );
    customer_says(&s, "34612345678", "hola").await;
    assert_eq!(
        contact_by_phone(&s, "+34612345678").await["opted_out"],
        false
    );
    // Meta's "Stop promotions" quick-reply button on a marketing template is a keyword too.
    customer_sends(
        &s,
        "4915112345678",
        json!({"type": "button", "button": {"text": "Stop promotions", "payload": "promo-off"}}),
    )
    .await;
    let de = contact_by_phone(&s, "+4915112345678").await;
    assert_eq!(de["opt_out_source"], "keyword", "{de}");
    // START lifts the opt-out.
    customer_says(&s, "447700900123", "start").await;
    let back = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(back["opted_out"], false, "{back}");
    assert_eq!(back["marketing_opt_in"], true);
    assert!(back["opt_out_source"].is_null() && back["opted_in_at"].is_string());
    assert_eq!(audit_count(&s.app, "contact.opted_in").await, 1);
    // START from someone who never opted out creates no consent.
    customer_says(&s, "34612345678", "START").await;
    assert_eq!(
        contact_by_phone(&s, "+34612345678").await["marketing_opt_in"],
        false
    );
    // The WhatsApp id and profile name belong to the number: the same number written
    // differently keeps them, a new number drops them (replies must not go to the old one).
    let es = contact_by_phone(&s, "+34612345678").await;
    assert_eq!(es["wa_id"], "34612345678");
    let path = format!("/api/v1/contacts/{}", es["id"].as_str().unwrap());
    let t = &s.owner.access_token;
    let same = s
        .app
        .patch(&path, t, json!({"phone": "+34 612 345 678"}))
        .await;
    assert_eq!(same.body["wa_id"], "34612345678");
    assert_eq!(same.body["wa_profile_name"], "Customer");
    let moved = s
        .app
        .patch(&path, t, json!({"phone": "+34612345679"}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert!(moved.body["wa_id"].is_null() && moved.body["wa_profile_name"].is_null());
    // The messages themselves are stored like any other.
    assert_eq!(
        s.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM messages WHERE text = 'STOP'")
            .await
            .unwrap(),
        1
    );
}

async fn erasing_a_contact_removes_its_conversations_and_queued_sends(db: Db) {
    let s = whatsapp_fixture(db).await;
    let t = &s.owner.access_token;
    customer_says(&s, "447700900123", "Hi, where is my order?").await;
    customer_says(&s, "15550100199", "Someone else").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    let id = c["id"].as_str().unwrap();
    let convs = s.app.get("/api/v1/conversations", t).await;
    let conv = convs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["contact_id"] == id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(t),
            json!({"type": "text", "text": {"body": "On its way"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    let note = s
        .app
        .post(
            &format!("/api/v1/conversations/{conv}/notes"),
            Some(t),
            json!({"body": "VIP"}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);

    let del = s.app.delete(&format!("/api/v1/contacts/{id}"), t).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let count = |sql: &'static str| {
        let s = &s;
        async move { s.app.db.count_as_owner(sql).await.unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM contacts").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM conversations").await, 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM messages").await,
        1,
        "only the other contact's"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM whatsapp_outbound_queue").await,
        0
    );
    assert_eq!(
        s.app
            .get(&format!("/api/v1/conversations/{conv}"), t)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let rec = s
        .app
        .get("/api/v1/audit-logs?action=contact.deleted", t)
        .await;
    let meta = &rec.body["data"][0]["metadata"];
    assert_eq!(meta["conversations"], 1);
    assert_eq!(meta["messages"], 3, "{meta}");
    // The sender carries on: nothing left to send for the erased contact, nothing fails.
    palisade_core::whatsapp::outbound::send_pending(&s.app.services)
        .await
        .unwrap();
    // The customer writing again is a new contact with a new conversation.
    customer_says(&s, "447700900123", "Hello again").await;
    let again = contact_by_phone(&s, "+447700900123").await;
    assert_ne!(again["id"], id);
}

/// An active endpoint (approved if the tenant needs approval) on an address nothing listens
/// on, subscribed to `events`; deliveries stay queued for the test to read. Returns its id.
async fn subscribe(app: &TestApp, token: &str, events: &str) -> String {
    let w = app
        .post(
            "/api/v1/webhooks",
            Some(token),
            json!({"url": "http://127.0.0.1:9/hook", "events": [events]}),
        )
        .await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.body);
    let wid = w.body["webhook"]["id"].as_str().unwrap().to_owned();
    if w.body["webhook"]["status"] == "pending_approval" {
        let a = app
            .post(
                &format!("/api/v1/webhooks/{wid}/approve"),
                Some(token),
                json!({}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    wid
}

/// Deliveries of `event` queued whose payload mentions `text`.
async fn queued(app: &TestApp, event: &str, text: &str) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = '{event}'
             AND CAST(payload AS TEXT) LIKE '%{text}%'"
        ))
        .await
        .unwrap()
}

async fn contact_events_are_queued_with_the_change(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let wid = subscribe(&app, t, "contact.*").await;
    let c = create(&app, t, json!({"phone": "+447700900123", "name": "Ana"})).await;
    let path = format!("/api/v1/contacts/{}", c["id"].as_str().unwrap());
    app.patch(&path, t, json!({"tags": ["vip"]})).await;
    // A refused change queues nothing.
    app.patch(&path, t, json!({"email": "bad"})).await;
    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    let d = app
        .get(&format!("/api/v1/webhooks/{wid}/deliveries"), t)
        .await;
    let mut types: Vec<String> = d.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["event_type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["contact.created", "contact.deleted", "contact.updated"]
    );
    for event in ["contact.created", "contact.updated", "contact.deleted"] {
        assert_eq!(queued(&app, event, "+447700900123").await, 1, "{event}");
    }
}

/// A customer who writes first becomes a contact, announced with `contact.created` in the
/// processing transaction; their next messages, and a customer the tenant created through the
/// API before they wrote, announce nothing more.
async fn a_contact_an_inbound_message_creates_is_announced_once(db: Db) {
    let s = crate::support::whatsapp_fixture_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let t = &s.owner.access_token;
    let wid = subscribe(&s.app, t, "contact.created").await;
    let announced = |phone: &'static str| queued(&s.app, "contact.created", phone);
    customer_says(&s, "447700900123", "Hello").await;
    let c = contact_by_phone(&s, "+447700900123").await;
    assert_eq!(announced("+447700900123").await, 1);
    let d = s
        .app
        .get(&format!("/api/v1/webhooks/{wid}/deliveries"), t)
        .await;
    assert_eq!(
        d.body["data"][0]["event_type"], "contact.created",
        "{}",
        d.body
    );
    let payload = s
        .app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM webhook_deliveries
             WHERE CAST(payload AS TEXT) LIKE '%{}%' AND CAST(payload AS TEXT) LIKE '%Customer%'",
            c["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(
        payload, 1,
        "the event carries the contact with its profile name"
    );
    customer_says(&s, "447700900123", "Are you there?").await;
    assert_eq!(announced("+447700900123").await, 1);

    create(&s.app, t, json!({"phone": "+447700900555", "name": "Bo"})).await;
    assert_eq!(announced("+447700900555").await, 1);
    customer_says(&s, "447700900555", "Hi, Bo here").await;
    assert_eq!(announced("+447700900555").await, 1);
}

/// The fields of one CSV line (every field quoted, `""` for a quote inside).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

/// One contact is one JSON object wherever it leaves the server: the REST answers (create, get,
/// list, edit), the `contact.created` and `contact.updated` events' data and the JSON Lines
/// export are equal, and the CSV row has the same values column by column.
async fn a_contact_is_the_same_in_the_api_events_and_exports(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let wid = subscribe(&app, t, "contact.*").await;
    let created = create(
        &app,
        t,
        json!({"phone": "+447700900123", "name": "Ana Lima", "email": "ana@example.com",
               "tags": ["vip", "lead:hot"], "custom_attributes": {"plan": "gold", "seats": 3, "vip": true, "note": null},
               "marketing_opt_in": true}),
    )
    .await;
    let path = format!("/api/v1/contacts/{}", created["id"].as_str().unwrap());
    assert_eq!(app.get(&path, t).await.body, created);
    let updated = app
        .patch(
            &path,
            t,
            json!({"marketing_opt_in": false, "tags": ["vip"]}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let updated = updated.body;
    assert_eq!(updated["opt_out_source"], "api");
    assert_eq!(app.get(&path, t).await.body, updated);
    assert_eq!(
        app.get("/api/v1/contacts", t).await.body["data"][0],
        updated
    );

    let d = app
        .get(&format!("/api/v1/webhooks/{wid}/deliveries"), t)
        .await;
    let event = |kind: &str| {
        d.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["event_type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {}", d.body))["payload"]["data"]
            .clone()
    };
    assert_eq!(event("contact.created"), created);
    assert_eq!(event("contact.updated"), updated);

    let export = |format: &str| {
        let app = &app;
        let url = app.url(&format!("/api/v1/contacts/export?format={format}"));
        async move {
            let r = app.client.get(url).bearer_auth(t).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let jsonl = export("jsonl").await;
    let line: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(line, updated);

    let csv = export("csv").await;
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().unwrap());
    let row = csv_fields(lines.next().unwrap());
    assert_eq!(header.len(), row.len());
    for (column, value) in header.iter().zip(&row) {
        let want = match &updated[column.as_str()] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            Value::Array(tags) => tags
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        };
        assert_eq!(value, &want, "CSV column {column}");
    }
    assert_eq!(
        header.len(),
        updated.as_object().unwrap().len(),
        "every field is a column"
    );
}
