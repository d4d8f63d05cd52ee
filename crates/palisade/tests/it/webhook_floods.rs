//! Meta's webhook endpoint under a stranger's flood: unknown ids refused before the body is
//! read, refusals limited per address (never Meta's signed deliveries), and a connection's
//! refusals recorded once per minute instead of once per request.

use crate::support::meta_signature as sign;
use crate::support::{whatsapp_fixture, whatsapp_fixture_with, WhatsAppFixture};
use palisade_core::whatsapp::webhook_refusals;
use palisade_testkit::{Db, Resp, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    unknown_and_disconnected_connections_are_refused_before_the_body_is_read,
    refusals_are_limited_per_address_but_signed_deliveries_never_are,
    a_connections_refusals_are_one_audit_record_per_minute
);

/// A payload Meta could send (a status for a message we never sent: stored, changes nothing).
fn payload(f: &WhatsAppFixture, n: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": f.phone_number_id},
            "statuses": [{"id": format!("wamid.flood{n}"), "status": "delivered", "timestamp": "1750000100", "recipient_id": "15551230000"}],
        }}]}]
    }))
    .unwrap()
}

/// POSTs `body` to connection `id` from client address `from` (believed: the tests trust the
/// loopback proxy), with `signature` if any.
async fn post(
    f: &WhatsAppFixture,
    id: &str,
    from: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> Resp {
    let mut req = f
        .app
        .client
        .post(f.app.url(&format!("/webhooks/whatsapp/{id}")))
        .header("content-type", "application/json")
        .header("x-forwarded-for", from)
        .body(body);
    if let Some(s) = signature {
        req = req.header("X-Hub-Signature-256", s);
    }
    TestApp::read(req.send().await.unwrap()).await
}

/// Sends only the head of a POST announcing a `declared`-byte body, never the body, and returns
/// the status the server answers (failing if it does not answer within a few seconds, as it
/// would not while it waits for the body).
async fn status_without_sending_the_body(app: &TestApp, path: &str, declared: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(&app.url(path)).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         x-hub-signature-256: sha256=00\r\ncontent-length: {declared}\r\n\r\n",
        url.path(),
        url.host_str().unwrap(),
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        // Until the end of the response head (the body, if any, is not needed).
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer without the body: the server is waiting to read it"
    );
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

async fn unknown_and_disconnected_connections_are_refused_before_the_body_is_read(db: Db) {
    let f = whatsapp_fixture(db).await;
    let unknown = format!("/webhooks/whatsapp/{}", uuid::Uuid::now_v7());
    assert_eq!(
        status_without_sending_the_body(&f.app, &unknown, 2 * 1024 * 1024).await,
        401
    );

    let d = f
        .app
        .post(
            &format!(
                "/api/v1/whatsapp/connections/{}/disconnect",
                f.connection_id
            ),
            Some(&f.owner.access_token),
            json!({}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{:?}", d.body);
    let disconnected = format!("/webhooks/whatsapp/{}", f.connection_id);
    assert_eq!(
        status_without_sending_the_body(&f.app, &disconnected, 2 * 1024 * 1024).await,
        401
    );
    // The codes, with a body this time.
    let r = post(
        &f,
        &uuid::Uuid::now_v7().to_string(),
        "192.0.2.1",
        b"{}".to_vec(),
        None,
    )
    .await;
    assert_eq!(r.code(), "unknown_connection");
    let r = post(&f, &f.connection_id, "192.0.2.1", b"{}".to_vec(), None).await;
    assert_eq!(r.code(), "connection_disconnected");
    assert_eq!(
        f.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_inbound_events")
            .await
            .unwrap(),
        0
    );
}

async fn refusals_are_limited_per_address_but_signed_deliveries_never_are(db: Db) {
    let f = whatsapp_fixture_with(db, |c| {
        c.rate_limit_webhook_failures_per_minute = 3;
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
    })
    .await;
    let id = f.connection_id.clone();
    let attacker = "198.51.100.7";
    let body = payload(&f, 0);
    // Within the budget: 401 with the precise code.
    for (sig, code) in [
        (Some(sign("not-the-secret", &body)), "signature_invalid"),
        (None, "signature_missing"),
    ] {
        let r = post(&f, &id, attacker, body.clone(), sig).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), code);
    }
    let r = post(
        &f,
        &uuid::Uuid::now_v7().to_string(),
        attacker,
        body.clone(),
        None,
    )
    .await;
    assert_eq!(r.code(), "unknown_connection");
    // Past it: every kind of refusal is 429 with a wait.
    for target in [id.clone(), uuid::Uuid::now_v7().to_string()] {
        let r = post(&f, &target, attacker, body.clone(), Some(sign("x", &body))).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
        assert_eq!(r.code(), "rate_limited");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // Correctly signed deliveries from that same address, more than the budget, all pass: the
    // signature is checked before the limit refuses, and only refusals count.
    for n in 1..=5 {
        let body = payload(&f, n);
        let r = post(
            &f,
            &id,
            attacker,
            body.clone(),
            Some(sign(&f.app_secret, &body)),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "delivery {n}: {:?}", r.body);
    }
    // Another address has its own budget; rotating inside one IPv6 /64 does not.
    let r = post(&f, &id, "203.0.113.5", body.clone(), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for i in 1..=3 {
        let r = post(&f, &id, &format!("2001:db8:5:5::{i}"), body.clone(), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{i}");
    }
    let r = post(&f, &id, "2001:db8:5:5::99", body.clone(), None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        f.app
            .db
            .count_as_owner("SELECT COUNT(*) FROM whatsapp_inbound_events")
            .await
            .unwrap(),
        5,
        "only the signed deliveries were stored"
    );
}

async fn refusal_records(f: &WhatsAppFixture) -> Vec<Value> {
    let audit = f
        .app
        .get(
            "/api/v1/audit-logs?action=whatsapp.webhook.signature_invalid",
            &f.owner.access_token,
        )
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{:?}", audit.body);
    audit.body["data"].as_array().unwrap().clone()
}

/// The refusal records once there are `n` of them (the flusher runs every second), checking
/// that there are never more.
async fn refusal_records_when(f: &WhatsAppFixture, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let records = refusal_records(f).await;
        assert!(records.len() <= n, "{records:?}");
        if records.len() == n {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {n} refusal records");
}

async fn a_connections_refusals_are_one_audit_record_per_minute(db: Db) {
    let f = whatsapp_fixture_with(db, |c| {
        c.rate_limit_webhook_failures_per_minute = 4;
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
    })
    .await;
    let id = f.connection_id.clone();
    let body = payload(&f, 0);
    // A minute of refusals from two addresses, some of them past the address's budget.
    for _ in 0..6 {
        post(
            &f,
            &id,
            "198.51.100.7",
            body.clone(),
            Some(sign("x", &body)),
        )
        .await;
    }
    post(&f, &id, "203.0.113.5", body.clone(), None).await;
    // Made-up ids name no tenant: never recorded.
    post(
        &f,
        &uuid::Uuid::now_v7().to_string(),
        "198.51.100.7",
        body.clone(),
        None,
    )
    .await;
    assert!(
        refusal_records(&f).await.is_empty(),
        "nothing is written per request"
    );

    // The first refusal of the next minute writes the previous minute, before it is answered.
    f.app.clock.advance(time::Duration::seconds(60));
    post(&f, &id, "203.0.113.5", body.clone(), None).await;
    // (The flusher may have written it a moment earlier: either way, exactly once.)
    let records = refusal_records_when(&f, 1).await;
    let r = &records[0];
    assert_eq!(r["target_id"], id.as_str());
    assert_eq!(r["ip"], "198.51.100.7", "the minute's first refusal");
    let m = &r["metadata"];
    assert_eq!(m["count"], 7, "{m}");
    assert_eq!(
        m["reasons"],
        json!({"signature_invalid": 6, "signature_missing": 1})
    );
    assert_eq!(
        m["rate_limited"], 2,
        "refusals past the budget are counted too"
    );
    assert_eq!(m["addresses"], json!({"198.51.100.7": 6, "203.0.113.5": 1}));

    // A minute that ends with no later refusal is written by the flusher.
    f.app.clock.advance(time::Duration::seconds(60));
    let records = refusal_records_when(&f, 2).await;
    let counts: Vec<&Value> = records.iter().map(|r| &r["metadata"]["count"]).collect();
    assert!(counts.contains(&&json!(1)), "{counts:?}");

    // The minute in progress is written at shutdown (here: the same flush, all minutes).
    post(&f, &id, "203.0.113.5", body.clone(), None).await;
    assert_eq!(f.app.services.inbound.refusals.pending(), 1);
    assert_eq!(webhook_refusals::flush(&f.app.services, true).await, 1);
    assert_eq!(refusal_records(&f).await.len(), 3);
    assert_eq!(f.app.services.inbound.refusals.pending(), 0);
}
