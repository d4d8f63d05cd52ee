//! Delivery: the durable queue's retries with backoff and `Retry-After`, manual retry, the
//! per-minute limit, and the endpoint disabled (with admins notified) by 410, fifty failures or a
//! day of them.

use super::{
    active_webhook, app_with_private_targets, audit_actions, deliver, deliveries, notifications,
    send_test, Receiver,
};
use crate::support::assert_error;
use palisade_testkit::{spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(
    failures_are_retried_with_backoff_until_delivered,
    gone_disables_the_endpoint,
    the_per_minute_limit_defers_deliveries_in_order,
    fifty_failures_disable_the_endpoint_and_notify_admins,
    a_day_of_failures_disables_the_endpoint,
);

async fn failures_are_retried_with_backoff_until_delivered(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    rx.answer(&[500, 503]);
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    let delivery_id = t.body["id"].as_str().unwrap().to_owned();
    assert_eq!(deliver(&app).await, 1);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "failed");
    assert_eq!(d[0]["attempts"], 1);
    assert_eq!(d[0]["last_status"], 500);
    assert_eq!(d[0]["last_error"], "HTTP 500");
    assert!(d[0]["next_attempt_at"].is_string());
    // Not due yet: nothing is sent.
    assert_eq!(deliver(&app).await, 0);
    // ~5 s later (with jitter), the second attempt; then ~30 s later the third succeeds.
    app.clock.advance(time::Duration::seconds(6));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(deliver(&app).await, 0);
    app.clock.advance(time::Duration::seconds(34));
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(rx.count(), 3);
    let ids: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h.get("webhook-id").unwrap().to_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|i| *i == delivery_id),
        "stable webhook-id: {ids:?}"
    );
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "delivered");
    assert_eq!(d[0]["attempts"], 3);
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhook_attempts")
            .await
            .unwrap(),
        3
    );
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["consecutive_failures"], 0);
    assert_eq!(w.body["status"], "active");

    // Retry-After is honoured, and a manual retry sends again now.
    rx.answer(&[429]);
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "failed");
    let retry = app
        .post(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/retry",
                d[0]["id"].as_str().unwrap()
            ),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{:?}", retry.body);
    assert_eq!(deliver(&app).await, 1);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "delivered");
}

async fn gone_disables_the_endpoint(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    rx.answer(&[410]);
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "disabled");
    assert!(w.body["disabled_reason"].as_str().unwrap().contains("410"));
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "dead");
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.disabled"));
    // Nothing more is sent to a disabled endpoint.
    app.post(
        "/api/v1/users",
        Some(&owner.access_token),
        json!({"email": "new@acme.example", "name": "New Person", "role": "agent"}),
    )
    .await;
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(rx.count(), 1);
    let owner = app.login(&owner.email, &owner.password).await;
    // Re-enabled by an admin, it receives again.
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.body["status"], "active", "{:?}", r.body);
}

async fn the_per_minute_limit_defers_deliveries_in_order(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_deliveries_per_minute = 3;
    })
    .await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(send_test(&app, &owner, &id).await);
    }
    assert_eq!(deliver(&app).await, 3, "three a minute");
    assert_eq!(rx.count(), 3);
    // The rest wait: not now, not after the deferral while the minute is still used up.
    assert_eq!(deliver(&app).await, 0);
    app.clock.advance(time::Duration::seconds(11));
    assert_eq!(deliver(&app).await, 0);
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(
        d.iter().filter(|x| x["status"] == "pending").count(),
        2,
        "{d:?}"
    );
    app.clock.advance(time::Duration::seconds(50));
    assert_eq!(deliver(&app).await, 2);
    let order: Vec<String> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h.get("webhook-id").unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, queued, "delivered in the order they were queued");
}

async fn fifty_failures_disable_the_endpoint_and_notify_admins(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    rx.answer(&[500; 60]);
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    for _ in 0..49 {
        send_test(&app, &owner, &id).await;
    }
    assert_eq!(deliver(&app).await, 49);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "active");
    assert_eq!(w.body["consecutive_failures"], 49);
    assert!(notifications(&app, &owner).await.is_empty());
    // The 50th failure within the day disables it.
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "disabled");
    assert!(
        w.body["disabled_reason"].as_str().unwrap().contains("50"),
        "{:?}",
        w.body
    );
    let audit = app
        .get(
            "/api/v1/audit-logs?action=webhook.disabled",
            &owner.access_token,
        )
        .await;
    assert_eq!(
        audit.body["data"].as_array().unwrap().len(),
        1,
        "{:?}",
        audit.body
    );
    assert_eq!(audit.body["data"][0]["target_id"], id.as_str());
    // Every admin (the owner too) is told; agents are not.
    for s in [&owner, &admin] {
        let n = notifications(&app, s).await;
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0]["kind"], "webhook.disabled");
        assert_eq!(n[0]["target_type"], "webhook");
        assert_eq!(n[0]["target_id"], id.as_str());
        assert_eq!(n[0]["data"]["webhook_id"], id.as_str());
        assert!(n[0]["read_at"].is_null());
    }
    assert!(notifications(&app, &agent).await.is_empty());
    // Nothing more is sent.
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&t, StatusCode::CONFLICT, "webhook_not_active");
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(rx.count(), 50);
}

async fn a_day_of_failures_disables_the_endpoint(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    rx.answer(&[503]);
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    // Still failing a day later (few attempts, but every one failed): disabled.
    app.clock.advance(time::Duration::hours(24));
    rx.answer(&[503]);
    let owner = app.login(&owner.email, &owner.password).await;
    send_test(&app, &owner, &id).await;
    assert!(deliver(&app).await >= 1);
    let w = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(w.body["status"], "disabled", "{:?}", w.body);
    assert!(w.body["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("24 hours"));
    let n = notifications(&app, &owner).await;
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["kind"], "webhook.disabled");
}

#[test]
fn a_zero_per_minute_limit_is_refused_at_start() {
    use palisade::config::RawConfig;
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        webhooks_deliveries_per_minute: 0,
        ..palisade_testkit::test_config(dir.path())
    };
    let err = palisade::Config::from_raw(raw).unwrap_err();
    assert!(
        err.to_string()
            .contains("PALISADE_WEBHOOKS_DELIVERIES_PER_MINUTE"),
        "{err}"
    );
}
