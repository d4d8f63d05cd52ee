//! Inbound events (Meta's webhook bodies, stored before the 200): stored verbatim, pending until
//! processed, claimed by one processor at a time, marked processed or retried.

use crate::harness::{now, Db, TestStore};
use palisade_store::whatsapp_inbound::{self, InboundEvent};

both!(an_event_is_stored_claimed_and_marked);

async fn an_event_is_stored_claimed_and_marked(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("2055501").await;
    let events: Vec<InboundEvent> = (0..3)
        .map(|i| InboundEvent {
            id: palisade_domain::InboundEventId::new(),
            tenant_id: f.tenant,
            connection_id: f.connection,
            body: format!("{{\"entry\":[{i}]}}").into_bytes(),
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

    let mut tx = t.system().await;
    let pending = whatsapp_inbound::pending(&mut tx, 10).await.unwrap();
    assert_eq!(
        pending,
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        "oldest first"
    );
    let first = events[0].id;
    let claimed = whatsapp_inbound::claim(&mut tx, first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.body, events[0].body, "stored verbatim");
    assert_eq!(claimed.tenant_id, f.tenant);

    // While one processor holds it, another skips it (PostgreSQL; SQLite runs one at a time).
    if t.db == Db::Postgres {
        let mut other = t.system().await;
        assert!(whatsapp_inbound::claim(&mut other, first)
            .await
            .unwrap()
            .is_none());
    }
    whatsapp_inbound::finish(&mut tx, first, now(), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    assert!(
        whatsapp_inbound::claim(&mut tx, first)
            .await
            .unwrap()
            .is_none(),
        "a processed event is not claimed again"
    );
    let done = whatsapp_inbound::find(&mut tx, first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.processed_at, Some(now()));
    assert_eq!(done.attempts, 1);

    // A failed attempt keeps the event pending, with its error.
    let second = events[1].id;
    assert_eq!(
        whatsapp_inbound::record_attempt(&mut tx, second, "database busy")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        whatsapp_inbound::record_attempt(&mut tx, second, "database busy")
            .await
            .unwrap(),
        2
    );
    let retried = whatsapp_inbound::find(&mut tx, second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried.processed_at, None);
    assert_eq!(retried.error.as_deref(), Some("database busy"));
    // Given up: processed, with the reason kept.
    whatsapp_inbound::finish(&mut tx, events[2].id, now(), Some("bad payload".into()))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    assert_eq!(
        whatsapp_inbound::pending(&mut tx, 10).await.unwrap(),
        [second]
    );
    let failed = whatsapp_inbound::find(&mut tx, events[2].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("bad payload"));
    assert!(failed.processed_at.is_some());
}
