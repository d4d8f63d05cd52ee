//! Broadcast campaigns: one approved template of a WhatsApp connection sent to an audience of
//! contacts, paced per connection.
//!
//! Admins (and API keys with `campaigns:write`) create and edit drafts, then start, pause,
//! resume and cancel them (`campaigns.write`); admins and agents read them and their recipients
//! (`campaigns.read`); admins delete them (`campaigns.delete`, never while running). The
//! template must be a stored template of the connection, `APPROVED` in that language, given
//! exactly one parameter per variable (header variables first, then the body's), checked at
//! create, edit and start (`422 template_*`).
//!
//! Starting materialises the audience into recipients in the start's unit of work: each
//! targeted contact `pending`, or `skipped` with the reason (`opted_out`; for a MARKETING
//! template also `no_marketing_consent` unless the contact opted in). UTILITY and
//! AUTHENTICATION templates go to every targeted contact that has not opted out. The
//! dispatcher ([`dispatch`]) then queues the messages at the connection's pace, re-checking
//! consent for each; the sender checks again right before the Graph call.
//!
//! Every state change is audited (`campaign.*`) and emits its event (`campaign.created`,
//! `updated`, `started`, `paused`, `resumed`, `cancelled`, `completed`, `deleted`).

mod actions;
pub mod dispatch;
mod read;
pub mod view;

pub use actions::*;
pub use read::*;

pub use view::{CampaignCountsView, CampaignDeleted, CampaignDetail, CampaignView, RecipientView};

use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::{code, FieldErrors};
use crate::pagination::Page;
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::campaign::{in_future, parse_parameters, Audience};
use palisade_domain::integration::TemplateParameter;
use palisade_domain::{
    CampaignId, CampaignStatus, ConnectionId, ConnectionStatus, ContactId, EventType, FieldError,
    Permission, TemplateCategory,
};
use palisade_store::campaigns::{self as store, Campaign};
use palisade_store::{TenantScope, Tx};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// A new campaign as the API receives it.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub connection_id: Uuid,
    pub template_name: String,
    pub template_language: String,
    pub parameters: Value,
    /// `None`: every contact.
    pub audience: Option<Value>,
    /// RFC 3339.
    pub scheduled_at: Option<String>,
}

/// Changes to a draft or scheduled campaign; `None` leaves a field as it is, `Some(None)`
/// clears `scheduled_at`.
#[derive(Debug, Clone, Default)]
pub struct CampaignPatch {
    pub name: Option<String>,
    pub connection_id: Option<Uuid>,
    pub template_name: Option<String>,
    pub template_language: Option<String>,
    pub parameters: Option<Value>,
    pub audience: Option<Value>,
    pub scheduled_at: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignListQuery {
    pub status: Option<String>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct RecipientQuery {
    pub status: Option<String>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

/// The recipient statuses a list may be narrowed to.
pub const RECIPIENT_STATUSES: [&str; 6] =
    ["skipped", "queued", "sent", "delivered", "read", "failed"];

fn parse_name(raw: &str) -> Result<String, FieldError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(n.to_owned())
}

fn parse_time(raw: &str) -> Result<OffsetDateTime, FieldError> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(|_| {
        FieldError::new(
            "scheduled_at",
            "must be an RFC 3339 time such as 2030-01-31T09:00:00Z",
        )
    })
}

/// What the audit log keeps of a campaign: ids, template and status, not the name or the
/// parameters (free text).
fn audit_json(c: &Campaign) -> Value {
    json!({
        "id": c.id, "connection_id": c.connection_id, "template": c.template_name,
        "language": c.template_language, "status": c.status.as_str(),
        "scheduled_at": c.scheduled_at.map(palisade_domain::rfc3339),
    })
}

/// The connection must be the tenant's (`404` otherwise), and the template a stored template
/// of it, approved in that language, with exactly `parameters.len()` variables. Returns the
/// template's category.
async fn check_template(
    tx: &mut Tx<TenantScope>,
    connection: ConnectionId,
    name: &str,
    language: &str,
    parameters: &[TemplateParameter],
) -> AppResult<TemplateCategory> {
    palisade_store::whatsapp_connections::find(tx, connection)
        .await?
        .ok_or(AppError::NotFound("WhatsApp connection"))?;
    let header = palisade_store::templates::find_by_name(tx, connection, name)
        .await?
        .into_iter()
        .find(|t| t.language == language)
        .map_or(0, |t| t.header_params);
    let placeholders: Vec<String> = parameters.iter().map(|_| "x".to_owned()).collect();
    let components = components(&placeholders, header);
    crate::templates::check_send(tx, connection, name, language, components.as_ref()).await?;
    Ok(
        palisade_store::templates::find_by_name(tx, connection, name)
            .await?
            .into_iter()
            .find(|t| t.language == language)
            .map_or(TemplateCategory::Marketing, |t| t.category),
    )
}

/// Meta's send components for `values`: the first `header` values to the header, the rest to
/// the body.
pub(crate) fn components(values: &[String], header: i64) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let split = usize::try_from(header).unwrap_or(0).min(values.len());
    let (h, b) = values.split_at(split);
    let text = |v: &[String]| {
        v.iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    if !h.is_empty() {
        out.push(json!({"type": "header", "parameters": text(h)}));
    }
    if !b.is_empty() {
        out.push(json!({"type": "body", "parameters": text(b)}));
    }
    Some(Value::Array(out))
}

fn template_fields(name: &str, language: &str, errors: &mut FieldErrors) -> (String, String) {
    let n = errors.check(palisade_domain::template::parse_name("template.name", name));
    let l = errors.check(palisade_domain::template::parse_language(
        "template.language",
        language,
    ));
    (n.unwrap_or_default(), l.unwrap_or_default())
}

fn collect<T>(r: Result<T, Vec<FieldError>>, errors: &mut FieldErrors) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(list) => {
            for e in list {
                errors.push(e);
            }
            None
        }
    }
}

pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    new: NewCampaign,
) -> AppResult<CampaignDetail> {
    p.require(Permission::CampaignsWrite)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let mut errors = FieldErrors::new();
    let name = errors.check(parse_name(&new.name));
    let (template_name, template_language) =
        template_fields(&new.template_name, &new.template_language, &mut errors);
    let parameters = collect(parse_parameters(&new.parameters), &mut errors);
    let audience = match &new.audience {
        None | Some(Value::Null) => Some(Audience::default()),
        Some(a) => collect(Audience::parse(a), &mut errors),
    };
    let scheduled_at = errors.check_some(new.scheduled_at, |t| parse_time(&t));
    let (Some(name), Some(parameters), Some(audience), true) =
        (name, parameters, audience, errors.is_empty())
    else {
        return Err(AppError::validation(errors));
    };
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let connection_id = ConnectionId::from_uuid(new.connection_id);
    check_template(
        uow.tx(),
        connection_id,
        &template_name,
        &template_language,
        &parameters,
    )
    .await?;
    let c = Campaign {
        id: CampaignId::new(),
        tenant_id: tenant,
        name,
        connection_id,
        template_name,
        template_language,
        parameters,
        audience,
        status: CampaignStatus::Draft,
        scheduled_at,
        started_at: None,
        completed_at: None,
        created_by: Some(p.user_id),
        created_at: now,
        updated_at: now,
    };
    store::insert(uow.tx(), &c).await?;
    let c = stored(uow.tx(), c.id).await?;
    uow.audit(
        uow.entry("campaign.created")
            .target("campaign", c.id)
            .change(None, Some(audit_json(&c))),
    )
    .await?;
    uow.emit(EventType::CampaignCreated, &CampaignView::from(&c))
        .await?;
    let detail = detail(uow.tx(), c).await?;
    uow.commit().await?;
    Ok(detail)
}

async fn stored(tx: &mut Tx<TenantScope>, id: CampaignId) -> AppResult<Campaign> {
    Ok(store::find(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the campaign just written is missing"))?)
}

async fn detail(tx: &mut Tx<TenantScope>, campaign: Campaign) -> AppResult<CampaignDetail> {
    let counts = store::counts(tx, campaign.id).await?;
    let failures = store::failures(tx, campaign.id).await?;
    Ok(CampaignDetail {
        campaign,
        counts,
        failures,
    })
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: CampaignId,
    patch: CampaignPatch,
) -> AppResult<CampaignDetail> {
    p.require(Permission::CampaignsWrite)?;
    let mut errors = FieldErrors::new();
    let name = errors.check_some(patch.name, |n| parse_name(&n));
    let template_name = errors.check_some(patch.template_name, |n| {
        palisade_domain::template::parse_name("template.name", &n)
    });
    let template_language = errors.check_some(patch.template_language, |l| {
        palisade_domain::template::parse_language("template.language", &l)
    });
    let parameters = match &patch.parameters {
        None => None,
        Some(v) => collect(parse_parameters(v), &mut errors),
    };
    let audience = match &patch.audience {
        None => None,
        Some(Value::Null) => Some(Audience::default()),
        Some(v) => collect(Audience::parse(v), &mut errors),
    };
    let scheduled_at = patch
        .scheduled_at
        .map(|t| t.and_then(|t| errors.check(parse_time(&t))));
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("campaign"))?;
    if !before.status.editable() {
        return Err(AppError::conflict(
            code::CAMPAIGN_NOT_EDITABLE,
            format!(
                "a {} campaign cannot be edited: only a draft or scheduled campaign can",
                before.status.as_str()
            ),
        ));
    }
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n;
    }
    if let Some(c) = patch.connection_id {
        after.connection_id = ConnectionId::from_uuid(c);
    }
    if let Some(n) = template_name {
        after.template_name = n;
    }
    if let Some(l) = template_language {
        after.template_language = l;
    }
    if let Some(p) = parameters {
        after.parameters = p;
    }
    if let Some(a) = audience {
        after.audience = a;
    }
    if let Some(t) = scheduled_at {
        after.scheduled_at = t;
    }
    let category = check_template(
        uow.tx(),
        after.connection_id,
        &after.template_name,
        &after.template_language,
        &after.parameters,
    )
    .await?;
    if after.status == CampaignStatus::Scheduled {
        // A scheduled campaign's audience was materialised at start: written again from the
        // edited campaign.
        if !in_future(after.scheduled_at, now) {
            return Err(AppError::field(
                "scheduled_at",
                "a scheduled campaign needs a time in the future (pause it, or cancel it)",
            ));
        }
        store::delete_recipients(uow.tx(), id).await?;
        store::materialise(
            uow.tx(),
            id,
            &after.audience,
            category == TemplateCategory::Marketing,
            now,
        )
        .await?;
    }
    after.updated_at = now;
    store::update(uow.tx(), &after).await?;
    let after = stored(uow.tx(), id).await?;
    uow.audit(
        uow.entry("campaign.updated")
            .target("campaign", id)
            .change(Some(audit_json(&before)), Some(audit_json(&after))),
    )
    .await?;
    uow.emit(EventType::CampaignUpdated, &CampaignView::from(&after))
        .await?;
    let detail = detail(uow.tx(), after).await?;
    uow.commit().await?;
    Ok(detail)
}
