//! Tenants: created under their own scope, found, suspended and reactivated by the platform.

use crate::harness::{now, scope, Db, TestStore};
use palisade_domain::TenantId;
use palisade_store::tenants::{self, TenantStatus};

both!(a_tenant_is_created_found_suspended_and_reactivated);

async fn a_tenant_is_created_found_suspended_and_reactivated(db: Db) {
    let t = TestStore::new(db).await;
    let id = t.new_tenant("Acme").await;

    let mut tx = t.system().await;
    let found = tenants::find(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(found.name, "Acme");
    assert_eq!(found.status, TenantStatus::Active);
    assert_eq!(found.created_at, now());
    assert_eq!(found.suspended_at, None);

    let later = now() + time::Duration::hours(1);
    let suspended =
        tenants::set_status(&mut tx, id, TenantStatus::Suspended, Some("unpaid"), later)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(suspended.status, TenantStatus::Suspended);
    assert_eq!(suspended.suspended_at, Some(later));
    assert_eq!(suspended.suspended_reason.as_deref(), Some("unpaid"));
    tx.commit().await.unwrap();

    // What was committed is what a later read sees.
    let mut tx = t.system().await;
    let again = tenants::find(&mut tx, id).await.unwrap().unwrap();
    assert_eq!(again.status, TenantStatus::Suspended);
    let active = tenants::set_status(&mut tx, id, TenantStatus::Active, None, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.status, TenantStatus::Active);
    assert_eq!(active.suspended_at, None);
    // An unknown tenant is no tenant.
    assert!(tenants::set_status(
        &mut tx,
        TenantId::new(),
        TenantStatus::Suspended,
        None,
        later
    )
    .await
    .unwrap()
    .is_none());
    tx.commit().await.unwrap();

    // Another tenant's scope does not see it.
    let other = t.new_tenant("Other").await;
    let mut tx = t.store.begin_read(scope(other)).await.unwrap();
    assert!(tenants::find(&mut tx, id).await.unwrap().is_none());
    assert_eq!(
        tenants::find(&mut tx, other).await.unwrap().unwrap().name,
        "Other"
    );
}
