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
//!
//! Parts: [`view`] (the one JSON shape), [`read`] (list, get, export, a contact's conversations), [`write`] (create,
//! edit, erase) and [`keywords`] (consent keywords and contacts created by inbound messages).
//! The entity and its consent rules are the domain's ([`palisade_domain::Contact`],
//! [`palisade_domain::Consent`]); the rows are the store's.

pub mod keywords;
pub mod read;
pub mod view;
pub mod write;

pub use keywords::{
    announce_created, apply_consent_keywords, normalize_keyword, opt_out_stopped_marketing,
    ConsentKeywords, DEFAULT_OPT_IN_KEYWORDS, DEFAULT_OPT_OUT_KEYWORDS,
};
pub use palisade_store::contacts::ContactFilter;
pub use read::{conversations, export_page, get, get_many, list, start_export, ListQuery};
pub use view::ContactView;
pub use write::{create, delete, update, ContactPatch, NewContact};

use palisade_domain::Contact;
use serde_json::{json, Value};

/// What the audit log keeps of a contact: no personal data (see the module comment).
fn audit_json(c: &Contact) -> Value {
    json!({
        "id": c.id, "marketing_opt_in": c.consent.marketing_opt_in(),
        "opted_out": c.consent.is_opted_out(),
        "opt_out_source": c.consent.opt_out_source().map(palisade_domain::OptOutSource::as_str),
    })
}
