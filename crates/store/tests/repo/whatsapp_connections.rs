//! WhatsApp connections: a number is active for one tenant at a time; once disconnected,
//! another tenant may connect it.

use crate::harness::{connection, now, scope, Db, TestStore};
use palisade_domain::ConnectionStatus;
use palisade_store::{conversations, whatsapp_connections, StoreError};

both!(
    an_active_number_belongs_to_one_tenant,
    a_status_change_is_read_back_by_id
);

async fn an_active_number_belongs_to_one_tenant(db: Db) {
    let t = TestStore::new(db).await;
    let a = t.new_tenant("A").await;
    let b = t.new_tenant("B").await;
    let ana = t.new_user(a, "ana@a.example").await;
    let bo = t.new_user(b, "bo@b.example").await;
    let first = t.new_connection(a, ana.id, "1055501").await;

    // B cannot take the number while A's connection is active, although B cannot see it.
    let mut tx = t.tenant(b).await;
    assert!(
        whatsapp_connections::find_by_phone_number_id(&mut tx, "1055501")
            .await
            .unwrap()
            .is_none()
    );
    let err = whatsapp_connections::insert(&mut tx, &connection(b, bo.id, "1055501"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    drop(tx);

    // A tenant has one row per number, active or not.
    let mut tx = t.tenant(a).await;
    let err = whatsapp_connections::insert(&mut tx, &connection(a, ana.id, "1055501"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    drop(tx);

    let mut tx = t.tenant(a).await;
    assert!(whatsapp_connections::set_status(
        &mut tx,
        first.id,
        ConnectionStatus::Disconnected,
        now()
    )
    .await
    .unwrap());
    let found = whatsapp_connections::find(&mut tx, first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.status, ConnectionStatus::Disconnected);
    assert_eq!(found.disconnected_at, Some(now()));
    // It has no history: nothing keeps it from being deleted.
    assert!(
        !conversations::connection_has_conversations(&mut tx, first.id)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    let taken = t.new_connection(b, bo.id, "1055501").await;
    let mut tx = t.store.begin_read(scope(b)).await.unwrap();
    let listed = whatsapp_connections::list(&mut tx).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), [taken.id]);
    drop(tx);

    // A cannot reactivate its row while B holds the number.
    let mut tx = t.tenant(a).await;
    let mut again = first.clone();
    again.updated_at = now();
    let err = whatsapp_connections::reactivate(&mut tx, &again)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
}

async fn a_status_change_is_read_back_by_id(db: Db) {
    let t = TestStore::new(db).await;
    let a = t.new_tenant("A").await;
    let ana = t.new_user(a, "ana@a.example").await;
    let c = t.new_connection(a, ana.id, "1055502").await;
    let later = now() + time::Duration::minutes(1);

    let mut tx = t.tenant(a).await;
    assert_eq!(
        whatsapp_connections::find(&mut tx, c.id).await.unwrap(),
        Some(c.clone()),
        "read back as written"
    );
    assert!(
        whatsapp_connections::set_status(&mut tx, c.id, ConnectionStatus::Disconnected, now())
            .await
            .unwrap()
    );
    assert!(
        whatsapp_connections::set_status(&mut tx, c.id, ConnectionStatus::Active, later)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();

    // Meta's webhooks look it up by id alone (system work).
    let mut tx = t.system().await;
    let found = whatsapp_connections::find_any(&mut tx, c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.status, found.disconnected_at, found.updated_at),
        (ConnectionStatus::Active, None, later),
        "active again: no disconnection time"
    );
    assert_eq!((found.tenant_id, found.created_by), (a, ana.id));
    drop(tx);

    // Another tenant neither changes nor deletes it.
    let b = t.new_tenant("B").await;
    let mut tx = t.tenant(b).await;
    assert!(!whatsapp_connections::set_status(
        &mut tx,
        c.id,
        ConnectionStatus::Disconnected,
        later
    )
    .await
    .unwrap());
    assert!(!whatsapp_connections::delete(&mut tx, c.id).await.unwrap());
    tx.commit().await.unwrap();
}
