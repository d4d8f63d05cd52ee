//! The console's deal pages over plain HTTP (`/deals`, `/deals/new`, `/deals/{id}`) and the two
//! forms it answers itself (`POST /deals/new`, `POST /deals/{id}/move`): the board's columns,
//! counts, totals and cards (escaped), moves recorded in the history, the new deal form with its
//! field errors, and every refusal (forged or cross-site form, another tenant's ids, read-only
//! impersonation, a super admin outside a tenant, signed-out visitors). The browser suite
//! (crates/browser-tests, `deals.rs`) drives the same pages in Chromium.

use crate::console::{signed_in_page as page, Browser};
use palisade_testkit::{spawn_app, Db, Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    the_board_shows_columns_with_counts_totals_and_escaped_cards,
    a_card_moved_with_its_form_is_recorded_in_the_history,
    the_move_form_is_refused_when_forged_cross_site_or_bad,
    a_new_deal_is_created_from_the_form_and_bad_values_are_shown_at_their_fields,
    another_tenants_deals_and_pipelines_are_404_pages,
    who_may_open_the_pages_and_move_deals,
);

const XSS: &str = "<img src=x onerror=alert(1)>";

pub(crate) async fn contact(app: &TestApp, t: &str, phone: &str, name: &str) -> String {
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

pub(crate) async fn pipeline(app: &TestApp, t: &str) -> Value {
    let r = app.get("/api/v1/pipelines", t).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"][0].clone()
}

pub(crate) fn stage(pipeline: &Value, name: &str) -> String {
    pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn deal(app: &TestApp, t: &str, body: Value) -> Value {
    let r = app.post("/api/v1/deals", Some(t), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

/// A browser signed in as `s` (its access cookie, as the console reads it).
pub(crate) fn browser<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    b.jar
        .insert("__Host-palisade_access".into(), token.to_owned());
    b.jar.insert("palisade_access".into(), token.to_owned());
    b
}

/// The number of deals a column says it holds (`<h2 id="stage-…">Name…</h2>` then `N deal(s)`).
fn column_count(html: &str, stage_id: &str) -> String {
    let at = html
        .find(&format!(r#"data-stage="{stage_id}""#))
        .expect("the column");
    let rest = &html[at..];
    let at = rest.find("<span data-count>").unwrap() + "<span data-count>".len();
    rest[at..at + rest[at..].find('<').unwrap()].to_owned()
}

/// One owner with a contact and a deal in Lead.
pub(crate) struct Fixture {
    pub(crate) app: TestApp,
    pub(crate) owner: Session,
    pub(crate) pipeline: Value,
    pub(crate) deal: Value,
}

pub(crate) async fn fixture(db: Db) -> Fixture {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let pl = pipeline(&app, &owner.access_token).await;
    let c = contact(&app, &owner.access_token, "+447700900101", "Cara Lima").await;
    let d = deal(
        &app,
        &owner.access_token,
        json!({"title": "Fleet renewal", "value_minor": 125050, "currency": "EUR",
               "contact_id": c, "pipeline_id": pl["id"], "owner_id": owner.user_id}),
    )
    .await;
    Fixture {
        app,
        owner,
        pipeline: pl,
        deal: d,
    }
}

async fn the_board_shows_columns_with_counts_totals_and_escaped_cards(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let (status, empty) = page(&app, t, "/deals").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No deals in Sales yet"), "{empty}");
    assert!(empty.contains(r#"<label for="pipeline">Pipeline</label>"#));
    assert!(
        empty.contains(r#"href="/deals" aria-current="page""#),
        "nav"
    );

    let pl = pipeline(&app, t).await;
    let lead = stage(&pl, "Lead");
    let won = stage(&pl, "Won");
    let c = contact(&app, t, "+447700900102", XSS).await;
    for (title, value, currency, stage_id) in [
        (XSS, 125050, "EUR", &lead),
        ("Second", 50, "EUR", &lead),
        ("Dollars", 1000, "USD", &lead),
        ("Closed", 300000, "JPY", &won),
    ] {
        deal(
            &app,
            t,
            json!({"title": title, "value_minor": value, "currency": currency, "contact_id": c,
                   "pipeline_id": pl["id"], "stage_id": stage_id, "owner_id": owner.user_id}),
        )
        .await;
    }
    let (status, board) = page(&app, t, "/deals").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(board.matches("<h1>").count(), 1);
    for name in ["Lead", "Qualified", "Proposal", "Negotiation"] {
        assert!(board.contains(&format!(">{name}")), "{name}");
    }
    assert!(board.contains(r#"<span class="badge badge-open">Won</span>"#));
    assert!(board.contains(r#"<span class="badge badge-danger">Lost</span>"#));
    assert_eq!(column_count(&board, &lead), "3 deals");
    assert_eq!(column_count(&board, &won), "1 deal");
    assert_eq!(column_count(&board, &stage(&pl, "Lost")), "0 deals");
    assert!(board.contains("1,251.00 EUR"), "Lead's euros: {board}");
    assert!(board.contains("10.00 USD"), "Lead's dollars");
    assert!(board.contains("300,000 JPY"), "no decimals for yen");
    assert!(board.contains("1,250.50 EUR"), "the card's value");
    assert!(board.contains("Owner Person"), "the owner's name");
    assert!(board.contains("&#60;img src=x onerror=alert(1)&#62;"));
    assert!(!board.contains(XSS), "unescaped title or contact name");
    assert!(board.contains("No deals in this stage."));
    assert!(board.contains("/static/deals.js?v="));
    assert_eq!(
        board.matches(r#"class="move-form" data-move"#).count(),
        4,
        "a move form on every card"
    );
    assert!(board.contains(r#"name="csrf" value=""#));
}

async fn a_card_moved_with_its_form_is_recorded_in_the_history(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let qualified = stage(&f.pipeline, "Qualified");
    let won = stage(&f.pipeline, "Won");
    let mut b = browser(&f.app, &f.owner.access_token);
    let board = b.get("/deals").await;
    assert_eq!(board.status, StatusCode::OK);
    let csrf = board.form_token();
    let r = b
        .post_form(
            &format!("/deals/{id}/move"),
            &[("csrf", &csrf), ("stage_id", &qualified)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        r.location(),
        format!(
            "/deals?pipeline={}#deal-{id}",
            f.pipeline["id"].as_str().unwrap()
        )
    );
    let board = b.get("/deals").await.text;
    assert_eq!(column_count(&board, &qualified), "1 deal");
    assert_eq!(column_count(&board, &stage(&f.pipeline, "Lead")), "0 deals");

    // From the deal's page, back to it; to a won stage.
    let r = b
        .post_form(
            &format!("/deals/{id}/move"),
            &[("csrf", &csrf), ("stage_id", &won), ("back", "deal")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.location(), format!("/deals/{id}"));

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
    assert_eq!(moves, ["Lead", "Qualified", "Won"]);
    assert_eq!(h.body["data"][1]["changed_by"], f.owner.user_id.as_str());

    let show = b.get(&format!("/deals/{id}")).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(
        show.text.contains("<h1>Fleet renewal</h1>"),
        "{}",
        show.text
    );
    assert!(show.text.contains("Stage history"));
    assert!(show.text.contains(r#"<td data-label="From">Created</td>"#));
    assert!(
        show.text
            .contains(r#"<td data-label="From">Qualified</td>"#),
        "the move's from"
    );
    assert!(show.text.contains("Won</span>"), "won is visible");
    assert!(show.text.contains("Owner Person"), "who moved it");
    assert!(show.text.contains("1,250.50 EUR"));
    assert!(show.text.contains("Cara Lima"));
}

async fn the_move_form_is_refused_when_forged_cross_site_or_bad(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let path = format!("/deals/{id}/move");
    let qualified = stage(&f.pipeline, "Qualified");
    let mut b = browser(&f.app, &f.owner.access_token);
    let csrf = b.get("/deals").await.form_token();

    let forged = b
        .post_form(
            &path,
            &[("csrf", &"ab".repeat(32)), ("stage_id", &qualified)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let missing = b.post_form(&path, &[("stage_id", &qualified)]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let cross_site = b
        .request(
            Method::POST,
            &path,
            &[("sec-fetch-site", "cross-site")],
            Some(&[("csrf", &csrf), ("stage_id", &qualified)]),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let no_origin = b
        .request(
            Method::POST,
            &path,
            &[],
            Some(&[("csrf", &csrf), ("stage_id", &qualified)]),
        )
        .await;
    assert_eq!(no_origin.status, StatusCode::FORBIDDEN, "not from a page");

    // A stage of another pipeline, not a stage at all, no stage: 422 pages naming it.
    let other = f
        .app
        .post(
            "/api/v1/pipelines",
            Some(&f.owner.access_token),
            json!({"name": "Renewals", "stages": [{"name": "Due", "probability": 50, "kind": "open"}]}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let due = stage(&other.body, "Due");
    for bad in [due.as_str(), "not-a-stage", ""] {
        let r = b
            .post_form(&path, &[("csrf", &csrf), ("stage_id", bad)])
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert!(r.text.contains("stage_id"), "{}", r.text);
    }
    // A deal that does not exist, an id that is not one.
    for bad in [uuid::Uuid::now_v7().to_string(), "nope".into()] {
        let r = b
            .post_form(
                &format!("/deals/{bad}/move"),
                &[("csrf", &csrf), ("stage_id", &qualified)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(
        d.body["stage_id"],
        stage(&f.pipeline, "Lead").as_str(),
        "never moved"
    );
    let h = f
        .app
        .get(
            &format!("/api/v1/deals/{id}/history"),
            &f.owner.access_token,
        )
        .await;
    assert_eq!(h.body["data"].as_array().unwrap().len(), 1);
}

async fn a_new_deal_is_created_from_the_form_and_bad_values_are_shown_at_their_fields(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let mut b = browser(&app, &owner.access_token);
    let none = b.get("/deals/new").await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.text.contains("Add a contact first"), "{}", none.text);

    let c = contact(&app, &owner.access_token, "+447700900103", "Dora").await;
    let pl = pipeline(&app, &owner.access_token).await;
    let proposal = stage(&pl, "Proposal");
    let form = b.get(&format!("/deals/new?contact={c}")).await;
    assert_eq!(form.status, StatusCode::OK);
    for label in ["Title", "Value", "Currency", "Contact", "Stage", "Owner"] {
        assert!(form.text.contains(&format!(">{label}</label>")), "{label}");
    }
    assert!(form
        .text
        .contains(&format!(r#"<option value="{c}" selected>"#)));
    assert!(form.text.contains("<option selected>EUR</option>"));
    let csrf = form.form_token();
    let pid = pl["id"].as_str().unwrap();

    let bad = b
        .post_form(
            "/deals/new",
            &[
                ("csrf", &csrf),
                ("title", ""),
                ("value", "<b>12,5.5"),
                ("currency", "EUR"),
                ("contact_id", &c),
                ("pipeline_id", pid),
                ("stage_id", &proposal),
                ("owner_id", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(
        bad.text.contains("must be an amount like 1250.50"),
        "{}",
        bad.text
    );
    assert!(
        bad.text.contains(r#"value="&#60;b&#62;12,5.5""#),
        "kept, escaped"
    );
    assert!(!bad.text.contains("<b>12"));
    let bad = b
        .post_form(
            "/deals/new",
            &[
                ("csrf", &csrf),
                ("title", ""),
                ("value", "10"),
                ("currency", "XXQ"),
                ("contact_id", &c),
                ("pipeline_id", pid),
                ("stage_id", &proposal),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains(r#"id="title-error">"#), "{}", bad.text);
    assert!(
        bad.text.contains("not an ISO 4217 currency code"),
        "{}",
        bad.text
    );
    assert_eq!(
        bad.text.matches(r#"aria-invalid="true""#).count(),
        2,
        "title and currency"
    );

    let forged = b
        .post_form(
            "/deals/new",
            &[
                ("csrf", "x"),
                ("title", "Nope"),
                ("value", "1"),
                ("currency", "EUR"),
                ("contact_id", &c),
                ("pipeline_id", pid),
                ("stage_id", &proposal),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let ok = b
        .post_form(
            "/deals/new",
            &[
                ("csrf", &csrf),
                ("title", "Solar panels"),
                ("value", "1,250.5"),
                ("currency", "EUR"),
                ("contact_id", &c),
                ("pipeline_id", pid),
                ("stage_id", &proposal),
                ("owner_id", &owner.user_id),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let id = ok.location().strip_prefix("/deals/").unwrap().to_owned();
    let d = app
        .get(&format!("/api/v1/deals/{id}"), &owner.access_token)
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body["title"], "Solar panels");
    assert_eq!(d.body["value_minor"], 125050);
    assert_eq!(d.body["stage_id"], proposal.as_str());
    assert_eq!(d.body["owner_id"], owner.user_id.as_str());
    let list = app.get("/api/v1/deals", &owner.access_token).await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "refused forms created nothing"
    );
}

async fn another_tenants_deals_and_pipelines_are_404_pages(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let pid = f.pipeline["id"].as_str().unwrap();
    let other = f.app.register("Globex", "gil@globex.example").await;
    let t = &other.access_token;
    for path in [
        format!("/deals/{id}"),
        format!("/deals?pipeline={pid}"),
        format!("/deals/new?pipeline={pid}"),
        "/deals/not-a-uuid".to_owned(),
        "/deals?pipeline=nope".to_owned(),
    ] {
        let (status, body) = page(&f.app, t, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("Fleet renewal"), "{path}");
    }
    let (status, board) = page(&f.app, t, "/deals").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!board.contains("Fleet renewal"));

    // Globex's own form token, Acme's deal and stage: not found, not moved.
    let mut b = browser(&f.app, t);
    let csrf = b.get("/deals").await.form_token();
    let r = b
        .post_form(
            &format!("/deals/{id}/move"),
            &[("csrf", &csrf), ("stage_id", &stage(&f.pipeline, "Won"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    // And a deal of Globex's own cannot be put in Acme's pipeline from the form.
    let c = contact(&f.app, t, "+447700900104", "Gil").await;
    let mut form: Vec<(&str, String)> = vec![
        ("csrf", csrf.clone()),
        ("title", "Cross".into()),
        ("value", "1".into()),
        ("currency", "EUR".into()),
        ("contact_id", c),
        ("pipeline_id", pid.to_owned()),
        ("stage_id", stage(&f.pipeline, "Lead")),
    ];
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.post_form("/deals/new", &refs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("must be a pipeline of this tenant"),
        "{}",
        r.text
    );
    // Acme's contact with Globex's pipeline: the field says so.
    let gpl = pipeline(&f.app, t).await;
    form[5].1 = gpl["id"].as_str().unwrap().to_owned();
    form[6].1 = stage(&gpl, "Lead");
    form[4].1 = f.deal["contact_id"].as_str().unwrap().to_owned();
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.post_form("/deals/new", &refs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.text.contains("must be a contact of this tenant"),
        "{}",
        r.text
    );
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["stage_id"], stage(&f.pipeline, "Lead").as_str());
    let theirs = f.app.get("/api/v1/deals", t).await;
    assert_eq!(theirs.body["data"].as_array().unwrap().len(), 0);
}

async fn who_may_open_the_pages_and_move_deals(db: Db) {
    let f = fixture(db).await;
    let id = f.deal["id"].as_str().unwrap();
    let qualified = stage(&f.pipeline, "Qualified");
    let lead = stage(&f.pipeline, "Lead");

    // An agent works deals: the board with its forms, the new deal form, a move.
    let agent = f.app.add_user(&f.owner, "bo@acme.example", "agent").await;
    let mut b = browser(&f.app, &agent.access_token);
    let board = b.get("/deals").await;
    assert_eq!(board.status, StatusCode::OK);
    assert!(board.text.contains("Fleet renewal"));
    assert!(board.text.contains(r#"href="/deals/new?pipeline="#));
    assert!(board.text.contains("data-move"));
    assert!(
        board.text.contains(r#"href="/deals""#),
        "Deals in the navigation"
    );
    assert!(
        !board.text.contains(r#"href="/security/alerts""#),
        "no Security for agents"
    );
    assert_eq!(b.get("/deals/new").await.status, StatusCode::OK);
    let csrf = board.form_token();
    let r = b
        .post_form(
            &format!("/deals/{id}/move"),
            &[("csrf", &csrf), ("stage_id", &qualified)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["stage_id"], qualified.as_str());

    // A read-only impersonation sees the pages; its moves are refused as the API refuses them.
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
    let mut b = browser(&f.app, &imp);
    for path in ["/deals".to_owned(), format!("/deals/{id}")] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(p.text.contains("read-only"), "the banner on {path}");
    }
    let csrf = b.get("/deals").await.form_token();
    let r = b
        .post_form(
            &format!("/deals/{id}/move"),
            &[("csrf", &csrf), ("stage_id", &lead)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(
        r.text.contains("this impersonation is read-only"),
        "{}",
        r.text
    );
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["stage_id"], qualified.as_str(), "not moved");

    // A super admin outside any tenant has no deals.
    let (status, _) = page(&f.app, &root.access_token, "/deals").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Signed out: sent to sign in, and a move changes nothing.
    let mut anon = Browser::new(&f.app);
    let r = anon.get("/deals?pipeline=x").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login?next="), "{}", r.location());
    let r = anon
        .post_form(
            &format!("/deals/{id}/move"),
            &[("csrf", &csrf), ("stage_id", &lead)],
        )
        .await;
    assert!(
        r.status == StatusCode::SEE_OTHER || r.status == StatusCode::UNAUTHORIZED,
        "{}",
        r.status
    );
    let d = f
        .app
        .get(&format!("/api/v1/deals/{id}"), &f.owner.access_token)
        .await;
    assert_eq!(d.body["stage_id"], qualified.as_str(), "not moved");
}
