//! The console's ticket pages over plain HTTP (`/tickets`, `/tickets/new`, `/tickets/{id}`) and
//! the inbox's "Open ticket" link: the list with its columns and filters (a refused one shown at
//! its field), the new ticket form (also pre-filled from a conversation), a ticket's page with
//! its edit form, its comments (public and internal told apart) and its attachments (download
//! links, the upload form with the accepted types), everything escaped; and who may see what
//! (another tenant's ticket or conversation is a 404 page, a platform operator outside a
//! tenant gets a 403 page). Changes are `data-api` forms against the JSON API, whose own tests
//! (`tickets.rs`, `attachments.rs`) cover them. The browser suite (crates/browser-tests,
//! `tickets.rs`) drives the same pages in Chromium.

use crate::attachments::upload;
use crate::console::{signed_in_page as page, Browser};
use crate::support::whatsapp_fixture;
use palisade_testkit::{spawn_app, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    tickets_are_listed_and_filtered_with_escaped_columns,
    a_ticket_shows_its_edit_form_comments_and_attachments,
    a_ticket_is_opened_from_a_conversation_with_its_contact,
    who_may_see_ticket_pages,
);

const XSS: &str = "<img src=x onerror=alert(1)>";

async fn ticket(app: &TestApp, t: &str, body: Value) -> Value {
    let r = app.post("/api/v1/tickets", Some(t), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn contact(app: &TestApp, t: &str, phone: &str, name: &str) -> String {
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": phone, "name": name}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// The `<tbody>` rows' subjects, in order.
fn subjects(html: &str) -> Vec<String> {
    let Some(at) = html.find("<tbody>") else {
        return Vec::new();
    };
    html[at..]
        .split(r#"<td data-label="Subject"><a href="/tickets/"#)
        .skip(1)
        .map(|row| {
            let s = &row[row.find('>').unwrap() + 1..];
            s[..s.find("</a>").unwrap()].to_owned()
        })
        .collect()
}

async fn tickets_are_listed_and_filtered_with_escaped_columns(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let (status, empty) = page(&app, t, "/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No tickets yet"), "{empty}");
    assert!(empty.contains(r#"href="/tickets" aria-current="page""#));
    assert!(empty.contains(r#"href="/tickets/new""#));

    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let cara = contact(&app, t, "+447700900101", XSS).await;
    ticket(
        &app,
        t,
        json!({"subject": "Printer jams", "priority": "urgent", "contact_id": cara,
               "assignee_id": agent.user_id}),
    )
    .await;
    ticket(&app, t, json!({"subject": XSS, "status": "solved"})).await;
    ticket(
        &app,
        t,
        json!({"subject": "Refund for PRINTER ink", "priority": "low"}),
    )
    .await;

    let (status, list) = page(&app, t, "/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.matches("<h1>").count(), 1);
    for col in [
        "Subject", "Contact", "Priority", "Status", "Assignee", "Updated",
    ] {
        assert!(
            list.contains(&format!(r#"<th scope="col">{col}</th>"#)),
            "{col}"
        );
    }
    assert_eq!(
        subjects(&list),
        [
            "Refund for PRINTER ink",
            "&#60;img src=x onerror=alert(1)&#62;",
            "Printer jams"
        ]
    );
    assert!(!list.contains(XSS), "an unescaped subject or contact name");
    assert!(list.contains(r#"<span class="badge badge-danger">Urgent</span>"#));
    assert!(list.contains(r#"<span class="badge badge-resolved">Solved</span>"#));
    assert!(list.contains("(+447700900101)"), "the contact");
    assert!(list.contains(&format!(r#"href="/contacts/{cara}""#)));
    assert!(
        list.contains(r#"<td data-label="Assignee">Team Member</td>"#),
        "the assignee: {list}"
    );

    // Filters: status, priority, assignee, the subject in any case.
    let (_, solved) = page(&app, t, "/tickets?status=solved").await;
    assert_eq!(subjects(&solved), ["&#60;img src=x onerror=alert(1)&#62;"]);
    let (_, urgent) = page(&app, t, "/tickets?priority=urgent").await;
    assert_eq!(subjects(&urgent), ["Printer jams"]);
    let (_, mine) = page(&app, t, &format!("/tickets?assignee={}", agent.user_id)).await;
    assert_eq!(subjects(&mine), ["Printer jams"]);
    let (_, printer) = page(&app, t, "/tickets?q=printer").await;
    assert_eq!(
        subjects(&printer),
        ["Refund for PRINTER ink", "Printer jams"]
    );
    assert!(printer.contains("Clear filters"));
    let (_, none) = page(&app, t, "/tickets?q=toaster").await;
    assert!(none.contains("No tickets match"));
    // The API searches the same way.
    let r = app.get("/api/v1/tickets?q=PRINTER%20INK", t).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = app
        .get(&format!("/api/v1/tickets?q={}", "x".repeat(201)), t)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A value the API refuses, at its field; a malformed assignee is a 400 page.
    let (status, bad) = page(&app, t, "/tickets?status=lost").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.contains("is not one of open, pending, solved, closed"),
        "{bad}"
    );
    assert!(bad.contains(r#"aria-invalid="true""#));
    let (status, _) = page(&app, t, "/tickets?assignee=nobody").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn a_ticket_shows_its_edit_form_comments_and_attachments(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let tk = ticket(
        &app,
        t,
        json!({"subject": "Broken screen", "description": format!("Line one\n{XSS}")}),
    )
    .await;
    let id = tk["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/comments"),
            Some(t),
            json!({"body": format!("Checked {XSS}"), "visibility": "internal"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let up = upload(&app, t, id, "notes <b>.txt", b"plain notes\n").await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);

    let (status, show) = page(&app, t, &format!("/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(show.contains("<h1>Broken screen</h1>"));
    assert!(
        show.contains("Line one\n&#60;img"),
        "the description, escaped"
    );
    assert!(show.contains("Checked &#60;img src=x onerror=alert(1)&#62;"));
    assert!(!show.contains(XSS));
    assert!(show.contains(r#"<span class="badge badge-label">Internal</span>"#));
    assert!(show.contains("The team only"));
    // The edit form, the comment form and the upload form call the API.
    assert!(show.contains(&format!(r#"data-api="PATCH /api/v1/tickets/{id}""#)));
    assert!(show.contains(&format!(r#"data-api="POST /api/v1/tickets/{id}/comments""#)));
    assert!(show.contains(&format!(
        r#"enctype="multipart/form-data" data-api="POST /api/v1/tickets/{id}/attachments""#
    )));
    for label in ["Status", "Priority", "Assignee", "Comment", "File"] {
        assert!(show.contains(&format!(">{label}</label>")), "{label}");
    }
    // Without a conversation, comments are internal only: no "visible to customer" box.
    assert!(!show.contains("Visible to customer"));
    assert!(show.contains(r#"name="visibility" value="internal""#));
    // The attachment: its download link (the API's route), its sanitised name, escaped.
    let a = &up.body;
    assert!(show.contains(&format!(
        r#"href="/api/v1/attachments/{}" download"#,
        a["id"].as_str().unwrap()
    )));
    assert!(
        show.contains(
            &a["filename"]
                .as_str()
                .unwrap()
                .replace('<', "&#60;")
                .replace('>', "&#62;")
        ),
        "{show}"
    );
    assert!(show.contains("text/plain, 12 bytes"));
    assert!(
        show.contains("Accepted: PNG, JPG, GIF, WEBP, PDF, TXT, CSV"),
        "{show}"
    );
    assert!(show.contains("Up to 10.0 MB"));
    // The link works with the session cookie alone.
    let r = crate::console::signed_in_get(
        &app,
        t,
        &format!("/api/v1/attachments/{}", a["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"plain notes\n");
}

async fn a_ticket_is_opened_from_a_conversation_with_its_contact(db: Db) {
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
    let conv_id = conv["id"].as_str().expect("a conversation").to_owned();

    // The conversation's details offer "Open ticket", pre-filled from it.
    let (status, inbox) = page(&f.app, t, &format!("/inbox/{conv_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let link = format!(r#"href="/tickets/new?conversation={conv_id}">Open ticket</a>"#);
    assert!(inbox.contains(&link), "{inbox}");
    let (status, form) = page(&f.app, t, &format!("/tickets/new?conversation={conv_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(&format!(r#"name="conversation_id" value="{conv_id}""#)));
    assert!(
        form.contains(
            "Opened from the conversation with <strong>Ana Souza (+447700900123)</strong>"
        ),
        "{form}"
    );
    assert!(form.contains(r#"data-api="POST /api/v1/tickets""#));
    assert!(form.contains(r#"data-then="go:/tickets/{id}""#));
    assert!(
        !form.contains(r#"id="contact_id""#),
        "the contact comes from the conversation"
    );

    // A ticket opened from it offers the "visible to customer" box on its page.
    let tk = ticket(
        &f.app,
        t,
        json!({"subject": "Late order", "conversation_id": conv_id}),
    )
    .await;
    let id = tk["id"].as_str().unwrap();
    let r = f
        .app
        .post(
            &format!("/api/v1/tickets/{id}/comments"),
            Some(t),
            json!({"body": "On its way", "visibility": "public"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (_, show) = page(&f.app, t, &format!("/tickets/{id}")).await;
    assert!(show.contains(r#"<label for="visibility">Visible to customer</label>"#));
    assert!(show.contains(r#"data-on="public" data-off="internal""#));
    assert!(show.contains("Sent to the customer over WhatsApp"));
    assert!(show.contains(&format!(r#"href="/inbox/{conv_id}""#)));

    // Another tenant's conversation: a 404 page, nothing of it shown.
    let other = f.app.register("Globex", "gil@globex.example").await;
    let (status, body) = page(
        &f.app,
        &other.access_token,
        &format!("/tickets/new?conversation={conv_id}"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("Ana Souza"));
}

async fn who_may_see_ticket_pages(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let tk = ticket(
        &app,
        &owner.access_token,
        json!({"subject": "Secret plans"}),
    )
    .await;
    let id = tk["id"].as_str().unwrap();

    // An agent works tickets.
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    for path in [
        "/tickets".to_owned(),
        "/tickets/new".into(),
        format!("/tickets/{id}"),
    ] {
        let (status, body) = page(&app, &agent.access_token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            body.contains(r#"href="/tickets""#),
            "Tickets in the navigation"
        );
    }

    // Another tenant: the ticket is a 404 page and not listed.
    let other = app.register("Globex", "gil@globex.example").await;
    for path in [format!("/tickets/{id}"), "/tickets/not-a-ticket".into()] {
        let (status, body) = page(&app, &other.access_token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("Secret plans"), "{path}");
    }
    let (_, theirs) = page(&app, &other.access_token, "/tickets").await;
    assert!(!theirs.contains("Secret plans"));

    // A platform operator outside a tenant has no tickets; signed out: sent to sign in.
    let root = app.super_admin("root@platform.example").await;
    let (status, _) = page(&app, &root.access_token, "/tickets").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut anon = Browser::new(&app);
    let r = anon.get(&format!("/tickets/{id}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login?next="));
}
