//! Limits and counters under concurrent requests (issue 11, "the same race elsewhere"): a
//! per-tenant limit checked by counting holds however many requests run at once.

use palisade_testkit::{spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(concurrent_webhook_creates_stop_at_the_limit);

/// Twelve creates at once against a limit of three: exactly three endpoints exist and the
/// others are refused with `409 webhook_limit_reached`. Without the tenant lock every create
/// on PostgreSQL counted the same committed rows and most of them got through.
async fn concurrent_webhook_creates_stop_at_the_limit(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_allowed_domains = "127.0.0.1".into();
        c.webhooks_max_per_tenant = 3;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for round in 0..3 {
        let creates = (0..12).map(|i| {
            let (app, token) = (&app, owner.access_token.clone());
            async move {
                app.post(
                    "/api/v1/webhooks",
                    Some(&token),
                    json!({"url": format!("http://127.0.0.1:9/r{round}h{i}"), "events": ["*"]}),
                )
                .await
            }
        });
        let answers = futures_util::future::join_all(creates).await;
        let created = answers
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .count();
        for r in answers.iter().filter(|r| r.status != StatusCode::CREATED) {
            assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
            assert_eq!(r.code(), "webhook_limit_reached");
        }
        let listed = app.get("/api/v1/webhooks", &owner.access_token).await;
        assert_eq!(listed.status, StatusCode::OK);
        let listed = listed.body["data"]
            .as_array()
            .or_else(|| listed.body.as_array())
            .map_or(0, Vec::len);
        assert_eq!(listed, 3, "round {round}: {created} created this round");
        assert_eq!(created, if round == 0 { 3 } else { 0 });
    }
}
