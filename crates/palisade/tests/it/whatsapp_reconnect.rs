//! Connecting a WhatsApp number again (issue 11, item 14): a disconnected number reconnects on
//! its old connection (same id, its conversations, new credentials), another tenant may take a
//! number only when no active connection holds it, concurrent attempts leave one active
//! connection, and `PATCH /api/v1/whatsapp/connections/{id}` replaces credentials (admins only).

use crate::support::meta_signature as sign;
use crate::support::{assert_error, connect_sim_number, field_messages};
use crate::support::{connect_body, settle_inbound as settle, sim_number};
use palisade_testkit::{spawn_app_with, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    a_disconnected_number_reconnects_onto_its_conversations,
    a_number_moves_to_another_tenant_only_once_disconnected,
    concurrent_connects_leave_one_active_connection,
    credentials_are_replaced_by_admins_only
);

const CONNECTIONS: &str = "/api/v1/whatsapp/connections";

async fn app_with_sim(db: Db) -> (TestApp, String) {
    let sim = palisade_wa_sim::build(palisade_wa_sim::SimConfig::testing())
        .await
        .unwrap();
    let base = sim.base_url();
    tokio::spawn(sim.run_until(std::future::pending()));
    let graph = base.clone();
    let app = spawn_app_with(db, move |c| c.whatsapp_graph_base_url = graph).await;
    (app, base)
}

async fn connect(app: &TestApp, who: &Session, n: &Value) -> palisade_testkit::Resp {
    app.post(CONNECTIONS, Some(&who.access_token), connect_body(n))
        .await
}

async fn disconnect(app: &TestApp, who: &Session, id: &str) {
    let r = app
        .post(
            &format!("{CONNECTIONS}/{id}/disconnect"),
            Some(&who.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Posts Meta's webhook for one customer text message to connection `id`, signed with
/// `secret`; returns the status. Accepted messages are processed before this returns.
async fn deliver(app: &TestApp, id: &str, n: &Value, secret: &str, wamid: &str) -> StatusCode {
    let payload = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": n["waba_id"], "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": n["display_phone_number"], "phone_number_id": n["phone_number_id"]},
            "contacts": [{"profile": {"name": "Ana Souza"}, "wa_id": "447700900123"}],
            "messages": [{"from": "447700900123", "id": wamid, "timestamp": "1750000000",
                          "type": "text", "text": {"body": format!("hello {wamid}")}}],
        }}]}],
    });
    let body = serde_json::to_vec(&payload).unwrap();
    let r = app
        .client
        .post(app.url(&format!("/webhooks/whatsapp/{id}")))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    if status == StatusCode::OK {
        settle(app).await;
    }
    status
}

async fn conversations(app: &TestApp, who: &Session) -> Vec<Value> {
    let r = app.get("/api/v1/conversations", &who.access_token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn wamids(app: &TestApp, who: &Session, conversation: &str) -> Vec<String> {
    let r = app
        .get(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &who.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["wamid"].as_str().unwrap().to_owned())
        .collect()
}

async fn active_rows(app: &TestApp, n: &Value) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM whatsapp_connections WHERE phone_number_id = '{}' AND status = 'active'",
            n["phone_number_id"].as_str().unwrap()
        ))
        .await
        .unwrap()
}

async fn a_disconnected_number_reconnects_onto_its_conversations(db: Db) {
    let (app, sim) = app_with_sim(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let n = sim_number(&app, &sim).await;
    let secret = n["app_secret"].as_str().unwrap();
    let first = connect(&app, &owner, &n).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["reconnected"], false);
    let id = first.body["connection"]["id"].as_str().unwrap().to_owned();
    let old_verify = first.body["verify_token"].as_str().unwrap().to_owned();
    assert_eq!(
        deliver(&app, &id, &n, secret, "wamid.before").await,
        StatusCode::OK
    );
    let convs = conversations(&app, &owner).await;
    assert_eq!(convs.len(), 1);
    let conv = convs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(convs[0]["connection_id"], id.as_str());

    disconnect(&app, &owner, &id).await;
    let refused = deliver(&app, &id, &n, secret, "wamid.while_disconnected").await;
    assert!(refused.is_client_error(), "{refused}");

    // Connecting again checks the token with Meta like a new connection: a bad one changes
    // nothing.
    let mut bad = connect_body(&n);
    bad["access_token"] = json!("EAAGwrongtoken");
    let r = app.post(CONNECTIONS, Some(&owner.access_token), bad).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "access_token")[0].contains("Meta refused"));
    let list = app.get(CONNECTIONS, &owner.access_token).await;
    assert_eq!(list.body["data"][0]["status"], "disconnected");

    // The right credentials: the same connection, active again, with a new verify token.
    let again = connect(&app, &owner, &n).await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);
    assert_eq!(again.body["reconnected"], true);
    assert_eq!(again.body["connection"]["id"], id.as_str());
    assert_eq!(again.body["connection"]["status"], "active");
    assert!(again.body["connection"]["disconnected_at"].is_null());
    assert_eq!(
        again.body["webhook_url"], first.body["webhook_url"],
        "Meta keeps posting to the same callback URL"
    );
    let verify = again.body["verify_token"].as_str().unwrap().to_owned();
    assert_ne!(verify, old_verify);
    let handshake = |vt: String| {
        app.client
            .get(app.url(&format!(
                "/webhooks/whatsapp/{id}?hub.mode=subscribe&hub.verify_token={vt}&hub.challenge=42"
            )))
            .send()
    };
    let ok = handshake(verify).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "42");
    assert_eq!(
        handshake(old_verify).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "the old verify token is replaced"
    );

    // Inbound messages land in the old conversation again.
    assert_eq!(
        deliver(&app, &id, &n, secret, "wamid.after").await,
        StatusCode::OK
    );
    let convs = conversations(&app, &owner).await;
    assert_eq!(convs.len(), 1, "{convs:?}");
    assert_eq!(convs[0]["id"], conv.as_str());
    assert_eq!(
        wamids(&app, &owner, &conv).await,
        vec!["wamid.before".to_owned(), "wamid.after".to_owned()]
    );
    let list = app.get(CONNECTIONS, &owner.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);

    // Still one number, one active connection: connecting it while active is refused.
    let twice = connect(&app, &owner, &n).await;
    assert_error(
        &twice,
        StatusCode::CONFLICT,
        "phone_number_already_connected",
    );
    let audit = app
        .get(
            "/api/v1/audit-logs?action=whatsapp_connection.reconnected",
            &owner.access_token,
        )
        .await;
    let records = audit.body["data"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{:?}", audit.body);
    assert_eq!(records[0]["target_id"], id.as_str());
    assert!(!audit
        .body
        .to_string()
        .contains(n["access_token"].as_str().unwrap()));
}

async fn a_number_moves_to_another_tenant_only_once_disconnected(db: Db) {
    let (app, sim) = app_with_sim(db).await;
    let acme = app.register("Acme", "owner@acme.example").await;
    let globex = app.register("Globex", "owner@globex.example").await;
    let n = sim_number(&app, &sim).await;
    let secret = n["app_secret"].as_str().unwrap();
    let r = connect(&app, &acme, &n).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let acme_id = r.body["connection"]["id"].as_str().unwrap().to_owned();

    // Held by Acme's active connection: refused to Globex.
    let r = connect(&app, &globex, &n).await;
    assert_error(&r, StatusCode::CONFLICT, "phone_number_already_connected");

    // Once Acme disconnects it, Globex may connect it: a connection of its own.
    disconnect(&app, &acme, &acme_id).await;
    let r = connect(&app, &globex, &n).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["reconnected"], false);
    let globex_id = r.body["connection"]["id"].as_str().unwrap().to_owned();
    assert_ne!(globex_id, acme_id);
    assert_eq!(
        deliver(&app, &globex_id, &n, secret, "wamid.g1").await,
        StatusCode::OK
    );
    assert_eq!(conversations(&app, &globex).await.len(), 1);
    assert!(conversations(&app, &acme).await.is_empty());

    // Now Globex holds it: Acme cannot take it back, nor edit Globex's connection.
    let r = connect(&app, &acme, &n).await;
    assert_error(&r, StatusCode::CONFLICT, "phone_number_already_connected");
    let r = app
        .patch(
            &format!("{CONNECTIONS}/{globex_id}"),
            &acme.access_token,
            json!({"display_name": "Mine now"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(active_rows(&app, &n).await, 1);

    // Globex lets go; Acme reconnects onto its old connection.
    disconnect(&app, &globex, &globex_id).await;
    let r = connect(&app, &acme, &n).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["reconnected"], true);
    assert_eq!(r.body["connection"]["id"], acme_id.as_str());
    assert_eq!(active_rows(&app, &n).await, 1);
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_connections")
            .await
            .unwrap(),
        2,
        "one row per tenant and number"
    );
    // Globex's history stays with Globex.
    assert_eq!(conversations(&app, &globex).await.len(), 1);
    assert!(conversations(&app, &acme).await.is_empty());
}

async fn concurrent_connects_leave_one_active_connection(db: Db) {
    let (app, sim) = app_with_sim(db).await;
    let acme = app.register("Acme", "owner@acme.example").await;
    let globex = app.register("Globex", "owner@globex.example").await;

    // Three reconnects of one disconnected number by its tenant at once.
    let n = sim_number(&app, &sim).await;
    let r = connect(&app, &acme, &n).await;
    let id = r.body["connection"]["id"].as_str().unwrap().to_owned();
    disconnect(&app, &acme, &id).await;
    let (a, b, c) = tokio::join!(
        connect(&app, &acme, &n),
        connect(&app, &acme, &n),
        connect(&app, &acme, &n)
    );
    let mut statuses = vec![a.status, b.status, c.status];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::CONFLICT
        ],
        "{:?} {:?} {:?}",
        a.body,
        b.body,
        c.body
    );
    for r in [&a, &b, &c] {
        if r.status == StatusCode::CONFLICT {
            assert_error(r, StatusCode::CONFLICT, "phone_number_already_connected");
        } else {
            assert_eq!(r.body["connection"]["id"], id.as_str());
        }
    }
    assert_eq!(active_rows(&app, &n).await, 1);

    // A fresh number connected by two tenants at once.
    let m = sim_number(&app, &sim).await;
    let (a, b) = tokio::join!(connect(&app, &acme, &m), connect(&app, &globex, &m));
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![StatusCode::CREATED, StatusCode::CONFLICT],
        "{:?} {:?}",
        a.body,
        b.body
    );
    assert_eq!(active_rows(&app, &m).await, 1);

    // And one tenant connecting a fresh number twice at once.
    let k = sim_number(&app, &sim).await;
    let (a, b) = tokio::join!(connect(&app, &acme, &k), connect(&app, &acme, &k));
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(active_rows(&app, &k).await, 1);
}

async fn credentials_are_replaced_by_admins_only(db: Db) {
    let (app, sim) = app_with_sim(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let (n, created) = connect_sim_number(&app, &sim, &owner, "Support line").await;
    let id = created["connection"]["id"].as_str().unwrap().to_owned();
    let path = format!("{CONNECTIONS}/{id}");
    let secret = n["app_secret"].as_str().unwrap();
    let token = n["access_token"].as_str().unwrap();
    assert_eq!(
        deliver(&app, &id, &n, secret, "wamid.1").await,
        StatusCode::OK
    );

    // Who may not.
    let r = app
        .patch(&path, &agent.access_token, json!({"display_name": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": ["full_access"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    let r = app.patch(&path, &key, json!({"display_name": "x"})).await;
    assert_error(&r, StatusCode::FORBIDDEN, "api_key_not_allowed");
    let root = app.super_admin("root@platform.example").await;
    let imp = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "support ticket 7", "write": true}),
        )
        .await;
    assert_eq!(imp.status, StatusCode::CREATED, "{:?}", imp.body);
    let imp = imp.body["access_token"].as_str().unwrap().to_owned();
    let r = app
        .patch(&path, &imp, json!({"app_secret": "impersonated-secret"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "impersonation_forbidden");

    // Bad input.
    let r = app.patch(&path, &owner.access_token, json!({})).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .patch(
            &path,
            &owner.access_token,
            json!({"display_name": " ", "app_secret": "has space"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "display_name").is_empty());
    assert!(!field_messages(&r, "app_secret").is_empty());
    let r = app
        .patch(&path, &owner.access_token, json!({"status": "active"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let r = app
        .patch(
            &format!("{CONNECTIONS}/not-a-uuid"),
            &owner.access_token,
            json!({"display_name": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_path");
    let r = app
        .patch(
            &format!("{CONNECTIONS}/{}", uuid::Uuid::now_v7()),
            &owner.access_token,
            json!({"display_name": "x"}),
        )
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    // A token Meta refuses changes nothing.
    let r = app
        .patch(
            &path,
            &owner.access_token,
            json!({"access_token": "EAAGwrongtoken", "app_secret": "never-stored-secret"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "access_token")[0].contains("Meta refused"));
    assert_eq!(
        deliver(&app, &id, &n, secret, "wamid.2").await,
        StatusCode::OK
    );

    // A new app secret takes effect at once: webhooks signed with the old one are refused.
    let r = app
        .patch(
            &path,
            &owner.access_token,
            json!({"app_secret": "rotated-app-secret-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["display_name"], "Support line");
    assert_eq!(r.body["webhook_url"], created["connection"]["webhook_url"]);
    assert!(!r.body.to_string().contains("rotated-app-secret-1"));
    assert_eq!(
        deliver(&app, &id, &n, secret, "wamid.3").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        deliver(&app, &id, &n, "rotated-app-secret-1", "wamid.4").await,
        StatusCode::OK
    );

    // Everything at once, checked with Meta; the list shows the result.
    let r = app
        .patch(
            &path,
            &owner.access_token,
            json!({"display_name": "Sales line", "access_token": token, "app_secret": secret}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["display_name"], "Sales line");
    assert_eq!(r.body["verified_name"], "Acme Support");
    let list = app.get(CONNECTIONS, &owner.access_token).await;
    assert_eq!(
        list.body["data"][0], r.body,
        "PATCH answers what the list shows"
    );
    assert_eq!(
        deliver(&app, &id, &n, secret, "wamid.5").await,
        StatusCode::OK
    );

    // Stored only encrypted; audited without the secrets.
    for needle in ["rotated-app-secret-1", "never-stored-secret", secret, token] {
        let stored = app
            .db
            .count_as_owner(&format!(
                "SELECT COUNT(*) FROM whatsapp_connections WHERE access_token_ciphertext LIKE '%{needle}%'
                 OR app_secret_ciphertext LIKE '%{needle}%'"
            ))
            .await
            .unwrap();
        assert_eq!(stored, 0);
    }
    let audit = app
        .get(
            "/api/v1/audit-logs?action=whatsapp_connection.updated",
            &owner.access_token,
        )
        .await;
    let records = audit.body["data"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{:?}", audit.body);
    let text = audit.body.to_string();
    assert!(
        !text.contains("rotated-app-secret-1") && !text.contains(secret) && !text.contains(token)
    );
    assert!(text.contains("Sales line"));

    // A disconnected connection's credentials can be replaced too; it stays disconnected.
    disconnect(&app, &owner, &id).await;
    let r = app
        .patch(
            &path,
            &owner.access_token,
            json!({"display_name": "Old line"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "disconnected");
}
