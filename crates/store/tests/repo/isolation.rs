//! Tenant isolation: what one tenant wrote is invisible, and untouchable, under another
//! tenant's scope. The repositories bind the scope's tenant into every statement; on PostgreSQL
//! row-level security hides the rows even from a statement that forgets to.

use crate::harness::{count, now, scope, Db, TestStore};
use palisade_domain::{ConversationStatus, MessageId};
use palisade_store::send_queue::{self, NewOutbound};
use palisade_store::{conversations, messages, whatsapp_connections, Query};
use uuid::Uuid;

both!(another_tenants_rows_are_invisible);

/// Tables holding tenant rows that the fixture below fills.
const TABLES: [&str; 6] = [
    "contacts",
    "conversations",
    "messages",
    "whatsapp_connections",
    "whatsapp_outbound_queue",
    "users",
];

async fn another_tenants_rows_are_invisible(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055501").await;
    let reply = NewOutbound {
        id: MessageId::new(),
        conversation_id: f.conversation,
        connection_id: f.connection,
        kind: "text".into(),
        body: serde_json::json!({ "type": "text", "text": { "body": "hello" } }),
        text: Some("hello".into()),
        author_id: None,
        created_at: now(),
    };
    let mut tx = t.tenant(f.tenant).await;
    send_queue::insert_outbound(&mut tx, &reply).await.unwrap();
    tx.commit().await.unwrap();
    let b = t.new_tenant("B").await;

    // Through the repositories: nothing of A's is found, listed or changed under B.
    let mut tx = t.tenant(b).await;
    assert!(conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap()
        .is_none());
    let all = conversations::ConversationFilter {
        limit: 10,
        ..Default::default()
    };
    assert!(conversations::list_conversations(&mut tx, &all)
        .await
        .unwrap()
        .is_empty());
    assert!(messages::find_message(&mut tx, reply.id)
        .await
        .unwrap()
        .is_none());
    assert!(messages::list_messages(&mut tx, f.conversation, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(whatsapp_connections::find(&mut tx, f.connection)
        .await
        .unwrap()
        .is_none());
    assert!(
        !conversations::connection_has_conversations(&mut tx, f.connection)
            .await
            .unwrap()
    );
    conversations::update_conversation(
        &mut tx,
        f.conversation,
        ConversationStatus::Resolved,
        None,
        &[],
        now(),
    )
    .await
    .unwrap();
    assert!(!whatsapp_connections::delete(&mut tx, f.connection)
        .await
        .unwrap());
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let c = conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.status,
        ConversationStatus::Open,
        "B's update did not reach A's conversation"
    );
    assert!(whatsapp_connections::find(&mut tx, f.connection)
        .await
        .unwrap()
        .is_some());
    for table in TABLES {
        let n = count(&mut tx, &format!("SELECT COUNT(*) AS n FROM {table}")).await;
        assert!(n > 0, "A sees its own {table}");
    }
    drop(tx);

    if t.db != Db::Postgres {
        return;
    }
    // Row-level security: statements with no tenant condition at all still see, change and
    // write nothing of A's under B's scope.
    let mut tx = t.tenant(b).await;
    for table in TABLES {
        let n = count(&mut tx, &format!("SELECT COUNT(*) AS n FROM {table}")).await;
        assert_eq!(n, 0, "B sees none of {table}");
    }
    let touched = tx
        .execute(Query::new("UPDATE conversations SET status = 'resolved'"))
        .await
        .unwrap();
    assert_eq!(touched, 0);
    let deleted = tx
        .execute(Query::new("DELETE FROM whatsapp_outbound_queue"))
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    tx.commit().await.unwrap();

    let mut tx = t.tenant(b).await;
    let forged = tx
        .execute(
            Query::new(
                "INSERT INTO notifications (id, tenant_id, user_id, kind, title, body, data, created_at)
                 VALUES ($1, $2, $3, 'x', 'x', 'x', '{}', $4)",
            )
            .bind(Uuid::now_v7())
            .bind(f.tenant)
            .bind(f.admin.id)
            .bind(now()),
        )
        .await;
    assert!(forged.is_err(), "B cannot write a row for A: {forged:?}");
    drop(tx);

    let mut tx = t.system().await;
    let n = count(&mut tx, "SELECT COUNT(*) AS n FROM whatsapp_outbound_queue").await;
    assert_eq!(n, 1, "A's queued send is still there");
}

/// Tables without row-level security, and why: none holds a tenant's data.
const UNBOUND: [&str; 4] = [
    // sqlx's record of the migrations applied.
    "_sqlx_migrations",
    // Which credentials changed when, by id (revocation across nodes): no tenant column.
    "auth_changes",
    // Failed sign-ins per account and address, before any tenant is known.
    "login_throttle",
    // The platform's scheduled jobs (backups).
    "scheduled_runs",
];

/// PostgreSQL: every table of the schema is bound by row-level security (forced, so that the
/// owner is bound too) through one `tenant_isolation` policy whose settings are read once per
/// statement (`(SELECT app_tenant_id())`, an init plan; migration 0039), not once per row, for
/// reading and for writing; the tables left out are [`UNBOUND`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_is_bound_by_a_per_statement_policy() {
    if Db::postgres_url().is_none() {
        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    }
    #[derive(sqlx::FromRow)]
    struct Table {
        name: String,
        forced: bool,
        policies: String,
    }
    let t = TestStore::new(Db::Postgres).await;
    let mut tx = t.system().await;
    let tables: Vec<Table> = tx
        .fetch_all(Query::new(
            "SELECT c.relname::text AS name, c.relrowsecurity AND c.relforcerowsecurity AS forced,
                 COALESCE((SELECT string_agg(p.policyname || ': ' || COALESCE(p.qual, '-') || ' / '
                                             || COALESCE(p.with_check, '-'), '; ')
                           FROM pg_policies p
                           WHERE p.schemaname = current_schema() AND p.tablename = c.relname), '')
                     AS policies
             FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
             WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'p')
             ORDER BY c.relname",
        ))
        .await
        .unwrap();
    assert!(tables.len() > 40, "the schema's tables are listed");
    let mut wrong = Vec::new();
    for table in &tables {
        if UNBOUND.contains(&table.name.as_str()) {
            if table.forced || !table.policies.is_empty() {
                wrong.push(format!(
                    "{} is listed as unbound but has a policy",
                    table.name
                ));
            }
            continue;
        }
        let column = if table.name == "tenants" {
            "id"
        } else {
            "tenant_id"
        };
        let once = format!(
            "(({column} = ( SELECT app_tenant_id() AS app_tenant_id)) OR ( SELECT app_is_system() AS app_is_system))"
        );
        let expected = format!("tenant_isolation: {once} / {once}");
        if !table.forced || table.policies != expected {
            wrong.push(format!(
                "{} (forced: {}): {:?}",
                table.name, table.forced, table.policies
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "tables not bound as expected:\n{}",
        wrong.join("\n")
    );
}
