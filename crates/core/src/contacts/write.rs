//! Writing contacts: create, edit and erase, each parsed once into the domain's types, audited
//! without personal data and announced to webhooks with the contact's [`ContactView`].

use super::{audit_json, ContactView};
use crate::audit::{self, AuditEntryExt};
use crate::auth::{Principal, RequestMeta};
use crate::{AppError, AppResult, Services};
use palisade_domain::{
    Contact, ContactId, CustomAttributes, EmailAddress, FieldError, Permission, PersonName,
    PhoneNumber, Tags,
};
use palisade_store::contacts as store;
use palisade_store::{audit as audit_log, StoreError, TenantScope, Tx};
use serde_json::{json, Value};

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
    check("tags", a.tags != b.tags);
    check(
        "custom_attributes",
        a.custom_attributes != b.custom_attributes,
    );
    check("marketing_opt_in", a.consent != b.consent);
    out
}

/// A unique violation on insert or update can only be the phone (ids are fresh UUIDs).
async fn phone_taken(tx: &mut Tx<TenantScope>, phone: &PhoneNumber) -> AppError {
    let existing = store::find_by_phone(tx, phone).await.ok().flatten();
    AppError::Conflict {
        code: "contact_exists",
        message: match existing {
            Some(c) => format!("a contact with this phone already exists: {}", c.id),
            None => "a contact with this phone already exists".into(),
        },
    }
}

async fn stored(tx: &mut Tx<TenantScope>, id: ContactId) -> AppResult<Contact> {
    Ok(store::find(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the contact just written is missing"))?)
}

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
    let mut c = Contact::new(scope.tenant_id(), phone, now);
    c.name = name.flatten();
    c.email = email.flatten();
    c.tags = tags.flatten().unwrap_or_default();
    c.custom_attributes = attrs.flatten().unwrap_or_default();
    if let Some(opt_in) = new.marketing_opt_in {
        c.consent = c.consent.choose(opt_in, now);
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
        ContactView::from(&c).to_json()?,
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
    id: ContactId,
    patch: ContactPatch,
) -> AppResult<Contact> {
    p.require(Permission::ContactsWrite)?;
    let now = s.now();
    let mut errors = Vec::new();
    let phone = patch
        .phone
        .map(|ph| collect(&mut errors, PhoneNumber::parse("phone", &ph)));
    let name = patch
        .name
        .map(|n| n.and_then(|n| collect(&mut errors, PersonName::parse("name", &n))));
    let email = patch
        .email
        .map(|e| e.and_then(|e| collect(&mut errors, EmailAddress::parse("email", &e))));
    // A field that failed to parse is left out here; the errors return before anything is set.
    let tags = patch.tags.map(|t| {
        t.and_then(|t| collect(&mut errors, Tags::parse("tags", &t)))
            .unwrap_or_default()
    });
    let attrs = patch.custom_attributes.map(|a| {
        a.and_then(|a| collect(&mut errors, CustomAttributes::parse("custom_attributes", a)))
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
        after.change_phone(ph);
    }
    if let Some(n) = name {
        after.name = n;
    }
    if let Some(e) = email {
        after.email = e;
    }
    if let Some(t) = tags {
        after.tags = t;
    }
    if let Some(a) = attrs {
        after.custom_attributes = a;
    }
    if let Some(opt_in) = patch.marketing_opt_in {
        after.consent = after.consent.choose(opt_in, now);
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
        ContactView::from(&after).to_json()?,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Erases a contact with its conversations, messages and queued sends (see
/// [`store::delete`]). Audited as `contact.deleted` with what was erased.
pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ContactId,
) -> AppResult<()> {
    p.require(Permission::ContactsDelete)?;
    let now = s.now();
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin(scope).await?;
    let before = store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("contact"))?;
    // The media rows go first, returning their files' keys (see `delete_of_contact` for the
    // race with a download being recorded; `whatsapp::media` covers the other order).
    let files = palisade_store::media::delete_of_contact(&mut tx, id.as_uuid()).await?;
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
    let mut gone = ContactView::from(&before).to_json()?;
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
