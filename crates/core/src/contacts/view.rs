//! The one shape a contact leaves the server in: the REST answer, the `contact.*` webhook
//! events' data and the export (JSON Lines as is, CSV column by column) are all built from
//! [`ContactView`], so they cannot drift apart (a test in `tests/it/contacts/events.rs` keeps
//! them equal).

use palisade_domain::{rfc3339, Contact, OptOutSource};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

// A contact as the API shows it. (A plain comment: a doc comment here would become the schema's
// description, which the served document has never had.)
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ContactResponse)]
pub struct ContactView {
    pub id: Uuid,
    /// E.164 (`+<digits>`), unique in the tenant.
    pub phone: String,
    /// WhatsApp's id of the sender (digits); absent for contacts that have not written.
    pub wa_id: Option<String>,
    pub name: Option<String>,
    /// The name the person set in WhatsApp.
    pub wa_profile_name: Option<String>,
    pub email: Option<String>,
    /// Normalised (trimmed, lower-case), at most 50.
    pub tags: Vec<String>,
    /// A flat object of string, number, boolean or null values.
    #[schema(value_type = Object)]
    pub custom_attributes: Value,
    /// The contact agreed to marketing messages (since `opted_in_at`).
    pub marketing_opt_in: bool,
    /// The contact refused marketing messages (since `opted_out_at`, through `opt_out_source`).
    pub opted_out: bool,
    #[schema(format = DateTime)]
    pub opted_in_at: Option<String>,
    #[schema(format = DateTime)]
    pub opted_out_at: Option<String>,
    /// `api` (someone set `marketing_opt_in: false`) or `keyword` (the contact sent STOP or
    /// another opt-out keyword).
    pub opt_out_source: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Contact> for ContactView {
    fn from(c: &Contact) -> Self {
        ContactView {
            id: c.id.as_uuid(),
            phone: c.phone.as_str().to_owned(),
            wa_id: c.wa_id.clone(),
            name: c.name.as_ref().map(|n| n.as_str().to_owned()),
            wa_profile_name: c.wa_profile_name.clone(),
            email: c.email.as_ref().map(|e| e.as_str().to_owned()),
            tags: c.tags.as_slice().to_vec(),
            custom_attributes: Value::Object(c.custom_attributes.as_map().clone()),
            marketing_opt_in: c.consent.marketing_opt_in(),
            opted_out: c.consent.is_opted_out(),
            opted_in_at: c.consent.opted_in_at().map(rfc3339),
            opted_out_at: c.consent.opted_out_at().map(rfc3339),
            opt_out_source: c
                .consent
                .opt_out_source()
                .map(|s| OptOutSource::as_str(s).to_owned()),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

impl ContactView {
    /// The CSV columns, in order (see [`ContactView::csv_fields`]).
    pub const CSV_HEADER: &'static str = "id,phone,name,wa_profile_name,email,tags,custom_attributes,marketing_opt_in,opted_out,opted_in_at,opted_out_at,opt_out_source,wa_id,created_at,updated_at";

    /// The values of a CSV row, in the order of [`ContactView::CSV_HEADER`]: tags joined with
    /// `;`, attributes as compact JSON, absent values empty.
    pub fn csv_fields(&self) -> [String; 15] {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            self.id.to_string(),
            self.phone.clone(),
            opt(&self.name),
            opt(&self.wa_profile_name),
            opt(&self.email),
            self.tags.join(";"),
            self.custom_attributes.to_string(),
            self.marketing_opt_in.to_string(),
            self.opted_out.to_string(),
            opt(&self.opted_in_at),
            opt(&self.opted_out_at),
            opt(&self.opt_out_source),
            opt(&self.wa_id),
            self.created_at.clone(),
            self.updated_at.clone(),
        ]
    }

    /// The CSV column of the phone: validated E.164 (`+` and digits), which cannot carry a
    /// formula, so the export quotes it without the formula prefix and other systems import
    /// the number as it is.
    pub const CSV_PHONE_COLUMN: usize = 1;
}
