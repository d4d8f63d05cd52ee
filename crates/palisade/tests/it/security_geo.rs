//! The geographic detection rules (`impossible_travel`, `new_country`, an API key's new
//! country) with a MaxMind-format City database the test builds itself (`mmdb-writer`), read by
//! the server through `PALISADE_GEOIP_DB`.

use crate::support::{create_user, login_from};
use crate::webhooks::Receiver;
use palisade_testkit::{spawn_app_with, Db, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

both!(
    an_impossible_travel_pair_raises_impossible_travel_and_new_country,
    travel_at_a_possible_speed_raises_nothing,
    the_travel_speed_and_the_country_memory_are_configurable,
    an_api_key_used_from_a_new_country_raises_an_alert,
    a_scripted_attack_raises_the_expected_alerts_by_mail_and_signed_webhook,
);

const PARIS: &str = "192.0.2.10";
const PARIS_2: &str = "192.0.2.20";
const LYON: &str = "192.0.2.140";
const SYDNEY: &str = "198.51.100.10";

#[derive(Serialize)]
struct Country {
    iso_code: &'static str,
    names: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize)]
struct City {
    country: Country,
    location: Location,
}

fn city(iso: &'static str, name: &'static str, lat: f64, lon: f64) -> City {
    City {
        country: Country {
            iso_code: iso,
            names: [("en", name)].into(),
        },
        location: Location {
            latitude: lat,
            longitude: lon,
        },
    }
}

/// A City database: Paris (192.0.2.0/25), Lyon (192.0.2.128/25), Sydney (198.51.100.0/24).
fn geo_db(dir: &std::path::Path) -> std::path::PathBuf {
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    w.insert(net("192.0.2.0/25"), &city("FR", "France", 48.8566, 2.3522))
        .unwrap();
    w.insert(net("192.0.2.128/25"), &city("FR", "France", 45.764, 4.8357))
        .unwrap();
    w.insert(
        net("198.51.100.0/24"),
        &city("AU", "Australia", -33.8688, 151.2093),
    )
    .unwrap();
    let path = dir.join("city.mmdb");
    std::fs::write(&path, w.to_bytes().unwrap()).unwrap();
    path
}

async fn app(db: Db, dir: &std::path::Path) -> TestApp {
    let path = geo_db(dir);
    spawn_app_with(db, move |c| {
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
        c.geoip_db = Some(path);
    })
    .await
}

async fn wait_alerts(app: &TestApp, token: &str, rule: &str, n: usize) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let r = app
            .get(&format!("/api/v1/security/alerts?rule={rule}"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let data = r.body["data"].as_array().unwrap().clone();
        if data.len() >= n {
            return data;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no {rule} alert within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in from `ip`; returns the access token.
async fn signed_in(app: &TestApp, ip: &str, email: &str) -> String {
    let r = login_from(app, ip, email, GOOD_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

async fn an_impossible_travel_pair_raises_impossible_travel_and_new_country(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(db, dir.path()).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    signed_in(&app, PARIS, &owner.email).await;
    app.clock.advance(time::Duration::hours(2));
    // Paris → Sydney (≈ 16,960 km) in two hours.
    let token = signed_in(&app, SYDNEY, &owner.email).await;
    let travel = wait_alerts(&app, &token, "impossible_travel", 1).await;
    let a = &travel[0];
    assert_eq!(a["severity"], "high");
    assert_eq!(a["subject"]["type"], "user");
    assert_eq!(a["subject"]["id"], owner.user_id.as_str());
    let summary = a["summary"].as_str().unwrap();
    assert!(
        summary.contains("(FR)") && summary.contains("(AU)"),
        "{summary}"
    );
    assert!(!a["evidence"].as_array().unwrap().is_empty());
    let country = wait_alerts(&app, &token, "new_country", 1).await;
    assert!(country[0]["summary"].as_str().unwrap().contains("AU"));
    assert_eq!(country[0]["severity"], "medium");
}

async fn travel_at_a_possible_speed_raises_nothing(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(db, dir.path()).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    signed_in(&app, PARIS, &owner.email).await;
    app.clock.advance(time::Duration::hours(2));
    // Paris → Lyon (≈ 390 km) in two hours, then another Paris address.
    signed_in(&app, LYON, &owner.email).await;
    app.clock.advance(time::Duration::hours(2));
    let token = signed_in(&app, PARIS_2, &owner.email).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    for rule in ["impossible_travel", "new_country"] {
        let r = app
            .get(&format!("/api/v1/security/alerts?rule={rule}"), &token)
            .await;
        assert_eq!(r.body["data"], json!([]), "{rule}");
    }
}

/// `PALISADE_DETECT_TRAVEL_KMH` at 100: Paris → Lyon in two hours (≈ 195 km/h) is too fast.
/// `PALISADE_DETECT_NEW_COUNTRY_DAYS` at 2: the alert names the memory it used.
async fn the_travel_speed_and_the_country_memory_are_configurable(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = geo_db(dir.path());
    let app = spawn_app_with(db, move |c| {
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
        c.geoip_db = Some(path);
        c.detect_travel_kmh = 100;
        c.detect_new_country_days = 2;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    signed_in(&app, PARIS, &owner.email).await;
    app.clock.advance(time::Duration::hours(2));
    let token = signed_in(&app, LYON, &owner.email).await;
    let travel = wait_alerts(&app, &token, "impossible_travel", 1).await;
    assert!(
        travel[0]["summary"].as_str().unwrap().contains("km/h"),
        "{}",
        travel[0]
    );
    // A day later, from Sydney (too fast for 100 km/h as well: only the country rule is looked
    // at here).
    app.clock.advance(time::Duration::hours(24));
    let token = signed_in(&app, SYDNEY, &owner.email).await;
    let country = wait_alerts(&app, &token, "new_country", 1).await;
    let summary = country[0]["summary"].as_str().unwrap();
    assert!(summary.contains("in 2 days"), "{summary}");
}

async fn an_api_key_used_from_a_new_country_raises_an_alert(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let app = app(db, dir.path()).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "crm-sync", "scopes": ["contacts:read"]}),
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    for ip in [PARIS, SYDNEY] {
        let s = app
            .client
            .get(app.url("/api/v1/contacts"))
            .bearer_auth(&key)
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let found = wait_alerts(&app, &owner.access_token, "api_key_new_address", 1).await;
    assert_eq!(found.len(), 1);
    let summary = found[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("country") && summary.contains("AU"),
        "{summary}"
    );
    assert_eq!(found[0]["severity"], "high");
}

const SECRET: &str = "whsec_c2VjdXJpdHktYWxlcnQtdGVzdC1zZWNyZXQtMzJieXRlcyE=";

fn signed(secret: &str, headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::STANDARD;
    let get = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    get("webhook-signature").split(' ').any(|s| s == expected)
}

/// The "done when": a password spray, a mass export and an impossible-travel pair, one
/// after the other, raise the expected alerts; the platform's mailbox gets a mail and its
/// webhook a signed `security.alert` for each.
async fn a_scripted_attack_raises_the_expected_alerts_by_mail_and_signed_webhook(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let path = geo_db(dir.path());
    let rx = Receiver::start().await;
    let url = rx.url.clone();
    let app = spawn_app_with(db, move |c| {
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
        c.geoip_db = Some(path);
        c.detect_export_rows = 3;
        c.security_alert_email = Some("soc@platform.example".into());
        c.security_alert_webhook = Some(url);
        c.security_alert_webhook_secret = Some(SECRET.to_owned().into());
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    app.super_admin("root@platform.example").await;

    // 1. A password spray: ten accounts, one wrong password each, from one address.
    for i in 0..10 {
        let email = format!("agent{i}@acme.example");
        create_user(&app, &owner, &email, "agent").await;
        let r = login_from(&app, "203.0.113.200", &email, "Wrong-password-1234").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // 2. A mass export: more rows than PALISADE_DETECT_EXPORT_ROWS (3).
    for i in 0..4 {
        let r = app
            .post(
                "/api/v1/contacts",
                Some(&owner.access_token),
                json!({"phone": format!("+4477009003{i:02}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = app
        .get("/api/v1/contacts/export?format=csv", &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // 3. An impossible-travel pair: Paris, then Sydney an hour later.
    signed_in(&app, PARIS, &owner.email).await;
    app.clock.advance(time::Duration::hours(1));
    let owner_token = signed_in(&app, SYDNEY, &owner.email).await;
    let root_token = app
        .login("root@platform.example", GOOD_PASSWORD)
        .await
        .access_token;

    // The spray is the platform's alert and Acme's (its accounts were the ones tried).
    for (rule, n) in [
        ("password_spraying", 2),
        ("mass_data_access", 1),
        ("impossible_travel", 1),
    ] {
        let found = wait_alerts(&app, &root_token, rule, n).await;
        assert_eq!(found.len(), n, "{rule}: {found:?}");
    }
    for rule in [
        "password_spraying",
        "mass_data_access",
        "impossible_travel",
        "new_country",
    ] {
        let found = wait_alerts(&app, &owner_token, rule, 1).await;
        assert_eq!(found[0]["tenant_id"], owner.tenant_id.as_str(), "{rule}");
    }
    // The platform's mailbox and webhook heard of every one (high: the admins too).
    let started = std::time::Instant::now();
    loop {
        let mails = app.mails_of("soc@platform.example", "security_alert").await;
        let rules: Vec<String> = mails.iter().map(|m| m.text.clone()).collect();
        let all = ["password_spraying", "mass_data_access", "impossible_travel"]
            .iter()
            .all(|r| rules.iter().any(|t| t.contains(r)));
        if all {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "platform mails: {rules:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin_mails = app.mails_of(&owner.email, "security_alert").await;
    assert!(
        admin_mails.len() >= 2,
        "password_spraying, mass_data_access and impossible_travel are high"
    );
    let started = std::time::Instant::now();
    loop {
        let got = rx.all();
        let rules: Vec<String> = got
            .iter()
            .map(|(h, b)| {
                assert!(signed(SECRET, h, b), "every platform delivery is signed");
                let v: Value = serde_json::from_slice(b).unwrap();
                assert_eq!(v["type"], "security.alert");
                v["data"]["rule"].as_str().unwrap().to_owned()
            })
            .collect();
        if ["password_spraying", "mass_data_access", "impossible_travel"]
            .iter()
            .all(|r| rules.iter().any(|x| x == r))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "platform webhook: {rules:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
