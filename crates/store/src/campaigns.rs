//! Broadcast campaigns and their recipients.
//!
//! A campaign is written under the caller's [`TenantScope`]. Its audience is materialised into
//! `campaign_recipients` when it starts ([`materialise`], one `INSERT … SELECT`), each row
//! `pending`, or `skipped` with the reason. The dispatcher (system work) finds running
//! campaigns and their pending recipients; each recipient is handed to exactly one unit of
//! work by [`claim_recipient`] (`UPDATE … WHERE status = 'pending'`). A dispatched
//! recipient's status is its message's, read through `message_id`.

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
    let tenant = tx.scope().tenant_id();
    let r: Option<CampaignRow> = tx
        .fetch_optional(
            Query::new(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND id = $2 {lock}"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
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

/// Writes the campaign's audience as recipients, in one statement: every contact the audience
/// names, `pending`, or `skipped` with the reason (`opted_out`; for a marketing template also
/// `no_marketing_consent` unless the contact opted in). A recipient already there is kept (a
/// second start of the same campaign adds nothing). Returns how many rows were written.
pub async fn materialise(
    tx: &mut Tx<TenantScope>,
    campaign: CampaignId,
    audience: &Audience,
    marketing: bool,
    now: OffsetDateTime,
) -> Result<u64> {
    let tenant = tx.scope().tenant_id();
    let backend = tx.backend();
    let has_tag = |n: usize| {
        match backend {
        Backend::Postgres => format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text(c.tags) t(v) WHERE t.v = ANY(${n}::text[]))"
        ),
        Backend::Sqlite => format!(
            "EXISTS (SELECT 1 FROM json_each(c.tags) t WHERE t.value IN (SELECT value FROM json_each(${n})))"
        ),
    }
    };
    let in_ids = match backend {
        Backend::Postgres => "c.id = ANY($5::uuid[])".to_owned(),
        Backend::Sqlite => {
            "c.id IN (SELECT unhex(replace(value, '-', '')) FROM json_each($5))".to_owned()
        }
    };
    let target = if audience.everyone() {
        "TRUE".to_owned()
    } else {
        format!("({} OR {in_ids})", has_tag(4))
    };
    let exclude = format!("NOT {}", has_tag(6));
    let consent = if marketing {
        "WHEN NOT c.marketing_opt_in THEN 'no_marketing_consent'"
    } else {
        ""
    };
    tx.execute(
        Query::new(format!(
            "INSERT INTO campaign_recipients
                 (tenant_id, campaign_id, contact_id, status, skip_reason, message_id, updated_at)
             SELECT $1, $2, x.id, CASE WHEN x.reason IS NULL THEN 'pending' ELSE 'skipped' END,
                 x.reason, NULL, $3
             FROM (SELECT c.id, CASE WHEN c.opted_out_at IS NOT NULL THEN 'opted_out'
                                     {consent} ELSE NULL END AS reason
                   FROM contacts c
                   WHERE c.tenant_id = $1 AND {target} AND {exclude}) x
             WHERE TRUE
             ON CONFLICT (tenant_id, campaign_id, contact_id) DO NOTHING"
        ))
        .bind(tenant)
        .bind(campaign)
        .bind(now)
        .bind(audience.tags.clone())
        .bind(
            audience
                .contact_ids
                .iter()
                .map(|c| c.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(audience.exclude_tags.clone()),
    )
    .await
}

/// Deletes a campaign's recipients (a scheduled campaign edited: written again).
pub async fn delete_recipients(tx: &mut Tx<TenantScope>, id: CampaignId) -> Result<()> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new("DELETE FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    Ok(())
}

/// Every pending recipient of the campaign becomes `skipped` with `reason` (a cancellation).
pub async fn skip_pending(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64> {
    let tenant = tx.scope().tenant_id();
    tx.execute(
        Query::new(
            "UPDATE campaign_recipients SET status = 'skipped', skip_reason = $3, updated_at = $4
             WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'pending'",
        )
        .bind(tenant)
        .bind(id)
        .bind(reason)
        .bind(now),
    )
    .await
}

/// A campaign's counts: every recipient once, by its shown status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub targeted: i64,
    pub skipped: i64,
    pub queued: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub replied: i64,
}

/// The shown status of a recipient row `r`: its message's status is kept on the row
/// (`message_status`, migration 0037).
const SHOWN: &str = "CASE WHEN r.status = 'skipped' THEN 'skipped'
                          WHEN r.status = 'pending' THEN 'queued'
                          ELSE COALESCE(r.message_status, 'sent') END";

pub async fn counts(tx: &mut Tx<TenantScope>, id: CampaignId) -> Result<Counts> {
    #[derive(sqlx::FromRow)]
    struct Row {
        shown: String,
        n: i64,
        replied: i64,
    }
    let tenant = tx.scope().tenant_id();
    // One row per recipient, no join: the message's status and the first reply are kept on the
    // recipient's row by triggers on `messages` (migration 0037).
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {SHOWN} AS shown, COUNT(*) AS n, COUNT(r.replied_at) AS replied
                 FROM campaign_recipients r
                 WHERE r.tenant_id = $1 AND r.campaign_id = $2
                 GROUP BY 1"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let mut c = Counts::default();
    for r in rows {
        c.add(&r.shown, r.n, r.replied);
    }
    Ok(c)
}

impl Counts {
    /// Adds `n` recipients shown as `shown`, `replied` of whom answered.
    fn add(&mut self, shown: &str, n: i64, replied: i64) {
        self.targeted += n;
        self.replied += replied;
        match shown {
            "skipped" => self.skipped += n,
            "queued" => self.queued += n,
            "delivered" => self.delivered += n,
            "read" => self.read += n,
            "failed" => self.failed += n,
            _ => self.sent += n,
        }
    }
}

/// [`counts`] of each of `ids` (the tenant's), in one grouped query (a few on SQLite for a long
/// list). A campaign without recipients is not in the map.
pub async fn counts_many(
    tx: &mut Tx<TenantScope>,
    ids: &[CampaignId],
) -> Result<HashMap<CampaignId, Counts>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        campaign_id: Uuid,
        shown: String,
        n: i64,
        replied: i64,
    }
    let tenant = tx.scope().tenant_id();
    let ids: Vec<Uuid> = ids.iter().map(CampaignId::as_uuid).collect();
    let db = tx.backend();
    let mut out: HashMap<CampaignId, Counts> = HashMap::new();
    for chunk in crate::query::member_chunks(db, &ids) {
        let q = Query::new(format!(
            "SELECT r.campaign_id, {SHOWN} AS shown, COUNT(*) AS n,
                 COUNT(r.replied_at) AS replied
             FROM campaign_recipients r
             WHERE r.tenant_id = $1 AND {}
             GROUP BY 1, 2",
            crate::query::member_of(db, "r.campaign_id", 2, chunk.len())
        ))
        .bind(tenant)
        .bind_members(db, chunk);
        for r in tx.fetch_all::<Row>(q).await? {
            out.entry(r.campaign_id.into())
                .or_default()
                .add(&r.shown, r.n, r.replied);
        }
    }
    Ok(out)
}

/// The campaign's failed messages by Meta's error code and title: `(code, title, count)`,
/// most frequent first (a failed message removed since counts as code 0, `unknown`).
pub async fn failures(tx: &mut Tx<TenantScope>, id: CampaignId) -> Result<Vec<(i64, String, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        error: Option<Json<serde_json::Value>>,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT m.error FROM campaign_recipients r
                 LEFT JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id
                 WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND r.message_status = 'failed'",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    let mut by: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for r in rows {
        let (code, title) = first_error(r.error.as_ref().map(|e| &e.0));
        *by.entry((code, title)).or_default() += 1;
    }
    let mut out: Vec<(i64, String, i64)> = by.into_iter().map(|((c, t), n)| (c, t, n)).collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// The first `{code, title}` of a stored error (`[{code, title, message}]`).
pub fn first_error(e: Option<&serde_json::Value>) -> (i64, String) {
    let first = e.and_then(|e| e.as_array()).and_then(|a| a.first());
    (
        first
            .and_then(|f| f.get("code"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
        first
            .and_then(|f| f.get("title"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
    )
}

/// One recipient as shown.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub contact_id: ContactId,
    /// skipped | queued | sent | delivered | read | failed
    pub status: String,
    pub skip_reason: Option<String>,
    pub error: Option<serde_json::Value>,
    pub wamid: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// A page of recipients by contact id, after `after`, narrowed by shown status.
pub async fn recipients(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    status: Option<&str>,
    after: Option<ContactId>,
    limit: i64,
) -> Result<Vec<Recipient>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        contact_id: Uuid,
        shown: String,
        skip_reason: Option<String>,
        error: Option<Json<serde_json::Value>>,
        wamid: Option<String>,
        updated_at: OffsetDateTime,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT * FROM (
                     SELECT r.contact_id, {SHOWN} AS shown, r.skip_reason, m.error, m.wamid,
                         CASE WHEN m.status_updated_at IS NOT NULL AND m.status_updated_at > r.updated_at
                              THEN m.status_updated_at ELSE r.updated_at END AS updated_at
                     FROM campaign_recipients r
                     LEFT JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id
                     WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND ($4 IS NULL OR r.contact_id > $4)
                 ) x
                 WHERE ($3 IS NULL OR x.shown = $3)
                 ORDER BY x.contact_id LIMIT $5"
            ))
            .bind(tenant)
            .bind(id)
            .bind(status)
            .bind(after)
            .bind(limit),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Recipient {
            contact_id: r.contact_id.into(),
            status: r.shown,
            skip_reason: r.skip_reason,
            error: r.error.map(|e| e.0),
            wamid: r.wamid,
            updated_at: r.updated_at,
        })
        .collect())
}

/// The campaigns started in `[from, to)`, of one connection when given, oldest first (at most
/// `limit`).
pub async fn started_between(
    tx: &mut Tx<TenantScope>,
    from: OffsetDateTime,
    to: OffsetDateTime,
    connection: Option<ConnectionId>,
    limit: i64,
) -> Result<Vec<Campaign>> {
    let tenant = tx.scope().tenant_id();
    let rows: Vec<CampaignRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM campaigns
                 WHERE tenant_id = $1 AND started_at >= $2 AND started_at < $3
                   AND ($4 IS NULL OR connection_id = $4)
                 ORDER BY started_at, id LIMIT $5"
            ))
            .bind(tenant)
            .bind(from)
            .bind(to)
            .bind(connection)
            .bind(limit),
        )
        .await?;
    rows.into_iter().map(Campaign::try_from).collect()
}

// ---- the dispatcher (system work) ----

/// Moves every scheduled campaign whose time has come (of any tenant) to `running`; returns
/// them as `(tenant, id)`.
pub async fn start_due(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
) -> Result<Vec<(TenantId, CampaignId)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: Uuid,
        id: Uuid,
    }
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "UPDATE campaigns SET status = 'running', updated_at = $1
                 WHERE status = 'scheduled' AND scheduled_at <= $1
                   AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = campaigns.tenant_id AND t.status = 'active')
                 RETURNING tenant_id, id",
            )
            .bind(now),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.tenant_id.into(), r.id.into()))
        .collect())
}

/// A running campaign the dispatcher leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub tenant_id: TenantId,
    pub id: CampaignId,
    pub connection_id: ConnectionId,
}

/// Leases the running campaigns of active tenants that no other node holds (`lease_until` in
/// the past or unset) until `lease_until`, oldest first.
pub async fn lease_running(
    tx: &mut Tx<SystemScope>,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Leased>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: Uuid,
        id: Uuid,
        connection_id: Uuid,
    }
    let lock = match tx.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(format!(
                "WITH due AS MATERIALIZED (
                     SELECT c.id FROM campaigns c
                     WHERE c.status = 'running' AND (c.lease_until IS NULL OR c.lease_until <= $1)
                       AND EXISTS (SELECT 1 FROM tenants t WHERE t.id = c.tenant_id AND t.status = 'active')
                     ORDER BY c.id LIMIT $3 {lock})
                 UPDATE campaigns SET lease_until = $2
                 WHERE id IN (SELECT id FROM due)
                 RETURNING tenant_id, id, connection_id"
            ))
            .bind(now)
            .bind(lease_until)
            .bind(limit),
        )
        .await?;
    let mut out: Vec<Leased> = rows
        .into_iter()
        .map(|r| Leased {
            tenant_id: r.tenant_id.into(),
            id: r.id.into(),
            connection_id: r.connection_id.into(),
        })
        .collect();
    out.sort_by_key(|l| l.id);
    Ok(out)
}

/// Gives a campaign's lease back (the next round may take it at once).
pub async fn release(tx: &mut Tx<SystemScope>, id: CampaignId) -> Result<()> {
    tx.execute(Query::new("UPDATE campaigns SET lease_until = NULL WHERE id = $1").bind(id))
        .await?;
    Ok(())
}

/// Up to `limit` pending recipients of a campaign, by contact id.
pub async fn pending(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    limit: i64,
) -> Result<Vec<ContactId>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        contact_id: Uuid,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT contact_id FROM campaign_recipients
                 WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'pending'
                 ORDER BY contact_id LIMIT $3",
            )
            .bind(tenant)
            .bind(id)
            .bind(limit),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.contact_id.into()).collect())
}

/// Hands a pending recipient to this unit of work: `dispatched` with `message_id` (stored
/// first, in the same transaction: its conversation and status are copied to the row). `false`
/// when it was not pending any more (another dispatcher took it, or the campaign's recipient
/// went away): the caller does nothing.
pub async fn claim_recipient(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    contact: ContactId,
    message_id: MessageId,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .execute(
            Query::new(
                "UPDATE campaign_recipients SET status = 'dispatched', message_id = $4, updated_at = $5,
                     conversation_id = (SELECT m.conversation_id FROM messages m
                                        WHERE m.tenant_id = $1 AND m.id = $4),
                     message_status = (SELECT m.status FROM messages m
                                       WHERE m.tenant_id = $1 AND m.id = $4)
                 WHERE tenant_id = $1 AND campaign_id = $2 AND contact_id = $3 AND status = 'pending'",
            )
            .bind(tenant)
            .bind(id)
            .bind(contact)
            .bind(message_id)
            .bind(now),
        )
        .await?
        == 1)
}

/// A pending recipient that is not sent the campaign: `skipped` with the reason. `false` when
/// it was not pending any more (another dispatcher took it).
pub async fn skip_recipient(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    contact: ContactId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .execute(
            Query::new(
                "UPDATE campaign_recipients SET status = 'skipped', skip_reason = $4, updated_at = $5
                 WHERE tenant_id = $1 AND campaign_id = $2 AND contact_id = $3 AND status = 'pending'",
            )
            .bind(tenant)
            .bind(id)
            .bind(contact)
            .bind(reason)
            .bind(now),
        )
        .await?
        == 1)
}

/// Completes a running campaign with no pending recipient left; `true` when it did.
pub async fn complete_if_done(
    tx: &mut Tx<TenantScope>,
    id: CampaignId,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant_id();
    Ok(tx
        .execute(
            Query::new(
                "UPDATE campaigns SET status = 'completed', completed_at = $3, updated_at = $3,
                     lease_until = NULL
                 WHERE tenant_id = $1 AND id = $2 AND status = 'running'
                   AND NOT EXISTS (SELECT 1 FROM campaign_recipients r
                                   WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND r.status = 'pending')",
            )
            .bind(tenant)
            .bind(id)
            .bind(now),
        )
        .await?
        == 1)
}

/// Whether `message_id` was queued by a campaign (a bulk message).
pub async fn is_campaign_message(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    message_id: MessageId,
) -> Result<bool> {
    #[derive(sqlx::FromRow)]
    struct Row {
        n: i64,
    }
    let r: Row = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM campaign_recipients WHERE tenant_id = $1 AND message_id = $2",
            )
            .bind(tenant)
            .bind(message_id),
        )
        .await?;
    Ok(r.n > 0)
}
