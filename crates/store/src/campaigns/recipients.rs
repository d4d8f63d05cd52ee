//! A campaign's recipients: its audience materialised when it starts, their counts and
//! failures, and the pages of recipients.

use super::*;

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
pub(super) const SHOWN: &str = "CASE WHEN r.status = 'skipped' THEN 'skipped'
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
