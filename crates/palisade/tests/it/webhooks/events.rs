//! Events: a write elsewhere in the application (a user created, a creator's API keys revoked)
//! queues its event in the same transaction, and any node's worker delivers it.

use super::signing::verify;
use super::{active_webhook, app_with_private_targets, deliver, deliveries, now_unix, Receiver};
use palisade_core::webhooks::deliver_due;
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    a_user_created_event_is_delivered,
    revoking_a_creators_keys_emits_api_key_revoked,
);

async fn a_user_created_event_is_delivered(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, secret) = active_webhook(&app, &owner, &rx.url, json!(["user.*"])).await;
    let r = app
        .post(
            "/api/v1/users",
            Some(&owner.access_token),
            json!({"email": "new@acme.example", "name": "New Person", "role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Queued in the same transaction: the row is there before any worker runs.
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhook_deliveries")
            .await
            .unwrap(),
        1
    );
    // An API key event is not subscribed to.
    app.post(
        "/api/v1/api-keys",
        Some(&owner.access_token),
        json!({"name": "k", "scopes": ["read_only"]}),
    )
    .await;
    // The queue is in the database: another node (or this one after a restart) delivers it.
    let peer = app.spawn_peer().await;
    assert_eq!(deliver_due(&peer.services).await.unwrap(), 1);
    let (headers, body) = rx.last();
    assert_eq!(verify(&secret, &headers, &body, now_unix(&app)), Ok(()));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "user.created");
    assert_eq!(payload["data"]["email"], "new@acme.example");
    assert_eq!(payload["data"]["role"], "agent");
    // One view: the event's data is the user of the REST answer, field for field (the answer
    // adds only the invitation, which never leaves in an event).
    let mut rest = r.body.clone();
    let user = rest.as_object_mut().unwrap();
    assert!(user.remove("invite_token").is_some());
    assert!(user.remove("invite_expires_at").is_some());
    assert_eq!(payload["data"], rest);
    assert_eq!(payload["data"]["deleted"], false);
    assert!(payload["timestamp"].is_string());
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["event_type"], "user.created");
}

async fn revoking_a_creators_keys_emits_api_key_revoked(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["api_key.revoked"])).await;
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": "by admin", "scopes": ["read_only"]}),
        )
        .await;
    let key_id = key.body["api_key"]["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &format!("/api/v1/users/{}", admin.user_id),
            &owner.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Queued in the demotion's transaction.
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["event_type"], "api_key.revoked");
    assert_eq!(deliver(&app).await, 1);
    let (_, body) = rx.last();
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "api_key.revoked");
    assert_eq!(payload["data"]["id"], key_id.as_str());
    assert_eq!(payload["data"]["revoked"], true);
    assert_eq!(payload["data"]["revocation_reason"], "creator demoted");

    let other = app.add_user(&owner, "other@acme.example", "admin").await;
    for name in ["one", "two"] {
        app.post(
            "/api/v1/api-keys",
            Some(&other.access_token),
            json!({"name": name, "scopes": ["read_only"]}),
        )
        .await;
    }
    let root = app.super_admin("root@platform.example").await;
    let del = app
        .delete(
            &format!("/api/v1/users/{}", other.user_id),
            &root.access_token,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{:?}", del.body);
    assert_eq!(deliver(&app).await, 2);
    let reasons: Vec<Value> = rx
        .got
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(|(_, b)| {
            serde_json::from_slice::<Value>(b).unwrap()["data"]["revocation_reason"].clone()
        })
        .collect();
    assert_eq!(
        reasons,
        vec![json!("creator deleted"), json!("creator deleted")]
    );
}
