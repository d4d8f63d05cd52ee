//! Tickets: opening (also from a conversation), editing, listing with filters and pages,
//! comments (a public one goes to the customer over WhatsApp, an internal one does not), every
//! refusal, another tenant's ids, roles, API key scopes and read-only impersonation.

use crate::support::{assert_error, audit_count, whatsapp_fixture};
use palisade_testkit::{spawn_app, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    tickets_are_opened_edited_listed_and_deleted,
    a_ticket_opened_from_a_conversation_sends_public_comments_to_the_customer,
    bad_tickets_and_comments_are_refused,
    another_tenants_tickets_are_not_found,
    roles_scopes_and_impersonation_decide_who_works_tickets,
    a_patch_moves_a_ticket_to_another_contact_or_conversation_of_the_tenant_only,
);

async fn ticket(app: &TestApp, t: &str, body: Value) -> Value {
    let r = app.post("/api/v1/tickets", Some(t), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
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

fn ids(r: &Value) -> Vec<String> {
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn tickets_are_opened_edited_listed_and_deleted(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let c = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+447700900123"}),
        )
        .await;
    let contact = c.body["id"].as_str().unwrap().to_owned();

    let a = ticket(
        &app,
        t,
        json!({"subject": "Printer on fire", "description": "Line 1\nLine 2",
        "priority": "urgent", "contact_id": contact, "assignee_id": agent.user_id}),
    )
    .await;
    assert_eq!(a["status"], "open");
    assert_eq!(a["priority"], "urgent");
    assert_eq!(a["description"], "Line 1\nLine 2");
    assert_eq!(a["contact_id"], contact.as_str());
    assert_eq!(a["created_by"], owner.user_id.as_str());
    let b = ticket(&app, t, json!({"subject": "Question"})).await;
    assert_eq!(b["priority"], "normal");
    assert!(b["contact_id"].is_null());
    let c3 = ticket(
        &app,
        t,
        json!({"subject": "Later", "status": "pending", "priority": "low"}),
    )
    .await;

    let path = format!("/api/v1/tickets/{}", a["id"].as_str().unwrap());
    let got = app.get(&path, t).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["subject"], "Printer on fire");
    assert_eq!(got.body["comments"], json!([]));
    assert_eq!(got.body["attachments"], json!([]));

    // Edit: status, priority and assignee (null unassigns); a no-op writes nothing.
    let r = app
        .patch(&path, t, json!({"status": "solved", "assignee_id": null}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "solved");
    assert!(r.body["assignee_id"].is_null());
    assert_eq!(audit_count(&app, "ticket.updated").await, 1);
    let same = app.patch(&path, t, json!({"status": "solved"})).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(audit_count(&app, "ticket.updated").await, 1);

    // Internal comments (the default) stay with the team.
    let cm = app
        .post(
            &format!("{path}/comments"),
            Some(t),
            json!({"body": "Called the vendor"}),
        )
        .await;
    assert_eq!(cm.status, StatusCode::CREATED, "{}", cm.body);
    assert_eq!(cm.body["visibility"], "internal");
    assert!(cm.body["message_id"].is_null());
    let got = app.get(&path, t).await;
    assert_eq!(got.body["comments"][0]["body"], "Called the vendor");

    // Filters and pages.
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/tickets{q}"), t).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            ids(&r.body)
        }
    };
    let (ia, ib, ic) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
        c3["id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(list("").await, [ic.clone(), ib.clone(), ia.clone()]);
    assert_eq!(list("?status=solved").await, std::slice::from_ref(&ia));
    assert_eq!(list("?priority=low").await, std::slice::from_ref(&ic));
    assert_eq!(list("?status=open").await, std::slice::from_ref(&ib));
    let r = app
        .get(&format!("/api/v1/tickets?contact_id={contact}"), t)
        .await;
    assert_eq!(ids(&r.body), std::slice::from_ref(&ia));
    let p1 = app.get("/api/v1/tickets?limit=2", t).await;
    assert_eq!(ids(&p1.body), [ic.clone(), ib.clone()]);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(&format!("/api/v1/tickets?limit=2&cursor={cursor}"), t)
        .await;
    assert_eq!(ids(&p2.body), std::slice::from_ref(&ia));
    assert!(p2.body["next_cursor"].is_null());

    // Delete (admins), with its comments.
    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(audit_count(&app, "ticket.deleted").await, 1);
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM ticket_comments")
            .await
            .unwrap(),
        0
    );
    // Erasing a contact erases its tickets.
    let d = ticket(
        &app,
        t,
        json!({"subject": "About Ana", "contact_id": contact}),
    )
    .await;
    let r = app.delete(&format!("/api/v1/contacts/{contact}"), t).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let gone = app
        .get(&format!("/api/v1/tickets/{}", d["id"].as_str().unwrap()), t)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn a_ticket_opened_from_a_conversation_sends_public_comments_to_the_customer(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    f.customer_message("text", json!({"body": "My order is late"}))
        .await;
    let mut conv = Value::Null;
    for _ in 0..100 {
        let r = f.app.get("/api/v1/conversations", t).await;
        if let Some(c) = r.body["data"].as_array().and_then(|d| d.first()) {
            conv = c.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let conv_id = conv["id"]
        .as_str()
        .expect("a conversation arrived")
        .to_owned();
    let contact_id = conv["contact"]["id"]
        .as_str()
        .or(conv["contact_id"].as_str())
        .unwrap()
        .to_owned();
    let tk = ticket(
        &f.app,
        t,
        json!({"subject": "Late order", "conversation_id": conv_id}),
    )
    .await;
    assert_eq!(tk["conversation_id"], conv_id.as_str());
    assert_eq!(
        tk["contact_id"],
        contact_id.as_str(),
        "filled from the conversation"
    );
    let path = format!("/api/v1/tickets/{}/comments", tk["id"].as_str().unwrap());
    let public = f
        .app
        .post(
            &path,
            Some(t),
            json!({"body": "We are on it!", "visibility": "public"}),
        )
        .await;
    assert_eq!(public.status, StatusCode::CREATED, "{}", public.body);
    let mid = public.body["message_id"]
        .as_str()
        .expect("sent as a message")
        .to_owned();
    let internal = f
        .app
        .post(
            &path,
            Some(t),
            json!({"body": "Courier says Tuesday", "visibility": "internal"}),
        )
        .await;
    assert_eq!(internal.status, StatusCode::CREATED);
    let msgs = f
        .app
        .get(&format!("/api/v1/conversations/{conv_id}/messages"), t)
        .await;
    let outbound: Vec<&Value> = msgs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(
        outbound.len(),
        1,
        "only the public comment is sent: {}",
        msgs.body
    );
    assert_eq!(outbound[0]["id"], mid.as_str());
    assert_eq!(outbound[0]["text"], "We are on it!");

    // A conversation's contact must agree with contact_id; a public comment needs a
    // conversation on the ticket.
    let other = f
        .app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+447700900999"}),
        )
        .await;
    let r = f
        .app
        .post(
            "/api/v1/tickets",
            Some(t),
            json!({"subject": "x", "conversation_id": conv_id, "contact_id": other.body["id"]}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let plain = ticket(&f.app, t, json!({"subject": "No conversation"})).await;
    let r = f
        .app
        .post(
            &format!("/api/v1/tickets/{}/comments", plain["id"].as_str().unwrap()),
            Some(t),
            json!({"body": "hi", "visibility": "public"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        r.body["error"]["fields"]["visibility"].is_array(),
        "{}",
        r.body
    );
    // A key with tickets:write but not conversations:write comments internally only.
    let k = key(&f.app, t, json!(["tickets:write", "tickets:read"])).await;
    let r = f
        .app
        .post(
            &path,
            Some(&k),
            json!({"body": "x", "visibility": "public"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    let r = f
        .app
        .post(
            &path,
            Some(&k),
            json!({"body": "x", "visibility": "internal"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

async fn bad_tickets_and_comments_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    for body in [
        json!({"subject": ""}),
        json!({"subject": "x".repeat(201)}),
        json!({"subject": "a\u{7}b"}),
        json!({"subject": "x", "priority": "critical"}),
        json!({"subject": "x", "status": "resolved"}),
        json!({"subject": "x", "description": "x".repeat(10_001)}),
        json!({"subject": "x", "contact_id": "0190f6a4-0000-7000-8000-000000000000"}),
        json!({"subject": "x", "conversation_id": "0190f6a4-0000-7000-8000-000000000000"}),
        json!({"subject": "x", "assignee_id": "0190f6a4-0000-7000-8000-000000000000"}),
    ] {
        let r = app.post("/api/v1/tickets", Some(t), body.clone()).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let r = app
        .post(
            "/api/v1/tickets",
            Some(t),
            json!({"subject": "x", "owner": "me"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let r = app.get("/api/v1/tickets?status=nope", t).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let tk = ticket(&app, t, json!({"subject": "x"})).await;
    let path = format!("/api/v1/tickets/{}", tk["id"].as_str().unwrap());
    for body in [
        json!({"body": "", "visibility": "internal"}),
        json!({"body": "x".repeat(4097), "visibility": "internal"}),
        json!({"body": "x", "visibility": "secret"}),
    ] {
        let r = app.post(&format!("{path}/comments"), Some(t), body).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let r = app.patch(&path, t, json!({"priority": "meh"})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .send(reqwest::Method::GET, "/api/v1/tickets", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn another_tenants_tickets_are_not_found(db: Db) {
    let app = spawn_app(db).await;
    let a = app.register("Acme", "owner@acme.example").await;
    let b = app.register("Other", "owner@other.example").await;
    let tk = ticket(&app, &a.access_token, json!({"subject": "Acme's"})).await;
    let path = format!("/api/v1/tickets/{}", tk["id"].as_str().unwrap());
    let tb = &b.access_token;
    assert_error(
        &app.get(&path, tb).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.patch(&path, tb, json!({"status": "closed"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.post(
            &format!("{path}/comments"),
            Some(tb),
            json!({"body": "x", "visibility": "internal"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.delete(&path, tb).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert!(ids(&app.get("/api/v1/tickets", tb).await.body).is_empty());
    // Another tenant's contact or user cannot be linked.
    let c = app
        .post(
            "/api/v1/contacts",
            Some(&a.access_token),
            json!({"phone": "+447700900123"}),
        )
        .await;
    let r = app
        .post(
            "/api/v1/tickets",
            Some(tb),
            json!({"subject": "x", "contact_id": c.body["id"], "assignee_id": a.user_id}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(app.get(&path, &a.access_token).await.body["status"], "open");
}

async fn roles_scopes_and_impersonation_decide_who_works_tickets(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let ta = &agent.access_token;
    // Agents open, edit and comment, but do not delete.
    let tk = ticket(&app, ta, json!({"subject": "By the agent"})).await;
    let path = format!("/api/v1/tickets/{}", tk["id"].as_str().unwrap());
    assert_eq!(
        app.patch(&path, ta, json!({"status": "pending"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_error(
        &app.delete(&path, ta).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Scopes.
    let ro = key(&app, t, json!(["tickets:read"])).await;
    assert_eq!(app.get(&path, &ro).await.status, StatusCode::OK);
    assert_error(
        &app.post("/api/v1/tickets", Some(&ro), json!({"subject": "x"}))
            .await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.patch(&path, &ro, json!({"status": "open"})).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let other = key(&app, t, json!(["deals:read"])).await;
    assert_error(
        &app.get("/api/v1/tickets", &other).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let rw = key(&app, t, json!(["tickets:write"])).await;
    let by_key = ticket(&app, &rw, json!({"subject": "By a key"})).await;
    assert_eq!(by_key["created_by"], owner.user_id.as_str());
    assert_error(
        &app.delete(&path, &rw).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let del = key(&app, t, json!(["tickets:delete"])).await;
    assert_eq!(app.delete(&path, &del).await.status, StatusCode::NO_CONTENT);

    // A read-only impersonation reads but does not write; a write one does.
    let root = app.super_admin("root@platform.example").await;
    let imp = format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id);
    let r = app
        .post(
            &imp,
            Some(&root.access_token),
            json!({"reason": "support case 7"}),
        )
        .await;
    let ro_token = r.body["access_token"].as_str().unwrap().to_owned();
    let p2 = format!("/api/v1/tickets/{}", by_key["id"].as_str().unwrap());
    assert_eq!(app.get(&p2, &ro_token).await.status, StatusCode::OK);
    assert_error(
        &app.post("/api/v1/tickets", Some(&ro_token), json!({"subject": "x"}))
            .await,
        StatusCode::FORBIDDEN,
        "impersonation_read_only",
    );
    assert_error(
        &app.patch(&p2, &ro_token, json!({"status": "closed"})).await,
        StatusCode::FORBIDDEN,
        "impersonation_read_only",
    );
    let r = app
        .post(
            &imp,
            Some(&root.access_token),
            json!({"reason": "support case 8", "write": true}),
        )
        .await;
    let w_token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.patch(&p2, &w_token, json!({"status": "closed"}))
            .await
            .status,
        StatusCode::OK
    );
}

/// `PATCH` with `contact_id` / `conversation_id`: a conversation brings its contact; a contact
/// that is not the conversation's is refused; another tenant's contact or conversation is a
/// `422` naming the field (as at creation) and changes nothing; `null` unlinks.
async fn a_patch_moves_a_ticket_to_another_contact_or_conversation_of_the_tenant_only(db: Db) {
    let f = whatsapp_fixture(db).await;
    let (app, t) = (&f.app, f.owner.access_token.as_str());
    f.customer_message("text", json!({"body": "Where is my parcel?"}))
        .await;
    let mut conv = Value::Null;
    for _ in 0..100 {
        let r = app.get("/api/v1/conversations", t).await;
        if let Some(c) = r.body["data"].as_array().and_then(|d| d.first()) {
            conv = c.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let conv_id = conv["id"].as_str().expect("a conversation").to_owned();
    let ana = conv["contact"]["id"]
        .as_str()
        .or(conv["contact_id"].as_str())
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+447700900777"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let bo = r.body["id"].as_str().unwrap().to_owned();
    let tk = ticket(app, t, json!({"subject": "Parcel", "contact_id": bo})).await;
    let path = format!("/api/v1/tickets/{}", tk["id"].as_str().unwrap());

    // Another tenant's contact, and a conversation id not of this tenant: 422 naming the
    // field, nothing changed.
    let other = app.register("Globex", "owner@globex.example").await;
    let r = app
        .post(
            "/api/v1/contacts",
            Some(&other.access_token),
            json!({"phone": "+447700900778"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let their_contact = r.body["id"].as_str().unwrap().to_owned();
    let their_conv = uuid::Uuid::now_v7().to_string();
    for (body, field) in [
        (json!({"contact_id": their_contact}), "contact_id"),
        (json!({"conversation_id": their_conv}), "conversation_id"),
        (json!({"contact_id": uuid::Uuid::now_v7()}), "contact_id"),
    ] {
        let r = app.patch(&path, t, body.clone()).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            r.body["error"]["fields"].get(field).is_some(),
            "{body}: {}",
            r.body
        );
    }
    let same = app.get(&path, t).await.body;
    assert_eq!(same["contact_id"], bo.as_str());
    assert!(same["conversation_id"].is_null());

    // Moved to Ana's conversation: its contact comes with it.
    let r = app
        .patch(&path, t, json!({"conversation_id": conv_id}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (
            r.body["conversation_id"].as_str(),
            r.body["contact_id"].as_str()
        ),
        (Some(conv_id.as_str()), Some(ana.as_str()))
    );
    // A contact other than the conversation's is refused; the conversation's own is fine.
    let r = app.patch(&path, t, json!({"contact_id": bo})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(r.body["error"]["fields"].get("contact_id").is_some());
    let r = app.patch(&path, t, json!({"contact_id": ana})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Unlinked from the conversation, then moved back to Bo; then no contact at all.
    let r = app
        .patch(&path, t, json!({"conversation_id": null, "contact_id": bo}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["conversation_id"].is_null());
    assert_eq!(r.body["contact_id"], bo.as_str());
    let r = app.patch(&path, t, json!({"contact_id": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["contact_id"].is_null());
    // Three changes audited (the contact it already had changed nothing).
    assert_eq!(audit_count(app, "ticket.updated").await, 3);
}
