//! Tenant isolation over HTTP: every endpoint that takes an id answers 404 for another tenant's
//! resource, exactly as for a missing one, and changes nothing.

use crate::support::{assert_error, login_resp};
use palisade_testkit::{spawn_app, Db, Resp, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both!(
    another_tenants_ids_are_not_found,
    another_tenants_users_are_not_listed,
);

async fn another_tenants_ids_are_not_found(db: Db) {
    let app = spawn_app(db).await;
    let a_owner = app.register("Tenant A", "ana@a.example").await;
    let a_agent = app.add_user(&a_owner, "bob@a.example", "agent").await;
    let b_owner = app.register("Tenant B", "olga@b.example").await;
    // Lock A's agent out, so that an unlock from B would be visible.
    let locked = crate::support::create_user(&app, &a_owner, "lou@a.example", "agent").await;
    for _ in 0..5 {
        login_resp(&app, "lou@a.example", "wrong-wrong-wrong").await;
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let attempts = |id: &str, session: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, format!("/api/v1/users/{id}"), None),
            (
                Method::PATCH,
                format!("/api/v1/users/{id}"),
                Some(json!({"name": "Pwned"})),
            ),
            (
                Method::PATCH,
                format!("/api/v1/users/{id}"),
                Some(json!({"role": "admin"})),
            ),
            (Method::DELETE, format!("/api/v1/users/{id}"), None),
            (
                Method::POST,
                format!("/api/v1/users/{id}/unlock"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/api/v1/users/{id}/transfer-ownership"),
                Some(json!({"password": GOOD_PASSWORD})),
            ),
            (
                Method::DELETE,
                format!("/api/v1/auth/sessions/{session}"),
                None,
            ),
        ]
    };
    let mut seen: Vec<(String, Resp, Resp)> = Vec::new();
    for target in [&a_agent.user_id, &locked, &a_owner.user_id] {
        let session = if *target == a_owner.user_id {
            &a_owner.session_id
        } else {
            &a_agent.session_id
        };
        let theirs = attempts(target, session);
        let nothing = attempts(&missing, &missing);
        for ((m, path, body), (m2, path2, body2)) in theirs.into_iter().zip(nothing) {
            let r = app
                .send(m.clone(), &path, Some(&b_owner.access_token), body)
                .await;
            assert_error(&r, StatusCode::NOT_FOUND, "not_found");
            let r2 = app
                .send(m2, &path2, Some(&b_owner.access_token), body2)
                .await;
            seen.push((format!("{m} {path}"), r, r2));
        }
    }
    for (what, theirs, nothing) in &seen {
        assert_eq!(
            theirs.body["error"]["message"], nothing.body["error"]["message"],
            "{what}: indistinguishable from a missing id"
        );
        assert_eq!(theirs.status, nothing.status, "{what}");
    }
    // Restoring is for super admins only: a tenant admin is refused the same way for any id.
    let a_deleted = crate::support::create_user(&app, &a_owner, "del@a.example", "agent").await;
    assert_eq!(
        app.delete(&format!("/api/v1/users/{a_deleted}"), &a_owner.access_token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let theirs = app
        .post(
            &format!("/api/v1/users/{a_deleted}/restore"),
            Some(&b_owner.access_token),
            json!({}),
        )
        .await;
    let nothing = app
        .post(
            &format!("/api/v1/users/{missing}/restore"),
            Some(&b_owner.access_token),
            json!({}),
        )
        .await;
    assert_error(&theirs, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        theirs.body["error"]["message"],
        nothing.body["error"]["message"]
    );
    assert_eq!(theirs.status, nothing.status);
    // Nothing in tenant A changed.
    let list = app.get("/api/v1/users", &a_owner.access_token).await;
    let users = list.body["data"].as_array().unwrap();
    assert_eq!(users.len(), 3);
    assert!(users.iter().all(|u| u["name"] != "Pwned"));
    let bob = users
        .iter()
        .find(|u| u["email"] == "bob@a.example")
        .unwrap();
    assert_eq!(bob["role"], "agent");
    assert_eq!(
        app.get("/api/v1/me", &a_agent.access_token).await.status,
        StatusCode::OK,
        "A's session was not revoked"
    );
    let me = app.get("/api/v1/me", &a_owner.access_token).await;
    assert_eq!(me.body["is_owner"], true);
    let me = app.get("/api/v1/me", &b_owner.access_token).await;
    assert_eq!(me.body["is_owner"], true, "B's owner is still B's owner");
    let r = login_resp(&app, "lou@a.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    let owners = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM users WHERE is_owner = true")
        .await
        .unwrap();
    assert_eq!(owners, 2);
    // And B's admin sees only B.
    let list = app.get("/api/v1/users", &b_owner.access_token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

async fn another_tenants_users_are_not_listed(db: Db) {
    let app = spawn_app(db).await;
    let a = app.register("Tenant A", "ana@a.example").await;
    let b = app.register("Tenant B", "olga@b.example").await;
    app.add_user(&a, "bob@a.example", "agent").await;
    let list = app
        .get("/api/v1/users?include_deleted=true", &b.access_token)
        .await;
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["email"], "olga@b.example");
    let t = app.get("/api/v1/tenant", &b.access_token).await;
    assert_eq!(t.body["id"], b.tenant_id.as_str());
    assert_eq!(t.body["name"], "Tenant B");
    let r = app
        .patch(
            "/api/v1/tenant",
            &b.access_token,
            json!({"name": "Renamed B"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let t = app.get("/api/v1/tenant", &a.access_token).await;
    assert_eq!(t.body["name"], "Tenant A", "A's tenant is untouched");
}
