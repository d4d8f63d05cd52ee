//! Limits and read-modify-writes under concurrent requests (issue 11, "the same race
//! elsewhere"): a per-tenant limit checked by counting holds however many requests run at once,
//! and concurrent changes to one contact or conversation all land.

use crate::support::{connect_sim_number, create_user, whatsapp_fixture};
use palisade_testkit::{spawn_app, spawn_app_with, Db};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    concurrent_webhook_creates_stop_at_the_limit,
    a_contacts_opt_out_survives_concurrent_edits,
    concurrent_changes_to_one_conversation_all_land,
    a_revoked_key_stays_revoked_under_concurrent_renames,
    a_deleted_user_stays_deleted_under_concurrent_renames,
    a_connections_new_name_survives_concurrent_token_changes,
    a_password_policy_change_survives_concurrent_renames,
);

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

/// Eight PATCHes of one contact at once: one opts the contact out of marketing, the others
/// rename it. The opt-out must stand. Without the row lock a rename on PostgreSQL that read the
/// contact before the opt-out committed wrote `marketing_opt_in: true` back (the same happened
/// to an inbound "STOP" racing an edit).
async fn a_contacts_opt_out_survives_concurrent_edits(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for round in 0..6 {
        let c = app
            .post(
                "/api/v1/contacts",
                Some(&owner.access_token),
                json!({"phone": format!("+4477009001{round:02}"), "marketing_opt_in": true}),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
        let path = format!("/api/v1/contacts/{}", c.body["id"].as_str().unwrap());
        let patches = (0..8).map(|i| {
            let (app, path, token) = (&app, &path, owner.access_token.clone());
            let body = if i == 3 {
                json!({ "marketing_opt_in": false })
            } else {
                json!({ "name": format!("Ana {round}.{i}") })
            };
            async move { app.patch(path, &token, body).await }
        });
        for r in futures_util::future::join_all(patches).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let after = app.get(&path, &owner.access_token).await;
        assert_eq!(
            after.body["marketing_opt_in"], false,
            "round {round}: {:?}",
            after.body
        );
        assert_eq!(
            after.body["opted_out"], true,
            "round {round}: {:?}",
            after.body
        );
    }
}

/// Labels and status of one conversation changed at once by different requests: every change
/// lands. Without the row lock a status change on PostgreSQL wrote back the labels it had read.
async fn concurrent_changes_to_one_conversation_all_land(db: Db) {
    let s = whatsapp_fixture(db).await;
    s.customer_message("text", json!({"body": "Hello"})).await;
    let mut convs = Value::Null;
    for _ in 0..200 {
        palisade_core::whatsapp::inbound::process_pending(&s.app.services)
            .await
            .unwrap();
        convs = s
            .app
            .get("/api/v1/conversations", &s.owner.access_token)
            .await
            .body;
        if !convs["data"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let path = format!(
        "/api/v1/conversations/{}",
        convs["data"][0]["id"].as_str().expect("a conversation")
    );
    let statuses = ["open", "pending", "resolved"];
    for round in 0..6 {
        let labels = json!([format!("round-{round}")]);
        let patches = (0..8).map(|i| {
            let (app, path, token) = (&s.app, &path, s.owner.access_token.clone());
            let body = if i == 3 {
                json!({ "labels": labels })
            } else {
                json!({ "status": statuses[(round + i) % 3] })
            };
            async move { app.patch(path, &token, body).await }
        });
        for r in futures_util::future::join_all(patches).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let after = s.app.get(&path, &s.owner.access_token).await;
        assert_eq!(
            after.body["labels"], labels,
            "round {round}: {:?}",
            after.body
        );
    }
}

/// A key renamed by seven requests while an eighth revokes it: it ends revoked. Without the row
/// lock a rename on PostgreSQL that read the key before the revocation committed wrote
/// `revoked_at = NULL` back, and the key authenticated again after the cache forgot it.
async fn a_revoked_key_stays_revoked_under_concurrent_renames(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for round in 0..6 {
        let r = app
            .post(
                "/api/v1/api-keys",
                Some(&owner.access_token),
                json!({"name": format!("key {round}"), "scopes": ["read_only"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let path = format!(
            "/api/v1/api-keys/{}",
            r.body["api_key"]["id"].as_str().unwrap()
        );
        let changes = (0..8).map(|i| {
            let (app, path, token) = (&app, &path, owner.access_token.clone());
            async move {
                if i == 3 {
                    app.post(&format!("{path}/revoke"), Some(&token), json!({}))
                        .await
                } else {
                    app.patch(path, &token, json!({"name": format!("key {round}.{i}")}))
                        .await
                }
            }
        });
        for r in futures_util::future::join_all(changes).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let after = app.get(&path, &owner.access_token).await;
        assert_eq!(
            after.body["status"], "revoked",
            "round {round}: {:?}",
            after.body
        );
    }
}

/// An agent renamed by seven requests while an eighth deletes them: they stay deleted. Without
/// the row lock a rename on PostgreSQL that read the user before the deletion committed wrote
/// `deleted_at = NULL` back.
async fn a_deleted_user_stays_deleted_under_concurrent_renames(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for round in 0..6 {
        let id = create_user(&app, &owner, &format!("agent{round}@acme.example"), "agent").await;
        let path = format!("/api/v1/users/{id}");
        let changes = (0..8).map(|i| {
            let (app, path, token) = (&app, &path, owner.access_token.clone());
            async move {
                if i == 3 {
                    app.delete(path, &token).await
                } else {
                    app.patch(path, &token, json!({"name": format!("Agent {round}.{i}")}))
                        .await
                }
            }
        });
        for r in futures_util::future::join_all(changes).await {
            // A rename that runs after the deletion finds no user, or a deleted one.
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::NO_CONTENT,
                    StatusCode::NOT_FOUND,
                    StatusCode::CONFLICT
                ]
                .contains(&r.status),
                "{:?}",
                r.body
            );
        }
        let after = app.get(&path, &owner.access_token).await;
        assert_eq!(
            after.status,
            StatusCode::NOT_FOUND,
            "round {round}: {:?}",
            after.body
        );
    }
}

/// A connection renamed while three other requests replace its access token (each checked with
/// the Graph API first): the new name stands. Without re-reading the row in the write, a token
/// change wrote back the name it had read before its Graph API call, on both databases.
async fn a_connections_new_name_survives_concurrent_token_changes(db: Db) {
    let sim = palisade_wa_sim::build(palisade_wa_sim::SimConfig::testing())
        .await
        .unwrap();
    let base = sim.base_url();
    tokio::spawn(sim.run_until(std::future::pending()));
    let graph = base.clone();
    let app = spawn_app_with(db, move |c| c.whatsapp_graph_base_url = graph).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (number, created) = connect_sim_number(&app, &base, &owner, "Support line").await;
    let path = format!(
        "/api/v1/whatsapp/connections/{}",
        created["connection"]["id"].as_str().unwrap()
    );
    for round in 0..4 {
        let name = format!("Support line {round}");
        let changes = (0..4).map(|i| {
            let (app, path, token) = (&app, &path, owner.access_token.clone());
            let body = if i == 0 {
                json!({ "display_name": name })
            } else {
                json!({ "access_token": number["access_token"] })
            };
            async move { app.patch(path, &token, body).await }
        });
        for r in futures_util::future::join_all(changes).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let list = app
            .get("/api/v1/whatsapp/connections", &owner.access_token)
            .await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(
            list.body["data"][0]["display_name"],
            name.as_str(),
            "round {round}: {:?}",
            list.body
        );
    }
}

/// The tenant renamed by seven requests while an eighth switches its password policy to
/// `compliance`: the policy change stands. Without the tenant lock a rename on PostgreSQL wrote
/// back the policy it had read, silently weakening the tenant's password rules.
async fn a_password_policy_change_survives_concurrent_renames(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for round in 0..6 {
        let policy = if round % 2 == 0 {
            "compliance"
        } else {
            "modern"
        };
        let changes = (0..8).map(|i| {
            let (app, token) = (&app, owner.access_token.clone());
            let body = if i == 3 {
                json!({ "password_policy": policy })
            } else {
                json!({ "name": format!("Acme {round}.{i}") })
            };
            async move { app.patch("/api/v1/tenant", &token, body).await }
        });
        for r in futures_util::future::join_all(changes).await {
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let t = app.get("/api/v1/tenant", &owner.access_token).await;
        assert_eq!(
            t.body["password_policy"], policy,
            "round {round}: {:?}",
            t.body
        );
    }
}
