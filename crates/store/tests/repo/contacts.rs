//! Contacts: a phone is unique in its tenant, a contact reads back as written, the list's
//! filters and cursor, the erasure takes the contact's conversations, messages and queued sends
//! with it, a consent keyword stores what the domain's rules decide, and inbound processing's
//! upsert creates a sender once.

use crate::harness::{count, now, scope, Db, Fixture, TestStore};
use palisade_domain::{
    Consent, Contact, ContactId, CustomAttributes, EmailAddress, KeywordConsent, MessageId,
    MessageStatus, OptOutSource, PersonName, PhoneNumber, Tags, TenantId,
};
use palisade_store::contacts::{self, ContactFilter, Sender};
use palisade_store::conversations;
use palisade_store::messages::{self, NewMessage};
use palisade_store::send_queue::{self, NewOutbound};
use palisade_store::StoreError;
use time::Duration;

both!(
    a_taken_phone_is_a_unique_violation,
    a_contact_reads_back_as_written,
    the_list_filters_and_pages,
    deleting_a_contact_erases_its_conversations,
    a_keyword_stores_what_the_consent_rules_decide,
    inbound_upsert_creates_a_sender_once
);

fn phone(p: &str) -> PhoneNumber {
    PhoneNumber::parse("phone", p).unwrap()
}

/// A new contact of `tenant` with phone `p` (ids are time-ordered, so later contacts list
/// first).
fn contact(tenant: TenantId, p: &str) -> Contact {
    Contact::new(tenant, phone(p), now())
}

async fn insert(t: &TestStore, c: &Contact) {
    let mut tx = t.tenant(c.tenant_id).await;
    contacts::insert(&mut tx, c).await.unwrap();
    tx.commit().await.unwrap();
}

async fn find(t: &TestStore, tenant: TenantId, id: ContactId) -> Option<Contact> {
    let mut tx = t.store.begin_read(scope(tenant)).await.unwrap();
    contacts::find(&mut tx, id).await.unwrap()
}

async fn a_taken_phone_is_a_unique_violation(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let other = t.new_tenant("Other").await;
    let first = contact(acme, "+15550001111");
    insert(&t, &first).await;

    let mut tx = t.tenant(acme).await;
    let err = contacts::insert(&mut tx, &contact(acme, "+15550001111"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    drop(tx);

    // Another tenant may have the same number.
    insert(&t, &contact(other, "+15550001111")).await;

    // Changing a contact's phone to a taken one is refused the same way.
    let mut second = contact(acme, "+15550002222");
    insert(&t, &second).await;
    second.change_phone(phone("+15550001111"));
    let mut tx = t.tenant(acme).await;
    let err = contacts::update(&mut tx, &second).await.unwrap_err();
    assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    drop(tx);
    let mut tx = t.store.begin_read(scope(acme)).await.unwrap();
    let found = contacts::find_by_phone(&mut tx, &phone("+15550001111"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, first.id, "the number still belongs to the first");
}

async fn a_contact_reads_back_as_written(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let other = t.new_tenant("Other").await;
    let mut c = contact(acme, "+15550001111");
    c.name = Some(PersonName::parse("name", "Ana Lima").unwrap());
    c.email = Some(EmailAddress::parse("email", "ana@example.com").unwrap());
    c.tags = Tags::parse("tags", &["VIP".into(), "lead".into()]).unwrap();
    c.custom_attributes =
        CustomAttributes::parse("custom_attributes", serde_json::json!({ "plan": "pro" })).unwrap();
    c.consent = c.consent.choose(true, now());
    insert(&t, &c).await;
    assert_eq!(find(&t, acme, c.id).await.as_ref(), Some(&c));
    assert_eq!(find(&t, other, c.id).await, None, "not another tenant's");

    // An edit writes every field back, and a phone change drops WhatsApp's id.
    let mut tx = t.tenant(acme).await;
    let mut after = contacts::find_for_update(&mut tx, c.id)
        .await
        .unwrap()
        .unwrap();
    after.wa_id = Some("15550001111".into());
    contacts::update(&mut tx, &after).await.unwrap();
    after.change_phone(phone("+15550003333"));
    after.name = None;
    after.tags = Tags::default();
    after.consent = after.consent.choose(false, now() + Duration::minutes(5));
    after.updated_at = now() + Duration::minutes(5);
    contacts::update(&mut tx, &after).await.unwrap();
    tx.commit().await.unwrap();
    let read = find(&t, acme, c.id).await.unwrap();
    assert_eq!(read, after);
    assert_eq!(read.wa_id, None);
    assert_eq!(
        read.consent,
        Consent::OptedOut {
            at: now() + Duration::minutes(5),
            source: OptOutSource::Api
        }
    );

    // Deleting a contact with nothing else erases just the contact.
    let mut tx = t.tenant(acme).await;
    let erased = contacts::delete(&mut tx, c.id).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (erased.conversations, erased.messages, erased.queued_sends),
        (0, 0, 0)
    );
    assert_eq!(find(&t, acme, c.id).await, None);
}

async fn the_list_filters_and_pages(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    let other = t.new_tenant("Other").await;
    let mut ana = contact(acme, "+15550001111");
    ana.name = Some(PersonName::parse("name", "Ana Lima").unwrap());
    ana.tags = Tags::parse("tags", &["vip".into()]).unwrap();
    insert(&t, &ana).await;
    let mut bo = contact(acme, "+447700900123");
    bo.email = Some(EmailAddress::parse("email", "bo@shop.example").unwrap());
    bo.consent = bo.consent.choose(false, now());
    insert(&t, &bo).await;
    let mut cy = contact(acme, "+15550009999");
    cy.wa_profile_name = Some("Cy_Prime".into());
    cy.tags = Tags::parse("tags", &["vip".into(), "lead".into()]).unwrap();
    insert(&t, &cy).await;
    insert(&t, &contact(other, "+15550001112")).await;

    let list = |f: ContactFilter| {
        let t = &t;
        async move {
            let mut tx = t.store.begin_read(scope(acme)).await.unwrap();
            contacts::list(&mut tx, &f)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    let all = ContactFilter {
        limit: 50,
        ..ContactFilter::default()
    };
    assert_eq!(
        list(all.clone()).await,
        [cy.id, bo.id, ana.id],
        "newest first"
    );
    let q = |text: &str, digits: Option<&str>| ContactFilter {
        q: Some(text.into()),
        q_digits: digits.map(str::to_owned),
        ..all.clone()
    };
    assert_eq!(list(q("lima", None)).await, [ana.id], "the name");
    assert_eq!(list(q("shop.example", None)).await, [bo.id], "the email");
    assert_eq!(
        list(q("cy_", None)).await,
        [cy.id],
        "the profile name, `_` literal"
    );
    assert_eq!(
        list(q("cy%", None)).await,
        Vec::<ContactId>::new(),
        "`%` literal"
    );
    assert_eq!(
        list(q("555000", Some("555000"))).await,
        [cy.id, ana.id],
        "the phone's digits, in this tenant only"
    );
    assert_eq!(list(q("555000", None)).await, Vec::<ContactId>::new());
    let tag = ContactFilter {
        tag: Some("vip".into()),
        ..all.clone()
    };
    assert_eq!(list(tag).await, [cy.id, ana.id]);
    let out = |o: bool| ContactFilter {
        opted_out: Some(o),
        ..all.clone()
    };
    assert_eq!(list(out(true)).await, [bo.id]);
    assert_eq!(list(out(false)).await, [cy.id, ana.id]);

    // The cursor: the last id of a page of two gives the rest.
    let first = list(ContactFilter {
        limit: 2,
        ..all.clone()
    })
    .await;
    assert_eq!(first, [cy.id, bo.id]);
    let rest = list(ContactFilter {
        before_id: first.last().copied(),
        ..all.clone()
    })
    .await;
    assert_eq!(rest, [ana.id]);
}

fn message(f: &Fixture, wamid: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        tenant_id: f.tenant,
        conversation_id: f.conversation,
        connection_id: f.connection,
        wamid: wamid.to_owned(),
        direction: palisade_domain::MessageDirection::Inbound,
        kind: "text".into(),
        body: serde_json::json!({ "type": "text", "text": { "body": "STOP" } }),
        text: Some("STOP".into()),
        status: MessageStatus::Received,
        error: None,
        context_wamid: None,
        sent_at: None,
        created_at: now(),
    }
}

async fn deleting_a_contact_erases_its_conversations(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("5055501").await;
    // Another contact's conversation stays.
    let (_, kept) = t
        .new_conversation(f.tenant, f.connection, "+15550002222")
        .await;
    let mut tx = t.system().await;
    messages::insert_messages(&mut tx, &[message(&f, "wamid.1"), message(&f, "wamid.2")])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.tenant(f.tenant).await;
    send_queue::insert_outbound(
        &mut tx,
        &NewOutbound {
            id: MessageId::new(),
            conversation_id: f.conversation,
            connection_id: f.connection,
            kind: "text".into(),
            body: serde_json::json!({ "type": "text", "text": { "body": "bye" } }),
            text: Some("bye".into()),
            author_id: Some(f.admin.id),
            created_at: now() + Duration::minutes(1),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = t.tenant(f.tenant).await;
    let erased = contacts::delete(&mut tx, f.contact).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (erased.conversations, erased.messages, erased.queued_sends),
        (1, 3, 1)
    );
    assert_eq!(find(&t, f.tenant, f.contact).await, None);
    let mut tx = t.store.begin_read(scope(f.tenant)).await.unwrap();
    let gone = conversations::find_conversation(&mut tx, f.conversation)
        .await
        .unwrap();
    assert!(gone.is_none(), "its conversation");
    let listed = messages::list_messages(&mut tx, f.conversation, None, 10)
        .await
        .unwrap();
    assert!(listed.is_empty(), "its messages");
    let queued = count(&mut tx, "SELECT COUNT(*) AS n FROM whatsapp_outbound_queue").await;
    assert_eq!(queued, 0, "its queued send");
    let other = conversations::find_conversation(&mut tx, kept)
        .await
        .unwrap();
    assert!(other.is_some(), "another contact's conversation stays");
}

async fn a_keyword_stores_what_the_consent_rules_decide(db: Db) {
    let t = TestStore::new(db).await;
    let f = t.conversation_fixture("5055502").await;
    // What inbound processing does with a keyword sent at `at`: lock the conversation's
    // contact, let the domain decide, store the result.
    let apply = |keyword: KeywordConsent, at: time::OffsetDateTime| {
        let t = &t;
        let f = &f;
        async move {
            let mut tx = t.system().await;
            let c = contacts::find_by_conversation_for_update(&mut tx, f.tenant, f.conversation)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(c.id, f.contact);
            let next = c.consent.apply_keyword(keyword, at)?;
            let stored = contacts::write_consent(&mut tx, f.tenant, c.id, next, at)
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
            Some(stored)
        }
    };
    let stop_at = now() + Duration::minutes(10);
    let stored = apply(KeywordConsent::OptOut, stop_at).await.unwrap();
    assert_eq!(
        stored.consent,
        Consent::OptedOut {
            at: stop_at,
            source: OptOutSource::Keyword
        }
    );
    assert_eq!(stored.updated_at, stop_at);
    assert_eq!(find(&t, f.tenant, stored.id).await, Some(stored.clone()));

    // STOP again changes nothing; a START older than the STOP (a late redelivery) neither.
    assert_eq!(
        apply(KeywordConsent::OptOut, stop_at + Duration::minutes(1)).await,
        None
    );
    assert_eq!(
        apply(KeywordConsent::OptIn, stop_at - Duration::minutes(1)).await,
        None
    );
    let start_at = stop_at + Duration::minutes(2);
    let lifted = apply(KeywordConsent::OptIn, start_at).await.unwrap();
    assert_eq!(lifted.consent, Consent::OptedIn { at: start_at });
    assert_eq!(find(&t, f.tenant, lifted.id).await, Some(lifted));
}

async fn inbound_upsert_creates_a_sender_once(db: Db) {
    let t = TestStore::new(db).await;
    let acme = t.new_tenant("Acme").await;
    // A contact created by hand, before the person wrote.
    let by_hand = contact(acme, "+15550003333");
    insert(&t, &by_hand).await;
    let sender = |p: &str, name: Option<&str>| Sender {
        phone: p.to_owned(),
        wa_id: p.trim_start_matches('+').to_owned(),
        profile_name: name.map(str::to_owned),
    };
    let upsert = |senders: Vec<Sender>, at: time::OffsetDateTime| {
        let t = &t;
        async move {
            let mut tx = t.system().await;
            let r = contacts::upsert_contacts(&mut tx, acme, &senders, at)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            r
        }
    };
    let first = upsert(
        vec![
            sender("+15550001111", Some("Ana")),
            sender("+15550002222", None),
            sender("+15550001111", Some("Ana")),
            sender("+15550003333", Some("Cy")),
        ],
        now(),
    )
    .await;
    assert_eq!(first.ids.len(), 3, "one per phone");
    assert_eq!(first.ids["+15550003333"], by_hand.id);
    let mut created = first.created.clone();
    created.sort();
    let mut expected = vec![first.ids["+15550001111"], first.ids["+15550002222"]];
    expected.sort();
    assert_eq!(
        created, expected,
        "the contact made by hand was not created again"
    );
    let hand = find(&t, acme, by_hand.id).await.unwrap();
    assert_eq!(
        hand.wa_id.as_deref(),
        Some("15550003333"),
        "it gets its WhatsApp id"
    );
    assert_eq!(hand.wa_profile_name.as_deref(), Some("Cy"));
    assert_eq!(hand.name, None);
    // Each contact's name as lists show it (own name, else profile name), as written.
    let name = |r: &contacts::UpsertedContacts, phone: &str| r.names[&r.ids[phone]].clone();
    assert_eq!(name(&first, "+15550001111").as_deref(), Some("Ana"));
    assert_eq!(name(&first, "+15550002222"), None);
    assert_eq!(name(&first, "+15550003333").as_deref(), Some("Cy"));

    // The same senders again: nothing created; a new profile name is recorded, an absent one
    // keeps the old.
    let later = now() + Duration::minutes(3);
    let again = upsert(
        vec![
            sender("+15550001111", Some("Ana Lima")),
            sender("+15550003333", None),
        ],
        later,
    )
    .await;
    assert!(again.created.is_empty());
    assert_eq!(again.ids["+15550001111"], first.ids["+15550001111"]);
    assert_eq!(name(&again, "+15550001111").as_deref(), Some("Ana Lima"));
    assert_eq!(
        name(&again, "+15550003333").as_deref(),
        Some("Cy"),
        "a contact left unwritten has its name too"
    );
    let ana = find(&t, acme, first.ids["+15550001111"]).await.unwrap();
    assert_eq!(ana.wa_profile_name.as_deref(), Some("Ana Lima"));
    assert_eq!(ana.updated_at, later);
    assert_eq!(ana.created_at, now());
    let cy = find(&t, acme, by_hand.id).await.unwrap();
    assert_eq!(cy.wa_profile_name.as_deref(), Some("Cy"));
    assert_eq!(cy.updated_at, now(), "nothing changed, so not touched");

    // The same senders once more, nothing new to record: their rows are not written at all
    // (on PostgreSQL, no new row version: the same `xmin`).
    let version = |id: ContactId| {
        let t = &t;
        async move {
            let mut tx = t.system().await;
            let sql = match t.db {
                Db::Postgres => format!(
                    "SELECT CAST(CAST(xmin AS TEXT) AS BIGINT) AS n FROM contacts WHERE id = '{id}'"
                ),
                Db::Sqlite => "SELECT CAST(0 AS BIGINT) AS n".to_owned(),
            };
            let n = count(&mut tx, &sql).await;
            tx.commit().await.unwrap();
            n
        }
    };
    let before = (version(ana.id).await, version(cy.id).await);
    let same = upsert(
        vec![
            sender("+15550001111", Some("Ana Lima")),
            sender("+15550003333", Some("Cy")),
        ],
        later + Duration::minutes(1),
    )
    .await;
    assert!(same.created.is_empty());
    assert_eq!(same.ids["+15550001111"], ana.id);
    assert_eq!(same.ids["+15550003333"], by_hand.id);
    assert_eq!((version(ana.id).await, version(cy.id).await), before);
    assert_eq!(find(&t, acme, ana.id).await.unwrap().updated_at, later);
}
