//! Client addresses behind trusted proxies, CORS, HSTS, and the owner's way through a lock.

use palisade_testkit::{spawn_app_with, Db, GOOD_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

both!(
    forwarded_addresses_are_believed_only_from_trusted_proxies,
    a_flood_from_many_addresses_does_not_lock_out_the_owner,
    cors_answers_only_configured_origins,
    hsts_is_sent_behind_a_tls_proxy,
    ipv6_clients_share_one_budget_per_slash_64,
    ipv4_mapped_peers_are_their_ipv4_address_everywhere,
    an_unreadable_forwarded_entry_ends_the_walk
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

/// The client addresses of `session`'s user's sessions, as the API shows them.
async fn session_ips(app: &palisade_testkit::TestApp, access_token: &str) -> Vec<String> {
    let sessions = app.get("/api/v1/auth/sessions", access_token).await;
    assert_eq!(sessions.status, StatusCode::OK, "{:?}", sessions.body);
    sessions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["ip"].as_str().map(str::to_owned))
        .collect()
}

async fn ipv6_clients_share_one_budget_per_slash_64(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.rate_limit_login_per_minute = 2;
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
    })
    .await;
    // Rotating through one /64 (a single subscriber's allocation) spends one budget.
    for ip in ["2001:db8:aa:1::1", "2001:db8:aa:1::2"] {
        let r = login_from(&app, ip, "x@x.example", "nope").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{ip}");
    }
    let r = login_from(
        &app,
        "2001:db8:aa:1:ffff:1234:5678:9abc",
        "x@x.example",
        "nope",
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.code(), "rate_limited");
    assert!(r.header("retry-after").is_some());
    // The neighbouring /64 is another client.
    let r = login_from(&app, "2001:db8:aa:2::1", "x@x.example", "nope").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // IPv4 clients keep a budget per address.
    let r = login_from(&app, "203.0.113.1", "x@x.example", "nope").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// Listening on `[::]` (as a dual-stack deployment does), an IPv4 client is seen as the peer
/// `::ffff:127.0.0.1`: the trusted-proxy list, the rate limits, the API key allow-lists and the
/// recorded addresses must all treat it as `127.0.0.1`.
async fn ipv4_mapped_peers_are_their_ipv4_address_everywhere(db: Db) {
    let mut app = spawn_app_with(db, |c| {
        c.listen = "[::]:0".into();
        c.rate_limit_login_per_minute = 2;
        c.trusted_proxies = "127.0.0.1/32".into();
    })
    .await;
    let port = reqwest::Url::parse(&app.base_url).unwrap().port().unwrap();
    // Connect over IPv4 to the dual-stack socket: the server's peer is ::ffff:127.0.0.1.
    app.base_url = format!("http://127.0.0.1:{port}");

    // Without a forwarded address the client is the peer, recorded in its IPv4 form.
    let owner = app.register("Acme", "owner@acme.example").await;
    let ips = session_ips(&app, &owner.access_token).await;
    assert_eq!(ips, ["127.0.0.1"], "not ::ffff:127.0.0.1");
    let audit = app
        .get(
            "/api/v1/audit-logs?action=tenant.registered",
            &owner.access_token,
        )
        .await;
    let records = audit.body["data"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{:?}", audit.body);
    assert_eq!(records[0]["ip"], "127.0.0.1");

    // The mapped peer is the trusted proxy 127.0.0.1: what it forwards is believed, and a mapped
    // forwarded address is recorded as IPv4.
    let ok = login_from(&app, "::ffff:203.0.113.8", &owner.email, GOOD_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let ips = session_ips(&app, ok.body["access_token"].as_str().unwrap()).await;
    assert!(ips.contains(&"203.0.113.8".to_owned()), "{ips:?}");

    // Both spellings of one address spend one login budget.
    for ip in ["::ffff:198.51.100.9", "198.51.100.9"] {
        let r = login_from(&app, ip, "x@x.example", "nope").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{ip}");
    }
    let r = login_from(&app, "::ffff:198.51.100.9", "x@x.example", "nope").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // API key allow-lists match either spelling, on either side.
    for (allowed, client) in [
        ("203.0.113.10", "::ffff:203.0.113.10"),
        ("::ffff:203.0.113.11", "203.0.113.11"),
        ("203.0.113.0/24", "::ffff:203.0.113.12"),
    ] {
        let created = app
            .post(
                "/api/v1/api-keys",
                Some(&owner.access_token),
                json!({"name": format!("k {allowed}"), "scopes": ["read_only"], "allowed_ips": [allowed]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let key = created.body["key"].as_str().unwrap();
        let use_from = |ip: &str| {
            app.client
                .get(app.url("/api/v1/tenant"))
                .header("authorization", format!("Bearer {key}"))
                .header("x-forwarded-for", ip.to_owned())
                .send()
        };
        assert_eq!(
            use_from(client).await.unwrap().status(),
            StatusCode::OK,
            "{allowed} from {client}"
        );
        assert_eq!(
            use_from("192.0.2.1").await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{allowed} from elsewhere"
        );
    }
}

async fn an_unreadable_forwarded_entry_ends_the_walk(db: Db) {
    let app = spawn_app_with(db, |c| {
        // The owner's first sign-in below spends one of the proxy's three.
        c.rate_limit_login_per_minute = 3;
        c.trusted_proxies = "127.0.0.1/32, ::1, 10.0.0.0/8".into();
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    // The trusted proxy wrote something that is not an address: nothing left of it is vouched
    // for, so the forged 192.0.2.66 is not the client; the proxy that wrote it is.
    let ok = login_from(&app, "192.0.2.66, unknown", &owner.email, GOOD_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let token = ok.body["access_token"].as_str().unwrap().to_owned();
    let ips = session_ips(&app, &token).await;
    assert!(!ips.contains(&"192.0.2.66".to_owned()), "{ips:?}");
    let ok = login_from(
        &app,
        "192.0.2.67, 203.0.113.9:4711, 10.1.2.3",
        &owner.email,
        GOOD_PASSWORD,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let ips = session_ips(&app, &token).await;
    assert!(
        ips.contains(&"10.1.2.3".to_owned()),
        "the hop that wrote it: {ips:?}"
    );
    assert!(!ips.contains(&"192.0.2.67".to_owned()), "{ips:?}");

    // Rotating the forged entry does not give fresh budgets: they are all the proxy's.
    for i in 0..2 {
        let r = login_from(
            &app,
            &format!("198.51.100.{i}, bogus"),
            "x@x.example",
            "nope",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = login_from(&app, "198.51.100.7, bogus", "x@x.example", "nope").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
}
