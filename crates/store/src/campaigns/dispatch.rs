//! The dispatcher's statements (system work): scheduled campaigns that are due, leases on
//! running ones, and each recipient claimed by exactly one unit of work.

use super::*;

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
