//! WhatsApp message templates, kept per connection as Meta last described them.
//!
//! Users and API keys read them (`templates.read`: admins and agents; scope `templates:read`),
//! sync a connection's templates from Meta and submit new ones (`templates.manage`: admins;
//! `templates:write`) and delete them (`templates.delete`: admins; `templates:delete`).
//!
//! - **Sync** pages through Meta's list of the connection's WABA (`paging.next`) before any
//!   write, then, in one unit of work holding the connection's row lock (two syncs of one
//!   connection run one after the other), inserts the new ones, updates the changed ones and
//!   deletes the ones Meta no longer has.
//! - **Create** checks the template locally first ([`NewTemplate::parse`]: `422` naming every
//!   failing field, before Meta is called), then submits it to Meta and stores it with Meta's
//!   id and status (`PENDING`). Meta's refusal is `422 meta_refused` with Meta's explanation.
//! - **Delete** deletes it at Meta, then here.
//! - Meta's `message_template_status_update`, `message_template_quality_update` and
//!   `template_category_update` webhooks ([`apply_meta_changes`], from the inbound pipeline)
//!   update the stored template; a template turning `PAUSED`, `REJECTED` or `DISABLED` (by a
//!   webhook or a sync) notifies the tenant's admins in the app.
//! - Sending a template message ([`check_send`]) needs a stored template of that name, in that
//!   language, `APPROVED`, and exactly its number of body and header parameters; otherwise
//!   `422` with a code naming the problem, before anything is queued or sent.
//!
//! Events: `template.created`, `template.updated` (status, category, quality or components
//! changed), `template.deleted`. Audit records keep ids, names, languages and statuses.

mod meta;
pub mod view;

pub use meta::sync;
use meta::{access_token, active_connection, meta_error, notify_attention, reason_of};

pub use view::{TemplateDeleted, TemplateSyncView, TemplateView};

use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::error::code;
use crate::notifications::{self, NewNotification};
use crate::pagination::Page;
use crate::whatsapp::connections::secret_aad;
use crate::whatsapp::graph::{GraphError, MetaTemplate};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::template::parameter_counts;
use palisade_domain::{
    ConnectionId, ConnectionStatus, EventType, FieldError, NewTemplate, Permission, SendRefusal,
    Template, TemplateCategory, TemplateId, TemplateStatus, TenantId,
};
use palisade_store::templates::{self as store, TemplateFilter};
use palisade_store::whatsapp_connections::{self as connections, Connection};
use palisade_store::{Scope, StoreError, SystemScope, TenantScope, Tx};
use serde_json::{json, Value};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many pages of Meta's list are read in one sync (100 templates a page; a WABA
/// holds at most 6,000).
const MAX_PAGES: usize = 100;

/// List filters as the API receives them.
#[derive(Debug, Default, Clone)]
pub struct TemplateListQuery {
    pub connection_id: Option<Uuid>,
    pub status: Option<String>,
    pub category: Option<String>,
    pub q: Option<String>,
    pub cursor: Option<Uuid>,
    pub limit: Option<i64>,
}

/// A new template as the API receives it.
#[derive(Debug, Clone)]
pub struct NewTemplateInput {
    pub connection_id: Uuid,
    pub name: String,
    pub language: String,
    pub category: String,
    pub components: Value,
}

fn audit_json(t: &Template) -> Value {
    json!({
        "id": t.id, "connection_id": t.connection_id, "meta_id": t.meta_id, "name": t.name,
        "language": t.language, "category": t.category.as_str(), "status": t.status.as_str(),
        "quality_score": t.quality_score,
    })
}

pub async fn list(s: &Services, p: &Principal, q: TemplateListQuery) -> AppResult<Page<Template>> {
    p.require(Permission::TemplatesRead)?;
    let mut errors = Vec::new();
    let status = q
        .status
        .map(|raw| TemplateStatus::parse(&raw).as_str().to_owned());
    let category = q.category.and_then(|raw| {
        TemplateCategory::parse("category", &raw)
            .map_err(|e| errors.push(e))
            .ok()
            .map(|c| c.as_str().to_owned())
    });
    let search = q.q.map(|raw| raw.trim().to_ascii_lowercase());
    if search.as_ref().is_some_and(|s| s.chars().count() > 512) {
        errors.push(FieldError::new("q", "must be at most 512 characters"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let f = TemplateFilter {
        connection_id: q.connection_id.map(ConnectionId::from_uuid),
        status,
        category,
        q: search.filter(|s| !s.is_empty()),
        before_id: q.cursor.map(TemplateId::from_uuid),
        limit: limit + 1,
    };
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    let items = store::list(&mut tx, &f).await?;
    Ok(Page::from_overfetch(items, limit, |t| t.id.as_uuid()))
}

pub async fn get(s: &Services, p: &Principal, id: TemplateId) -> AppResult<Template> {
    p.require(Permission::TemplatesRead)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    store::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("template"))
}

/// Checks a new template locally, submits it to Meta, and stores it with Meta's id and status.
pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewTemplateInput,
) -> AppResult<Template> {
    p.require(Permission::TemplatesManage)?;
    let new = NewTemplate::parse(
        &input.name,
        &input.language,
        &input.category,
        &input.components,
    )
    .map_err(AppError::validation)?;
    let tenant = p.tenant_scope()?.tenant_id();
    let conn = {
        let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
        let conn = active_connection(&mut tx, input.connection_id).await?;
        let same = store::find_by_name(&mut tx, conn.id, &new.name).await?;
        if same.iter().any(|t| t.language == new.language) {
            return Err(template_exists(&new));
        }
        conn
    };
    let token = access_token(s, &conn)?;
    let body = json!({
        "name": new.name,
        "language": new.language,
        "category": new.category.as_str(),
        "components": new.components,
    });
    let answer = s
        .graph
        .create_template(&token, &conn.waba_id, &body)
        .await
        .map_err(|e| meta_error("create the template", e))?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let t = Template {
        id: TemplateId::new(),
        tenant_id: tenant,
        connection_id: conn.id,
        waba_id: conn.waba_id.clone(),
        meta_id: answer.id,
        name: new.name.clone(),
        language: new.language.clone(),
        category: answer
            .category
            .as_deref()
            .map_or(new.category.clone(), TemplateCategory::from_meta),
        status: answer
            .status
            .as_deref()
            .map_or(TemplateStatus::Pending, TemplateStatus::parse),
        quality_score: None,
        rejection_reason: None,
        components: new.components.clone(),
        header_params: new.header_params,
        body_params: new.body_params,
        synced_at: None,
        created_at: now,
        updated_at: now,
    };
    store::insert(uow.tx(), &t).await.map_err(|e| match e {
        StoreError::UniqueViolation { .. } => template_exists(&new),
        e => e.into(),
    })?;
    // As stored (PostgreSQL keeps microseconds).
    let t = store::find(uow.tx(), t.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the template just stored is missing"))?;
    uow.audit(
        uow.entry("template.created")
            .target("template", t.id)
            .change(None, Some(audit_json(&t))),
    )
    .await?;
    uow.emit(EventType::TemplateCreated, &TemplateView::from(&t))
        .await?;
    uow.commit().await?;
    Ok(t)
}

fn template_exists(new: &NewTemplate) -> AppError {
    AppError::conflict(
        code::TEMPLATE_EXISTS,
        format!(
            "the connection already has the template {} in {}",
            new.name, new.language
        ),
    )
}

/// Deletes a template at Meta (this language only), then here.
pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: TemplateId,
) -> AppResult<()> {
    p.require(Permission::TemplatesDelete)?;
    let (t, conn) = {
        let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
        let t = store::find(&mut tx, id)
            .await?
            .ok_or(AppError::NotFound("template"))?;
        let conn = active_connection(&mut tx, t.connection_id.as_uuid()).await?;
        (t, conn)
    };
    let token = access_token(s, &conn)?;
    s.graph
        .delete_template(&token, &conn.waba_id, &t.meta_id, &t.name)
        .await
        .map_err(|e| meta_error("delete the template", e))?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let before = store::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("template"))?;
    store::delete(uow.tx(), id).await?;
    uow.audit(
        uow.entry("template.deleted")
            .target("template", id)
            .change(Some(audit_json(&before)), None),
    )
    .await?;
    uow.emit(
        EventType::TemplateDeleted,
        &TemplateDeleted {
            template: TemplateView::from(&before),
            deleted: true,
        },
    )
    .await?;
    uow.commit().await
}

/// What one of Meta's template webhooks says about a template (found by Meta's id).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateChange {
    pub meta_id: String,
    pub change: TemplateChangeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateChangeKind {
    /// `message_template_status_update`: the new status (`event`) and Meta's `reason`.
    Status {
        status: String,
        reason: Option<String>,
    },
    /// `message_template_quality_update`: `new_quality_score`.
    Quality { score: String },
    /// `template_category_update`: `new_category`.
    Category { category: String },
}

/// Applies Meta's template webhooks for one connection, in the inbound pipeline's unit of
/// work: each updates the stored template with that Meta id (a template not stored here is
/// skipped and noted in `notes`: a sync brings it in), audited, with `template.updated`; a
/// template turning paused, rejected or disabled notifies the tenant's admins.
pub async fn apply_meta_changes(
    uow: &mut UnitOfWork<'_, SystemScope>,
    tenant: TenantId,
    connection: ConnectionId,
    changes: Vec<TemplateChange>,
    notes: &mut Vec<String>,
) -> AppResult<()> {
    uow.set_tenant(tenant);
    let now = uow.now();
    // The order a sync takes its locks in: the connection, then its templates.
    store::lock_connection(uow.tx(), tenant, connection).await?;
    for c in changes {
        let Some(before) = store::find_by_meta_id(uow.tx(), tenant, connection, &c.meta_id).await?
        else {
            notes.push(format!(
                "template {} is not stored here (sync the templates)",
                c.meta_id
            ));
            continue;
        };
        let mut after = before.clone();
        match &c.change {
            TemplateChangeKind::Status { status, reason } => {
                after.status = TemplateStatus::parse(status);
                after.rejection_reason = reason_of(reason.as_deref());
            }
            TemplateChangeKind::Quality { score } => {
                after.quality_score = Some(score.trim().to_ascii_uppercase());
            }
            TemplateChangeKind::Category { category } => {
                after.category = TemplateCategory::from_meta(category);
            }
        }
        if after == before {
            // Already known (a sync read it first, or Meta repeated itself).
            continue;
        }
        after.synced_at = Some(now);
        after.updated_at = now;
        store::update(uow.tx(), &after).await?;
        uow.audit(
            uow.entry("template.updated")
                .target("template", after.id)
                .change(Some(audit_json(&before)), Some(audit_json(&after))),
        )
        .await?;
        uow.emit(EventType::TemplateUpdated, &TemplateView::from(&after))
            .await?;
        if after.status != before.status && after.status.needs_attention() {
            notify_attention(uow.tx(), tenant, &after, now).await?;
        }
    }
    Ok(())
}

/// The local check before a template message is queued: a stored template of the connection
/// with this name, in this language, `APPROVED`, given exactly its body and header parameters.
/// `422` with a code naming the problem otherwise.
pub async fn check_send(
    tx: &mut Tx<TenantScope>,
    connection: ConnectionId,
    name: &str,
    language: &str,
    components: Option<&Value>,
) -> AppResult<()> {
    let all = store::find_by_name(tx, connection, name).await?;
    if all.is_empty() {
        return Err(AppError::Unprocessable {
            code: code::TEMPLATE_NOT_FOUND,
            message: format!(
                "this connection has no template named {name}; sync the templates or create it"
            ),
        });
    }
    let Some(t) = all.iter().find(|t| t.language == language) else {
        let have: Vec<&str> = all.iter().map(|t| t.language.as_str()).collect();
        return Err(AppError::Unprocessable {
            code: code::TEMPLATE_LANGUAGE_UNAVAILABLE,
            message: format!(
                "the template {name} does not exist in {language} (it exists in {})",
                have.join(", ")
            ),
        });
    };
    match t.check_send(components) {
        Ok(()) => Ok(()),
        Err(SendRefusal::NotApproved(status)) => Err(AppError::Unprocessable {
            code: code::TEMPLATE_NOT_APPROVED,
            message: format!(
                "the template {name} ({language}) is {status}, not APPROVED, so it cannot be sent"
            ),
        }),
        Err(SendRefusal::ParameterCount(part, expected, given)) => Err(AppError::Unprocessable {
            code: code::TEMPLATE_PARAMETER_MISMATCH,
            message: format!(
                "the template {name} ({language}) takes {expected} {part} parameter(s); {given} given"
            ),
        }),
        Err(SendRefusal::ButtonParameterCount {
            index,
            expected,
            given,
        }) => Err(AppError::Unprocessable {
            code: code::TEMPLATE_PARAMETER_MISMATCH,
            message: format!(
                "the template {name} ({language}) takes {expected} parameter(s) for its URL button \
                 at index {index} (a `button` component with sub_type `url` and that index); \
                 {given} given"
            ),
        }),
    }
}
