//! API keys: found by the hash of the secret, revoked for good, usage added up.

use crate::harness::{now, scope, Db, TestStore};
use palisade_domain::ApiKeyId;
use palisade_store::api_keys::{self, ApiKey};

both!(an_api_key_is_found_by_its_hash_and_revoked);

async fn an_api_key_is_found_by_its_hash_and_revoked(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let admin = t.new_user(tenant, "ana@example.com").await;
    let key = ApiKey {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        name: "CI".into(),
        prefix: "pk_live_ab".into(),
        scopes: vec![palisade_domain::Scope::ContactsRead],
        allowed_ips: Some(vec!["192.0.2.0/24".into()]),
        expires_at: None,
        created_by: admin.id,
        created_at: now(),
        updated_at: now(),
        last_used_at: None,
        last_used_ip: None,
        total_requests: 0,
        revoked_at: None,
        revoked_by: None,
        revocation_reason: None,
    };
    let mut tx = t.tenant(tenant).await;
    api_keys::insert(&mut tx, &key, b"key-hash").await.unwrap();
    tx.commit().await.unwrap();

    // The presented key names no tenant: found by its hash, under a system scope.
    let mut tx = t.system().await;
    let found = api_keys::find_by_hash(&mut tx, b"key-hash")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, key.id);
    assert_eq!(found.tenant_id, tenant);
    assert_eq!(found.scopes, key.scopes);
    assert_eq!(found.allowed_ips, key.allowed_ips);
    api_keys::add_usage(&mut tx, key.id, 3, now(), Some("192.0.2.7"))
        .await
        .unwrap();
    api_keys::add_usage(&mut tx, key.id, 2, now(), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.tenant(tenant).await;
    let mut k = api_keys::find_for_update(&mut tx, key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k.total_requests, 5);
    assert_eq!(k.last_used_ip.as_deref(), Some("192.0.2.7"));
    k.revoked_at = Some(now());
    k.revoked_by = Some(admin.id);
    k.revocation_reason = Some("leaked".into());
    api_keys::update(&mut tx, &k).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    let revoked = api_keys::find_by_hash(&mut tx, b"key-hash")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(now()));
    assert_eq!(revoked.revocation_reason.as_deref(), Some("leaked"));
    drop(tx);

    // Another tenant neither lists nor deletes it.
    let other = t.new_tenant("Other").await;
    let mut tx = t.store.begin(scope(other)).await.unwrap();
    assert!(api_keys::list(&mut tx).await.unwrap().is_empty());
    assert!(api_keys::find(&mut tx, key.id).await.unwrap().is_none());
    assert!(!api_keys::delete(&mut tx, key.id).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = t.tenant(tenant).await;
    assert!(api_keys::delete(&mut tx, key.id).await.unwrap());
    assert!(api_keys::list(&mut tx).await.unwrap().is_empty());
}
