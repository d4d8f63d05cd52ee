//! The console's analytics dashboard (`/analytics`) and store integrations page
//! (`/settings/integrations`) over plain HTTP: what they show (figures, the SVG charts with
//! their accessible name, the tables; a shop's delivery URL and rules, never its secret), every
//! value escaped, the API's `422` next to the field it names, and who may open them (members /
//! admins; an agent, a super admin outside a tenant, an impersonation, another tenant, a
//! signed-out visitor). The browser suite (crates/browser-tests, `analytics.rs`,
//! `integrations.rs`) drives the same pages in Chromium.

use crate::console::{signed_in_page as page, Browser};
use palisade_testkit::{spawn_app, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(
    the_dashboard_shows_figures_charts_and_tables_escaped,
    the_dashboard_shows_refused_values_at_their_fields,
    who_may_open_the_dashboard,
    the_integrations_page_lists_shops_and_rules_never_secrets,
    who_may_open_the_integrations_page,
);

const XSS: &str = "<img src=x onerror=alert(1)>";
const XSS_ESCAPED: &str = "&#60;img src=x onerror=alert(1)&#62;";

async fn the_dashboard_shows_figures_charts_and_tables_escaped(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let r = app
        .patch(
            &format!("/api/v1/users/{}", owner.user_id),
            t,
            json!({ "name": XSS }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let (status, html) = page(&app, t, "/analytics").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<h1>Analytics</h1>"));
    assert!(
        html.contains(r#"href="/analytics" aria-current="page""#),
        "nav"
    );
    for figure in [
        "Messages received",
        "Messages sent",
        "New conversations",
        "Resolved conversations",
        "First response",
        "Resolution time",
        "Deals won",
        "Deals lost",
    ] {
        assert!(html.contains(&format!("<dt>{figure}</dt>")), "{figure}");
    }
    // Two charts, each an image named by its title; nothing yet, so no bars and a sentence.
    assert_eq!(html.matches(r#"role="img""#).count(), 2);
    assert!(html.contains(r#"<title id="messages-chart-title">Messages per day</title>"#));
    assert!(html.contains("No messages in this period"));
    assert_eq!(html.matches("<rect").count(), 0);
    // The last 30 days by default: 30 rows in the table.
    assert_eq!(
        html.matches(r#"<tr><th scope="row">"#).count(),
        30,
        "a row per day"
    );
    assert_eq!(
        html.matches(r#"<tr><th scope="row" data-label="Member">"#)
            .count(),
        1,
        "one member"
    );
    // The member's name is escaped; the default pipeline's stages are listed.
    assert!(!html.contains(XSS));
    assert!(html.contains(XSS_ESCAPED));
    assert!(html.contains("Lead") && html.contains("Won"));

    // A custom range, both days included, by week (2026-03-02 is a Monday).
    let (status, html) = page(
        &app,
        t,
        "/analytics?period=custom&from=2026-03-04&to=2026-03-17&interval=week&tz=Europe/Berlin",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("4 Mar 2026 to 17 Mar 2026 (Europe/Berlin)"),
        "{html}"
    );
    assert!(html.contains("Week of"));
    for week in ["2 Mar 2026", "9 Mar 2026", "16 Mar 2026"] {
        assert!(
            html.contains(&format!(r#"<th scope="row">{week}</th>"#)),
            "{week}"
        );
    }
    assert!(!html.contains("23 Mar 2026"));
    assert!(html.contains(r#"<title id="messages-chart-title">Messages per week</title>"#));
    assert!(html.contains(r#"value="Europe/Berlin""#));
}

async fn the_dashboard_shows_refused_values_at_their_fields(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    for (path, field, message) in [
        (
            "/analytics?tz=Mars/Olympus",
            "tz",
            "must be an IANA time zone name",
        ),
        (
            "/analytics?tz=%3Cscript%3E",
            "tz",
            "must be an IANA time zone name",
        ),
        (
            "/analytics?period=custom&from=2026-03-10&to=2026-03-01",
            "to",
            "must be after from",
        ),
        (
            "/analytics?period=custom&from=2025-01-01&to=2026-03-01",
            "to",
            "at most 366 days",
        ),
        (
            "/analytics?period=custom&from=soon&to=2026-03-01",
            "from",
            "must be an RFC 3339 time",
        ),
        (
            "/analytics?interval=month",
            "interval",
            "must be day or week",
        ),
        (
            "/analytics?period=365",
            "period",
            "must be the last 7, 30 or 90 days",
        ),
        (
            "/analytics?connection=nope",
            "connection",
            "is not a WhatsApp number of your tenant",
        ),
        (
            "/analytics?connection=0b9f0c1e-8d51-4a3e-9f57-3b5d0c6a1e2f",
            "connection",
            "is not a WhatsApp number of your tenant",
        ),
    ] {
        let (status, html) = page(&app, t, path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(html.contains(message), "{path}: {html}");
        assert!(!html.contains("<script>"), "{path}");
        assert!(!html.contains(r#"role="img""#), "{path}: no results");
        if field != "connection" {
            assert!(
                html.contains(&format!(r#"id="{field}-error">"#))
                    && html.contains(r#"aria-invalid="true""#),
                "{path}"
            );
        }
    }
}

async fn who_may_open_the_dashboard(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let (status, html) = page(&app, &agent.access_token, "/analytics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/analytics""#));
    // Only admins may list the numbers: an agent gets no number filter.
    assert!(!html.contains(r#"<label for="connection">"#));

    let root = app.super_admin("root@platform.example").await;
    let (status, _) = page(&app, &root.access_token, "/analytics").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #8", "write": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    let (status, html) = page(&app, &imp, "/analytics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("read-only"), "the banner");

    let mut anon = Browser::new(&app);
    let r = anon.get("/analytics?period=7").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=/analytics%3Fperiod%3D7");
}

async fn the_integrations_page_lists_shops_and_rules_never_secrets(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let t = &owner.access_token;
    let (status, html) = page(&app, t, "/settings/integrations").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("No shops connected yet"));
    assert!(html.contains(r#"href="/settings/integrations" aria-current="page""#));
    assert!(html.contains(r#"data-api="POST /api/v1/integrations""#));

    let created = app
        .post(
            "/api/v1/integrations",
            Some(t),
            json!({"kind": "woocommerce", "name": XSS}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap();
    let secret = created.body["secret"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/integrations/{id}"),
            t,
            json!({"rules": [{"on": "order.created",
                "template": {"name": "order_confirmation", "language": "en_US"},
                "parameters": [{"type": "literal", "value": XSS}, {"type": "order_field", "field": "total"}]}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let (status, html) = page(&app, t, "/settings/integrations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(secret), "the secret is never on the page");
    assert!(!html.contains(XSS), "{html}");
    assert!(html.contains(XSS_ESCAPED));
    assert!(html.contains(created.body["callback_url"].as_str().unwrap()));
    assert!(html.contains(&format!(
        r#"When an order is created, send order_confirmation (en_US) with {{{{1}}}} “{XSS_ESCAPED}”, {{{{2}}}} the order&#39;s total"#
    )), "{html}");
    // Each rule's "Remove" sends the list without it; the rotate and delete forms are there.
    assert!(html.contains(r#"name="rules" data-type="json" value="[]""#));
    assert!(html.contains(&format!(
        r#"data-api="POST /api/v1/integrations/{id}/rotate-secret""#
    )));
    assert!(html.contains(&format!(r#"data-api="DELETE /api/v1/integrations/{id}""#)));
    assert!(html.contains("/static/integrations.js"));

    // Another tenant sees none of it.
    let other = app.register("Globex", "gus@globex.example").await;
    let (status, html) = page(&app, &other.access_token, "/settings/integrations").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No shops connected yet"));
    assert!(!html.contains(id));
}

async fn who_may_open_the_integrations_page(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "bo@acme.example", "agent").await;
    let (status, html) = page(&app, &agent.access_token, "/settings/integrations").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("You can&#39;t open this page"), "{html}");
    let (status, html) = page(&app, &agent.access_token, "/settings/profile").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !html.contains(r#"href="/settings/integrations""#),
        "no link for agents"
    );

    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #9", "write": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let imp = r.body["access_token"].as_str().unwrap().to_owned();
    let (status, html) = page(&app, &imp, "/settings/integrations").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "integrations hold credentials"
    );
    assert!(html.contains("impersonation"), "{html}");

    let mut anon = Browser::new(&app);
    let r = anon.get("/settings/integrations").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login?next=/settings/integrations");
}
