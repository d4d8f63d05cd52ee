//! WhatsApp connections against the Cloud API simulator, and Meta's webhook handshake.

use crate::support::{connect_body, sim_number};
use palisade_testkit::{spawn_app_with, Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    an_admin_connects_a_number_and_meta_verifies_the_webhook,
    connections_are_refused_to_the_wrong_people_and_bad_tokens
);

/// A simulator on a free port; returns its base URL. It runs until the test ends.
async fn simulator() -> String {
    let sim = palisade_wa_sim::build(palisade_wa_sim::SimConfig::testing())
        .await
        .unwrap();
    let base = sim.base_url();
    tokio::spawn(sim.run_until(std::future::pending()));
    base
}

async fn app_with_sim(db: Db) -> (TestApp, String) {
    let base = simulator().await;
    let graph = base.clone();
    let app = spawn_app_with(db, move |c| {
        c.whatsapp_graph_base_url = graph;
        c.public_url = Some("https://crm.example.com".into());
    })
    .await;
    (app, base)
}

async fn an_admin_connects_a_number_and_meta_verifies_the_webhook(db: Db) {
    let (app, base) = app_with_sim(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let n = sim_number(&app, &base).await;
    let r = app
        .post(
            "/api/v1/whatsapp/connections",
            Some(&owner.access_token),
            connect_body(&n),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["connection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body["webhook_url"],
        format!("https://crm.example.com/webhooks/whatsapp/{id}")
    );
    assert_eq!(
        r.body["connection"]["verified_name"], "Acme Support",
        "details come from the Graph API"
    );
    let verify = r.body["verify_token"].as_str().unwrap().to_owned();
    assert!(verify.starts_with("pal_wvt_"));
    let text = r.body.to_string();
    let token = n["access_token"].as_str().unwrap();
    let secret = n["app_secret"].as_str().unwrap();
    assert!(
        !text.contains(token) && !text.contains(secret),
        "secrets never come back"
    );
    // Stored only encrypted.
    for needle in [token, secret, verify.as_str()] {
        let n = app
            .db
            .count_as_owner(&format!(
                "SELECT COUNT(*) FROM whatsapp_connections WHERE access_token_ciphertext LIKE '%{needle}%'
                 OR app_secret_ciphertext LIKE '%{needle}%'"
            ))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
    let list = app
        .get("/api/v1/whatsapp/connections", &owner.access_token)
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(token) && !list.body.to_string().contains("pal_wvt_"));

    // Meta's handshake, performed by the simulator against our callback URL.
    let callback = app.url(&format!("/webhooks/whatsapp/{id}"));
    let pid = n["phone_number_id"].as_str().unwrap();
    let sub = |vt: String| {
        app.client
            .post(format!("{base}/_sim/phone-numbers/{pid}/subscribe"))
            .json(&json!({"callback_url": callback, "verify_token": vt}))
            .send()
    };
    assert_eq!(
        sub("pal_wvt_wrong".into()).await.unwrap().status().as_u16() / 100,
        4,
        "a wrong verify token fails"
    );
    assert_eq!(
        sub(verify.clone()).await.unwrap().status(),
        StatusCode::OK,
        "the right one passes"
    );
    // Direct checks of the handshake.
    let get = |q: String| app.client.get(format!("{callback}?{q}")).send();
    let ok = get(format!(
        "hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1158201444"
    ))
    .await
    .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for q in [
        format!("hub.mode=unsubscribe&hub.verify_token={verify}&hub.challenge=1"),
        "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1".to_owned(),
        format!("hub.mode=subscribe&hub.verify_token={verify}"),
    ] {
        assert_eq!(get(q).await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    let unknown = app
        .client
        .get(app.url(&format!(
            "/webhooks/whatsapp/{}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1",
            uuid::Uuid::now_v7()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::FORBIDDEN);

    // Connecting the same number twice is refused.
    let again = app
        .post(
            "/api/v1/whatsapp/connections",
            Some(&owner.access_token),
            connect_body(&n),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // Disconnect: the handshake stops working; delete: gone.
    let d = app
        .post(
            &format!("/api/v1/whatsapp/connections/{id}/disconnect"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{:?}", d.body);
    assert_eq!(d.body["status"], "disconnected");
    let after = get(format!(
        "hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=5"
    ))
    .await
    .unwrap();
    assert_eq!(after.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.delete(
            &format!("/api/v1/whatsapp/connections/{id}"),
            &owner.access_token
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/whatsapp/connections/{id}"),
            &owner.access_token
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let audit = app
        .get(
            "/api/v1/audit-logs?action=whatsapp_connection.*",
            &owner.access_token,
        )
        .await;
    assert_eq!(audit.body["data"].as_array().unwrap().len(), 3);
    assert!(!audit.body.to_string().contains(token));
}

async fn connections_are_refused_to_the_wrong_people_and_bad_tokens(db: Db) {
    let (app, base) = app_with_sim(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let other = app.register("Other", "owner@other.example").await;
    let n = sim_number(&app, &base).await;
    assert_eq!(
        app.post(
            "/api/v1/whatsapp/connections",
            Some(&agent.access_token),
            connect_body(&n)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "scopes": ["full_access"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post("/api/v1/whatsapp/connections", Some(&key), connect_body(&n))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/whatsapp/connections", &key).await.status,
        StatusCode::FORBIDDEN
    );
    // Meta refuses a wrong token: 422 naming the field, nothing stored.
    let mut bad = connect_body(&n);
    bad["access_token"] = json!("EAAGwrongtoken");
    let r = app
        .post(
            "/api/v1/whatsapp/connections",
            Some(&owner.access_token),
            bad,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.body["error"]["fields"]["access_token"][0]
        .as_str()
        .unwrap()
        .contains("Meta refused"));
    let mut bad = connect_body(&n);
    bad["phone_number_id"] = json!("12ab");
    bad["display_name"] = json!("");
    let r = app
        .post(
            "/api/v1/whatsapp/connections",
            Some(&owner.access_token),
            bad,
        )
        .await;
    assert!(
        r.body["error"]["fields"]["phone_number_id"].is_array()
            && r.body["error"]["fields"]["display_name"].is_array()
    );
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_connections")
            .await
            .unwrap(),
        0
    );
    // Another tenant's connection is not found.
    let r = app
        .post(
            "/api/v1/whatsapp/connections",
            Some(&owner.access_token),
            connect_body(&n),
        )
        .await;
    let id = r.body["connection"]["id"].as_str().unwrap().to_owned();
    for (m, path) in [
        (
            Method::POST,
            format!("/api/v1/whatsapp/connections/{id}/disconnect"),
        ),
        (Method::DELETE, format!("/api/v1/whatsapp/connections/{id}")),
    ] {
        assert_eq!(
            app.send(m, &path, Some(&other.access_token), Some(json!({})))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    }
    assert!(app
        .get("/api/v1/whatsapp/connections", &other.access_token)
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .is_empty());
}
