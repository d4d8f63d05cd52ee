//! Second factors: a TOTP step is accepted once and only forward, a confirmed authenticator is
//! never replaced by a setup, recovery codes and challenges are spent once, and another
//! tenant's scope sees none of it.

use crate::harness::{now, Db, TestStore};
use palisade_store::two_factor::{self as rows, MfaChallenge};
use time::Duration;

both!(
    steps_only_move_forward_and_a_confirmed_secret_stays,
    recovery_codes_and_challenges_are_spent_once,
    another_tenants_scope_sees_no_factor
);

async fn steps_only_move_forward_and_a_confirmed_secret_stays(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let u = t.new_user(tenant, "ana@example.com").await;
    let mut tx = t.tenant(tenant).await;
    assert!(
        rows::put_pending_totp(&mut tx, Some(tenant), u.id, "sealed-1", now())
            .await
            .unwrap()
    );
    assert!(
        rows::put_pending_totp(&mut tx, Some(tenant), u.id, "sealed-2", now())
            .await
            .unwrap()
    );
    assert!(
        !rows::accept_step(&mut tx, u.id, 10).await.unwrap(),
        "not confirmed yet"
    );
    assert!(rows::confirm_totp(&mut tx, u.id, 10, now()).await.unwrap());
    assert!(
        !rows::confirm_totp(&mut tx, u.id, 11, now()).await.unwrap(),
        "confirmed once"
    );
    assert!(
        !rows::put_pending_totp(&mut tx, Some(tenant), u.id, "sealed-3", now())
            .await
            .unwrap(),
        "a setup never replaces a confirmed secret"
    );
    let cred = rows::find_totp(&mut tx, u.id).await.unwrap().unwrap();
    assert_eq!(cred.secret, "sealed-2");
    assert_eq!(cred.last_step, Some(10));
    assert!(
        !rows::accept_step(&mut tx, u.id, 10).await.unwrap(),
        "a replay"
    );
    assert!(
        !rows::accept_step(&mut tx, u.id, 9).await.unwrap(),
        "an older step"
    );
    assert!(rows::accept_step(&mut tx, u.id, 11).await.unwrap());
    assert!(rows::delete_totp(&mut tx, u.id).await.unwrap());
    assert!(rows::find_totp(&mut tx, u.id).await.unwrap().is_none());
    tx.commit().await.unwrap();
}

async fn recovery_codes_and_challenges_are_spent_once(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let u = t.new_user(tenant, "ana@example.com").await;
    let mut tx = t.tenant(tenant).await;
    let hashes: Vec<Vec<u8>> = (0u8..10).map(|i| vec![i; 32]).collect();
    rows::replace_recovery_codes(&mut tx, Some(tenant), u.id, &hashes, now())
        .await
        .unwrap();
    let unused = rows::unused_recovery_codes(&mut tx, u.id).await.unwrap();
    assert_eq!(unused.len(), 10);
    assert!(rows::use_recovery_code(&mut tx, unused[0].id, now())
        .await
        .unwrap());
    assert!(!rows::use_recovery_code(&mut tx, unused[0].id, now())
        .await
        .unwrap());
    assert_eq!(
        rows::unused_recovery_codes(&mut tx, u.id)
            .await
            .unwrap()
            .len(),
        9
    );
    rows::replace_recovery_codes(&mut tx, Some(tenant), u.id, &hashes[..2], now())
        .await
        .unwrap();
    assert_eq!(
        rows::unused_recovery_codes(&mut tx, u.id)
            .await
            .unwrap()
            .len(),
        2
    );

    let c = MfaChallenge {
        id: uuid::Uuid::now_v7(),
        tenant_id: Some(tenant),
        user_id: u.id,
        created_at: now(),
        expires_at: now() + Duration::minutes(5),
        failed_attempts: 0,
        used_at: None,
    };
    rows::insert_challenge(&mut tx, &c, b"challenge-hash")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    let found = rows::find_challenge(&mut tx, b"challenge-hash")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, u.id);
    assert_eq!(
        rows::record_challenge_failure(&mut tx, c.id).await.unwrap(),
        Some(1)
    );
    assert!(
        !rows::consume_challenge(&mut tx, c.id, now() + Duration::minutes(6), 5)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !rows::consume_challenge(&mut tx, c.id, now(), 1)
            .await
            .unwrap(),
        "too many tries"
    );
    assert!(rows::consume_challenge(&mut tx, c.id, now(), 5)
        .await
        .unwrap());
    assert!(
        !rows::consume_challenge(&mut tx, c.id, now(), 5)
            .await
            .unwrap(),
        "single use"
    );
    assert_eq!(
        rows::record_challenge_failure(&mut tx, c.id).await.unwrap(),
        None
    );
    tx.commit().await.unwrap();
}

async fn another_tenants_scope_sees_no_factor(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let globex = t.new_tenant("Globex").await;
    let u = t.new_user(acme, "ana@example.com").await;
    let mut tx = t.tenant(acme).await;
    rows::put_pending_totp(&mut tx, Some(acme), u.id, "sealed", now())
        .await
        .unwrap();
    rows::confirm_totp(&mut tx, u.id, 1, now()).await.unwrap();
    rows::replace_recovery_codes(&mut tx, Some(acme), u.id, &[vec![1; 32]], now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.tenant(globex).await;
    assert!(rows::find_totp(&mut tx, u.id).await.unwrap().is_none());
    assert!(rows::unused_recovery_codes(&mut tx, u.id)
        .await
        .unwrap()
        .is_empty());
    assert!(!rows::accept_step(&mut tx, u.id, 2).await.unwrap());
    assert!(!rows::delete_totp(&mut tx, u.id).await.unwrap());
    tx.commit().await.unwrap();
}
