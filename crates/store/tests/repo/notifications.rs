//! Notifications: each is read only by its recipient, and the first read time is kept.

use crate::harness::{now, scope, Db, TestStore};
use palisade_domain::NotificationId;
use palisade_store::notifications::{self, Notification};
use time::Duration;

both!(a_notification_is_its_recipients);

async fn a_notification_is_its_recipients(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let ana = t.new_user(tenant, "ana@example.com").await;
    let bo = t.new_user(tenant, "bo@example.com").await;
    let n = Notification {
        id: NotificationId::new(),
        tenant_id: tenant,
        user_id: ana.id,
        kind: "webhook.disabled".into(),
        title: "A webhook was disabled".into(),
        body: "It failed for 24 hours.".into(),
        data: serde_json::json!({ "webhook_id": "w1" }),
        target_type: Some("webhook".into()),
        target_id: None,
        created_at: now(),
        read_at: None,
    };
    let mut tx = t.tenant(tenant).await;
    notifications::insert(&mut tx, &n).await.unwrap();
    let admins = notifications::admin_ids(&mut tx, tenant).await.unwrap();
    assert_eq!(admins.len(), 2, "both users are admins");
    tx.commit().await.unwrap();

    let mut tx = t.tenant(tenant).await;
    let unread = notifications::list_for_user(&mut tx, ana.id, true, None, 10)
        .await
        .unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].data, n.data);
    assert!(
        notifications::list_for_user(&mut tx, bo.id, false, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        notifications::mark_read(&mut tx, bo.id, n.id, now())
            .await
            .unwrap()
            .is_none(),
        "another user cannot mark it read"
    );
    let read = notifications::mark_read(&mut tx, ana.id, n.id, now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.read_at, Some(now()));
    let again = notifications::mark_read(&mut tx, ana.id, n.id, now() + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.read_at, Some(now()), "the first read time is kept");
    assert!(
        notifications::list_for_user(&mut tx, ana.id, true, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();

    let other = t.new_tenant("Other").await;
    let mut tx = t.store.begin_read(scope(other)).await.unwrap();
    assert!(
        notifications::list_for_user(&mut tx, ana.id, false, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
