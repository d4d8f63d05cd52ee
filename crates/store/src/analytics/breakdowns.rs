//! Conversations by status, each member's workload, and deal values (won, lost, by stage).

use super::*;

/// Conversations created in the range, by their status now.
pub async fn conversations_by_status(
    tx: &mut Tx<TenantScope>,
    range: &Range,
) -> Result<Vec<(String, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        status: String,
        n: i64,
    }
    let (q, on_number) = range_query(tx.scope().tenant_id(), range);
    let sql = format!(
        "SELECT v.status AS status, COUNT(*) AS n FROM conversations v
         WHERE v.tenant_id = $1 AND v.created_at >= $2 AND v.created_at < $3{on_number}
         GROUP BY v.status"
    );
    Ok(tx
        .fetch_all::<Row>(Query { sql, ..q })
        .await?
        .into_iter()
        .map(|r| (r.status, r.n))
        .collect())
}

/// One member's workload in the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCounts {
    pub user_id: UserId,
    pub name: String,
    /// Conversations created in the range and assigned to them now.
    pub conversations_assigned: i64,
    /// Conversations resolved in the range and assigned to them now.
    pub conversations_resolved: i64,
    /// Outbound messages they wrote in the range.
    pub messages_sent: i64,
}

/// Every member of the tenant (not deleted), by name, with their counts: grouped statements
/// (assigned, resolved, sent), each one index range read; sent from the message counts (the
/// nil author of a message without one matches no member) and the range's ends that are not
/// whole slots from `messages`.
pub async fn agent_counts(tx: &mut Tx<TenantScope>, range: &Range) -> Result<Vec<AgentCounts>> {
    #[derive(sqlx::FromRow)]
    struct UserRow {
        id: Uuid,
        name: String,
    }
    #[derive(sqlx::FromRow)]
    struct CountRow {
        g: Option<Uuid>,
        n: i64,
    }
    let tenant = tx.scope().tenant_id();
    let users = tx
        .fetch_all::<UserRow>(
            Query::new(
                "SELECT id, name FROM users WHERE tenant_id = $1 AND deleted_at IS NULL
                 ORDER BY name, id",
            )
            .bind(tenant),
        )
        .await?;
    let (_, on_number) = range_query(tenant, range);
    let on_message_number = on_number.replace("v.", "m.");
    let statements = [
        format!(
            "SELECT v.assignee_id AS g, COUNT(*) AS n FROM conversations v
             WHERE v.tenant_id = $1 AND v.created_at >= $2 AND v.created_at < $3{on_number}
             GROUP BY v.assignee_id"
        ),
        format!(
            "SELECT v.assignee_id AS g, COUNT(*) AS n FROM conversations v
             WHERE v.tenant_id = $1 AND v.resolved_at >= $2 AND v.resolved_at < $3{on_number}
             GROUP BY v.assignee_id"
        ),
    ];
    let mut counts: [HashMap<Uuid, i64>; 2] = Default::default();
    for (sql, into) in statements.into_iter().zip(counts.iter_mut()) {
        let (q, _) = range_query(tenant, range);
        *into = tx
            .fetch_all::<CountRow>(Query { sql, ..q })
            .await?
            .into_iter()
            .filter_map(|r| r.g.map(|g| (g, r.n)))
            .collect();
    }
    let [assigned, resolved] = counts;

    // Sent: the whole hours of the range from `message_counts_hourly`, the quarter hours
    // around them from `message_counts`, its ends from `messages`.
    let mut sent: HashMap<Uuid, i64> = HashMap::new();
    let whole = split(&[Bucket {
        lo: range.from,
        hi: range.to,
    }]);
    let mut add = |rows: Vec<CountRow>| {
        for r in rows {
            if let Some(g) = r.g {
                *sent.entry(g).or_insert(0) += r.n;
            }
        }
    };
    let rollups = whole
        .hours
        .iter()
        .map(|s| (Rollup::Hours, s))
        .chain(whole.slots.iter().map(|s| (Rollup::QuarterHours, s)));
    for (rollup, (_, lo, hi)) in rollups {
        let (q, on_number) = tenant_and_number(tenant, range, "c");
        let table = rollup.table(tx.backend());
        let sql = format!(
            "SELECT c.author_id AS g, CAST(SUM(c.n) AS bigint) AS n FROM {table} c
             WHERE c.tenant_id = $1 AND c.slot >= {lo} AND c.slot < {hi}
               AND c.direction = 'outbound'{on_number}
             GROUP BY c.author_id"
        );
        add(tx.fetch_all::<CountRow>(Query { sql, ..q }).await?);
    }
    for (_, piece) in &whole.raw {
        let piece = Range {
            from: piece.lo,
            to: piece.hi,
            connection_id: range.connection_id,
        };
        let (q, _) = range_query(tenant, &piece);
        let sql = format!(
            "SELECT m.author_id AS g, COUNT(*) AS n FROM messages m
             WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at < $3
               AND m.direction = 'outbound'{on_message_number}
             GROUP BY m.author_id"
        );
        add(tx.fetch_all::<CountRow>(Query { sql, ..q }).await?);
    }
    Ok(users
        .into_iter()
        .map(|u| AgentCounts {
            user_id: u.id.into(),
            conversations_assigned: assigned.get(&u.id).copied().unwrap_or(0),
            conversations_resolved: resolved.get(&u.id).copied().unwrap_or(0),
            messages_sent: sent.get(&u.id).copied().unwrap_or(0),
            name: u.name,
        })
        .collect())
}

/// Deals won or lost in the range: deals now in a won (lost) stage that entered it in the
/// range (their latest move into that stage). Sums by kind (`won`, `lost`) and currency.
pub async fn closed_deal_values(
    tx: &mut Tx<TenantScope>,
    range: &Range,
) -> Result<Vec<(String, String, i64, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        kind: String,
        currency: String,
        value_minor: i64,
        n: i64,
    }
    let q = Query::new("")
        .bind(tx.scope().tenant_id())
        .bind(range.from)
        .bind(range.to);
    let sql = "SELECT c.kind AS kind, c.currency AS currency,
             CAST(SUM(c.value_minor) AS bigint) AS value_minor, COUNT(*) AS n
         FROM (
             SELECT s.kind AS kind, d.currency AS currency, d.value_minor AS value_minor,
                 (SELECT MAX(h.changed_at) FROM deal_stage_history h
                  WHERE h.tenant_id = $1 AND h.deal_id = d.id AND h.to_stage_id = d.stage_id)
                     AS closed_at
             FROM deals d JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
             WHERE d.tenant_id = $1 AND s.kind IN ('won', 'lost')
         ) c
         WHERE c.closed_at >= $2 AND c.closed_at < $3
         GROUP BY c.kind, c.currency
         ORDER BY c.kind, c.currency"
        .to_owned();
    Ok(tx
        .fetch_all::<Row>(Query { sql, ..q })
        .await?
        .into_iter()
        .map(|r| (r.kind, r.currency, r.value_minor, r.n))
        .collect())
}

/// One stage's deals in one currency (a stage without deals has one row, currency `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageValue {
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub stage_id: Uuid,
    pub name: String,
    pub kind: String,
    pub position: i64,
    pub currency: Option<String>,
    pub count: i64,
    pub value_minor: i64,
}

/// The deals in each stage now, by currency, pipelines oldest first and stages in order.
pub async fn stage_values(tx: &mut Tx<TenantScope>) -> Result<Vec<StageValue>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        pipeline_id: Uuid,
        pipeline_name: String,
        stage_id: Uuid,
        name: String,
        kind: String,
        position: i64,
        currency: Option<String>,
        n: i64,
        value_minor: i64,
    }
    let q = Query::new(
        "SELECT p.id AS pipeline_id, p.name AS pipeline_name, s.id AS stage_id, s.name AS name,
             s.kind AS kind, s.position AS position, d.currency AS currency, COUNT(d.id) AS n,
             CAST(COALESCE(SUM(d.value_minor), 0) AS bigint) AS value_minor
         FROM pipeline_stages s
         JOIN pipelines p ON p.tenant_id = s.tenant_id AND p.id = s.pipeline_id
         LEFT JOIN deals d ON d.tenant_id = s.tenant_id AND d.stage_id = s.id
         WHERE s.tenant_id = $1
         GROUP BY p.id, p.name, p.created_at, s.id, s.name, s.kind, s.position, d.currency
         ORDER BY p.created_at, p.id, s.position, d.currency",
    )
    .bind(tx.scope().tenant_id());
    Ok(tx
        .fetch_all::<Row>(q)
        .await?
        .into_iter()
        .map(|r| StageValue {
            pipeline_id: r.pipeline_id,
            pipeline_name: r.pipeline_name,
            stage_id: r.stage_id,
            name: r.name,
            kind: r.kind,
            position: r.position,
            currency: r.currency,
            count: r.n,
            value_minor: r.value_minor,
        })
        .collect())
}
