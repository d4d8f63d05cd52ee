//! Reads for realtime events: the rows an event carries, loaded by system work (webhook
//! processing, the sender, a node resolving a reference heard from another node) with the
//! tenant bound into every statement. The rows are those the REST API returns.

use crate::conversations::{Conversation, ConversationRow, CONVERSATION_SELECT};
use crate::messages::{Message, MessageRow, MESSAGE_COLUMNS};
use crate::query::{member_chunks, member_of, tenant_is};
use crate::{Query, Result, SystemScope, Tx};
use palisade_domain::{ConnectionId, ConversationId, MessageDirection, MessageId, TenantId};
use uuid::Uuid;

/// The tenant's messages with these ids, in id (creation) order.
pub async fn messages(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    ids: &[MessageId],
) -> Result<Vec<Message>> {
    let ids: Vec<Uuid> = ids.iter().map(MessageId::as_uuid).collect();
    let mut out = Vec::with_capacity(ids.len());
    let db = tx.backend();
    for chunk in member_chunks(db, &ids) {
        let q = Query::new(format!(
            "SELECT {MESSAGE_COLUMNS}, author_id FROM messages WHERE {} AND {} ORDER BY id",
            tenant_is(db, "tenant_id", 1),
            member_of(db, "id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        out.extend(crate::messages::all(tx.fetch_all::<MessageRow>(q).await?)?);
    }
    attach_media(tx, tenant, &mut out).await?;
    Ok(out)
}

/// The messages of a connection with these wamids, in id order.
pub async fn messages_by_wamid(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    connection_id: ConnectionId,
    wamids: &[String],
) -> Result<Vec<Message>> {
    let mut out = Vec::with_capacity(wamids.len());
    let db = tx.backend();
    for chunk in member_chunks(db, wamids) {
        let q = Query::new(format!(
            "SELECT {MESSAGE_COLUMNS}, author_id FROM messages
             WHERE {} AND connection_id = $2 AND {} ORDER BY id",
            tenant_is(db, "tenant_id", 1),
            member_of(db, "wamid", 3, chunk.len())
        ))
        .bind(tenant)
        .bind(connection_id)
        .bind_members(db, chunk);
        out.extend(crate::messages::all(tx.fetch_all::<MessageRow>(q).await?)?);
    }
    attach_media(tx, tenant, &mut out).await?;
    Ok(out)
}

/// The tenant's conversations with these ids (with their contact's phone and name).
pub async fn conversations(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    ids: &[ConversationId],
) -> Result<Vec<Conversation>> {
    let ids: Vec<Uuid> = ids.iter().map(ConversationId::as_uuid).collect();
    let mut out = Vec::with_capacity(ids.len());
    let db = tx.backend();
    for chunk in member_chunks(db, &ids) {
        let q = Query::new(format!(
            "{CONVERSATION_SELECT} WHERE {} AND {} ORDER BY v.id",
            tenant_is(db, "v.tenant_id", 1),
            member_of(db, "v.id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        out.extend(crate::conversations::all(
            tx.fetch_all::<ConversationRow>(q).await?,
        )?);
    }
    Ok(out)
}

/// Fills `media` on inbound media messages, as the REST reads do.
async fn attach_media(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    list: &mut [Message],
) -> Result<()> {
    let ids: Vec<MessageId> = list
        .iter()
        .filter(|m| m.direction == MessageDirection::Inbound)
        .map(|m| m.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut found: std::collections::HashMap<MessageId, crate::media::MessageMedia> =
        crate::media::for_messages_of(tx, tenant, &ids)
            .await?
            .into_iter()
            .map(|m| (m.message_id, m))
            .collect();
    for m in list.iter_mut() {
        m.media = found.remove(&m.id);
    }
    Ok(())
}
