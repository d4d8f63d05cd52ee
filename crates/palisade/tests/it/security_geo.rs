//! The geographic detection rules (`impossible_travel`, `new_country`, an API key's new
//! country) with a MaxMind-format City database the test builds itself (`mmdb-writer`), read by
//! the server through `PALISADE_GEOIP_DB`.

use crate::support::login_from;
use palisade_testkit::{spawn_app_with, Db, TestApp, GOOD_PASSWORD};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

both!(
    an_impossible_travel_pair_raises_impossible_travel_and_new_country,
    travel_at_a_possible_speed_raises_nothing,
    an_api_key_used_from_a_new_country_raises_an_alert,
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
