//! `/api/v1/contacts`: reading, creating, editing, erasing and exporting contacts. Pages are
//! `{data, next_cursor}`; pass `next_cursor` back as `cursor`.

use crate::error::{ApiResult, ErrorBody};
use crate::export::{self, CsvCell, ExportFormat, ExportRow};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, Meta};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use palisade_core::contacts::{
    self, ContactFilter, ContactPatch, ContactView, ListQuery, NewContact,
};
use palisade_core::AppError;
// The OpenAPI attributes name the answer by its schema name (`ContactView` is documented as
// `ContactResponse`, the name the served document has always used).
use palisade_core::contacts::ContactView as ContactResponse;
use palisade_domain::ContactId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(export_contacts))
        .routes(routes!(get_contact, update_contact, delete_contact))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// Case-insensitive substring of the name, WhatsApp profile name or email; when it looks
    /// like a phone number, of the phone's digits.
    pub q: Option<String>,
    /// Only contacts with this tag (compared normalised: trimmed, lower-case).
    #[param(
        min_length = 1,
        max_length = 50,
        pattern = r"^[A-Za-z0-9 _.:/-]*[A-Za-z0-9_.:/-][A-Za-z0-9 _.:/-]*$"
    )]
    pub tag: Option<String>,
    /// `true`: only contacts opted out of marketing; `false`: only the others.
    pub opted_out: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–200, default 50 (a value outside is brought within).
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactExportQuery {
    /// `csv` or `jsonl`.
    #[param(value_type = crate::openapi::schemas::ExportFormat, inline)]
    pub format: String,
    /// As for the list.
    pub q: Option<String>,
    /// As for the list.
    #[param(
        min_length = 1,
        max_length = 50,
        pattern = r"^[A-Za-z0-9 _.:/-]*[A-Za-z0-9_.:/-][A-Za-z0-9 _.:/-]*$"
    )]
    pub tag: Option<String>,
    /// As for the list.
    pub opted_out: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPage {
    pub data: Vec<ContactView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContactRequest {
    /// E.164 with the country code: `+` and 8 to 15 digits, the first not 0 (spaces, dashes,
    /// dots and parentheses between them are accepted too, and dropped).
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub phone: String,
    /// 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Each 1–50 letters, digits, spaces or `- _ . : /`; at most 50; stored trimmed,
    /// lower-case and deduplicated.
    #[schema(value_type = Option<Vec<crate::openapi::schemas::Tag>>, inline, max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// A JSON object: at most 50 keys of 1–64 characters, values strings, numbers, booleans or
    /// null (no nested objects or arrays), at most 8 KiB as JSON.
    #[schema(value_type = Option<crate::openapi::schemas::CustomAttributes>, inline)]
    pub custom_attributes: Option<serde_json::Value>,
    /// `true` records an opt-in now, `false` an opt-out (source `api`); absent records
    /// neither.
    pub marketing_opt_in: Option<bool>,
}

/// Changes to a contact: absent fields stay as they are; `null` clears `name`, `email`,
/// `tags` and `custom_attributes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContactRequest {
    /// A new E.164 number (still unique in the tenant); cannot be null.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = String, required = false, pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub phone: Option<Option<String>>,
    /// 1 to 100 characters, no control characters.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, format = Email, max_length = 254)]
    pub email: Option<Option<String>>,
    /// Replaces the tags.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<Vec<crate::openapi::schemas::Tag>>, inline, max_items = 50)]
    pub tags: Option<Option<Vec<String>>>,
    /// Replaces the attributes (not merged).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<crate::openapi::schemas::CustomAttributes>, inline)]
    pub custom_attributes: Option<Option<serde_json::Value>>,
    /// `true` opts in, `false` opts out (source `api`); repeating the current choice keeps
    /// its timestamp.
    pub marketing_opt_in: Option<bool>,
}

/// The tenant's contacts, newest first.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = [])),
    params(ContactQuery),
    responses((status = 200, description = "A page of contacts", body = ContactPage),
        (status = 403, description = "Missing contacts.read (or the API key scope contacts:read)", body = ErrorBody),
        (status = 422, description = "A tag that no contact could have", body = ErrorBody)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> ApiResult<Json<ContactPage>> {
    let page = contacts::list(
        &state.services,
        &p,
        ListQuery {
            q: q.q,
            tag: q.tag,
            opted_out: q.opted_out,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(ContactPage {
        data: page.data.iter().map(ContactView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a contact (audited as `contact.created`; webhook event `contact.created`).
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", security(("bearer" = [])),
    request_body = CreateContactRequest,
    responses((status = 201, description = "The contact", body = ContactResponse),
        (status = 403, description = "Missing contacts.write (or the API key scope contacts:write)", body = ErrorBody),
        (status = 409, description = "contact_exists: the tenant has a contact with this phone (its id is in the message)", body = ErrorBody),
        (status = 422, description = "validation_failed naming phone, name, email, tags or custom_attributes; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn create_contact(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiJson(req): ApiJson<CreateContactRequest>,
) -> ApiResult<(StatusCode, Json<ContactView>)> {
    let c = contacts::create(
        &state.services,
        &p,
        &meta,
        NewContact {
            phone: req.phone,
            name: req.name,
            email: req.email,
            tags: req.tags,
            custom_attributes: req.custom_attributes,
            marketing_opt_in: req.marketing_opt_in,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ContactView::from(&c))))
}

/// One contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Contact id")),
    responses((status = 200, description = "The contact", body = ContactResponse),
        (status = 403, description = "Missing contacts.read", body = ErrorBody),
        (status = 404, description = "No such contact in your tenant", body = ErrorBody)))]
pub async fn get_contact(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ContactView>> {
    let c = contacts::get(&state.services, &p, ContactId::from(id)).await?;
    Ok(Json(ContactView::from(&c)))
}

/// Change a contact (audited as `contact.updated` with the names of the changed fields;
/// webhook event `contact.updated`). A request that changes nothing writes nothing.
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Contact id")),
    request_body = UpdateContactRequest,
    responses((status = 200, description = "The contact", body = ContactResponse),
        (status = 403, description = "Missing contacts.write (or the API key scope contacts:write)", body = ErrorBody),
        (status = 404, description = "No such contact in your tenant", body = ErrorBody),
        (status = 409, description = "contact_exists: another contact has this phone", body = ErrorBody),
        (status = 422, description = "validation_failed naming the field; invalid_body for wrong types or unknown fields", body = ErrorBody)))]
pub async fn update_contact(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateContactRequest>,
) -> ApiResult<Json<ContactView>> {
    let phone = match req.phone {
        Some(None) => {
            return Err(
                AppError::field("phone", "cannot be removed; a contact needs a phone").into(),
            )
        }
        Some(Some(p)) => Some(p),
        None => None,
    };
    let c = contacts::update(
        &state.services,
        &p,
        &meta,
        ContactId::from(id),
        ContactPatch {
            phone,
            name: req.name,
            email: req.email,
            tags: req.tags,
            custom_attributes: req.custom_attributes,
            marketing_opt_in: req.marketing_opt_in,
        },
    )
    .await?;
    Ok(Json(ContactView::from(&c)))
}

/// Erase a contact together with its conversations, their messages and notes, and any of its
/// messages still queued for sending (audited as `contact.deleted` with the counts, without
/// personal data; webhook event `contact.deleted`). Admins, or API keys with `contacts:delete`.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Contact id")),
    responses((status = 204, description = "Erased"),
        (status = 403, description = "Missing contacts.delete (agents; API keys without contacts:delete)", body = ErrorBody),
        (status = 404, description = "No such contact in your tenant", body = ErrorBody)))]
pub async fn delete_contact(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    contacts::delete(&state.services, &p, &meta, ContactId::from(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl ExportRow for ContactView {
    const CSV_HEADER: &'static str = ContactView::CSV_HEADER;

    fn csv_cells(&self) -> Vec<CsvCell> {
        self.csv_fields()
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if i == ContactView::CSV_PHONE_COLUMN {
                    CsvCell::Safe(v)
                } else {
                    CsvCell::Text(v)
                }
            })
            .collect()
    }

    fn cursor(&self) -> Uuid {
        self.id
    }
}

/// Export the matching contacts as CSV (tags joined with `;`, attributes as JSON) or JSON Lines
/// (the API's objects), streamed newest first. Admins, or API keys with `contacts:export`.
/// Audited as `contact.exported`; at most 10 exports per hour per tenant.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "contacts", security(("bearer" = [])),
    params(ContactExportQuery),
    responses((status = 200, description = "The export (text/csv or application/x-ndjson)", content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 400, description = "Unknown format or malformed parameter", body = ErrorBody),
        (status = 403, description = "Missing data.export (agents; API keys without contacts:export)", body = ErrorBody),
        (status = 422, description = "A tag that no contact could have", body = ErrorBody),
        (status = 429, description = "More than 10 exports in an hour", body = ErrorBody)))]
pub async fn export_contacts(
    State(state): State<AppState>,
    Auth(p): Auth,
    Meta(meta): Meta,
    ApiQuery(q): ApiQuery<ContactExportQuery>,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(&q.format)?;
    let f = contacts::start_export(
        &state.services,
        &p,
        &meta,
        &q.format,
        ListQuery {
            q: q.q,
            tag: q.tag,
            opted_out: q.opted_out,
            cursor: None,
            limit: None,
        },
    )
    .await?;
    let services = state.services.clone();
    Ok(export::streamed(format, "contacts", move |cursor| {
        let services = services.clone();
        let p = p.clone();
        let f = ContactFilter {
            before_id: cursor.map(ContactId::from),
            limit: export::PAGE_SIZE,
            ..f.clone()
        };
        async move {
            let page = contacts::export_page(&services, &p, &f).await?;
            Ok(page.iter().map(ContactView::from).collect())
        }
    }))
}
