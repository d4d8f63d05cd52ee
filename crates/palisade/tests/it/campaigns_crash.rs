//! A campaign across a crash: the real `palisade serve` binary dispatches a campaign to a few
//! hundred contacts, is killed with SIGKILL mid-run while one send has reached Meta (the
//! simulator recorded it) but its answer has not come back, and is started again on the same
//! database. The simulator's record of what it received is the ground truth: no recipient got
//! the campaign twice, every recipient ends in exactly one state, and the counts add up.
//!
//! What the design promises (see `core::campaigns::dispatch` and `whatsapp::outbound`): a
//! recipient is moved to `dispatched` in the same transaction as its queued message, so a crash
//! never queues it twice; a bulk send records its attempt before the Graph call, so the send
//! whose answer the crash swallowed is failed `outcome_unknown` (it did reach the customer once)
//! instead of being sent again; the sends that were claimed but not started go out after the
//! lease. The send queue's lease (2 minutes) and the campaign's (30 seconds) are what a dead
//! node leaves behind; the test moves them into the past while the server is down, as if the
//! restart had come that much later, so the run stays within seconds.

use crate::metrics::serve;
use crate::support::whatsapp_fixture_with;
use palisade_testkit::{Db, TestDb};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

both!(a_campaign_is_sent_at_most_once_across_a_kill_and_restart);

const RECIPIENTS: usize = 300;

async fn sim_config(client: &reqwest::Client, sim: &str, patch: Value) -> Value {
    let r = client
        .post(format!("{sim}/_sim/config"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{status} {body}");
    body
}

async fn sim_outbound(client: &reqwest::Client, sim: &str, phone_number_id: &str) -> Vec<Value> {
    client
        .get(format!(
            "{sim}/_sim/phone-numbers/{phone_number_id}/outbound"
        ))
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// Polls `check` every 50 ms until it is true; panics with `what` after `within`.
async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_campaign_is_sent_at_most_once_across_a_kill_and_restart(db: Db) {
    // The in-process app only sets things up: its sender and dispatcher are off, so every
    // campaign message goes through the spawned binary.
    // Its other workers are off too: on SQLite two processes share one database file (not a
    // deployment Palisade supports; here only to drive the spawned server), and a write of
    // theirs at the wrong moment can make one of the server's outcome records fail, leaving
    // that send leased for two minutes.
    let fx = whatsapp_fixture_with(db, |c| {
        c.outbound_worker_interval_ms = 0;
        c.webhooks_worker_interval_ms = 0;
        c.mail_worker_interval_ms = 0;
        c.media_worker_interval_ms = 0;
    })
    .await;
    fx.sync_templates().await;
    let client = reqwest::Client::new();
    sim_config(&client, &fx.sim, json!({"auto_status": false})).await;
    let token = fx.owner.access_token.clone();

    // The audience, created a few at a time.
    let mut phones: BTreeMap<String, String> = BTreeMap::new(); // contact id → wa_id (digits)
    let numbers: Vec<String> = (0..RECIPIENTS)
        .map(|i| format!("+4477009{:05}", 10_000 + i))
        .collect();
    for chunk in numbers.chunks(20) {
        let mut set = tokio::task::JoinSet::new();
        for phone in chunk {
            let (client, url, token, phone) = (
                client.clone(),
                fx.app.url("/api/v1/contacts"),
                token.clone(),
                phone.clone(),
            );
            set.spawn(async move {
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"phone": phone}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let body: Value = r.json().await.unwrap();
                (body["id"].as_str().unwrap().to_owned(), phone)
            });
        }
        while let Some(done) = set.join_next().await {
            let (id, phone) = done.unwrap();
            phones.insert(id, phone.trim_start_matches('+').to_owned());
        }
    }
    let r = fx
        .app
        .post(
            "/api/v1/campaigns",
            Some(&token),
            json!({
                "name": "Crash sale",
                "connection_id": fx.connection_id,
                "template": {"name": "order_confirmation", "language": "en_US"},
                "parameters": [
                    {"type": "contact_field", "field": "name", "fallback": "friend"},
                    {"type": "literal", "value": "CRASH-1"}
                ],
                "audience": {},
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // The real server on the same database, keys and simulator, dispatching at 40/s.
    let (database_url, migration_url) = match &fx.app.db {
        TestDb::Sqlite { url } => (url.clone(), None),
        TestDb::Postgres {
            app_url, admin_url, ..
        } => (app_url.clone(), Some(admin_url.clone())),
    };
    let signing = fx.app.config.signing_keys.as_ref().unwrap();
    let encryption = fx.app.config.encryption_keys.as_ref().unwrap();
    let mut env = vec![
        ("PALISADE_DATABASE_URL", database_url.as_str()),
        ("PALISADE_SIGNING_KEYS", signing.expose_secret()),
        ("PALISADE_ENCRYPTION_KEYS", encryption.expose_secret()),
        ("PALISADE_WHATSAPP_GRAPH_BASE_URL", fx.sim.as_str()),
        ("PALISADE_CAMPAIGN_MESSAGES_PER_SECOND", "40"),
        ("PALISADE_OUTBOUND_WORKER_INTERVAL_MS", "200"),
        ("PALISADE_RATE_LIMIT_API_PER_MINUTE", "0"),
    ];
    if let Some(m) = &migration_url {
        env.push(("PALISADE_DATABASE_MIGRATION_URL", m.as_str()));
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, _, _logs) = serve(dir.path(), &env);
    let r = client
        .post(format!("{base}/api/v1/campaigns/{id}/start"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Mid-run, hold Meta's answers back: the next send is recorded by the simulator (it went
    // out) and the server waits for its answer. Then SIGKILL.
    let (c, sim, pid) = (&client, fx.sim.as_str(), fx.phone_number_id.as_str());
    wait_until(Duration::from_secs(20), "the first sends", || async move {
        sim_outbound(c, sim, pid).await.len() >= 60
    })
    .await;
    sim_config(c, sim, json!({"hold_send_answers": true})).await;
    wait_until(Duration::from_secs(10), "a send in flight", || async move {
        sim_config(c, sim, json!({})).await["send_answers_waiting"] == 1
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    sim_config(&client, &fx.sim, json!({"hold_send_answers": false})).await;
    let at_kill = sim_outbound(c, sim, pid).await;
    assert!(
        at_kill.len() < RECIPIENTS,
        "killed mid-run: {} sent",
        at_kill.len()
    );
    let in_flight = at_kill.last().unwrap()["to"].as_str().unwrap().to_owned();

    // What the dead node left leased: as if the restart came after the leases ran out.
    fx.app
        .db
        .execute_as_owner(
            "UPDATE whatsapp_outbound_queue SET next_attempt_at = (SELECT MIN(created_at) FROM messages);
             UPDATE campaigns SET lease_until = NULL;",
        )
        .await
        .unwrap();

    let (mut child, base, _, logs) = serve(dir.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let campaign = loop {
        let campaign: Value = client
            .get(format!("{base}/api/v1/campaigns/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if campaign["status"] == "completed" && campaign["counts"]["queued"] == 0 {
            break campaign;
        }
        if Instant::now() >= deadline {
            // The restarted server's warnings say why (a retried send, a refusal).
            let warnings: Vec<String> = logs.try_iter().filter(|l| l.contains("WARN")).collect();
            panic!(
                "the campaign did not complete: {campaign}\n{}",
                warnings.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Every recipient, once, in one state.
    let mut recipients: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!(
                "{base}/api/v1/campaigns/{id}/recipients?limit=200{cursor}"
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        recipients.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let ids: BTreeSet<&str> = recipients
        .iter()
        .map(|r| r["contact_id"].as_str().unwrap())
        .collect();
    assert_eq!(recipients.len(), RECIPIENTS);
    assert_eq!(ids.len(), RECIPIENTS, "each recipient listed once");

    // The simulator's record: no one received the campaign twice.
    let received = sim_outbound(c, sim, pid).await;
    let mut per_phone: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &received {
        assert_eq!(m["type"], "template", "{m}");
        *per_phone.entry(m["to"].as_str().unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = per_phone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "received twice: {twice:?}");
    let wamid_of: BTreeMap<&str, &str> = received
        .iter()
        .map(|m| (m["to"].as_str().unwrap(), m["wamid"].as_str().unwrap()))
        .collect();

    // Each recipient's state agrees with what the simulator received.
    let mut sent = 0;
    let mut unknown = Vec::new();
    for r in &recipients {
        let phone = phones[r["contact_id"].as_str().unwrap()].as_str();
        match r["status"].as_str().unwrap() {
            "sent" => {
                sent += 1;
                assert_eq!(
                    r["wamid"].as_str(),
                    wamid_of.get(phone).copied(),
                    "a sent recipient's message is the one the simulator received: {r}"
                );
            }
            "failed" => {
                assert_eq!(r["error"]["title"], "outcome_unknown", "{r}");
                unknown.push(phone);
            }
            other => panic!("recipient in state {other} after completion: {r}"),
        }
    }
    // Only the send whose answer the kill swallowed is unknown, and it did reach the customer.
    assert_eq!(unknown, vec![in_flight.as_str()]);
    assert_eq!(per_phone.len(), RECIPIENTS, "everyone received it once");
    let counts = &campaign["counts"];
    assert_eq!(counts["targeted"], RECIPIENTS, "{campaign}");
    assert_eq!(counts["sent"], sent, "{campaign}");
    assert_eq!(counts["failed"], 1, "{campaign}");
    assert_eq!(counts["skipped"], 0, "{campaign}");
    assert_eq!(
        campaign["failures"],
        json!([{"code": 0, "title": "outcome_unknown", "count": 1}]),
        "{campaign}"
    );
}
