//! Security alerts: one unresolved alert per tenant, rule and subject, however many raise it
//! at once; a resolved alert makes room for a new one; platform alerts (no tenant) follow the
//! same rule; a tenant sees only its own.

use crate::harness::{now, Db, TestStore};
use palisade_domain::{AlertRule, AlertSeverity, AlertStatus, AuditRecordId, TenantId};
use palisade_store::security_alerts::{self as alerts, AlertFilter, NewAlert};

both!(
    concurrent_raises_make_one_alert_counting_every_raise,
    a_resolved_alert_makes_room_for_a_new_one,
    tenants_see_only_their_own_alerts
);

fn spray(tenant: Option<TenantId>, evidence: Vec<AuditRecordId>) -> NewAlert {
    NewAlert {
        tenant_id: tenant,
        rule: AlertRule::PasswordSpraying,
        severity: AlertSeverity::High,
        subject_type: "ip_address".into(),
        subject_id: "203.0.113.9".into(),
        subject_label: None,
        summary: "spray".into(),
        evidence,
    }
}

async fn concurrent_raises_make_one_alert_counting_every_raise(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    for owner in [Some(tenant), None] {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = t.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store
                    .begin(palisade_store::SystemScope::new("test"))
                    .await
                    .unwrap();
                let r = alerts::raise(&mut tx, &spray(owner, vec![AuditRecordId::new()]), now())
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                r.opened
            }));
        }
        let mut opened = 0;
        for task in tasks {
            opened += usize::from(task.await.unwrap());
        }
        assert_eq!(opened, 1, "exactly one raise opens the alert");
        let mut tx = t.system().await;
        let list = alerts::list(
            &mut tx,
            &AlertFilter {
                tenant: owner,
                limit: 10,
                ..AlertFilter::default()
            },
        )
        .await
        .unwrap();
        let list: Vec<_> = list.into_iter().filter(|a| a.tenant_id == owner).collect();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].occurrences, 8);
        assert_eq!(list[0].evidence.len(), 8, "every raise's evidence is kept");
    }
}

async fn a_resolved_alert_makes_room_for_a_new_one(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let mut tx = t.system().await;
    let first = alerts::raise(&mut tx, &spray(Some(tenant), vec![]), now())
        .await
        .unwrap();
    let mut a = alerts::find_for_update(&mut tx, first.alert.id)
        .await
        .unwrap()
        .unwrap();
    a.status = AlertStatus::Acknowledged;
    alerts::update_status(&mut tx, &a).await.unwrap();
    // Acknowledged is still unresolved: a repeat bumps it.
    let again = alerts::raise(&mut tx, &spray(Some(tenant), vec![]), now())
        .await
        .unwrap();
    assert!(!again.opened);
    assert_eq!(again.alert.id, first.alert.id);
    assert_eq!(again.alert.occurrences, 2);
    a.status = AlertStatus::Resolved;
    alerts::update_status(&mut tx, &a).await.unwrap();
    let next = alerts::raise(&mut tx, &spray(Some(tenant), vec![]), now())
        .await
        .unwrap();
    assert!(next.opened);
    assert_ne!(next.alert.id, first.alert.id);
    tx.commit().await.unwrap();
}

async fn tenants_see_only_their_own_alerts(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let globex = t.new_tenant("Globex").await;
    let mut tx = t.system().await;
    let theirs = alerts::raise(&mut tx, &spray(Some(globex), vec![]), now())
        .await
        .unwrap();
    alerts::raise(&mut tx, &spray(None, vec![]), now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.tenant(acme).await;
    let seen = alerts::list(
        &mut tx,
        &AlertFilter {
            tenant: Some(globex),
            limit: 10,
            ..AlertFilter::default()
        },
    )
    .await
    .unwrap();
    assert!(seen.is_empty(), "{seen:?}");
    assert!(alerts::find_for_update(&mut tx, theirs.alert.id)
        .await
        .unwrap()
        .is_none());
}
