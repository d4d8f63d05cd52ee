//! Exports: CSV and JSON Lines streamed to admins, audited and limited.

use super::create;
use crate::support::audit_count;
use palisade_testkit::{spawn_app, Db};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(exports_stream_csv_and_jsonl,);

async fn exports_stream_csv_and_jsonl(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = &owner.access_token;
    create(
        &app,
        t,
        json!({"phone": "+447700900123", "name": "=HYPERLINK(\"x\")", "tags": ["vip", "b2b"],
               "custom_attributes": {"plan": "gold"}, "marketing_opt_in": false}),
    )
    .await;
    create(
        &app,
        t,
        json!({"phone": "+15550100199", "name": "Bo \"Bear\""}),
    )
    .await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            let r = app
                .client
                .get(app.url(path))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
            let disp = r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_owned();
            (ctype, disp, r.text().await.unwrap())
        }
    };
    let (ctype, disp, csv) = get("/api/v1/contacts/export?format=csv").await;
    assert_eq!(ctype, "text/csv; charset=utf-8");
    assert!(disp.contains("contacts.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,phone,name,"));
    assert!(
        lines[1].contains("\"+15550100199\",\"Bo \"\"Bear\"\"\""),
        "{csv}"
    );
    assert!(
        lines[2].contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "formulas are neutralised: {csv}"
    );
    assert!(lines[2].contains("\"vip;b2b\""), "{csv}");
    assert!(
        lines[2].contains("\"{\"\"plan\"\":\"\"gold\"\"}\""),
        "{csv}"
    );
    assert!(lines[2].contains("\"api\""), "opt-out source: {csv}");

    let (ctype, _, jsonl) = get("/api/v1/contacts/export?format=jsonl&tag=vip").await;
    assert_eq!(ctype, "application/x-ndjson");
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["phone"], "+447700900123");
    assert_eq!(rows[0]["opted_out"], true);
    assert_eq!(rows[0]["custom_attributes"], json!({"plan": "gold"}));
    let (_, _, none) = get("/api/v1/contacts/export?format=jsonl&opted_out=false&q=nobody").await;
    assert!(none.is_empty());
    assert_eq!(audit_count(&app, "contact.exported").await, 3);
    let rec = app
        .get("/api/v1/audit-logs?action=contact.exported", t)
        .await;
    assert_eq!(rec.body["data"][1]["metadata"]["format"], "jsonl");
    assert_eq!(rec.body["data"][1]["metadata"]["tag"], "vip");
}
