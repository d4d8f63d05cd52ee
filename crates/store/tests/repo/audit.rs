//! The audit log: each append extends its tenant's hash chain, the application cannot rewrite
//! a record, and `verify` names a record edited behind its back.

use crate::harness::{now, Db, TestStore};
use palisade_store::audit::{self, AuditEntry, AuditFilter};
use palisade_store::Query;

both!(appends_chain_hashes_and_verify_finds_an_edit);

async fn appends_chain_hashes_and_verify_finds_an_edit(db: Db) {
    let t = TestStore::new(db).await;
    let tenant = t.new_tenant("Acme").await;
    let mut tx = t.tenant(tenant).await;
    for action in ["test.one", "test.two", "test.three"] {
        let entry = AuditEntry {
            tenant_id: Some(tenant),
            actor_email: Some("ana@example.com".into()),
            action: action.into(),
            ..AuditEntry::default()
        };
        audit::append(&mut tx, &entry, now()).await.unwrap();
    }
    // A record for another tenant cannot be written under this one's scope.
    let stray = AuditEntry {
        tenant_id: Some(palisade_domain::TenantId::new()),
        action: "test.stray".into(),
        ..AuditEntry::default()
    };
    assert!(audit::append(&mut tx, &stray, now()).await.is_err());
    tx.commit().await.unwrap();

    let mut tx = t.tenant(tenant).await;
    let mut records = audit::search(
        &mut tx,
        &AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap();
    records.reverse();
    let actions: Vec<&str> = records.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(actions, ["test.one", "test.two", "test.three"]);
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert_eq!(records[0].prev_hash.as_deref(), Some(""));
    for pair in records.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "each record names its predecessor"
        );
    }
    for r in &records {
        let prev = r.prev_hash.clone().unwrap();
        assert_eq!(Some(audit::record_hash(&prev, r)), r.hash);
    }
    drop(tx);

    // The application's own connection cannot rewrite history (SQLite: a trigger;
    // PostgreSQL: no UPDATE privilege).
    let mut tx = t.system().await;
    let refused = tx
        .execute(Query::new(
            "UPDATE audit_log SET actor_email = 'someone@else.example' WHERE action = 'test.two'",
        ))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    drop(tx);

    let mut tx = t.system().await;
    let reports = audit::verify(&mut tx, Some(tenant)).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].records, 3);
    assert!(reports[0].problems.is_empty(), "{:?}", reports[0].problems);
    drop(tx);

    // Someone with the owner's access edits a record: verify names it.
    if t.db == Db::Sqlite {
        t.execute_as_owner("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .await;
    }
    t.execute_as_owner(
        "UPDATE audit_log SET actor_email = 'someone@else.example' WHERE action = 'test.two'",
    )
    .await;
    let mut tx = t.system().await;
    let reports = audit::verify(&mut tx, Some(tenant)).await.unwrap();
    let problems = &reports[0].problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("record 2") && p.contains("edited")),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 1, "only the edited record: {problems:?}");
}
