//! Login: success, uniform failures, lockout, the per-address limit, unlock, audit.

use crate::support::{assert_error, audit_count, create_user, login_from, login_resp, retry_after};
use palisade_testkit::{spawn_app, spawn_app_with, Db, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

both!(
    login_returns_a_session,
    wrong_password_and_unknown_email_look_the_same,
    five_failures_lock_the_account_even_for_the_right_password,
    the_lock_expires_by_itself,
    old_failures_stop_counting,
    unknown_emails_lock_too,
    an_admin_lifts_a_lock,
    login_is_rate_limited_per_address,
    a_deleted_user_cannot_log_in,
    a_lock_caused_elsewhere_does_not_keep_the_owner_out,
    a_mistyped_password_from_a_known_address_keeps_the_lock,
    concurrent_failures_from_many_addresses_all_count,
    throttle_rows_are_pruned_once_their_window_has_passed,
    sign_in_records_name_the_proved_account_and_the_request,
);

async fn login_returns_a_session(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let r = login_resp(&app, "  ANA@Acme.Example ", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sid = r.body["session_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(sid).is_ok());
    assert_ne!(sid, owner.session_id, "a new session per login");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(r.body["password_expired"], false);
    assert!(r.body["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("pal_rt_"));
    assert!(!r.body["csrf_token"].as_str().unwrap().is_empty());
    let me = app
        .get("/api/v1/me", r.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["session_id"], sid);
    assert_eq!(me.body["id"], owner.user_id.as_str());
    assert_eq!(audit_count(&app, "auth.login.succeeded").await, 1);
}

async fn wrong_password_and_unknown_email_look_the_same(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "ana@acme.example").await;
    let wrong = login_resp(&app, "ana@acme.example", "not-the-password-at-all").await;
    let unknown = login_resp(&app, "nobody@acme.example", GOOD_PASSWORD).await;
    for r in [&wrong, &unknown] {
        assert_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert!(r.body.get("access_token").is_none());
    }
    assert_eq!(
        wrong.body["error"]["message"], unknown.body["error"]["message"],
        "the answers do not reveal which emails have accounts"
    );
    let empty = login_resp(&app, "", "").await;
    assert_error(&empty, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM sessions")
            .await
            .unwrap(),
        1,
        "failed logins create no session"
    );
    assert_eq!(audit_count(&app, "auth.login.failed").await, 3);
}

async fn five_failures_lock_the_account_even_for_the_right_password(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    // A user who has never signed in, so no address is known to be theirs.
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    for i in 1..=5 {
        let r = login_resp(&app, "bob@acme.example", &format!("wrong-guess-{i}")).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    let wait = retry_after(&r);
    assert!(
        (14 * 60..=15 * 60 + 1).contains(&wait),
        "Retry-After {wait}"
    );
    assert!(r.body.get("access_token").is_none());
    // Attempts during the lock are refused without being counted.
    let r = login_resp(&app, "bob@acme.example", "wrong-again").await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    assert_eq!(audit_count(&app, "auth.login.failed").await, 5);
    assert_eq!(audit_count(&app, "auth.login.locked").await, 1);
    // The records name the target user and the failure count.
    let with_target = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login.locked' AND target_type = 'user'")
        .await
        .unwrap();
    assert_eq!(with_target, 1);
    // Other accounts are unaffected.
    let r = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn the_lock_expires_by_itself(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    for _ in 0..5 {
        login_resp(&app, "bob@acme.example", "wrong-guess").await;
    }
    app.clock.advance(time::Duration::minutes(14));
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    assert!(retry_after(&r) <= 61, "{}", retry_after(&r));
    app.clock.advance(time::Duration::minutes(2));
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn old_failures_stop_counting(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    for _ in 0..4 {
        login_resp(&app, "bob@acme.example", "wrong-guess").await;
    }
    app.clock.advance(time::Duration::minutes(20));
    let r = login_resp(&app, "bob@acme.example", "wrong-guess").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A success clears the count: four more failures do not lock.
    for _ in 0..4 {
        login_resp(&app, "bob@acme.example", "wrong-guess").await;
    }
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(audit_count(&app, "auth.login.locked").await, 0);
}

async fn unknown_emails_lock_too(db: Db) {
    let app = spawn_app(db).await;
    for _ in 0..5 {
        let r = login_resp(&app, "ghost@nowhere.example", "guess-guess-guess").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login_resp(&app, "ghost@nowhere.example", "guess-guess-guess").await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    // The email of an unknown account is not written to the audit log.
    let n = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE actor_email = 'ghost@nowhere.example'",
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
}

async fn an_admin_lifts_a_lock(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let agent = app.add_user(&owner, "carl@acme.example", "agent").await;
    let bob = create_user(&app, &owner, "bob@acme.example", "agent").await;
    for _ in 0..5 {
        login_resp(&app, "bob@acme.example", "wrong-guess").await;
    }
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    // An agent may not unlock.
    let r = app
        .post(
            &format!("/api/v1/users/{bob}/unlock"),
            Some(&agent.access_token),
            json!({}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    // An admin may.
    let r = app
        .post(
            &format!("/api/v1/users/{bob}/unlock"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(audit_count(&app, "user.unlocked").await, 1);
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn login_is_rate_limited_per_address(db: Db) {
    let app = spawn_app_with(db, |raw| raw.rate_limit_login_per_minute = 5).await;
    app.register("Acme", "ana@acme.example").await;
    for i in 0..5 {
        let r = login_resp(&app, &format!("guess{i}@acme.example"), "whatever-pass").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait = retry_after(&r);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(r.body.get("access_token").is_none());
}

async fn a_deleted_user_cannot_log_in(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let bob = app.add_user(&owner, "bob@acme.example", "agent").await;
    let r = app
        .delete(
            &format!("/api/v1/users/{}", bob.user_id),
            &owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let unknown = login_resp(&app, "nobody@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.body["error"]["message"], unknown.body["error"]["message"]);
}

/// An attacker at one address locks the account; the owner, signing in from an address they have
/// used before, still gets in — and the attacker stays locked out.
async fn a_lock_caused_elsewhere_does_not_keep_the_owner_out(db: Db) {
    let app = spawn_app_with(db, |raw| raw.trusted_proxies = "127.0.0.1".into()).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    let home = "198.51.100.7";
    let attacker = "203.0.113.9";
    let r = login_from(&app, home, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..5 {
        let r = login_from(&app, attacker, "bob@acme.example", "guess-guess").await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let r = login_from(&app, attacker, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    let r = login_from(&app, "192.0.2.1", "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    let r = login_from(&app, home, "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The session records the forwarded address.
    let sessions = app
        .get(
            "/api/v1/auth/sessions",
            r.body["access_token"].as_str().unwrap(),
        )
        .await;
    assert!(sessions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ip"] == home));
}

/// The owner mistyping their password from a known address while an attacker's lock is in place
/// must not lift the lock for the attacker.
async fn a_mistyped_password_from_a_known_address_keeps_the_lock(db: Db) {
    let app = spawn_app_with(db, |raw| raw.trusted_proxies = "127.0.0.1".into()).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    let home = "198.51.100.7";
    let attacker = "203.0.113.9";
    assert_eq!(
        login_from(&app, home, "bob@acme.example", GOOD_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    for _ in 0..5 {
        login_from(&app, attacker, "bob@acme.example", "guess-guess").await;
    }
    let r = login_from(&app, home, "bob@acme.example", "typo-typo-typo").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login_from(&app, attacker, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
}

/// Ten wrong passwords at once, each from its own address: every one counts, so the account is
/// locked (issue 11, item 1). Before, each attempt read the count before any had written it and
/// they all wrote 1.
async fn concurrent_failures_from_many_addresses_all_count(db: Db) {
    let app = spawn_app_with(db, |raw| raw.trusted_proxies = "127.0.0.1".into()).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    let attempts = (1..=10).map(|i| {
        let app = &app;
        async move {
            login_from(
                app,
                &format!("203.0.113.{i}"),
                "bob@acme.example",
                &format!("wrong-guess-{i}"),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    for r in &answers {
        assert!(
            (r.status == StatusCode::UNAUTHORIZED && r.code() == "invalid_credentials")
                || (r.status == StatusCode::TOO_MANY_REQUESTS && r.code() == "account_locked"),
            "{}: {}",
            r.status,
            r.body
        );
    }
    let r = login_from(&app, "198.51.100.200", "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    assert!(retry_after(&r) > 14 * 60, "Retry-After {}", retry_after(&r));
    assert_eq!(
        audit_count(&app, "auth.login.locked").await,
        1,
        "one lock, reported once"
    );
    // The lock is not extended by the attempts that raced into it: it ends on time.
    app.clock.advance(time::Duration::minutes(16));
    let r = login_from(&app, "198.51.100.200", "bob@acme.example", GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Throttle rows whose window (and lock) has passed are deleted; a live lock is kept (item 18).
async fn throttle_rows_are_pruned_once_their_window_has_passed(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    create_user(&app, &owner, "bob@acme.example", "agent").await;
    let rows = || async {
        app.db
            .count_as_owner("SELECT COUNT(*) FROM login_throttle")
            .await
            .unwrap()
    };
    login_resp(&app, "typo@acme.example", "wrong-guess").await;
    assert_eq!(rows().await, 1);
    app.clock.advance(time::Duration::minutes(10));
    for _ in 0..5 {
        login_resp(&app, "bob@acme.example", "wrong-guess").await;
    }
    assert_eq!(rows().await, 2);
    // 16 minutes after the typo, 6 into bob's lock: the typo's row goes, the lock stays.
    app.clock.advance(time::Duration::minutes(6));
    login_resp(&app, "nobody@acme.example", "wrong-guess").await;
    assert_eq!(
        rows().await,
        2,
        "the typo's row is pruned, the new one added"
    );
    let r = login_resp(&app, "bob@acme.example", GOOD_PASSWORD).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "account_locked");
    // Once bob's lock and the last failure's window have passed, every row goes.
    app.clock.advance(time::Duration::minutes(30));
    login_resp(&app, "last@acme.example", "wrong-guess").await;
    assert_eq!(rows().await, 1, "only the newest failure is left");
}

/// Sign-in runs with no principal yet: its audit records carry the request's origin, and name
/// the account only as far as the request proved it (a correct password names the actor; a
/// wrong one only the email, as the target's).
async fn sign_in_records_name_the_proved_account_and_the_request(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "ana@acme.example").await;
    let bad = login_resp(&app, "ana@acme.example", "not-the-password-at-all").await;
    assert_error(&bad, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let good = login_resp(&app, "ana@acme.example", GOOD_PASSWORD).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    let list = app
        .get(
            "/api/v1/audit-logs?action=auth.login.*&limit=10",
            &owner.access_token,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let records = list.body["data"].as_array().unwrap();
    let find = |action: &str| {
        records
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {records:?}"))
    };
    let failed = find("auth.login.failed");
    assert_eq!(failed["tenant_id"], owner.tenant_id.as_str());
    assert!(failed["actor_id"].is_null());
    assert_eq!(failed["actor_email"], "ana@acme.example");
    assert!(failed["actor_role"].is_null());
    assert_eq!(failed["target_type"], "user");
    assert_eq!(failed["target_id"], owner.user_id.as_str());
    assert_eq!(failed["metadata"]["consecutive_failures"], 1);
    assert_eq!(failed["request_id"].as_str(), bad.header("x-request-id"));
    assert!(failed["ip"].is_string());
    let ok = find("auth.login.succeeded");
    assert_eq!(ok["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(ok["actor_id"], owner.user_id.as_str());
    assert_eq!(ok["actor_email"], "ana@acme.example");
    assert_eq!(ok["actor_role"], "admin");
    assert_eq!(ok["target_type"], "session");
    assert_eq!(ok["target_id"], good.body["session_id"]);
    assert_eq!(ok["request_id"].as_str(), good.header("x-request-id"));
    assert!(ok["ip"].is_string());
}
