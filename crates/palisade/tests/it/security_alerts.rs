//! Security detections and alerts (`/api/v1/security/alerts`, `/api/v1/security/metrics`): a
//! scripted attack raises the expected alerts, by mail and signed webhook; repeats bump
//! `occurrences`; who may read and handle alerts.

use crate::support::{assert_error, contacts_and_reader_key, create_user, login_from};
use crate::webhooks::{active_webhook, Receiver};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_testkit::{spawn_app_with, Db, Session, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both!(
    a_password_spray_raises_one_platform_alert_that_repeats_bump,
    a_spray_of_names_that_are_no_accounts_raises_the_platform_alert,
    an_account_under_attack_alerts_its_admins_by_mail_and_signed_webhook,
    a_burst_faster_than_the_sign_in_limit_still_raises_the_alert,
    privilege_escalations_raise_alerts,
    write_keys_ownership_transfers_and_new_webhook_domains_raise_alerts,
    a_mass_export_and_many_exports_raise_mass_data_access,
    an_api_key_used_from_a_new_address_raises_an_alert,
    one_credential_reading_many_records_raises_mass_data_access,
    alerts_are_acknowledged_and_resolved_by_admins_only,
    metrics_count_events_failures_and_alerts,
    the_platform_alert_webhook_is_retried_with_one_id_until_taken,
    the_platform_alert_webhook_is_given_up_after_its_attempts_and_audited,
);

const ATTACKER: &str = "203.0.113.66";
const PLATFORM_SECRET: &str = "whsec_c2VjdXJpdHktYWxlcnQtdGVzdC1zZWNyZXQtMzJieXRlcyE=";

async fn app(db: Db, tweak: impl FnOnce(&mut palisade::config::RawConfig)) -> TestApp {
    spawn_app_with(db, |c| {
        c.trusted_proxies = "127.0.0.1/32, ::1".into();
        c.webhooks_allow_private_targets = true;
        c.webhooks_worker_interval_ms = 0;
        tweak(c);
    })
    .await
}

/// The alerts `token` sees with `query`, polled until `want(alerts)` holds (at most 5 s: the
/// issue's bound for raising an alert).
async fn wait_alerts(
    app: &TestApp,
    token: &str,
    query: &str,
    want: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let r = app
            .get(&format!("/api/v1/security/alerts{query}"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let data = r.body["data"].as_array().unwrap().clone();
        if want(&data) {
            return data;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no alert as expected within 5 s: {data:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn alerts(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/security/alerts{query}"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

/// Every evidence id of `alert` is a record of the audit log.
async fn evidence_is_in_the_audit_log(app: &TestApp, alert: &Value) {
    let ids = alert["evidence"].as_array().unwrap();
    assert!(!ids.is_empty(), "{alert}");
    for id in ids {
        let uuid = uuid::Uuid::parse_str(id.as_str().unwrap()).unwrap();
        let literal = match app.db.kind() {
            Db::Sqlite => format!("x'{}'", uuid.simple()),
            Db::Postgres => format!("'{uuid}'"),
        };
        let n = app
            .db
            .count_as_owner(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE id = {literal}"
            ))
            .await
            .unwrap();
        assert_eq!(n, 1, "evidence {id} is not an audit record");
    }
}

fn verify_signature(secret: &str, headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    get("webhook-signature").split(' ').any(|s| s == expected)
}

async fn a_password_spray_raises_one_platform_alert_that_repeats_bump(db: Db) {
    let rx = Receiver::start().await;
    let url = rx.url.clone();
    let app = app(db, move |c| {
        c.security_alert_email = Some("soc@platform.example".into());
        c.security_alert_webhook = Some(url);
        c.security_alert_webhook_secret = Some(PLATFORM_SECRET.to_owned().into());
        c.webhooks_worker_interval_ms = 100;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let other = app.register("Globex", "owner@globex.example").await;
    let root = app.super_admin("root@platform.example").await;
    // Eleven accounts in two tenants, one wrong password each, from one address.
    let mut emails = vec![other.email.clone()];
    for i in 0..10 {
        let email = format!("agent{i}@acme.example");
        create_user(&app, &owner, &email, "agent").await;
        emails.push(email);
    }
    for email in emails.iter().take(10) {
        let r = login_from(&app, ATTACKER, email, "Wrong-password-1234").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    // A super admin lists every tenant's alerts: the platform's is the one without a tenant.
    let platform = |list: Vec<Value>| -> Vec<Value> {
        list.into_iter()
            .filter(|a| a["tenant_id"].is_null())
            .collect()
    };
    let found = wait_alerts(&app, &root.access_token, "?rule=password_spraying", |a| {
        a.iter().any(|a| a["tenant_id"].is_null())
    })
    .await;
    let found = platform(found);
    assert_eq!(found.len(), 1, "{found:?}");
    let a = &found[0];
    assert_eq!(a["severity"], "high");
    assert_eq!(a["status"], "open");
    assert_eq!(a["tenant_id"], Value::Null, "a spray is the platform's");
    assert_eq!(a["subject"]["type"], "ip_address");
    assert_eq!(a["subject"]["id"], ATTACKER);
    assert_eq!(a["occurrences"], 1);
    evidence_is_in_the_audit_log(&app, a).await;
    // Each tenant whose accounts were tried gets an alert of its own, with its own count and
    // evidence only; neither sees the platform's alert or the other's.
    let acme = wait_alerts(&app, &owner.access_token, "?rule=password_spraying", |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(acme.len(), 1, "{acme:?}");
    assert_eq!(acme[0]["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(acme[0]["subject"]["id"], ATTACKER);
    assert_eq!(acme[0]["severity"], "high");
    let summary = acme[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains(" 9 of this tenant's accounts"),
        "{summary}"
    );
    evidence_is_in_the_audit_log(&app, &acme[0]).await;
    let globex = wait_alerts(&app, &other.access_token, "?rule=password_spraying", |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(globex.len(), 1, "{globex:?}");
    assert_eq!(globex[0]["tenant_id"], other.tenant_id.as_str());
    let summary = globex[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains(" 1 of this tenant's accounts"),
        "{summary}"
    );
    assert_ne!(globex[0]["id"], a["id"]);
    // The tenant's admins are mailed (high severity).
    let mail = app.wait_mail(&owner.email, "security_alert").await;
    assert!(mail.text.contains("password_spraying"), "{}", mail.text);

    // The platform's mailbox and its signed webhook were told.
    let mail = app
        .wait_mail("soc@platform.example", "security_alert")
        .await;
    assert!(mail.text.contains("password_spraying"), "{}", mail.text);
    let started = std::time::Instant::now();
    while rx.count() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no platform webhook"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (headers, body) = rx.last();
    assert!(verify_signature(PLATFORM_SECRET, &headers, &body));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "security.alert");
    assert_eq!(payload["data"]["rule"], "password_spraying");

    // The eleventh account: the same alert, one more occurrence; no second delivery.
    login_from(&app, ATTACKER, &emails[10], "Wrong-password-1234").await;
    let bumped = wait_alerts(&app, &root.access_token, "?rule=password_spraying", |a| {
        a.iter()
            .any(|a| a["tenant_id"].is_null() && a["occurrences"] == 2)
    })
    .await;
    let bumped = platform(bumped);
    assert_eq!(bumped.len(), 1);
    assert_eq!(bumped[0]["id"], a["id"]);
    // Acme's alert counts the failure against its account; Globex's, untouched, does not.
    wait_alerts(&app, &owner.access_token, "?rule=password_spraying", |a| {
        a.first().is_some_and(|a| a["occurrences"] == 2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let globex = alerts(&app, &other.access_token, "?rule=password_spraying").await;
    assert_eq!(globex[0]["occurrences"], 1);
    // The platform's webhook is told of every alert that opens (the platform's and the two
    // tenants'), never of a repeat.
    assert_eq!(rx.count(), 3);
}

/// Credential stuffing with a list of emails that are mostly nobody's: the names one address
/// fails against count whether or not they are accounts (the login throttle's rows, which every
/// failed name already has: no row more per attempt), so ten unknown names raise the platform's
/// alert, with the failures' audit records as evidence; no tenant is told (none was tried).
async fn a_spray_of_names_that_are_no_accounts_raises_the_platform_alert(db: Db) {
    let app = app(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let root = app.super_admin("root@platform.example").await;
    for i in 0..9 {
        let r = login_from(
            &app,
            ATTACKER,
            &format!("nobody{i}@leaked.example"),
            "Wrong-password-1234",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    }
    // Another address's failures do not add to this one's.
    login_from(
        &app,
        "198.51.100.77",
        "nobody9@leaked.example",
        "Wrong-password-1234",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alerts(&app, &root.access_token, "?rule=password_spraying")
        .await
        .is_empty());
    // The same name twice is one name.
    login_from(
        &app,
        ATTACKER,
        "nobody0@leaked.example",
        "Wrong-password-1234",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alerts(&app, &root.access_token, "?rule=password_spraying")
        .await
        .is_empty());
    // The tenth name.
    login_from(
        &app,
        ATTACKER,
        "nobody10@leaked.example",
        "Wrong-password-1234",
    )
    .await;
    let found = wait_alerts(&app, &root.access_token, "?rule=password_spraying", |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["tenant_id"], Value::Null);
    assert_eq!(found[0]["subject"]["id"], ATTACKER);
    let summary = found[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("against 10 different accounts"),
        "{summary}"
    );
    evidence_is_in_the_audit_log(&app, &found[0]).await;
    assert!(alerts(&app, &owner.access_token, "?rule=password_spraying")
        .await
        .is_empty());
}

/// At the default per-address sign-in limit (5 a minute), a script firing 40 wrong passwords at
/// one account from one address gets 5 answers and 35 refusals; the refusals are still noted
/// as failures of that account (at most 20 a minute per address), so the alert is raised, and a
/// flood writes a bounded number of rows.
async fn a_burst_faster_than_the_sign_in_limit_still_raises_the_alert(db: Db) {
    let app = app(db, |c| c.rate_limit_login_per_minute = 5).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let victim = "victim@acme.example";
    create_user(&app, &owner, victim, "agent").await;
    let mut refused = 0;
    for _ in 0..40 {
        let r = login_from(&app, ATTACKER, victim, "Wrong-password-1234").await;
        assert!(r.status.is_client_error(), "{:?}", r.body);
        if r.body["error"]["code"] == "rate_limited" {
            refused += 1;
        }
    }
    assert_eq!(refused, 35, "the limit let five through");
    // An address and an email of nobody: refused, nothing to note.
    login_from(&app, ATTACKER, "nobody@acme.example", "Wrong-password-1234").await;
    let found = wait_alerts(
        &app,
        &owner.access_token,
        "?rule=account_under_attack",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(found[0]["subject"]["label"], victim);
    let rows = app
        .db
        .count_as_owner("SELECT COUNT(*) FROM login_history WHERE result = 'failure'")
        .await
        .unwrap();
    assert_eq!(rows, 25, "5 answered and 20 of the refused, no more");
}

async fn an_account_under_attack_alerts_its_admins_by_mail_and_signed_webhook(db: Db) {
    let app = app(db, |_| {}).await;
    let rx = Receiver::start().await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (_, secret) = active_webhook(&app, &owner, &rx.url, json!(["security.alert"])).await;
    let victim = "victim@acme.example";
    create_user(&app, &owner, victim, "agent").await;
    // Ten failures in ten minutes (the lockout starts at five; locked attempts count too).
    for i in 0..10 {
        let ip = format!("198.51.100.{}", i + 1);
        let r = login_from(&app, &ip, victim, "Wrong-password-1234").await;
        assert!(r.status.is_client_error(), "{:?}", r.body);
        app.clock.advance(time::Duration::seconds(30));
    }
    let found = wait_alerts(
        &app,
        &owner.access_token,
        "?rule=account_under_attack",
        |a| !a.is_empty(),
    )
    .await;
    let a = &found[0];
    assert_eq!(a["subject"]["type"], "user");
    assert_eq!(a["subject"]["label"], victim);
    assert_eq!(a["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(a["severity"], "high");
    evidence_is_in_the_audit_log(&app, a).await;

    // High: mailed to the tenant's admins.
    let mail = app.wait_mail(&owner.email, "security_alert").await;
    assert!(mail.text.contains("account_under_attack"), "{}", mail.text);
    assert!(
        mail.text
            .contains("/security/alerts?rule=account_under_attack"),
        "the mail links to the alerts page: {}",
        mail.text
    );
    // The tenant's webhook gets `security.alert`, signed with its secret.
    let mut delivered = 0;
    let started = std::time::Instant::now();
    while delivered == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no delivery queued"
        );
        delivered = palisade_core::webhooks::deliver_due(&app.services)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (headers, body) = rx.last();
    assert!(verify_signature(&secret, &headers, &body));
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "security.alert");
    assert_eq!(payload["data"]["id"], a["id"]);
    assert_eq!(payload["data"]["rule"], "account_under_attack");

    // One more failure bumps the same alert.
    login_from(&app, "198.51.100.77", victim, "Wrong-password-1234").await;
    let bumped = wait_alerts(
        &app,
        &owner.access_token,
        "?rule=account_under_attack",
        |a| a.first().is_some_and(|a| a["occurrences"] == 2),
    )
    .await;
    assert_eq!(bumped.len(), 1);
}

async fn privilege_escalations_raise_alerts(db: Db) {
    let app = app(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let agent = create_user(&app, &owner, "agent@acme.example", "agent").await;
    let r = app
        .patch(
            &format!("/api/v1/users/{agent}"),
            &owner.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let found = wait_alerts(
        &app,
        &owner.access_token,
        "?rule=privilege_escalation",
        |a| a.iter().any(|a| a["subject"]["id"] == agent.as_str()),
    )
    .await;
    assert_eq!(found[0]["subject"]["type"], "user");
    assert_eq!(found[0]["subject"]["label"], "agent@acme.example");

    // A read-only key is no alert; a full_access key is.
    for (name, scopes) in [
        ("reader", json!(["read_only"])),
        ("robot", json!(["full_access"])),
    ] {
        let r = app
            .post(
                "/api/v1/api-keys",
                Some(&owner.access_token),
                json!({"name": name, "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let found = wait_alerts(
        &app,
        &owner.access_token,
        "?rule=privilege_escalation",
        |a| a.iter().any(|a| a["subject"]["type"] == "api_key"),
    )
    .await;
    let keys: Vec<_> = found
        .iter()
        .filter(|a| a["subject"]["type"] == "api_key")
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["subject"]["label"], "robot");
    assert_eq!(keys[0]["severity"], "high");

    // Lowering the tenant's two-factor requirement (handed to the rules as the audit record
    // `tenant.updated` is: the API would first make the owner enrol a second factor).
    let tenant = palisade_domain::TenantId::from(uuid::Uuid::parse_str(&owner.tenant_id).unwrap());
    let updated = |before: &str, after: &str| palisade_core::detections::AuditedEvent {
        id: palisade_domain::AuditRecordId::new(),
        entry: palisade_store::audit::AuditEntry {
            tenant_id: Some(tenant),
            action: "tenant.updated".into(),
            actor_email: Some(owner.email.clone()),
            target_type: Some("tenant".into()),
            target_id: Some(owner.tenant_id.clone()),
            before: Some(json!({"require_2fa": before})),
            after: Some(json!({"require_2fa": after})),
            ..Default::default()
        },
    };
    palisade_core::detections::evaluate(
        app.services.clone(),
        vec![updated("off", "everyone"), updated("everyone", "admins")],
    )
    .await;
    let found = alerts(&app, &owner.access_token, "?rule=privilege_escalation").await;
    let lowered: Vec<_> = found
        .iter()
        .filter(|a| a["subject"]["type"] == "tenant")
        .collect();
    assert_eq!(lowered.len(), 1, "{found:?}");
    assert_eq!(
        lowered[0]["occurrences"], 1,
        "raising the requirement is no alert"
    );
    assert!(lowered[0]["summary"]
        .as_str()
        .unwrap()
        .contains("two-factor"));
}

/// The other escalations of rule 5, each through the API: a key with a write scope (medium;
/// a read scope is none), the ownership transferred (high), a webhook approved to a host no
/// earlier approved webhook of the tenant used (medium; the same host again is none).
async fn write_keys_ownership_transfers_and_new_webhook_domains_raise_alerts(db: Db) {
    let app = app(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let t = owner.access_token.clone();
    let of_type = |list: &[Value], kind: &str| -> Vec<Value> {
        list.iter()
            .filter(|a| a["subject"]["type"] == kind)
            .cloned()
            .collect()
    };

    for (name, scopes) in [
        ("reader", json!(["contacts:read"])),
        ("writer", json!(["contacts:write"])),
    ] {
        let r = app
            .post(
                "/api/v1/api-keys",
                Some(&t),
                json!({"name": name, "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let found = wait_alerts(&app, &t, "?rule=privilege_escalation", |a| {
        a.iter().any(|a| a["subject"]["type"] == "api_key")
    })
    .await;
    let keys = of_type(&found, "api_key");
    assert_eq!(keys.len(), 1, "the read key is no alert: {keys:?}");
    assert_eq!(keys[0]["subject"]["label"], "writer");
    assert_eq!(keys[0]["severity"], "medium");

    // Two webhooks to one new host, one to another: two alerts, one per new host.
    let mut approved = Vec::new();
    for url in [
        "http://127.0.0.1:9/first",
        "http://127.0.0.1:9/second",
        "http://localhost:9/third",
    ] {
        let r = app
            .post(
                "/api/v1/webhooks",
                Some(&t),
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(
            r.body["webhook"]["status"], "pending_approval",
            "{:?}",
            r.body
        );
        let id = r.body["webhook"]["id"].as_str().unwrap().to_owned();
        let r = app
            .post(
                &format!("/api/v1/webhooks/{id}/approve"),
                Some(&t),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        approved.push(id);
        // One approval at a time: the rule compares with the approvals before it.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let found = wait_alerts(&app, &t, "?rule=privilege_escalation", |a| {
        a.iter()
            .filter(|a| a["subject"]["type"] == "webhook")
            .count()
            >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hooks = of_type(
        &alerts(&app, &t, "?rule=privilege_escalation").await,
        "webhook",
    );
    assert_eq!(hooks.len(), 2, "{found:?}");
    let mut hosts: Vec<_> = hooks
        .iter()
        .map(|a| {
            assert_eq!(a["severity"], "medium");
            a["subject"]["label"].as_str().unwrap().to_owned()
        })
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["127.0.0.1", "localhost"]);
    assert!(
        !hooks
            .iter()
            .any(|a| a["subject"]["id"] == approved[1].as_str()),
        "the second webhook to a known host is no alert"
    );

    // The ownership handed to an admin.
    let admin = create_user(&app, &owner, "admin@acme.example", "admin").await;
    let r = app
        .post(
            &format!("/api/v1/users/{admin}/transfer-ownership"),
            Some(&t),
            json!({"password": palisade_testkit::GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let found = wait_alerts(&app, &t, "?rule=privilege_escalation", |a| {
        a.iter().any(|a| a["subject"]["type"] == "tenant")
    })
    .await;
    let transfer = of_type(&found, "tenant");
    assert_eq!(transfer.len(), 1, "{transfer:?}");
    assert_eq!(transfer[0]["severity"], "high");
    assert!(
        transfer[0]["summary"]
            .as_str()
            .unwrap()
            .contains("Ownership of the tenant was transferred"),
        "{transfer:?}"
    );
    for a in found {
        evidence_is_in_the_audit_log(&app, &a).await;
    }
}

async fn a_mass_export_and_many_exports_raise_mass_data_access(db: Db) {
    let app = app(db, |c| c.detect_export_rows = 5).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    for i in 0..6 {
        let r = app
            .post(
                "/api/v1/contacts",
                Some(&owner.access_token),
                json!({"phone": format!("+4477009001{i:02}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = app
        .get("/api/v1/contacts/export?format=csv", &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let found = wait_alerts(&app, &owner.access_token, "?rule=mass_data_access", |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]["summary"]
            .as_str()
            .unwrap()
            .contains("more than 5 rows"),
        "{}",
        found[0]
    );
    evidence_is_in_the_audit_log(&app, &found[0]).await;

    // Another admin exports four times in an hour (a filter that matches nothing, so no export
    // is large): the many-exports rule, on that user.
    let second = app.add_user(&owner, "second@acme.example", "admin").await;
    for _ in 0..4 {
        let r = app
            .get(
                "/api/v1/contacts/export?format=jsonl&q=nobody",
                &second.access_token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let found = wait_alerts(&app, &owner.access_token, "?rule=mass_data_access", |a| {
        a.iter()
            .any(|a| a["subject"]["id"] == second.user_id.as_str())
    })
    .await;
    let many = found
        .iter()
        .find(|a| a["subject"]["id"] == second.user_id.as_str())
        .unwrap();
    assert!(
        many["summary"]
            .as_str()
            .unwrap()
            .contains("4 exports by this user"),
        "{many}"
    );
    assert_eq!(many["evidence"].as_array().unwrap().len(), 4);
    evidence_is_in_the_audit_log(&app, many).await;
}

async fn an_api_key_used_from_a_new_address_raises_an_alert(db: Db) {
    let app = app(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let r = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "crm-sync", "scopes": ["contacts:read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let key_id = r.body["api_key"]["id"].as_str().unwrap().to_owned();
    let use_from = |ip: &'static str| {
        let req = app
            .client
            .get(app.url("/api/v1/contacts"))
            .bearer_auth(&key)
            .header("x-forwarded-for", ip);
        async move { req.send().await.unwrap().status() }
    };
    // The first address is no alert, nor its repeats.
    assert_eq!(use_from("192.0.2.10").await, StatusCode::OK);
    assert_eq!(use_from("192.0.2.10").await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        alerts(&app, &owner.access_token, "?rule=api_key_new_address")
            .await
            .is_empty()
    );
    assert_eq!(use_from("192.0.2.99").await, StatusCode::OK);
    let found = wait_alerts(
        &app,
        &owner.access_token,
        "?rule=api_key_new_address",
        |a| !a.is_empty(),
    )
    .await;
    assert_eq!(found[0]["subject"]["type"], "api_key");
    assert_eq!(found[0]["subject"]["id"], key_id.as_str());
    assert_eq!(found[0]["severity"], "medium");
    assert!(found[0]["summary"].as_str().unwrap().contains("192.0.2.99"));
    // Seen outside the audit log, so recorded in it for the alert's evidence.
    evidence_is_in_the_audit_log(&app, &found[0]).await;
}

/// Raises a `privilege_escalation` alert in `owner`'s tenant (an agent made admin); returns it.
async fn one_alert(app: &TestApp, owner: &Session, email: &str) -> Value {
    let agent = create_user(app, owner, email, "agent").await;
    let r = app
        .patch(
            &format!("/api/v1/users/{agent}"),
            &owner.access_token,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    wait_alerts(
        app,
        &owner.access_token,
        "?rule=privilege_escalation",
        |a| a.iter().any(|a| a["subject"]["id"] == agent.as_str()),
    )
    .await
    .into_iter()
    .find(|a| a["subject"]["id"] == agent.as_str())
    .unwrap()
}

async fn alerts_are_acknowledged_and_resolved_by_admins_only(db: Db) {
    let app = app(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let other = app.register("Globex", "owner@globex.example").await;
    let agent = app.add_user(&owner, "agent@acme.example", "agent").await;
    let root = app.super_admin("root@platform.example").await;
    let a = one_alert(&app, &owner, "second@acme.example").await;
    let id = a["id"].as_str().unwrap();
    let ack = format!("/api/v1/security/alerts/{id}/acknowledge");
    let resolve = format!("/api/v1/security/alerts/{id}/resolve");

    // Agents: 403 on every route.
    assert_error(
        &app.get("/api/v1/security/alerts", &agent.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &app.get("/api/v1/security/metrics", &agent.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        app.post(&ack, Some(&agent.access_token), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // API keys, whatever their scopes: no scope grants security alerts.
    let k = app
        .post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "all", "scopes": ["full_access"]}),
        )
        .await;
    let key = k.body["key"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/security/alerts", key).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&resolve, Some(key), json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    // Another tenant's admin: the alert does not exist for them.
    assert!(alerts(&app, &other.access_token, "")
        .await
        .iter()
        .all(|x| x["id"] != a["id"]));
    assert_error(
        &app.post(&ack, Some(&other.access_token), json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert!(alerts(
        &app,
        &other.access_token,
        &format!("?tenant_id={}", owner.tenant_id)
    )
    .await
    .is_empty());
    // Impersonations read, but never acknowledge or resolve.
    for write in [false, true] {
        let r = app
            .post(
                &format!("/api/v1/admin/tenants/{}/impersonate", owner.tenant_id),
                Some(&root.access_token),
                json!({"reason": "ticket #7", "write": write}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let imp = r.body["access_token"].as_str().unwrap();
        assert!(alerts(&app, imp, "")
            .await
            .iter()
            .any(|x| x["id"] == a["id"]));
        assert_eq!(
            app.post(&ack, Some(imp), json!({})).await.status,
            StatusCode::FORBIDDEN
        );
    }
    // Bad filters are 400 with the allowed values.
    for q in [
        "?status=closed",
        "?severity=urgent",
        "?rule=brute_force",
        "?limit=0",
    ] {
        assert_error(
            &app.get(&format!("/api/v1/security/alerts{q}"), &owner.access_token)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    assert_eq!(
        app.post(
            "/api/v1/security/alerts/not-a-uuid/acknowledge",
            Some(&owner.access_token),
            json!({})
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );

    // The owner acknowledges, then resolves with a note; both audited.
    let r = app.post(&ack, Some(&owner.access_token), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "acknowledged");
    assert_eq!(
        alerts(&app, &owner.access_token, "?status=acknowledged")
            .await
            .len(),
        1
    );
    let long = "x".repeat(2001);
    assert_error(
        &app.post(&resolve, Some(&owner.access_token), json!({"note": long}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let r = app
        .post(
            &resolve,
            Some(&owner.access_token),
            json!({"note": "expected: a new team lead"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert_error(
        &app.post(&resolve, Some(&owner.access_token), json!({}))
            .await,
        StatusCode::CONFLICT,
        "alert_resolved",
    );
    for action in ["security.alert.acknowledged", "security.alert.resolved"] {
        let r = app
            .get(
                &format!("/api/v1/audit-logs?action={action}"),
                &owner.access_token,
            )
            .await;
        assert_eq!(r.body["data"].as_array().unwrap().len(), 1, "{action}");
        assert_eq!(r.body["data"][0]["target_id"], id);
    }
    // Super admins see every tenant's alerts, and may narrow to one.
    let all = alerts(&app, &root.access_token, "?status=resolved").await;
    assert!(all.iter().any(|x| x["id"] == a["id"]));
    let narrowed = alerts(
        &app,
        &root.access_token,
        &format!("?tenant_id={}", other.tenant_id),
    )
    .await;
    assert!(narrowed
        .iter()
        .all(|x| x["tenant_id"] == other.tenant_id.as_str()));
    assert!(narrowed.iter().all(|x| x["id"] != a["id"]));
}

async fn metrics_count_events_failures_and_alerts(db: Db) {
    let app = app(db, |_| {}).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    login_from(&app, ATTACKER, &owner.email, "Wrong-password-1234").await;
    one_alert(&app, &owner, "second@acme.example").await;
    let r = app
        .get("/api/v1/security/metrics", &owner.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let m = &r.body;
    assert!(m["total_events"].as_i64().unwrap() >= 3, "{m}");
    assert_eq!(m["failed_logins"], 1);
    assert_eq!(m["suspicious_activities"], 1);
    assert_eq!(m["critical_events"], 0);
    assert_eq!(m["unresolved_alerts"], 1);
    // A period before anything happened.
    let r = app
        .get(
            "/api/v1/security/metrics?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
            &owner.access_token,
        )
        .await;
    assert_eq!(r.body["total_events"], 0);
    assert_eq!(
        r.body["unresolved_alerts"], 1,
        "unresolved is now, not the period"
    );
    for q in [
        "?from=yesterday",
        "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        assert_error(
            &app.get(&format!("/api/v1/security/metrics{q}"), &owner.access_token)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
}

async fn one_credential_reading_many_records_raises_mass_data_access(db: Db) {
    let app = app(db, |c| c.detect_read_records = 5).await;
    let owner = app.register("Acme", "owner@acme.example").await;
    let (key, key_id) = contacts_and_reader_key(&app, &owner.access_token, "+4477009002", 4).await;
    // Four records: under the limit of five.
    assert_eq!(
        app.get("/api/v1/contacts", &key).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(alerts(&app, &owner.access_token, "?rule=mass_data_access")
        .await
        .is_empty());
    // Eight within the window: over it, on the key.
    assert_eq!(
        app.get("/api/v1/contacts", &key).await.status,
        StatusCode::OK
    );
    let found = wait_alerts(&app, &owner.access_token, "?rule=mass_data_access", |a| {
        !a.is_empty()
    })
    .await;
    assert_eq!(found[0]["subject"]["type"], "api_key");
    assert_eq!(found[0]["subject"]["id"], key_id.as_str());
    assert!(found[0]["summary"]
        .as_str()
        .unwrap()
        .contains("8 contacts or messages"));
    evidence_is_in_the_audit_log(&app, &found[0]).await;
}

/// An app whose platform alert webhook goes to `rx` (worker every 100 ms), and an admin created
/// by its owner: a `privilege_escalation` alert, POSTed to the platform webhook.
async fn app_with_alert_webhook(db: Db, rx: &Receiver) -> TestApp {
    let url = rx.url.clone();
    let app = app(db, move |c| {
        c.security_alert_webhook = Some(url);
        c.security_alert_webhook_secret = Some(PLATFORM_SECRET.to_owned().into());
        c.webhooks_worker_interval_ms = 100;
    })
    .await;
    let owner = app.register("Acme", "owner@acme.example").await;
    create_user(&app, &owner, "second@acme.example", "admin").await;
    app
}

async fn wait_requests(rx: &Receiver, n: usize) {
    let started = std::time::Instant::now();
    while rx.count() < n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} of {n} alert webhook requests",
            rx.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the worker has recorded `n` attempts (the clock must not move before: the
/// retry is scheduled from the time the outcome is recorded).
async fn wait_recorded(app: &TestApp, n: i64) {
    let started = std::time::Instant::now();
    loop {
        let recorded = app
            .db
            .count_as_owner("SELECT COALESCE(SUM(attempts), 0) FROM alert_webhook_outbox")
            .await
            .unwrap();
        if recorded >= n {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{recorded} of {n} attempts recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn outbox(app: &TestApp, status: &str) -> i64 {
    app.db
        .count_as_owner(&format!(
            "SELECT COUNT(*) FROM alert_webhook_outbox WHERE status = '{status}'"
        ))
        .await
        .unwrap()
}

/// A receiver that is down does not lose the alert: the delivery waits in the outbox and goes
/// again after its backoff, with the same `webhook-id`, a fresh timestamp and a valid signature.
async fn the_platform_alert_webhook_is_retried_with_one_id_until_taken(db: Db) {
    let rx = Receiver::start().await;
    rx.answer(&[503, 500]);
    let app = app_with_alert_webhook(db, &rx).await;
    wait_requests(&rx, 1).await;
    wait_recorded(&app, 1).await;
    // Refused: still queued, due again only after the backoff (at least 30 s on the app's clock).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 1, "no retry before the backoff");
    assert_eq!(outbox(&app, "pending").await, 1);
    app.clock.advance(time::Duration::minutes(1));
    wait_requests(&rx, 2).await;
    wait_recorded(&app, 2).await;
    app.clock.advance(time::Duration::minutes(2));
    wait_requests(&rx, 3).await;
    let started = std::time::Instant::now();
    while outbox(&app, "sent").await != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never recorded sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(outbox(&app, "pending").await, 0);
    let all = rx.all();
    let id = |h: &reqwest::header::HeaderMap| h["webhook-id"].to_str().unwrap().to_owned();
    assert!(
        all.iter().all(|(h, _)| id(h) == id(&all[0].0)),
        "one webhook-id"
    );
    assert_ne!(
        all[0].0["webhook-timestamp"], all[2].0["webhook-timestamp"],
        "each attempt is stamped when it is made"
    );
    for (headers, body) in &all {
        assert!(verify_signature(PLATFORM_SECRET, headers, body));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "security.alert");
        assert_eq!(payload["data"]["rule"], "privilege_escalation");
    }
    // Nothing more goes out once it was taken.
    app.clock.advance(time::Duration::hours(2));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 3);
}

/// A receiver that never takes it: after its attempts the delivery is `failed`, and the
/// giving up is in the audit log.
async fn the_platform_alert_webhook_is_given_up_after_its_attempts_and_audited(db: Db) {
    let rx = Receiver::start().await;
    rx.answer(&[503; 16]);
    let app = app_with_alert_webhook(db, &rx).await;
    for n in 1..=16 {
        wait_requests(&rx, n).await;
        wait_recorded(&app, i64::try_from(n).unwrap()).await;
        // Each backoff is at most an hour and a quarter.
        app.clock.advance(time::Duration::minutes(80));
    }
    let started = std::time::Instant::now();
    while outbox(&app, "failed").await != 1 {
        assert!(started.elapsed() < Duration::from_secs(5), "never given up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(outbox(&app, "pending").await, 0);
    let audited = app
        .db
        .count_as_owner(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'security.alert_webhook_failed'",
        )
        .await
        .unwrap();
    assert_eq!(audited, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.count(), 16, "no attempt after giving up");
}
