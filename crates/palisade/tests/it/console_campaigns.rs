//! The console's campaign pages over plain HTTP (`/campaigns`, `/campaigns/new`,
//! `/campaigns/{id}`) and the forms it answers itself (`POST /campaigns/new`,
//! `POST /campaigns/{id}/start|pause|resume|cancel|delete`): the list with its status filter
//! (a refused status shown at its field), the new campaign form (one parameter row per
//! variable of the chosen template, every mistake at its field, the template's own refusal
//! at the variables), the state changes through the forms with the buttons each status allows,
//! the counts and recipients, and who may do what (an agent reads but sees no write control and
//! is refused a form; another tenant's campaign is a 404 page; a form without the session's
//! CSRF token or from a read-only impersonation changes nothing), and the edit form of a draft
//! (`/campaigns/{id}/edit`: filled from the campaign, saved, refused once it started, for an
//! agent and for another tenant). The browser suite
//! (crates/browser-tests, `campaigns.rs`) drives the same pages in Chromium.

use crate::console::{signed_in_page as page, Browser};
use crate::support::{whatsapp_fixture_with, WhatsAppFixture};
use palisade_testkit::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    campaigns_are_created_from_the_form_and_driven_through_their_actions,
    who_may_see_and_drive_campaigns,
    a_draft_is_edited_on_the_form_and_only_while_it_may_be,
);

const XSS: &str = "<img src=x onerror=alert(1)>";

/// A fixture whose workers do not dispatch: the test drives the campaign through its states.
async fn fixture(db: Db) -> WhatsAppFixture {
    let f = whatsapp_fixture_with(db, |c| {
        c.outbound_worker_interval_ms = 0;
    })
    .await;
    f.sync_templates().await;
    f
}

/// A browser signed in with `token` (its access cookie, as the console reads it).
fn browser<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    b.jar
        .insert("__Host-palisade_access".into(), token.to_owned());
    b.jar.insert("palisade_access".into(), token.to_owned());
    b
}

async fn contact(app: &TestApp, t: &str, body: Value) -> String {
    let r = app.post("/api/v1/contacts", Some(t), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
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
    r.body["data"][0]["id"].as_str().unwrap().to_owned()
}

/// A draft created through the API.
async fn draft(f: &WhatsAppFixture, name: &str) -> String {
    let r = f
        .app
        .post(
            "/api/v1/campaigns",
            Some(&f.owner.access_token),
            json!({
                "name": name, "connection_id": f.connection_id,
                "template": {"name": "hello_world", "language": "en_US"},
                "audience": {"tags": ["vip"]},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn status_of(f: &WhatsAppFixture, id: &str) -> String {
    let r = f
        .app
        .get(&format!("/api/v1/campaigns/{id}"), &f.owner.access_token)
        .await;
    r.body["status"].as_str().unwrap_or_default().to_owned()
}

/// The text of the error slot `<id>-error`.
fn slot(html: &str, id: &str) -> String {
    let at = html
        .find(&format!(r#"id="{id}-error""#))
        .unwrap_or_else(|| panic!("no slot {id}"));
    let rest = &html[at..];
    rest[rest.find('>').unwrap() + 1..rest.find("</p>").unwrap()].to_owned()
}

/// The value of the figure `label` on a campaign page.
fn figure(html: &str, label: &str) -> String {
    let at = html
        .find(&format!("<dt>{label}</dt>"))
        .unwrap_or_else(|| panic!("no figure {label}"));
    let rest = &html[at..];
    let v = &rest[rest.find(r#"class="figure-value">"#).unwrap() + 21..];
    v[..v.find('<').unwrap()].to_owned()
}

/// Sends the campaign action `action` through the page's form.
async fn act(b: &mut Browser<'_>, id: &str, action: &str, csrf: &str) -> crate::console::Page {
    b.post_form(&format!("/campaigns/{id}/{action}"), &[("csrf", csrf)])
        .await
}

async fn campaigns_are_created_from_the_form_and_driven_through_their_actions(db: Db) {
    let f = fixture(db).await;
    let t = f.owner.access_token.clone();
    let ana = contact(
        &f.app,
        &t,
        json!({"phone": "+447700900123", "name": "Ana", "tags": ["vip"]}),
    )
    .await;
    contact(
        &f.app,
        &t,
        json!({"phone": "+447700900202", "name": "Bo", "tags": ["vip"]}),
    )
    .await;
    contact(&f.app, &t, json!({"phone": "+447700900203"})).await;

    let (status, empty) = page(&f.app, &t, "/campaigns").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No campaigns yet"), "{empty}");
    assert!(
        empty.contains(r#"href="/campaigns" aria-current="page""#),
        "Campaigns in the navigation, current"
    );
    assert!(
        empty.contains(r#"href="/campaigns/new""#),
        "an admin may create"
    );

    // The form: every control labelled; the chosen template's variables as rows.
    let mut b = browser(&f.app, &t);
    let form = b.get("/campaigns/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    for label in [
        "Name",
        "WhatsApp number",
        "Template",
        "Tags",
        "Except contacts tagged",
        "Contact ids (optional)",
        "Send at (UTC, optional)",
    ] {
        assert!(form.text.contains(&format!(">{label}</label>")), "{label}");
    }
    assert!(form
        .text
        .contains("order_confirmation (en_US) · 2 variables"));
    assert!(form.text.contains("hello_world (en_US) · 0 variables"));
    let csrf = form.form_token();
    let order = template_id(&f, "order_confirmation").await;
    let chosen = b
        .post_form(
            "/campaigns/new",
            &[
                ("csrf", &csrf),
                ("step", "choose"),
                ("name", "Kept"),
                ("connection_id", &f.connection_id),
                ("template", &order),
            ],
        )
        .await;
    assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.text);
    assert!(chosen.text.contains(">Body {{1}}: value from</label>"));
    assert!(chosen.text.contains(">Body {{2}}: fallback</label>"));
    assert!(!chosen.text.contains("param_kind_3"));
    assert!(
        chosen.text.contains(r#"value="Kept""#),
        "what was typed is kept"
    );
    let listed = f.app.get("/api/v1/campaigns", &t).await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        0,
        "nothing created"
    );

    let fields = |name: &str, tags: &str, ids: &str, at: &str, rows: usize| {
        let mut v: Vec<(String, String)> = vec![
            ("csrf".into(), csrf.clone()),
            ("name".into(), name.into()),
            ("connection_id".into(), f.connection_id.clone()),
            ("template".into(), order.clone()),
            ("tags".into(), tags.into()),
            ("exclude_tags".into(), String::new()),
            ("contact_ids".into(), ids.into()),
            ("scheduled_at".into(), at.into()),
        ];
        let params = [("name", "", "friend"), ("literal", "SPRING-24", "")];
        for (i, (kind, value, fallback)) in params.iter().take(rows).enumerate() {
            v.push((format!("param_kind_{}", i + 1), (*kind).into()));
            v.push((format!("param_value_{}", i + 1), (*value).into()));
            v.push((format!("param_fallback_{}", i + 1), (*fallback).into()));
        }
        v
    };

    // Mistakes: no name, a bad tag, a contact id that is not one, a time that is not one:
    // each at its field, what was typed kept, nothing created.
    let v = fields("", "vip, bad!tag", "nope", "tomorrow", 2);
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form("/campaigns/new", &refs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("check the fields marked below"),
        "{}",
        r.text
    );
    assert!(!slot(&r.text, "name").is_empty());
    assert!(slot(&r.text, "tags").contains("may contain only letters"));
    assert!(slot(&r.text, "contact_ids").contains("is not a contact id"));
    assert!(slot(&r.text, "scheduled_at").contains("RFC 3339"));
    assert!(slot(&r.text, "template").is_empty());
    assert!(r.text.contains(r#"value="vip, bad!tag""#), "kept");
    assert!(r.text.contains(r#"aria-invalid="true""#));

    // The template's own refusal: one value for its two variables, said at the variables.
    let v = fields("Spring sale", "vip", "", "", 1);
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form("/campaigns/new", &refs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        slot(&r.text, "parameters").contains("takes 2 body parameter(s); 1 given"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("param_kind_2"),
        "the rows the template needs"
    );

    // A template that is not one of the number's approved ones.
    let mut v = fields("Spring sale", "vip", "", "", 2);
    v[3].1 = uuid::Uuid::new_v4().to_string();
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form("/campaigns/new", &refs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(slot(&r.text, "template").contains("choose an approved template"));

    // Right: a draft, shown with the actions a draft allows.
    let name = format!("Spring {XSS}");
    let v = fields(&name, "VIP", "", "", 2);
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form("/campaigns/new", &refs).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let id = r.location().strip_prefix("/campaigns/").unwrap().to_owned();
    let c = f.app.get(&format!("/api/v1/campaigns/{id}"), &t).await;
    assert_eq!(c.body["status"], "draft");
    assert_eq!(c.body["template"]["name"], "order_confirmation");
    assert_eq!(
        c.body["parameters"],
        json!([
            {"type": "contact_field", "field": "name", "fallback": "friend"},
            {"type": "literal", "value": "SPRING-24"}
        ])
    );
    assert_eq!(c.body["audience"]["tags"], json!(["vip"]));
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(!show.text.contains(XSS), "unescaped name");
    assert!(show.text.contains("&#60;img src=x onerror=alert(1)&#62;"));
    assert!(show
        .text
        .contains(r#"<span class="badge badge-resolved">Draft</span>"#));
    assert!(show.text.contains("order_confirmation (en_US)"));
    assert!(
        show.text.contains("Contact&#39;s name, else"),
        "{}",
        show.text
    );
    assert!(show.text.contains("Tagged vip"));
    for (action, shown) in [
        ("start", true),
        ("pause", false),
        ("resume", false),
        ("cancel", true),
        ("delete", true),
    ] {
        assert_eq!(
            show.text
                .contains(&format!(r#"action="/campaigns/{id}/{action}""#)),
            shown,
            "{action}"
        );
    }
    assert!(show
        .text
        .contains("The audience becomes recipients when the campaign starts."));

    // Without the session's CSRF token: refused, nothing changes.
    let r = act(&mut b, &id, "start", "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&f, &id).await, "draft");

    // Start: running, two recipients queued, linked to their contacts.
    let csrf = show.form_token();
    let r = act(&mut b, &id, "start", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), format!("/campaigns/{id}"));
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert!(show
        .text
        .contains(r#"<span class="badge badge-open">Running</span>"#));
    assert_eq!(figure(&show.text, "Targeted"), "2");
    assert_eq!(figure(&show.text, "Queued"), "2");
    assert!(show.text.contains(&format!(
        r#"href="/contacts/{ana}">Ana (+447700900123)</a>"#
    )));
    assert!(show
        .text
        .contains(&format!(r#"action="/campaigns/{id}/pause""#)));
    assert!(!show
        .text
        .contains(&format!(r#"action="/campaigns/{id}/start""#)));
    assert!(!show
        .text
        .contains(&format!(r#"action="/campaigns/{id}/delete""#)));
    let (_, queued) = page(&f.app, &t, &format!("/campaigns/{id}?status=queued")).await;
    assert!(queued.contains("Ana (+447700900123)"));
    let (_, failed) = page(&f.app, &t, &format!("/campaigns/{id}?status=failed")).await;
    assert!(failed.contains("No recipients in this status."));
    let (status, bad) = page(&f.app, &t, &format!("/campaigns/{id}?status=lost")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("is not one of skipped"), "{bad}");

    // Pause, resume, cancel; a second start is the API's 409 on the error page.
    let r = act(&mut b, &id, "pause", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert!(show
        .text
        .contains(r#"<span class="badge badge-pending">Paused</span>"#));
    assert!(show
        .text
        .contains(&format!(r#"action="/campaigns/{id}/resume""#)));
    assert!(!show
        .text
        .contains(&format!(r#"action="/campaigns/{id}/pause""#)));
    let r = act(&mut b, &id, "resume", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(status_of(&f, &id).await, "running");
    let r = act(&mut b, &id, "cancel", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert!(show
        .text
        .contains(r#"<span class="badge badge-danger">Cancelled</span>"#));
    assert!(!show
        .text
        .contains(r#"role="group" aria-label="Campaign actions""#));
    assert_eq!(figure(&show.text, "Skipped"), "2");
    let r = act(&mut b, &id, "start", &csrf).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.text.contains("cannot start a cancelled campaign"),
        "{}",
        r.text
    );
    let r = act(&mut b, &id, "explode", &csrf).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The list: badge, number, template, sent / targeted; the status filter.
    let other = draft(&f, "Autumn").await;
    let (status, list) = page(&f.app, &t, "/campaigns").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.matches("<h1>").count(), 1);
    assert!(list.contains(&format!(r#"href="/campaigns/{id}">Spring &#60;img"#)));
    assert!(list.contains(&format!(r#"href="/campaigns/{other}">Autumn</a>"#)));
    assert!(list.contains("0 / 2"), "{list}");
    assert!(list.contains("Support line"), "the number");
    assert!(list.contains("hello_world (en_US)"));
    let (_, drafts) = page(&f.app, &t, "/campaigns?status=draft").await;
    assert!(drafts.contains("Autumn"));
    assert!(!drafts.contains("Spring"));
    let (status, bad) = page(&f.app, &t, "/campaigns?status=lost").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains(r#"aria-invalid="true""#), "{bad}");
    let (status, _) = page(&f.app, &t, "/campaigns?cursor=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Deleting a draft.
    let r = act(&mut b, &other, "delete", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), "/campaigns");
    let (status, _) = page(&f.app, &t, &format!("/campaigns/{other}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn who_may_see_and_drive_campaigns(db: Db) {
    let f = fixture(db).await;
    contact(
        &f.app,
        &f.owner.access_token,
        json!({"phone": "+447700900123", "tags": ["vip"]}),
    )
    .await;
    let id = draft(&f, "Winter").await;

    // An agent reads the list and the campaign, without any write control; the form page and
    // every action form are refused.
    let agent = f.app.add_user(&f.owner, "bo@acme.example", "agent").await;
    let mut b = browser(&f.app, &agent.access_token);
    let list = b.get("/campaigns").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.text.contains(">Winter</a>"));
    assert!(!list.text.contains(r#"href="/campaigns/new""#));
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(
        !show.text.contains(&format!("/campaigns/{id}/")),
        "no action form"
    );
    assert_eq!(b.get("/campaigns/new").await.status, StatusCode::FORBIDDEN);
    let csrf = show.form_token();
    for action in ["start", "cancel", "delete"] {
        let r = act(&mut b, &id, action, &csrf).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}: {}", r.text);
    }
    let r = b
        .post_form(
            "/campaigns/new",
            &[
                ("csrf", &csrf),
                ("name", "Agent's"),
                ("connection_id", &f.connection_id),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&f, &id).await, "draft");

    // Another tenant: a 404 page, not in their list, and their forms cannot reach it.
    let other = f.app.register("Globex", "gil@globex.example").await;
    for path in [format!("/campaigns/{id}"), "/campaigns/nope".into()] {
        let (status, body) = page(&f.app, &other.access_token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("Winter"), "{path}");
    }
    let (status, theirs) = page(&f.app, &other.access_token, "/campaigns").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!theirs.contains("Winter"));
    let mut g = browser(&f.app, &other.access_token);
    let csrf = g.get("/campaigns").await.form_token();
    for action in ["start", "delete"] {
        let r = act(&mut g, &id, action, &csrf).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
    }
    // Their form naming Acme's number: refused at the field.
    let r = g
        .post_form(
            "/campaigns/new",
            &[
                ("csrf", &csrf),
                ("name", "Cross"),
                ("connection_id", &f.connection_id),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(status_of(&f, &id).await, "draft");

    // A read-only impersonation reads, and cannot act.
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
    let show = i.get(&format!("/campaigns/{id}")).await;
    assert_eq!(show.status, StatusCode::OK);
    let r = act(&mut i, &id, "start", &show.form_token()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("this impersonation is read-only"));
    assert_eq!(status_of(&f, &id).await, "draft");

    // Signed out: sent to sign in.
    let mut anon = Browser::new(&f.app);
    let r = anon.get("/campaigns").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login?next="));
}

async fn a_draft_is_edited_on_the_form_and_only_while_it_may_be(db: Db) {
    let f = fixture(db).await;
    let t = f.owner.access_token.clone();
    contact(
        &f.app,
        &t,
        json!({"phone": "+447700900123", "name": "Ana", "tags": ["vip"]}),
    )
    .await;
    let r = f
        .app
        .post(
            "/api/v1/campaigns",
            Some(&t),
            json!({
                "name": "Spring sale", "connection_id": f.connection_id,
                "template": {"name": "order_confirmation", "language": "en_US"},
                "parameters": [
                    {"type": "contact_field", "field": "name", "fallback": "friend"},
                    {"type": "literal", "value": "SPRING-24"},
                ],
                "audience": {"tags": ["vip"], "exclude_tags": ["lead"]},
                "scheduled_at": "2099-01-31T09:00:00Z",
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let edit = format!("/campaigns/{id}/edit");

    let mut b = browser(&f.app, &t);
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert!(
        show.text.contains(&format!(r#"href="{edit}">Edit</a>"#)),
        "{}",
        show.text
    );
    // The form, filled from the campaign.
    let form = b.get(&edit).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(form.text.contains("<h1>Edit campaign</h1>"));
    assert!(form.text.contains(&format!(r#"action="{edit}""#)));
    assert!(form.text.contains(">Save changes</button>"));
    assert!(form.text.contains(r#"value="Spring sale""#));
    assert!(form.text.contains(r#"value="SPRING-24""#));
    assert!(form.text.contains(r#"value="friend""#));
    assert!(form.text.contains(r#"value="2099-01-31T09:00""#));
    assert!(form.text.contains(r#"value="lead""#), "the excluded tags");
    let order = template_id(&f, "order_confirmation").await;
    assert!(
        form.text
            .contains(&format!(r#"<option value="{order}" selected"#)),
        "the campaign's template chosen"
    );
    let csrf = form.form_token();
    let fields = |name: &str, at: &str| -> Vec<(String, String)> {
        vec![
            ("csrf".into(), csrf.clone()),
            ("name".into(), name.into()),
            ("connection_id".into(), f.connection_id.clone()),
            ("template".into(), order.clone()),
            ("param_kind_1".into(), "email".into()),
            ("param_value_1".into(), String::new()),
            ("param_fallback_1".into(), "there".into()),
            ("param_kind_2".into(), "literal".into()),
            ("param_value_2".into(), "SUMMER-25".into()),
            ("param_fallback_2".into(), String::new()),
            ("tags".into(), "vip, newsletter".into()),
            ("exclude_tags".into(), String::new()),
            ("contact_ids".into(), String::new()),
            ("scheduled_at".into(), at.into()),
        ]
    };

    // A mistake: said at its field, nothing saved.
    let v = fields("", "");
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form(&edit, &refs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r
        .text
        .contains("The campaign was not saved: check the fields marked below."));
    assert!(!slot(&r.text, "name").is_empty());
    assert!(
        r.text.contains(">Save changes</button>"),
        "still the edit form"
    );
    let api = f.app.get(&format!("/api/v1/campaigns/{id}"), &t).await;
    assert_eq!(api.body["name"], "Spring sale");

    // Without the session's CSRF token: refused, nothing saved.
    let mut v = fields("Forged", "");
    v[0].1 = "not-the-token".into();
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form(&edit, &refs).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let api = f.app.get(&format!("/api/v1/campaigns/{id}"), &t).await;
    assert_eq!(api.body["name"], "Spring sale");

    // Saved: the campaign's page, with every field as typed and the time cleared.
    let v = fields("Summer sale", "");
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = b.post_form(&edit, &refs).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), format!("/campaigns/{id}"));
    let api = f.app.get(&format!("/api/v1/campaigns/{id}"), &t).await;
    assert_eq!(api.body["name"], "Summer sale");
    assert_eq!(api.body["status"], "draft");
    assert!(api.body["scheduled_at"].is_null(), "{}", api.body);
    assert_eq!(api.body["audience"]["tags"], json!(["vip", "newsletter"]));
    assert_eq!(api.body["audience"]["exclude_tags"], json!([]));
    assert_eq!(
        api.body["parameters"],
        json!([
            {"type": "contact_field", "field": "email", "fallback": "there"},
            {"type": "literal", "value": "SUMMER-25"},
        ])
    );

    // An agent may not open or post the form; another tenant finds nothing.
    let agent = f.app.add_user(&f.owner, "bo@acme.example", "agent").await;
    let mut a = browser(&f.app, &agent.access_token);
    assert_eq!(a.get(&edit).await.status, StatusCode::FORBIDDEN);
    let agent_csrf = a.get(&format!("/campaigns/{id}")).await.form_token();
    let mut v = fields("Agent's", "");
    v[0].1 = agent_csrf;
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        a.post_form(&edit, &refs).await.status,
        StatusCode::FORBIDDEN
    );
    let other = f.app.register("Globex", "gil@globex.example").await;
    let mut g = browser(&f.app, &other.access_token);
    assert_eq!(g.get(&edit).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        g.get("/campaigns/nope/edit").await.status,
        StatusCode::NOT_FOUND
    );
    let their_csrf = g.get("/campaigns").await.form_token();
    let mut v = fields("Cross", "");
    v[0].1 = their_csrf;
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_ne!(
        g.post_form(&edit, &refs).await.status,
        StatusCode::SEE_OTHER
    );
    let api = f.app.get(&format!("/api/v1/campaigns/{id}"), &t).await;
    assert_eq!(api.body["name"], "Summer sale");

    // Started, it is no longer editable: no link, the form and a post refused with 409.
    let r = act(&mut b, &id, "start", &csrf).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let show = b.get(&format!("/campaigns/{id}")).await;
    assert!(!show.text.contains(&edit));
    let r = b.get(&edit).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("cannot be edited"), "{}", r.text);
    let v = fields("Too late", "");
    let refs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(b.post_form(&edit, &refs).await.status, StatusCode::CONFLICT);
    let api = f.app.get(&format!("/api/v1/campaigns/{id}"), &t).await;
    assert_eq!(api.body["name"], "Summer sale");
}
