//! Changing passwords: other sessions end, the current password is checked, history is kept.

use crate::support::{assert_error, audit_count, field_messages, login_resp, OTHER_PASSWORD};
use palisade_testkit::{spawn_app, Db, Session, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(
    changing_the_password_signs_out_the_other_sessions,
    the_current_password_must_be_right,
    the_new_password_must_follow_the_policy,
    the_last_five_passwords_cannot_be_reused,
    generated_passwords_are_strong,
    no_write_waits_while_a_password_is_hashed,
);

async fn change(app: &TestApp, s: &Session, current: &str, new: &str) -> palisade_testkit::Resp {
    app.post(
        "/api/v1/auth/password",
        Some(&s.access_token),
        json!({"current_password": current, "new_password": new}),
    )
    .await
}

async fn changing_the_password_signs_out_the_other_sessions(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let b = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let c = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = change(&app, &owner, GOOD_PASSWORD, OTHER_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["other_sessions_revoked"], 2);
    assert_eq!(
        app.get("/api/v1/me", &owner.access_token).await.status,
        StatusCode::OK,
        "the current session stays signed in"
    );
    for other in [&b, &c] {
        let r = app.get("/api/v1/me", &other.access_token).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "session_revoked");
        let r = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({"refresh_token": other.refresh_token}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The current session can still refresh.
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login_resp(&app, "ana@acme.example", OTHER_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(audit_count(&app, "auth.password.changed").await, 1);
    let leaked = app
        .db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE CAST(metadata AS TEXT) LIKE '%{OTHER_PASSWORD}%' OR CAST(after AS TEXT) LIKE '%{OTHER_PASSWORD}%'"
        ))
        .await
        .unwrap();
    assert_eq!(leaked, 0, "passwords never reach the audit log");
}

async fn the_current_password_must_be_right(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let other = app.login("ana@acme.example", GOOD_PASSWORD).await;
    let r = change(&app, &owner, "not-my-password", OTHER_PASSWORD).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(!field_messages(&r, "current_password").is_empty());
    // Nothing changed: the old password works, the other session lives.
    assert_eq!(
        login_resp(&app, "ana@acme.example", GOOD_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/me", &other.access_token).await.status,
        StatusCode::OK
    );
    // Without a session there is no password change at all.
    let r = app
        .post(
            "/api/v1/auth/password",
            None,
            json!({"current_password": GOOD_PASSWORD, "new_password": OTHER_PASSWORD}),
        )
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn the_new_password_must_follow_the_policy(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme Widgets", "ana@acme.example").await;
    let r = change(&app, &owner, GOOD_PASSWORD, "password").await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let msgs = field_messages(&r, "new_password");
    assert!(msgs.iter().any(|m| m.contains("at least 12")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("commonly used")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("too easy")), "{msgs:?}");
    // Strong in general, but built from the user's own email.
    let r = change(&app, &owner, GOOD_PASSWORD, "Ana@Acme.example1").await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_messages(&r, "new_password")
        .iter()
        .any(|m| m.contains("too easy")));
    assert_eq!(
        login_resp(&app, "ana@acme.example", GOOD_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

async fn the_last_five_passwords_cannot_be_reused(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    // Reusing the current password.
    let r = change(&app, &owner, GOOD_PASSWORD, GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        field_messages(&r, "new_password")
            .iter()
            .any(|m| m.contains("last 5 passwords")),
        "{}",
        r.body
    );
    let pw = |i: usize| {
        format!(
            "{OTHER_PASSWORD}-{}",
            ["one", "two", "three", "four", "five"][i]
        )
    };
    // GOOD -> p0 -> p1 -> p2 -> p3 -> p4: the last five are p0..p4.
    let mut current = GOOD_PASSWORD.to_owned();
    for i in 0..5 {
        let r = change(&app, &owner, &current, &pw(i)).await;
        assert_eq!(r.status, StatusCode::OK, "change {i}: {}", r.body);
        current = pw(i);
    }
    for i in 0..5 {
        let r = change(&app, &owner, &current, &pw(i)).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(field_messages(&r, "new_password")
            .iter()
            .any(|m| m.contains("last 5")));
    }
    // The sixth-newest is allowed again.
    let r = change(&app, &owner, &current, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Now the last five are GOOD, p4, p3, p2, p1: p1 is refused, p0 is allowed again.
    let r = change(&app, &owner, GOOD_PASSWORD, &pw(1)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = change(&app, &owner, GOOD_PASSWORD, &pw(0)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn generated_passwords_are_strong(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = crate::support::raw(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/password/generate",
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let generated = r.body["password"].as_str().unwrap().to_owned();
    assert_eq!(generated.chars().count(), 24);
    let again = app
        .get("/api/v1/auth/password/generate", &owner.access_token)
        .await;
    assert_ne!(again.body["password"], generated.as_str());
    // It is accepted by the strict preset.
    let r = app
        .patch(
            "/api/v1/tenant",
            &owner.access_token,
            json!({"password_policy": "compliance"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = change(&app, &owner, GOOD_PASSWORD, &generated).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Sends a request in the background (it may wait for a while).
fn spawn_post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> tokio::task::JoinHandle<palisade_testkit::Resp> {
    let mut req = app.client.post(app.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    tokio::spawn(async move { TestApp::read(req.send().await.unwrap()).await })
}

/// While password changes, an ownership transfer and an invitation acceptance wait for argon2,
/// another tenant's writes go through: none of them holds a write transaction (on SQLite, the
/// only writer; on PostgreSQL, one of the pool's four connections) across a hash (issue 11,
/// item 3). The hashing pool is held busy so the hashes cannot finish while we look.
async fn no_write_waits_while_a_password_is_hashed(db: Db) {
    let app = spawn_app(db).await;
    let acme = app.register("Acme", "ana@acme.example").await;
    let other = app.register("Other", "olga@other.example").await;
    let agent = app.add_user(&acme, "bob@acme.example", "agent").await;
    let invited = app
        .post(
            "/api/v1/users",
            Some(&acme.access_token),
            json!({"email": "dina@acme.example", "name": "Dina", "role": "agent"}),
        )
        .await;
    let invite_token = invited.body["invite_token"].as_str().unwrap().to_owned();
    // Each token has been seen once, so the requests below need no extra database reads first.
    for s in [&acme, &other, &agent] {
        assert_eq!(
            app.get("/api/v1/me", &s.access_token).await.status,
            StatusCode::OK
        );
    }

    let hold = app.services.hasher.hold_all().await.unwrap();
    let wrong = json!({"current_password": "not-my-password", "new_password": OTHER_PASSWORD});
    let slow = vec![
        spawn_post(
            &app,
            "/api/v1/auth/password",
            Some(&acme.access_token),
            wrong.clone(),
        ),
        spawn_post(
            &app,
            "/api/v1/auth/password",
            Some(&agent.access_token),
            wrong,
        ),
        spawn_post(
            &app,
            &format!("/api/v1/users/{}/transfer-ownership", agent.user_id),
            Some(&acme.access_token),
            json!({"password": "not-my-password"}),
        ),
        spawn_post(
            &app,
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": invite_token, "password": GOOD_PASSWORD}),
        ),
    ];
    // All four reach the hashing pool. Holding a write transaction, the later ones would queue
    // for the database instead and never get there.
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while app.services.hasher.in_flight() < slow.len() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every request waits for the hasher, none for the database");
    let write = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        app.post(
            "/api/v1/contacts",
            Some(&other.access_token),
            json!({"phone": "+15550100199"}),
        ),
    )
    .await
    .expect("another tenant's write does not wait for a hash");
    assert_eq!(write.status, StatusCode::CREATED, "{}", write.body);
    drop(hold);
    let answers: Vec<_> = futures_util::future::join_all(slow)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        !field_messages(&answers[0], "current_password").is_empty(),
        "{}",
        answers[0].body
    );
    assert!(
        !field_messages(&answers[1], "current_password").is_empty(),
        "{}",
        answers[1].body
    );
    assert!(
        !field_messages(&answers[2], "password").is_empty(),
        "{}",
        answers[2].body
    );
    assert_eq!(answers[3].status, StatusCode::OK, "{}", answers[3].body);
    // The invitation is spent once; nothing changed for the others.
    let again = app
        .post(
            "/api/v1/auth/accept-invite",
            None,
            json!({"token": invited.body["invite_token"], "password": GOOD_PASSWORD}),
        )
        .await;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_invite");
    assert_eq!(
        login_resp(&app, "ana@acme.example", GOOD_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    let me = app.get("/api/v1/me", &acme.access_token).await;
    assert_eq!(me.body["is_owner"], true);
}
