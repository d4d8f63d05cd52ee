//! Broadcast campaigns and their recipients.
//!
//! A campaign is written under the caller's [`TenantScope`]. Its audience is materialised into
//! `campaign_recipients` when it starts ([`materialise`], one `INSERT … SELECT`), each row
//! `pending`, or `skipped` with the reason. The dispatcher (system work) finds running
//! campaigns and their pending recipients; each recipient is handed to exactly one unit of
//! work by [`claim_recipient`] (`UPDATE … WHERE status = 'pending'`). A dispatched
//! recipient's status is its message's, read through `message_id`.

mod dispatch;
mod recipients;

pub use dispatch::*;
pub use recipients::*;

use crate::{Backend, Query, Result, StoreError, SystemScope, TenantScope, Tx};
use palisade_domain::campaign::{parameters_from_stored, Audience};
use palisade_domain::integration::TemplateParameter;
use palisade_domain::{
    CampaignId, CampaignStatus, ConnectionId, ContactId, MessageId, TenantId, UserId,
};
use sqlx::types::Json;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use uuid::Uuid;

/// A campaign as stored.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: CampaignId,
    pub tenant_id: TenantId,
    pub name: String,
    pub connection_id: ConnectionId,
    pub template_name: String,
    pub template_language: String,
    pub parameters: Vec<TemplateParameter>,
    pub audience: Audience,
    pub status: CampaignStatus,
    pub scheduled_at: Option<OffsetDateTime>,
    pub started_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    connection_id: Uuid,
    template_name: String,
    template_language: String,
    parameters: Json<serde_json::Value>,
    audience: Json<serde_json::Value>,
    status: String,
    scheduled_at: Option<OffsetDateTime>,
    started_at: Option<OffsetDateTime>,
    completed_at: Option<OffsetDateTime>,
    created_by: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, tenant_id, name, connection_id, template_name, template_language,
    parameters, audience, status, scheduled_at, started_at, completed_at, created_by,
    created_at, updated_at";

impl TryFrom<CampaignRow> for Campaign {
    type Error = StoreError;
    fn try_from(r: CampaignRow) -> Result<Self> {
        Ok(Campaign {
            id: r.id.into(),
            tenant_id: r.tenant_id.into(),
            name: r.name,
            connection_id: r.connection_id.into(),
            template_name: r.template_name,
            template_language: r.template_language,
            parameters: parameters_from_stored(&r.parameters.0),
            audience: Audience::from_stored(&r.audience.0),
            status: CampaignStatus::parse(&r.status).ok_or_else(|| {
                StoreError::Integrity(format!("unknown campaign status {:?}", r.status))
            })?,
            scheduled_at: r.scheduled_at,
            started_at: r.started_at,
            completed_at: r.completed_at,
            created_by: r.created_by.map(Into::into),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn params_json(p: &[TemplateParameter]) -> serde_json::Value {
    serde_json::Value::Array(p.iter().map(TemplateParameter::to_json).collect())
}

pub async fn insert(tx: &mut Tx<TenantScope>, c: &Campaign) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(format!(
            "INSERT INTO campaigns ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(c.id)
        .bind(tenant)
        .bind(c.name.clone())
        .bind(c.connection_id)
        .bind(c.template_name.clone())
        .bind(c.template_language.clone())
        .bind(params_json(&c.parameters))
        .bind(c.audience.to_json())
        .bind(c.status.as_str())
        .bind(c.scheduled_at)
        .bind(c.started_at)
        .bind(c.completed_at)
        .bind(c.created_by)
        .bind(c.created_at)
        .bind(c.updated_at),
    )
    .await?;
    Ok(())
}

/// Writes every editable field and the status and its times.
pub async fn update(tx: &mut Tx<TenantScope>, c: &Campaign) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE campaigns SET name = $3, connection_id = $4, template_name = $5,
                 template_language = $6, parameters = $7, audience = $8, status = $9,
                 scheduled_at = $10, started_at = $11, completed_at = $12, updated_at = $13
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(c.id)
        .bind(c.name.clone())
        .bind(c.connection_id)
        .bind(c.template_name.clone())
        .bind(c.template_language.clone())
        .bind(params_json(&c.parameters))
        .bind(c.audience.to_json())
        .bind(c.status.as_str())
        .bind(c.scheduled_at)
        .bind(c.started_at)
        .bind(c.completed_at)
        .bind(c.updated_at),
    )
    .await?;
    Ok(())
}

async fn find_with(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    lock: &str,
) -> Result<Option<Campaign>> {
    let r: Option<CampaignRow> = tx.find_row("campaigns", COLUMNS, id, lock).await?;
    r.map(Campaign::try_from).transpose()
}

pub async fn find(tx: &mut Tx<TenantScope>, id: CampaignId) -> Result<Option<Campaign>> {
    find_with(tx, id, "").await
}

/// The campaign, locked for a read-modify-write (a row lock on PostgreSQL).
pub async fn find_for_update(tx: &mut Tx<TenantScope>, id: CampaignId) -> Result<Option<Campaign>> {
    let lock = tx.row_lock();
    find_with(tx, id, lock).await
}

/// The tenant's campaigns, newest first, after the cursor (an id), narrowed by status.
pub async fn list(
    tx: &mut Tx<TenantScope>,
    status: Option<CampaignStatus>,
    before: Option<CampaignId>,
    limit: i64,
) -> Result<Vec<Campaign>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<CampaignRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM campaigns
                 WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            ))
            .bind(tenant)
            .bind(status.map(CampaignStatus::as_str))
            .bind(before)
            .bind(limit),
        )
        .await?;
    rows.into_iter().map(Campaign::try_from).collect()
}

/// Deletes the campaign and its recipients (their messages stay in the conversations).
pub async fn delete(tx: &mut Tx<TenantScope>, id: CampaignId) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    Ok(tx
        .execute(
            Query::new("DELETE FROM campaigns WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?
        > 0)
}
