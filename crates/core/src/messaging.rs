//! Reading contacts, conversations and messages (users with the read permissions, and API keys
//! with the matching scopes). They are written by processing Meta's webhooks
//! (`whatsapp::inbound`).

use crate::auth::Principal;
use crate::{AppError, AppResult, Services};
use palisade_domain::Permission;
use palisade_store::messaging::{self as store, Contact, Conversation, Message};
use uuid::Uuid;

/// A page: the items and, when there may be more, the cursor for the next page.
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<Uuid>,
}

fn page<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = items.len() > limit;
    items.truncate(limit);
    Page {
        next_cursor: if more { items.last().map(id) } else { None },
        data: items,
    }
}

fn clamp(limit: Option<i64>) -> i64 {
    limit.unwrap_or(50).clamp(1, 200)
}

/// Contacts, newest first.
pub async fn list_contacts(
    s: &Services,
    p: &Principal,
    cursor: Option<Uuid>,
    limit: Option<i64>,
) -> AppResult<Page<Contact>> {
    p.require(Permission::ContactsRead)?;
    let limit = clamp(limit);
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list_contacts(&mut tx, cursor, limit + 1).await?;
    Ok(page(items, limit, |c| c.id))
}

pub async fn get_contact(s: &Services, p: &Principal, id: Uuid) -> AppResult<Contact> {
    p.require(Permission::ContactsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find_contact(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("contact"))
}

/// Conversations, newest first, optionally only those in `status`.
pub async fn list_conversations(
    s: &Services,
    p: &Principal,
    status: Option<&str>,
    cursor: Option<Uuid>,
    limit: Option<i64>,
) -> AppResult<Page<Conversation>> {
    p.require(Permission::ConversationsRead)?;
    if let Some(st) = status {
        if !["open", "pending", "resolved"].contains(&st) {
            return Err(AppError::field(
                "status",
                "must be open, pending or resolved",
            ));
        }
    }
    let limit = clamp(limit);
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list_conversations(&mut tx, status, cursor, limit + 1).await?;
    Ok(page(items, limit, |c| c.id))
}

pub async fn get_conversation(s: &Services, p: &Principal, id: Uuid) -> AppResult<Conversation> {
    p.require(Permission::ConversationsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find_conversation(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

/// A conversation's messages, oldest first.
pub async fn list_messages(
    s: &Services,
    p: &Principal,
    conversation_id: Uuid,
    cursor: Option<Uuid>,
    limit: Option<i64>,
) -> AppResult<Page<Message>> {
    p.require(Permission::ConversationsRead)?;
    let limit = clamp(limit);
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if store::find_conversation(&mut tx, conversation_id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("conversation"));
    }
    let items = store::list_messages(&mut tx, conversation_id, cursor, limit + 1).await?;
    Ok(page(items, limit, |m| m.id))
}
