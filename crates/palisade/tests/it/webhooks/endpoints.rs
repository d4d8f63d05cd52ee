//! Managing endpoints: create, read, edit, delete; the secret shown once and stored encrypted;
//! the per-tenant limit, roles and tenant isolation; refused private targets; concurrent edits.

use super::{active_webhook, app_with_private_targets, audit_actions, create, Receiver};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use palisade_testkit::{spawn_app, spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(
    webhooks_are_managed_and_the_secret_is_shown_once,
    limits_roles_and_tenants_are_enforced,
    private_targets_are_refused_unless_allowed,
    concurrent_changes_to_one_webhook_all_land,
);

async fn webhooks_are_managed_and_the_secret_is_shown_once(db: Db) {
    let app = app_with_private_targets(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = create(
        &app,
        &owner,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["user.*", "webhook.test"], "description": "CRM sync"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
    let w = &r.body["webhook"];
    let id = w["id"].as_str().unwrap().to_owned();
    assert_eq!(w["url"], "http://127.0.0.1:9/hook");
    assert_eq!(w["events"], json!(["user.*", "webhook.test"]));
    assert_eq!(w["description"], "CRM sync");
    assert_eq!(w["status"], "pending_approval");
    assert!(w["created_at"].is_string());

    // Never shown again, never stored in plaintext.
    let list = app.get("/api/v1/webhooks", &owner.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(&secret[6..]));
    let one = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(!one.body.to_string().contains(&secret[6..]));
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhooks")
            .await
            .unwrap(),
        1
    );
    let b64 = &secret[6..];
    let plain = app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM webhooks WHERE secret_ciphertext LIKE '%{b64}%' OR secret_ciphertext LIKE '%whsec%'"
        ))
        .await
        .unwrap();
    assert_eq!(plain, 0, "the secret is stored encrypted");

    // Edit.
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"events": ["*"], "description": "Renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["events"], json!(["*"]));
    assert_eq!(r.body["description"], "Renamed");
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &owner.access_token,
            json!({"events": ["user.exploded"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["fields"]["events"][0]
        .as_str()
        .unwrap()
        .contains("user.exploded"));

    // Delete.
    let r = app
        .delete(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let actions = audit_actions(&app, &owner).await;
    for a in ["webhook.created", "webhook.updated", "webhook.deleted"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

async fn limits_roles_and_tenants_are_enforced(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        c.webhooks_allowed_domains = "127.0.0.1".into();
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let mut first = String::new();
    for i in 0..10 {
        let r = create(
            &app,
            &owner,
            json!({"url": format!("http://127.0.0.1:9/hook{i}"), "events": ["*"]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["webhook"]["status"], "active");
        if i == 0 {
            first = r.body["webhook"]["id"].as_str().unwrap().to_owned();
        }
    }
    let r = create(
        &app,
        &owner,
        json!({"url": "http://127.0.0.1:9/eleven", "events": ["*"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(r.code(), "webhook_limit_reached");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 10"));

    // Agents may not.
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    assert_eq!(
        app.get("/api/v1/webhooks", &agent.access_token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(
            &app,
            &agent,
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"]})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    // Another tenant sees nothing.
    let other = app.register("Other", "owner@other.example").await;
    let path = format!("/api/v1/webhooks/{first}");
    assert_eq!(
        app.get(&path, &other.access_token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&path, &other.access_token, json!({"description": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    for sub in ["approve", "rotate-secret", "test"] {
        let r = app
            .post(
                &format!("{path}/{sub}"),
                Some(&other.access_token),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{sub}");
    }
    assert_eq!(
        app.get(&format!("{path}/deliveries"), &other.access_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&path, &other.access_token).await.status,
        StatusCode::NOT_FOUND
    );
    let list = app.get("/api/v1/webhooks", &other.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.get(&path, &owner.access_token).await.status,
        StatusCode::OK
    );
}

async fn private_targets_are_refused_unless_allowed(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for (url, needle) in [
        ("http://127.0.0.1/hook", "https"),
        ("https://127.0.0.1/hook", "not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "not allowed"),
        ("https://localhost/hook", "not allowed"),
        ("https://metadata.google.internal/", "not allowed"),
        ("https://user:pw@hooks.example.com/", "user name"),
        ("https://hooks.example.org:8443/", "port"),
    ] {
        let r = create(&app, &owner, json!({"url": url, "events": ["*"]})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {:?}",
            r.body
        );
        let msg = r.body["error"]["fields"]["url"][0].as_str().unwrap();
        assert!(msg.contains(needle), "{url}: {msg}");
    }
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhooks")
            .await
            .unwrap(),
        0
    );
}

/// An admin changes the events while others change the description, all at once: every
/// change lands. Without the row lock a description change on PostgreSQL wrote back the events
/// it had read before the events change committed, silently undoing it (the same lost update let
/// the delivery worker revert an admin's edit, and two rotations keep a secret that never signs).
async fn concurrent_changes_to_one_webhook_all_land(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    let path = format!("/api/v1/webhooks/{id}");
    for round in 0..6 {
        let events = if round % 2 == 0 {
            json!(["contact.created"])
        } else {
            json!(["webhook.test"])
        };
        let patches = (0..8).map(|i| {
            let (app, path, token) = (&app, &path, owner.access_token.clone());
            let body = if i == 3 {
                json!({ "events": events })
            } else {
                json!({ "description": format!("round {round}, change {i}") })
            };
            async move { app.patch(path, &token, body).await }
        });
        for r in futures_util::future::join_all(patches).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let w = app.get(&path, &owner.access_token).await;
        assert_eq!(w.body["events"], events, "round {round}: {:?}", w.body);
    }
}

#[test]
fn production_refuses_private_webhook_targets() {
    use palisade::config::{Environment, RawConfig};
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        env: Environment::Production,
        webhooks_allow_private_targets: true,
        ..palisade_testkit::test_config(dir.path())
    };
    let config = palisade::Config::from_raw(raw).unwrap();
    let refusals = palisade::app::production_refusals(&config);
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("PALISADE_WEBHOOKS_ALLOW_PRIVATE_TARGETS")),
        "{refusals:?}"
    );
}
