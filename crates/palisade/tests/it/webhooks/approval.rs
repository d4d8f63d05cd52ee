//! Approval: endpoints on unknown hosts wait for an admin (and the other admins are told), while
//! the tenant's and the platform's allow-lists make them active at once.

use super::{
    app_with_private_targets, audit_actions, create, deliver, notifications_of_kind, Receiver,
};
use palisade_testkit::{spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(
    unknown_hosts_wait_for_approval_and_allowlists_skip_it,
    pending_webhooks_notify_the_other_admins,
);

async fn unknown_hosts_wait_for_approval_and_allowlists_skip_it(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let r = create(&app, &owner, json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();

    // Nothing is queued or delivered while pending.
    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CONFLICT);
    assert_eq!(t.code(), "webhook_not_active");
    app.add_user(&owner, "agent@acme.example", "agent").await;
    assert_eq!(deliver(&app).await, 0);
    assert_eq!(rx.count(), 0);
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(r.code(), "approval_required");

    // Any admin approves; the approver is recorded and audited.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/approve"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["approved_by"], admin.user_id.as_str());
    assert!(r.body["approved_at"].is_string());
    let again = app
        .post(
            &format!("/api/v1/webhooks/{id}/approve"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(again.code(), "not_pending_approval");
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.approved"));

    // The tenant's allowlist makes new endpoints on that host active at once.
    let r = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/webhooks/allowed-domains",
            Some(&owner.access_token),
            Some(json!({"allowed_domains": ["127.0.0.1", "Hooks.Example.com"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["allowed_domains"],
        json!(["127.0.0.1", "hooks.example.com"])
    );
    let r = app
        .get("/api/v1/webhooks/allowed-domains", &owner.access_token)
        .await;
    assert_eq!(r.body["allowed_domains"].as_array().unwrap().len(), 2);
    let r = create(&app, &owner, json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(r.body["webhook"]["status"], "active", "{:?}", r.body);

    // The platform's allowlist does the same for every tenant.
    let app2 = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_allowed_domains = "localhost, 127.0.0.1".into();
    })
    .await;
    let o2 = app2.register("Beta", "owner@beta.example").await;
    let r = create(&app2, &o2, json!({"url": rx.url, "events": ["*"]})).await;
    assert_eq!(r.body["webhook"]["status"], "active", "{:?}", r.body);
}

async fn pending_webhooks_notify_the_other_admins(db: Db) {
    let app = app_with_private_targets(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let r = create(
        &app,
        &admin,
        json!({"url": "https://hooks.unknown.example/x", "events": ["*"]}),
    )
    .await;
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
    let id = r.body["webhook"]["id"].as_str().unwrap();
    let n = notifications_of_kind(&app, &owner, "webhook.pending_approval").await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["kind"], "webhook.pending_approval");
    assert_eq!(n[0]["target_id"], id);
    assert_eq!(n[0]["data"]["url"], "https://hooks.unknown.example/x");
    assert_eq!(n[0]["data"]["requested_by"], admin.user_id.as_str());
    assert!(
        notifications_of_kind(&app, &admin, "webhook.pending_approval")
            .await
            .is_empty(),
        "not the creator"
    );
    assert!(
        notifications_of_kind(&app, &agent, "webhook.pending_approval")
            .await
            .is_empty(),
        "not agents"
    );
    // An allowlisted URL notifies nobody.
    app.send(
        reqwest::Method::PUT,
        "/api/v1/webhooks/allowed-domains",
        Some(&owner.access_token),
        Some(json!({"allowed_domains": ["ok.example"]})),
    )
    .await;
    create(
        &app,
        &admin,
        json!({"url": "https://hooks.ok.example/x", "events": ["*"]}),
    )
    .await;
    assert_eq!(
        notifications_of_kind(&app, &owner, "webhook.pending_approval")
            .await
            .len(),
        1
    );
    // A URL change that leaves the allowlist asks for approval again, and tells the others.
    let ok_id = app.get("/api/v1/webhooks", &admin.access_token).await.body["data"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{ok_id}"),
            &admin.access_token,
            json!({"url": "https://elsewhere.example/x"}),
        )
        .await;
    assert_eq!(r.body["status"], "pending_approval", "{:?}", r.body);
    assert_eq!(
        notifications_of_kind(&app, &owner, "webhook.pending_approval")
            .await
            .len(),
        2
    );
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM notifications")
            .await
            .unwrap(),
        2
    );
}
