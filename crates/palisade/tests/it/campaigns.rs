//! Broadcast campaigns: creation and every refusal, the state machine and its 409s, audiences
//! (tags, exclusions, ids), consent skips, a STOP between the start and the dispatch, Meta's
//! 131049 and 131050, the pace (a round takes at most its budget and never piles a backlog),
//! the bulk priority and the at-most-once send, a suspended tenant, another tenant's ids,
//! roles, scopes and impersonation, and two starts at once. With Redis, two nodes' dispatchers
//! keep one pace together; without Redis answering, each falls back to its own. Meta's
//! throughput (130429) and pair-rate (131056) refusals are retried later, never failed at once
//! nor sent twice, and a number over its throughput is not hammered.

use crate::support::{assert_error, audit_count, whatsapp_fixture_with, WhatsAppFixture};
use palisade_core::campaigns::dispatch::{dispatch_round, Pacer};
use palisade_testkit::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    a_campaign_reaches_its_audience_once_and_completes,
    bad_campaigns_are_refused_with_precise_codes,
    the_state_machine_refuses_wrong_transitions,
    marketing_needs_consent_and_stops_and_refusals_are_honoured,
    dispatch_keeps_the_pace_and_agents_go_first,
    an_interrupted_bulk_send_is_not_sent_again,
    a_suspended_tenants_campaign_waits,
    a_campaign_whose_template_is_paused_mid_run_is_paused_and_told,
    another_tenants_ids_roles_scopes_and_impersonation,
    two_starts_at_once_materialise_one_audience,
    a_pace_whose_redis_does_not_answer_falls_back_to_the_nodes_own,
    throughput_refusals_are_retried_later_and_slow_the_dispatch,
    a_pair_rate_refusal_is_retried_later_and_sent_once,
);

both_with_redis!(two_nodes_sharing_redis_keep_one_pace_together);

/// A fixture whose own workers do not send or dispatch: the tests drive rounds themselves.
async fn fixture(db: Db) -> WhatsAppFixture {
    fixture_with(db, |_| {}).await
}

async fn fixture_with(
    db: Db,
    tweak: impl FnOnce(&mut palisade::config::RawConfig),
) -> WhatsAppFixture {
    let fx = whatsapp_fixture_with(db, |c| {
        c.outbound_worker_interval_ms = 0;
        tweak(c);
    })
    .await;
    fx.sync_templates().await;
    // Meta's acceptance is the last status unless a test moves it.
    let r = fx
        .app
        .client
        .post(format!("{}/_sim/config", fx.sim))
        .json(&json!({"auto_status": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    fx
}

async fn contact(app: &TestApp, t: &str, body: Value) -> String {
    let r = app.post("/api/v1/contacts", Some(t), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn new_campaign(fx: &WhatsAppFixture, audience: Value) -> Value {
    json!({
        "name": "Spring sale",
        "connection_id": fx.connection_id,
        "template": {"name": "order_confirmation", "language": "en_US"},
        "parameters": [
            {"type": "contact_field", "field": "name", "fallback": "friend"},
            {"type": "literal", "value": "SPRING-24"}
        ],
        "audience": audience,
    })
}

async fn create(fx: &WhatsAppFixture, body: Value) -> Value {
    let r = fx
        .app
        .post("/api/v1/campaigns", Some(&fx.owner.access_token), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn act(fx: &WhatsAppFixture, id: &str, action: &str) -> (StatusCode, Value) {
    let r = fx
        .app
        .post(
            &format!("/api/v1/campaigns/{id}/{action}"),
            Some(&fx.owner.access_token),
            json!({}),
        )
        .await;
    (r.status, r.body)
}

async fn get(fx: &WhatsAppFixture, id: &str) -> Value {
    let r = fx
        .app
        .get(&format!("/api/v1/campaigns/{id}"), &fx.owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn round(
    fx: &WhatsAppFixture,
    pacer: &mut Pacer,
) -> palisade_core::campaigns::dispatch::Round {
    dispatch_round(&fx.app.services, pacer).await.unwrap()
}

async fn send(fx: &WhatsAppFixture) {
    palisade_core::whatsapp::outbound::send_pending(&fx.app.services)
        .await
        .unwrap();
}

/// The simulator's outbound messages (every send Meta accepted), oldest first.
async fn sim_outbound(fx: &WhatsAppFixture) -> Vec<Value> {
    fx.app
        .client
        .get(format!(
            "{}/_sim/phone-numbers/{}/outbound",
            fx.sim, fx.phone_number_id
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

async fn recipients(fx: &WhatsAppFixture, id: &str, status: Option<&str>) -> Vec<Value> {
    let q = status.map(|s| format!("?status={s}")).unwrap_or_default();
    let r = fx
        .app
        .get(
            &format!("/api/v1/campaigns/{id}/recipients{q}"),
            &fx.owner.access_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.count_as_owner(sql).await.unwrap()
}

fn sum(counts: &Value, keys: &[&str]) -> i64 {
    keys.iter().map(|k| counts[*k].as_i64().unwrap()).sum()
}

/// The stored template's meta id (to drive the simulator's template controls).
async fn meta_id(fx: &WhatsAppFixture, name: &str) -> String {
    let r = fx
        .app
        .get(
            &format!("/api/v1/whatsapp/templates?q={name}"),
            &fx.owner.access_token,
        )
        .await;
    r.body["data"][0]["meta_id"].as_str().unwrap().to_owned()
}

async fn a_campaign_reaches_its_audience_once_and_completes(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    // The simulator's customer (Ana Souza) is one of the audience.
    let ana = contact(
        app,
        t,
        json!({"phone": "+447700900123", "name": "Ana", "tags": ["vip"]}),
    )
    .await;
    let bo = contact(
        app,
        t,
        json!({"phone": "+447700900202", "tags": ["vip", "lead"]}),
    )
    .await;
    let out = contact(
        app,
        t,
        json!({"phone": "+447700900203", "tags": ["vip"], "marketing_opt_in": false}),
    )
    .await;
    let _excluded = contact(
        app,
        t,
        json!({"phone": "+447700900204", "tags": ["vip", "blocked"]}),
    )
    .await;
    let _other = contact(app, t, json!({"phone": "+447700900205"})).await;
    let listed = contact(app, t, json!({"phone": "+447700900206", "name": "Lia"})).await;

    let c = create(
        &fx,
        new_campaign(
            &fx,
            json!({"tags": ["VIP"], "contact_ids": [listed], "exclude_tags": ["blocked"]}),
        ),
    )
    .await;
    assert_eq!(c["status"], "draft");
    assert_eq!(c["counts"]["targeted"], 0, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();

    let (st, started) = act(&fx, &id, "start").await;
    assert_eq!(st, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "running");
    // ana, bo, out (opted out: skipped) and the listed contact; not the excluded one.
    assert_eq!(started["counts"]["targeted"], 4, "{started}");
    assert_eq!(started["counts"]["skipped"], 1, "{started}");
    assert_eq!(started["counts"]["queued"], 3, "{started}");
    let skipped = recipients(&fx, &id, Some("skipped")).await;
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["contact_id"], out.as_str());
    assert_eq!(skipped[0]["skip_reason"], "opted_out");

    let mut pacer = Pacer::new(20);
    let r = round(&fx, &mut pacer).await;
    assert_eq!(r.queued, 3, "{r:?}");
    send(&fx).await;
    let sent = sim_outbound(&fx).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    let mut to: Vec<String> = sent
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["447700900123", "447700900202", "447700900206"]);
    // The parameters: the contact's name, its fallback, and the literal.
    let bodies: Vec<String> = sent.iter().map(|m| m["body"].to_string()).collect();
    assert!(bodies.iter().any(|b| b.contains("\"Ana\"")), "{bodies:?}");
    assert!(
        bodies.iter().any(|b| b.contains("\"friend\"")),
        "{bodies:?}"
    );
    assert!(bodies.iter().all(|b| b.contains("SPRING-24")), "{bodies:?}");

    assert_eq!(r.completed, 1, "nothing is pending any more: {r:?}");
    // The next round sends nothing again.
    let r = round(&fx, &mut pacer).await;
    assert_eq!((r.queued, r.completed), (0, 0), "{r:?}");
    send(&fx).await;
    assert_eq!(sim_outbound(&fx).await.len(), 3);
    let done = get(&fx, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let counts = &done["counts"];
    assert_eq!(counts["targeted"], 4);
    assert_eq!(
        sum(
            counts,
            &["skipped", "queued", "sent", "delivered", "read", "failed"]
        ),
        4,
        "{counts}"
    );
    assert_eq!(sum(counts, &["sent", "delivered", "read"]), 3, "{counts}");
    let all = recipients(&fx, &id, None).await;
    assert_eq!(all.len(), 4);
    assert!(all
        .iter()
        .filter(|r| r["status"] != "skipped")
        .all(|r| r["wamid"].as_str().is_some_and(|w| w.starts_with("wamid."))));
    for who in [&ana, &bo] {
        assert!(all.iter().any(|r| r["contact_id"] == who.as_str()));
    }

    // Ana's reply after the campaign's message counts as replied.
    assert_eq!(get(&fx, &id).await["counts"]["replied"], 0);
    fx.app.clock.advance(time::Duration::seconds(1));
    fx.customer_message("text", json!({"body": "Tell me more"}))
        .await;
    let mut replied = Value::Null;
    for _ in 0..400 {
        replied = get(&fx, &id).await["counts"]["replied"].clone();
        if replied == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(replied, 1);

    // The analytics funnel (members read it).
    let today = fx.app.services.clock.now().date();
    let q = format!(
        "/api/v1/analytics/campaigns?from={}&to={}",
        today.previous_day().unwrap(),
        today.next_day().unwrap()
    );
    let agent = app.add_user(&fx.owner, "agent@acme.example", "agent").await;
    let r = app.get(&q, &agent.access_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let f = &r.body["campaigns"][0];
    assert_eq!(f["id"], id.as_str(), "{}", r.body);
    assert_eq!(
        [
            &f["targeted"],
            &f["skipped"],
            &f["sent"],
            &f["failed"],
            &f["replied"]
        ],
        [&json!(4), &json!(1), &json!(3), &json!(0), &json!(1)],
        "{}",
        r.body
    );
    // The console's dashboard shows the same funnel, each recipient once at its furthest step.
    let (status, html) = crate::console::signed_in_page(
        app,
        &agent.access_token,
        &format!(
            "/analytics?period=custom&from={}&to={}",
            today.previous_day().unwrap(),
            today
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(&format!(r#"<a href="/campaigns/{id}">"#)),
        "{html}"
    );
    assert!(
        html.contains(r#"<td data-label="Targeted">4</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"<td data-label="Sent">3</td>"#), "{html}");
    assert!(
        html.contains(r#"<td data-label="Replied">1 (33%)</td>"#),
        "{html}"
    );
    let funnel = format!(r#"<desc id="funnel-{id}-desc">"#);
    let at = html.find(&funnel).expect("the funnel's bar") + funnel.len();
    let desc = &html[at..at + html[at..].find('<').unwrap()];
    let counts = get(&fx, &id).await["counts"].clone();
    let (read, delivered, sent) = (
        counts["read"].as_i64().unwrap(),
        counts["delivered"].as_i64().unwrap(),
        counts["sent"].as_i64().unwrap(),
    );
    assert!(
        desc.contains(&format!("Read {read} "))
            && desc.contains(&format!("Delivered, not read {delivered} "))
            && desc.contains(&format!("Sent, not delivered {sent} "))
            && desc.contains("Skipped 1 (25%)")
            && desc.contains("Waiting 0 (0%)"),
        "{desc}"
    );
    let r = app
        .get(&format!("{q}&connection_id={}", uuid::Uuid::now_v7()), t)
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    for action in ["campaign.created", "campaign.started", "campaign.completed"] {
        assert_eq!(audit_count(app, action).await, 1, "{action}");
    }
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM whatsapp_outbound_queue").await,
        0
    );
    // Listed, filtered by status, with the same counts as the campaign itself.
    let r = app.get("/api/v1/campaigns?status=completed", t).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["data"][0]["counts"], get(&fx, &id).await["counts"]);
    assert_eq!(r.body["data"][0]["counts"]["targeted"], 4, "{}", r.body);
    let r = app.get("/api/v1/campaigns?status=draft", t).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 0, "{}", r.body);
    assert_error(
        &app.get("/api/v1/campaigns?status=done", t).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &app.get(&format!("/api/v1/campaigns/{id}/recipients?status=x"), t)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

async fn bad_campaigns_are_refused_with_precise_codes(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    let post = |body: Value| async move { app.post("/api/v1/campaigns", Some(t), body).await };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = new_campaign(&fx, json!({}));
        f(&mut b);
        b
    };
    let r = post(with(&|b| b["template"]["name"] = json!("no_such_template"))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "template_not_found");
    let r = post(with(&|b| b["template"]["language"] = json!("pt_BR"))).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "template_language_unavailable",
    );
    let r = post(with(&|b| {
        b["parameters"] = json!([{"type": "literal", "value": "x"}])
    }))
    .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "template_parameter_mismatch",
    );
    let r = post(with(&|b| {
        b["parameters"] = json!([{"type": "order_field", "field": "number"}, {"type": "literal", "value": "x"}])
    }))
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(r.body.to_string().contains("no order"), "{}", r.body);
    let r = post(with(&|b| {
        b["audience"] = json!({"contact_ids": ["nope"], "x": 1})
    }))
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = post(with(&|b| {
        b["name"] = json!(" ");
        b["scheduled_at"] = json!("tomorrow");
    }))
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields = r.body["error"]["fields"].as_object().unwrap();
    assert!(
        fields.contains_key("name") && fields.contains_key("scheduled_at"),
        "{}",
        r.body
    );
    let r = post(with(&|b| b["connection_id"] = json!(uuid::Uuid::now_v7()))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = post(with(&|b| b["surprise"] = json!(true))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // A template no longer approved (paused at Meta, synced).
    let hello = meta_id(&fx, "hello_world").await;
    let r = app
        .client
        .post(format!("{}/_sim/templates/{hello}/status", fx.sim))
        .json(&json!({"status": "PAUSED"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    fx.sync_templates().await;
    let r = post(with(&|b| {
        b["template"]["name"] = json!("hello_world");
        b["parameters"] = json!([]);
    }))
    .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "template_not_approved",
    );
    assert_eq!(count(app, "SELECT COUNT(*) FROM campaigns").await, 0);
}

async fn the_state_machine_refuses_wrong_transitions(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    contact(app, t, json!({"phone": "+447700900301"})).await;
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/campaigns/{id}");
    for action in ["pause", "resume"] {
        let (st, body) = act(&fx, &id, action).await;
        assert_eq!(st, StatusCode::CONFLICT, "{action}: {body}");
        assert_eq!(body["error"]["code"], "campaign_state_conflict");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("draft"),
            "{body}"
        );
    }
    // A draft is edited.
    let r = app.patch(&path, t, json!({"name": "Summer sale"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Summer sale");
    let r = app
        .patch(
            &path,
            t,
            json!({"template": {"name": "nope", "language": "en_US"}}),
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "template_not_found");

    let (st, body) = act(&fx, &id, "start").await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("running"))
    );
    assert_error(
        &app.post(&format!("{path}/start"), Some(t), json!({})).await,
        StatusCode::CONFLICT,
        "campaign_state_conflict",
    );
    assert_error(
        &app.delete(&path, t).await,
        StatusCode::CONFLICT,
        "campaign_running",
    );
    assert_error(
        &app.patch(&path, t, json!({"name": "x"})).await,
        StatusCode::CONFLICT,
        "campaign_not_editable",
    );
    let (st, body) = act(&fx, &id, "pause").await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("paused"))
    );
    // Paused: the dispatcher leaves it alone.
    let r = round(&fx, &mut Pacer::new(20)).await;
    assert_eq!(r.queued, 0);
    let (st, body) = act(&fx, &id, "resume").await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("running"))
    );
    let (st, body) = act(&fx, &id, "cancel").await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    // Its recipient not yet queued is skipped as cancelled.
    assert_eq!(body["counts"]["skipped"], 1, "{body}");
    assert_eq!(
        recipients(&fx, &id, Some("skipped")).await[0]["skip_reason"],
        "cancelled"
    );
    let (st, body) = act(&fx, &id, "cancel").await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(app.delete(&path, t).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, t).await.status, StatusCode::NOT_FOUND);
    for a in [
        "campaign.created",
        "campaign.updated",
        "campaign.started",
        "campaign.paused",
        "campaign.resumed",
        "campaign.cancelled",
        "campaign.deleted",
    ] {
        assert_eq!(audit_count(app, a).await, 1, "{a}");
    }

    // Scheduled in the future: start schedules it, the dispatcher waits; it can still be
    // edited, paused and resumed (scheduled again).
    let mut body = new_campaign(&fx, json!({}));
    body["scheduled_at"] = json!("2099-01-01T09:00:00Z");
    let id = create(&fx, body).await["id"].as_str().unwrap().to_owned();
    let (st, body) = act(&fx, &id, "start").await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("scheduled"))
    );
    assert_eq!(round(&fx, &mut Pacer::new(20)).await.queued, 0);
    let r = app
        .patch(
            &format!("/api/v1/campaigns/{id}"),
            t,
            json!({"name": "Later"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["counts"]["targeted"], 1, "{}", r.body);
    let (_, body) = act(&fx, &id, "pause").await;
    assert_eq!(body["status"], "paused");
    let (_, body) = act(&fx, &id, "resume").await;
    assert_eq!(body["status"], "scheduled");
    // Its time comes: the dispatcher runs it.
    let r = app
        .db
        .execute_as_owner("UPDATE campaigns SET scheduled_at = '2000-01-01T00:00:00.000000000Z' WHERE status = 'scheduled'")
        .await;
    if r.is_err() {
        app.db
            .execute_as_owner("UPDATE campaigns SET scheduled_at = TIMESTAMPTZ '2000-01-01 00:00:00Z' WHERE status = 'scheduled'")
            .await
            .unwrap();
    }
    let r = round(&fx, &mut Pacer::new(20)).await;
    assert_eq!((r.queued, r.completed), (1, 1), "{r:?}");
    assert_eq!(get(&fx, &id).await["status"], "completed");
    assert_eq!(audit_count(app, "campaign.running").await, 1);
}

async fn marketing_needs_consent_and_stops_and_refusals_are_honoured(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    // The template becomes a MARKETING one at Meta.
    let meta = meta_id(&fx, "order_confirmation").await;
    let r = app
        .client
        .post(format!("{}/_sim/templates/{meta}/category", fx.sim))
        .json(&json!({"category": "MARKETING"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    fx.sync_templates().await;
    let opted = |phone: &str| json!({"phone": phone, "marketing_opt_in": true, "tags": ["promo"]});
    let ana = contact(app, t, opted("+447700900123")).await; // the simulator's Ana Souza
    let never = contact(app, t, json!({"phone": "+447700900402", "tags": ["promo"]})).await;
    let limited = contact(app, t, opted("+447700900403")).await;
    let stopped = contact(app, t, opted("+447700900404")).await;
    let late = contact(app, t, opted("+447700900405")).await;
    let fine = contact(app, t, opted("+447700900406")).await;
    for (wa, code) in [("447700900403", 131_049), ("447700900404", 131_050)] {
        let r = app
            .client
            .post(format!("{}/_sim/recipients/{wa}/refuse", fx.sim))
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let id = create(&fx, new_campaign(&fx, json!({"tags": ["promo"]}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, started) = act(&fx, &id, "start").await;
    assert_eq!(started["counts"]["targeted"], 6, "{started}");
    let skipped = recipients(&fx, &id, Some("skipped")).await;
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (
            skipped[0]["contact_id"].as_str(),
            skipped[0]["skip_reason"].as_str()
        ),
        (Some(never.as_str()), Some("no_marketing_consent"))
    );

    // Ana writes STOP after the start (a whole second later, as Meta's timestamps are in
    // seconds and a keyword older than her opt-in changes nothing): the dispatcher skips her.
    let at = fx.app.services.clock.now().unix_timestamp() + 2;
    let r = app
        .client
        .post(format!("{}/_sim/inbound", fx.sim))
        .json(&json!({
            "phone_number_id": fx.phone_number_id, "from": "447700900123",
            "profile_name": "Ana Souza", "type": "text", "text": {"body": "STOP"},
            "timestamp": at.to_string(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let path = format!("/api/v1/contacts/{ana}");
    let mut out = false;
    for _ in 0..400 {
        if app.get(&path, t).await.body["opted_out"] == true {
            out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(out, "the STOP keyword was not applied");
    let r = round(&fx, &mut Pacer::new(20)).await;
    assert_eq!((r.queued, r.skipped), (4, 1), "{r:?}");
    // `late` opts out through the API after its message was queued: the sender checks again.
    let r = app
        .patch(
            &format!("/api/v1/contacts/{late}"),
            t,
            json!({"marketing_opt_in": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    send(&fx).await;
    let sent = sim_outbound(&fx).await;
    assert_eq!(sent.len(), 1, "only `fine` is accepted by Meta: {sent:?}");
    assert_eq!(sent[0]["to"], "447700900406");

    let c = get(&fx, &id).await;
    let counts = &c["counts"];
    assert_eq!(counts["skipped"], 2, "{c}");
    assert_eq!(counts["failed"], 3, "{c}");
    let failures = c["failures"].as_array().unwrap();
    let code_of = |code: i64| {
        failures
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no failure {code} in {c}"))
            .clone()
    };
    assert_eq!(code_of(131_049)["count"], 1);
    assert_eq!(code_of(131_050)["count"], 1);
    assert_eq!(code_of(0)["title"], "contact_opted_out");
    let failed = recipients(&fx, &id, Some("failed")).await;
    let of = |who: &str| {
        failed
            .iter()
            .find(|r| r["contact_id"] == who)
            .unwrap()
            .clone()
    };
    assert_eq!(of(&limited)["error"]["code"], 131_049);
    assert_eq!(of(&stopped)["error"]["code"], 131_050);
    // 131050 opted `stopped` out of marketing (source whatsapp); 131049 changed nothing.
    let s = app
        .get(&format!("/api/v1/contacts/{stopped}"), t)
        .await
        .body;
    assert_eq!(
        (s["opted_out"].as_bool(), s["opt_out_source"].as_str()),
        (Some(true), Some("whatsapp")),
        "{s}"
    );
    let l = app
        .get(&format!("/api/v1/contacts/{limited}"), t)
        .await
        .body;
    assert_eq!(l["marketing_opt_in"], true, "{l}");
    // Failed recipients are never retried: nothing left in the queue.
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM whatsapp_outbound_queue").await,
        0
    );

    // 131050 arriving as a `failed` status webhook also opts the contact out.
    let wamid = sent[0]["wamid"].as_str().unwrap();
    let r = app
        .client
        .post(format!(
            "{}/_sim/phone-numbers/{}/outbound/{wamid}/status",
            fx.sim, fx.phone_number_id
        ))
        .json(&json!({"status": "failed", "error": 131_050}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let path = format!("/api/v1/contacts/{fine}");
    let mut source = Value::Null;
    for _ in 0..400 {
        source = app.get(&path, t).await.body["opt_out_source"].clone();
        if source == "whatsapp" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(source, "whatsapp");
}

async fn dispatch_keeps_the_pace_and_agents_go_first(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    for i in 0..17 {
        contact(app, t, json!({"phone": format!("+4477009005{i:02}")})).await;
    }
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(&fx, &id, "start").await;
    let mut pacer = Pacer::new(5);
    let r = round(&fx, &mut pacer).await;
    assert_eq!(
        r.queued, 5,
        "a round takes at most the connection's budget: {r:?}"
    );
    // At once again: no token left.
    let r = round(&fx, &mut pacer).await;
    assert_eq!(r.queued, 0, "{r:?}");
    // Another node's dispatcher (its own full bucket) may fill the queue up to two seconds'
    // worth (one waiting for the sender's next poll, one being sent), and no further.
    let r = round(&fx, &mut Pacer::new(5)).await;
    assert_eq!(r.queued, 5, "{r:?}");
    let r = round(&fx, &mut Pacer::new(5)).await;
    assert_eq!(r.queued, 0, "{r:?}");
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM whatsapp_outbound_queue WHERE priority = 1"
        )
        .await,
        10
    );

    // An agent's answer, queued after the campaign's messages, is claimed first.
    fx.customer_message("text", json!({"body": "Hi"})).await;
    let mut conv = Value::Null;
    for _ in 0..400 {
        let r = app.get("/api/v1/conversations", t).await;
        if let Some(c) = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["last_message"]["direction"] == "inbound")
        {
            conv = c["id"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let conv = conv.as_str().expect("the inbound conversation").to_owned();
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(t),
            json!({"type": "text", "text": {"body": "Hello Ana"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let reply = r.body["id"].as_str().unwrap().to_owned();
    let mut tx = app
        .services
        .store
        .begin(palisade_store::SystemScope::new("test"))
        .await
        .unwrap();
    let now = fx.app.services.clock.now();
    let first = palisade_store::send_queue::claim_sends(&mut tx, now, now, 1)
        .await
        .unwrap();
    drop(tx);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].message_id.to_string(), reply);

    // The queue drained, the next round takes the next budget; every recipient gets one
    // message in the end, however many dispatchers race.
    send(&fx).await;
    fx.app.clock.advance(time::Duration::milliseconds(1100));
    let (a, b) = tokio::join!(dispatch_round(&fx.app.services, &mut pacer), async {
        let mut other = Pacer::new(5);
        dispatch_round(&fx.app.services, &mut other).await
    });
    let total = a.unwrap().queued + b.unwrap().queued;
    // Seven recipients left, two budgets of five: each taken once.
    assert!((5..=7).contains(&total), "{total}");
    for _ in 0..10 {
        send(&fx).await;
        fx.app.clock.advance(time::Duration::seconds(1));
        round(&fx, &mut pacer).await;
        if get(&fx, &id).await["status"] == "completed" {
            break;
        }
    }
    send(&fx).await;
    assert_eq!(get(&fx, &id).await["status"], "completed");
    let sent = sim_outbound(&fx).await;
    let mut to: Vec<String> = sent
        .iter()
        .filter(|m| m["type"] == "template")
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    let before = to.len();
    to.dedup();
    assert_eq!(
        (before, to.len()),
        (17, 17),
        "each recipient exactly once: {to:?}"
    );
}

async fn an_interrupted_bulk_send_is_not_sent_again(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    contact(app, t, json!({"phone": "+447700900601"})).await;
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(&fx, &id, "start").await;
    assert_eq!(round(&fx, &mut Pacer::new(20)).await.queued, 1);
    // A sender recorded its attempt and died before storing Meta's answer.
    let mut tx = app
        .services
        .store
        .begin(palisade_store::SystemScope::new("test"))
        .await
        .unwrap();
    let now = fx.app.services.clock.now();
    let claimed = palisade_store::send_queue::claim_sends(&mut tx, now, now, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let a = palisade_store::send_queue::begin_attempt(
        &mut tx,
        claimed[0].tenant_id,
        claimed[0].message_id,
        now,
    )
    .await
    .unwrap();
    assert_eq!(a, palisade_store::send_queue::Attempt::BulkStarted);
    tx.commit().await.unwrap();
    // The next sender fails it as outcome_unknown rather than sending it a second time.
    send(&fx).await;
    assert!(sim_outbound(&fx).await.is_empty());
    let c = get(&fx, &id).await;
    assert_eq!(c["counts"]["failed"], 1, "{c}");
    assert_eq!(c["failures"][0]["title"], "outcome_unknown", "{c}");
}

async fn a_suspended_tenants_campaign_waits(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    contact(app, t, json!({"phone": "+447700900701"})).await;
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(&fx, &id, "start").await;
    let root = app.super_admin("root@platform.example").await;
    let tenant = &fx.owner.tenant_id;
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{tenant}/suspend"),
            Some(&root.access_token),
            json!({"reason": "unpaid invoices"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let mut pacer = Pacer::new(20);
    assert_eq!(round(&fx, &mut pacer).await.queued, 0);
    let r = app
        .post(
            &format!("/api/v1/admin/tenants/{tenant}/reactivate"),
            Some(&root.access_token),
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(round(&fx, &mut pacer).await.queued, 1);
}

/// Meta pauses the campaign's template after it started: the dispatcher does not keep a
/// `running` campaign that sends nothing. It pauses it (audited with the reason, webhook
/// `campaign.paused`), tells the admins in the app, and a resume once the template is
/// approved again sends to the recipients still waiting.
async fn a_campaign_whose_template_is_paused_mid_run_is_paused_and_told(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    contact(app, t, json!({"phone": "+447700900711"})).await;
    contact(app, t, json!({"phone": "+447700900712"})).await;
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(act(&fx, &id, "start").await.0, StatusCode::OK);
    let meta = meta_id(&fx, "order_confirmation").await;
    let set = |status: &'static str| {
        app.client
            .post(format!("{}/_sim/templates/{meta}/status", fx.sim))
            .json(&json!({ "status": status }))
            .send()
    };
    assert!(set("PAUSED").await.unwrap().status().is_success());
    fx.sync_templates().await;

    let mut pacer = Pacer::new(20);
    assert_eq!(round(&fx, &mut pacer).await.queued, 0);
    let c = get(&fx, &id).await;
    assert_eq!(c["status"], "paused", "{c}");
    assert_eq!(c["counts"]["queued"], 2, "both still waiting: {c}");
    assert_eq!(audit_count(app, "campaign.paused").await, 1);
    let notes = app.get("/api/v1/notifications", t).await;
    let kinds: Vec<_> = notes.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        kinds.contains(&"campaign.paused".to_owned()),
        "{}",
        notes.body
    );
    // Another round does not pause it again.
    round(&fx, &mut pacer).await;
    assert_eq!(audit_count(app, "campaign.paused").await, 1);

    // Approved again and resumed: the waiting recipients get their message.
    assert!(set("APPROVED").await.unwrap().status().is_success());
    fx.sync_templates().await;
    assert_eq!(act(&fx, &id, "resume").await.0, StatusCode::OK);
    assert_eq!(round(&fx, &mut pacer).await.queued, 2);
}

async fn another_tenants_ids_roles_scopes_and_impersonation(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    contact(app, t, json!({"phone": "+447700900801"})).await;
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/campaigns/{id}");

    // Another tenant: 404 for the campaign and for its own use of our connection.
    let other = app.register("Globex", "owner@globex.example").await;
    let o = other.access_token.as_str();
    assert_eq!(app.get(&path, o).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("{path}/recipients"), o).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.patch(&path, o, json!({"name": "x"})).await.status,
        StatusCode::NOT_FOUND
    );
    for a in ["start", "pause", "resume", "cancel"] {
        assert_eq!(
            app.post(&format!("{path}/{a}"), Some(o), json!({}))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{a}"
        );
    }
    assert_eq!(app.delete(&path, o).await.status, StatusCode::NOT_FOUND);
    let r = app
        .post("/api/v1/campaigns", Some(o), new_campaign(&fx, json!({})))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(app.get("/api/v1/campaigns", o).await.body["data"]
        .as_array()
        .unwrap()
        .is_empty());

    // Agents read, never write.
    let agent = app.add_user(&fx.owner, "agent@acme.example", "agent").await;
    let a = agent.access_token.as_str();
    assert_eq!(app.get(&path, a).await.status, StatusCode::OK);
    assert_error(
        &app.post("/api/v1/campaigns", Some(a), new_campaign(&fx, json!({})))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        app.post(&format!("{path}/start"), Some(a), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&path, a).await.status, StatusCode::FORBIDDEN);

    // API keys by scope.
    let key = |scopes: Value| async move {
        let k = app
            .post(
                "/api/v1/api-keys",
                Some(t),
                json!({"name": "k", "scopes": scopes}),
            )
            .await;
        assert_eq!(k.status, StatusCode::CREATED, "{}", k.body);
        k.body["key"].as_str().unwrap().to_owned()
    };
    let read = key(json!(["campaigns:read"])).await;
    assert_eq!(app.get(&path, &read).await.status, StatusCode::OK);
    assert_eq!(
        app.patch(&path, &read, json!({"name": "x"})).await.status,
        StatusCode::FORBIDDEN
    );
    let none = key(json!(["contacts:read"])).await;
    assert_eq!(app.get(&path, &none).await.status, StatusCode::FORBIDDEN);
    let write = key(json!(["campaigns:write"])).await;
    let r = app
        .post(
            "/api/v1/campaigns",
            Some(&write),
            new_campaign(&fx, json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let by_key = format!("/api/v1/campaigns/{}", r.body["id"].as_str().unwrap());
    assert_eq!(
        app.delete(&by_key, &write).await.status,
        StatusCode::FORBIDDEN
    );
    let del = key(json!(["campaigns:delete"])).await;
    assert_eq!(
        app.delete(&by_key, &del).await.status,
        StatusCode::NO_CONTENT
    );

    // Impersonation: read-only reads; a write impersonation starts it.
    let root = app.super_admin("root@platform.example").await;
    let imp = format!("/api/v1/admin/tenants/{}/impersonate", fx.owner.tenant_id);
    let r = app
        .post(
            &imp,
            Some(&root.access_token),
            json!({"reason": "support case 7"}),
        )
        .await;
    let ro = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&path, &ro).await.status, StatusCode::OK);
    assert_error(
        &app.post(&format!("{path}/start"), Some(&ro), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "impersonation_read_only",
    );
    let r = app
        .post(
            &imp,
            Some(&root.access_token),
            json!({"reason": "support case 8", "write": true}),
        )
        .await;
    let w = r.body["access_token"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("{path}/start"), Some(&w), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

async fn two_starts_at_once_materialise_one_audience(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    for i in 0..5 {
        contact(app, t, json!({"phone": format!("+4477009009{i:02}")})).await;
    }
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a, b) = tokio::join!(act(&fx, &id, "start"), act(&fx, &id, "start"));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    assert_eq!(
        count(app, "SELECT COUNT(*) FROM campaign_recipients").await,
        5
    );
    assert_eq!(audit_count(app, "campaign.started").await, 1);
}

async fn sim_config(fx: &WhatsAppFixture, patch: Value) {
    let r = fx
        .app
        .client
        .post(format!("{}/_sim/config", fx.sim))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// The send queue's rows of campaign messages: `(attempts, waiting for a later time, last
/// error)`.
async fn bulk_queue(fx: &WhatsAppFixture) -> Vec<(i64, bool, String)> {
    let mut tx = fx
        .app
        .services
        .store
        .begin_read(palisade_store::SystemScope::new("test"))
        .await
        .unwrap();
    #[derive(sqlx::FromRow)]
    struct Row {
        attempts: i64,
        next_attempt_at: time::OffsetDateTime,
        last_error: Option<String>,
    }
    let rows: Vec<Row> = tx
        .fetch_all(palisade_store::Query::new(
            "SELECT attempts, next_attempt_at, last_error FROM whatsapp_outbound_queue
             WHERE priority = 1 ORDER BY message_id",
        ))
        .await
        .unwrap();
    let now = fx.app.services.clock.now();
    rows.into_iter()
        .map(|r| {
            (
                r.attempts,
                r.next_attempt_at > now,
                r.last_error.unwrap_or_default(),
            )
        })
        .collect()
}

/// Two dispatchers on one database and one Redis racing each other for two campaigns of one
/// connection (10 a second), the queue drained as they go: together they queue what one
/// connection's pace allows (a second's burst, then 10 a second), not twice it. On PostgreSQL
/// they are two nodes; on SQLite (one node per database file) two dispatchers of one node,
/// each with a Redis connection of its own, as two nodes would have.
async fn two_nodes_sharing_redis_keep_one_pace_together(db: Db) {
    let fx = fixture_with(db, |c| {
        palisade_testkit::use_redis(c);
        c.campaign_messages_per_second = 10;
    })
    .await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    let peer = match db {
        Db::Postgres => Some(app.spawn_peer().await),
        Db::Sqlite => None,
    };
    let second = peer.as_ref().unwrap_or(app);
    for i in 0..30 {
        contact(app, t, json!({"phone": format!("+4477009011{i:02}")})).await;
    }
    for _ in 0..2 {
        let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (st, body) = act(&fx, &id, "start").await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let own_redis = || {
        let url = palisade_testkit::redis_url().unwrap();
        let redis =
            palisade_core::coordination::Redis::new(&url, &app.config.redis_key_prefix, None);
        std::sync::Arc::new(redis.unwrap())
    };
    let mut pa = Pacer::shared(10, app.services.redis.clone());
    let mut pb = Pacer::shared(10, Some(own_redis()));
    let started = std::time::Instant::now();
    let mut queued = 0;
    let mut last = started;
    while started.elapsed() < Duration::from_secs(3) {
        // The nodes' clocks follow the real one (a node's own bucket would refill with it).
        let step = last.elapsed();
        last = std::time::Instant::now();
        for node in [app, second] {
            node.clock.advance(time::Duration::try_from(step).unwrap());
        }
        let (a, b) = tokio::join!(
            dispatch_round(&app.services, &mut pa),
            dispatch_round(&second.services, &mut pb)
        );
        queued += a.unwrap().queued + b.unwrap().queued;
        // Drained, so that the queue's bound is not what holds the dispatchers back (by the
        // peer's sender too: each node's test clock started when the node did).
        for node in [app, second] {
            palisade_core::whatsapp::outbound::send_pending(&node.services)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let most = 10.0 + 10.0 * secs;
    assert!(
        (queued as f64) <= most + 2.0,
        "{queued} queued in {secs:.2} s: more than one pace of 10 a second allows ({most:.0})"
    );
    // Loose: the machine running the tests may be busy; twice the pace is what must not be.
    assert!(
        (queued as f64) >= 10.0 * secs * 0.4,
        "{queued} queued in {secs:.2} s: far below the pace"
    );
    // Every queued message went out once.
    palisade_core::whatsapp::outbound::send_pending(&second.services)
        .await
        .unwrap();
    assert_eq!(sim_outbound(&fx).await.len(), queued);
}

/// `PALISADE_REDIS_URL` set but Redis not answering: the pace falls back to the node's own
/// bucket (never no pace), and the fallback is counted. Needs no running Redis.
async fn a_pace_whose_redis_does_not_answer_falls_back_to_the_nodes_own(db: Db) {
    let fx = fixture_with(db, |c| c.metrics_listen = "127.0.0.1:0".into()).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    for i in 0..8 {
        contact(app, t, json!({"phone": format!("+4477009012{i:02}")})).await;
    }
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(&fx, &id, "start").await;
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = palisade_core::coordination::Redis::new(
        &format!("redis://127.0.0.1:{port}"),
        "palisade-test-pace",
        None,
    )
    .unwrap();
    let before = pace_fallbacks(app).await;
    let mut pacer = Pacer::shared(5, Some(std::sync::Arc::new(redis)));
    assert_eq!(round(&fx, &mut pacer).await.queued, 5);
    send(&fx).await;
    assert_eq!(
        round(&fx, &mut pacer).await.queued,
        0,
        "the node's own bucket is spent"
    );
    fx.app.clock.advance(time::Duration::seconds(1));
    assert_eq!(round(&fx, &mut pacer).await.queued, 3);
    assert!(
        pace_fallbacks(app).await >= before + 3.0,
        "every round paced without Redis is counted"
    );
}

/// `palisade_redis_fallbacks_total{limit="campaign_pace"}` (one recorder per process: compare
/// deltas).
async fn pace_fallbacks(app: &TestApp) -> f64 {
    let text = crate::metrics::scrape(app).await.text;
    text.lines()
        .find(|l| l.starts_with("palisade_redis_fallbacks_total{limit=\"campaign_pace\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

/// The number takes 3 messages a second; the campaign's pace is 6. Meta's 130429 is retried
/// later with backoff (a definite refusal: safe for an at-most-once campaign send), never
/// failed; the connection's other campaign sends of the round are held back without a request
/// (one refused request per round, not one per message); once the queue holds two seconds'
/// worth, a round queues only what left it; in the end every recipient has the message exactly
/// once.
async fn throughput_refusals_are_retried_later_and_slow_the_dispatch(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    for i in 0..18 {
        contact(app, t, json!({"phone": format!("+4477009013{i:02}")})).await;
    }
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(&fx, &id, "start").await;
    sim_config(&fx, json!({"throughput_per_second": 3})).await;
    let mut pacer = Pacer::new(6);
    assert_eq!(round(&fx, &mut pacer).await.queued, 6);
    send(&fx).await;
    assert_eq!(sim_outbound(&fx).await.len(), 3, "Meta took 3");
    let queue = bulk_queue(&fx).await;
    assert_eq!(queue.len(), 3, "{queue:?}");
    let refused: Vec<_> = queue.iter().filter(|q| q.0 == 1).collect();
    assert_eq!(refused.len(), 1, "one refused request: {queue:?}");
    assert!(refused[0].1, "retried later: {queue:?}");
    assert!(refused[0].2.contains("130429"), "{queue:?}");
    let held: Vec<_> = queue.iter().filter(|q| q.0 == 0).collect();
    assert_eq!(held.len(), 2, "{queue:?}");
    assert!(
        held.iter().all(|q| q.1 && q.2.contains("held back")),
        "{queue:?}"
    );
    let c = get(&fx, &id).await;
    assert_eq!(
        (&c["counts"]["failed"], &c["counts"]["queued"]),
        (&json!(0), &json!(15)),
        "nothing failed: {c}"
    );

    // A second later the bucket is full again and the queue (3 waiting) has room for two
    // seconds' worth (12): a full round. Another second later, with nothing sent in between,
    // 9 wait: the dispatch slows to the room left.
    fx.app.clock.advance(time::Duration::milliseconds(1100));
    assert_eq!(round(&fx, &mut pacer).await.queued, 6);
    fx.app.clock.advance(time::Duration::milliseconds(1100));
    assert_eq!(round(&fx, &mut pacer).await.queued, 3);

    // Meta's window moves on; the backoff passes; everything goes out once.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        fx.app.clock.advance(time::Duration::seconds(20));
        send(&fx).await;
        round(&fx, &mut pacer).await;
        if get(&fx, &id).await["status"] == "completed" && bulk_queue(&fx).await.is_empty() {
            break;
        }
    }
    let c = get(&fx, &id).await;
    assert_eq!(c["status"], "completed", "{c}");
    assert_eq!(c["counts"]["failed"], 0, "{c}");
    assert_eq!(sum(&c["counts"], &["sent", "delivered", "read"]), 18, "{c}");
    let mut to: Vec<String> = sim_outbound(&fx)
        .await
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_owned())
        .collect();
    to.sort();
    let all = to.len();
    to.dedup();
    assert_eq!((all, to.len()), (18, 18), "each recipient once: {to:?}");
}

/// A recipient the agent has just written to as often as Meta's pair rate allows: the
/// campaign's message to them is refused with 131056, retried later (not failed), and sent
/// once; the other recipients' messages are not held back for it (it is about one recipient,
/// not the number).
async fn a_pair_rate_refusal_is_retried_later_and_sent_once(db: Db) {
    let fx = fixture(db).await;
    let (app, t) = (&fx.app, fx.owner.access_token.as_str());
    sim_config(&fx, json!({"pair_burst": 1, "pair_interval_ms": 1000})).await;
    // Ana writes, the agent answers: the pair's one message is spent.
    fx.customer_message("text", json!({"body": "Hi"})).await;
    let mut conv = Value::Null;
    for _ in 0..400 {
        if let Some(c) = app.get("/api/v1/conversations", t).await.body["data"]
            .as_array()
            .unwrap()
            .first()
        {
            conv = c["id"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let conv = conv.as_str().expect("Ana's conversation").to_owned();
    let r = app
        .post(
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(t),
            json!({"type": "text", "text": {"body": "Hello Ana"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    send(&fx).await;
    assert_eq!(sim_outbound(&fx).await.len(), 1);

    for i in 0..3 {
        contact(app, t, json!({"phone": format!("+4477009014{i:02}")})).await;
    }
    let id = create(&fx, new_campaign(&fx, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(&fx, &id, "start").await;
    assert_eq!(round(&fx, &mut Pacer::new(20)).await.queued, 4);
    send(&fx).await;
    let templates = |out: &[Value], to: &str| {
        out.iter()
            .filter(|m| m["type"] == "template" && m["to"] == to)
            .count()
    };
    let out = sim_outbound(&fx).await;
    assert_eq!(templates(&out, "447700900123"), 0, "Ana's was refused");
    assert_eq!(out.len(), 1 + 3, "the others went: {out:?}");
    let queue = bulk_queue(&fx).await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].0, 1, "{queue:?}");
    assert!(queue[0].1 && queue[0].2.contains("131056"), "{queue:?}");
    let c = get(&fx, &id).await;
    assert_eq!(
        (&c["counts"]["failed"], &c["counts"]["queued"]),
        (&json!(0), &json!(1)),
        "{c}"
    );

    // After the pair's refill and the backoff, sent once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fx.app.clock.advance(time::Duration::seconds(5));
    send(&fx).await;
    let out = sim_outbound(&fx).await;
    assert_eq!(templates(&out, "447700900123"), 1, "{out:?}");
    assert!(bulk_queue(&fx).await.is_empty());
    send(&fx).await;
    assert_eq!(templates(&sim_outbound(&fx).await, "447700900123"), 1);
    let c = get(&fx, &id).await;
    assert_eq!(sum(&c["counts"], &["sent", "delivered", "read"]), 4, "{c}");
}
