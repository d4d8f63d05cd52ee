//! Client addresses behind trusted proxies, CORS, HSTS, and the owner's way through a lock.

use palisade_testkit::{spawn_app_with, Db, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    forwarded_addresses_are_believed_only_from_trusted_proxies,
    a_flood_from_many_addresses_does_not_lock_out_the_owner,
    cors_answers_only_configured_origins,
    hsts_is_sent_behind_a_tls_proxy
);

async fn login_from(
    app: &palisade_testkit::TestApp,
    ip: &str,
    email: &str,
    password: &str,
) -> palisade_testkit::Resp {
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    palisade_testkit::TestApp::read(r).await
}

async fn forwarded_addresses_are_believed_only_from_trusted_proxies(db: Db) {
    // Untrusted peer: X-Forwarded-For is ignored, so rotating it does not escape the limit.
    let app = spawn_app_with(db, |c| c.rate_limit_login_per_minute = 2).await;
    for i in 0..2 {
        assert_eq!(
            login_from(&app, &format!("198.51.100.{i}"), "x@x.example", "nope")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = login_from(&app, "198.51.100.9", "x@x.example", "nope").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert!(r.header("retry-after").is_some());

    // Trusted proxy (the loopback peer): each forwarded client has its own budget, and the
    // address recorded in the session is the client's.
    let app = spawn_app_with(db, |c| {
        c.rate_limit_login_per_minute = 2;
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for i in 0..2 {
        assert_eq!(
            login_from(&app, "203.0.113.7", "x@x.example", "nope")
                .await
                .status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}"
        );
    }
    assert_eq!(
        login_from(&app, "203.0.113.7", "x@x.example", "nope")
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let ok = login_from(
        &app,
        "198.51.100.20, 203.0.113.8",
        &owner.email,
        GOOD_PASSWORD,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let sessions = app
        .get(
            "/api/v1/auth/sessions",
            ok.body["access_token"].as_str().unwrap(),
        )
        .await;
    let ips: Vec<&str> = sessions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["ip"].as_str())
        .collect();
    assert!(
        ips.contains(&"203.0.113.8"),
        "the rightmost untrusted address is the client: {ips:?}"
    );
}

async fn a_flood_from_many_addresses_does_not_lock_out_the_owner(db: Db) {
    let app = spawn_app_with(db, |c| c.trusted_proxies = "127.0.0.1/32, ::1".into()).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    // The owner has signed in from their usual address before.
    assert_eq!(
        login_from(&app, "192.0.2.10", &owner.email, GOOD_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    // An attacker rotates addresses until the account locks.
    for i in 0..5 {
        let r = login_from(
            &app,
            &format!("198.51.100.{i}"),
            &owner.email,
            "guess-guess-guess",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let locked = login_from(&app, "198.51.100.77", &owner.email, GOOD_PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right password from a new address waits out the lock"
    );
    assert_eq!(locked.code(), "account_locked");
    // More attempts during the lock neither count nor extend it.
    for i in 0..10 {
        assert_eq!(
            login_from(
                &app,
                &format!("198.51.100.{}", 100 + i),
                &owner.email,
                "guess"
            )
            .await
            .status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // The owner, from an address the account knows, is let through.
    let r = login_from(&app, "192.0.2.10", &owner.email, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // And once the window passes, a new address works too.
    let _ = login_from(&app, "198.51.100.1", &owner.email, "guess").await;
    app.clock.advance(time::Duration::minutes(16));
    let r = login_from(&app, "198.51.100.200", &owner.email, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

async fn cors_answers_only_configured_origins(db: Db) {
    let app = spawn_app_with(db, |c| c.cors_origins = "https://app.example".into()).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
    let evil = preflight("https://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let closed = spawn_app_with(db, |_| {}).await;
    let r = closed
        .client
        .get(closed.url("/healthz"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
}

async fn hsts_is_sent_behind_a_tls_proxy(db: Db) {
    let plain = spawn_app_with(db, |_| {}).await;
    let r = plain
        .client
        .get(plain.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    let proxied = spawn_app_with(db, |c| c.behind_tls_proxy = true).await;
    let r = proxied
        .client
        .get(proxied.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(r
        .headers()
        .get("strict-transport-security")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("max-age="));
    let trusted = spawn_app_with(db, |c| c.trusted_proxies = "127.0.0.1/32, ::1".into()).await;
    let r = trusted
        .client
        .get(trusted.url("/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("strict-transport-security").is_some(),
        "a trusted proxy saying https turns HSTS on"
    );
}
