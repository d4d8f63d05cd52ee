//! Contacts through the API: created, read, edited and erased; every bad input a precise 422;
//! a duplicate phone a 409 on create and edit.

use super::{create, ids};
use crate::support::{assert_error, audit_count, field_messages};
use palisade_testkit::{spawn_app, Db};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    contacts_are_created_read_edited_and_erased,
    every_bad_input_is_a_precise_422,
    duplicate_phones_conflict_on_create_and_edit,
);

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
    // The phone is searched by 7 of its digits: ids and hashes are hex, and a short pattern
    // such as "7700" turns up in one by chance (this test failed so, once in many runs).
    assert_eq!(audit_count(&app, "contact.created").await, 2);
    let pii = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'contact.%'
             AND (COALESCE(CAST(after AS TEXT), '') LIKE '%7700900%' OR COALESCE(CAST(before AS TEXT), '') LIKE '%7700900%'
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
