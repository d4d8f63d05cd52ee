//! The message counts of the analytics: on PostgreSQL the trigger on `messages` appends each
//! statement's counts to `message_count_deltas` (no row shared between ingest transactions) and
//! `fold_count_deltas` moves them into the rollups; a read adds what is not folded yet, so it
//! is whole before and after the fold, and a second fold finds nothing. On SQLite the triggers
//! keep the rollups directly and there is nothing to fold.

use crate::harness::{count, now, scope, Db, Fixture, TestStore};
use palisade_domain::{MessageDirection, MessageId, MessageKind, MessageStatus};
use palisade_store::analytics::{self, Bucket, Range};
use palisade_store::messages::{self, NewMessage};
use time::Duration;

both!(counts_are_whole_before_and_after_the_fold);

async fn write(t: &TestStore, f: &Fixture, direction: MessageDirection, minutes: &[i64]) {
    let list: Vec<NewMessage> = minutes
        .iter()
        .map(|m| NewMessage {
            id: MessageId::new(),
            tenant_id: f.tenant,
            conversation_id: f.conversation,
            connection_id: f.connection,
            wamid: format!("wamid.fold.{}", MessageId::new()),
            direction,
            kind: MessageKind::Text,
            body: serde_json::json!({"type": "text", "text": {"body": "hi"}}),
            text: Some("hi".into()),
            status: MessageStatus::Received,
            error: None,
            context_wamid: None,
            sent_at: None,
            created_at: now() + Duration::minutes(*m),
        })
        .collect();
    let mut tx = t.system().await;
    messages::insert_messages(&mut tx, &list).await.unwrap();
    tx.commit().await.unwrap();
}

/// In and out per hour of the day of `now()`, from the rollups, as a reader sees them.
async fn hours(t: &TestStore, f: &Fixture) -> Vec<(i64, i64)> {
    let day = now() - Duration::hours(10);
    let buckets: Vec<Bucket> = (0..24)
        .map(|h| Bucket {
            lo: day + Duration::hours(h),
            hi: day + Duration::hours(h + 1),
        })
        .collect();
    let range = Range {
        from: day,
        to: day + Duration::hours(24),
        connection_id: None,
    };
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    analytics::bucket_counts(&mut tx, &range, &buckets)
        .await
        .unwrap()
        .iter()
        .map(|b| (b.messages_in, b.messages_out))
        .collect()
}

async fn counts_are_whole_before_and_after_the_fold(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055601").await;
    // Two statements (two deltas on PostgreSQL) in the hour of now(), one in the next hour,
    // one a quarter hour later in the same hour.
    write(&t, &f, MessageDirection::Inbound, &[0, 1, 2]).await;
    write(&t, &f, MessageDirection::Inbound, &[20, 65]).await;
    let mut expected = vec![(0, 0); 24];
    expected[10] = (4, 0);
    expected[11] = (1, 0);
    let before = hours(&t, &f).await;
    assert_eq!(before, expected, "whole before the fold");

    let mut tx = t.system().await;
    let pending = count(&mut tx, "SELECT COUNT(*) AS n FROM message_count_deltas").await;
    let folded = analytics::fold_count_deltas(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    match db {
        Db::Postgres => {
            assert!(
                pending >= 2,
                "one delta per statement and quarter hour: {pending}"
            );
            assert_eq!(folded, u64::try_from(pending).unwrap());
        }
        Db::Sqlite => assert_eq!((pending, folded), (0, 0), "nothing to fold"),
    }
    assert_eq!(hours(&t, &f).await, expected, "whole after the fold");
    let mut tx = t.system().await;
    assert_eq!(
        count(&mut tx, "SELECT COUNT(*) AS n FROM message_count_deltas").await,
        0
    );
    assert_eq!(analytics::fold_count_deltas(&mut tx).await.unwrap(), 0);
    // The rollups hold each message once.
    assert_eq!(
        count(
            &mut tx,
            "SELECT CAST(SUM(n) AS bigint) AS n FROM message_counts_hourly"
        )
        .await,
        5
    );
    assert_eq!(
        count(
            &mut tx,
            "SELECT CAST(SUM(n) AS bigint) AS n FROM message_counts"
        )
        .await,
        5
    );
    tx.commit().await.unwrap();

    // Messages after the fold: pending again, and still whole.
    write(&t, &f, MessageDirection::Inbound, &[30]).await;
    expected[10] = (5, 0);
    assert_eq!(hours(&t, &f).await, expected);
}
