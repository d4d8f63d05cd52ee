//! The inbox pages over plain HTTP: who may see them (each role, another tenant, a read-only
//! impersonation), the filters and paging, escaping of what customers send, the fragments the
//! live script re-fetches. The browser suite drives the same pages live in Chromium.

use crate::console::signed_in_page as page;
use crate::support::{whatsapp_fixture, WhatsAppFixture};
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    the_inbox_lists_conversations_with_their_last_message_for_admins_and_agents,
    filters_narrow_the_list_and_a_bad_filter_is_shown_not_a_500,
    a_conversation_shows_messages_notes_statuses_and_the_composer,
    a_closed_window_offers_a_template_instead_of_text,
    customer_content_is_escaped,
    another_tenant_gets_404_for_a_conversation_and_its_fragments,
    a_read_only_impersonation_sees_no_forms,
    the_list_pages_with_the_api_cursor,
    a_long_conversation_opens_on_its_latest_hundred_with_their_notes_apart,
    the_attach_file_form_refuses_a_forged_or_missing_csrf_token,
);

async fn first_conversation(f: &WhatsAppFixture) -> Value {
    for _ in 0..100 {
        let r = f
            .app
            .get("/api/v1/conversations", &f.owner.access_token)
            .await;
        if let Some(c) = r.body["data"].as_array().and_then(|d| d.first()) {
            return c.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no conversation arrived");
}

async fn messages(f: &WhatsAppFixture, id: &str) -> Vec<Value> {
    f.app
        .get(
            &format!("/api/v1/conversations/{id}/messages"),
            &f.owner.access_token,
        )
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn the_inbox_lists_conversations_with_their_last_message_for_admins_and_agents(db: Db) {
    let f = whatsapp_fixture(db).await;
    let empty = page(&f.app, &f.owner.access_token, "/inbox").await;
    assert_eq!(empty.0, StatusCode::OK);
    assert!(empty.1.contains("No conversations yet"), "{}", empty.1);

    f.customer_message("text", json!({"body": "Is my order ready?"}))
        .await;
    let c = first_conversation(&f).await;
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    for token in [&f.owner.access_token, &agent.access_token] {
        let (status, html) = page(&f.app, token, "/inbox").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(html.matches("<h1").count(), 1);
        assert!(html.contains("Ana Souza"), "{html}");
        assert!(html.contains(&format!("/inbox/{}", c["id"].as_str().unwrap())));
        assert!(html.contains("Unassigned"));
        assert!(html.contains(r#"role="status""#), "the live status");
        assert!(html.contains("/static/inbox.js?v="));
    }
    // The fragment is the list alone, for the live script.
    let (status, frag) = page(&f.app, &agent.access_token, "/inbox?fragment=list").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        frag.trim_start()
            .starts_with(r#"<div id="conversation-list""#),
        "{frag}"
    );
    assert!(!frag.contains("<html"));
    assert!(frag.contains("Ana Souza"));

    // Signed out: to the sign-in page, coming back here.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(f.app.url("/inbox?status=open"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/login?next="), "{to}");
}

async fn filters_narrow_the_list_and_a_bad_filter_is_shown_not_a_500(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Hi"})).await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    let token = &f.owner.access_token;
    let r = f
        .app
        .patch(
            &format!("/api/v1/conversations/{id}"),
            token,
            json!({"assignee_id": f.owner.user_id, "labels": ["vip"], "status": "pending"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    for (query, shown) in [
        ("?status=pending", true),
        ("?status=open", false),
        ("?assignee=me", true),
        ("?assignee=none", false),
        ("?label=vip", true),
        ("?label=other", false),
        ("?status=&assignee=&label=", true),
    ] {
        let (status, html) = page(&f.app, token, &format!("/inbox{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(html.contains("Ana Souza"), shown, "{query}: {html}");
        if !shown {
            assert!(
                html.contains("No conversations match these filters"),
                "{query}"
            );
        }
    }
    // The form says what is in effect, and the links keep it.
    let (_, html) = page(&f.app, token, "/inbox?status=pending&label=vip").await;
    assert!(
        html.contains(r#"<option value="pending" selected>"#),
        "{html}"
    );
    assert!(
        html.contains(&format!("/inbox/{id}?status=pending&#38;label=vip")),
        "{html}"
    );
    assert!(
        html.contains(r#"data-fragment="/inbox?fragment=list&#38;status=pending&#38;label=vip""#)
    );

    for bad in [
        "?status=closed",
        "?assignee=someone",
        &format!("?label={}", "x".repeat(51)),
        "?cursor=nope",
    ] {
        let (status, html) = page(&f.app, token, &format!("/inbox{bad}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(html.contains(r#"role="alert""#), "{bad}: {html}");
    }
}

async fn a_conversation_shows_messages_notes_statuses_and_the_composer(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Where is my parcel?"}))
        .await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    let token = &f.owner.access_token;
    let sent = f
        .app
        .post(
            &format!("/api/v1/conversations/{id}/messages"),
            Some(token),
            json!({"type": "text", "text": {"body": "On its way"}}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{:?}", sent.body);
    let note = f
        .app
        .post(
            &format!("/api/v1/conversations/{id}/notes"),
            Some(token),
            json!({"body": "Customer is a VIP"}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);
    // Wait until the reply left (sent, delivered or read).
    for _ in 0..100 {
        let ms = messages(&f, id).await;
        if ms
            .iter()
            .any(|m| m["direction"] == "outbound" && m["status"] != "queued")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (status, html) = page(&f.app, token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(html.matches("<h1").count(), 1);
    assert!(html.contains("Where is my parcel?"));
    assert!(html.contains("On its way"));
    assert!(html.contains("msg-status status-"), "an outbound status");
    assert!(html.contains("Internal notes"));
    let notes_at = html.find("Internal notes").unwrap();
    assert!(
        html[notes_at..].contains("Customer is a VIP"),
        "the note is apart"
    );
    assert!(html.contains(&format!(
        r#"data-api="POST /api/v1/conversations/{id}/messages""#
    )));
    assert!(
        html.contains(r#"<label for="text.body">Message</label>"#),
        "text composer: window open"
    );
    assert!(html.contains(&format!(
        r#"data-api="POST /api/v1/conversations/{id}/notes""#
    )));
    assert!(html.contains(&format!(r#"data-api="PATCH /api/v1/conversations/{id}""#)));
    assert!(html.contains(r#"<label for="assignee_id">Assignee</label>"#));
    assert!(html.contains(r#"<label for="labels">Labels</label>"#));
    assert!(html.contains(r#"<label for="status">Status</label>"#));

    // The fragments the live script re-fetches.
    let (status, frag) = page(&f.app, token, &format!("/inbox/{id}?fragment=messages")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        frag.trim_start().starts_with(r#"<div id="thread""#),
        "{frag}"
    );
    assert!(frag.contains("On its way") && frag.contains("Customer is a VIP"));
    let (status, frag) = page(&f.app, token, &format!("/inbox/{id}?fragment=details")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        frag.trim_start().starts_with(r#"<div id="details""#),
        "{frag}"
    );

    // An agent sees the same; a bad id is the 404 page.
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    assert_eq!(
        page(&f.app, &agent.access_token, &format!("/inbox/{id}"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        page(&f.app, token, "/inbox/not-a-uuid").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&f.app, token, &format!("/inbox/{id}?from=start&cursor=x"))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, html) = page(&f.app, token, &format!("/inbox/{id}?from=start")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Latest messages"));
}

async fn a_closed_window_offers_a_template_instead_of_text(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Hi"})).await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    // A day and an hour later (a fresh sign-in: the old access token has expired).
    f.app.clock.advance(time::Duration::hours(25));
    let owner = f.app.login(&f.owner.email, &f.owner.password).await;
    let (status, html) = page(&f.app, &owner.access_token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The 24-hour window closed"), "{html}");
    assert!(html.contains(r#"<label for="template.name">Template name</label>"#));
    assert!(html.contains(r#"<label for="template-params">Parameters</label>"#));
    assert!(!html.contains(r#"<label for="text.body">"#));
}

async fn customer_content_is_escaped(db: Db) {
    let f = whatsapp_fixture(db).await;
    let xss = r#"<script>alert(1)</script><img src=x onerror=alert(2)>"#;
    f.customer_message("text", json!({"body": xss})).await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    f.app
        .patch(
            &format!("/api/v1/conversations/{id}"),
            &f.owner.access_token,
            json!({"labels": ["<b>x</b>"]}),
        )
        .await;
    for path in [
        "/inbox".to_owned(),
        format!("/inbox/{id}"),
        format!("/inbox/{id}?fragment=messages"),
        "/inbox?fragment=list".to_owned(),
    ] {
        let (status, html) = page(&f.app, &f.owner.access_token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(!html.contains("<b>x</b>"), "{path}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || path.contains("list")
                || path == "/inbox",
            "{path}: {html}"
        );
    }
}

async fn another_tenant_gets_404_for_a_conversation_and_its_fragments(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Only for Acme"}))
        .await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    let other = f.app.register("Globex", "owner@globex.example").await;
    for path in [
        format!("/inbox/{id}"),
        format!("/inbox/{id}?fragment=messages"),
        format!("/inbox/{id}?fragment=details"),
    ] {
        let (status, html) = page(&f.app, &other.access_token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!html.contains("Only for Acme"));
    }
    let (status, html) = page(&f.app, &other.access_token, "/inbox").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("Ana Souza"));
}

async fn a_read_only_impersonation_sees_no_forms(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Hi"})).await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    let root = f.app.super_admin("root@platform.example").await;
    let r = f
        .app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", f.owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let token = r.body["access_token"].as_str().unwrap();
    let (status, html) = page(&f.app, token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("read-only"));
    assert!(!html.contains("data-api="), "{html}");
    assert!(html.contains("Hi"));
    // The operator is no tenant's user: the inbox is refused to them, as the API refuses it.
    let (status, _) = page(&f.app, &root.access_token, "/inbox").await;
    assert!(status.is_client_error(), "{status}");
}

async fn the_list_pages_with_the_api_cursor(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Hi"})).await;
    first_conversation(&f).await;
    // 55 more conversations of other contacts (the page holds 50).
    for i in 0..55 {
        let r = f
            .app
            .client
            .post(format!("{}/_sim/inbound", f.sim))
            .json(&json!({
                "phone_number_id": f.phone_number_id, "from": format!("4477009{i:05}"),
                "profile_name": format!("Customer {i}"), "type": "text", "text": {"body": "hello"},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let mut total = 0;
    for _ in 0..200 {
        total = f
            .app
            .get("/api/v1/conversations?limit=200", &f.owner.access_token)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len();
        if total == 56 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(total, 56);
    let (_, html) = page(&f.app, &f.owner.access_token, "/inbox").await;
    assert_eq!(html.matches(r#"<li><a href="/inbox/"#).count(), 50);
    let at = html.find("?cursor=").expect("a Next page link");
    let rest = &html[at..];
    let href = &rest[..rest.find('"').unwrap()];
    assert!(rest[..rest.find("</a>").unwrap()].ends_with("Next page"));
    let (status, next) = page(
        &f.app,
        &f.owner.access_token,
        &format!("/inbox{}", href.replace("&#38;", "&")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next.matches(r#"<li><a href="/inbox/"#).count(), 6);
    assert!(next.contains(">Previous</a>"));
    assert!(!next.contains("Next page"));
}

/// The conversation's thread part of a page (its messages and notes), without the list beside.
fn thread(html: &str) -> &str {
    let start = html.find(r#"<div id="thread""#).expect("a thread");
    let end = html[start..]
        .find(r#"class="composer""#)
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// The page reads the end of a conversation directly: the latest 100 messages (notes included,
/// shown apart), a link to the earlier ones, which page from the start with the API's cursor.
async fn a_long_conversation_opens_on_its_latest_hundred_with_their_notes_apart(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "First question"}))
        .await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    let token = &f.owner.access_token;
    for i in 0..101 {
        let note = f
            .app
            .post(
                &format!("/api/v1/conversations/{id}/notes"),
                Some(token),
                json!({ "body": format!("note number {i}.") }),
            )
            .await;
        assert_eq!(note.status, StatusCode::CREATED, "{:?}", note.body);
    }
    // 102 so far, all notes but the first: the latest 100 are notes 1 to 100. (The list
    // beside the thread previews the last customer message: look at the thread only.)
    let (status, page_html) = page(&f.app, token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let html = thread(&page_html);
    assert!(html.contains("note number 100.") && html.contains("note number 1."));
    assert!(!html.contains("note number 0.") && !html.contains("First question"));
    assert!(html.contains(&format!(
        r#"href="/inbox/{id}?from=start">Earlier messages"#
    )));
    assert!(
        !html.contains("No messages yet"),
        "messages exist, only earlier: {html}"
    );

    f.customer_message("text", json!({"body": "Second question"}))
        .await;
    let mut html = String::new();
    for _ in 0..100 {
        html = thread(&page(&f.app, token, &format!("/inbox/{id}")).await.1).to_owned();
        if html.contains("Second question") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("Second question"), "{html}");
    assert!(!html.contains("note number 1.") && html.contains("note number 2."));
    let notes_at = html.find(r#"id="notes-heading""#).unwrap();
    assert!(
        html[notes_at..].contains("note number 2.")
            && !html[notes_at..].contains("Second question"),
        "notes apart from the messages"
    );
    assert!(html.contains("Earlier messages"));
    // The live fragment is the same part.
    let (_, frag) = page(&f.app, token, &format!("/inbox/{id}?fragment=messages")).await;
    assert!(frag.contains("Second question") && !frag.contains("note number 1."));
    assert!(frag.contains("Earlier messages"));

    // Earlier messages: from the start, 100 a page, with the next page's link.
    let (status, page_html) = page(&f.app, token, &format!("/inbox/{id}?from=start")).await;
    assert_eq!(status, StatusCode::OK);
    let html = thread(&page_html);
    assert!(html.contains("First question") && html.contains("note number 0."));
    assert!(!html.contains("Second question"));
    assert!(html.contains("Latest messages"));
    assert!(html.contains(&format!("/inbox/{id}?from=start&amp;cursor=")));

    // An agent reads the same end; another tenant gets the 404 page.
    let agent = f
        .app
        .add_user(&f.owner, "agent@acme.example", "agent")
        .await;
    let (status, page_html) = page(&f.app, &agent.access_token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let html = thread(&page_html);
    assert!(html.contains("Second question") && !html.contains("note number 1."));
    let other = f.app.register("Globex", "owner@globex.example").await;
    let (status, html) = page(&f.app, &other.access_token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("note number"));
}

/// The composer's "Attach file" form (`multipart/form-data`, `csrf` first): with a forged
/// token, without one, or posted from another site, it is refused with 403 and nothing is
/// stored or sent; with the page's token from the page's origin the file goes.
async fn the_attach_file_form_refuses_a_forged_or_missing_csrf_token(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.customer_message("text", json!({"body": "Send me the invoice"}))
        .await;
    let c = first_conversation(&f).await;
    let id = c["id"].as_str().unwrap();
    let token = &f.owner.access_token;
    let (status, html) = page(&f.app, token, &format!("/inbox/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let form = html
        .find(&format!("action=\"/inbox/{id}/attachments\""))
        .expect("the Attach file form");
    let at = html[form..].find(r#"name="csrf" value=""#).unwrap() + form;
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    let csrf = rest[..rest.find('"').unwrap()].to_owned();

    let post = |csrf: Option<String>, site: &'static str| {
        let boundary = "----palisade-test-attach";
        let mut body = Vec::new();
        if let Some(csrf) = csrf {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\ndocument\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
                 Content-Type: text/plain\r\n\r\nThe invoice is attached.\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
        f.app
            .client
            .post(f.app.url(&format!("/inbox/{id}/attachments")))
            .header("accept", "text/html")
            .header(
                "cookie",
                format!("palisade_access={token}; __Host-palisade_access={token}"),
            )
            .header("sec-fetch-site", site)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    let stored = || async {
        f.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM attachments")
            .await
            .unwrap()
    };
    for (sent, site) in [
        (Some("ab".repeat(32)), "same-origin"),
        (None, "same-origin"),
        (Some(csrf.clone()), "cross-site"),
    ] {
        let r = post(sent.clone(), site).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{sent:?} {site}");
        assert_eq!(stored().await, 0, "nothing stored for {sent:?} {site}");
    }
    assert_eq!(messages(&f, id).await.len(), 1, "nothing sent");
    assert_eq!(
        crate::support::audit_count(&f.app, "attachment.uploaded").await,
        0
    );

    let r = post(Some(csrf), "same-origin").await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(stored().await, 1);
    assert_eq!(messages(&f, id).await.len(), 2);
}
