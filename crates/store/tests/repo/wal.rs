//! SQLite's WAL: the writer leaves copying it back into the database file to the checkpointer
//! task (`Store::spawn_wal_checkpointer`), which does it after commits, off the writer.

use crate::harness::{now, Db, TestStore};
use palisade_store::whatsapp_inbound::{self, InboundEvent};

both!(the_checkpointer_copies_commits_back_into_the_database_file);

/// Commits ≈ 1 MB of webhook bodies (≈ 250 pages).
async fn write_a_megabyte(t: &TestStore, f: &crate::harness::Fixture) {
    let events: Vec<InboundEvent> = (0..8)
        .map(|i| InboundEvent {
            id: palisade_domain::InboundEventId::new(),
            tenant_id: f.tenant,
            connection_id: f.connection,
            // Not compressible into fewer pages on either database.
            body: (0..128 * 1024u32)
                .map(|n| u8::try_from((n.wrapping_mul(2_654_435_761) >> 13) % 251).unwrap() ^ i)
                .collect(),
            received_at: now(),
            processed_at: None,
            attempts: 0,
            error: None,
        })
        .collect();
    let mut tx = t.system().await;
    whatsapp_inbound::insert_all(&mut tx, &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn the_checkpointer_copies_commits_back_into_the_database_file(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("2055502").await;
    let Some(file) = t.sqlite_file() else {
        assert!(
            t.store.spawn_wal_checkpointer().is_none(),
            "PostgreSQL has no WAL of the application's to checkpoint"
        );
        return;
    };
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();

    // Without the task, a commit far below the writer's threshold stays in the WAL.
    write_a_megabyte(&t, &f).await;
    assert_eq!(
        size(),
        before,
        "the writer checkpointed below WRITER_WAL_AUTOCHECKPOINT"
    );

    let task = t.store.spawn_wal_checkpointer().expect("SQLite has one");
    write_a_megabyte(&t, &f).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 2_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpointer did not copy the commits back within 10 s ({} → {} bytes)",
            before,
            size()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();

    // All of it still reads back through the store.
    let mut tx = t.system().await;
    assert_eq!(
        whatsapp_inbound::pending(&mut tx, 100).await.unwrap().len(),
        16
    );
}
