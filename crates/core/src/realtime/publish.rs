//! What the use cases publish: the events of inbound processing, of the sender and of an agent's
//! message, read in the change's own transaction (and skipped when nobody listens). Separate
//! because these are the entry points other modules call, apart from the fan-out machinery.

use super::events::Event;
use crate::Services;
use palisade_domain::{ConnectionId, ConversationId, MessageId, TenantId};
use palisade_store::conversations::Conversation;
use palisade_store::messages::Message;
use palisade_store::realtime as rows;
use palisade_store::{SystemScope, TenantScope, Tx};
use std::collections::HashSet;

/// The events of processed inbound webhooks, in their transaction: each stored message (its
/// row as the insert returned it), each conversation a stored message opened or moved (as the
/// upsert returned it: `touched`, which may hold more), each message whose status moved
/// forward (read).
pub async fn inbound_events(
    s: &Services,
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: ConnectionId,
    mut created: Vec<Message>,
    touched: Vec<Conversation>,
    statuses: &[(String, String)],
) -> palisade_store::Result<Vec<Event>> {
    if (created.is_empty() && statuses.is_empty()) || !s.realtime.wants(tenant) {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    if !created.is_empty() {
        // As stored by this transaction; their media rows do not exist yet (they are queued
        // after the messages), as a read here would show.
        created.sort_unstable_by_key(|m| m.id);
        let moved: HashSet<ConversationId> = created.iter().map(|m| m.conversation_id).collect();
        let mut conversations: Vec<Conversation> = touched
            .into_iter()
            .filter(|c| moved.contains(&c.id))
            .collect();
        conversations.sort_unstable_by_key(|c| c.id);
        events.extend(created.into_iter().map(Event::MessageCreated));
        events.extend(conversations.into_iter().map(Event::ConversationUpdated));
    }
    if !statuses.is_empty() {
        let wamids: Vec<String> = statuses.iter().map(|(w, _)| w.clone()).collect();
        events.extend(
            rows::messages_by_wamid(tx, tenant, connection_id, &wamids)
                .await?
                .into_iter()
                .map(Event::MessageStatus),
        );
    }
    Ok(events)
}

/// The status events of messages the sender just marked (`sent` or `failed`), read in its
/// transaction.
pub async fn sender_events(
    s: &Services,
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_ids: &[MessageId],
) -> palisade_store::Result<Vec<Event>> {
    if message_ids.is_empty() || !s.realtime.wants(tenant) {
        return Ok(Vec::new());
    }
    Ok(rows::messages(tx, tenant, message_ids)
        .await?
        .into_iter()
        .map(Event::MessageStatus)
        .collect())
}

/// The events of a message queued by an agent, read in its transaction: the message, and its
/// conversation as the insert left it (latest-message time).
pub async fn message_queued(
    s: &Services,
    tx: &mut Tx<TenantScope>,
    message: &Message,
) -> palisade_store::Result<Vec<Event>> {
    if !s.realtime.wants(tx.scope().tenant_id()) {
        return Ok(Vec::new());
    }
    let mut events = vec![Event::MessageCreated(message.clone())];
    if let Some(c) =
        palisade_store::conversations::find_conversation(tx, message.conversation_id).await?
    {
        events.push(Event::ConversationUpdated(c));
    }
    Ok(events)
}
