//! The console's deal edit form (`/deals/{id}/edit`, answered by the console itself), the
//! deal page's delete form, and the pipeline pages (`/deals/pipelines`, `/new`, `/{id}`, whose
//! forms are `data-api` forms against the JSON API): what each shows, who may open it, and every
//! refusal (forged form, another tenant's ids, an agent on admin pages, a read-only
//! impersonation). The browser suite (`crates/browser-tests`, `deals.rs`) drives the same pages
//! in Chromium, through the API the forms call.

use crate::console::{signed_in_page as page, Browser};
use crate::console_deals::{browser, contact, fixture, pipeline, stage};
use palisade_testkit::{spawn_app, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(
    a_deal_is_changed_from_its_edit_form_and_bad_values_are_shown_at_their_fields,
    the_edit_form_is_refused_forged_across_tenants_and_read_only,
    the_deal_page_offers_edit_and_delete_to_who_may,
    the_pipeline_pages_list_and_edit_pipelines_for_admins,
    another_tenants_pipelines_are_404_pages_and_agents_get_403,
);

const XSS: &str = "<img src=x onerror=alert(1)>";

async fn a_deal_is_changed_from_its_edit_form_and_bad_values_are_shown_at_their_fields(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let pid = f.pipeline["id"].as_str().unwrap();
    let contact_id = f.deal["contact_id"].as_str().unwrap();
    let lost = stage(&f.pipeline, "Lost");
    let mut b = browser(&f.app, &f.owner.access_token);

    let form = b.get(&format!("/deals/{id}/edit")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(form.text.contains("<h1>Edit deal</h1>"), "{}", form.text);
    assert!(form.text.contains(&format!(r#"action="/deals/{id}/edit""#)));
    for label in [
        "Title",
        "Value",
        "Currency",
        "Contact",
        "Stage",
        "Owner",
        "Expected close date",
        "Lost reason",
    ] {
        assert!(form.text.contains(&format!(">{label}</label>")), "{label}");
    }
    assert!(form.text.contains(r#"value="Fleet renewal""#), "title kept");
    assert!(
        form.text.contains(r#"value="1250.50""#),
        "the amount as typed"
    );
    assert!(form.text.contains("<option selected>EUR</option>"));
    assert!(form
        .text
        .contains(&format!(r#"<option value="{contact_id}" selected>"#)));
    assert!(form.text.contains(">Save deal</button>"));
    let csrf = form.form_token();

    // Bad values come back at their fields with what was typed; nothing changes.
    let long = "x".repeat(501);
    let bad = b
        .post_form(
            &format!("/deals/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("title", XSS),
                ("value", "12.345"),
                ("currency", "EUR"),
                ("contact_id", contact_id),
                ("pipeline_id", pid),
                ("stage_id", &lost),
                ("expected_close_date", "31/12/2026"),
                ("lost_reason", &long),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(
        bad.text.contains("EUR has at most 2 decimals"),
        "{}",
        bad.text
    );
    assert!(bad.text.contains("The deal was not saved"), "{}", bad.text);
    assert!(!bad.text.contains(XSS), "escaped");
    let bad = b
        .post_form(
            &format!("/deals/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("title", "Fleet renewal"),
                ("value", "99.99"),
                ("currency", "EUR"),
                ("contact_id", contact_id),
                ("pipeline_id", pid),
                ("stage_id", &lost),
                ("expected_close_date", "31/12/2026"),
                ("lost_reason", &long),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(
        bad.text.contains(r#"id="expected_close_date-error">"#),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains("must be at most 500 characters"),
        "{}",
        bad.text
    );
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["value_minor"], 125050, "unchanged: {}", d.body);
    assert_eq!(d.body["status"], "open");

    // A good form: every field replaced, the owner cleared, the move recorded.
    let ok = b
        .post_form(
            &format!("/deals/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("title", "Fleet renewal 2027"),
                ("value", "99.99"),
                ("currency", "EUR"),
                ("contact_id", contact_id),
                ("pipeline_id", pid),
                ("stage_id", &lost),
                ("owner_id", ""),
                ("expected_close_date", "2026-12-31"),
                ("lost_reason", "Went with a competitor"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert_eq!(ok.location(), format!("/deals/{id}"));
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["title"], "Fleet renewal 2027");
    assert_eq!(d.body["value_minor"], 9999);
    assert_eq!(d.body["status"], "lost");
    assert_eq!(d.body["stage_id"], lost.as_str());
    assert_eq!(d.body["owner_id"], serde_json::Value::Null);
    assert_eq!(d.body["expected_close_date"], "2026-12-31");
    assert_eq!(d.body["lost_reason"], "Went with a competitor");
    let h = f
        .app
        .get(
            &format!("/api/v1/deals/{id}/history"),
            &f.owner.access_token,
        )
        .await;
    let moves: Vec<_> = h.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["to_stage_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(moves, ["Lead", "Lost"]);
    let show = b.get(&format!("/deals/{id}")).await;
    assert!(show.text.contains("Lost because"), "{}", show.text);
    assert!(show.text.contains("Went with a competitor"));
    assert!(show.text.contains("2026-12-31"));

    // The form again with nothing changed: no new history, no new audit entry.
    let again = b.get(&format!("/deals/{id}/edit")).await;
    assert!(again.text.contains("Went with a competitor</textarea>"));
    let audit_before = f
        .app
        .get(
            "/api/v1/audit-logs?action=deal.updated",
            &f.owner.access_token,
        )
        .await;
    let ok = b
        .post_form(
            &format!("/deals/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("title", "Fleet renewal 2027"),
                ("value", "99.99"),
                ("currency", "EUR"),
                ("contact_id", contact_id),
                ("pipeline_id", pid),
                ("stage_id", &lost),
                ("expected_close_date", "2026-12-31"),
                ("lost_reason", "Went with a competitor"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let audit_after = f
        .app
        .get(
            "/api/v1/audit-logs?action=deal.updated",
            &f.owner.access_token,
        )
        .await;
    assert_eq!(audit_before.status, StatusCode::OK, "{}", audit_before.body);
    assert_eq!(
        audit_before.body["data"].as_array().unwrap().len(),
        audit_after.body["data"].as_array().unwrap().len(),
        "an unchanged deal writes nothing"
    );
}

async fn the_edit_form_is_refused_forged_across_tenants_and_read_only(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let pid = f.pipeline["id"].as_str().unwrap();
    let contact_id = f.deal["contact_id"].as_str().unwrap();
    let won = stage(&f.pipeline, "Won");
    let fields = |csrf: &str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.to_owned()),
            ("title", "Taken".into()),
            ("value", "1".into()),
            ("currency", "EUR".into()),
            ("contact_id", contact_id.to_owned()),
            ("pipeline_id", pid.to_owned()),
            ("stage_id", won.clone()),
        ]
    };

    // A forged token, or none: 403, before anything is read.
    let mut b = browser(&f.app, &f.owner.access_token);
    for csrf in ["", "forged"] {
        let form = fields(csrf);
        let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = b.post_form(&format!("/deals/{id}/edit"), &refs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{csrf:?}: {}", r.text);
    }

    // Another tenant: Acme's deal is not found, to read or to change.
    let other = f.app.register("Globex", "gil@globex.example").await;
    let mut g = browser(&f.app, &other.access_token);
    let (status, body) = page(&f.app, &other.access_token, &format!("/deals/{id}/edit")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("Fleet renewal"));
    let csrf = g.get("/deals").await.form_token();
    let form = fields(&csrf);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = g.post_form(&format!("/deals/{id}/edit"), &refs).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    for bad in [
        "/deals/nope/edit".to_owned(),
        format!("/deals/{}/edit", uuid::Uuid::now_v7()),
    ] {
        let (status, _) = page(&f.app, &f.owner.access_token, &bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }

    // A read-only impersonation may read the form; saving it is refused as the API refuses it.
    let root = f.app.super_admin("root@platform.example").await;
    let r = f
        .app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", f.owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #9", "write": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let mut imp = browser(&f.app, r.body["access_token"].as_str().unwrap());
    let form_page = imp.get(&format!("/deals/{id}/edit")).await;
    assert_eq!(form_page.status, StatusCode::OK);
    let form = fields(&form_page.form_token());
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = imp.post_form(&format!("/deals/{id}/edit"), &refs).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("this impersonation is read-only"));

    // Signed out: sent to sign in.
    let mut anon = Browser::new(&f.app);
    let r = anon.get(&format!("/deals/{id}/edit")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login?next="));

    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["title"], "Fleet renewal", "never changed");
    assert_eq!(d.body["status"], "open");
}

async fn the_deal_page_offers_edit_and_delete_to_who_may(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let pid = f.pipeline["id"].as_str().unwrap();
    let (status, owner_page) = page(&f.app, &f.owner.access_token, &format!("/deals/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(owner_page.contains(&format!(r#"href="/deals/{id}/edit">Edit deal</a>"#)));
    assert!(owner_page.contains(&format!(r#"data-api="DELETE /api/v1/deals/{id}""#)));
    assert!(owner_page.contains(&format!(r#"data-then="go:/deals?pipeline={pid}""#)));
    assert!(owner_page.contains("data-confirm=\"Delete the deal Fleet renewal?"));

    // An agent changes deals but does not delete them (the API refuses them `deals.delete`).
    let agent = f.app.add_user(&f.owner, "bo@acme.example", "agent").await;
    let (status, agent_page) = page(&f.app, &agent.access_token, &format!("/deals/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(agent_page.contains("Edit deal"));
    assert!(!agent_page.contains("Delete deal"));
    let r = f
        .app
        .delete(&format!("/api/v1/deals/{id}"), &agent.access_token)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (status, _) = page(&f.app, &agent.access_token, &format!("/deals/{id}/edit")).await;
    assert_eq!(status, StatusCode::OK);

    // What the delete form calls: the deal is gone, its page a 404.
    let r = f
        .app
        .delete(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (status, _) = page(&f.app, &f.owner.access_token, &format!("/deals/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn the_pipeline_pages_list_and_edit_pipelines_for_admins(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let sales = pipeline(&app, t).await;
    let sales_id = sales["id"].as_str().unwrap();
    let r = app
        .post(
            "/api/v1/pipelines",
            Some(t),
            json!({"name": XSS, "stages": [
                {"name": "Due <soon>", "probability": 40, "kind": "open"},
                {"name": "Renewed", "probability": 100, "kind": "won"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let other_id = r.body["id"].as_str().unwrap().to_owned();

    let (status, list) = page(&app, t, "/deals/pipelines").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(list.contains("<h1>Pipelines</h1>"));
    assert!(list.contains(r#"href="/deals/pipelines/new">New pipeline</a>"#));
    assert!(list.contains(&format!(r#"href="/deals/pipelines/{sales_id}""#)));
    assert!(list.contains(&format!(r#"href="/deals/pipelines/{other_id}""#)));
    assert!(
        list.contains("Sales</a> <span class=\"badge\">Default</span>"),
        "{list}"
    );
    for s in ["Lead", "Qualified", "Proposal", "Won", "Lost"] {
        assert!(list.contains(&format!("<li>{s} ")), "{s}");
    }
    assert!(!list.contains(XSS), "escaped");
    assert!(list.contains("Due &#60;soon&#62;"), "{list}");
    let (_, board) = page(&app, t, "/deals").await;
    assert!(board.contains(r#"href="/deals/pipelines">Pipelines</a>"#));

    let (status, new) = page(&app, t, "/deals/pipelines/new").await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert!(new.contains(r#"data-api="POST /api/v1/pipelines""#));
    assert!(new.contains(r#"data-then="go:/deals/pipelines""#));
    assert!(new.contains(r#"<label for="name">Name</label>"#));
    for (i, kind) in ["open", "won", "lost"].iter().enumerate() {
        assert!(new.contains(&format!(
            r#"<label for="stage-{i}-name">Stage name</label>"#
        )));
        assert!(new.contains(&format!(r#"name="stages.{i}.name""#)));
        assert!(new.contains(&format!(r#"name="stages.{i}.probability""#)));
        assert!(new.contains(&format!(r#"<option value="{kind}" selected>"#)));
    }
    assert!(!new.contains("stages.0.id"), "new stages have no id");
    assert!(
        new.contains(r#"id="stages-error""#),
        "the list's error slot"
    );
    assert!(new.contains(">Add stage</button>"));
    assert!(!new.contains("Delete pipeline"));

    let (status, edit) = page(&app, t, &format!("/deals/pipelines/{other_id}")).await;
    assert_eq!(status, StatusCode::OK, "{edit}");
    assert!(edit.contains(&format!(r#"data-api="PATCH /api/v1/pipelines/{other_id}""#)));
    assert!(edit.contains(&format!(
        r#"data-api="DELETE /api/v1/pipelines/{other_id}""#
    )));
    assert!(
        edit.contains(r#"value="&#60;img src=x onerror=alert(1)&#62;""#),
        "{edit}"
    );
    assert!(!edit.contains(XSS));
    for st in r.body["stages"].as_array().unwrap() {
        let sid = st["id"].as_str().unwrap();
        assert!(
            edit.contains(&format!(r#"value="{sid}" data-stage-field="id""#)),
            "{sid}"
        );
    }
    assert!(edit.contains(r#"<option value="won" selected>Won</option>"#));
    assert!(edit.contains(r#"value="40""#));

    // What the form sends (app.js turns the numbered names into the `stages` list): the API
    // keeps the listed stage, renames it, adds the new one, removes the other.
    let due = r.body["stages"][0]["id"].as_str().unwrap();
    let p = app
        .patch(
            &format!("/api/v1/pipelines/{other_id}"),
            t,
            json!({"name": "Renewals", "stages": [
                {"id": due, "name": "Due", "probability": 30, "kind": "open"},
                {"name": "Lapsed", "probability": 0, "kind": "lost"}]}),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let (_, edit) = page(&app, t, &format!("/deals/pipelines/{other_id}")).await;
    assert!(edit.contains(r#"value="Renewals""#));
    assert!(edit.contains(&format!(r#"value="{due}" data-stage-field="id""#)));
    assert!(edit.contains(r#"value="Lapsed""#));
    assert!(!edit.contains("Renewed"));
}

async fn another_tenants_pipelines_are_404_pages_and_agents_get_403(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let sales = pipeline(&app, &owner.access_token).await;
    let sales_id = sales["id"].as_str().unwrap();
    contact(&app, &owner.access_token, "+447700900109", "Cara").await;

    // Another tenant's pipeline: 404, never its name.
    let other = app.register("Globex", "gil@globex.example").await;
    let r = app
        .patch(
            &format!("/api/v1/pipelines/{sales_id}"),
            &owner.access_token,
            json!({"name": "Acme secret sales"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for path in [
        format!("/deals/pipelines/{sales_id}"),
        "/deals/pipelines/not-a-uuid".to_owned(),
        format!("/deals/pipelines/{}", uuid::Uuid::now_v7()),
    ] {
        let (status, body) = page(&app, &other.access_token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("Acme secret sales"), "{path}");
    }
    let (status, theirs) = page(&app, &other.access_token, "/deals/pipelines").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!theirs.contains("Acme secret sales"));
    assert!(theirs.contains(">Sales</a>"), "their own default pipeline");

    // An agent reads the list, without the admin's links; the forms' pages are 403.
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let (status, list) = page(&app, &agent.access_token, "/deals/pipelines").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("Acme secret sales"));
    assert!(!list.contains("New pipeline"));
    assert!(!list.contains(&format!(r#"href="/deals/pipelines/{sales_id}""#)));
    for path in [
        "/deals/pipelines/new".to_owned(),
        format!("/deals/pipelines/{sales_id}"),
    ] {
        let (status, _) = page(&app, &agent.access_token, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }

    // A super admin outside any tenant has no pipelines; signed out: sent to sign in.
    let root = app.super_admin("root@platform.example").await;
    let (status, _) = page(&app, &root.access_token, "/deals/pipelines").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut anon = Browser::new(&app);
    let r = anon.get("/deals/pipelines/new").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login?next="));
}
