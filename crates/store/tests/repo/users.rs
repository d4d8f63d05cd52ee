//! Users: an email belongs to one account on the whole platform (the login looks users up by
//! email alone), and a tenant's scope reaches only its own users.

use crate::harness::{scope, user, Db, TestStore};
use palisade_store::users;

both!(an_email_is_taken_once);

async fn an_email_is_taken_once(db: Db) {
    let t = TestStore::new(db).await;
    let a = t.new_tenant("A").await;
    let b = t.new_tenant("B").await;
    let ana = t.new_user(a, "ana@example.com").await;

    // The same email again, in the same tenant or another one, is refused by the unique index.
    for tenant in [a, b] {
        let mut tx = t.tenant(tenant).await;
        let err = users::insert(&mut tx, &user(tenant, "ana@example.com"))
            .await
            .unwrap_err();
        assert!(err.is_unique_violation_on("users", "email"), "{err:?}");
    }

    // A user outside the scope's tenant is refused before the database is asked.
    let mut tx = t.tenant(a).await;
    assert!(users::insert(&mut tx, &user(b, "bo@example.com"))
        .await
        .is_err());
    drop(tx);

    let mut tx = t.system().await;
    let found = users::find_by_email(&mut tx, "ana@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ana.id);
    assert_eq!(found.tenant_id, Some(a));
    drop(tx);

    let mut tx = t.store.begin_read(scope(b)).await.unwrap();
    assert!(users::find(&mut tx, ana.id).await.unwrap().is_none());
    assert!(users::list(&mut tx, None, true).await.unwrap().is_empty());
}
