//! The audit log: hash chains that reveal tampering, search, export.

use palisade_testkit::{spawn_app, Db, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::json;

both!(
    an_untouched_log_verifies,
    edits_deletions_insertions_and_reorders_are_reported,
    audit_search_is_scoped_filtered_and_paginated,
    audit_export_streams_is_audited_and_limited,
    an_audit_record_is_the_same_in_the_api_and_both_exports
);

async fn problems(app: &TestApp, tenant: &str) -> Vec<String> {
    let reports = palisade_core::audit::log::verify(
        &app.services.store,
        Some(palisade_domain::TenantId::from(
            tenant.parse::<uuid::Uuid>().unwrap(),
        )),
    )
    .await
    .unwrap();
    reports.into_iter().flat_map(|r| r.problems).collect()
}

/// Lets the owner rewrite history: on SQLite the append-only triggers must go first (on
/// PostgreSQL the owner is a superuser, which the application role is not).
async fn allow_tampering(app: &TestApp) {
    if app.db.kind() == Db::Sqlite {
        app.db
            .execute_as_owner("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .await
            .unwrap();
    }
}

fn uuid_sql(app: &TestApp, id: &str) -> String {
    match app.db.kind() {
        Db::Sqlite => format!("X'{}'", id.replace('-', "")),
        Db::Postgres => format!("'{id}'::uuid"),
    }
}

async fn busy_tenant(app: &TestApp) -> palisade_testkit::Session {
    let owner = app.register("Acme", "owner@acme.example").await;
    for i in 0..3 {
        app.add_user(&owner, &format!("agent{i}@acme.example"), "agent")
            .await;
    }
    owner
}

fn cli_verify(app: &TestApp, tenant: Option<&str>) -> std::process::Output {
    let url = match &app.db {
        TestDb::Sqlite { url } => url.clone(),
        TestDb::Postgres { admin_url, .. } => admin_url.clone(),
    };
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"));
    cmd.args(["audit", "verify"])
        .env("PALISADE_DATABASE_URL", url)
        .env("PALISADE_LOG", "error");
    if let Some(t) = tenant {
        cmd.args(["--tenant", t]);
    }
    cmd.output().unwrap()
}

async fn an_untouched_log_verifies(db: Db) {
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    assert!(problems(&app, &owner.tenant_id).await.is_empty());
    let out = cli_verify(&app, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
    // Records are chained 1..n.
    let n = app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE tenant_id = {}",
            uuid_sql(&app, &owner.tenant_id)
        ))
        .await
        .unwrap();
    let max = app
        .db
        .count_as_owner(&format!(
            "SELECT MAX(seq) FROM audit_log WHERE tenant_id = {}",
            uuid_sql(&app, &owner.tenant_id)
        ))
        .await
        .unwrap();
    assert!(
        n >= 7,
        "registration, three creations and four logins are recorded: {n}"
    );
    assert_eq!(n, max);
}

async fn edits_deletions_insertions_and_reorders_are_reported(db: Db) {
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let t = uuid_sql(&app, &owner.tenant_id);
    allow_tampering(&app).await;

    // An edit.
    app.db.execute_as_owner(&format!("UPDATE audit_log SET actor_email = 'someone@else.example' WHERE tenant_id = {t} AND seq = 2")).await.unwrap();
    let p = problems(&app, &owner.tenant_id).await;
    assert!(
        p.iter()
            .any(|x| x.contains("record 2") && x.contains("edited")),
        "{p:?}"
    );
    let out = cli_verify(&app, Some(&owner.tenant_id));
    assert!(!out.status.success(), "verify must exit non-zero");
    assert!(String::from_utf8_lossy(&out.stdout).contains("edited"));

    // A deletion in the middle.
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let t = uuid_sql(&app, &owner.tenant_id);
    allow_tampering(&app).await;
    app.db
        .execute_as_owner(&format!(
            "DELETE FROM audit_log WHERE tenant_id = {t} AND seq = 3"
        ))
        .await
        .unwrap();
    let p = problems(&app, &owner.tenant_id).await;
    assert!(
        p.iter()
            .any(|x| x.contains("3..3") && x.contains("deleted")),
        "{p:?}"
    );

    // The newest record deleted: only the chain head can tell.
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let t = uuid_sql(&app, &owner.tenant_id);
    allow_tampering(&app).await;
    app.db.execute_as_owner(&format!("DELETE FROM audit_log WHERE tenant_id = {t} AND seq = (SELECT MAX(seq) FROM audit_log WHERE tenant_id = {t})")).await.unwrap();
    let p = problems(&app, &owner.tenant_id).await;
    assert!(
        p.iter().any(|x| x.contains("newest records deleted")),
        "{p:?}"
    );

    // Two records swapped.
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let t = uuid_sql(&app, &owner.tenant_id);
    allow_tampering(&app).await;
    app.db
        .execute_as_owner(&format!(
            "UPDATE audit_log SET seq = -1 WHERE tenant_id = {t} AND seq = 2;
             UPDATE audit_log SET seq = 2 WHERE tenant_id = {t} AND seq = 3;
             UPDATE audit_log SET seq = 3 WHERE tenant_id = {t} AND seq = -1;"
        ))
        .await
        .unwrap();
    let p = problems(&app, &owner.tenant_id).await;
    assert!(
        p.iter().any(|x| x.contains("inserted or reordered")),
        "{p:?}"
    );

    // A forged record inserted at the end with a plausible position.
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let t = uuid_sql(&app, &owner.tenant_id);
    let new_id = uuid_sql(&app, &uuid::Uuid::now_v7().to_string());
    let now = match db {
        Db::Sqlite => "'2026-01-01 00:00:00.0+00:00'",
        Db::Postgres => "now()",
    };
    app.db
        .execute_as_owner(&format!(
            "INSERT INTO audit_log (id, tenant_id, created_at, action, metadata, chain_id, seq, prev_hash, hash)
             SELECT {new_id}, tenant_id, {now}, 'user.created', '{{}}', chain_id, seq + 1, hash, 'forged'
             FROM audit_log WHERE tenant_id = {t} AND seq = (SELECT MAX(seq) FROM audit_log WHERE tenant_id = {t})"
        ))
        .await
        .unwrap();
    let p = problems(&app, &owner.tenant_id).await;
    assert!(
        p.iter().any(|x| x.contains("edited")) && p.iter().any(|x| x.contains("head")),
        "{p:?}"
    );
}

async fn audit_search_is_scoped_filtered_and_paginated(db: Db) {
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let other = app.register("Other", "owner@other.example").await;
    let r = app
        .get("/api/v1/audit-logs?limit=500", &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let data = r.body["data"].as_array().unwrap();
    assert!(
        data.iter()
            .all(|x| x["tenant_id"] == owner.tenant_id.as_str()),
        "only the caller's tenant"
    );
    assert!(data.iter().any(|x| x["action"] == "tenant.registered"));
    let ids: Vec<&str> = data.iter().map(|x| x["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    // Filters.
    let r = app
        .get(
            "/api/v1/audit-logs?action=user.created",
            &owner.access_token,
        )
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3);
    let r = app
        .get(
            "/api/v1/audit-logs?action=auth.login.*",
            &owner.access_token,
        )
        .await;
    assert!(r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["action"].as_str().unwrap().starts_with("auth.login.")));
    let r = app
        .get("/api/v1/audit-logs?q=AGENT1%40acme", &owner.access_token)
        .await;
    assert!(
        !r.body["data"].as_array().unwrap().is_empty(),
        "free text is case-insensitive"
    );
    let r = app
        .get(
            &format!(
                "/api/v1/audit-logs?actor_id={}&target_type=user",
                owner.user_id
            ),
            &owner.access_token,
        )
        .await;
    assert!(r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["actor_id"] == owner.user_id.as_str() && x["target_type"] == "user"));

    // Cursor pagination: pages of 2 cover everything once, even with inserts in between.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit-logs?limit=2&cursor={c}"),
            None => "/api/v1/audit-logs?limit=2".to_owned(),
        };
        let r = app.get(&path, &owner.access_token).await;
        for x in r.body["data"].as_array().unwrap() {
            seen.push(x["id"].as_str().unwrap().to_owned());
        }
        if seen.len() == 2 {
            app.add_user(&owner, "late@acme.example", "agent").await;
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no record twice");
    assert_eq!(
        seen.len(),
        ids.len(),
        "every record that existed at the start, once"
    );

    // Refusals.
    let agent = app
        .login("agent0@acme.example", palisade_testkit::GOOD_PASSWORD)
        .await;
    assert_eq!(
        app.get("/api/v1/audit-logs", &agent.access_token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/audit-logs?limit=0", &owner.access_token)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/api/v1/audit-logs?from=yesterday", &owner.access_token)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // A tenant admin cannot widen the view with tenant_id.
    let r = app
        .get(
            &format!("/api/v1/audit-logs?tenant_id={}", other.tenant_id),
            &owner.access_token,
        )
        .await;
    assert!(r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["tenant_id"] == owner.tenant_id.as_str()));

    // Super admins see every tenant and can narrow to one.
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .get(
            &format!("/api/v1/audit-logs?tenant_id={}&limit=500", other.tenant_id),
            &root.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let data = r.body["data"].as_array().unwrap();
    assert!(
        !data.is_empty()
            && data
                .iter()
                .all(|x| x["tenant_id"] == other.tenant_id.as_str())
    );
}

async fn audit_export_streams_is_audited_and_limited(db: Db) {
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let r = app
        .client
        .get(app.url("/api/v1/audit-logs/export?format=csv"))
        .bearer_auth(&owner.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("id,created_at,tenant_id"));
    assert!(text.contains("\"tenant.registered\""));
    let r = app
        .client
        .get(app.url("/api/v1/audit-logs/export?format=jsonl"))
        .bearer_auth(&owner.access_token)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["tenant_id"], owner.tenant_id.as_str());
    }
    let exported = app
        .get(
            "/api/v1/audit-logs?action=audit_log.exported",
            &owner.access_token,
        )
        .await;
    assert_eq!(
        exported.body["data"].as_array().unwrap().len(),
        2,
        "each export is itself audited"
    );
    assert_eq!(
        app.get("/api/v1/audit-logs/export?format=xml", &owner.access_token)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    for _ in 0..8 {
        assert_eq!(
            app.get(
                "/api/v1/audit-logs/export?format=jsonl",
                &owner.access_token
            )
            .await
            .status,
            StatusCode::OK
        );
    }
    let r = app
        .get(
            "/api/v1/audit-logs/export?format=jsonl",
            &owner.access_token,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the 11th export in an hour is refused"
    );
    assert!(r.header("retry-after").is_some());
    let agent = app
        .login("agent0@acme.example", palisade_testkit::GOOD_PASSWORD)
        .await;
    assert_eq!(
        app.get("/api/v1/audit-logs/export?format=csv", &agent.access_token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let _ = json!({});
}

/// One audit record is one JSON object wherever it leaves the server: a JSON Lines export line
/// equals the search answer's record, and the CSV row has the same values column by column.
async fn an_audit_record_is_the_same_in_the_api_and_both_exports(db: Db) {
    let app = spawn_app(db).await;
    let owner = busy_tenant(&app).await;
    let export = |format: &'static str| {
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            let r = app
                .client
                .get(app.url(&format!("/api/v1/audit-logs/export?format={format}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let jsonl = export("jsonl").await;
    let csv = export("csv").await;
    // Each export's own record is written before it streams; searched after both, the log
    // holds both.
    let searched = app
        .get("/api/v1/audit-logs?limit=500", &owner.access_token)
        .await;
    assert_eq!(searched.status, StatusCode::OK);
    let by_id: std::collections::HashMap<String, serde_json::Value> = searched.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();

    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 5, "{jsonl}");
    for line in &lines {
        let id = line["id"].as_str().unwrap();
        assert_eq!(Some(line), by_id.get(id), "the JSON Lines record {id}");
    }
    assert_eq!(
        lines.len() + 1,
        by_id.len(),
        "every record but the CSV export's"
    );

    let mut rows = csv.lines();
    let header: Vec<String> = crate::contacts::csv_fields(rows.next().unwrap());
    let rows: Vec<Vec<String>> = rows.map(crate::contacts::csv_fields).collect();
    assert_eq!(
        rows.len(),
        by_id.len(),
        "every record, its own export's too"
    );
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{row:?}");
        let record = &by_id[row[0].as_str()];
        for (column, value) in header.iter().zip(row) {
            let expected = match &record[column.as_str()] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            assert_eq!(value, &expected, "column {column} of {}", row[0]);
        }
    }
}
