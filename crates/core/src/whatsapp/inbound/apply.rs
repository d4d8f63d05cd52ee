//! Writing a batch: the changes of every payload grouped by (tenant, connection) and stored in
//! a few multi-row statements, then consent keywords, media jobs and the realtime events of
//! what changed, all in the inbound pipeline's unit of work (which runs the follow-ups that
//! need no transaction once it commits: realtime pushes, waking the media worker).

use super::payload::{self, Incoming, Notification, StatusChange};
use crate::templates::TemplateChange;
use crate::{AppResult, UnitOfWork};
use palisade_domain::{
    ConnectionId, ContactId, ConversationId, MessageDirection, MessageId, MessageKind,
    MessageStatus, TenantId,
};
use palisade_store::contacts::{self as contacts_store, Sender, UpsertedContacts};
use palisade_store::conversations::{self, Conversation};
use palisade_store::messages::{self, Message, NewMessage};
use palisade_store::whatsapp_connections::{self as connections, Connection};
use palisade_store::whatsapp_inbound::InboundEvent;
use palisade_store::{SystemScope, Tx};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// Applies `events` in `uow`, all at once (see [`Batch`]), and reads the realtime events of
/// what changed (published once it commits). Returns, per event, the note to keep in its
/// `error` (what was skipped, or why it could not be processed at all); a database error
/// aborts the unit of work.
pub(super) async fn process_in(
    uow: &mut UnitOfWork<'_, SystemScope>,
    events: &[InboundEvent],
) -> AppResult<Vec<Option<String>>> {
    let payloads: Vec<Result<Notification<'_>, String>> =
        events.iter().map(|e| payload::read(&e.body)).collect();
    let mut connections: HashMap<ConnectionId, Option<Connection>> = HashMap::new();
    for e in events {
        if let std::collections::hash_map::Entry::Vacant(slot) = connections.entry(e.connection_id)
        {
            slot.insert(connections::find_any(uow.tx(), e.connection_id).await?);
        }
    }
    let mut batch = Batch::default();
    let mut notes: Vec<Vec<String>> = vec![Vec::new(); events.len()];
    for (i, ((event, payload), notes)) in events.iter().zip(&payloads).zip(&mut notes).enumerate() {
        let conn = connections
            .get(&event.connection_id)
            .and_then(Option::as_ref);
        match (payload, conn) {
            (Err(why), _) => notes.push(why.clone()),
            (Ok(_), None) => notes.push("the connection no longer exists".to_owned()),
            (Ok(payload), Some(conn)) => batch.parse(i, conn, payload, notes),
        }
    }
    batch.apply(uow, &connections, &mut notes).await?;
    let errors = notes
        .into_iter()
        .zip(events)
        .map(|(n, event)| {
            (!n.is_empty()).then(|| {
                let why = n.join("; ");
                tracing::warn!(event = %event.id, error = %why, "WhatsApp webhook not (entirely) processed");
                why
            })
        })
        .collect();
    Ok(errors)
}

/// is written with a few multi-row statements however many POSTs it came in, and rows are
/// locked in one order (tenants, connections, then phones and contacts sorted), which keeps
/// concurrent processors (other nodes) from deadlocking each other.
#[derive(Default)]
struct Batch<'a> {
    messages: BTreeMap<(TenantId, ConnectionId), Vec<Incoming<'a>>>,
    statuses: BTreeMap<(TenantId, ConnectionId), Vec<StatusChange<'a>>>,
    /// Meta's template webhooks, with the event each came in (for its notes).
    templates: BTreeMap<(TenantId, ConnectionId), Vec<(usize, TemplateChange)>>,
}

impl<'a> Batch<'a> {
    /// Collects the messages and statuses of one payload; what is skipped goes to `notes`.
    fn parse(
        &mut self,
        event: usize,
        conn: &Connection,
        payload: &'a Notification<'_>,
        notes: &mut Vec<String>,
    ) {
        let (messages, statuses) =
            payload::changes(event, conn.id, &conn.phone_number_id, payload, notes);
        let key = (conn.tenant_id, conn.id);
        self.messages.entry(key).or_default().extend(messages);
        self.statuses.entry(key).or_default().extend(statuses);
        let templates = payload::template_changes(payload, notes);
        if !templates.is_empty() {
            self.templates
                .entry(key)
                .or_default()
                .extend(templates.into_iter().map(|t| (event, t)));
        }
    }

    /// Writes the batch: per (tenant, connection), the new messages with their contacts and
    /// conversations, then the statuses; reads the realtime events; then consent keywords and
    /// media jobs of the new messages.
    async fn apply(
        self,
        uow: &mut UnitOfWork<'_, SystemScope>,
        connections: &HashMap<ConnectionId, Option<Connection>>,
        notes: &mut [Vec<String>],
    ) -> AppResult<()> {
        let s = uow.services();
        let now = uow.now();
        let mut stored_messages: Vec<NewMessage> = Vec::new();
        let mut events: Vec<crate::realtime::Event> = Vec::new();
        // Per (tenant, connection): the new messages, their rows as stored, their
        // conversations as the upsert left them, and the (wamid, status) that moved.
        type Changes = (
            Vec<NewMessage>,
            Vec<Message>,
            Vec<Conversation>,
            Vec<(String, String)>,
        );
        let mut new_contacts: BTreeMap<TenantId, Vec<ContactId>> = BTreeMap::new();
        let mut by_group: BTreeMap<(TenantId, ConnectionId), Changes> = BTreeMap::new();
        for ((tenant, conn_id), list) in self.messages {
            let Some(conn) = connections.get(&conn_id).and_then(Option::as_ref) else {
                continue;
            };
            uow.set_tenant(tenant);
            let stored = store_messages(uow.tx(), tenant, conn, list, now, notes).await?;
            new_contacts
                .entry(tenant)
                .or_default()
                .extend(stored.created_contacts);
            let group = by_group.entry((tenant, conn_id)).or_default();
            group.0 = stored.new;
            group.1 = stored.rows;
            group.2 = stored.conversations;
        }
        for ((tenant, conn_id), list) in self.statuses {
            let mut moved = Vec::new();
            for st in list {
                let stopped_marketing = st.status == palisade_domain::MessageStatus::Failed
                    && st.error.as_ref().is_some_and(|e| {
                        crate::whatsapp::outbound::has_code(
                            e,
                            crate::whatsapp::outbound::STOPPED_MARKETING,
                        )
                    });
                let changed = messages::advance_status(
                    uow.tx(),
                    tenant,
                    conn_id,
                    st.wamid,
                    st.status,
                    st.error,
                    now,
                )
                .await?;
                if changed && stopped_marketing {
                    if let Some((conversation, message)) =
                        messages::conversation_of_wamid(uow.tx(), tenant, conn_id, st.wamid).await?
                    {
                        crate::contacts::opt_out_stopped_marketing(
                            uow,
                            tenant,
                            conversation,
                            message,
                            now,
                        )
                        .await?;
                    }
                }
                if changed {
                    moved.push((st.wamid.to_owned(), st.status.as_str().to_owned()));
                } else {
                    tracing::debug!(
                        wamid = st.wamid,
                        status = st.status.as_str(),
                        "status for an unknown message or not newer"
                    );
                }
            }
            by_group.entry((tenant, conn_id)).or_default().3 = moved;
        }
        for ((tenant, conn_id), list) in self.templates {
            for (event, change) in list {
                let mut skipped = Vec::new();
                crate::templates::apply_meta_changes(
                    uow,
                    tenant,
                    conn_id,
                    vec![change],
                    &mut skipped,
                )
                .await?;
                if let Some(n) = notes.get_mut(event) {
                    n.extend(skipped);
                }
            }
        }
        for ((tenant, conn_id), (messages, stored, conversations, statuses)) in by_group {
            events.extend(
                crate::realtime::inbound_events(
                    s,
                    uow.tx(),
                    tenant,
                    conn_id,
                    stored,
                    conversations,
                    &statuses,
                )
                .await?,
            );
            stored_messages.extend(messages);
        }
        for (tenant, created) in new_contacts {
            uow.set_tenant(tenant);
            crate::contacts::announce_created(uow, tenant, &created).await?;
        }
        crate::contacts::apply_consent_keywords(uow, &s.settings, &stored_messages).await?;
        super::super::media::enqueue_downloads(uow, &stored_messages).await?;
        if !events.is_empty() {
            uow.after_commit(move |s| s.realtime.publish_all(&events));
        }
        Ok(())
    }
}

/// What [`store_messages`] wrote for one (tenant, connection).
#[derive(Default)]
struct Stored {
    /// The new messages…
    new: Vec<NewMessage>,
    /// …their rows as stored…
    rows: Vec<Message>,
    /// …their conversations as the upsert left them…
    conversations: Vec<Conversation>,
    /// …and the contacts created for them.
    created_contacts: Vec<ContactId>,
}

/// Stores the new messages of one (tenant, connection): those whose wamid the connection does
/// not have yet (redeliveries and repeats change nothing), with their contacts and
/// conversations, in a few multi-row statements.
async fn store_messages(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    conn: &Connection,
    list: Vec<Incoming<'_>>,
    now: OffsetDateTime,
    notes: &mut [Vec<String>],
) -> palisade_store::Result<Stored> {
    let wamids: Vec<String> = list.iter().map(|m| m.wamid.to_owned()).collect();
    let mut seen = messages::existing_wamids(tx, tenant, conn.id, &wamids).await?;
    let mut accepted: Vec<Incoming<'_>> = Vec::with_capacity(list.len());
    let mut senders: HashMap<&str, Sender> = HashMap::new();
    for m in list {
        if !seen.insert(m.wamid.to_owned()) {
            continue; // already stored (redelivery) or repeated in this batch
        }
        let sender = senders.entry(m.from).or_insert_with(|| Sender {
            phone: format!("+{}", m.from),
            wa_id: m.from.to_owned(),
            profile_name: None,
        });
        // The latest payload's profile name wins.
        if let Some(p) = m.profile {
            sender.profile_name = Some(p.to_owned());
        }
        accepted.push(m);
    }
    if accepted.is_empty() {
        return Ok(Stored::default());
    }
    let senders: Vec<Sender> = senders.into_values().collect();
    let UpsertedContacts {
        ids: contacts,
        mut names,
        created,
    } = contacts_store::upsert_contacts(tx, tenant, &senders, now).await?;
    let mut latest: HashMap<ContactId, OffsetDateTime> = HashMap::new();
    for m in &accepted {
        if let Some(contact) = contacts.get(&format!("+{}", m.from)) {
            let t = m.fields.timestamp.unwrap_or(now);
            let e = latest.entry(*contact).or_insert(t);
            *e = (*e).max(t);
        }
    }
    let touched = conversations::touch_conversations(tx, tenant, conn.id, &latest, now).await?;
    let conversations: HashMap<ContactId, ConversationId> =
        touched.iter().map(|(c, v)| (*c, v.id())).collect();
    let mut new = Vec::with_capacity(accepted.len());
    for m in accepted {
        let Some(conversation_id) = contacts
            .get(&format!("+{}", m.from))
            .and_then(|c| conversations.get(c))
            .copied()
        else {
            // Only if a concurrent erasure removed the contact between the statements.
            if let Some(n) = notes.get_mut(m.event) {
                n.push(format!(
                    "message {}: its contact vanished, skipped",
                    m.wamid
                ));
            }
            continue;
        };
        let fields = m.fields;
        let kind = fields.kind.map_or(MessageKind::Unknown, MessageKind::parse);
        let text = (kind == MessageKind::Text)
            .then(|| fields.text.and_then(|t| t.body))
            .flatten()
            .map(str::to_owned);
        new.push(NewMessage {
            id: MessageId::new(),
            tenant_id: tenant,
            conversation_id,
            connection_id: conn.id,
            wamid: m.wamid.to_owned(),
            direction: MessageDirection::Inbound,
            kind,
            body: m.message.clone(),
            text,
            status: MessageStatus::Received,
            error: fields.errors,
            context_wamid: fields.context.and_then(|c| c.id).map(str::to_owned),
            sent_at: fields.timestamp,
            created_at: now,
        });
    }
    let rows = messages::insert_messages(tx, &new).await?;
    let phones: HashMap<ContactId, &String> = contacts.iter().map(|(p, c)| (*c, p)).collect();
    let conversations = touched
        .into_iter()
        .filter_map(|(contact, c)| {
            let phone = phones.get(&contact)?;
            Some(c.with_contact((*phone).clone(), names.remove(&contact).flatten()))
        })
        .collect();
    Ok(Stored {
        new,
        rows,
        conversations,
        created_contacts: created,
    })
}
