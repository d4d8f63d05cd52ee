//! Sessions and refresh tokens: a refresh token is used once (a replay is refused), and a
//! revoked session is no longer active.

use crate::harness::{now, Db, TestStore};
use palisade_domain::SessionId;
use palisade_store::sessions::{self, Session};
use palisade_store::{refresh_tokens, Scope, Tx};
use time::Duration;

fn session(tenant: palisade_domain::TenantId, user: palisade_domain::UserId) -> Session {
    Session {
        id: SessionId::new(),
        tenant_id: Some(tenant),
        user_id: user,
        created_at: now(),
        last_seen_at: now(),
        expires_at: now() + Duration::days(30),
        revoked_at: None,
        revoked_reason: None,
        ip: Some("192.0.2.1".into()),
        user_agent: None,
        browser: None,
        os: None,
    }
}

async fn insert<S: Scope>(tx: &mut Tx<S>, s: &Session) {
    sessions::insert(tx, s).await.unwrap();
}

both!(
    a_refresh_token_is_used_once,
    revoked_sessions_are_not_active
);

async fn a_refresh_token_is_used_once(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let u = t.new_user(tenant, "ana@example.com").await;
    let s = session(tenant, u.id);
    let mut tx = t.tenant(tenant).await;
    insert(&mut tx, &s).await;
    refresh_tokens::insert(&mut tx, Some(tenant), s.id, b"hash-1", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Rotation: the presented token is found by its hash and marked used, once.
    let mut tx = t.system().await;
    let token = refresh_tokens::find_by_hash(&mut tx, b"hash-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.session_id, s.id);
    assert_eq!(token.tenant_id, Some(tenant));
    assert_eq!(token.used_at, None);
    assert!(refresh_tokens::mark_used(&mut tx, token.id, now())
        .await
        .unwrap());
    refresh_tokens::insert(&mut tx, Some(tenant), s.id, b"hash-2", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.system().await;
    assert!(
        !refresh_tokens::mark_used(&mut tx, token.id, now())
            .await
            .unwrap(),
        "a used token is not used again (replay)"
    );
    let used = refresh_tokens::find_by_hash(&mut tx, b"hash-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.used_at, Some(now()));
    assert!(refresh_tokens::find_by_hash(&mut tx, b"hash-2")
        .await
        .unwrap()
        .is_some());
    assert!(refresh_tokens::find_by_hash(&mut tx, b"unknown")
        .await
        .unwrap()
        .is_none());
    // Two tokens with one hash cannot exist.
    let err = refresh_tokens::insert(&mut tx, Some(tenant), s.id, b"hash-2", now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, palisade_store::StoreError::UniqueViolation { .. }),
        "{err:?}"
    );
}

async fn revoked_sessions_are_not_active(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let u = t.new_user(tenant, "ana@example.com").await;
    let (one, two, three) = (
        session(tenant, u.id),
        session(tenant, u.id),
        session(tenant, u.id),
    );
    let mut tx = t.tenant(tenant).await;
    for s in [&one, &two, &three] {
        insert(&mut tx, s).await;
    }
    assert_eq!(
        sessions::list_active(&mut tx, u.id, now())
            .await
            .unwrap()
            .len(),
        3
    );

    assert!(sessions::revoke(&mut tx, one.id, "logout", now())
        .await
        .unwrap());
    assert!(
        !sessions::revoke(&mut tx, one.id, "logout", now())
            .await
            .unwrap(),
        "a revoked session is revoked once"
    );
    let revoked = sessions::find(&mut tx, one.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(now()));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("logout"));

    // "Sign out everywhere else" keeps the current session.
    let ids = sessions::revoke_all_for_user(&mut tx, u.id, Some(three.id), "password", now())
        .await
        .unwrap();
    assert_eq!(ids, vec![two.id]);
    let active = sessions::list_active(&mut tx, u.id, now()).await.unwrap();
    assert_eq!(
        active.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![three.id]
    );
    // Expired sessions are not active either.
    assert!(
        sessions::list_active(&mut tx, u.id, now() + Duration::days(31))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}
