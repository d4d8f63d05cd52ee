//! Contacts: the people a tenant talks to on WhatsApp, and their marketing consent.
//!
//! Users and API keys read (`contacts.read`), create and edit (`contacts.write`), delete
//! (`contacts.delete`, admins) and export (`data.export`, admins; API keys need
//! `contacts:export` exactly) them. Inbound processing creates contacts for new senders and,
//! through [`apply_consent_keywords`], opts a contact out when they send an opt-out keyword
//! (`STOP`, …) or lifts that when they send an opt-in keyword (`START`, …), in the transaction
//! of the message.
//!
//! Privacy: deleting a contact is an erasure — its conversations, messages and queued sends go
//! with it — so the audit log, which can never be edited, records no personal data about
//! contacts: ids, consent state and the names of the fields that changed, never values.
//! Outgoing webhook events carry the contact itself (the tenant's own systems).

use crate::audit::{self, AuditEntryExt};
use crate::auth::{Principal, RequestMeta};
use crate::messaging::Page;
use crate::{AppError, AppResult, Services, Settings};
use palisade_domain::rfc3339;
use palisade_domain::{
    ApiScope, CustomAttributes, EmailAddress, FieldError, Permission, PersonName, PhoneNumber,
    Tags, TenantId,
};
use palisade_store::contacts::{self as store, Contact, ContactFilter, KeywordConsent};
use palisade_store::messaging::NewMessage;
use palisade_store::Json;
use palisade_store::{audit as audit_log, StoreError, SystemScope, Tx};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// The default opt-out keywords: the carrier-standard English set, Meta's marketing opt-out
/// button (`Stop promotions`), and the usual words in French, Spanish, Portuguese, German and
/// Italian.
pub const DEFAULT_OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP PROMOTIONS",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "ARRET",
    "ARRÊT",
    "BAJA",
    "PARAR",
    "ALTO",
    "CANCELAR",
    "STOPP",
    "ABMELDEN",
    "DISISCRIVI",
    "SAIR",
];

/// The default opt-in keywords (they only lift an opt-out; see [`apply_consent_keywords`]).
pub const DEFAULT_OPT_IN_KEYWORDS: &[&str] = &["START", "UNSTOP"];

/// How a keyword and a message are compared: trimmed, without surrounding punctuation (`Stop!`),
/// runs of whitespace as one space, upper-cased.
pub fn normalize_keyword(s: &str) -> String {
    s.trim()
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, '.' | '!' | '¡' | '?' | '¿'))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// Whether the contact is currently opted out of marketing.
pub fn opted_out(c: &Contact) -> bool {
    c.opted_out_at.is_some()
}

/// The contact as webhook events carry it (the same fields as the API).
pub fn contact_json(c: &Contact) -> Value {
    json!({
        "id": c.id, "phone": c.phone, "wa_id": c.wa_id, "name": c.name,
        "wa_profile_name": c.wa_profile_name, "email": c.email, "tags": c.tags.0,
        "custom_attributes": c.custom_attributes.0, "marketing_opt_in": c.marketing_opt_in,
        "opted_out": opted_out(c), "opted_in_at": c.opted_in_at.map(rfc3339),
        "opted_out_at": c.opted_out_at.map(rfc3339), "opt_out_source": c.opt_out_source,
        "created_at": rfc3339(c.created_at), "updated_at": rfc3339(c.updated_at),
    })
}

/// What the audit log keeps of a contact: no personal data (see the module comment).
fn audit_json(c: &Contact) -> Value {
    json!({
        "id": c.id, "marketing_opt_in": c.marketing_opt_in, "opted_out": opted_out(c),
        "opt_out_source": c.opt_out_source,
    })
}

/// The fields whose values differ between `a` and `b`.
fn changed_fields(a: &Contact, b: &Contact) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("phone", a.phone != b.phone);
    check("name", a.name != b.name);
    check("email", a.email != b.email);
    check("tags", a.tags.0 != b.tags.0);
    check(
        "custom_attributes",
        a.custom_attributes.0 != b.custom_attributes.0,
    );
    check(
        "marketing_opt_in",
        a.marketing_opt_in != b.marketing_opt_in || a.opted_out_at != b.opted_out_at,
    );
    out
}

/// Sets the consent fields for an explicit choice made through the API. Choosing what is
/// already the state keeps its timestamp.
fn set_consent(c: &mut Contact, opt_in: bool, now: OffsetDateTime) {
    if opt_in && !c.marketing_opt_in {
        c.marketing_opt_in = true;
        c.opted_in_at = Some(now);
        c.opted_out_at = None;
        c.opt_out_source = None;
    } else if !opt_in && c.opted_out_at.is_none() {
        c.marketing_opt_in = false;
        c.opted_in_at = None;
        c.opted_out_at = Some(now);
        c.opt_out_source = Some("api".into());
    }
}

/// A unique violation on insert or update can only be the phone (ids are fresh UUIDs).
async fn phone_taken(tx: &mut Tx<palisade_store::TenantScope>, phone: &str) -> AppError {
    let existing = store::find_by_phone(tx, phone).await.ok().flatten();
    AppError::Conflict {
        code: "contact_exists",
        message: match existing {
            Some(c) => format!("a contact with this phone already exists: {}", c.id),
            None => "a contact with this phone already exists".into(),
        },
    }
}

async fn stored(tx: &mut Tx<palisade_store::TenantScope>, id: Uuid) -> AppResult<Contact> {
    Ok(store::find(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the contact just written is missing"))?)
}

// ---- reading ----

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
        before_id: q.cursor,
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
    let mut items = store::list(&mut tx, &f).await?;
    let more = items.len() > usize::try_from(limit).unwrap_or(0);
    items.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(Page {
        next_cursor: if more {
            items.last().map(|c| c.id)
        } else {
            None
        },
        data: items,
    })
}

pub async fn get(s: &Services, p: &Principal, id: Uuid) -> AppResult<Contact> {
    p.require(Permission::ContactsRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("contact"))
}

// ---- writing ----

/// A contact to create, as received.
#[derive(Debug, Default)]
pub struct NewContact {
    pub phone: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub tags: Option<Vec<String>>,
    pub custom_attributes: Option<Value>,
    /// `true` opts in, `false` opts out (source `api`); absent leaves consent unset.
    pub marketing_opt_in: Option<bool>,
}

/// Changes to a contact; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ContactPatch {
    pub phone: Option<String>,
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    /// `Some(None)` clears every tag.
    pub tags: Option<Option<Vec<String>>>,
    /// `Some(None)` clears every attribute.
    pub custom_attributes: Option<Option<Value>>,
    pub marketing_opt_in: Option<bool>,
}

/// Parses one optional field, collecting its error.
fn collect<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewContact,
) -> AppResult<Contact> {
    p.require(Permission::ContactsWrite)?;
    let now = s.now();
    let mut errors = Vec::new();
    let phone = collect(&mut errors, PhoneNumber::parse("phone", &new.phone));
    let name = new
        .name
        .map(|n| collect(&mut errors, PersonName::parse("name", &n)));
    let email = new
        .email
        .map(|e| collect(&mut errors, EmailAddress::parse("email", &e)));
    let tags = new
        .tags
        .map(|t| collect(&mut errors, Tags::parse("tags", &t)));
    let attrs = new
        .custom_attributes
        .map(|a| collect(&mut errors, CustomAttributes::parse("custom_attributes", a)));
    let (Some(phone), true) = (phone, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let scope = p.tenant_scope()?;
    let mut c = Contact {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id().as_uuid(),
        phone: phone.as_str().to_owned(),
        wa_id: None,
        name: name.flatten().map(|n| n.as_str().to_owned()),
        wa_profile_name: None,
        email: email.flatten().map(|e| e.as_str().to_owned()),
        tags: Json(tags.flatten().map(Tags::into_vec).unwrap_or_default()),
        custom_attributes: Json(
            attrs
                .flatten()
                .map(|a| a.as_map().clone())
                .unwrap_or_default(),
        ),
        marketing_opt_in: false,
        opted_in_at: None,
        opted_out_at: None,
        opt_out_source: None,
        created_at: now,
        updated_at: now,
    };
    if let Some(opt_in) = new.marketing_opt_in {
        set_consent(&mut c, opt_in, now);
    }
    let mut tx = s.store.begin(scope).await?;
    if let Err(e) = store::insert(&mut tx, &c).await {
        return Err(match e {
            StoreError::UniqueViolation { .. } => {
                drop(tx);
                let mut tx = s.store.begin_read(scope).await?;
                phone_taken(&mut tx, &c.phone).await
            }
            e => e.into(),
        });
    }
    // As stored (PostgreSQL keeps microseconds).
    let c = stored(&mut tx, c.id).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "contact.created")
            .target("contact", c.id)
            .change(None, Some(audit_json(&c))),
        now,
    )
    .await?;
    crate::webhooks::enqueue(
        &mut tx,
        scope.tenant_id(),
        "contact.created",
        contact_json(&c),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(c)
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: Uuid,
    patch: ContactPatch,
) -> AppResult<Contact> {
    p.require(Permission::ContactsWrite)?;
    let now = s.now();
    let mut errors = Vec::new();
    let phone = patch
        .phone
        .map(|ph| collect(&mut errors, PhoneNumber::parse("phone", &ph)));
    let name = patch.name.map(|n| {
        n.and_then(|n| collect(&mut errors, PersonName::parse("name", &n)))
            .map(|n| n.as_str().to_owned())
    });
    let email = patch.email.map(|e| {
        e.and_then(|e| collect(&mut errors, EmailAddress::parse("email", &e)))
            .map(|e| e.as_str().to_owned())
    });
    let tags = patch.tags.map(|t| {
        t.and_then(|t| collect(&mut errors, Tags::parse("tags", &t)))
            .map(Tags::into_vec)
            .unwrap_or_default()
    });
    let attrs = patch.custom_attributes.map(|a| {
        a.and_then(|a| collect(&mut errors, CustomAttributes::parse("custom_attributes", a)))
            .map(|a| a.as_map().clone())
            .unwrap_or_default()
    });
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin(scope).await?;
    let before = store::find_for_update(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("contact"))?;
    let mut after = before.clone();
    if let Some(Some(ph)) = phone {
        if ph.as_str() != before.phone {
            after.phone = ph.as_str().to_owned();
            // WhatsApp's id and profile name belong to the old number's account; keeping the
            // id would send replies to the old number.
            after.wa_id = None;
            after.wa_profile_name = None;
        }
    }
    if let Some(n) = name {
        after.name = n;
    }
    if let Some(e) = email {
        after.email = e;
    }
    if let Some(t) = tags {
        after.tags = Json(t);
    }
    if let Some(a) = attrs {
        after.custom_attributes = Json(a);
    }
    if let Some(opt_in) = patch.marketing_opt_in {
        set_consent(&mut after, opt_in, now);
    }
    let changed = changed_fields(&before, &after);
    if changed.is_empty() {
        return Ok(before);
    }
    after.updated_at = now;
    if let Err(e) = store::update(&mut tx, &after).await {
        return Err(match e {
            StoreError::UniqueViolation { .. } => {
                drop(tx);
                let mut tx = s.store.begin_read(scope).await?;
                phone_taken(&mut tx, &after.phone).await
            }
            e => e.into(),
        });
    }
    let after = stored(&mut tx, id).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "contact.updated")
            .target("contact", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after)))
            .metadata(json!({ "fields": changed })),
        now,
    )
    .await?;
    crate::webhooks::enqueue(
        &mut tx,
        scope.tenant_id(),
        "contact.updated",
        contact_json(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Erases a contact with its conversations, messages and queued sends (see
/// [`store::delete`]). Audited as `contact.deleted` with what was erased.
pub async fn delete(s: &Services, p: &Principal, meta: &RequestMeta, id: Uuid) -> AppResult<()> {
    p.require(Permission::ContactsDelete)?;
    let now = s.now();
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin(scope).await?;
    let before = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("contact"))?;
    // The media rows go first, returning their files' keys (see `delete_of_contact` for the
    // race with a download being recorded; `whatsapp::media` covers the other order).
    let files = palisade_store::media::delete_of_contact(&mut tx, id).await?;
    let erased = store::delete(&mut tx, id).await?;
    audit_log::append(
        &mut tx,
        &audit::by(p, meta, None, "contact.deleted")
            .target("contact", id)
            .change(Some(audit_json(&before)), None)
            .metadata(json!({
                "conversations": erased.conversations, "messages": erased.messages,
                "queued_sends": erased.queued_sends, "media_files": files.len(),
            })),
        now,
    )
    .await?;
    let mut gone = contact_json(&before);
    if let Some(o) = gone.as_object_mut() {
        o.insert("deleted".into(), json!(true));
    }
    crate::webhooks::enqueue(&mut tx, scope.tenant_id(), "contact.deleted", gone, now).await?;
    tx.commit().await?;
    // The erasure covers the downloaded media too. A file that cannot be removed now is logged
    // (by key, never by content) and the erasure still stands in the database.
    for key in files {
        if let Err(e) = s.storage.delete(scope.tenant_id(), &key).await {
            tracing::warn!(contact = %id, key, error = %e, "could not remove an erased contact's media file");
        }
    }
    Ok(())
}

// ---- exporting ----

/// Contacts may be exported only by admins (`data.export`), and an API key needs
/// `contacts:export` itself (`conversations:export` also grants `data.export`).
fn require_export(p: &Principal) -> AppResult<()> {
    p.require(Permission::DataExport)?;
    if let Some(k) = p.api_key() {
        if !k.scopes.contains(&ApiScope::ContactsExport) {
            return Err(AppError::Forbidden {
                code: "insufficient_scope",
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
        .map_err(|wait| AppError::rate_limited("at most 10 contact exports per hour", wait))?;
    let now = s.now();
    let mut tx = s.store.begin(scope).await?;
    let mut entry = audit::by(p, meta, None, "contact.exported").metadata(json!({
        "format": format, "tag": f.tag, "opted_out": f.opted_out, "q": q.q.is_some(),
    }));
    entry.target_type = Some("contact".into());
    audit_log::append(&mut tx, &entry, now).await?;
    tx.commit().await?;
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
    Ok(store::list(&mut tx, f).await?)
}

// ---- consent keywords (inbound processing) ----

/// The configured keywords, normalised.
#[derive(Debug, Clone, Default)]
pub struct ConsentKeywords {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
}

impl ConsentKeywords {
    pub fn from_settings(s: &Settings) -> Self {
        let norm = |list: &[String]| {
            list.iter()
                .map(|k| normalize_keyword(k))
                .filter(|k| !k.is_empty())
                .collect()
        };
        ConsentKeywords {
            opt_out: norm(&s.opt_out_keywords),
            opt_in: norm(&s.opt_in_keywords),
        }
    }

    /// What a message asks for, if anything. The whole text must be the keyword (`STOP`, `stop.`),
    /// so ordinary sentences that contain one ("please don't stop") change nothing.
    pub fn classify(&self, m: &NewMessage) -> Option<(KeywordConsent, String)> {
        for candidate in message_texts(m) {
            let n = normalize_keyword(&candidate);
            if self.opt_out.contains(&n) {
                return Some((KeywordConsent::OptOut, n));
            }
            if self.opt_in.contains(&n) {
                return Some((KeywordConsent::OptIn, n));
            }
        }
        None
    }
}

/// The texts of an inbound message a keyword may be: a text message's body, a quick-reply
/// button's text and payload (Meta's "Stop promotions" button arrives this way), an interactive
/// reply's title and id.
fn message_texts(m: &NewMessage) -> Vec<String> {
    let b = &m.body;
    let paths: &[&str] = match m.kind.as_str() {
        "text" => &["/text/body"],
        "button" => &["/button/text", "/button/payload"],
        "interactive" => &[
            "/interactive/button_reply/title",
            "/interactive/button_reply/id",
            "/interactive/list_reply/title",
            "/interactive/list_reply/id",
        ],
        _ => &[],
    };
    paths
        .iter()
        .filter_map(|p| b.pointer(p).and_then(Value::as_str))
        .filter(|s| s.len() <= 64)
        .map(str::to_owned)
        .collect()
}

fn to_store_error(e: AppError) -> StoreError {
    match e {
        AppError::Internal(e) => e
            .downcast::<StoreError>()
            .unwrap_or_else(|e| StoreError::Config(format!("{e:#}"))),
        other => StoreError::Config(other.to_string()),
    }
}

/// Queues `contact.created` for contacts that inbound messages created, in their transaction
/// (nothing is read when no endpoint of the tenant subscribes). Unlike contacts created
/// through the API, these are not audited: a customer writing in is not an action of anyone
/// in the tenant.
pub async fn announce_created(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    ids: &[Uuid],
    now: OffsetDateTime,
) -> palisade_store::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let hooks = crate::webhooks::subscribers(tx, tenant, "contact.created")
        .await
        .map_err(to_store_error)?;
    if hooks.is_empty() {
        return Ok(());
    }
    let contacts = store::find_many(tx, tenant, ids).await?;
    let events: Vec<Value> = contacts.iter().map(contact_json).collect();
    crate::webhooks::enqueue_to(tx, tenant, &hooks, "contact.created", events, now)
        .await
        .map_err(to_store_error)?;
    Ok(())
}

/// Applies opt-out and opt-in keywords among newly stored inbound messages, in their
/// transaction, oldest first: the contact is opted out (source `keyword`, at the message's
/// time), or an opt-out is lifted (opted in at the message's time). An opt-in keyword does not
/// create consent for a contact that never opted out. A keyword older than the contact's
/// current state (a late redelivery) changes nothing. Each change is audited
/// (`contact.opted_out` / `contact.opted_in`, no actor) and emits `contact.updated`.
pub async fn apply_consent_keywords(
    tx: &mut Tx<SystemScope>,
    settings: &Settings,
    messages: &[NewMessage],
    now: OffsetDateTime,
) -> palisade_store::Result<()> {
    let keywords = ConsentKeywords::from_settings(settings);
    if keywords.opt_out.is_empty() && keywords.opt_in.is_empty() {
        return Ok(());
    }
    let mut hits: Vec<(&NewMessage, KeywordConsent, String)> = messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .filter_map(|m| keywords.classify(m).map(|(k, w)| (m, k, w)))
        .collect();
    hits.sort_by_key(|(m, _, _)| m.sent_at.unwrap_or(m.created_at));
    for (m, consent, keyword) in hits {
        let at = m.sent_at.unwrap_or(m.created_at);
        let Some(c) =
            store::apply_keyword(tx, m.tenant_id, m.conversation_id, consent, at, now).await?
        else {
            continue;
        };
        record_keyword_change(tx, m.tenant_id, &c, consent, &keyword, m, now)
            .await
            .map_err(to_store_error)?;
    }
    Ok(())
}

async fn record_keyword_change(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    c: &Contact,
    consent: KeywordConsent,
    keyword: &str,
    m: &NewMessage,
    now: OffsetDateTime,
) -> AppResult<()> {
    let action = match consent {
        KeywordConsent::OptOut => "contact.opted_out",
        KeywordConsent::OptIn => "contact.opted_in",
    };
    let meta = RequestMeta {
        request_id: "whatsapp-inbound".into(),
        ..RequestMeta::default()
    };
    audit_log::append(
        tx,
        &audit::entry(&meta, Some(tenant), action)
            .target("contact", c.id)
            .change(None, Some(audit_json(c)))
            .metadata(json!({ "source": "keyword", "keyword": keyword, "message_id": m.id })),
        now,
    )
    .await?;
    crate::webhooks::enqueue(tx, tenant, "contact.updated", contact_json(c), now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_whole_messages_only() {
        let s = Settings::default();
        let k = ConsentKeywords::from_settings(&s);
        let msg = |kind: &str, body: Value| NewMessage {
            id: Uuid::now_v7(),
            tenant_id: TenantId::new(),
            conversation_id: Uuid::now_v7(),
            connection_id: Uuid::now_v7(),
            wamid: "wamid.X".into(),
            direction: "inbound",
            kind: kind.into(),
            body,
            text: None,
            status: "received",
            error: None,
            context_wamid: None,
            sent_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let text = |t: &str| msg("text", json!({"type": "text", "text": {"body": t}}));
        for t in [
            "STOP",
            " stop ",
            "Stop!",
            "arrêt",
            "ARRET.",
            "stop   promotions",
            "Baja",
        ] {
            assert_eq!(
                k.classify(&text(t)).map(|x| x.0),
                Some(KeywordConsent::OptOut),
                "{t}"
            );
        }
        for t in ["please stop", "stopped", "STOP it", "", "start me up"] {
            assert_eq!(k.classify(&text(t)), None, "{t}");
        }
        assert_eq!(
            k.classify(&text("Start")).map(|x| x.0),
            Some(KeywordConsent::OptIn)
        );
        let button = msg(
            "button",
            json!({"type": "button", "button": {"text": "Stop promotions", "payload": "x"}}),
        );
        assert_eq!(
            k.classify(&button).map(|x| x.0),
            Some(KeywordConsent::OptOut)
        );
        let image = msg(
            "image",
            json!({"type": "image", "image": {"caption": "STOP"}}),
        );
        assert_eq!(k.classify(&image), None, "captions are not keywords");
        let none = ConsentKeywords::default();
        assert_eq!(none.classify(&text("STOP")), None);
    }
}
