//! Webhook URLs may carry a receiver's token in the query string: admins see the full URL on
//! the webhook itself (they need it to edit it), but the append-only audit log and the
//! notifications keep it redacted (`…?REDACTED`).

use palisade_testkit::{spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(webhook_url_secrets_stay_out_of_the_audit_log_and_notifications);

const HOOK: &str = "https://hooks.unknown.example/in";
const REDACTED: &str = "https://hooks.unknown.example/in?REDACTED";

async fn webhook_url_secrets_stay_out_of_the_audit_log_and_notifications(db: Db) {
    let app = spawn_app_with(db, |c| c.webhooks_allow_private_targets = true).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let admin = app.add_user(&owner, "admin@acme.example", "admin").await;

    // Created outside the allowlists: pending, the owner is notified.
    let first = format!("{HOOK}?token=first-s3cret-value");
    let r = app
        .post(
            "/api/v1/webhooks",
            Some(&admin.access_token),
            json!({"url": first, "events": ["*"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["webhook"]["status"], "pending_approval");
    assert_eq!(
        r.body["webhook"]["url"],
        first.as_str(),
        "admins see it all"
    );
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();

    // A new destination: pending again, notified again.
    let second = format!("{HOOK}?token=second-s3cret-value&x=1");
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &admin.access_token,
            json!({"url": second}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["url"], second.as_str());
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/approve"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(
        r.body["url"],
        second.as_str(),
        "the webhook keeps its full URL"
    );
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // The audit log, through the API: every webhook record, each URL redacted.
    let audit = app
        .get(
            "/api/v1/audit-logs?action=webhook.*&limit=100",
            &owner.access_token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    let records = audit.body["data"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for action in [
        "webhook.created",
        "webhook.updated",
        "webhook.approved",
        "webhook.deleted",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let text = audit.body.to_string();
    assert!(
        !text.contains("s3cret"),
        "a token reached the audit log: {text}"
    );
    assert!(text.contains(REDACTED), "{text}");
    // And in the table itself.
    let leaked = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE CAST(metadata AS TEXT) LIKE '%s3cret%'
             OR COALESCE(CAST(before AS TEXT), '') LIKE '%s3cret%'
             OR COALESCE(CAST(after AS TEXT), '') LIKE '%s3cret%'",
        )
        .await
        .unwrap();
    assert_eq!(leaked, 0);

    // The owner's notifications (one per pending destination): redacted too.
    let list = app.get("/api/v1/notifications", &owner.access_token).await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    let notes = list.body["data"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{:?}", list.body);
    for n in notes {
        assert_eq!(n["data"]["url"], REDACTED, "{n}");
        assert!(n["body"].as_str().unwrap().contains(REDACTED), "{n}");
    }
    assert!(!list.body.to_string().contains("s3cret"));
    let leaked = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM notifications WHERE body LIKE '%s3cret%'
             OR title LIKE '%s3cret%' OR CAST(data AS TEXT) LIKE '%s3cret%'",
        )
        .await
        .unwrap();
    assert_eq!(leaked, 0);
}
