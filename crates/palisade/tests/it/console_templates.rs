//! The console's template pages over plain HTTP (`/templates`, `/templates/new`,
//! `/templates/{id}`) and the form it answers itself (`POST /templates/new`): synced templates
//! listed with their status badge, quality and rejection reason, the filters (a refused one
//! shown at its field), the preview of a template's components (escaped), the new template form
//! with each of the core's field errors next to its field, and who may do what (an agent reads
//! but neither syncs, creates nor deletes; another tenant's template is a 404 page; a read-only
//! impersonation cannot submit). The browser suite (crates/browser-tests, `templates.rs`)
//! drives the same pages in Chromium.

use crate::console::{signed_in_page as page, Browser};
use crate::support::{whatsapp_fixture, WhatsAppFixture};
use palisade_testkit::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    synced_templates_are_listed_filtered_and_previewed,
    a_template_is_created_from_the_form_and_mistakes_are_shown_at_their_fields,
    who_may_sync_create_and_delete_templates,
);

const XSS: &str = "<img src=x onerror=alert(1)>";

/// A browser signed in with `token` (its access cookie, as the console reads it).
fn browser<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    b.jar
        .insert("__Host-palisade_access".into(), token.to_owned());
    b.jar.insert("palisade_access".into(), token.to_owned());
    b
}

/// Creates a template directly at the simulator (as in Meta's WhatsApp Manager).
async fn meta_create(f: &WhatsAppFixture, name: &str, components: Value) -> String {
    let r = f
        .app
        .client
        .post(format!("{}/v25.0/{}/message_templates", f.sim, f.waba_id))
        .bearer_auth(&f.access_token)
        .json(
            &json!({"name": name, "language": "en_US", "category": "MARKETING",
                      "components": components}),
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

/// The id of the stored template named `name`.
async fn template_id(f: &WhatsAppFixture, name: &str) -> String {
    let r = f
        .app
        .get(
            &format!("/api/v1/whatsapp/templates?q={name}"),
            &f.owner.access_token,
        )
        .await;
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no template {name}: {}", r.body))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends the new template form with these values.
async fn send(b: &mut Browser<'_>, values: &[(&str, String)]) -> crate::console::Page {
    let refs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post_form("/templates/new", &refs).await
}

async fn synced_templates_are_listed_filtered_and_previewed(db: Db) {
    let f = whatsapp_fixture(db).await;
    let t = &f.owner.access_token;
    let (status, empty) = page(&f.app, t, "/templates").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No templates yet"), "{empty}");
    assert!(
        empty.contains(r#"href="/templates" aria-current="page""#),
        "Templates in the navigation, current"
    );
    assert!(empty.contains("Sync from WhatsApp"), "an admin may sync");
    assert!(
        empty.contains(r#"data-api="POST /api/v1/whatsapp/templates/sync""#),
        "the sync form calls the API"
    );
    assert!(empty.contains(&format!(
        r#"name="connection_id" value="{}""#,
        f.connection_id
    )));

    meta_create(
        &f,
        "spring_sale",
        json!([
            {"type": "HEADER", "format": "TEXT", "text": "Sale for {{1}}", "example": {"header_text": ["Ana"]}},
            {"type": "BODY", "text": format!("{XSS} Hello {{{{1}}}}, 20% off today."),
             "example": {"body_text": [["Ana"]]}},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"},
                {"type": "URL", "text": "Shop", "url": "https://shop.example/sale"}]}
        ]),
    )
    .await;
    f.sync_templates().await;
    let spring = template_id(&f, "spring_sale").await;
    // Meta rejects it, with a reason.
    let r = f
        .app
        .client
        .post(format!("{}/_sim/templates/{}/status", f.sim, {
            let r = f
                .app
                .get(&format!("/api/v1/whatsapp/templates/{spring}"), t)
                .await;
            r.body["meta_id"].as_str().unwrap().to_owned()
        }))
        .json(&json!({"status": "REJECTED", "reason": "INVALID_FORMAT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    f.sync_templates().await;

    let (status, list) = page(&f.app, t, "/templates").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.matches("<h1>").count(), 1);
    for name in ["hello_world", "order_confirmation", "spring_sale"] {
        assert!(list.contains(&format!(">{name}</a>")), "{name}: {list}");
    }
    assert!(list.contains(r#"<span class="badge badge-open">Approved</span>"#));
    assert!(list.contains(r#"<span class="badge badge-danger">Rejected</span>"#));
    assert!(list.contains("Reason: INVALID_FORMAT"), "{list}");
    assert!(list.contains("Support line"), "the number's name");
    assert!(list.contains(r#"<label for="status">Status</label>"#));

    // Filters: by name, status, category and number; a category the API refuses, at its field.
    let (_, by_name) = page(&f.app, t, "/templates?q=HELLO").await;
    assert!(by_name.contains(">hello_world</a>"));
    assert!(!by_name.contains(">spring_sale</a>"));
    let (_, rejected) = page(&f.app, t, "/templates?status=REJECTED").await;
    assert!(rejected.contains(">spring_sale</a>"));
    assert!(!rejected.contains(">hello_world</a>"));
    let (_, marketing) = page(&f.app, t, "/templates?category=MARKETING").await;
    assert!(marketing.contains(">spring_sale</a>"));
    assert!(!marketing.contains(">order_confirmation</a>"));
    let (_, by_number) = page(
        &f.app,
        t,
        &format!("/templates?connection={}&status=APPROVED", f.connection_id),
    )
    .await;
    assert!(by_number.contains(">hello_world</a>"));
    assert!(!by_number.contains(">spring_sale</a>"));
    let (status, bad) = page(&f.app, t, "/templates?category=GOSSIP").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.contains("must be MARKETING, UTILITY or AUTHENTICATION"),
        "{bad}"
    );
    assert!(bad.contains(r#"aria-invalid="true""#));
    let (status, _) = page(&f.app, t, "/templates?connection=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The preview: header, body (escaped), footer, buttons; the details with the reason.
    let (status, show) = page(&f.app, t, &format!("/templates/{spring}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(show.contains("<h1>spring_sale</h1>"), "{show}");
    assert!(show.contains("Sale for {{1}}"));
    assert!(show.contains("&#60;img src=x onerror=alert(1)&#62; Hello {{1}}, 20% off today."));
    assert!(!show.contains(XSS), "unescaped body");
    assert!(show.contains("Reply STOP to opt out"));
    assert!(show.contains("Stop promotions"));
    assert!(show.contains("https://shop.example/sale"));
    assert!(show.contains("Rejected because"));
    assert!(show.contains("takes 1 body"), "{show}");
    assert!(show.contains("Delete template"), "an admin may delete");
    assert!(show.contains(&format!(
        r#"data-api="DELETE /api/v1/whatsapp/templates/{spring}""#
    )));
    assert!(show.contains("data-confirm="), "deleting asks first");
}

async fn a_template_is_created_from_the_form_and_mistakes_are_shown_at_their_fields(db: Db) {
    let f = whatsapp_fixture(db).await;
    // Held for review, so the page shows the PENDING answer Meta gave.
    let r = f
        .app
        .client
        .post(format!("{}/_sim/config", f.sim))
        .json(&json!({"template_review_delay_ms": 600_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut b = browser(&f.app, &f.owner.access_token);
    let form = b.get("/templates/new").await;
    assert_eq!(form.status, StatusCode::OK);
    for label in [
        "Number",
        "Name",
        "Language",
        "Category",
        "Header (optional)",
        "Header example value",
        "Body",
        "Body example values",
        "Footer (optional)",
        "Quick-reply buttons (optional)",
    ] {
        assert!(form.text.contains(&format!(">{label}</label>")), "{label}");
    }
    let csrf = form.form_token();
    let conn = f.connection_id.clone();
    let fields = |name: &'static str, body: &'static str, examples: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("connection_id", conn.clone()),
            ("name", name.to_owned()),
            ("language", "en_US".to_owned()),
            ("category", "UTILITY".to_owned()),
            ("header_text", "Your order".to_owned()),
            ("header_example", String::new()),
            ("body", body.to_owned()),
            ("body_examples", examples.to_owned()),
            ("footer", "Acme".to_owned()),
            ("buttons", "Track it\nCall me".to_owned()),
        ]
    };

    // Mistakes: a name with capitals, a variable without its example: both at their fields,
    // what was typed kept, nothing sent to Meta.
    let r = send(
        &mut b,
        &fields("Order Shipped", "Hi {{1}}, your order shipped.", ""),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("check the fields marked below"),
        "{}",
        r.text
    );
    let slot = |html: &str, id: &str| {
        let at = html
            .find(&format!(r#"id="{id}-error""#))
            .unwrap_or_else(|| panic!("no slot {id}"));
        let rest = &html[at..];
        rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()].to_owned()
    };
    assert!(!slot(&r.text, "name").is_empty(), "{}", r.text);
    assert!(
        slot(&r.text, "body_examples").contains("needs example.body_text with one list of 1"),
        "{}",
        r.text
    );
    assert!(slot(&r.text, "body").is_empty());
    assert!(r.text.contains(r#"value="Order Shipped""#), "kept");
    assert!(r.text.contains("Hi {{1}}, your order shipped.</textarea>"));
    let listed = f
        .app
        .get("/api/v1/whatsapp/templates", &f.owner.access_token)
        .await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 0);

    // A header variable without its example, a variable at the end of the body.
    let mut v = fields("order_shipped", "Your order shipped {{1}}", "#1001");
    v[5].1 = "Order {{1}}".into();
    let r = send(&mut b, &v).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(slot(&r.text, "header_example").contains("example.header_text"));
    assert!(slot(&r.text, "body").contains("must not start or end with a variable"));

    // Fixed: created at Meta, pending review, shown.
    let r = send(
        &mut b,
        &fields(
            "order_shipped",
            "Hi {{1}}, your order {{2}} shipped.",
            "Ana\n#1001",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let id = r.location().strip_prefix("/templates/").unwrap().to_owned();
    let t = f
        .app
        .get(
            &format!("/api/v1/whatsapp/templates/{id}"),
            &f.owner.access_token,
        )
        .await;
    assert_eq!(t.body["name"], "order_shipped");
    assert_eq!(t.body["status"], "PENDING");
    assert_eq!(t.body["parameters"]["body"], 2);
    assert_eq!(
        t.body["components"][1]["example"]["body_text"],
        json!([["Ana", "#1001"]])
    );
    assert_eq!(t.body["components"][3]["buttons"][1]["text"], "Call me");
    let show = b.get(&format!("/templates/{id}")).await;
    assert!(show
        .text
        .contains(r#"<span class="badge badge-pending">Pending</span>"#));

    // The same again: Meta is not asked twice; the conflict is said on the form.
    let r = send(
        &mut b,
        &fields("order_shipped", "Hi {{1}}, shipped.", "Ana"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("already has the template order_shipped"));

    // A forged form changes nothing.
    let mut v = fields("forged_one", "Hello there", "");
    v[0].1 = "ab".repeat(32);
    let r = send(&mut b, &v).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let listed = f
        .app
        .get("/api/v1/whatsapp/templates", &f.owner.access_token)
        .await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
}

async fn who_may_sync_create_and_delete_templates(db: Db) {
    let f = whatsapp_fixture(db).await;
    f.sync_templates().await;
    let hello = template_id(&f, "hello_world").await;

    // An agent reads the list and a template, without the sync, new and delete controls; the
    // new template page and its form are refused.
    let agent = f.app.add_user(&f.owner, "bo@acme.example", "agent").await;
    let mut b = browser(&f.app, &agent.access_token);
    let list = b.get("/templates").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains(">hello_world</a>"));
    assert!(!list.text.contains("Sync from WhatsApp"));
    assert!(!list.text.contains("/api/v1/whatsapp/templates/sync"));
    assert!(!list.text.contains(r#"href="/templates/new""#));
    let show = b.get(&format!("/templates/{hello}")).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(!show.text.contains("Delete template"));
    assert_eq!(b.get("/templates/new").await.status, StatusCode::FORBIDDEN);
    let csrf = list.form_token();
    let r = b
        .post_form(
            "/templates/new",
            &[
                ("csrf", &csrf),
                ("connection_id", &f.connection_id),
                ("name", "agent_made"),
                ("language", "en"),
                ("category", "UTILITY"),
                ("body", "Hello there"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // What the sync and delete buttons would call is refused to the agent too.
    let r = f
        .app
        .post(
            "/api/v1/whatsapp/templates/sync",
            Some(&agent.access_token),
            json!({"connection_id": f.connection_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = f
        .app
        .delete(
            &format!("/api/v1/whatsapp/templates/{hello}"),
            &agent.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Another tenant: the template is a 404 page, and not in their list.
    let other = f.app.register("Globex", "gil@globex.example").await;
    for path in [format!("/templates/{hello}"), "/templates/nope".into()] {
        let (status, body) = page(&f.app, &other.access_token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("hello_world"), "{path}");
    }
    let (status, theirs) = page(&f.app, &other.access_token, "/templates").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!theirs.contains("hello_world"));
    // Their form naming Acme's connection: refused at the field.
    let mut g = browser(&f.app, &other.access_token);
    let csrf = g.get("/templates/new").await.form_token();
    let r = g
        .post_form(
            "/templates/new",
            &[
                ("csrf", &csrf),
                ("connection_id", &f.connection_id),
                ("name", "cross_tenant"),
                ("language", "en"),
                ("category", "UTILITY"),
                ("body", "Hello there"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r
        .text
        .contains("must be a WhatsApp connection of this tenant"));

    // A read-only impersonation reads, and cannot submit.
    let root = f.app.super_admin("root@platform.example").await;
    let r = f
        .app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", f.owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #8", "write": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    let mut i = browser(&f.app, &imp);
    assert_eq!(i.get("/templates").await.status, StatusCode::OK);
    let csrf = i.get("/templates").await.form_token();
    let r = i
        .post_form(
            "/templates/new",
            &[
                ("csrf", &csrf),
                ("connection_id", &f.connection_id),
                ("name", "impersonated"),
                ("language", "en"),
                ("category", "UTILITY"),
                ("body", "Hello there"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("this impersonation is read-only"));

    // Signed out: sent to sign in.
    let app: &TestApp = &f.app;
    let mut anon = Browser::new(app);
    let r = anon.get("/templates").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login?next="));
}
