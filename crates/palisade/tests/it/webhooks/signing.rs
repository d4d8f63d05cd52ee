//! Signatures: the Standard Webhooks `v1` (HMAC-SHA256) and `v1a` (Ed25519) schemes, checked by
//! verifiers written here independently of the server's code, and secret rotation with its
//! overlap window.

use super::{
    active_webhook, app_with_private_targets, audit_actions, create, deliver, deliveries, now_unix,
    send_test, Receiver,
};
use crate::support::assert_error;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};

both!(
    deliveries_are_signed_and_rotation_double_signs,
    ed25519_endpoints_sign_v1a_with_the_shown_public_key,
    rotation_overlap_is_configurable_and_bounded,
);

// ---- the Standard Webhooks reference verifier, re-implemented independently ----

const WEBHOOK_TOLERANCE_IN_SECONDS: i64 = 5 * 60;

/// Mirrors `standardwebhooks.Webhook.verify`: strip `whsec_`, base64-decode the key, check the
/// timestamp within 5 minutes either way, then accept any `v1` signature equal (constant time)
/// to HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub(super) fn verify(
    secret: &str,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), &'static str> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(msg_id), Some(sig_header), Some(ts)) = (
        get("webhook-id"),
        get("webhook-signature"),
        get("webhook-timestamp"),
    ) else {
        return Err("Missing required headers");
    };
    let ts: i64 = ts.parse().map_err(|_| "Invalid Signature Headers")?;
    if ts < now_unix - WEBHOOK_TOLERANCE_IN_SECONDS {
        return Err("Message timestamp too old");
    }
    if ts > now_unix + WEBHOOK_TOLERANCE_IN_SECONDS {
        return Err("Message timestamp too new");
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "bad secret")?;
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{msg_id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = mac.finalize().into_bytes().to_vec();
    for versioned in sig_header.split(' ') {
        let Some((version, sig)) = versioned.split_once(',') else {
            continue;
        };
        if version != "v1" {
            continue;
        }
        let Ok(sig) = STANDARD.decode(sig) else {
            continue;
        };
        if sig.len() == expected.len()
            && sig
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        {
            return Ok(());
        }
    }
    Err("No matching signature found")
}

#[test]
fn the_verifier_accepts_the_reference_vector() {
    // The test vector of the Standard Webhooks reference libraries.
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "webhook-id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
    );
    h.insert("webhook-timestamp", "1614265330".parse().unwrap());
    h.insert(
        "webhook-signature",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
            .parse()
            .unwrap(),
    );
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = br#"{"test": 2432232314}"#;
    assert_eq!(verify(secret, &h, body, 1_614_265_330), Ok(()));
    assert_eq!(
        verify(secret, &h, body, 1_614_265_330 + 301),
        Err("Message timestamp too old")
    );
    assert_eq!(
        verify(secret, &h, body, 1_614_265_330 - 301),
        Err("Message timestamp too new")
    );
    assert!(verify(secret, &h, br#"{"test": 2432232315}"#, 1_614_265_330).is_err());
}

/// An independent `v1a` verifier: `whpk_` + base64 of the 32-byte key; accept any `v1a`
/// signature that ring's Ed25519 verifies over the exact bytes "{id}.{timestamp}.{body}".
fn verify_v1a(public_key: &str, headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let pk = STANDARD
        .decode(public_key.strip_prefix("whpk_").unwrap())
        .unwrap();
    assert_eq!(pk.len(), 32);
    let mut msg = format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).into_bytes();
    msg.extend_from_slice(body);
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, pk);
    get("webhook-signature").split(' ').any(|entry| {
        entry
            .strip_prefix("v1a,")
            .and_then(|sig| STANDARD.decode(sig).ok())
            .is_some_and(|sig| key.verify(&msg, &sig).is_ok())
    })
}

// ---- tests ----

async fn deliveries_are_signed_and_rotation_double_signs(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, secret) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;

    let t = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(t.status, StatusCode::ACCEPTED, "{:?}", t.body);
    assert_eq!(t.body["event_type"], "webhook.test");
    assert_eq!(deliver(&app).await, 1);
    assert_eq!(rx.count(), 1);
    let (headers, body) = rx.last();
    assert_eq!(
        headers.get("webhook-id").unwrap().to_str().unwrap(),
        t.body["id"].as_str().unwrap()
    );
    assert_eq!(
        headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "webhook.test");
    assert_eq!(payload["data"]["webhook_id"], id.as_str());
    let now = now_unix(&app);
    assert_eq!(verify(&secret, &headers, &body, now), Ok(()));
    // The reference verifier's tolerance: 5 minutes either way.
    assert_eq!(
        verify(&secret, &headers, &body, now + 301),
        Err("Message timestamp too old")
    );
    assert_eq!(
        verify(&secret, &headers, &body, now - 301),
        Err("Message timestamp too new")
    );
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(verify(&secret, &headers, &tampered, now).is_err());
    let d = deliveries(&app, &owner, &id).await;
    assert_eq!(d[0]["status"], "delivered");
    assert_eq!(d[0]["attempts"], 1);
    assert_eq!(d[0]["last_status"], 200);
    assert_eq!(d[0]["last_response"], "receiver says hello");

    // Rotation: both secrets sign for the overlap.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            Some(&owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let new_secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(r.body["webhook"]["previous_secret_expires_at"].is_string());
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    let now = now_unix(&app);
    assert_eq!(verify(&new_secret, &headers, &body, now), Ok(()));
    assert_eq!(verify(&secret, &headers, &body, now), Ok(()));

    // The overlap ends after 24 hours.
    app.clock.advance(time::Duration::hours(25));
    let owner = app.login(&owner.email, &owner.password).await;
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let now = now_unix(&app);
    assert_eq!(verify(&new_secret, &headers, &body, now), Ok(()));
    assert!(verify(&secret, &headers, &body, now).is_err());

    // A leaked secret is dropped at once.
    let r = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            Some(&owner.access_token),
            json!({"expire_previous_now": true}),
        )
        .await;
    let third = r.body["secret"].as_str().unwrap().to_owned();
    assert!(r.body["webhook"]["previous_secret_expires_at"].is_null());
    app.post(
        &format!("/api/v1/webhooks/{id}/test"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    let now = now_unix(&app);
    assert_eq!(verify(&third, &headers, &body, now), Ok(()));
    assert!(verify(&new_secret, &headers, &body, now).is_err());
    assert!(audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.secret_rotated"));
}

async fn ed25519_endpoints_sign_v1a_with_the_shown_public_key(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let bad = create(
        &app,
        &owner,
        json!({"url": rx.url, "events": ["*"], "signature_algorithm": "rsa"}),
    )
    .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(bad.body["error"]["fields"]["signature_algorithm"].is_array());
    let hmac = create(
        &app,
        &owner,
        json!({"url": rx.url, "events": ["*"], "signature_algorithm": "hmac-sha256"}),
    )
    .await;
    assert_eq!(hmac.status, StatusCode::CREATED, "{:?}", hmac.body);
    assert_eq!(hmac.body["webhook"]["signature_algorithm"], "hmac_sha256");
    assert!(hmac.body["webhook"]["public_key"].is_null());
    assert!(hmac.body["secret"].as_str().unwrap().starts_with("whsec_"));

    let r = create(
        &app,
        &owner,
        json!({"url": rx.url, "events": ["webhook.test"], "signature_algorithm": "ed25519"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    let public = r.body["secret"].as_str().unwrap().to_owned();
    assert!(public.starts_with("whpk_"), "{public}");
    assert_eq!(r.body["webhook"]["public_key"], public.as_str());
    assert_eq!(r.body["webhook"]["signature_algorithm"], "ed25519");
    app.post(
        &format!("/api/v1/webhooks/{id}/approve"),
        Some(&owner.access_token),
        json!({}),
    )
    .await;
    let g = app
        .get(&format!("/api/v1/webhooks/{id}"), &owner.access_token)
        .await;
    assert_eq!(
        g.body["public_key"],
        public.as_str(),
        "GET shows the public key"
    );
    // The private key is never shown, nor stored in clear.
    assert_eq!(
        app.db
            .count_as_owner("SELECT COUNT(*) FROM webhooks WHERE secret_ciphertext LIKE '%whsk_%'")
            .await
            .unwrap(),
        0
    );

    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert!(sig.starts_with("v1a,") && !sig.contains(' '), "{sig}");
    assert!(verify_v1a(&public, &headers, &body));
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(!verify_v1a(&public, &headers, &tampered));
    let other_public_key = "whpk_".to_owned() + &STANDARD.encode([7u8; 32]);
    assert!(!verify_v1a(&other_public_key, &headers, &body));

    // Rotation: a new key pair; both sign during the overlap, then only the new one.
    let rot = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            Some(&owner.access_token),
            json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(rot.status, StatusCode::OK, "{:?}", rot.body);
    let new_public = rot.body["secret"].as_str().unwrap().to_owned();
    assert!(new_public.starts_with("whpk_") && new_public != public);
    assert_eq!(rot.body["webhook"]["public_key"], new_public.as_str());
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    assert!(verify_v1a(&public, &headers, &body));
    assert!(verify_v1a(&new_public, &headers, &body));
    app.clock.advance(time::Duration::seconds(3601));
    let owner = app.login(&owner.email, &owner.password).await;
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    assert!(verify_v1a(&new_public, &headers, &body));
    assert!(!verify_v1a(&public, &headers, &body), "the old key expired");
}

async fn rotation_overlap_is_configurable_and_bounded(db: Db) {
    let app = app_with_private_targets(db).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (id, _) = active_webhook(&app, &owner, &rx.url, json!(["webhook.test"])).await;
    let path = format!("/api/v1/webhooks/{id}/rotate-secret");
    for bad in [
        json!({"overlap_seconds": 604_801}),
        json!({"overlap_seconds": -1}),
    ] {
        let r = app.post(&path, Some(&owner.access_token), bad).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(r.body["error"]["fields"]["overlap_seconds"].is_array());
    }
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": 60, "expire_previous_now": true}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": "1h"}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // Nothing was rotated by the refusals.
    assert!(!audit_actions(&app, &owner)
        .await
        .iter()
        .any(|a| a == "webhook.secret_rotated"));

    use palisade_core::Clock;
    let expires = |r: &palisade_testkit::Resp| {
        time::OffsetDateTime::parse(
            r.body["webhook"]["previous_secret_expires_at"]
                .as_str()
                .unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": 604_800}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(expires(&r) - app.clock.now(), time::Duration::days(7));
    let r = app.post(&path, Some(&owner.access_token), json!({})).await;
    assert_eq!(expires(&r) - app.clock.now(), time::Duration::hours(24));
    // 0: the previous secret stops at once, as with expire_previous_now.
    let r = app
        .post(
            &path,
            Some(&owner.access_token),
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["webhook"]["previous_secret_expires_at"].is_null());
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    send_test(&app, &owner, &id).await;
    assert_eq!(deliver(&app).await, 1);
    let (headers, body) = rx.last();
    let sig = headers.get("webhook-signature").unwrap().to_str().unwrap();
    assert_eq!(sig.split(' ').count(), 1, "{sig}");
    assert_eq!(verify(&secret, &headers, &body, now_unix(&app)), Ok(()));
}
