//! Passkeys and WebAuthn challenges: a challenge is consumed once however many try at the same
//! time, never after it expired or as another kind; a use is recorded only with a counter that
//! moved forward; a tenant sees only its own passkeys; credential ids are unique everywhere.

use crate::harness::{now, Db, TestStore};
use palisade_domain::{PasskeyId, WebauthnChallengeId};
use palisade_store::passkeys::{self, Challenge, ChallengeKind, StoredPasskey};
use palisade_store::SystemScope;
use time::Duration;

both!(
    a_challenge_is_consumed_once,
    expired_or_other_kinds_are_not_consumed,
    a_use_is_recorded_only_with_a_forward_counter,
    passkeys_stay_in_their_tenant_and_credentials_are_unique,
);

fn challenge(kind: ChallengeKind) -> Challenge {
    Challenge {
        id: WebauthnChallengeId::new(),
        tenant_id: None,
        user_id: None,
        kind,
        state: "{}".into(),
        created_at: now(),
        expires_at: now() + Duration::minutes(5),
        mfa_challenge_id: None,
    }
}

async fn a_challenge_is_consumed_once(db: Db) {
    let t = TestStore::new(db).await;
    let c = challenge(ChallengeKind::Discoverable);
    let mut tx = t.system().await;
    passkeys::insert_challenge(&mut tx, &c).await.unwrap();
    tx.commit().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = t.store.clone();
        let id = c.id;
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin(SystemScope::new("test")).await.unwrap();
            let got = passkeys::consume(&mut tx, id, &[ChallengeKind::Discoverable], now())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            got.is_some()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one consumer gets the state");
}

async fn expired_or_other_kinds_are_not_consumed(db: Db) {
    let t = TestStore::new(db).await;
    let c = challenge(ChallengeKind::Discoverable);
    let mut tx = t.system().await;
    passkeys::insert_challenge(&mut tx, &c).await.unwrap();
    let other_kind = passkeys::consume(&mut tx, c.id, &[ChallengeKind::Registration], now())
        .await
        .unwrap();
    assert!(other_kind.is_none());
    let late = passkeys::consume(
        &mut tx,
        c.id,
        &[ChallengeKind::Discoverable],
        now() + Duration::minutes(5),
    )
    .await
    .unwrap();
    assert!(late.is_none(), "expires_at is exclusive");
    let in_time = passkeys::consume(&mut tx, c.id, &[ChallengeKind::Discoverable], now())
        .await
        .unwrap();
    assert_eq!(in_time.map(|c| c.kind), Some(ChallengeKind::Discoverable));
    // Old rows are pruned.
    assert_eq!(
        passkeys::prune_expired(&mut tx, now() + Duration::hours(2))
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
}

fn passkey(t: palisade_domain::TenantId, u: palisade_domain::UserId, cred: &[u8]) -> StoredPasskey {
    StoredPasskey {
        id: PasskeyId::new(),
        tenant_id: Some(t),
        user_id: u,
        name: "Laptop".into(),
        credential_id: cred.to_vec(),
        passkey: "{}".into(),
        sign_count: 0,
        created_at: now(),
        last_used_at: None,
    }
}

async fn a_use_is_recorded_only_with_a_forward_counter(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let user = t.new_user(tenant, "ana@acme.example").await;
    let k = passkey(tenant, user.id, b"cred-1");
    let mut tx = t.tenant(tenant).await;
    passkeys::insert(&mut tx, &k).await.unwrap();
    assert!(passkeys::record_use(&mut tx, k.id, "{}", 3, now())
        .await
        .unwrap());
    assert!(!passkeys::record_use(&mut tx, k.id, "{}", 3, now())
        .await
        .unwrap());
    assert!(!passkeys::record_use(&mut tx, k.id, "{}", 2, now())
        .await
        .unwrap());
    assert!(passkeys::record_use(&mut tx, k.id, "{}", 4, now())
        .await
        .unwrap());
    let listed = passkeys::list_for_user(&mut tx, user.id).await.unwrap();
    assert_eq!(listed[0].sign_count, 4);
    assert!(listed[0].last_used_at.is_some());
    tx.commit().await.unwrap();
}

async fn passkeys_stay_in_their_tenant_and_credentials_are_unique(db: Db) {
    let t = TestStore::new(db).await;
    let a = t.new_tenant("Acme").await;
    let b = t.new_tenant("Beta").await;
    let ana = t.new_user(a, "ana@acme.example").await;
    let bob = t.new_user(b, "bob@beta.example").await;
    let k = passkey(a, ana.id, b"cred-1");
    let mut tx = t.tenant(a).await;
    passkeys::insert(&mut tx, &k).await.unwrap();
    tx.commit().await.unwrap();
    // Tenant B neither sees nor deletes it, even naming Ana.
    let mut tx = t.tenant(b).await;
    assert!(passkeys::list_for_user(&mut tx, ana.id)
        .await
        .unwrap()
        .is_empty());
    assert!(!passkeys::delete_for_user(&mut tx, k.id, ana.id)
        .await
        .unwrap());
    // The same credential for Bob: refused by the platform-wide unique index.
    let err = passkeys::insert(&mut tx, &passkey(b, bob.id, b"cred-1"))
        .await
        .unwrap_err();
    assert!(
        err.is_unique_violation_on("passkeys", "credential_id"),
        "{err}"
    );
    drop(tx);
    let mut sys = t.system().await;
    let found = passkeys::find_by_credential_id(&mut sys, b"cred-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, ana.id);
}
