//! Message templates: one row per (connection, name, language) and per Meta id, read back as
//! stored (Meta's open status set included), updated from a system scope only for the
//! template's tenant, invisible to another tenant, and removed with their connection.

use crate::harness::{now, Db, TestStore};
use palisade_domain::template::parameter_counts;
use palisade_domain::{
    ConnectionId, Template, TemplateCategory, TemplateId, TemplateStatus, TenantId,
};
use palisade_store::{templates, StoreError};
use serde_json::json;

both!(
    templates_are_unique_per_connection_name_and_language,
    meta_updates_are_bound_to_the_templates_tenant
);

fn template(
    tenant: TenantId,
    connection: ConnectionId,
    name: &str,
    language: &str,
    meta_id: &str,
) -> Template {
    let components = json!([{"type": "BODY", "text": "Hi {{1}}, order {{2}}."}]);
    let (header_params, body_params) = parameter_counts(&components);
    Template {
        id: TemplateId::new(),
        tenant_id: tenant,
        connection_id: connection,
        waba_id: "102290129340398".into(),
        meta_id: meta_id.into(),
        name: name.into(),
        language: language.into(),
        category: TemplateCategory::Utility,
        status: TemplateStatus::Other("LIMIT_EXCEEDED".into()),
        quality_score: Some("GREEN".into()),
        rejection_reason: None,
        components,
        header_params,
        body_params,
        synced_at: Some(now()),
        created_at: now(),
        updated_at: now(),
    }
}

async fn templates_are_unique_per_connection_name_and_language(db: Db) {
    let t = TestStore::new(db).await;
    let a = t.new_tenant("A").await;
    let ana = t.new_user(a, "ana@a.example").await;
    let c = t.new_connection(a, ana.id, "1055501").await;
    let first = template(a, c.id, "order", "en_US", "1");
    let mut tx = t.tenant(a).await;
    templates::insert(&mut tx, &first).await.unwrap();
    templates::insert(&mut tx, &template(a, c.id, "order", "pt_BR", "2"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.tenant(a).await;
    let got = templates::find(&mut tx, first.id).await.unwrap().unwrap();
    assert_eq!(got.status, TemplateStatus::Other("LIMIT_EXCEEDED".into()));
    assert_eq!((got.header_params, got.body_params), (0, 2));
    assert_eq!(got.components, first.components);
    assert_eq!(
        templates::find_by_name(&mut tx, c.id, "order")
            .await
            .unwrap()
            .len(),
        2
    );
    drop(tx);
    for dup in [
        template(a, c.id, "order", "en_US", "3"),
        template(a, c.id, "other", "en_US", "1"),
    ] {
        // (A failed statement ends a PostgreSQL transaction: one each.)
        let mut tx = t.tenant(a).await;
        let err = templates::insert(&mut tx, &dup).await.unwrap_err();
        assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    }

    // Another tenant sees none of them.
    let b = t.new_tenant("B").await;
    let mut tx = t.tenant(b).await;
    assert!(templates::find(&mut tx, first.id).await.unwrap().is_none());
    assert!(templates::find_by_name(&mut tx, c.id, "order")
        .await
        .unwrap()
        .is_empty());
    drop(tx);

    // They go with their connection.
    let mut tx = t.tenant(a).await;
    assert_eq!(
        templates::delete_of_connection(&mut tx, c.id)
            .await
            .unwrap(),
        2
    );
    tx.commit().await.unwrap();
}

async fn meta_updates_are_bound_to_the_templates_tenant(db: Db) {
    let t = TestStore::new(db).await;
    let a = t.new_tenant("A").await;
    let b = t.new_tenant("B").await;
    let ana = t.new_user(a, "ana@a.example").await;
    let c = t.new_connection(a, ana.id, "1055502").await;
    let tpl = template(a, c.id, "order", "en_US", "77");
    let mut tx = t.tenant(a).await;
    templates::insert(&mut tx, &tpl).await.unwrap();
    tx.commit().await.unwrap();

    // The inbound pipeline's system scope finds it by Meta's id for its tenant only.
    let mut sys = t.system().await;
    assert!(templates::lock_connection(&mut sys, a, c.id).await.unwrap());
    assert!(!templates::lock_connection(&mut sys, b, c.id).await.unwrap());
    assert!(templates::find_by_meta_id(&mut sys, b, c.id, "77")
        .await
        .unwrap()
        .is_none());
    let mut found = templates::find_by_meta_id(&mut sys, a, c.id, "77")
        .await
        .unwrap()
        .unwrap();
    found.status = TemplateStatus::Paused;
    found.rejection_reason = Some("LOW_QUALITY".into());
    templates::update(&mut sys, &found).await.unwrap();
    sys.commit().await.unwrap();
    let mut tx = t.tenant(a).await;
    let got = templates::find(&mut tx, tpl.id).await.unwrap().unwrap();
    assert_eq!(got.status, TemplateStatus::Paused);
    assert_eq!(got.rejection_reason.as_deref(), Some("LOW_QUALITY"));
    drop(tx);

    // A tenant scope cannot write another tenant's template.
    let mut tx = t.tenant(b).await;
    let err = templates::update(&mut tx, &got).await.unwrap_err();
    assert!(matches!(err, StoreError::Integrity(_)), "{err:?}");
}
