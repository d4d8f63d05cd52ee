//! The console's contact pages over plain HTTP (`/contacts`, `/contacts/new`, `/contacts/{id}`):
//! who may open them (admin, agent, another tenant, a read-only impersonation), what each role
//! is offered, escaping of contact data, the filters, paging and export links, and the
//! contact's conversations. The pages are authenticated by the API's access cookie, as a
//! browser sends it; the browser suite (crates/browser-tests, `contacts.rs`) drives the forms.

use crate::console::signed_in_page as page;
use crate::support::{whatsapp_fixture, WhatsAppFixture};
use palisade_testkit::{spawn_app, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    an_admin_sees_the_list_the_form_and_the_contact_with_its_data_escaped,
    an_agent_may_edit_but_is_offered_no_export_and_no_erasure,
    another_tenants_contact_and_a_malformed_id_are_404_pages,
    the_filters_narrow_the_list_and_carry_into_paging_and_export,
    a_filter_no_contact_could_match_is_shown_at_its_field,
    a_read_only_impersonation_sees_the_pages_and_the_api_refuses_its_writes,
    the_contact_page_lists_its_conversations_linking_to_the_inbox,
    signed_out_visitors_are_sent_to_sign_in,
);

const XSS: &str = "<img src=x onerror=alert(1)>";

async fn create(app: &TestApp, s: &Session, body: Value) -> Value {
    let r = app
        .post("/api/v1/contacts", Some(&s.access_token), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn an_admin_sees_the_list_the_form_and_the_contact_with_its_data_escaped(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (status, empty) = page(&app, &owner.access_token, "/contacts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No contacts yet"), "{empty}");
    assert!(empty.contains(r#"href="/contacts/new""#));
    let c = create(
        &app,
        &owner,
        json!({"phone": "+447700900001", "name": XSS, "email": "x@example.com",
               "tags": ["vip"], "custom_attributes": {"plan": "<script>x</script>", "seats": 3},
               "marketing_opt_in": true}),
    )
    .await;
    let id = c["id"].as_str().unwrap();

    let (status, list) = page(&app, &owner.access_token, "/contacts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.matches("<h1>").count(), 1);
    assert!(list.contains("<th scope=\"col\">Name</th>"));
    assert!(list.contains(&format!(r#"href="/contacts/{id}""#)));
    assert!(
        list.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{list}"
    );
    assert!(!list.contains(XSS), "unescaped name");
    assert!(
        list.contains("/api/v1/contacts/export?format=csv"),
        "export link"
    );

    let (status, new) = page(&app, &owner.access_token, "/contacts/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(new.contains(r#"data-api="POST /api/v1/contacts""#));
    for label in ["Name", "Phone", "Email", "Tags", "Marketing consent"] {
        assert!(new.contains(&format!(">{label}</label>")), "{label}");
    }
    assert!(new.contains("/static/contacts.js?v="));

    let (status, show) = page(&app, &owner.access_token, &format!("/contacts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        show.contains("<h1>&#60;img src=x onerror=alert(1)&#62;</h1>"),
        "{show}"
    );
    assert!(!show.contains(XSS) && !show.contains("<script>x</script>"));
    assert!(
        show.contains("&#60;script&#62;x&#60;/script&#62;"),
        "attribute value shown"
    );
    assert!(
        show.contains(r#"data-kind="number""#),
        "a number stays a number"
    );
    assert!(show.contains(&format!(r#"data-api="PATCH /api/v1/contacts/{id}""#)));
    assert!(show.contains(&format!(r#"data-api="DELETE /api/v1/contacts/{id}""#)));
    // The confirmation names the contact (escaped inside the attribute).
    assert!(show.contains(
        "data-confirm=\"Erase &#60;img src=x onerror=alert(1)&#62; (+447700900001) and all"
    ));
    assert!(show.contains("Opted in to marketing messages since"));
    assert!(show.contains("No conversations with this contact yet"));
}

async fn an_agent_may_edit_but_is_offered_no_export_and_no_erasure(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let c = create(
        &app,
        &owner,
        json!({"phone": "+447700900002", "name": "Cara"}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let (status, list) = page(&app, &agent.access_token, "/contacts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("Cara"));
    assert!(!list.contains("Export CSV"), "agents cannot export");
    assert!(list.contains("New contact"));
    let (status, show) = page(&app, &agent.access_token, &format!("/contacts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(show.contains("Save changes"));
    assert!(
        !show.contains("DELETE /api/v1/contacts"),
        "agents cannot erase"
    );
    let (status, _) = page(&app, &agent.access_token, "/contacts/new").await;
    assert_eq!(status, StatusCode::OK);
    // The export link is the API's: an agent who types it is refused there.
    let r = app
        .get("/api/v1/contacts/export?format=csv", &agent.access_token)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

async fn another_tenants_contact_and_a_malformed_id_are_404_pages(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let other = app.register("Globex", "gil@globex.example").await;
    let c = create(
        &app,
        &owner,
        json!({"phone": "+447700900003", "name": "Dana"}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let (status, body) = page(&app, &other.access_token, &format!("/contacts/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("Dana"));
    assert!(body.contains("<h1>Page not found</h1>"), "{body}");
    let (status, _) = page(&app, &other.access_token, "/contacts/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = page(&app, &other.access_token, "/contacts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.contains("Dana"));
}

async fn the_filters_narrow_the_list_and_carry_into_paging_and_export(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    for i in 0..51 {
        create(
            &app,
            &owner,
            json!({"phone": format!("+4477009{i:05}"), "name": format!("Vip {i}"), "tags": ["vip"]}),
        )
        .await;
    }
    create(
        &app,
        &owner,
        json!({"phone": "+447711111111", "name": "Eve Quiet", "marketing_opt_in": false}),
    )
    .await;
    let t = &owner.access_token;

    let (_, opted_out) = page(&app, t, "/contacts?q=&tag=&opted_out=true").await;
    assert!(opted_out.contains("Eve Quiet") && !opted_out.contains("Vip 1<"));
    assert!(opted_out.contains(r#"<option value="true" selected>"#));
    assert!(opted_out.contains("/api/v1/contacts/export?format=csv&amp;opted_out=true"));

    let (_, search) = page(&app, t, "/contacts?q=eve").await;
    assert!(search.contains("Eve Quiet") && !search.contains("Vip 3"));

    let (_, first) = page(&app, t, "/contacts?tag=vip").await;
    assert!(!first.contains("Eve Quiet"));
    assert_eq!(first.matches("<tr>").count(), 51, "a header and 50 rows");
    let at = first
        .find("/contacts?tag=vip&amp;cursor=")
        .expect("a next page link");
    let link = &first[at..];
    let link = link[..link.find('"').unwrap()].replace("&amp;", "&");
    assert!(first.contains("Next page"));
    assert!(first.contains("/api/v1/contacts/export?format=csv&amp;tag=vip"));
    let (status, second) = page(&app, t, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second.matches("<tr>").count(), 2, "the 51st");
    assert!(second.contains("Vip 0<"), "the oldest is last");
    assert!(second.contains("First page") && !second.contains("Next page"));

    let (status, _) = page(&app, t, "/contacts?cursor=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The export the link points at downloads with the session cookie alone (a GET needs no
    // CSRF token) and keeps the filter.
    let r = app
        .client
        .get(app.url("/api/v1/contacts/export?format=csv&opted_out=true"))
        .header("cookie", format!("__Host-palisade_access={t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("Eve Quiet"));
}

async fn a_filter_no_contact_could_match_is_shown_at_its_field(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let (status, body) = page(&app, &owner.access_token, "/contacts?tag=%3Cb%3E%21").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"id="tag-error">"#), "{body}");
    assert!(body.contains(r#"aria-invalid="true""#));
    assert!(
        body.contains(r#"value="&#60;b&#62;!""#),
        "what was typed, escaped"
    );
    assert!(!body.contains("<b>!"));
}

async fn a_read_only_impersonation_sees_the_pages_and_the_api_refuses_its_writes(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let c = create(
        &app,
        &owner,
        json!({"phone": "+447700900004", "name": "Finn"}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    for path in ["/contacts", "/contacts/new", &format!("/contacts/{id}")] {
        let (status, body) = page(&app, &imp, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("read-only"), "the banner on {path}");
    }
    // What the page's form would send: the API refuses it, with the message the form shows.
    let r = app
        .patch(
            &format!("/api/v1/contacts/{id}"),
            &imp,
            json!({"name": "Changed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
}

async fn the_contact_page_lists_its_conversations_linking_to_the_inbox(db: Db) {
    let fx: WhatsAppFixture = whatsapp_fixture(db).await;
    fx.customer_message("text", json!({"body": "Hello"})).await;
    let t = &fx.owner.access_token;
    let mut contact = Value::Null;
    for _ in 0..100 {
        let r = fx.app.get("/api/v1/contacts", t).await;
        if let Some(c) = r.body["data"].get(0) {
            contact = c.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = contact["id"].as_str().expect("the sender became a contact");
    let convs = fx.app.get("/api/v1/conversations", t).await;
    let conv = convs.body["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, show) = page(&fx.app, t, &format!("/contacts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(show.contains("<h1>Ana Souza</h1>"), "the WhatsApp name");
    assert!(show.contains(&format!(r#"href="/inbox/{conv}""#)), "{show}");
    assert!(show.contains("badge-open"));

    // Another tenant's conversations never show on a contact of this one.
    let other = fx.app.register("Globex", "gil@globex.example").await;
    let (status, _) = page(&fx.app, &other.access_token, &format!("/contacts/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn signed_out_visitors_are_sent_to_sign_in(db: Db) {
    let app = spawn_app(db).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(app.url("/contacts?tag=vip"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=/contacts%3Ftag%3Dvip");
}
