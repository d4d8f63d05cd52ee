//! WhatsApp message templates, one row per (connection, name, language), read and written under
//! the caller's [`TenantScope`]: every statement binds the scope's tenant. Meta's template
//! webhooks arrive in the inbound pipeline's system scope: [`find_by_meta_id`] and [`update`]
//! take any scope and bind the template's tenant (refusing one outside a tenant scope).
//!
//! Rows are private and come out as the domain's [`Template`]; the status and category are
//! Meta's open sets, so no stored value is invalid.

use crate::{Query, Result, Scope, StoreError, TenantScope, Tx};
use palisade_domain::{
    ConnectionId, Template, TemplateCategory, TemplateId, TemplateStatus, TenantId,
};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
struct TemplateRow {
    id: Uuid,
    tenant_id: Uuid,
    connection_id: Uuid,
    waba_id: String,
    meta_id: String,
    name: String,
    language: String,
    category: String,
    status: String,
    quality_score: Option<String>,
    rejection_reason: Option<String>,
    components: Json<serde_json::Value>,
    header_params: i64,
    body_params: i64,
    synced_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<TemplateRow> for Template {
    fn from(r: TemplateRow) -> Self {
        Template {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            connection_id: r.connection_id.into(),
            waba_id: r.waba_id,
            meta_id: r.meta_id,
            name: r.name,
            language: r.language,
            category: TemplateCategory::from_meta(&r.category),
            status: TemplateStatus::parse(&r.status),
            quality_score: r.quality_score,
            rejection_reason: r.rejection_reason,
            components: r.components.0,
            header_params: r.header_params,
            body_params: r.body_params,
            synced_at: r.synced_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, tenant_id, connection_id, waba_id, meta_id, name, language, category, \
    status, quality_score, rejection_reason, components, header_params, body_params, synced_at, \
    created_at, updated_at";

fn check_tenant<S: Scope>(tx: &Tx<S>, tenant: TenantId) -> Result<()> {
    match tx.scope().tenant() {
        Some(t) if t != tenant => Err(StoreError::Integrity(
            "template outside the scope's tenant".into(),
        )),
        _ => Ok(()),
    }
}

fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub connection_id: Option<ConnectionId>,
    /// Meta's status, upper case.
    pub status: Option<String>,
    /// Meta's category, upper case.
    pub category: Option<String>,
    /// Part of the name (lower case).
    pub q: Option<String>,
    /// The last id of the previous page (newest first).
    pub before_id: Option<TemplateId>,
    pub limit: i64,
}

/// Templates matching `f`, newest first.
pub async fn list(tx: &mut Tx<TenantScope>, f: &TemplateFilter) -> Result<Vec<Template>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<TemplateRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM message_templates
                 WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
                   AND ($3 IS NULL OR connection_id = $3) AND ($4 IS NULL OR status = $4)
                   AND ($5 IS NULL OR category = $5)
                   AND ($6 IS NULL OR name LIKE $6 ESCAPE '\\')
                 ORDER BY id DESC LIMIT $7"
            ))
            .bind(tenant)
            .bind(f.before_id)
            .bind(f.connection_id)
            .bind(f.status.clone())
            .bind(f.category.clone())
            .bind(f.q.as_deref().map(like_pattern))
            .bind(f.limit),
        )
        .await?;
    Ok(rows.into_iter().map(Template::from).collect())
}

/// Every template of a connection (for a sync), by name and language.
pub async fn list_of_connection(
    tx: &mut Tx<TenantScope>,
    connection: ConnectionId,
) -> Result<Vec<Template>> {
    let rows: Vec<TemplateRow> = tx
        .rows_of(
            "message_templates",
            COLUMNS,
            "connection_id",
            connection,
            "name, language",
        )
        .await?;
    Ok(rows.into_iter().map(Template::from).collect())
}

/// The templates of a connection with this name, in every language.
pub async fn find_by_name(
    tx: &mut Tx<TenantScope>,
    connection: ConnectionId,
    name: &str,
) -> Result<Vec<Template>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<TemplateRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM message_templates
                 WHERE tenant_id = $1 AND connection_id = $2 AND name = $3 ORDER BY language"
            ))
            .bind(tenant)
            .bind(connection)
            .bind(name),
        )
        .await?;
    Ok(rows.into_iter().map(Template::from).collect())
}

async fn find_with(
    tx: &mut Tx<TenantScope>,
    id: TemplateId,
    lock: &str,
) -> Result<Option<Template>> {
    let row: Option<TemplateRow> = tx.find_row("message_templates", COLUMNS, id, lock).await?;
    Ok(row.map(Template::from))
}

pub async fn find(tx: &mut Tx<TenantScope>, id: TemplateId) -> Result<Option<Template>> {
    find_with(tx, id, "").await
}

/// [`find`], locking the row until the transaction ends (a deletion then waits for a
/// concurrent one and finds nothing).
pub async fn find_for_update(tx: &mut Tx<TenantScope>, id: TemplateId) -> Result<Option<Template>> {
    let lock = tx.row_lock();
    find_with(tx, id, lock).await
}

/// The template Meta knows as `meta_id` on a connection of `tenant`, locked for an update.
pub async fn find_by_meta_id<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    connection: ConnectionId,
    meta_id: &str,
) -> Result<Option<Template>> {
    check_tenant(tx, tenant)?;
    let lock = tx.row_lock();
    let row: Option<TemplateRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM message_templates
                 WHERE tenant_id = $1 AND connection_id = $2 AND meta_id = $3 {lock}"
            ))
            .bind(tenant)
            .bind(connection)
            .bind(meta_id),
        )
        .await?;
    Ok(row.map(Template::from))
}

/// Locks the connection's row for a change to its templates until the transaction ends: a sync
/// and Meta's template webhooks of one connection then run one after the other, each taking
/// this lock before any template row (so they never wait for each other's template rows in
/// opposite orders). `FOR NO KEY UPDATE`, which leaves the foreign-key checks of the
/// connection's other writes (`FOR KEY SHARE`: inbound events, messages) unblocked; on SQLite
/// writers already run one at a time. Whether the connection exists.
pub async fn lock_connection<S: Scope>(
    tx: &mut Tx<S>,
    tenant: TenantId,
    connection: ConnectionId,
) -> Result<bool> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[allow(dead_code)]
        id: Uuid,
    }
    check_tenant(tx, tenant)?;
    let lock = match tx.backend() {
        crate::Backend::Postgres => "FOR NO KEY UPDATE",
        crate::Backend::Sqlite => "",
    };
    let row: Option<Locked> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT id FROM whatsapp_connections WHERE tenant_id = $1 AND id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(connection),
        )
        .await?;
    Ok(row.is_some())
}

/// Stores a new template; a second row for the same (connection, name, language) or Meta id is
/// a [`StoreError::UniqueViolation`].
pub async fn insert(tx: &mut Tx<TenantScope>, t: &Template) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO message_templates ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(t.id)
        .bind(tenant)
        .bind(t.connection_id)
        .bind(t.waba_id.as_str())
        .bind(t.meta_id.as_str())
        .bind(t.name.as_str())
        .bind(t.language.as_str())
        .bind(t.category.as_str())
        .bind(t.status.as_str())
        .bind(t.quality_score.clone())
        .bind(t.rejection_reason.clone())
        .bind(t.components.clone())
        .bind(t.header_params)
        .bind(t.body_params)
        .bind(t.synced_at)
        .bind(t.created_at)
        .bind(t.updated_at),
    )
    .await?;
    Ok(())
}

/// Writes everything Meta says about a template (its name, language and connection stay).
pub async fn update<S: Scope>(tx: &mut Tx<S>, t: &Template) -> Result<()> {
    check_tenant(tx, t.tenant_id)?;
    tx.execute(
        Query::new(
            "UPDATE message_templates SET meta_id = $3, waba_id = $4, category = $5, status = $6,
                 quality_score = $7, rejection_reason = $8, components = $9, header_params = $10,
                 body_params = $11, synced_at = $12, updated_at = $13
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(t.tenant_id)
        .bind(t.id)
        .bind(t.meta_id.as_str())
        .bind(t.waba_id.as_str())
        .bind(t.category.as_str())
        .bind(t.status.as_str())
        .bind(t.quality_score.clone())
        .bind(t.rejection_reason.clone())
        .bind(t.components.clone())
        .bind(t.header_params)
        .bind(t.body_params)
        .bind(t.synced_at)
        .bind(t.updated_at),
    )
    .await?;
    Ok(())
}

/// Deletes a template; whether it was there.
pub async fn delete(tx: &mut Tx<TenantScope>, id: TemplateId) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .execute(
            Query::new("DELETE FROM message_templates WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?
        > 0)
}

/// Deletes a connection's templates (part of deleting the connection); returns how many.
pub async fn delete_of_connection(
    tx: &mut Tx<TenantScope>,
    connection: ConnectionId,
) -> Result<u64> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM message_templates WHERE tenant_id = $1 AND connection_id = $2")
            .bind(tenant)
            .bind(connection),
    )
    .await
}
