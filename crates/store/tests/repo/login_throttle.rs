//! Login throttling: failures that arrive at the same time are each counted, and exactly one of
//! them is the one that locks; the names one address failed with are counted for the spraying
//! detection.

use crate::harness::{now, Db, TestStore};
use palisade_store::login_throttle::{self, FailureRule};
use time::Duration;

both!(
    concurrent_failures_are_all_counted,
    names_are_counted_for_the_address_of_their_last_failure,
);

const KEY: &[u8] = b"hash-of-ana@example.com";

async fn concurrent_failures_are_all_counted(db: Db) {
    let t = TestStore::new(db).await;
    let rule = FailureRule {
        now: now(),
        counts_after: now() - Duration::minutes(15),
        lock_until: now() + Duration::minutes(15),
        threshold: 5,
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store
                .begin(palisade_store::SystemScope::new("login"))
                .await
                .unwrap();
            let state = login_throttle::record_failure(&mut tx, KEY, &rule, Some("203.0.113.9"))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            state
        }));
    }
    let mut states = Vec::new();
    for task in tasks {
        states.push(task.await.unwrap());
    }

    let mut counts: Vec<i64> = states.iter().map(|s| s.failures).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=8).collect::<Vec<_>>(), "no failure lost");
    let reporters = states
        .iter()
        .filter(|s| s.failures == 5 && s.locked_until == Some(rule.lock_until))
        .count();
    assert_eq!(reporters, 1, "exactly one failure reports the lock");
    assert!(states
        .iter()
        .filter(|s| s.failures < 5)
        .all(|s| s.locked_until.is_none()));

    let mut tx = t.system().await;
    let stored = login_throttle::get(&mut tx, KEY).await.unwrap().unwrap();
    assert_eq!(stored.failures, 8);
    assert_eq!(stored.locked_until, Some(rule.lock_until));

    // Once the lock and the window are over, the count starts again.
    let later = FailureRule {
        now: now() + Duration::hours(1),
        counts_after: now() + Duration::minutes(45),
        lock_until: now() + Duration::minutes(75),
        threshold: 5,
    };
    let fresh = login_throttle::record_failure(&mut tx, KEY, &later, None)
        .await
        .unwrap();
    assert_eq!(fresh.failures, 1);
    assert_eq!(fresh.locked_until, None);
    login_throttle::clear(&mut tx, KEY).await.unwrap();
    assert!(login_throttle::get(&mut tx, KEY).await.unwrap().is_none());
    tx.commit().await.unwrap();
}

async fn names_are_counted_for_the_address_of_their_last_failure(db: Db) {
    let t = TestStore::new(db).await;
    let rule = |at: time::OffsetDateTime, threshold| FailureRule {
        now: at,
        counts_after: at - Duration::minutes(15),
        lock_until: at + Duration::minutes(15),
        threshold,
    };
    let (spray, other) = ("203.0.113.66", "198.51.100.7");
    let mut tx = t.system().await;
    for i in 0..4 {
        let key = format!("name-{i}");
        login_throttle::record_failure(&mut tx, key.as_bytes(), &rule(now(), 5), Some(spray))
            .await
            .unwrap();
    }
    // The same name again is the same name; another address's names are not this one's.
    login_throttle::record_failure(&mut tx, b"name-0", &rule(now(), 5), Some(spray))
        .await
        .unwrap();
    login_throttle::record_failure(&mut tx, b"elsewhere", &rule(now(), 5), Some(other))
        .await
        .unwrap();
    let since = now() - Duration::minutes(10);
    assert_eq!(
        login_throttle::names_failed_from(&mut tx, spray, since)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        login_throttle::names_failed_from(&mut tx, other, since)
            .await
            .unwrap(),
        1
    );
    // A name's later failure from another address moves it there.
    let later = now() + Duration::seconds(1);
    login_throttle::record_failure(&mut tx, b"name-3", &rule(later, 5), Some(other))
        .await
        .unwrap();
    assert_eq!(
        login_throttle::names_failed_from(&mut tx, spray, since)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        login_throttle::names_failed_from(&mut tx, other, since)
            .await
            .unwrap(),
        2
    );
    // A locked name keeps the address of the failure that locked it (attempts during the
    // lock are not failures of the name).
    login_throttle::record_failure(&mut tx, b"locked", &rule(now(), 1), Some(spray))
        .await
        .unwrap();
    login_throttle::record_failure(&mut tx, b"locked", &rule(later, 1), Some(other))
        .await
        .unwrap();
    assert_eq!(
        login_throttle::names_failed_from(&mut tx, spray, since)
            .await
            .unwrap(),
        4
    );
    // Failures before `since` do not count.
    assert_eq!(
        login_throttle::names_failed_from(&mut tx, spray, later + Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
}
