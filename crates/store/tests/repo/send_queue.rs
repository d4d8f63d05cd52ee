//! The send queue: an outbound message is queued with its row in one transaction, claimed by
//! one sender at a time, retried with its attempts counted, and leaves the queue once sent.

use crate::harness::{now, scope, Db, Fixture, TestStore};
use palisade_domain::{MessageId, MessageStatus};
use palisade_store::send_queue::{self, NewOutbound};
use palisade_store::tenants::{self, TenantStatus};
use palisade_store::{conversations, messages};
use std::collections::HashSet;
use time::Duration;

both!(
    a_send_is_claimed_once_and_retried,
    a_suspended_tenants_sends_wait
);

async fn queue(t: &TestStore, f: &Fixture, n: usize) -> Vec<MessageId> {
    let mut tx = t.tenant(f.tenant).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let m = NewOutbound {
            id: MessageId::new(),
            conversation_id: f.conversation,
            connection_id: f.connection,
            kind: "text".into(),
            body: serde_json::json!({ "type": "text", "text": { "body": format!("reply {i}") } }),
            text: Some(format!("reply {i}")),
            author_id: Some(f.admin.id),
            created_at: now() + Duration::minutes(1),
        };
        send_queue::insert_outbound(&mut tx, &m).await.unwrap();
        ids.push(m.id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn a_send_is_claimed_once_and_retried(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("4055501").await;
    let ids = queue(&t, &f, 5).await;

    // Stored `queued`, and the conversation's latest message is the reply.
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let m = messages::find_message(&mut tx, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.direction.as_str(), m.status.as_str()),
        ("outbound", "queued")
    );
    assert_eq!(m.wamid, None);
    let c = conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.last_message_at, now() + Duration::minutes(1));
    drop(tx);

    let due = now() + Duration::minutes(2);
    let lease = due + Duration::seconds(30);
    let (a, b) = claim_twice!(t, |tx| send_queue::claim_sends(tx, due, lease, 3));
    assert_eq!((a.len(), b.len()), (3, 2));
    let claimed: HashSet<MessageId> = a.iter().chain(&b).map(|s| s.message_id).collect();
    assert_eq!(claimed, ids.iter().copied().collect(), "each send once");

    // The recipient is the contact's WhatsApp id.
    let mut tx = t.system().await;
    let (job, to) = send_queue::send_job(&mut tx, f.tenant, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, ids[0]);
    assert_eq!(to, "15550001111");

    // A transient failure: due again at the time given, one attempt counted.
    send_queue::retry_send(&mut tx, f.tenant, ids[0], lease, "timeout")
        .await
        .unwrap();
    // Meta accepted another: sent with its wamid, out of the queue.
    send_queue::mark_sent(&mut tx, f.tenant, ids[1], "wamid.sent", due)
        .await
        .unwrap();
    // Meta refused a third for good.
    send_queue::mark_failed(
        &mut tx,
        f.tenant,
        ids[2],
        serde_json::json!({"code": 131026}),
        due,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    let retried = send_queue::claim_sends(&mut tx, lease, lease + Duration::minutes(1), 10)
        .await
        .unwrap();
    let by_id: Vec<(MessageId, i64)> = retried.iter().map(|s| (s.message_id, s.attempts)).collect();
    assert!(by_id.contains(&(ids[0], 1)), "{by_id:?}");
    assert!(
        by_id.iter().all(|(id, _)| *id != ids[1] && *id != ids[2]),
        "sent and failed messages left the queue: {by_id:?}"
    );
    assert_eq!(by_id.len(), 3);
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let sent = messages::find_message(&mut tx, ids[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    assert_eq!(sent.wamid.as_deref(), Some("wamid.sent"));
    assert_eq!(sent.sent_at, Some(due));
    let failed = messages::find_message(&mut tx, ids[2])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.error.unwrap()["code"], 131026);
}

async fn a_suspended_tenants_sends_wait(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("4055502").await;
    let ids = queue(&t, &f, 2).await;
    let mut tx = t.system().await;
    tenants::set_status(&mut tx, f.tenant, TenantStatus::Suspended, None, now())
        .await
        .unwrap();
    let due = now() + Duration::hours(1);
    assert!(send_queue::claim_sends(&mut tx, due, due, 10)
        .await
        .unwrap()
        .is_empty());
    tenants::set_status(&mut tx, f.tenant, TenantStatus::Active, None, now())
        .await
        .unwrap();
    let mut claimed: Vec<(MessageId, i64)> = send_queue::claim_sends(&mut tx, due, due, 10)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.message_id, s.attempts))
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        [(ids[0], 0), (ids[1], 0)],
        "untouched while suspended: no attempt counted"
    );
}
