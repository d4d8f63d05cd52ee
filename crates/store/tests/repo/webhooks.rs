//! Webhook deliveries: the queue hands each due delivery to one worker, even when two claim at
//! once, and holds a suspended tenant's deliveries.

use crate::harness::{now, Db, TestStore};
use palisade_domain::{DeliveryId, TenantId, WebhookId};
use palisade_store::tenants::{self, TenantStatus};
use palisade_store::webhooks::{self, DeliveryStatus, Webhook, WebhookStatus};
use std::collections::HashSet;
use time::Duration;

both!(a_delivery_is_claimed_once);

async fn endpoint(t: &TestStore, tenant: TenantId, deliveries: usize) -> Vec<DeliveryId> {
    let admin = t
        .new_user(tenant, &format!("admin-{tenant}@example.com"))
        .await;
    let w = Webhook {
        id: WebhookId::new(),
        tenant_id: tenant,
        url: "https://hooks.example.com/in".into(),
        description: None,
        events: vec!["message.received".into()],
        status: WebhookStatus::Active,
        secret_ciphertext: "sealed".into(),
        previous_secret_ciphertext: None,
        previous_secret_expires_at: None,
        signature_algorithm: "hmac_sha256".into(),
        public_key: None,
        created_by: admin.id,
        approved_by: None,
        approved_at: None,
        disabled_reason: None,
        consecutive_failures: 0,
        failing_since: None,
        last_success_at: None,
        last_failure_at: None,
        created_at: now(),
        updated_at: now(),
    };
    let mut tx = t.tenant(tenant).await;
    webhooks::insert(&mut tx, &w).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..deliveries {
        let id = DeliveryId::new();
        let payload = serde_json::json!({ "n": i });
        webhooks::insert_delivery(
            &mut tx,
            tenant,
            w.id,
            id,
            "message.received",
            &payload,
            now(),
        )
        .await
        .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn a_delivery_is_claimed_once(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let queued = endpoint(&t, tenant, 10).await;
    let suspended = t.new_tenant("Suspended").await;
    endpoint(&t, suspended, 3).await;
    let mut tx = t.system().await;
    tenants::set_status(&mut tx, suspended, TenantStatus::Suspended, None, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let lease = now() + Duration::minutes(1);
    let (a, b) = claim_twice!(t, |tx| webhooks::claim_due(tx, now(), lease, 6));
    assert_eq!(a.len(), 6);
    assert_eq!(
        b.len(),
        4,
        "the second worker gets the rest, not the same rows"
    );
    let claimed: HashSet<DeliveryId> = a.iter().chain(&b).map(|d| d.id).collect();
    assert_eq!(
        claimed,
        queued.iter().copied().collect(),
        "each delivery once"
    );
    assert!(a.iter().chain(&b).all(|d| d.next_attempt_at == lease));
    assert!(
        a.iter().chain(&b).all(|d| d.tenant_id == tenant),
        "a suspended tenant's deliveries wait"
    );

    // While the lease runs nothing is due; once it ends, the deliveries are due again.
    let mut tx = t.system().await;
    assert!(webhooks::claim_due(&mut tx, now(), lease, 100)
        .await
        .unwrap()
        .is_empty());
    let again = webhooks::claim_due(&mut tx, lease, lease + Duration::minutes(1), 100)
        .await
        .unwrap();
    assert_eq!(again.len(), 10);

    // A delivered one is never claimed again.
    let d = &again[0];
    let attempt = webhooks::Attempt {
        attempted_at: lease,
        status_code: Some(200),
        error: None,
        latency_ms: 12,
        response_body: None,
    };
    webhooks::record_attempt(&mut tx, d, &attempt, DeliveryStatus::Delivered, lease)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.system().await;
    let later = webhooks::claim_due(
        &mut tx,
        now() + Duration::days(1),
        now() + Duration::days(2),
        100,
    )
    .await
    .unwrap();
    assert_eq!(later.len(), 9);
    assert!(later.iter().all(|x| x.id != d.id));
    let stored = webhooks::find_delivery(&mut tx, tenant, d.webhook_id, d.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DeliveryStatus::Delivered);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.last_status, Some(200));
}
