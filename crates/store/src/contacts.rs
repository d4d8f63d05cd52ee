//! Contact records: read and written by users and API keys under their [`TenantScope`], and
//! their marketing consent changed by keywords in inbound messages (system work for the
//! connection's tenant, bound into every statement). Inbound processing creates contacts with
//! `upsert_contacts`.
//!
//! Rows are private ([`ContactRow`]) and come out as the domain's [`Contact`]; values are taken
//! as stored (`from_stored`), so an older row never fails a read.
//!
//! Consent is stored as the current state (the migration's CHECK keeps it consistent): opted
//! in (`marketing_opt_in`, `opted_in_at`), opted out (`opted_out_at`, `opt_out_source`), or
//! neither. Its rules are the domain's ([`Consent`]); this module only stores the result.
//! Deleting a contact erases its conversations, messages, queued sends and deals with it.

use crate::{Query, Result, Scope, SystemScope, TenantScope, Tx};
use palisade_domain::{
    Consent, Contact, ContactId, CustomAttributes, EmailAddress, OptOutSource, PersonName,
    PhoneNumber, Tags, TenantId,
};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
struct ContactRow {
    id: Uuid,
    tenant_id: Uuid,
    phone: String,
    wa_id: Option<String>,
    name: Option<String>,
    wa_profile_name: Option<String>,
    email: Option<String>,
    tags: Json<Vec<String>>,
    custom_attributes: Json<serde_json::Map<String, serde_json::Value>>,
    marketing_opt_in: bool,
    opted_in_at: Option<OffsetDateTime>,
    opted_out_at: Option<OffsetDateTime>,
    opt_out_source: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<ContactRow> for Contact {
    fn from(r: ContactRow) -> Self {
        // The CHECK allows only the three states below, and an opt-out source of `api` or
        // `keyword`; the fallbacks keep a read from failing should a row ever slip past it
        // (an unknown source reads as `api`, an opt-in without its time as never asked).
        let consent = match (r.opted_out_at, r.marketing_opt_in, r.opted_in_at) {
            (Some(at), _, _) => Consent::OptedOut {
                at,
                source: r
                    .opt_out_source
                    .as_deref()
                    .and_then(OptOutSource::parse)
                    .unwrap_or(OptOutSource::Api),
            },
            (None, true, Some(at)) => Consent::OptedIn { at },
            _ => Consent::Unknown,
        };
        Contact {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            phone: PhoneNumber::from_stored(r.phone),
            wa_id: r.wa_id,
            name: r.name.map(PersonName::from_stored),
            wa_profile_name: r.wa_profile_name,
            email: r.email.map(EmailAddress::from_stored),
            tags: Tags::from_stored(r.tags.0),
            custom_attributes: CustomAttributes::from_stored(r.custom_attributes.0),
            consent,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn one(row: Option<ContactRow>) -> Option<Contact> {
    row.map(Contact::from)
}

fn all(rows: Vec<ContactRow>) -> Vec<Contact> {
    rows.into_iter().map(Contact::from).collect()
}

const COLUMNS: &str = "id, tenant_id, phone, wa_id, name, wa_profile_name, email, tags, \
    custom_attributes, marketing_opt_in, opted_in_at, opted_out_at, opt_out_source, \
    created_at, updated_at";

/// What a list (or an export) is narrowed to. `q` is matched as given: the caller lower-cases
/// it and passes the digits separately for the phone.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Substring of the name, WhatsApp profile name or email (lower-case).
    pub q: Option<String>,
    /// Substring of the phone's digits.
    pub q_digits: Option<String>,
    /// A normalised tag the contact has.
    pub tag: Option<String>,
    /// Only contacts that are (true) or are not (false) opted out.
    pub opted_out: Option<bool>,
    /// The last id of the previous page (newest first).
    pub before_id: Option<ContactId>,
    pub limit: i64,
}

/// `s` as a `LIKE … ESCAPE '\\'` pattern matching it anywhere (also used by tickets).
pub(crate) fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Contacts matching `f`, newest first.
pub async fn list(tx: &mut Tx<TenantScope>, f: &ContactFilter) -> Result<Vec<Contact>> {
    let tenant = tx.scope().tenant_id();
    // PostgreSQL answers tag containment from a GIN index.
    let (tag_clause, tag_arg) =
        crate::query::json_array_has(tx.backend(), "contacts.tags", 6, f.tag.as_deref());
    let mut q = Query::new(format!(
        "SELECT {COLUMNS} FROM contacts
         WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
           AND ($3 IS NULL OR LOWER(COALESCE(name, '')) LIKE $3 ESCAPE '\\'
                OR LOWER(COALESCE(wa_profile_name, '')) LIKE $3 ESCAPE '\\'
                OR COALESCE(email, '') LIKE $3 ESCAPE '\\'
                OR ($4 IS NOT NULL AND phone LIKE $4 ESCAPE '\\'))
           AND ($5 IS NULL OR (opted_out_at IS NOT NULL) = $5)
           AND {tag_clause}
         ORDER BY id DESC LIMIT $7"
    ))
    .bind(tenant)
    .bind(f.before_id)
    .bind(f.q.as_deref().map(like_pattern))
    .bind(f.q_digits.as_deref().map(like_pattern))
    .bind(f.opted_out);
    q.args.push(tag_arg);
    Ok(all(tx.fetch_all(q.bind(f.limit)).await?))
}

pub async fn find(tx: &mut Tx<TenantScope>, id: ContactId) -> Result<Option<Contact>> {
    let tenant = tx.scope().tenant_id();
    Ok(one(tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?))
}

/// [`find`], locking the row until the transaction ends, for a read-modify-write ([`update`]
/// writes back every field). On PostgreSQL (READ COMMITTED) a writer that read before another
/// committed would otherwise write back what it read: a name edit undoing a concurrent tag edit,
/// or a "STOP" opt-out recorded by inbound processing ([`write_consent`]). `FOR UPDATE` makes it
/// wait and read the committed row. On SQLite write transactions already run one at a time.
pub async fn find_for_update(tx: &mut Tx<TenantScope>, id: ContactId) -> Result<Option<Contact>> {
    let tenant = tx.scope().tenant_id();
    let lock = match tx.backend() {
        crate::Backend::Postgres => "FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    Ok(one(tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?))
}

/// The tenant's contacts with these ids, in id order (system work such as inbound processing,
/// or a tenant's own page of rows).
pub async fn find_many<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    ids: &[ContactId],
) -> Result<Vec<Contact>> {
    let ids: Vec<Uuid> = ids.iter().map(ContactId::as_uuid).collect();
    let mut out = Vec::with_capacity(ids.len());
    let db = tx.backend();
    for chunk in crate::query::member_chunks(db, &ids) {
        let q = Query::new(format!(
            "SELECT {COLUMNS} FROM contacts WHERE {} AND {} ORDER BY id",
            crate::query::tenant_is(db, "tenant_id", 1),
            crate::query::member_of(db, "id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        out.extend(all(tx.fetch_all::<ContactRow>(q).await?));
    }
    Ok(out)
}

pub async fn find_by_phone(
    tx: &mut Tx<TenantScope>,
    phone: &PhoneNumber,
) -> Result<Option<Contact>> {
    let tenant = tx.scope().tenant_id();
    Ok(one(tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM contacts WHERE tenant_id = $1 AND phone = $2"
            ))
            .bind(tenant)
            .bind(phone.as_str()),
        )
        .await?))
}

/// The statement that inserts `c` for `tenant`, followed by `on_conflict` (empty or an
/// `ON CONFLICT` clause).
fn insert_statement(tenant: TenantId, c: &Contact, on_conflict: &str) -> Query {
    Query::new(format!(
        "INSERT INTO contacts ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) {on_conflict}"
    ))
    .bind(c.id)
    .bind(tenant)
    .bind(c.phone.as_str())
    .bind(c.wa_id.clone())
    .bind(c.name.as_ref().map(PersonName::as_str))
    .bind(c.wa_profile_name.clone())
    .bind(c.email.as_ref().map(EmailAddress::as_str))
    .bind(serde_json::json!(c.tags.as_slice()))
    .bind(serde_json::Value::Object(
        c.custom_attributes.as_map().clone(),
    ))
    .bind(c.consent.marketing_opt_in())
    .bind(c.consent.opted_in_at())
    .bind(c.consent.opted_out_at())
    .bind(c.consent.opt_out_source().map(OptOutSource::as_str))
    .bind(c.created_at)
    .bind(c.updated_at)
}

/// Inserts `c` (its `tenant_id` is the scope's, whatever the record says). A phone the tenant
/// already has is a unique violation.
pub async fn insert(tx: &mut Tx<TenantScope>, c: &Contact) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(insert_statement(tenant, c, "")).await?;
    Ok(())
}

/// Inserts `c` unless the tenant has a contact with its phone already, and returns the
/// tenant's contact with that phone (`c`, or the one that was there) and whether it was
/// inserted. Two inserts of one phone at once: on PostgreSQL the second waits for the first
/// and then finds its row; on SQLite writers run one at a time.
pub async fn insert_or_find_by_phone(
    tx: &mut Tx<TenantScope>,
    c: &Contact,
) -> Result<(Contact, bool)> {
    let tenant = tx.scope().tenant_id();
    let n = tx
        .execute(insert_statement(
            tenant,
            c,
            "ON CONFLICT (tenant_id, phone) DO NOTHING",
        ))
        .await?;
    let found = find_by_phone(tx, &c.phone).await?.ok_or_else(|| {
        crate::StoreError::Integrity(format!("no contact with phone {} after an insert", c.id))
    })?;
    Ok((found, n > 0))
}

/// Writes every editable field of `c` (and the WhatsApp id and profile name, which a phone
/// change clears). A phone another contact has is a unique violation.
pub async fn update(tx: &mut Tx<TenantScope>, c: &Contact) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE contacts SET phone = $3, name = $4, email = $5, tags = $6,
                 custom_attributes = $7, marketing_opt_in = $8, opted_in_at = $9,
                 opted_out_at = $10, opt_out_source = $11, updated_at = $12,
                 wa_id = $13, wa_profile_name = $14
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(c.id)
        .bind(c.phone.as_str())
        .bind(c.name.as_ref().map(PersonName::as_str))
        .bind(c.email.as_ref().map(EmailAddress::as_str))
        .bind(serde_json::json!(c.tags.as_slice()))
        .bind(serde_json::Value::Object(
            c.custom_attributes.as_map().clone(),
        ))
        .bind(c.consent.marketing_opt_in())
        .bind(c.consent.opted_in_at())
        .bind(c.consent.opted_out_at())
        .bind(c.consent.opt_out_source().map(OptOutSource::as_str))
        .bind(c.updated_at)
        .bind(c.wa_id.clone())
        .bind(c.wa_profile_name.clone()),
    )
    .await?;
    Ok(())
}

/// What deleting a contact erased with it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Erased {
    pub conversations: u64,
    pub messages: u64,
    pub queued_sends: u64,
    pub deals: u64,
}

/// Deletes a contact with its conversations, their messages (inbound, outbound and notes) and
/// any of those still waiting in the send queue. A sender that already claimed one of them
/// finds the message gone and drops it.
pub async fn delete(tx: &mut Tx<TenantScope>, id: ContactId) -> Result<Erased> {
    let tenant = tx.scope().tenant_id();
    let of_contact = "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2";
    let queued_sends = tx
        .execute(
            Query::new(format!(
                "DELETE FROM whatsapp_outbound_queue WHERE tenant_id = $1 AND message_id IN (
                    SELECT id FROM messages WHERE tenant_id = $1 AND conversation_id IN ({of_contact}))"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let messages = tx
        .execute(
            Query::new(format!(
                "DELETE FROM messages WHERE tenant_id = $1 AND conversation_id IN ({of_contact})"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    tx.execute(
        Query::new(format!(
            "DELETE FROM conversation_labels WHERE tenant_id = $1 AND conversation_id IN ({of_contact})"
        ))
        .bind(tenant)
        .bind(id),
    )
    .await?;
    let conversations = tx
        .execute(
            Query::new("DELETE FROM conversations WHERE tenant_id = $1 AND contact_id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    // The contact's deals (and their stage histories) go with it, and the shops' orders.
    let deals = crate::deals::delete_of_contact(tx, id).await?;
    crate::integrations::delete_orders_of_contact(tx, id).await?;
    tx.execute(
        Query::new("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    Ok(Erased {
        conversations,
        messages,
        queued_sends,
        deals,
    })
}

/// The contact of `conversation_id`, locked until the transaction ends (see
/// [`find_for_update`]), for a consent keyword in one of its messages (system work: inbound
/// processing).
pub async fn find_by_conversation_for_update(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    conversation_id: palisade_domain::ConversationId,
) -> Result<Option<Contact>> {
    let lock = match tx.backend() {
        crate::Backend::Postgres => "FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    Ok(one(tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM contacts
                 WHERE tenant_id = $1
                   AND id = (SELECT contact_id FROM conversations WHERE tenant_id = $1 AND id = $2)
                 {lock}"
            ))
            .bind(tenant)
            .bind(conversation_id),
        )
        .await?))
}

/// Writes a contact's consent (decided by [`Consent::apply_keyword`]) as of `now`, and returns
/// the contact as stored (PostgreSQL keeps microseconds).
pub async fn write_consent(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    id: ContactId,
    consent: Consent,
    now: OffsetDateTime,
) -> Result<Option<Contact>> {
    Ok(one(tx
        .fetch_optional(
            Query::new(format!(
                "UPDATE contacts SET marketing_opt_in = $3, opted_in_at = $4, opted_out_at = $5,
                     opt_out_source = $6, updated_at = $7
                 WHERE tenant_id = $1 AND id = $2
                 RETURNING {COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(consent.marketing_opt_in())
            .bind(consent.opted_in_at())
            .bind(consent.opted_out_at())
            .bind(consent.opt_out_source().map(OptOutSource::as_str))
            .bind(now),
        )
        .await?))
}

// ---- contacts that inbound messages create ----

pub use inbound::{upsert_contacts, Sender, UpsertedContacts};

/// The contact upsert of inbound processing (system work for the connection's tenant). Its own
/// module with its own imports, so the code above can change without touching it.
mod inbound {
    use crate::query::{member_chunks, member_of};
    use crate::{Backend, Query, Result, SystemScope, Tx};
    use palisade_domain::{ContactId, TenantId};
    use std::collections::{HashMap, HashSet};
    use time::OffsetDateTime;
    use uuid::Uuid;

    /// A customer seen in an inbound webhook (see [`upsert_contacts`]).
    #[derive(Debug, Clone)]
    pub struct Sender {
        /// E.164 (`+` and digits).
        pub phone: String,
        /// WhatsApp's id of the customer (the digits Meta sends as `from`).
        pub wa_id: String,
        pub profile_name: Option<String>,
    }

    /// The contacts with these phone numbers, created if new; a changed WhatsApp profile name
    /// is recorded, and a contact created by hand gets its WhatsApp id. The senders' contacts
    /// are read first (by the `(tenant_id, phone)` key, held against deletion until commit on
    /// PostgreSQL): one whose row would not change is not written again (a customer's every
    /// message used to rewrite their contact, a new row version and its WAL each time); the
    /// others go through one multi-row upsert per 100 senders, which also settles a contact
    /// created or erased meanwhile. Rows are written in phone order, so concurrent processors
    /// lock them in one order.
    pub async fn upsert_contacts(
        tx: &mut Tx<SystemScope>,
        tenant: TenantId,
        senders: &[Sender],
        now: OffsetDateTime,
    ) -> Result<UpsertedContacts> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            phone: String,
            name: Option<String>,
            wa_profile_name: Option<String>,
        }
        let mut ids = HashMap::with_capacity(senders.len());
        let mut names = HashMap::with_capacity(senders.len());
        let mut created = Vec::new();
        let mut senders: Vec<&Sender> = senders.iter().collect();
        senders.sort_unstable_by(|a, b| a.phone.cmp(&b.phone));
        senders.dedup_by(|a, b| a.phone == b.phone);
        let known = known_contacts(tx, tenant, &senders).await?;
        senders.retain(|c| match known.get(&c.phone) {
            // Nothing to record: it has its WhatsApp id and this profile name (or none came).
            Some(k)
                if k.wa_id.is_some()
                    && (c.profile_name.is_none() || c.profile_name == k.wa_profile_name) =>
            {
                ids.insert(c.phone.clone(), ContactId::from(k.id));
                names.insert(
                    ContactId::from(k.id),
                    k.name.clone().or_else(|| k.wa_profile_name.clone()),
                );
                false
            }
            _ => true,
        });
        let postgres = tx.backend() == Backend::Postgres;
        // PostgreSQL: every row in one `unnest` statement; SQLite: `VALUES` of 100 rows.
        let size = if postgres { senders.len().max(1) } else { 100 };
        for chunk in senders.chunks(size) {
            // A row that comes back with the id proposed for it was inserted; an existing contact
            // keeps its own.
            let new_ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
            let source = if postgres {
                "SELECT u.id, $1, u.phone, u.wa_id, NULL, u.name, $2, $2
                 FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[]) AS u(id, phone, wa_id, name)"
                    .to_owned()
            } else {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = i * 4 + 3;
                        format!(
                            "(${}, $1, ${}, ${}, NULL, ${}, $2, $2)",
                            b,
                            b + 1,
                            b + 2,
                            b + 3
                        )
                    })
                    .collect();
                format!("VALUES {}", rows.join(", "))
            };
            let mut q = Query::new(format!(
                "INSERT INTO contacts (id, tenant_id, phone, wa_id, name, wa_profile_name, created_at, updated_at)
                 {source}
                 ON CONFLICT (tenant_id, phone) DO UPDATE SET
                     wa_profile_name = COALESCE(excluded.wa_profile_name, contacts.wa_profile_name),
                     wa_id = COALESCE(contacts.wa_id, excluded.wa_id),
                     updated_at = CASE WHEN contacts.wa_id IS NULL
                                         OR (excluded.wa_profile_name IS NOT NULL
                                             AND (contacts.wa_profile_name IS NULL
                                                  OR contacts.wa_profile_name <> excluded.wa_profile_name))
                                       THEN excluded.updated_at ELSE contacts.updated_at END
                 RETURNING id, phone, name, wa_profile_name"
            ))
            .bind(tenant)
            .bind(now);
            if postgres {
                q = q
                    .bind(new_ids.clone())
                    .bind(
                        chunk
                            .iter()
                            .map(|c| Some(c.phone.clone()))
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        chunk
                            .iter()
                            .map(|c| Some(c.wa_id.clone()))
                            .collect::<Vec<_>>(),
                    )
                    .bind(
                        chunk
                            .iter()
                            .map(|c| c.profile_name.clone())
                            .collect::<Vec<_>>(),
                    );
            } else {
                for (c, id) in chunk.iter().zip(&new_ids) {
                    q = q
                        .bind(*id)
                        .bind(c.phone.as_str())
                        .bind(c.wa_id.as_str())
                        .bind(c.profile_name.as_deref());
                }
            }
            let fresh: HashSet<&Uuid> = new_ids.iter().collect();
            for r in tx.fetch_all::<Row>(q).await? {
                if fresh.contains(&r.id) {
                    created.push(ContactId::from(r.id));
                }
                names.insert(ContactId::from(r.id), r.name.or(r.wa_profile_name));
                ids.insert(r.phone, ContactId::from(r.id));
            }
        }
        Ok(UpsertedContacts {
            ids,
            names,
            created,
        })
    }

    /// A sender's contact as [`upsert_contacts`] compares it.
    #[derive(sqlx::FromRow)]
    struct Known {
        id: Uuid,
        phone: String,
        wa_id: Option<String>,
        name: Option<String>,
        wa_profile_name: Option<String>,
    }

    /// The senders' existing contacts by phone, each looked up by the `(tenant_id, phone)` key.
    /// On PostgreSQL one key probe per phone (`LATERAL`: a plain `phone = ANY(…)` lets a planner
    /// without statistics read the whole tenant through another index), each row held against
    /// deletion (`FOR KEY SHARE`, which concurrent processors share) until the batch commits,
    /// so the messages written for it still find it.
    async fn known_contacts(
        tx: &mut Tx<SystemScope>,
        tenant: TenantId,
        senders: &[&Sender],
    ) -> Result<HashMap<String, Known>> {
        let db = tx.backend();
        let phones: Vec<String> = senders.iter().map(|c| c.phone.clone()).collect();
        let mut known = HashMap::with_capacity(phones.len());
        for chunk in member_chunks(db, &phones) {
            let sql = match db {
                Backend::Postgres => "SELECT c.id, c.phone, c.wa_id, c.name, c.wa_profile_name
                     FROM unnest($2::text[]) AS p(phone), LATERAL (
                         SELECT id, phone, wa_id, name, wa_profile_name FROM contacts
                         WHERE tenant_id = $1 AND phone = p.phone FOR KEY SHARE) c"
                    .to_owned(),
                Backend::Sqlite => format!(
                    "SELECT id, phone, wa_id, name, wa_profile_name FROM contacts
                     WHERE tenant_id = $1 AND {}",
                    member_of(db, "phone", 2, chunk.len())
                ),
            };
            let q = Query::new(sql).bind(tenant).bind_members(db, chunk);
            for k in tx.fetch_all::<Known>(q).await? {
                known.insert(k.phone.clone(), k);
            }
        }
        Ok(known)
    }

    /// What [`upsert_contacts`] did.
    #[derive(Debug, Default)]
    pub struct UpsertedContacts {
        /// Phone → contact id, for every sender.
        pub ids: HashMap<String, ContactId>,
        /// Each of those contacts' name as lists show it (its own, else the WhatsApp profile
        /// name), as this transaction left it: a conversation's event carries it without
        /// reading the contact again.
        pub names: HashMap<ContactId, Option<String>>,
        /// The contacts it created.
        pub created: Vec<ContactId>,
    }
}
