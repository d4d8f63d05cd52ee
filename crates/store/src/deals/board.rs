//! The board: each stage's deal count and totals, and its newest cards.

use super::*;

/// What the deals of one stage add up to in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTotal {
    pub stage_id: StageId,
    /// ISO 4217, as stored.
    pub currency: String,
    pub count: i64,
    /// The sum of the deals' `value_minor`: wider than one deal's value, so that no sum
    /// overflows.
    pub value_minor: i128,
}

/// The number and value of the deals of `pipeline`, per stage and currency, in one statement.
///
/// Values are summed in two parts (the billions and the rest), each of which fits a 64-bit
/// integer for any realistic number of deals, and joined in 128 bits here: a plain `SUM` of
/// large values would overflow (an error on SQLite, `numeric` on PostgreSQL).
pub async fn stage_totals(
    tx: &mut Tx<TenantScope>,
    pipeline: PipelineId,
) -> Result<Vec<StageTotal>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        stage_id: Uuid,
        currency: String,
        n: i64,
        high: i64,
        low: i64,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT stage_id, currency, COUNT(*) AS n,
                    CAST(SUM(value_minor / 1000000000) AS BIGINT) AS high,
                    CAST(SUM(value_minor % 1000000000) AS BIGINT) AS low
                 FROM deals WHERE tenant_id = $1 AND pipeline_id = $2
                 GROUP BY stage_id, currency ORDER BY stage_id, currency",
            )
            .bind(tenant)
            .bind(pipeline),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| StageTotal {
            stage_id: r.stage_id.into(),
            currency: r.currency,
            count: r.n,
            value_minor: i128::from(r.high) * 1_000_000_000 + i128::from(r.low),
        })
        .collect())
}

/// A deal on the board, with the name its contact is known by (the name, else the WhatsApp
/// profile name, else the phone).
#[derive(Debug, Clone)]
pub struct BoardDeal {
    pub deal: Deal,
    pub contact_name: String,
}

/// The newest `per_stage` deals of every stage of `pipeline`, newest first, in one statement.
pub async fn board_deals(
    tx: &mut Tx<TenantScope>,
    pipeline: PipelineId,
    per_stage: i64,
) -> Result<Vec<BoardDeal>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        deal: DealRow,
        contact_name: String,
    }
    let tenant = tx.scope().tenant_id();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT id, tenant_id, title, value_minor, currency, contact_id, pipeline_id,
                    stage_id, stage_kind, owner_id, expected_close_date, lost_reason, created_at,
                    updated_at, contact_name
                 FROM (SELECT d.id, d.tenant_id, d.title, d.value_minor, d.currency,
                        d.contact_id, d.pipeline_id, d.stage_id, s.kind AS stage_kind,
                        d.owner_id, d.expected_close_date, d.lost_reason, d.created_at,
                        d.updated_at, COALESCE(c.name, c.wa_profile_name, c.phone) AS contact_name,
                        ROW_NUMBER() OVER (PARTITION BY d.stage_id ORDER BY d.id DESC) AS rn
                     FROM deals d
                     JOIN pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id
                     JOIN contacts c ON c.tenant_id = d.tenant_id AND c.id = d.contact_id
                     WHERE d.tenant_id = $1 AND d.pipeline_id = $2) b
                 WHERE rn <= $3
                 ORDER BY id DESC",
            )
            .bind(tenant)
            .bind(pipeline)
            .bind(per_stage),
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(BoardDeal {
                deal: r.deal.into_deal()?,
                contact_name: r.contact_name,
            })
        })
        .collect()
}
