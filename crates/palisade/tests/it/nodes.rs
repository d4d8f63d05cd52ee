//! Several server processes on one database: a change made on one node reaches the caches of
//! the others within one second.

use palisade_testkit::{spawn_app, Db, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

both!(
    revocation_reaches_every_node_within_a_second,
    user_changes_reach_every_node_within_a_second
);

/// Polls `GET /api/v1/me` on `node` until `done` holds; returns how long it took.
async fn until(
    node: &TestApp,
    token: &str,
    done: impl Fn(&palisade_testkit::Resp) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let r = node.get("/api/v1/me", token).await;
        if done(&r) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the change never arrived: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn revocation_reaches_every_node_within_a_second(db: Db) {
    let a = spawn_app(db).await;
    let b = a.spawn_peer().await;
    let owner = a.register("Acme", "owner@acme.example").await;
    // Node B verifies and caches the token.
    assert_eq!(
        b.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        a.send(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&owner.access_token),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::UNAUTHORIZED,
        "at once on the revoking node"
    );
    let took = until(&b, &owner.access_token, |r| {
        r.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "node B still accepted the revoked token after {took:?}"
    );
}

async fn user_changes_reach_every_node_within_a_second(db: Db) {
    let a = spawn_app(db).await;
    let b = a.spawn_peer().await;
    let owner = a.register("Acme", "owner@acme.example").await;
    let agent = a.add_user(&owner, "agent@acme.example", "agent").await;
    let me = b.get("/api/v1/me", &agent.access_token).await;
    assert_eq!(me.body["role"], "agent");
    // A promotion on node A shows on node B.
    let r = a
        .patch(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let took = until(&b, &agent.access_token, |r| r.body["role"] == "admin").await;
    assert!(
        took < Duration::from_secs(1),
        "node B kept the old role for {took:?}"
    );
    // Deleting the user on node A ends their access on node B.
    let r = a
        .patch(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token,
            json!({"role": "agent"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    until(&b, &agent.access_token, |r| r.body["role"] == "agent").await;
    assert_eq!(
        a.delete(
            &format!("/api/v1/users/{}", agent.user_id),
            &owner.access_token
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let took = until(&b, &agent.access_token, |r| {
        r.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "node B served a deleted user for {took:?}"
    );
}
