//! Campaigns: the audience materialised once with each recipient's skip reason, a pending
//! recipient handed to exactly one of two dispatchers claiming it at once, a running campaign
//! leased by one node until its lease ends or is given back, the counts (every recipient once,
//! by its message's latest status) and failures by Meta's code, and another tenant seeing none
//! of it.

use crate::harness::{now, scope, Db, Fixture, TestStore};
use palisade_domain::campaign::Audience;
use palisade_domain::consent::Consent;
use palisade_domain::{
    CampaignId, CampaignStatus, ContactId, MessageDirection, MessageId, MessageKind, MessageStatus,
    TenantId,
};
use palisade_store::campaigns::{self, Campaign, Counts};
use palisade_store::contacts;
use palisade_store::messages::{self, NewMessage};
use palisade_store::send_queue::{self, NewOutbound, SendPriority};
use std::collections::HashSet;
use time::{Duration, OffsetDateTime};

both!(
    the_audience_is_written_once_with_skip_reasons,
    a_recipient_is_claimed_by_exactly_one_of_two_dispatchers,
    a_running_campaign_is_leased_by_one_node_at_a_time,
    counts_follow_the_messages_and_failures_group_by_code,
    the_funnel_follows_status_changes_and_replies_after_the_message,
    another_tenant_sees_and_claims_nothing,
);

/// The fixture's tenant with `n` more contacts (each with a conversation), the fixture's own
/// contact first.
async fn contacts_of(t: &TestStore, f: &Fixture, n: usize) -> Vec<ContactId> {
    let mut out = vec![f.contact];
    for i in 0..n {
        let (c, _) = t
            .new_conversation(f.tenant, f.connection, &format!("+1555000{i:04}"))
            .await;
        out.push(c);
    }
    out
}

async fn running_campaign(t: &TestStore, f: &Fixture) -> CampaignId {
    let c = Campaign {
        id: CampaignId::new(),
        tenant_id: f.tenant,
        name: "Spring sale".into(),
        connection_id: f.connection,
        template_name: "order_confirmation".into(),
        template_language: "en_US".into(),
        parameters: Vec::new(),
        audience: Audience::default(),
        status: CampaignStatus::Running,
        scheduled_at: None,
        started_at: Some(now()),
        completed_at: None,
        created_by: Some(f.admin.id),
        created_at: now(),
        updated_at: now(),
    };
    let mut tx = t.tenant(f.tenant).await;
    campaigns::insert(&mut tx, &c).await.unwrap();
    tx.commit().await.unwrap();
    c.id
}

/// Materialises the campaign's audience (everyone); `marketing` asks for consent.
async fn materialise(t: &TestStore, f: &Fixture, id: CampaignId, marketing: bool) -> u64 {
    let mut tx = t.tenant(f.tenant).await;
    let n = campaigns::materialise(&mut tx, id, &Audience::default(), marketing, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn set_consent(t: &TestStore, tenant: TenantId, contact: ContactId, consent: Consent) {
    let mut tx = t.system().await;
    contacts::write_consent(&mut tx, tenant, contact, consent, now())
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
}

async fn counts(t: &TestStore, tenant: TenantId, id: CampaignId) -> Counts {
    let mut tx = t.store.begin_read(scope(tenant)).await.unwrap();
    campaigns::counts(&mut tx, id).await.unwrap()
}

async fn pending(t: &TestStore, tenant: TenantId, id: CampaignId) -> Vec<ContactId> {
    let mut tx = t.store.begin_read(scope(tenant)).await.unwrap();
    campaigns::pending(&mut tx, id, 100).await.unwrap()
}

/// Queues the campaign's message to `contact`'s conversation (bulk) and claims the recipient
/// with it, in one transaction as the dispatcher does. Returns the message id when claimed.
async fn dispatch(
    t: &TestStore,
    f: &Fixture,
    id: CampaignId,
    contact: ContactId,
) -> Option<MessageId> {
    let mut tx = t.tenant(f.tenant).await;
    let conversation =
        palisade_store::conversations::open_for_outbound(&mut tx, contact, f.connection, now())
            .await
            .unwrap();
    let m = NewOutbound {
        id: MessageId::new(),
        conversation_id: conversation,
        connection_id: f.connection,
        kind: "template".into(),
        body: serde_json::json!({"type": "template", "template": {"name": "order_confirmation"}}),
        text: None,
        author_id: None,
        created_at: now(),
    };
    send_queue::insert_outbound_with(&mut tx, &m, SendPriority::Bulk)
        .await
        .unwrap();
    if !campaigns::claim_recipient(&mut tx, id, contact, m.id, now())
        .await
        .unwrap()
    {
        return None; // rolled back with the message
    }
    tx.commit().await.unwrap();
    Some(m.id)
}

async fn the_audience_is_written_once_with_skip_reasons(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055501").await;
    let all = contacts_of(&t, &f, 3).await;
    set_consent(&t, f.tenant, all[1], Consent::OptedIn { at: now() }).await;
    set_consent(
        &t,
        f.tenant,
        all[2],
        Consent::OptedOut {
            at: now(),
            source: palisade_domain::consent::OptOutSource::Api,
        },
    )
    .await;

    // A marketing template: only the opted-in contact is pending.
    let id = running_campaign(&t, &f).await;
    assert_eq!(materialise(&t, &f, id, true).await, 4);
    assert_eq!(pending(&t, f.tenant, id).await, vec![all[1]]);
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let shown = campaigns::recipients(&mut tx, id, Some("skipped"), None, 100)
        .await
        .unwrap();
    drop(tx);
    let reason = |c: ContactId| {
        shown
            .iter()
            .find(|r| r.contact_id == c)
            .and_then(|r| r.skip_reason.clone())
    };
    assert_eq!(reason(all[0]).as_deref(), Some("no_marketing_consent"));
    assert_eq!(reason(all[2]).as_deref(), Some("opted_out"));
    assert_eq!(reason(all[3]).as_deref(), Some("no_marketing_consent"));
    // A second start adds nothing.
    assert_eq!(materialise(&t, &f, id, true).await, 0);
    assert_eq!(counts(&t, f.tenant, id).await.targeted, 4);

    // A utility template: everyone but the opted-out contact.
    let utility = running_campaign(&t, &f).await;
    materialise(&t, &f, utility, false).await;
    let p: HashSet<ContactId> = pending(&t, f.tenant, utility).await.into_iter().collect();
    assert_eq!(p, HashSet::from([all[0], all[1], all[3]]));
}

/// Every recipient claimed by two dispatchers at once (each its own transaction, queueing its
/// own message): exactly one wins, the loser's message is rolled back, and the recipient
/// carries the winner's message.
async fn a_recipient_is_claimed_by_exactly_one_of_two_dispatchers(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055502").await;
    let all = contacts_of(&t, &f, 4).await;
    let id = running_campaign(&t, &f).await;
    materialise(&t, &f, id, false).await;
    for &contact in &all {
        let (a, b) = tokio::join!(dispatch(&t, &f, id, contact), dispatch(&t, &f, id, contact));
        assert!(
            a.is_some() != b.is_some(),
            "exactly one claim wins: {a:?} {b:?}"
        );
    }
    assert!(pending(&t, f.tenant, id).await.is_empty());
    let c = counts(&t, f.tenant, id).await;
    assert_eq!((c.targeted, c.queued), (5, 5), "{c:?}");
    // One message per recipient: the losers' messages and queue rows are gone.
    let mut tx = t.system().await;
    let messages = crate::harness::count(
        &mut tx,
        "SELECT COUNT(*) AS n FROM messages WHERE type = 'template'",
    )
    .await;
    let queued = crate::harness::count(
        &mut tx,
        "SELECT COUNT(*) AS n FROM whatsapp_outbound_queue WHERE priority = 1",
    )
    .await;
    assert_eq!((messages, queued), (5, 5));
    // A claim after the fact changes nothing.
    drop(tx);
    assert_eq!(dispatch(&t, &f, id, all[0]).await, None);
    let mut tx = t.tenant(f.tenant).await;
    assert!(
        !campaigns::skip_recipient(&mut tx, id, all[0], "opted_out", now())
            .await
            .unwrap(),
        "a dispatched recipient is not skipped afterwards"
    );
}

async fn a_running_campaign_is_leased_by_one_node_at_a_time(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055503").await;
    let id = running_campaign(&t, &f).await;
    let until = now() + Duration::seconds(30);
    let (a, b) = claim_twice!(t, |tx| campaigns::lease_running(tx, now(), until, 10));
    assert_eq!((a.len(), b.len()), (1, 0), "one node holds it: {a:?} {b:?}");
    assert_eq!(
        (a[0].id, a[0].tenant_id, a[0].connection_id),
        (id, f.tenant, f.connection)
    );
    // Still held a moment later; free once the lease has run out (a node that died).
    let mut tx = t.system().await;
    let later = now() + Duration::seconds(10);
    assert!(campaigns::lease_running(&mut tx, later, later, 10)
        .await
        .unwrap()
        .is_empty());
    let after = until + Duration::seconds(1);
    let again = campaigns::lease_running(&mut tx, after, after + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    // Given back: the next round takes it at once.
    campaigns::release(&mut tx, id).await.unwrap();
    assert_eq!(
        campaigns::lease_running(&mut tx, after, after + Duration::seconds(30), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    tx.commit().await.unwrap();

    // Paused: not leased. A suspended tenant's campaign: not leased either.
    let paused = running_campaign(&t, &f).await;
    let mut tx = t.tenant(f.tenant).await;
    let mut c = campaigns::find(&mut tx, paused).await.unwrap().unwrap();
    c.status = CampaignStatus::Paused;
    campaigns::update(&mut tx, &c).await.unwrap();
    tx.commit().await.unwrap();
    let far = now() + Duration::hours(1);
    let mut tx = t.system().await;
    let leased = campaigns::lease_running(&mut tx, far, far, 10)
        .await
        .unwrap();
    assert_eq!(
        leased.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![id],
        "{leased:?}"
    );
    tx.commit().await.unwrap();
    let mut tx = t.system().await;
    palisade_store::tenants::set_status(
        &mut tx,
        f.tenant,
        palisade_store::tenants::TenantStatus::Suspended,
        None,
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let later = far + Duration::hours(1);
    let mut tx = t.system().await;
    assert!(campaigns::lease_running(&mut tx, later, later, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn counts_follow_the_messages_and_failures_group_by_code(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055504").await;
    let all = contacts_of(&t, &f, 4).await;
    set_consent(
        &t,
        f.tenant,
        all[4],
        Consent::OptedOut {
            at: now(),
            source: palisade_domain::consent::OptOutSource::Api,
        },
    )
    .await;
    let id = running_campaign(&t, &f).await;
    materialise(&t, &f, id, false).await;
    let mut messages = Vec::new();
    for &c in &all[..3] {
        messages.push(dispatch(&t, &f, id, c).await.unwrap());
    }
    let c = counts(&t, f.tenant, id).await;
    assert_eq!(
        (c.targeted, c.skipped, c.queued, c.sent, c.failed),
        (5, 1, 4, 0, 0),
        "pending recipients show as queued: {c:?}"
    );
    let mut tx = t.system().await;
    send_queue::mark_sent(&mut tx, f.tenant, messages[0], "wamid.A", now())
        .await
        .unwrap();
    let err = |code: i64, title: &str| serde_json::json!([{"code": code, "title": title, "message": "x"}]);
    send_queue::mark_failed(
        &mut tx,
        f.tenant,
        messages[1],
        err(131_049, "healthy ecosystem"),
        now(),
    )
    .await
    .unwrap();
    send_queue::mark_failed(
        &mut tx,
        f.tenant,
        messages[2],
        err(131_049, "healthy ecosystem"),
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let c = counts(&t, f.tenant, id).await;
    assert_eq!(
        (
            c.targeted,
            c.skipped,
            c.queued,
            c.sent,
            c.delivered,
            c.read,
            c.failed
        ),
        (5, 1, 1, 1, 0, 0, 2),
        "{c:?}"
    );
    assert_eq!(
        c.skipped + c.queued + c.sent + c.delivered + c.read + c.failed,
        c.targeted,
        "every recipient once"
    );
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    assert_eq!(
        campaigns::failures(&mut tx, id).await.unwrap(),
        vec![(131_049, "healthy ecosystem".to_owned(), 2)]
    );
    let failed = campaigns::recipients(&mut tx, id, Some("failed"), None, 100)
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);
    drop(tx);

    // The last pending recipient skipped: nothing pending, the campaign completes once.
    let mut tx = t.tenant(f.tenant).await;
    assert!(
        campaigns::skip_recipient(&mut tx, id, all[3], "missing_parameter", now())
            .await
            .unwrap()
    );
    assert!(campaigns::complete_if_done(&mut tx, id, now())
        .await
        .unwrap());
    assert!(!campaigns::complete_if_done(&mut tx, id, now())
        .await
        .unwrap());
    tx.commit().await.unwrap();
}

/// A customer's message in `message`'s conversation, stored as the inbound pipeline does, at
/// `at`.
async fn customer_writes(t: &TestStore, f: &Fixture, message: MessageId, at: OffsetDateTime) {
    let mut tx = t.tenant(f.tenant).await;
    let m = messages::find_message(&mut tx, message)
        .await
        .unwrap()
        .unwrap();
    drop(tx);
    let mut tx = t.system().await;
    messages::insert_messages(
        &mut tx,
        &[NewMessage {
            id: MessageId::new(),
            tenant_id: f.tenant,
            conversation_id: m.conversation_id,
            connection_id: f.connection,
            wamid: format!("wamid.in.{}", MessageId::new()),
            direction: MessageDirection::Inbound,
            kind: MessageKind::Text,
            body: serde_json::json!({"type": "text", "text": {"body": "Yes please"}}),
            text: Some("Yes please".into()),
            status: MessageStatus::Received,
            error: None,
            context_wamid: None,
            sent_at: None,
            created_at: at,
        }],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// The counts read the recipient rows alone (migration 0037): a status webhook's change of
/// the message moves its recipient, a customer's message after the campaign's counts as a
/// reply once, one from before it does not, and the counts of several campaigns at once agree
/// with each campaign's own.
async fn the_funnel_follows_status_changes_and_replies_after_the_message(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055505").await;
    let all = contacts_of(&t, &f, 2).await;
    let id = running_campaign(&t, &f).await;
    materialise(&t, &f, id, false).await;
    let mut sent = Vec::new();
    for &c in &all {
        sent.push(dispatch(&t, &f, id, c).await.unwrap());
    }
    let mut tx = t.system().await;
    for (i, m) in sent.iter().enumerate() {
        send_queue::mark_sent(&mut tx, f.tenant, *m, &format!("wamid.C{i}"), now())
            .await
            .unwrap();
    }
    for status in [MessageStatus::Delivered, MessageStatus::Read] {
        assert!(messages::advance_status(
            &mut tx,
            f.tenant,
            f.connection,
            "wamid.C0",
            status,
            None,
            now()
        )
        .await
        .unwrap());
    }
    assert!(messages::advance_status(
        &mut tx,
        f.tenant,
        f.connection,
        "wamid.C1",
        MessageStatus::Delivered,
        None,
        now()
    )
    .await
    .unwrap());
    tx.commit().await.unwrap();
    let c = counts(&t, f.tenant, id).await;
    assert_eq!(
        (c.targeted, c.queued, c.sent, c.delivered, c.read, c.replied),
        (3, 0, 1, 1, 1, 0),
        "{c:?}"
    );

    // Written before the campaign's message (a late webhook): not a reply. After it: one reply
    // however many messages follow.
    customer_writes(&t, &f, sent[0], now() - Duration::minutes(5)).await;
    assert_eq!(counts(&t, f.tenant, id).await.replied, 0);
    customer_writes(&t, &f, sent[0], now() + Duration::minutes(1)).await;
    customer_writes(&t, &f, sent[0], now() + Duration::minutes(2)).await;
    customer_writes(&t, &f, sent[2], now() + Duration::minutes(3)).await;
    let c = counts(&t, f.tenant, id).await;
    assert_eq!((c.replied, c.read, c.sent), (2, 1, 1), "{c:?}");

    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let many = campaigns::counts_many(&mut tx, &[id, CampaignId::new()])
        .await
        .unwrap();
    assert_eq!(many.len(), 1, "a campaign without recipients is not there");
    assert_eq!(many.get(&id), Some(&c));
    let replied_to = campaigns::recipients(&mut tx, id, Some("read"), None, 100)
        .await
        .unwrap();
    assert_eq!(
        replied_to.iter().map(|r| r.contact_id).collect::<Vec<_>>(),
        vec![all[0]]
    );
}

async fn another_tenant_sees_and_claims_nothing(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("6055505").await;
    let all = contacts_of(&t, &f, 2).await;
    let id = running_campaign(&t, &f).await;
    materialise(&t, &f, id, false).await;
    let other = t.new_tenant("Globex").await;

    let mut tx = t.tenant(other).await;
    assert!(campaigns::find(&mut tx, id).await.unwrap().is_none());
    assert!(campaigns::find_for_update(&mut tx, id)
        .await
        .unwrap()
        .is_none());
    assert!(campaigns::pending(&mut tx, id, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        campaigns::counts(&mut tx, id).await.unwrap(),
        Counts::default()
    );
    assert!(campaigns::recipients(&mut tx, id, None, None, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(
        !campaigns::claim_recipient(&mut tx, id, all[0], MessageId::new(), now())
            .await
            .unwrap()
    );
    assert!(
        !campaigns::skip_recipient(&mut tx, id, all[1], "opted_out", now())
            .await
            .unwrap()
    );
    assert_eq!(
        campaigns::skip_pending(&mut tx, id, "cancelled", now())
            .await
            .unwrap(),
        0
    );
    assert!(!campaigns::complete_if_done(&mut tx, id, now())
        .await
        .unwrap());
    assert!(!campaigns::delete(&mut tx, id).await.unwrap());
    // Materialising another tenant's campaign id writes none of this tenant's contacts to it.
    campaigns::materialise(&mut tx, id, &Audience::default(), false, now())
        .await
        .ok();
    drop(tx);

    // All still there for the owner.
    assert_eq!(pending(&t, f.tenant, id).await.len(), 3);
    let mut tx = t.tenant(f.tenant).await;
    assert_eq!(campaigns::find(&mut tx, id).await.unwrap().unwrap().id, id);
}
