//! The reads behind realtime events (system work, the tenant bound into each statement):
//! messages by id and by wamid, with an inbound media message's file attached, and
//! conversations by id. They must come back as the same records the REST reads return.

use crate::harness::{now, scope, Db, TestStore};
use palisade_domain::{ConversationStatus, MediaStatus, MessageId, MessageStatus};
use palisade_store::media::{self, NewMediaJob};
use palisade_store::messages::{self, NewMessage};
use palisade_store::{conversations, realtime};
use serde_json::json;

both!(realtime_reads_are_the_rest_records);

async fn realtime_reads_are_the_rest_records(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("7055501").await;
    let image = NewMessage {
        id: MessageId::new(),
        tenant_id: f.tenant,
        conversation_id: f.conversation,
        connection_id: f.connection,
        wamid: "wamid.img".into(),
        direction: palisade_domain::MessageDirection::Inbound,
        kind: "image".into(),
        body: json!({ "type": "image", "image": { "id": "media-1" } }),
        text: None,
        status: MessageStatus::Received,
        error: None,
        context_wamid: None,
        sent_at: Some(now()),
        created_at: now(),
    };
    let mut tx = t.system().await;
    let inserted = messages::insert_messages(&mut tx, std::slice::from_ref(&image))
        .await
        .unwrap();
    assert_eq!(
        (
            inserted[0].id,
            inserted[0].conversation_id,
            inserted[0].status
        ),
        (image.id, f.conversation, MessageStatus::Received)
    );
    media::enqueue(
        &mut tx,
        &[NewMediaJob {
            message_id: image.id,
            tenant_id: f.tenant,
            kind: "image".into(),
            media_id: "media-1".into(),
            mime_type: Some("image/jpeg".into()),
            sha256: None,
            filename: None,
            status: MediaStatus::Pending,
            error_code: None,
            error: None,
            created_at: now(),
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // An agent's note: internal, recorded, by its author.
    let note = MessageId::new();
    let mut tx = t.tenant(f.tenant).await;
    messages::insert_note(
        &mut tx,
        note,
        f.conversation,
        f.connection,
        "call back",
        f.admin.id,
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let mut rest = messages::list_messages(&mut tx, f.conversation, None, 10)
        .await
        .unwrap();
    let n = rest.iter().find(|m| m.id == note).unwrap();
    assert_eq!(
        (n.direction.as_str(), n.kind.as_str(), n.status),
        ("internal", "note", MessageStatus::Recorded)
    );
    assert_eq!(n.author_id, Some(f.admin.id));
    assert_eq!(n.text.as_deref(), Some("call back"));
    assert_eq!(
        n.body,
        json!({ "type": "note", "note": { "body": "call back" } })
    );
    let files = media::for_messages(&mut tx, &[image.id, note])
        .await
        .unwrap();
    assert_eq!(files.len(), 1, "only the image has a file");
    assert_eq!(
        (files[0].message_id, files[0].tenant_id, files[0].status),
        (image.id, f.tenant, MediaStatus::Pending)
    );
    // What the REST read shows: the file attached to the inbound media message.
    for m in &mut rest {
        if m.id == image.id {
            m.media = Some(files[0].clone());
        }
    }
    let conversation = conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap()
        .unwrap();
    drop(tx);

    let other = t.new_tenant("B").await;
    let mut tx = t.system().await;
    let by_id = realtime::messages(&mut tx, f.tenant, &[note, image.id])
        .await
        .unwrap();
    assert_eq!(by_id, rest, "the REST records, in id order");
    let by_wamid =
        realtime::messages_by_wamid(&mut tx, f.tenant, f.connection, &["wamid.img".into()])
            .await
            .unwrap();
    assert_eq!(by_wamid.len(), 1);
    assert_eq!(by_wamid[0].id, image.id);
    assert_eq!(
        by_wamid[0].media.as_ref().map(|m| m.status),
        Some(MediaStatus::Pending)
    );
    let listed = realtime::conversations(&mut tx, f.tenant, &[f.conversation])
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&conversation));
    assert_eq!(
        (
            conversation.contact_id,
            conversation.connection_id,
            conversation.status
        ),
        (f.contact, f.connection, ConversationStatus::Open)
    );
    // Another tenant bound: nothing of A's.
    assert!(realtime::messages(&mut tx, other, &[note])
        .await
        .unwrap()
        .is_empty());
    assert!(
        realtime::messages_by_wamid(&mut tx, other, f.connection, &["wamid.img".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(realtime::conversations(&mut tx, other, &[f.conversation])
        .await
        .unwrap()
        .is_empty());
}
