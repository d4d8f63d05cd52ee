//! Reading contacts: the list with its filters, one contact, and the export (its permission,
//! limit and audit entry, then its pages).

use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::code;
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{Contact, ContactId, ConversationId, Permission, Tags};
use palisade_store::contacts::{self as store, ContactFilter};
use palisade_store::conversations::Conversation;
use serde_json::json;
use uuid::Uuid;

/// List filters as the API receives them.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub q: Option<String>,
    pub tag: Option<String>,
    pub opted_out: Option<bool>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

fn filter(q: ListQuery) -> AppResult<ContactFilter> {
    let text =
        q.q.map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect::<String>());
    let digits = text.as_deref().and_then(|t| {
        let phoneish = t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
        let d: String = t.chars().filter(char::is_ascii_digit).collect();
        (phoneish && !d.is_empty()).then_some(d)
    });
    let tag = q.tag.map(|t| Tags::parse_one("tag", &t)).transpose()?;
    Ok(ContactFilter {
        q: text,
        q_digits: digits,
        tag,
        opted_out: q.opted_out,
        before_id: q.cursor.map(ContactId::from),
        limit: q.limit.unwrap_or(50).clamp(1, 200),
    })
}

/// Contacts, newest first, narrowed by `q` (a substring of the name, WhatsApp profile name,
/// email, or — when it looks like a number — the phone's digits), `tag` and `opted_out`.
pub async fn list(s: &Services, p: &Principal, q: ListQuery) -> AppResult<Page<Contact>> {
    p.require(Permission::ContactsRead)?;
    let mut f = filter(q)?;
    let limit = f.limit;
    f.limit = limit + 1;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list(&mut tx, &f).await?;
    let page = Page::from_overfetch(items, limit, |c| c.id.as_uuid());
    crate::detections::records_read(s, p, page.data.len());
    Ok(page)
}

pub async fn get(s: &Services, p: &Principal, id: ContactId) -> AppResult<Contact> {
    p.require(Permission::ContactsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("contact"))
}

/// The tenant's contacts with these ids (those that exist), in id order: one read for a page
/// of rows that name contacts.
pub async fn get_many(s: &Services, p: &Principal, ids: &[ContactId]) -> AppResult<Vec<Contact>> {
    p.require(Permission::ContactsRead)?;
    let scope = p.tenant_scope()?;
    let tenant = scope.tenant_id();
    let mut tx = s.store.begin_read(scope).await?;
    Ok(store::find_many(&mut tx, tenant, ids).await?)
}

// ---- exporting ----

/// Contacts may be exported only by admins (`data.export`), and an API key needs
/// `contacts:export` itself (`conversations:export` also grants `data.export`).
fn require_export(p: &Principal) -> AppResult<()> {
    p.require(Permission::DataExport)?;
    if let Some(k) = p.api_key() {
        if !k.scopes.contains(&palisade_domain::Scope::ContactsExport) {
            return Err(AppError::Forbidden {
                code: code::INSUFFICIENT_SCOPE,
                message: "this API key is missing the scope contacts:export".into(),
            });
        }
    }
    Ok(())
}

/// Checks the export permission and limit (10 an hour per tenant) and audits the export
/// (`contact.exported`, with its format and filters); the caller then streams
/// [`export_page`]s. Returns the first page's filter.
pub async fn start_export(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    format: &str,
    q: ListQuery,
) -> AppResult<ContactFilter> {
    require_export(p)?;
    let f = filter(q.clone())?;
    let scope = p.tenant_scope()?;
    s.limits
        .contacts_export
        .check(&scope.tenant_id().as_uuid())
        .await
        .map_err(|wait| AppError::rate_limited("at most 10 contact exports per hour", wait))?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let mut entry = uow.entry("contact.exported").metadata(json!({
        "format": format, "tag": f.tag, "opted_out": f.opted_out, "q": q.q.is_some(),
    }));
    entry.target_type = Some("contact".into());
    uow.audit(entry).await?;
    let audit_id = uow.last_watched_audit_id();
    uow.commit().await?;
    crate::detections::export_started(s, p, audit_id);
    Ok(f)
}

/// One page (500 contacts, newest first) of an export.
pub async fn export_page(
    s: &Services,
    p: &Principal,
    f: &ContactFilter,
) -> AppResult<Vec<Contact>> {
    require_export(p)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let page = store::list(&mut tx, f).await?;
    crate::detections::exported_rows(s, p, page.len());
    Ok(page)
}

/// A contact's conversations (on every number), newest first, 50 a page after `cursor` (the
/// previous page's `next_cursor`). Needs `contacts.read` and `conversations.read`; an id that
/// is not a contact of the caller's tenant is `404`.
pub async fn conversations(
    s: &Services,
    p: &Principal,
    id: ContactId,
    cursor: Option<Uuid>,
) -> AppResult<Page<Conversation>> {
    p.require(Permission::ContactsRead)?;
    p.require(Permission::ConversationsRead)?;
    const LIMIT: i64 = 50;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if store::find(&mut tx, id).await?.is_none() {
        return Err(AppError::NotFound("contact"));
    }
    let items = palisade_store::conversations::list_for_contact(
        &mut tx,
        id,
        cursor.map(ConversationId::from),
        LIMIT + 1,
    )
    .await?;
    Ok(Page::from_overfetch(items, LIMIT, |c| c.id.as_uuid()))
}
