//! The end of a conversation read from the end: the latest messages by id (the order the API
//! pages in, whatever their `created_at`), of that conversation only, of the scope's tenant only.

use crate::harness::{now, scope, Db, TestStore};
use palisade_domain::MessageId;
use palisade_store::messages;
use time::Duration;

both!(the_latest_messages_are_read_from_the_end_of_one_conversation);

async fn the_latest_messages_are_read_from_the_end_of_one_conversation(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("3055601").await;
    let (_, other_conversation) = t
        .new_conversation(f.tenant, f.connection, "+15550002222")
        .await;
    let mut ids: Vec<MessageId> = (0..7).map(|_| MessageId::new()).collect();
    ids.sort_by_key(|id| id.as_uuid());
    let mut tx = t.tenant(f.tenant).await;
    for (i, id) in ids.iter().enumerate() {
        // The clock runs backwards against the ids: the order must be the ids'.
        let at = now() - Duration::seconds(i as i64);
        messages::insert_note(
            &mut tx,
            *id,
            f.conversation,
            f.connection,
            &format!("note {i}"),
            f.admin.id,
            at,
        )
        .await
        .unwrap();
    }
    messages::insert_note(
        &mut tx,
        MessageId::new(),
        other_conversation,
        f.connection,
        "elsewhere",
        f.admin.id,
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let latest = messages::latest_messages(&mut tx, f.conversation, 3)
        .await
        .unwrap();
    assert_eq!(
        latest.iter().map(|m| m.id).collect::<Vec<_>>(),
        [ids[6], ids[5], ids[4]],
        "the newest three, newest first"
    );
    assert_eq!(latest[0].text.as_deref(), Some("note 6"));
    let all = messages::latest_messages(&mut tx, f.conversation, 50)
        .await
        .unwrap();
    assert_eq!(all.len(), 7, "only this conversation's messages");
    drop(tx);

    // Another tenant asking for this conversation reads nothing.
    let stranger = t.conversation_fixture("3055602").await;
    let mut tx = t.store.begin_read(scope(stranger.tenant)).await.unwrap();
    let seen = messages::latest_messages(&mut tx, f.conversation, 50)
        .await
        .unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}
