//! The console's security alerts page (`/security/alerts`) over plain HTTP: the metrics, the
//! table and its filters, the Acknowledge and Resolve forms (against the API), and who may see
//! it (admins their tenant, super admins every tenant with a tenant column, agents a `403`,
//! a read-only impersonation without the actions). The browser suite drives the forms.

use crate::console::signed_in_page as page;
use crate::support::create_user;
use palisade_testkit::{spawn_app, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    admins_see_their_alerts_with_metrics_filters_and_actions,
    agents_are_refused_and_super_admins_see_every_tenant,
);

/// A privilege escalation alert in `owner`'s tenant (a user made admin), once it is raised.
async fn escalation(app: &TestApp, owner: &Session, email: &str) -> Value {
    let user = create_user(app, owner, email, "agent").await;
    let r = app
        .patch(
            &format!("/api/v1/users/{user}"),
            &owner.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let started = std::time::Instant::now();
    loop {
        let r = app
            .get(
                "/api/v1/security/alerts?rule=privilege_escalation",
                &owner.access_token,
            )
            .await;
        if let Some(a) = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["subject"]["id"] == user.as_str())
        {
            return a.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admins_see_their_alerts_with_metrics_filters_and_actions(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let (status, empty) = page(&app, t, "/security/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No security alerts"), "{empty}");
    assert!(empty.contains(r#"href="/security/alerts" aria-current="page""#));

    let a = escalation(&app, &owner, "cy@acme.example").await;
    let id = a["id"].as_str().unwrap();
    let (status, html) = page(&app, t, "/security/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<h1>").count(), 1);
    assert!(
        html.contains(r#"<td data-label="Rule">Privilege escalation</td>"#),
        "{html}"
    );
    assert!(html.contains(&format!(
        r#"<span class="badge badge-severity-{0}">{0}</span>"#,
        a["severity"].as_str().unwrap()
    )));
    assert!(html.contains("cy@acme.example"), "the subject");
    assert!(
        !html.contains("<th scope=\"col\">Tenant</th>"),
        "one tenant"
    );
    assert!(html.contains(&format!(
        r#"data-api="POST /api/v1/security/alerts/{id}/acknowledge""#
    )));
    assert!(html.contains(&format!(
        r#"data-api="POST /api/v1/security/alerts/{id}/resolve""#
    )));
    assert!(html.contains(">Note (optional)</label>"));
    assert!(
        html.contains("<dt>Unresolved alerts</dt><dd>1</dd>"),
        "{html}"
    );
    for label in ["Status", "Severity", "Rule"] {
        assert!(html.contains(&format!(">{label}</label>")), "{label}");
    }

    // Filters: nothing resolved yet; an unknown value is the API's 400, said on the page.
    let (status, none) = page(&app, t, "/security/alerts?status=resolved").await;
    assert_eq!(status, StatusCode::OK);
    assert!(none.contains("No alerts match"));
    assert!(none.contains(r#"<option value="resolved" selected>"#));
    let (status, bad) = page(&app, t, "/security/alerts?severity=%3Cb%3Ebad").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad.contains("severity must be one of"), "{bad}");
    assert!(!bad.contains("<b>bad"));
    let (status, _) = page(&app, t, "/security/alerts?cursor=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // What the forms send: acknowledged, the page offers only Resolve; resolved, neither.
    let r = app
        .post(
            &format!("/api/v1/security/alerts/{id}/acknowledge"),
            Some(t),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (_, html) = page(&app, t, "/security/alerts").await;
    assert!(html.contains(r#"<span class="badge badge-alert-acknowledged">acknowledged</span>"#));
    assert!(!html.contains("/acknowledge\""), "{html}");
    assert!(html.contains("/resolve\""));
    let r = app
        .post(
            &format!("/api/v1/security/alerts/{id}/resolve"),
            Some(t),
            json!({"note": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (_, html) = page(&app, t, "/security/alerts?status=resolved").await;
    assert!(html.contains("badge-alert-resolved"));
    assert!(!html.contains("/resolve\""));
    assert!(html.contains("<dt>Unresolved alerts</dt><dd>0</dd>"));
}

async fn agents_are_refused_and_super_admins_see_every_tenant(db: Db) {
    let app = spawn_app(db).await;
    let acme = app.register("Acme", "ana@acme.example").await;
    let globex = app.register("Globex <Corp>", "gil@globex.example").await;
    escalation(&app, &acme, "cy@acme.example").await;
    escalation(&app, &globex, "gus@globex.example").await;

    let agent = app.add_user(&acme, "bo@acme.example", "agent").await;
    let (status, body) = page(&app, &agent.access_token, "/security/alerts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains("cy@acme.example"));

    // Each admin sees their own tenant's alert only.
    let (_, html) = page(&app, &globex.access_token, "/security/alerts").await;
    assert!(html.contains("gus@globex.example"));
    assert!(!html.contains("cy@acme.example"));

    let root = app.super_admin("root@platform.example").await;
    let (status, html) = page(&app, &root.access_token, "/security/alerts").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<th scope=\"col\">Tenant</th>"));
    assert!(
        html.contains(r#"<td data-label="Tenant">Acme</td>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td data-label="Tenant">Globex &#60;Corp&#62;</td>"#),
        "escaped"
    );
    assert!(html.contains("cy@acme.example") && html.contains("gus@globex.example"));
    assert!(html.contains(r#"href="/security/alerts" aria-current="page""#));
    assert!(!html.contains(r#"href="/deals""#), "no tenant, no deals");

    // A read-only impersonation of Acme's owner: Acme's alerts, no actions (as in the API).
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", acme.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #9", "write": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let imp = r.body["access_token"].as_str().unwrap();
    let (status, html) = page(&app, imp, "/security/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("cy@acme.example"));
    assert!(!html.contains("gus@globex.example"));
    assert!(!html.contains("/acknowledge\"") && !html.contains("/resolve\""));
}
