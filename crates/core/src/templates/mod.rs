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

pub mod view;

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

/// The connection a template request names: one of the tenant's (`422` on `connection_id`
/// otherwise, as for a deal's contact) and active (`409 connection_disconnected`).
async fn active_connection(tx: &mut Tx<TenantScope>, id: Uuid) -> AppResult<Connection> {
    let c = connections::find(tx, ConnectionId::from_uuid(id))
        .await?
        .ok_or_else(|| {
            AppError::field(
                "connection_id",
                "must be a WhatsApp connection of this tenant",
            )
        })?;
    if c.status != ConnectionStatus::Active {
        return Err(AppError::conflict(
            code::CONNECTION_DISCONNECTED,
            "the WhatsApp connection is disconnected",
        ));
    }
    Ok(c)
}

fn access_token(s: &Services, c: &Connection) -> AppResult<String> {
    let token = s
        .keys
        .encryption
        .decrypt(&c.access_token_ciphertext, &secret_aad(c, "access_token"))
        .map_err(|e| anyhow::anyhow!("access token of connection {}: {e:?}", c.id))?;
    Ok(String::from_utf8(token)
        .map_err(|_| anyhow::anyhow!("access token of connection {} is not UTF-8", c.id))?)
}

/// Meta's refusal as a `422 meta_refused` carrying Meta's code and explanation; Meta out of
/// reach as a `503`.
fn meta_error(what: &str, e: GraphError) -> AppError {
    match e {
        GraphError::Api {
            code,
            message,
            details,
            ..
        } => AppError::Unprocessable {
            code: code::META_REFUSED,
            message: format!(
                "Meta refused to {what} (error {code}): {}",
                details.unwrap_or(message)
            ),
        },
        GraphError::Transport(why) => {
            tracing::warn!(error = %why, "WhatsApp Graph API unreachable for templates");
            AppError::Unavailable {
                message: "the WhatsApp Graph API could not be reached; try again shortly".into(),
                retry_after_secs: 5,
            }
        }
    }
}

fn quality_of(m: &MetaTemplate) -> Option<String> {
    let q = m.quality_score.as_ref()?;
    q.get("score")
        .and_then(Value::as_str)
        .or(q.as_str())
        .map(str::to_owned)
}

fn reason_of(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("NONE"))
        .map(|r| r.chars().take(500).collect())
}

/// Tells the tenant's admins that a template can no longer be sent.
async fn notify_attention<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    t: &Template,
    now: OffsetDateTime,
) -> AppResult<()> {
    let admins = notifications::tenant_admins(tx, tenant, None).await?;
    let status = t.status.as_str().to_ascii_lowercase();
    let reason = t
        .rejection_reason
        .as_deref()
        .map(|r| format!(" Meta's reason: {r}."))
        .unwrap_or_default();
    notifications::notify(
        tx,
        tenant,
        &admins,
        &NewNotification {
            kind: "template.attention",
            title: format!("Template {} ({}) is {status}", t.name, t.language),
            body: format!(
                "Meta marked the message template {} ({}) {}; it cannot be sent until it is \
                 approved again.{reason}",
                t.name,
                t.language,
                t.status.as_str()
            ),
            data: json!({
                "template_id": t.id, "name": t.name, "language": t.language,
                "status": t.status.as_str(), "reason": t.rejection_reason,
            }),
            target: Some(("template", t.id.as_uuid())),
        },
        now,
    )
    .await?;
    Ok(())
}

/// Reads every page of a connection's templates from Meta.
async fn fetch_all(s: &Services, c: &Connection) -> AppResult<Vec<MetaTemplate>> {
    let token = access_token(s, c)?;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = s
            .graph
            .list_templates(&token, &c.waba_id, after.as_deref())
            .await
            .map_err(|e| meta_error("list the templates", e))?;
        out.extend(page.data);
        let paging = page.paging.unwrap_or_default();
        match (paging.next, paging.cursors.and_then(|c| c.after)) {
            (Some(_), Some(cursor)) => after = Some(cursor),
            _ => return Ok(out),
        }
    }
    tracing::warn!(connection = %c.id, "template sync stopped after {MAX_PAGES} pages");
    Ok(out)
}

/// Pulls every template of the connection's WABA from Meta and makes the stored ones match.
pub async fn sync(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    connection_id: Uuid,
) -> AppResult<TemplateSyncView> {
    p.require(Permission::TemplatesManage)?;
    let conn = {
        let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
        active_connection(&mut tx, connection_id).await?
    };
    let fetched = fetch_all(s, &conn).await?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let tenant = p.tenant_scope()?.tenant_id();
    // Two syncs (and Meta's template webhooks) of one connection run one after the other.
    if !store::lock_connection(uow.tx(), tenant, conn.id).await? {
        return Err(AppError::NotFound("WhatsApp connection"));
    }
    let now = uow.now();
    let stored = store::list_of_connection(uow.tx(), conn.id).await?;
    let mut by_key: HashMap<(String, String), Template> = stored
        .into_iter()
        .map(|t| ((t.name.clone(), t.language.clone()), t))
        .collect();
    let (mut created, mut updated) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for m in &fetched {
        let key = (m.name.clone(), m.language.clone());
        if !seen.insert(key.clone()) {
            continue;
        }
        let (header_params, body_params) = parameter_counts(&m.components);
        let fresh = Template {
            id: TemplateId::new(),
            tenant_id: tenant,
            connection_id: conn.id,
            waba_id: conn.waba_id.clone(),
            meta_id: m.id.clone(),
            name: m.name.clone(),
            language: m.language.clone(),
            category: TemplateCategory::from_meta(&m.category),
            status: TemplateStatus::parse(&m.status),
            quality_score: quality_of(m),
            rejection_reason: reason_of(m.rejected_reason.as_deref()),
            components: if m.components.is_array() {
                m.components.clone()
            } else {
                json!([])
            },
            header_params,
            body_params,
            synced_at: Some(now),
            created_at: now,
            updated_at: now,
        };
        match by_key.remove(&key) {
            None => {
                store::insert(uow.tx(), &fresh).await?;
                if fresh.status.needs_attention() {
                    notify_attention(uow.tx(), tenant, &fresh, now).await?;
                }
                created.push(fresh);
            }
            Some(before) => {
                let after = Template {
                    id: before.id,
                    created_at: before.created_at,
                    ..fresh
                };
                let changed = after.meta_id != before.meta_id
                    || after.category != before.category
                    || after.status != before.status
                    || after.quality_score != before.quality_score
                    || after.rejection_reason != before.rejection_reason
                    || after.components != before.components;
                let after = if changed {
                    after
                } else {
                    Template {
                        updated_at: before.updated_at,
                        ..after
                    }
                };
                store::update(uow.tx(), &after).await?;
                if changed {
                    if after.status != before.status && after.status.needs_attention() {
                        notify_attention(uow.tx(), tenant, &after, now).await?;
                    }
                    updated.push(after);
                }
            }
        }
    }
    let removed: Vec<Template> = by_key.into_values().collect();
    for t in &removed {
        store::delete(uow.tx(), t.id).await?;
    }
    let result = TemplateSyncView {
        connection_id: conn.id.as_uuid(),
        fetched: fetched.len(),
        created: created.len(),
        updated: updated.len(),
        removed: removed.len(),
    };
    uow.audit(
        uow.entry("template.synced")
            .target("whatsapp_connection", conn.id)
            .metadata(json!({
                "fetched": result.fetched, "created": result.created,
                "updated": result.updated, "removed": result.removed,
            })),
    )
    .await?;
    let views = |list: &[Template]| list.iter().map(TemplateView::from).collect::<Vec<_>>();
    uow.emit_all(EventType::TemplateCreated, &views(&created))
        .await?;
    uow.emit_all(EventType::TemplateUpdated, &views(&updated))
        .await?;
    let gone: Vec<TemplateDeleted> = removed
        .iter()
        .map(|t| TemplateDeleted {
            template: TemplateView::from(t),
            deleted: true,
        })
        .collect();
    uow.emit_all(EventType::TemplateDeleted, &gone).await?;
    uow.commit().await?;
    Ok(result)
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
