//! Pipelines and deals: the default pipeline, pipeline CRUD with ordered stages, deal CRUD with
//! every refusal, stage moves recorded in the history with their events, filters and pages,
//! another tenant's ids, API key scopes and roles, and concurrent moves.

use crate::support::subscribe_webhook;
use palisade_testkit::{spawn_app, spawn_app_with, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    a_new_tenant_has_the_default_pipeline_and_pipelines_are_managed,
    deals_are_created_moved_with_history_and_events_and_deleted,
    bad_deals_and_pipelines_are_refused,
    another_tenants_ids_are_not_found_or_refused,
    scopes_and_roles_decide_who_works_deals,
    deals_are_filtered_and_paged,
    concurrent_stage_moves_are_all_recorded,
    a_pipeline_deleted_while_a_deal_is_created_in_it_is_one_or_the_other,
);

async fn contact(app: &TestApp, t: &str, phone: &str) -> String {
    let r = app
        .post("/api/v1/contacts", Some(t), json!({"phone": phone}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn default_pipeline(app: &TestApp, t: &str) -> Value {
    let r = app.get("/api/v1/pipelines", t).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"][0].clone()
}

/// The id of the stage named `name` in `pipeline`.
fn stage(pipeline: &Value, name: &str) -> String {
    pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {pipeline}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn deal(app: &TestApp, t: &str, body: Value) -> Value {
    let r = app.post("/api/v1/deals", Some(t), body).await;
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

async fn a_new_tenant_has_the_default_pipeline_and_pipelines_are_managed(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let r = app.get("/api/v1/pipelines", t).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.body);
    let default = &r.body["data"][0];
    assert_eq!(default["is_default"], true);
    let kinds: Vec<&str> = default["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["open", "open", "open", "open", "won", "lost"]);
    let positions: Vec<i64> = default["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);

    // A tenant older than pipelines (its default row removed here) gets one on its first read.
    for sql in ["DELETE FROM pipeline_stages", "DELETE FROM pipelines"] {
        app.db.execute_as_owner(sql).await.unwrap();
    }
    let again = app.get("/api/v1/pipelines", t).await;
    assert_eq!(again.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(again.body["data"][0]["is_default"], true);
    assert_eq!(app.get("/api/v1/pipelines", t).await.body, again.body);

    let created = app
        .post(
            "/api/v1/pipelines",
            Some(t),
            json!({"name": "Renewals", "stages": [
                {"name": "Due", "probability": 60, "kind": "open"},
                {"name": "Renewed", "probability": 100, "kind": "won", "position": 1},
                {"name": "Churned", "probability": 0, "kind": "lost"},
            ]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["is_default"], false);
    let path = format!("/api/v1/pipelines/{}", created.body["id"].as_str().unwrap());
    assert_eq!(app.get(&path, t).await.body, created.body);

    // Reorder, rename one, drop one, add one: kept stages keep their ids.
    let due = stage(&created.body, "Due");
    let renewed = stage(&created.body, "Renewed");
    let patched = app
        .patch(
            &path,
            t,
            json!({"name": "Renewals 2027", "stages": [
                {"id": renewed, "name": "Renewed", "probability": 100, "kind": "won"},
                {"id": due, "name": "Due soon", "probability": 70, "kind": "open"},
                {"name": "Lost", "probability": 0, "kind": "lost"},
            ]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["name"], "Renewals 2027");
    let stages = patched.body["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[0]["id"], renewed.as_str());
    assert_eq!(stages[0]["position"], 0);
    assert_eq!(stages[1]["id"], due.as_str());
    assert_eq!(stages[1]["name"], "Due soon");
    assert_eq!(stages[1]["probability"], 70);
    assert_eq!(stages[2]["name"], "Lost");
    assert_eq!(app.get(&path, t).await.body, patched.body);
    assert_eq!(
        app.get("/api/v1/pipelines", t).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, t).await.status, StatusCode::NOT_FOUND);
    // The last pipeline stays.
    let last = format!(
        "/api/v1/pipelines/{}",
        again.body["data"][0]["id"].as_str().unwrap()
    );
    let r = app.delete(&last, t).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "last_pipeline");
    let audited = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action IN
             ('pipeline.created', 'pipeline.updated', 'pipeline.deleted')",
        )
        .await
        .unwrap();
    // The lazily created default, the new pipeline, its change and its deletion.
    assert_eq!(audited, 4);
}

async fn deals_are_created_moved_with_history_and_events_and_deleted(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    subscribe_webhook(&app, t, "deal.*").await;
    let c = contact(&app, t, "+447700900123").await;
    let pl = default_pipeline(&app, t).await;
    let d = deal(
        &app,
        t,
        json!({"title": "50 seats", "value_minor": 125000, "currency": "eur",
               "contact_id": c, "pipeline_id": pl["id"], "owner_id": owner.user_id,
               "expected_close_date": "2027-01-31"}),
    )
    .await;
    assert_eq!(d["currency"], "EUR");
    assert_eq!(d["value_minor"], 125000);
    assert_eq!(d["stage_id"], stage(&pl, "Lead").as_str());
    assert_eq!(d["status"], "open");
    assert_eq!(d["owner_id"], owner.user_id.as_str());
    assert_eq!(d["expected_close_date"], "2027-01-31");
    let path = format!("/api/v1/deals/{}", d["id"].as_str().unwrap());
    assert_eq!(app.get(&path, t).await.body, d);

    let r = app
        .patch(
            &path,
            t,
            json!({"title": "60 seats", "value_minor": 150000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["title"], "60 seats");
    let r = app
        .patch(&path, t, json!({"stage_id": stage(&pl, "Proposal")}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "open");
    let r = app
        .patch(&path, t, json!({"stage_id": stage(&pl, "Won")}))
        .await;
    assert_eq!(r.body["status"], "won", "{}", r.body);
    let r = app
        .patch(
            &path,
            t,
            json!({"stage_id": stage(&pl, "Lost"), "lost_reason": "went with a competitor"}),
        )
        .await;
    assert_eq!(r.body["status"], "lost", "{}", r.body);
    assert_eq!(r.body["lost_reason"], "went with a competitor");
    // Nothing changes: nothing is written or emitted.
    let same = app
        .patch(&path, t, json!({"stage_id": stage(&pl, "Lost")}))
        .await;
    assert_eq!(same.body, r.body);

    let h = app.get(&format!("{path}/history"), t).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    let h = h.body["data"].as_array().unwrap().clone();
    let moves: Vec<(Value, Value)> = h
        .iter()
        .map(|c| (c["from_stage_name"].clone(), c["to_stage_name"].clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (Value::Null, json!("Lead")),
            (json!("Lead"), json!("Proposal")),
            (json!("Proposal"), json!("Won")),
            (json!("Won"), json!("Lost")),
        ]
    );
    for c in &h {
        assert_eq!(c["changed_by"], owner.user_id.as_str());
        assert!(c["changed_at"].as_str().is_some());
    }
    assert_eq!(h[2]["to_stage_kind"], "won");

    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{path}/history"), t).await.status,
        StatusCode::NOT_FOUND
    );

    let count = |sql: String| {
        let app = &app;
        async move { app.db.count_as_owner(&sql).await.unwrap() }
    };
    for (event, n) in [
        ("deal.created", 1),
        ("deal.updated", 2),
        ("deal.stage_changed", 3),
        ("deal.won", 1),
        ("deal.lost", 1),
        ("deal.deleted", 1),
    ] {
        assert_eq!(
            count(format!(
                "SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = '{event}'"
            ))
            .await,
            n,
            "{event}"
        );
    }
    // The won event carries the deal and the move.
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE event_type = 'deal.won'
             AND CAST(payload AS TEXT) LIKE '%stage_change%' AND CAST(payload AS TEXT) LIKE '%60 seats%'"
                .into()
        )
        .await,
        1
    );
    for (action, n) in [
        ("deal.created", 1),
        ("deal.updated", 1),
        ("deal.stage_changed", 3),
        ("deal.deleted", 1),
    ] {
        assert_eq!(
            count(format!(
                "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
            ))
            .await,
            n,
            "{action}"
        );
    }
    // Erasing a contact erases its deals.
    let d2 = deal(
        &app,
        t,
        json!({"title": "x", "value_minor": 1, "currency": "USD", "contact_id": c,
               "pipeline_id": pl["id"]}),
    )
    .await;
    let r = app.delete(&format!("/api/v1/contacts/{c}"), t).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        app.get(&format!("/api/v1/deals/{}", d2["id"].as_str().unwrap()), t)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn bad_deals_and_pipelines_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let c = contact(&app, t, "+447700900123").await;
    let pl = default_pipeline(&app, t).await;
    let other = app
        .post(
            "/api/v1/pipelines",
            Some(t),
            json!({"name": "Other", "stages": [{"name": "A", "probability": 10, "kind": "open"}]}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    let good = json!({"title": "Deal", "value_minor": 100, "currency": "EUR",
                      "contact_id": c, "pipeline_id": pl["id"]});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("currency", json!("EURO")), "currency"),
        (with("currency", json!("XYZ")), "currency"),
        (with("value_minor", json!(-1)), "value_minor"),
        (with("title", json!("  ")), "title"),
        (
            with("stage_id", other.body["stages"][0]["id"].clone()),
            "stage_id",
        ),
        (
            with("contact_id", json!(uuid::Uuid::now_v7())),
            "contact_id",
        ),
        (
            with("pipeline_id", json!(uuid::Uuid::now_v7())),
            "pipeline_id",
        ),
        (with("owner_id", json!(uuid::Uuid::now_v7())), "owner_id"),
        (
            with("expected_close_date", json!("2027-02-30")),
            "expected_close_date",
        ),
    ] {
        let r = app.post("/api/v1/deals", Some(t), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert!(
            r.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            r.body
        );
    }
    // Not an integer, or an unknown field: the body is refused whole.
    for body in [
        with("value_minor", json!(1.5)),
        with("colour", json!("red")),
    ] {
        let r = app.post("/api/v1/deals", Some(t), body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    }
    let d = deal(&app, t, good.clone()).await;
    let path = format!("/api/v1/deals/{}", d["id"].as_str().unwrap());
    for (body, field) in [
        (
            json!({"stage_id": other.body["stages"][0]["id"]}),
            "stage_id",
        ),
        (json!({"value_minor": -5}), "value_minor"),
        (json!({"currency": "ABC"}), "currency"),
        (json!({"pipeline_id": other.body["id"]}), "stage_id"),
    ] {
        let r = app.patch(&path, t, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
        assert!(r.body["error"]["fields"][field].is_array(), "{}", r.body);
    }
    assert_eq!(
        app.get(&path, t).await.body,
        d,
        "nothing refused was written"
    );
    // Moving to another pipeline with one of its stages is fine.
    let r = app
        .patch(
            &path,
            t,
            json!({"pipeline_id": other.body["id"], "stage_id": other.body["stages"][0]["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["pipeline_id"], other.body["id"]);

    // A pipeline with deals is not deleted, nor a stage that has some.
    let opath = format!("/api/v1/pipelines/{}", other.body["id"].as_str().unwrap());
    let r = app.delete(&opath, t).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "pipeline_has_deals");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still has 1 deal"),
        "{}",
        r.body
    );
    let r = app
        .patch(
            &opath,
            t,
            json!({"stages": [{"name": "B", "probability": 10, "kind": "open"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "stage_has_deals");
    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&opath, t).await.status, StatusCode::NO_CONTENT);

    // Bad pipelines.
    for body in [
        json!({"name": "P", "stages": []}),
        json!({"name": "P", "stages": [{"name": "A", "probability": 101, "kind": "open"}]}),
        json!({"name": "P", "stages": [{"name": "A", "probability": 1, "kind": "closed"}]}),
        json!({"name": "P", "stages": [{"name": "A", "probability": 1, "kind": "won"}]}),
        json!({"name": "P", "stages": [{"name": "A", "probability": 1, "kind": "open"},
                                       {"name": "a", "probability": 1, "kind": "open"}]}),
        json!({"name": "P", "stages": [{"name": "A", "probability": 1, "kind": "open", "position": 3}]}),
        json!({"name": "", "stages": [{"name": "A", "probability": 1, "kind": "open"}]}),
        json!({"name": "P", "stages": [{"id": uuid::Uuid::now_v7(), "name": "A", "probability": 1, "kind": "open"}]}),
    ] {
        let r = app.post("/api/v1/pipelines", Some(t), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.body
        );
    }
    let r = app.get("/api/v1/deals?status=closed", t).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

async fn another_tenants_ids_are_not_found_or_refused(db: Db) {
    let app = spawn_app(db).await;
    let a = app.register("Acme", "owner@acme.example").await;
    let b = app.register("Bolt", "owner@bolt.example").await;
    let (ta, tb) = (&a.access_token, &b.access_token);
    let ca = contact(&app, ta, "+447700900123").await;
    let pa = default_pipeline(&app, ta).await;
    let da = deal(
        &app,
        ta,
        json!({"title": "A's", "value_minor": 1, "currency": "EUR", "contact_id": ca,
               "pipeline_id": pa["id"]}),
    )
    .await;
    let dpath = format!("/api/v1/deals/{}", da["id"].as_str().unwrap());
    let ppath = format!("/api/v1/pipelines/{}", pa["id"].as_str().unwrap());
    assert_eq!(app.get(&dpath, tb).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{dpath}/history"), tb).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&dpath, tb, json!({"title": "mine"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.delete(&dpath, tb).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&ppath, tb).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.patch(&ppath, tb, json!({"name": "mine"})).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.delete(&ppath, tb).await.status, StatusCode::NOT_FOUND);
    assert!(ids(&app.get("/api/v1/deals", tb).await.body).is_empty());
    let pb = default_pipeline(&app, tb).await;
    assert_ne!(pb["id"], pa["id"]);
    // B cannot put A's contact, owner, pipeline or stage in its deal.
    let cb = contact(&app, tb, "+447700900999").await;
    let good = json!({"title": "B's", "value_minor": 1, "currency": "EUR", "contact_id": cb,
                      "pipeline_id": pb["id"]});
    for (k, v, field) in [
        ("contact_id", json!(ca), "contact_id"),
        ("owner_id", json!(a.user_id), "owner_id"),
        ("pipeline_id", pa["id"].clone(), "pipeline_id"),
        ("stage_id", pa["stages"][0]["id"].clone(), "stage_id"),
    ] {
        let mut body = good.clone();
        body[k] = v;
        let r = app.post("/api/v1/deals", Some(tb), body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{k}: {}",
            r.body
        );
        assert!(r.body["error"]["fields"][field].is_array(), "{}", r.body);
    }
    assert_eq!(app.get(&dpath, ta).await.body, da, "A's deal is untouched");
}

async fn scopes_and_roles_decide_who_works_deals(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let ta = &agent.access_token;
    let c = contact(&app, t, "+447700900123").await;
    let pl = default_pipeline(&app, t).await;
    let body = json!({"title": "D", "value_minor": 1, "currency": "EUR", "contact_id": c,
                      "pipeline_id": pl["id"]});
    // Agents work deals but neither delete them nor manage pipelines.
    let d = deal(&app, ta, body.clone()).await;
    let path = format!("/api/v1/deals/{}", d["id"].as_str().unwrap());
    let r = app
        .patch(&path, ta, json!({"stage_id": stage(&pl, "Won")}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.delete(&path, ta).await.status, StatusCode::FORBIDDEN);
    let ppath = format!("/api/v1/pipelines/{}", pl["id"].as_str().unwrap());
    assert_eq!(app.delete(&ppath, ta).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.patch(&ppath, ta, json!({"name": "X"})).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .post(
            "/api/v1/pipelines",
            Some(ta),
            json!({"name": "X", "stages": [{"name": "A", "probability": 1, "kind": "open"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A key with deals:read reads but cannot write.
    let ro = key(&app, t, json!(["deals:read"])).await;
    assert_eq!(app.get(&path, &ro).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/pipelines", &ro).await.status,
        StatusCode::OK
    );
    let r = app.post("/api/v1/deals", Some(&ro), body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "insufficient_scope");
    let r = app.patch(&path, &ro, json!({"title": "Y"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&path, &ro).await.status, StatusCode::FORBIDDEN);
    // A key without deals:read reads nothing.
    let contacts_only = key(&app, t, json!(["contacts:read"])).await;
    assert_eq!(
        app.get("/api/v1/deals", &contacts_only).await.status,
        StatusCode::FORBIDDEN
    );
    // deals:write creates and moves, with the key in the history; deals:delete deletes.
    let rw = key(&app, t, json!(["deals:write", "deals:delete"])).await;
    let d2 = deal(&app, &rw, body.clone()).await;
    let p2 = format!("/api/v1/deals/{}", d2["id"].as_str().unwrap());
    let r = app
        .patch(&p2, &rw, json!({"stage_id": stage(&pl, "Qualified")}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let h = app.get(&format!("{p2}/history"), t).await.body;
    assert!(h["data"][1]["api_key_id"].is_string(), "{h}");
    assert_eq!(app.delete(&p2, &rw).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
}

async fn deals_are_filtered_and_paged(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let c1 = contact(&app, t, "+447700900001").await;
    let c2 = contact(&app, t, "+447700900002").await;
    let pl = default_pipeline(&app, t).await;
    let mut made = Vec::new();
    for (i, (c, owner_id, st)) in [
        (&c1, &owner.user_id, "Lead"),
        (&c1, &agent.user_id, "Won"),
        (&c2, &owner.user_id, "Lost"),
        (&c2, &agent.user_id, "Lead"),
        (&c1, &owner.user_id, "Proposal"),
    ]
    .into_iter()
    .enumerate()
    {
        let d = deal(
            &app,
            t,
            json!({"title": format!("D{i}"), "value_minor": 100 * i, "currency": "EUR",
                   "contact_id": c, "pipeline_id": pl["id"], "owner_id": owner_id,
                   "stage_id": stage(&pl, st)}),
        )
        .await;
        made.push(d["id"].as_str().unwrap().to_owned());
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let pick =
        |idx: &[usize]| -> Vec<String> { idx.iter().rev().map(|i| made[*i].clone()).collect() };
    let list = |q: String| {
        let app = &app;
        async move {
            let r = app.get(&format!("/api/v1/deals{q}"), t).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            ids(&r.body)
        }
    };
    assert_eq!(list(String::new()).await, newest_first);
    assert_eq!(
        list(format!("?pipeline_id={}", pl["id"].as_str().unwrap())).await,
        newest_first
    );
    assert_eq!(list(format!("?contact_id={c1}")).await, pick(&[0, 1, 4]));
    assert_eq!(
        list(format!("?owner_id={}", agent.user_id)).await,
        pick(&[1, 3])
    );
    assert_eq!(
        list(format!("?stage_id={}", stage(&pl, "Lead"))).await,
        pick(&[0, 3])
    );
    assert_eq!(list("?status=open".into()).await, pick(&[0, 3, 4]));
    assert_eq!(list("?status=won".into()).await, pick(&[1]));
    assert_eq!(list("?status=lost".into()).await, pick(&[2]));
    assert_eq!(
        list(format!(
            "?status=open&owner_id={}&contact_id={c1}",
            owner.user_id
        ))
        .await,
        pick(&[0, 4])
    );
    // Pages of two.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/deals?limit=2&cursor={c}"),
            None => "/api/v1/deals?limit=2".into(),
        };
        let r = app.get(&q, t).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = ids(&r.body);
        assert!(page.len() <= 2);
        seen.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
}

/// Moves sent at once, each to another stage, are all recorded: the history is one chain
/// (each move's `from` is the previous one's `to`), ending at the deal's stage.
async fn concurrent_stage_moves_are_all_recorded(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let c = contact(&app, t, "+447700900123").await;
    let pl = default_pipeline(&app, t).await;
    let d = deal(
        &app,
        t,
        json!({"title": "D", "value_minor": 1, "currency": "EUR", "contact_id": c,
               "pipeline_id": pl["id"]}),
    )
    .await;
    let path = format!("/api/v1/deals/{}", d["id"].as_str().unwrap());
    // Every move goes to another stage, none of them Lead (the start), so whatever order they
    // land in each one changes the stage.
    let targets = ["Qualified", "Proposal", "Negotiation", "Won", "Lost"];
    let moves = targets.iter().map(|st| {
        let body = json!({"stage_id": stage(&pl, st)});
        let app = &app;
        let path = &path;
        async move { app.patch(path, t, body).await }
    });
    let answers = futures_util::future::join_all(moves).await;
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let now = app.get(&path, t).await.body;
    let h = app.get(&format!("{path}/history"), t).await.body;
    let h = h["data"].as_array().unwrap();
    assert_eq!(h.len(), targets.len() + 1, "{h:?}");
    assert_eq!(h[0]["from_stage_id"], Value::Null);
    for w in h.windows(2) {
        assert_eq!(w[1]["from_stage_id"], w[0]["to_stage_id"], "{h:?}");
    }
    assert_eq!(h.last().unwrap()["to_stage_id"], now["stage_id"]);
    let mut reached: Vec<&str> = h[1..]
        .iter()
        .map(|c| c["to_stage_name"].as_str().unwrap())
        .collect();
    reached.sort_unstable();
    let mut expected = targets.to_vec();
    expected.sort_unstable();
    assert_eq!(reached, expected);
    let stage_changed = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM audit_log WHERE action = 'deal.stage_changed'")
        .await
        .unwrap();
    assert_eq!(stage_changed, 5);
}

/// A pipeline deleted while a deal is created in it: either the deal is created and the
/// deletion refused (`409`), or the pipeline is gone and the deal refused (`422`), never a
/// server error.
async fn a_pipeline_deleted_while_a_deal_is_created_in_it_is_one_or_the_other(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    let c = contact(&app, t, "+447700900123").await;
    for round in 0..5 {
        let p = app
            .post(
                "/api/v1/pipelines",
                Some(t),
                json!({"name": format!("P{round}"),
                       "stages": [{"name": "A", "probability": 10, "kind": "open"}]}),
            )
            .await;
        assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
        let path = format!("/api/v1/pipelines/{}", p.body["id"].as_str().unwrap());
        let body = json!({"title": "D", "value_minor": 1, "currency": "EUR", "contact_id": c,
                          "pipeline_id": p.body["id"]});
        let (created, deleted) = tokio::join!(
            app.post("/api/v1/deals", Some(t), body),
            app.delete(&path, t)
        );
        match (created.status, deleted.status) {
            (StatusCode::CREATED, StatusCode::CONFLICT) => {
                assert_eq!(deleted.code(), "pipeline_has_deals");
                let d = format!("/api/v1/deals/{}", created.body["id"].as_str().unwrap());
                assert_eq!(app.delete(&d, t).await.status, StatusCode::NO_CONTENT);
                assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
            }
            (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::NO_CONTENT) => {
                assert!(created.body["error"]["fields"]["pipeline_id"].is_array());
            }
            other => panic!("{other:?}: {} / {}", created.body, deleted.body),
        }
    }
}
