//! The login history and remembered devices: pages newest first by cursor, one device row per
//! user and device however often it is seen, pruning by age, and tenant isolation (on
//! PostgreSQL also by row-level security for a statement with no tenant condition).

use crate::harness::{count, now, Db, TestStore};
use palisade_domain::{LoginAttemptId, LoginMethod, LoginResult, TenantId, UserId};
use palisade_store::login_history::{self, LoginAttempt};
use time::Duration;

both!(
    attempts_page_newest_first_and_stay_in_their_tenant,
    a_device_is_one_row_and_its_last_sighting_moves,
    old_attempts_are_pruned
);

fn attempt(tenant: TenantId, user: UserId, result: LoginResult) -> LoginAttempt {
    LoginAttempt {
        id: LoginAttemptId::new(),
        tenant_id: Some(tenant),
        user_id: user,
        at: now(),
        ip: Some("192.0.2.1".into()),
        browser: Some("Firefox 128.0".into()),
        os: Some("Linux".into()),
        result,
        method: LoginMethod::Password,
    }
}

async fn remember(
    tx: &mut palisade_store::Tx<palisade_store::TenantScope>,
    tenant: TenantId,
    user: UserId,
    hash: &[u8],
    at: time::OffsetDateTime,
) -> Option<time::OffsetDateTime> {
    login_history::remember_device(tx, Some(tenant), user, hash, at)
        .await
        .unwrap()
}

async fn attempts_page_newest_first_and_stay_in_their_tenant(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let globex = t.new_tenant("Globex").await;
    let ana = t.new_user(acme, "ana@acme.example").await;
    let bo = t.new_user(globex, "bo@globex.example").await;
    let mut written = Vec::new();
    let mut tx = t.tenant(acme).await;
    for r in [
        LoginResult::Success,
        LoginResult::Failure,
        LoginResult::Locked,
        LoginResult::MfaFailure,
    ] {
        let a = attempt(acme, ana.id, r);
        login_history::insert(&mut tx, &a).await.unwrap();
        written.push(a);
    }
    tx.commit().await.unwrap();
    let mut tx = t.tenant(globex).await;
    login_history::insert(&mut tx, &attempt(globex, bo.id, LoginResult::Success))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.tenant(acme).await;
    let page = login_history::list(&mut tx, ana.id, None, 3).await.unwrap();
    let newest_first: Vec<_> = written.iter().rev().cloned().collect();
    assert_eq!(page, newest_first[..3]);
    let rest = login_history::list(&mut tx, ana.id, Some(page[2].id), 3)
        .await
        .unwrap();
    assert_eq!(rest, newest_first[3..]);
    // Another tenant's user has no history here.
    assert!(login_history::list(&mut tx, bo.id, None, 10)
        .await
        .unwrap()
        .is_empty());
    if db == Db::Postgres {
        // Row-level security alone confines a statement with no tenant condition.
        assert_eq!(
            count(&mut tx, "SELECT COUNT(*) AS n FROM login_history").await,
            4
        );
    }
}

async fn a_device_is_one_row_and_its_last_sighting_moves(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let ana = t.new_user(acme, "ana@acme.example").await;
    let mut tx = t.tenant(acme).await;
    assert!(!login_history::has_devices(&mut tx, ana.id).await.unwrap());
    let later = now() + Duration::days(3);
    assert_eq!(
        remember(&mut tx, acme, ana.id, b"device-a", now()).await,
        None,
        "never seen"
    );
    assert!(login_history::has_devices(&mut tx, ana.id).await.unwrap());
    assert_eq!(
        remember(&mut tx, acme, ana.id, b"device-a", later).await,
        Some(now())
    );
    assert_eq!(
        remember(&mut tx, acme, ana.id, b"device-b", later).await,
        None
    );
    assert_eq!(
        remember(&mut tx, acme, ana.id, b"device-a", later).await,
        Some(later)
    );
    assert_eq!(
        count(&mut tx, "SELECT COUNT(*) AS n FROM login_devices").await,
        2
    );
    tx.commit().await.unwrap();
    // Another tenant does not see them.
    let globex = t.new_tenant("Globex").await;
    let mut tx = t.tenant(globex).await;
    assert!(!login_history::has_devices(&mut tx, ana.id).await.unwrap());
}

async fn old_attempts_are_pruned(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let ana = t.new_user(acme, "ana@acme.example").await;
    let mut old = attempt(acme, ana.id, LoginResult::Success);
    old.at = now() - Duration::days(200);
    let recent = attempt(acme, ana.id, LoginResult::Failure);
    let mut tx = t.tenant(acme).await;
    login_history::insert(&mut tx, &old).await.unwrap();
    login_history::insert(&mut tx, &recent).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.system().await;
    let n = login_history::prune(&mut tx, now() - Duration::days(180))
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
    let mut tx = t.tenant(acme).await;
    assert_eq!(
        login_history::list(&mut tx, ana.id, None, 10)
            .await
            .unwrap(),
        vec![recent]
    );
}
