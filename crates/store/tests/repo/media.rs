//! Media download jobs: queued with their message, claimed once, retried, and recorded as stored
//! only once.

use crate::harness::{now, scope, Db, Fixture, TestStore};
use palisade_domain::{MediaStatus, MessageId, MessageStatus};
use palisade_store::media::{self, NewMediaJob, StoredFile};
use palisade_store::messages::{self, NewMessage};
use time::Duration;

both!(
    a_media_job_is_claimed_once_and_stored_once,
    a_failed_download_is_kept_and_an_erasure_returns_the_files
);

async fn a_media_job_is_claimed_once_and_stored_once(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("5055501").await;
    let mut tx = t.system().await;
    let mut jobs = Vec::new();
    let mut list = Vec::new();
    for i in 0..3 {
        let id = MessageId::new();
        list.push(NewMessage {
            id,
            tenant_id: f.tenant,
            conversation_id: f.conversation,
            connection_id: f.connection,
            wamid: format!("wamid.img{i}"),
            direction: palisade_domain::MessageDirection::Inbound,
            kind: "image".into(),
            body: serde_json::json!({ "type": "image", "image": { "id": format!("media-{i}") } }),
            text: None,
            status: MessageStatus::Received,
            error: None,
            context_wamid: None,
            sent_at: None,
            created_at: now(),
        });
        jobs.push(NewMediaJob {
            message_id: id,
            tenant_id: f.tenant,
            kind: "image".into(),
            media_id: format!("media-{i}"),
            mime_type: Some("image/jpeg".into()),
            sha256: None,
            filename: None,
            status: MediaStatus::Pending,
            error_code: None,
            error: None,
            created_at: now(),
        });
    }
    messages::insert_messages(&mut tx, &list).await.unwrap();
    assert_eq!(media::enqueue(&mut tx, &jobs).await.unwrap(), 3);
    assert_eq!(
        media::enqueue(&mut tx, &jobs[..1]).await.unwrap(),
        0,
        "a message keeps its one job"
    );
    tx.commit().await.unwrap();

    let lease = now() + Duration::minutes(1);
    let (a, b) = claim_twice!(t, |tx| media::claim_due(tx, now(), lease, 2));
    assert_eq!((a.len(), b.len()), (2, 1));
    let mut claimed: Vec<MessageId> = a.iter().chain(&b).map(|j| j.message_id).collect();
    claimed.sort();
    assert_eq!(claimed, list.iter().map(|m| m.id).collect::<Vec<_>>());

    let first = list[0].id;
    let mut tx = t.system().await;
    let (job, connection) = media::job(&mut tx, f.tenant, first).await.unwrap().unwrap();
    assert_eq!(job.media_id, "media-0");
    assert_eq!(connection, f.connection);
    media::retry(
        &mut tx,
        f.tenant,
        list[1].id,
        lease,
        "timeout",
        "Meta timed out",
        now(),
    )
    .await
    .unwrap();
    let file = StoredFile {
        mime_type: Some("image/jpeg".into()),
        size_bytes: 1234,
        content_sha256: "ab".repeat(32),
        storage_key: "t/0".into(),
    };
    assert!(media::mark_stored(&mut tx, f.tenant, first, &file, now())
        .await
        .unwrap());
    assert!(
        !media::mark_stored(&mut tx, f.tenant, first, &file, now())
            .await
            .unwrap(),
        "a second download of the same job is not recorded"
    );
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    let again = media::claim_due(&mut tx, lease, lease + Duration::minutes(1), 10)
        .await
        .unwrap();
    let ids: Vec<(MessageId, i64)> = again.iter().map(|j| (j.message_id, j.attempts)).collect();
    assert!(ids.contains(&(list[1].id, 1)), "{ids:?}");
    assert!(
        ids.iter().all(|(id, _)| *id != first),
        "stored jobs are done: {ids:?}"
    );
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let stored = media::find(&mut tx, first).await.unwrap().unwrap();
    assert_eq!(stored.status, MediaStatus::Stored);
    assert_eq!(stored.storage_key.as_deref(), Some("t/0"));
    assert_eq!(stored.size_bytes, Some(1234));
    assert_eq!(stored.attempts, 1);
}

/// Inbound image messages with their download jobs, committed.
async fn images(t: &TestStore, f: &Fixture, n: usize) -> Vec<MessageId> {
    let mut tx = t.system().await;
    let mut ids = Vec::new();
    for i in 0..n {
        let id = MessageId::new();
        let m = NewMessage {
            id,
            tenant_id: f.tenant,
            conversation_id: f.conversation,
            connection_id: f.connection,
            wamid: format!("wamid.pic{i}"),
            direction: palisade_domain::MessageDirection::Inbound,
            kind: "image".into(),
            body: serde_json::json!({ "type": "image", "image": { "id": format!("pic-{i}") } }),
            text: None,
            status: MessageStatus::Received,
            error: None,
            context_wamid: None,
            sent_at: None,
            created_at: now(),
        };
        messages::insert_messages(&mut tx, &[m]).await.unwrap();
        let job = NewMediaJob {
            message_id: id,
            tenant_id: f.tenant,
            kind: "image".into(),
            media_id: format!("pic-{i}"),
            mime_type: None,
            sha256: None,
            filename: None,
            status: MediaStatus::Pending,
            error_code: None,
            error: None,
            created_at: now(),
        };
        media::enqueue(&mut tx, &[job]).await.unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn a_failed_download_is_kept_and_an_erasure_returns_the_files(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("5055502").await;
    let ids = images(&t, &f, 3).await;
    let mut tx = t.system().await;
    let file = StoredFile {
        mime_type: None,
        size_bytes: 10,
        content_sha256: "cd".repeat(32),
        storage_key: "t/stored".into(),
    };
    assert!(media::mark_stored(&mut tx, f.tenant, ids[0], &file, now())
        .await
        .unwrap());
    media::mark_failed(
        &mut tx,
        f.tenant,
        ids[1],
        "too_large",
        "the image is too large",
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let failed = media::find(&mut tx, ids[1]).await.unwrap().unwrap();
    assert_eq!(failed.status, MediaStatus::Failed);
    assert_eq!(failed.error_code.as_deref(), Some("too_large"));
    assert_eq!(failed.error.as_deref(), Some("the image is too large"));
    assert_eq!((failed.attempts, failed.storage_key), (1, None));
    let mut states: Vec<(MessageId, MediaStatus)> = media::for_messages(&mut tx, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.message_id, m.status))
        .collect();
    states.sort_by_key(|(id, _)| *id);
    assert_eq!(
        states,
        [
            (ids[0], MediaStatus::Stored),
            (ids[1], MediaStatus::Failed),
            (ids[2], MediaStatus::Pending)
        ]
    );
    drop(tx);

    // Another tenant erases nothing of A's.
    let b = t.new_tenant("B").await;
    let mut tx = t.tenant(b).await;
    assert!(media::delete_of_contact(&mut tx, f.contact)
        .await
        .unwrap()
        .is_empty());
    tx.commit().await.unwrap();

    // Erasing the contact removes its media rows and names the one stored file to delete.
    let mut tx = t.tenant(f.tenant).await;
    let keys = media::delete_of_contact(&mut tx, f.contact).await.unwrap();
    assert_eq!(keys, ["t/stored"]);
    assert!(media::for_messages(&mut tx, &ids).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}
