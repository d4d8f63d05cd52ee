//! In-app notifications: each user reads and marks only their own; API keys and other tenants
//! are refused. They are created by other features (here: webhooks waiting for approval).

use crate::support::assert_error;
use palisade_testkit::{spawn_app_with, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    users_page_mark_and_filter_their_own_notifications,
    notifications_are_refused_to_others
);

/// Has `by` create a webhook outside the allowlists: every other admin gets a notification.
async fn pending_webhook(app: &TestApp, by: &Session, n: usize) {
    let r = app
        .post(
            "/api/v1/webhooks",
            Some(&by.access_token),
            json!({"url": format!("https://hooks{n}.unknown.example/x"), "events": ["*"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
}

async fn list(app: &TestApp, s: &Session, query: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/notifications{query}"), &s.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn users_page_mark_and_filter_their_own_notifications(db: Db) {
    let app = spawn_app_with(db, |c| c.webhooks_allow_private_targets = true).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    for n in 0..3 {
        pending_webhook(&app, &admin, n).await;
    }
    // Newest first, two to a page.
    let page = list(&app, &owner, "?limit=2").await;
    let first = page["data"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert!(first[0]["data"]["url"]
        .as_str()
        .unwrap()
        .contains("hooks2."));
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2 = list(&app, &owner, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert!(page2["data"][0]["data"]["url"]
        .as_str()
        .unwrap()
        .contains("hooks0."));
    assert!(page2["next_cursor"].is_null());
    assert_eq!(page2["data"][0]["title"], "A webhook waits for approval");
    assert!(page2["data"][0]["body"]
        .as_str()
        .unwrap()
        .contains("approves"));

    // Marking read is idempotent and keeps the first read time.
    let id = first[0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/notifications/{id}/read"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let read_at = r.body["read_at"].as_str().unwrap().to_owned();
    app.clock.advance(time::Duration::seconds(5));
    let again = app
        .post(
            &format!("/api/v1/notifications/{id}/read"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(again.body["read_at"], read_at.as_str());
    let unread = list(&app, &owner, "?unread=true").await;
    let unread = unread["data"].as_array().unwrap();
    assert_eq!(unread.len(), 2);
    assert!(unread
        .iter()
        .all(|n| n["id"] != id && n["read_at"].is_null()));
    assert_eq!(
        list(&app, &owner, "").await["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The creator was not notified about their own webhooks.
    assert!(list(&app, &admin, "").await["data"]
        .as_array()
        .unwrap()
        .is_empty());
}

async fn notifications_are_refused_to_others(db: Db) {
    let app = spawn_app_with(db, |c| c.webhooks_allow_private_targets = true).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;
    pending_webhook(&app, &admin, 0).await;
    let mine = list(&app, &owner, "").await;
    let id = mine["data"][0]["id"].as_str().unwrap().to_owned();
    let read = format!("/api/v1/notifications/{id}/read");

    // Another user of the tenant: 404, and the notification stays unread.
    let r = app.post(&read, Some(&admin.access_token), json!({})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    // Another tenant's owner: 404, and an empty list.
    let stranger = app.register("Globex", "owner@globex.example").await;
    let r = app
        .post(&read, Some(&stranger.access_token), json!({}))
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert!(list(&app, &stranger, "").await["data"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(list(&app, &owner, "?unread=true").await["data"][0]["read_at"].is_null());

    // API keys are not users: 403, whatever their scopes.
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": ["full_access"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let r = app.get("/api/v1/notifications", &key).await;
    assert_error(&r, StatusCode::FORBIDDEN, "api_key_not_allowed");
    let r = app.post(&read, Some(&key), json!({})).await;
    assert_error(&r, StatusCode::FORBIDDEN, "api_key_not_allowed");

    // Super admins belong to no tenant and have no notifications.
    let root = app.super_admin("root@platform.example").await;
    let r = app.get("/api/v1/notifications", &root.access_token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    // Bad input: precise 4xx.
    let r = app
        .get("/api/v1/notifications?limit=0", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .get("/api/v1/notifications?cursor=nope", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = app
        .get("/api/v1/notifications?unread=maybe", &owner.access_token)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = app
        .post(
            "/api/v1/notifications/not-a-uuid/read",
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
    let r = app.get("/api/v1/notifications", "not-a-token").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
