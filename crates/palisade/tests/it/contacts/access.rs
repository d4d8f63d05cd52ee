//! Who may do what to contacts: roles, API key scopes, and tenants that never see each other's.

use super::{create, ids, key};
use crate::support::assert_error;
use palisade_testkit::{spawn_app, Db};
use reqwest::StatusCode;
use serde_json::json;

both!(roles_scopes_and_tenants_are_enforced,);

async fn roles_scopes_and_tenants_are_enforced(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let a = &agent.access_token;
    // Agents read, create and edit contacts…
    let c = create(&app, a, json!({"phone": "+447700900123", "tags": ["x"]})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/contacts/{id}");
    assert_eq!(app.get(&path, a).await.status, StatusCode::OK);
    assert_eq!(
        app.patch(&path, a, json!({"name": "Ana"})).await.status,
        StatusCode::OK
    );
    // …but neither delete nor export them.
    assert_error(
        &app.delete(&path, a).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &app.get("/api/v1/contacts/export?format=csv", a).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        app.get(&path, a).await.status,
        StatusCode::OK,
        "still there"
    );

    // API keys: each scope allows exactly its verbs.
    let read = key(&app, &owner, json!(["contacts:read"])).await;
    assert_eq!(app.get(&path, &read).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/contacts", &read).await.status,
        StatusCode::OK
    );
    assert_error(
        &app.post(
            "/api/v1/contacts",
            Some(&read),
            json!({"phone": "+447700900999"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.patch(&path, &read, json!({"name": "B"})).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.delete(&path, &read).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_error(
        &app.get("/api/v1/contacts/export?format=csv", &read).await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    let conv_export = key(&app, &owner, json!(["conversations:export"])).await;
    let r = app
        .get("/api/v1/contacts/export?format=csv", &conv_export)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("contacts:export"));
    let write = key(&app, &owner, json!(["contacts:write"])).await;
    let w = create(&app, &write, json!({"phone": "+447700900555"})).await;
    assert_eq!(
        app.patch(
            &format!("/api/v1/contacts/{}", w["id"].as_str().unwrap()),
            &write,
            json!({"tags": ["api"]})
        )
        .await
        .status,
        StatusCode::OK
    );
    let export = key(&app, &owner, json!(["contacts:export"])).await;
    assert_eq!(
        app.get("/api/v1/contacts/export?format=jsonl", &export)
            .await
            .status,
        StatusCode::OK
    );

    // Another tenant's admin sees nothing and changes nothing.
    let other = app.register("Other", "owner@other.example").await;
    let o = &other.access_token;
    assert_error(&app.get(&path, o).await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &app.patch(&path, o, json!({"name": "Mine"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.delete(&path, o).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(ids(&app.get("/api/v1/contacts", o).await.body).len(), 0);
    let other_key = key(&app, &other, json!(["contacts:delete", "contacts:read"])).await;
    assert_error(
        &app.delete(&path, &other_key).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Deleting takes contacts:delete.
    let delete = key(&app, &owner, json!(["contacts:delete"])).await;
    assert_eq!(
        app.delete(&path, &delete).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&path, &owner.access_token).await.status,
        StatusCode::NOT_FOUND
    );
}
