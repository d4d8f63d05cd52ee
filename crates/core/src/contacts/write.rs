//! Writing contacts: create, edit and erase, each parsed once into the domain's types, audited
//! without personal data and announced to webhooks with the contact's [`ContactView`].

use super::{audit_json, ContactView};
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::{code, FieldErrors};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{
    Contact, ContactId, CustomAttributes, EmailAddress, EventType, Permission, PersonName,
    PhoneNumber, Tags,
};
use palisade_store::contacts as store;
use palisade_store::{StoreError, TenantScope, Tx};
use serde::Serialize;
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
        code: code::CONTACT_EXISTS,
        message: match existing {
            Some(c) => format!("a contact with this phone already exists: {}", c.id),
            None => "a contact with this phone already exists".into(),
        },
    }
}

/// The conflict for a unique violation, read after the failed unit of work is rolled back.
async fn conflict(s: &Services, p: &Principal, phone: &PhoneNumber) -> AppResult<AppError> {
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(phone_taken(&mut tx, phone).await)
}

async fn stored(tx: &mut Tx<TenantScope>, id: ContactId) -> AppResult<Contact> {
    Ok(store::find(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the contact just written is missing"))?)
}

/// The data of a `contact.deleted` event: the contact as it was, marked deleted.
#[derive(Serialize)]
struct DeletedContact {
    #[serde(flatten)]
    contact: ContactView,
    deleted: bool,
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

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewContact,
) -> AppResult<Contact> {
    p.require(Permission::ContactsWrite)?;
    let mut errors = FieldErrors::new();
    let phone = errors.check(PhoneNumber::parse("phone", &new.phone));
    let name = new
        .name
        .map(|n| errors.check(PersonName::parse("name", &n)));
    let email = new
        .email
        .map(|e| errors.check(EmailAddress::parse("email", &e)));
    let tags = new.tags.map(|t| errors.check(Tags::parse("tags", &t)));
    let attrs = new
        .custom_attributes
        .map(|a| errors.check(CustomAttributes::parse("custom_attributes", a)));
    let (Some(phone), true) = (phone, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let mut c = Contact::new(p.tenant_scope()?.tenant_id(), phone, now);
    c.name = name.flatten();
    c.email = email.flatten();
    c.tags = tags.flatten().unwrap_or_default();
    c.custom_attributes = attrs.flatten().unwrap_or_default();
    if let Some(opt_in) = new.marketing_opt_in {
        c.consent = c.consent.choose(opt_in, now);
    }
    if let Err(e) = store::insert(uow.tx(), &c).await {
        return Err(match e {
            StoreError::UniqueViolation { .. } => {
                drop(uow);
                conflict(s, p, &c.phone).await?
            }
            e => e.into(),
        });
    }
    // As stored (PostgreSQL keeps microseconds).
    let c = stored(uow.tx(), c.id).await?;
    uow.audit(
        uow.entry("contact.created")
            .target("contact", c.id)
            .change(None, Some(audit_json(&c))),
    )
    .await?;
    uow.emit(EventType::ContactCreated, &ContactView::from(&c))
        .await?;
    uow.commit().await?;
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
    let mut errors = FieldErrors::new();
    let phone = patch
        .phone
        .map(|ph| errors.check(PhoneNumber::parse("phone", &ph)));
    let name = patch
        .name
        .map(|n| n.and_then(|n| errors.check(PersonName::parse("name", &n))));
    let email = patch
        .email
        .map(|e| e.and_then(|e| errors.check(EmailAddress::parse("email", &e))));
    // A field that failed to parse is left out here; the errors return before anything is set.
    let tags = patch.tags.map(|t| {
        t.and_then(|t| errors.check(Tags::parse("tags", &t)))
            .unwrap_or_default()
    });
    let attrs = patch.custom_attributes.map(|a| {
        a.and_then(|a| errors.check(CustomAttributes::parse("custom_attributes", a)))
            .unwrap_or_default()
    });
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = store::find_for_update(uow.tx(), id)
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
    if let Err(e) = store::update(uow.tx(), &after).await {
        return Err(match e {
            StoreError::UniqueViolation { .. } => {
                drop(uow);
                conflict(s, p, &after.phone).await?
            }
            e => e.into(),
        });
    }
    let after = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("contact.updated")
            .target("contact", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after)))
            .metadata(json!({ "fields": changed })),
    )
    .await?;
    uow.emit(EventType::ContactUpdated, &ContactView::from(&after))
        .await?;
    uow.commit().await?;
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
    let tenant = p.tenant_scope()?.tenant_id();
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("contact"))?;
    // The media rows go first, returning their files' keys (see `delete_of_contact` for the
    // race with a download being recorded; `whatsapp::media` covers the other order).
    let files = palisade_store::media::delete_of_contact(uow.tx(), id).await?;
    // Its tickets go too (they are about the contact, and hold its conversation).
    let (tickets, ticket_files) = palisade_store::tickets::delete_of_contact(uow.tx(), id).await?;
    let erased = store::delete(uow.tx(), id).await?;
    uow.audit(
        uow.entry("contact.deleted")
            .target("contact", id)
            .change(Some(audit_json(&before)), None)
            .metadata(json!({
                "conversations": erased.conversations, "messages": erased.messages,
                "queued_sends": erased.queued_sends, "media_files": files.len(),
                "deals": erased.deals, "tickets": tickets,
                "ticket_files": ticket_files.len(),
            })),
    )
    .await?;
    let gone = DeletedContact {
        contact: ContactView::from(&before),
        deleted: true,
    };
    uow.emit(EventType::ContactDeleted, &gone).await?;
    // The erasure covers the downloaded media too, and the answer comes once the files are
    // gone. A file that cannot be removed then is logged (by key, never by content) and the
    // erasure still stands in the database.
    for sha in ticket_files {
        uow.after_commit_async(
            "could not remove an erased contact's ticket file",
            async move {
                s.storage
                    .delete(tenant, &sha)
                    .await
                    .map_err(|e| anyhow::anyhow!("contact {id}, ticket file {sha}: {e}"))
            },
        );
    }
    for key in files {
        uow.after_commit_async(
            "could not remove an erased contact's media file",
            async move {
                s.storage
                    .delete(tenant, &key)
                    .await
                    .map_err(|e| anyhow::anyhow!("contact {id}, file {key}: {e}"))
            },
        );
    }
    uow.commit().await
}
