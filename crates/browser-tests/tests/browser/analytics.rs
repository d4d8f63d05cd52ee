//! The analytics dashboard as a member reads it: a customer writes twice, the owner answers
//! once and wins a deal; the dashboard (from the navigation) shows those figures, a chart with
//! one bar per day and series, the same numbers in its table, the team, the conversations by status and the deals by stage;
//! the period picker changes the number of bars; a time zone that is none is said next to its
//! field; an agent opens it too. Screenshots: `analytics` and `analytics-status` at both sizes.

use crate::harness::{css, label, role, text, Db, Page, Server};
use serde_json::{json, Value};

crate::both!(the_dashboard_shows_the_figures_and_a_bar_per_day_and_series);

const PASSWORD: &str = "correct-orbit-lantern-quietly";

async fn call(method: reqwest::Method, url: String, token: Option<&str>, body: Value) -> Value {
    let mut r = reqwest::Client::new().request(method, url).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

async fn post(url: String, token: Option<&str>, body: Value) -> Value {
    call(reqwest::Method::POST, url, token, body).await
}

async fn get(url: String, token: &str) -> Value {
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

/// Acme (owner Ana) with a simulated number connected and subscribed: returns the owner's
/// token and the number's `phone_number_id`.
pub(crate) async fn tenant_with_number(server: &Server) -> (String, String, String) {
    let owner = post(
        server.url("/api/v1/auth/register"),
        None,
        json!({"tenant_name": "Acme", "name": "Ana Lima", "email": "ana@acme.example", "password": PASSWORD}),
    )
    .await;
    let token = owner["access_token"].as_str().unwrap().to_owned();
    let n = post(
        format!("{}/_sim/phone-numbers", server.sim_url),
        None,
        json!({"verified_name": "Acme Support"}),
    )
    .await;
    let c = post(
        server.url("/api/v1/whatsapp/connections"),
        Some(&token),
        json!({"display_name": "Support", "phone_number_id": n["phone_number_id"],
            "waba_id": n["waba_id"], "access_token": n["access_token"], "app_secret": n["app_secret"]}),
    )
    .await;
    let pid = n["phone_number_id"].as_str().unwrap().to_owned();
    let connection = c["connection"]["id"].as_str().unwrap().to_owned();
    post(
        format!("{}/_sim/phone-numbers/{pid}/subscribe", server.sim_url),
        None,
        json!({"callback_url": server.url(&format!("/webhooks/whatsapp/{connection}")),
            "verify_token": c["verify_token"]}),
    )
    .await;
    (token, pid, connection)
}

pub(crate) async fn sign_in(page: &Page, email: &str) {
    page.goto("/login").await;
    page.fill(&label("Email"), email).await;
    page.fill(&label("Password"), PASSWORD).await;
    page.click(&role("button", "Sign in")).await;
    page.wait_for_path("/inbox").await;
}

/// The figure the overview shows under `name`.
async fn figure(page: &Page, name: &str) -> String {
    page.eval(&format!(
        "[...document.querySelectorAll('.figure')].find(f => f.querySelector('dt').textContent.trim() === {name:?})?.querySelector('.figure-value').textContent.trim() ?? ''"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn bars(page: &Page, chart: &str) -> i64 {
    page.eval(&format!(
        "document.querySelectorAll('svg[aria-labelledby=\"{chart}-title\"] rect').length"
    ))
    .await
    .as_i64()
    .unwrap_or(-1)
}

async fn the_dashboard_shows_the_figures_and_a_bar_per_day_and_series(db: Db) {
    let server = Server::start(db).await;
    let (token, pid, _) = tenant_with_number(&server).await;
    for body in ["Hello, is my order ready?", "It was order 1042"] {
        post(
            format!("{}/_sim/inbound", server.sim_url),
            None,
            json!({"phone_number_id": pid, "from": "5511987654321", "profile_name": "Carla Mendes",
                "type": "text", "text": {"body": body}}),
        )
        .await;
    }
    // The inbound pipeline stores them shortly after the webhook.
    let mut conversation = Value::Null;
    for _ in 0..100 {
        let list = get(server.url("/api/v1/conversations"), &token).await;
        if let Some(c) = list["data"].as_array().and_then(|l| l.first()) {
            let id = c["id"].as_str().unwrap().to_owned();
            let msgs = get(
                server.url(&format!("/api/v1/conversations/{id}/messages")),
                &token,
            )
            .await;
            if msgs["data"].as_array().map(Vec::len) == Some(2) {
                conversation = c.clone();
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let conversation = conversation["id"]
        .as_str()
        .expect("the conversation")
        .to_owned();
    post(
        server.url(&format!("/api/v1/conversations/{conversation}/messages")),
        Some(&token),
        json!({"type": "text", "text": {"body": "Yes, it ships today."}}),
    )
    .await;
    // A deal won today.
    let contact = get(server.url("/api/v1/contacts"), &token).await["data"][0]["id"].clone();
    let pipeline = get(server.url("/api/v1/pipelines"), &token).await["data"][0].clone();
    let won = pipeline["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "won")
        .unwrap()["id"]
        .clone();
    let deal = post(
        server.url("/api/v1/deals"),
        Some(&token),
        json!({"title": "Fleet renewal", "value_minor": 125050, "currency": "EUR",
               "contact_id": contact, "pipeline_id": pipeline["id"]}),
    )
    .await;
    call(
        reqwest::Method::PATCH,
        server.url(&format!("/api/v1/deals/{}", deal["id"].as_str().unwrap())),
        Some(&token),
        json!({"stage_id": won}),
    )
    .await;

    let page = Page::open(&server).await;
    sign_in(&page, "ana@acme.example").await;
    page.click(&role("link", "Analytics")).await;
    page.wait_for_path("/analytics").await;
    page.wait_for(&role("heading", "Overview")).await;
    assert_eq!(figure(&page, "Messages received").await, "2");
    assert_eq!(figure(&page, "Messages sent").await, "1");
    assert_eq!(figure(&page, "New conversations").await, "1");
    assert_eq!(figure(&page, "Deals won").await, "1,250.50 EUR");
    assert_eq!(figure(&page, "Deals lost").await, "None");
    assert_ne!(figure(&page, "First response").await, "No data");
    // The last 30 days: a bar per day for received and for sent.
    assert_eq!(bars(&page, "messages-chart").await, 60);
    assert_eq!(bars(&page, "conversations-chart").await, 60);
    let summary = page
        .eval("document.getElementById('messages-chart-desc').textContent")
        .await;
    assert!(
        summary
            .as_str()
            .unwrap()
            .contains("Received: 2 in total, most on"),
        "{summary}"
    );
    // The team and the pipeline.
    page.wait_for(&css("#agents-table")).await;
    assert!(page.body_text().await.contains("Ana Lima"));
    let won_row = page
        .eval("[...document.querySelectorAll('#stages-table tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim().replace(/\\s+/g, ' ')).join('|')).find(r => r.includes('won'))")
        .await;
    assert_eq!(won_row, "Sales|Won won|1|1,250.50 EUR");
    // The conversation by its status now, drawn as one bar; no campaign yet.
    let status = page
        .eval("document.getElementById('status-bar-desc').textContent")
        .await;
    assert_eq!(status, "Open 1 (100%), Pending 0 (0%), Resolved 0 (0%).");
    page.wait_for(&text("No campaign started in this period."))
        .await;
    page.assert_accessible().await;
    page.screenshot("analytics").await;
    page.eval("document.getElementById('status-heading').scrollIntoView()")
        .await;
    page.screenshot("analytics-status").await;

    // The last 7 days, by week: fewer bars.
    page.fill(&label("Period"), "Last 7 days").await;
    page.fill(&label("Group by"), "Day").await;
    page.click(&role("button", "Show")).await;
    page.wait_loaded().await;
    for _ in 0..50 {
        if bars(&page, "messages-chart").await == 14 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(bars(&page, "messages-chart").await, 14);
    assert!(page.current_url().await.contains("period=7"));

    // A time zone that is none: said next to the field, with the API's status.
    page.fill(&label("Time zone"), "Mars/Olympus").await;
    page.click(&role("button", "Show")).await;
    page.wait_for(&text("must be an IANA time zone name")).await;
    assert_eq!(
        page.eval("document.getElementById('tz').getAttribute('aria-invalid')")
            .await,
        "true"
    );
    assert_eq!(bars(&page, "messages-chart").await, 0);
    page.assert_accessible().await;
    page.assert_clean().await;

    // An agent reads it too.
    post(
        server.url("/api/v1/users"),
        Some(&token),
        json!({"email": "bruno@acme.example", "name": "Bruno Costa", "role": "agent", "password": PASSWORD}),
    )
    .await;
    let agent = Page::open(&server).await;
    sign_in(&agent, "bruno@acme.example").await;
    agent.click(&role("link", "Analytics")).await;
    agent.wait_for(&role("heading", "Overview")).await;
    assert_eq!(figure(&agent, "Messages received").await, "2");
    agent.assert_clean().await;
}
