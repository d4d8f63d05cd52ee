//! Conversations and messages: a redelivered wamid is stored once, a status only moves forward,
//! and inbound messages reopen the one unresolved conversation rather than starting another.

use crate::harness::{count, now, scope, Db, Fixture, TestStore};
use palisade_domain::{
    ConversationId, ConversationStatus, MessageDirection, MessageId, MessageStatus,
};
use palisade_store::conversations::{self, ConversationFilter};
use palisade_store::messages::{self, NewMessage};
use std::collections::HashMap;
use time::Duration;

both!(
    a_duplicate_wamid_is_ignored,
    a_status_only_moves_forward,
    an_unresolved_conversation_is_reused,
    a_labelled_conversation_moves_up_its_label_list,
    conversations_are_narrowed_by_status_and_assignee
);

/// The check PostgreSQL runs for each inserted message against its conversation (the foreign
/// key `messages_conversation_fkey`), as its referential-integrity code writes it.
const CONVERSATION_CHECK: &str = "SELECT 1 FROM ONLY \"public\".\"conversations\" x \
     WHERE \"tenant_id\" OPERATOR(pg_catalog.=) $1 AND \"id\" OPERATOR(pg_catalog.=) $2 \
     AND \"connection_id\" OPERATOR(pg_catalog.=) $3 FOR KEY SHARE OF x";

/// The ingest inserts messages under generic plans (`Plans::Generic`) so that this check is
/// planned once per connection, not once per row; that plan is then kept, so it must be a probe
/// of one of the conversation's unique keys whatever the table held when it was made: on a new
/// database (no statistics: PostgreSQL assumes a small table, where a tenant-first index could
/// tie with the key) and once the table is analysed with rows of several tenants. A scan kept
/// here would read a tenant's conversations for every message. The insert then leaves its
/// transaction planning as the connections do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_check_plans_a_key_probe() {
    if Db::postgres_url().is_none() {
        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
        return;
    }
    let t = TestStore::new(Db::Postgres).await;
    let setup = format!(
        "SET plan_cache_mode = force_generic_plan;
         PREPARE conversation_check(uuid, uuid, uuid) AS {CONVERSATION_CHECK};"
    );
    let explain = "EXPLAIN EXECUTE conversation_check(gen_random_uuid(), gen_random_uuid(), \
                   gen_random_uuid())";
    let key_probe = |plan: &str, when: &str| {
        let probe = plan.contains("Index Scan using conversations_tenant_id_id_connection_id_key")
            || plan.contains("Index Scan using conversations_pkey");
        assert!(
            probe && !plan.contains("Seq Scan") && plan.contains("(id = $2)"),
            "{when}: the check is not a probe of a unique key:\n{plan}"
        );
    };
    key_probe(
        &t.lines_as_owner(&setup, explain).await,
        "on a new database",
    );

    // Three tenants of 2,000 conversations each (written past the keys: only the plan matters).
    t.execute_as_owner(
        "SET session_replication_role = replica;
         INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status,
             last_message_at, created_at, updated_at)
         SELECT gen_random_uuid(), t.id, gen_random_uuid(), t.connection, 'open', now(), now(), now()
         FROM (SELECT gen_random_uuid() AS id, gen_random_uuid() AS connection
               FROM generate_series(1, 3)) t, generate_series(1, 2000);
         ANALYZE conversations;",
    )
    .await;
    key_probe(
        &t.lines_as_owner(&setup, explain).await,
        "once analysed with 6,000 rows",
    );

    let f = t.conversation_fixture("3055509").await;
    let mut tx = t.system().await;
    let stored = messages::insert_messages(
        &mut tx,
        &[message(
            &f,
            "wamid.P",
            MessageDirection::Inbound,
            MessageStatus::Received,
        )],
    )
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    let custom = count(
        &mut tx,
        "SELECT CASE WHEN current_setting('plan_cache_mode') = 'force_custom_plan' \
         THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END AS n",
    )
    .await;
    assert_eq!(custom, 1, "the insert left its transaction on custom plans");
    tx.commit().await.unwrap();
}

fn message(
    f: &Fixture,
    wamid: &str,
    direction: MessageDirection,
    status: MessageStatus,
) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        tenant_id: f.tenant,
        conversation_id: f.conversation,
        connection_id: f.connection,
        wamid: wamid.to_owned(),
        direction,
        kind: "text".into(),
        body: serde_json::json!({ "type": "text", "text": { "body": "hi" } }),
        text: Some("hi".into()),
        status,
        error: None,
        context_wamid: None,
        sent_at: None,
        created_at: now(),
    }
}

async fn a_duplicate_wamid_is_ignored(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("3055501").await;
    let mut tx = t.system().await;
    let stored = messages::insert_messages(
        &mut tx,
        &[message(
            &f,
            "wamid.A",
            MessageDirection::Inbound,
            MessageStatus::Received,
        )],
    )
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].wamid.as_deref(), Some("wamid.A"));
    assert_eq!(stored[0].status, MessageStatus::Received);
    tx.commit().await.unwrap();

    // Meta redelivers the webhook: the same wamid (with a new one beside it).
    let mut tx = t.system().await;
    let existing = messages::existing_wamids(
        &mut tx,
        f.tenant,
        f.connection,
        &["wamid.A".into(), "wamid.B".into()],
    )
    .await
    .unwrap();
    assert_eq!(existing.into_iter().collect::<Vec<_>>(), ["wamid.A"]);
    let again = messages::insert_messages(
        &mut tx,
        &[
            message(
                &f,
                "wamid.A",
                MessageDirection::Inbound,
                MessageStatus::Received,
            ),
            message(
                &f,
                "wamid.B",
                MessageDirection::Inbound,
                MessageStatus::Received,
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        again.iter().map(|m| m.wamid.clone()).collect::<Vec<_>>(),
        [Some("wamid.B".to_owned())],
        "only the new message is returned"
    );
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let listed = messages::list_messages(&mut tx, f.conversation, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let page = messages::list_messages(&mut tx, f.conversation, Some(listed[0].id), 10)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|m| m.id).collect::<Vec<_>>(),
        [listed[1].id]
    );
}

async fn a_status_only_moves_forward(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("3055502").await;
    let out = message(
        &f,
        "wamid.out",
        MessageDirection::Outbound,
        MessageStatus::Sent,
    );
    let mut tx = t.system().await;
    messages::insert_messages(&mut tx, std::slice::from_ref(&out))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let steps = [
        ("delivered", true, "sent → delivered"),
        ("sent", false, "delivered never goes back to sent"),
        ("delivered", false, "the same status again changes nothing"),
        ("read", true, "delivered → read"),
        ("delivered", false, "read never goes back"),
        ("failed", false, "failed does not replace read"),
    ];
    for (i, (status, moves, why)) in steps.into_iter().enumerate() {
        let at = now() + Duration::seconds(i as i64 + 1);
        let mut tx = t.system().await;
        let moved = messages::advance_status(
            &mut tx,
            f.tenant,
            f.connection,
            "wamid.out",
            status.parse().unwrap(),
            None,
            at,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(moved, moves, "{why}");
    }

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let m = messages::find_message(&mut tx, out.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status, MessageStatus::Read);
    assert_eq!(m.status_updated_at, now() + Duration::seconds(4));
}

async fn an_unresolved_conversation_is_reused(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("3055503").await;
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let c = conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, ConversationStatus::Open);
    assert_eq!(c.contact_phone, "+15550001111");
    assert_eq!(c.contact_name.as_deref(), Some("Ana"));
    assert_eq!(c.last_inbound_at, Some(now()));
    drop(tx);

    // A later message: the same conversation, its latest time moved forward (never back).
    let later = now() + Duration::minutes(5);
    let mut tx = t.system().await;
    let ids = conversations::touch_conversations(
        &mut tx,
        f.tenant,
        f.connection,
        &HashMap::from([(f.contact, later)]),
        later,
    )
    .await
    .unwrap();
    assert_eq!(ids[&f.contact].id(), f.conversation);
    let touched = ids[&f.contact].clone();
    let earlier = conversations::touch_conversations(
        &mut tx,
        f.tenant,
        f.connection,
        &HashMap::from([(f.contact, now())]),
        later,
    )
    .await
    .unwrap();
    assert_eq!(earlier[&f.contact].id(), f.conversation);
    tx.commit().await.unwrap();

    // What the upsert returned is the conversation as a read shows it (realtime events are
    // built from it), once the contact's phone and name are added.
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let read = conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap()
        .unwrap();
    drop(tx);
    assert_eq!(
        touched.with_contact("+15550001111".into(), Some("Ana".into())),
        read
    );

    let mut tx = t.tenant(f.tenant).await;
    let c = conversations::find_conversation_for_update(&mut tx, f.conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.last_message_at, later);
    conversations::update_conversation(
        &mut tx,
        f.conversation,
        ConversationStatus::Resolved,
        Some(f.admin.id),
        &["vip".to_owned()],
        later,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Resolved: the next inbound message opens a new one.
    let mut tx = t.system().await;
    let next = conversations::touch_conversations(
        &mut tx,
        f.tenant,
        f.connection,
        &HashMap::from([(f.contact, later)]),
        later,
    )
    .await
    .unwrap();
    assert_ne!(next[&f.contact].id(), f.conversation);
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let filter = |status: Option<ConversationStatus>, label: Option<&str>| ConversationFilter {
        status,
        label: label.map(str::to_owned),
        limit: 10,
        ..ConversationFilter::default()
    };
    let resolved = conversations::list_conversations(
        &mut tx,
        &filter(Some(ConversationStatus::Resolved), None),
    )
    .await
    .unwrap();
    assert_eq!(
        resolved.iter().map(|c| c.id).collect::<Vec<_>>(),
        [f.conversation]
    );
    assert_eq!(resolved[0].labels, ["vip"]);
    assert_eq!(resolved[0].assignee_id, Some(f.admin.id));
    let vip = conversations::list_conversations(&mut tx, &filter(None, Some("vip")))
        .await
        .unwrap();
    assert_eq!(vip.len(), 1);
    let all = conversations::list_conversations(&mut tx, &filter(None, None))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        [next[&f.contact].id(), f.conversation],
        "newest first"
    );
    assert!(
        conversations::connection_has_conversations(&mut tx, f.connection)
            .await
            .unwrap()
    );
}

async fn conversations_are_narrowed_by_status_and_assignee(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("3055504").await;
    let (_, other) = t
        .new_conversation(f.tenant, f.connection, "+15550002222")
        .await;
    let mut tx = t.tenant(f.tenant).await;
    conversations::update_conversation(
        &mut tx,
        f.conversation,
        ConversationStatus::Pending,
        Some(f.admin.id),
        &[],
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let pending = listed(
        &mut tx,
        ConversationFilter {
            status: Some(ConversationStatus::Pending),
            ..ConversationFilter::default()
        },
    )
    .await;
    assert_eq!(pending, [f.conversation]);
    let open = listed(
        &mut tx,
        ConversationFilter {
            status: Some(ConversationStatus::Open),
            ..ConversationFilter::default()
        },
    )
    .await;
    assert_eq!(open, [other]);
    let mine = listed(
        &mut tx,
        ConversationFilter {
            assignee: Some(f.admin.id),
            ..ConversationFilter::default()
        },
    )
    .await;
    assert_eq!(mine, [f.conversation]);
    let nobody = listed(
        &mut tx,
        ConversationFilter {
            unassigned: true,
            ..ConversationFilter::default()
        },
    )
    .await;
    assert_eq!(nobody, [other]);
}

async fn listed(
    tx: &mut palisade_store::Tx<palisade_store::TenantScope>,
    filter: ConversationFilter,
) -> Vec<ConversationId> {
    conversations::list_conversations(
        tx,
        &ConversationFilter {
            limit: 10,
            ..filter
        },
    )
    .await
    .unwrap()
    .into_iter()
    .map(|c| c.id)
    .collect()
}

/// A message in a labelled conversation moves it to the top of its label's list (its row in
/// `conversation_labels` follows the conversation); conversations without labels have no such
/// rows and are not written there.
async fn a_labelled_conversation_moves_up_its_label_list(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("3055504").await;
    let (_, second) = t
        .new_conversation(f.tenant, f.connection, "+15550002222")
        .await;
    let (third_contact, third) = t
        .new_conversation(f.tenant, f.connection, "+15550003333")
        .await;
    let mut tx = t.tenant(f.tenant).await;
    for id in [f.conversation, second] {
        conversations::update_conversation(
            &mut tx,
            id,
            ConversationStatus::Open,
            None,
            &["vip".to_owned()],
            now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let vip = || ConversationFilter {
        label: Some("vip".to_owned()),
        limit: 10,
        ..ConversationFilter::default()
    };
    let listed = || async {
        let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
        conversations::list_conversations(&mut tx, &vip())
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    // The same activity: the newer id first.
    assert_eq!(listed().await, [second, f.conversation]);

    let later = now() + Duration::minutes(1);
    let mut tx = t.system().await;
    conversations::touch_conversations(
        &mut tx,
        f.tenant,
        f.connection,
        &HashMap::from([(f.contact, later), (third_contact, later)]),
        later,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(listed().await, [f.conversation, second]);
    let mut tx = t.system().await;
    assert_eq!(
        count(
            &mut tx,
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM conversation_labels"
        )
        .await,
        2,
        "the conversation without labels ({third}) has no row"
    );
}
