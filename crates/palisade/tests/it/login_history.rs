//! The login history (`/api/v1/auth/login-history`, `/api/v1/users/{id}/login-history`) and the
//! new-device alert.

use palisade_testkit::{spawn_app, spawn_app_with, Db, Resp, Session, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    attempts_are_listed_newest_first_with_results_and_pages,
    unknown_emails_leave_no_history,
    admins_read_a_users_history_and_nobody_else_does,
    keys_and_impersonations_are_refused,
    the_first_sign_in_and_the_same_device_do_not_alert,
    a_new_browser_or_network_alerts_by_mail_and_audit,
    a_device_unused_for_90_days_is_new_again,
    an_account_unused_beyond_the_history_still_alerts,
    concurrent_sign_ins_from_a_new_device_alert_once,
);

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const FIREFOX_LINUX_NEWER: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// An app that believes `X-Forwarded-For` from loopback, so tests choose the client address.
async fn app(db: Db) -> TestApp {
    spawn_app_with(db, |c| c.trusted_proxies = "127.0.0.1/32, ::1".into()).await
}

/// Signs in as a browser `ua` at `ip`.
async fn login_from(app: &TestApp, email: &str, password: &str, ua: &str, ip: &str) -> Resp {
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", ua)
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    TestApp::read(r).await
}

async fn history(app: &TestApp, token: &str, path: &str) -> Resp {
    app.get(path, token).await
}

fn attempts(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = '{action}'"
        ))
        .await
        .unwrap()
}

/// Creates `email` (an agent with [`GOOD_PASSWORD`]) without signing in.
async fn create_agent(app: &TestApp, admin: &Session, email: &str) -> String {
    let r = app
        .post(
            "/api/v1/users",
            Some(&admin.access_token),
            json!({"email": email, "name": "Bob Agent", "role": "agent", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn attempts_are_listed_newest_first_with_results_and_pages(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
        c.lockout_threshold = 3;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let bob_id = create_agent(&app, &owner, "bob@acme.example").await;
    let bob = "bob@acme.example";
    let r = login_from(&app, bob, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bob_token = r.body["access_token"].as_str().unwrap().to_owned();
    // Three wrong passwords lock the account; the next attempt is refused as locked.
    for _ in 0..3 {
        let r = login_from(
            &app,
            bob,
            "wrong-password-1",
            CHROME_WINDOWS,
            "198.51.100.9",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let r = login_from(&app, bob, GOOD_PASSWORD, CHROME_WINDOWS, "198.51.100.9").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "account_locked");

    let all = attempts(&history(&app, &bob_token, "/api/v1/auth/login-history").await);
    let results: Vec<&str> = all.iter().map(|a| a["result"].as_str().unwrap()).collect();
    assert_eq!(
        results,
        ["locked", "failure", "failure", "failure", "success"],
        "newest first: {all:?}"
    );
    assert!(all.iter().all(|a| a["method"] == "password"));
    let first = &all[4];
    assert_eq!(first["ip"], "203.0.113.5");
    assert_eq!(first["browser"], "Firefox 128.0");
    assert_eq!(first["os"], "Linux");
    assert!(first["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(all[0]["ip"], "198.51.100.9");
    assert_eq!(all[0]["browser"], "Chrome 126.0.0.0");
    let keys: Vec<&String> = all[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["at", "browser", "ip", "method", "os", "result"]);

    // Pages of 2: the same attempts in the same order, then no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/auth/login-history?limit=2&cursor={c}"),
            None => "/api/v1/auth/login-history?limit=2".to_owned(),
        };
        let r = history(&app, &bob_token, &path).await;
        let page = attempts(&r);
        assert!(page.len() <= 2);
        seen.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all);
    // The owner's own history is theirs alone (registration is not a sign-in attempt).
    let own = attempts(&history(&app, &owner.access_token, "/api/v1/auth/login-history").await);
    assert!(own.is_empty(), "{own:?}");
    // Bad queries are precise 400s.
    for q in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "cursor=nope",
        "other=1",
    ] {
        let r = history(&app, &bob_token, &format!("/api/v1/auth/login-history?{q}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.body);
    }
    // The admin route shows the same.
    let r = history(
        &app,
        &owner.access_token,
        &format!("/api/v1/users/{bob_id}/login-history"),
    )
    .await;
    assert_eq!(attempts(&r), all);
}

async fn unknown_emails_leave_no_history(db: Db) {
    let app = spawn_app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@acme.example", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let n = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM login_history")
        .await
        .unwrap();
    assert_eq!(n, 0);
}

async fn admins_read_a_users_history_and_nobody_else_does(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let other = app.register("Globex", "owner@globex.example").await;
    let path = |id: &str| format!("/api/v1/users/{id}/login-history");

    let r = history(&app, &owner.access_token, &path(&agent.user_id)).await;
    let data = attempts(&r);
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["result"], "success");
    assert!(r.body["next_cursor"].is_null());
    // An agent reads their own, not anyone else's.
    let r = history(&app, &agent.access_token, "/api/v1/auth/login-history").await;
    assert_eq!(attempts(&r).len(), 1);
    let r = history(&app, &agent.access_token, &path(&owner.user_id)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "forbidden");
    // Another tenant's admin: not found, the same as a user that does not exist.
    let r = history(&app, &other.access_token, &path(&agent.user_id)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = history(
        &app,
        &owner.access_token,
        &path("0190a000-0000-7000-8000-000000000000"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = history(&app, &owner.access_token, &path("not-a-uuid")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A super admin reads any tenant's user.
    let root = app.super_admin("root@platform.example").await;
    let r = history(&app, &root.access_token, &path(&agent.user_id)).await;
    assert_eq!(attempts(&r).len(), 1);
    // Without a token: 401.
    let r = app
        .client
        .get(app.url("/api/v1/auth/login-history"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn keys_and_impersonations_are_refused(db: Db) {
    let app = spawn_app(db).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "integration", "scopes": ["read_only"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let root = app.super_admin("root@platform.example").await;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
            Some(&root.access_token),
            json!({"reason": "ticket #7", "write": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let impersonation = r.body["access_token"].as_str().unwrap().to_owned();
    for path in [
        "/api/v1/auth/login-history".to_owned(),
        format!("/api/v1/users/{}/login-history", owner.user_id),
    ] {
        let r = history(&app, &key, &path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "api_key_not_allowed", "{path}");
        let r = history(&app, &impersonation, &path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "impersonation_forbidden", "{path}");
    }
}

async fn the_first_sign_in_and_the_same_device_do_not_alert(db: Db) {
    let app = app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let owner = "owner@acme.example";
    // The first sign-in after registering, even from elsewhere, is the first known device.
    let r = login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await;
    assert_eq!(r.status, StatusCode::OK);
    // The same browser (updated) and OS from the same /24.
    let r = login_from(
        &app,
        owner,
        GOOD_PASSWORD,
        FIREFOX_LINUX_NEWER,
        "203.0.113.250",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(app.mails_of(owner, "new_device").await.is_empty());
    assert_eq!(audit_count(&app, "auth.login.new_device").await, 0);
    // An invited user's first sign-in does not alert either.
    let r = login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.7").await;
    let admin = Session {
        access_token: r.body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: String::new(),
        session_id: String::new(),
        user_id: String::new(),
        tenant_id: String::new(),
        email: owner.to_owned(),
        password: GOOD_PASSWORD.to_owned(),
    };
    app.add_user(&admin, "agent@acme.example", "agent").await;
    assert!(app
        .mails_of("agent@acme.example", "new_device")
        .await
        .is_empty());
    // A failed attempt from a new device alerts nobody (and is no known device later).
    let r = login_from(
        &app,
        owner,
        "wrong-password-1",
        CHROME_WINDOWS,
        "198.51.100.9",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(app.mails_of(owner, "new_device").await.is_empty());
}

async fn a_new_browser_or_network_alerts_by_mail_and_audit(db: Db) {
    let app = app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let owner = "owner@acme.example";
    let r = login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await;
    assert_eq!(r.status, StatusCode::OK);
    // A new browser and OS on the same network.
    let r = login_from(&app, owner, GOOD_PASSWORD, CHROME_WINDOWS, "203.0.113.5").await;
    assert_eq!(r.status, StatusCode::OK);
    let mails = app.mails_of(owner, "new_device").await;
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert!(m.text.contains("203.0.113.5"), "{}", m.text);
    assert!(m.text.contains("Chrome 126.0.0.0"), "{}", m.text);
    assert!(m.text.contains("Windows 10"), "{}", m.text);
    assert!(m.text.contains("Time: 20"), "{}", m.text);
    let link = m.link("http").expect("a link");
    assert!(link.ends_with("/settings/sessions"), "{link}");
    assert!(!m.subject.contains("203.0.113.5"));
    assert!(m.html.contains("Chrome 126.0.0.0"));
    assert_eq!(audit_count(&app, "auth.login.new_device").await, 1);
    let named = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'auth.login.new_device' \
             AND target_type = 'user' AND actor_email = 'owner@acme.example'",
        )
        .await
        .unwrap();
    assert_eq!(named, 1);
    // Now known: no second mail.
    let r = login_from(&app, owner, GOOD_PASSWORD, CHROME_WINDOWS, "203.0.113.9").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.mails_of(owner, "new_device").await.len(), 1);
    // The first browser from another /24.
    let r = login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.114.5").await;
    assert_eq!(r.status, StatusCode::OK);
    let mails = app.mails_of(owner, "new_device").await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1].text.contains("203.0.114.5"), "{}", mails[1].text);
    // IPv6: a new /64 alerts once; another address in it does not.
    let r = login_from(
        &app,
        owner,
        GOOD_PASSWORD,
        FIREFOX_LINUX,
        "2001:db8:1:2::10",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = login_from(
        &app,
        owner,
        GOOD_PASSWORD,
        FIREFOX_LINUX,
        "2001:db8:1:2:ffff::1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.mails_of(owner, "new_device").await.len(), 3);
    assert_eq!(audit_count(&app, "auth.login.new_device").await, 3);
}

async fn a_device_unused_for_90_days_is_new_again(db: Db) {
    let app = app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let owner = "owner@acme.example";
    let ok = |r: Resp| assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    ok(login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await);
    app.clock.advance(time::Duration::days(89));
    ok(login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await);
    assert!(app.mails_of(owner, "new_device").await.is_empty());
    app.clock.advance(time::Duration::days(91));
    ok(login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await);
    assert_eq!(app.mails_of(owner, "new_device").await.len(), 1);
}

async fn an_account_unused_beyond_the_history_still_alerts(db: Db) {
    let app = app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let owner = "owner@acme.example";
    let r = login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await;
    assert_eq!(r.status, StatusCode::OK);
    app.clock.advance(time::Duration::days(200));
    // The maintenance worker's round: the history's attempts are past their 180 days.
    let pruned = palisade_core::auth::login_history::prune(&app.services)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let n = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM login_history")
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The devices are remembered: this is not taken for a first sign-in.
    let r = login_from(&app, owner, GOOD_PASSWORD, CHROME_WINDOWS, "198.51.100.9").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.mails_of(owner, "new_device").await.len(), 1);
    // Only a MAC of the device is kept, never the network.
    let raw = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM login_devices WHERE length(device_hash) = 32")
        .await
        .unwrap();
    assert_eq!(raw, 2);
}

async fn concurrent_sign_ins_from_a_new_device_alert_once(db: Db) {
    let app = app(db).await;
    app.register("Acme", "owner@acme.example").await;
    let owner = "owner@acme.example";
    let r = login_from(&app, owner, GOOD_PASSWORD, FIREFOX_LINUX, "203.0.113.5").await;
    assert_eq!(r.status, StatusCode::OK);
    for round in 0..3 {
        let ip = format!("198.51.{round}.9");
        let (a, b) = tokio::join!(
            login_from(&app, owner, GOOD_PASSWORD, CHROME_WINDOWS, &ip),
            login_from(&app, owner, GOOD_PASSWORD, CHROME_WINDOWS, &ip)
        );
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(b.status, StatusCode::OK, "{}", b.body);
        assert_eq!(
            app.mails_of(owner, "new_device").await.len(),
            round + 1,
            "one mail per new device, however many sign-ins race"
        );
    }
    assert_eq!(audit_count(&app, "auth.login.new_device").await, 3);
}
