//! The shapes analytics answers leave the server in (the REST answers and the console's
//! dashboard are built from these).

use super::Period;
use palisade_domain::rfc3339;
use palisade_store::analytics::{BucketCounts, Percentiles, StageValue};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// Seconds, rounded to the millisecond (SQLite keeps times to the millisecond).
fn seconds(v: Option<f64>) -> Option<f64> {
    v.map(|s| (s * 1000.0).round() / 1000.0)
}

/// Median and 90th percentile in seconds (continuous: interpolated between the two nearest
/// values); both `null` when nothing was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct PercentilesView {
    pub median: Option<f64>,
    pub p90: Option<f64>,
    /// How many conversations were measured.
    pub count: i64,
}

impl From<&Percentiles> for PercentilesView {
    fn from(p: &Percentiles) -> Self {
        PercentilesView {
            median: seconds(p.median),
            p90: seconds(p.p90),
            count: p.count,
        }
    }
}

/// One local day or week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BucketView {
    /// The local date (in `tz`) the bucket starts on: the day, or the week's Monday.
    #[schema(format = Date)]
    pub start: String,
    pub messages_in: i64,
    pub messages_out: i64,
    pub conversations_new: i64,
    pub conversations_resolved: i64,
}

/// The range as understood: `[from, to)` in UTC, the zone and the interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PeriodView {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub tz: String,
    /// `day` or `week`.
    pub interval: String,
    pub connection_id: Option<Uuid>,
}

impl From<&Period> for PeriodView {
    fn from(p: &Period) -> Self {
        PeriodView {
            from: rfc3339(p.range.from),
            to: rfc3339(p.range.to),
            tz: p.tz_name.clone(),
            interval: p.interval.as_str().to_owned(),
            connection_id: p.range.connection_id.map(|c| c.as_uuid()),
        }
    }
}

fn buckets(p: &Period, counts: &[BucketCounts]) -> Vec<BucketView> {
    p.starts
        .iter()
        .zip(counts)
        .map(|(d, c)| BucketView {
            start: d.to_string(),
            messages_in: c.messages_in,
            messages_out: c.messages_out,
            conversations_new: c.conversations_new,
            conversations_resolved: c.conversations_resolved,
        })
        .collect()
}

fn total(counts: &[BucketCounts]) -> BucketCounts {
    counts
        .iter()
        .fold(BucketCounts::default(), |a, c| BucketCounts {
            messages_in: a.messages_in + c.messages_in,
            messages_out: a.messages_out + c.messages_out,
            conversations_new: a.conversations_new + c.conversations_new,
            conversations_resolved: a.conversations_resolved + c.conversations_resolved,
        })
}

/// `GET /api/v1/analytics/overview`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AnalyticsOverviewResponse)]
pub struct OverviewView {
    #[serde(flatten)]
    pub period: PeriodView,
    pub messages_in: i64,
    pub messages_out: i64,
    pub conversations_new: i64,
    pub conversations_resolved: i64,
    /// Over the conversations created in the range: first inbound message to the first
    /// outbound message after it.
    pub first_response_seconds: PercentilesView,
    /// Over the conversations resolved in the range: creation to resolution.
    pub resolution_seconds: PercentilesView,
    /// Value (minor units) of the deals won in the range, by currency.
    pub deals_won: BTreeMap<String, i64>,
    /// Value (minor units) of the deals lost in the range, by currency.
    pub deals_lost: BTreeMap<String, i64>,
    pub buckets: Vec<BucketView>,
}

impl OverviewView {
    pub(crate) fn new(
        p: &Period,
        counts: &[BucketCounts],
        first_response_seconds: PercentilesView,
        resolution_seconds: PercentilesView,
        deals_won: BTreeMap<String, i64>,
        deals_lost: BTreeMap<String, i64>,
    ) -> Self {
        let t = total(counts);
        OverviewView {
            period: PeriodView::from(p),
            messages_in: t.messages_in,
            messages_out: t.messages_out,
            conversations_new: t.conversations_new,
            conversations_resolved: t.conversations_resolved,
            first_response_seconds,
            resolution_seconds,
            deals_won,
            deals_lost,
            buckets: buckets(p, counts),
        }
    }
}

/// Conversations created in the range, by their status now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ByStatusView {
    pub open: i64,
    pub pending: i64,
    pub resolved: i64,
}

/// `GET /api/v1/analytics/conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AnalyticsConversationsResponse)]
pub struct ConversationsView {
    #[serde(flatten)]
    pub period: PeriodView,
    pub conversations_new: i64,
    pub conversations_resolved: i64,
    pub by_status: ByStatusView,
    pub first_response_seconds: PercentilesView,
    pub resolution_seconds: PercentilesView,
    pub buckets: Vec<BucketView>,
}

impl ConversationsView {
    pub(crate) fn new(
        p: &Period,
        counts: &[BucketCounts],
        by_status: &[(String, i64)],
        first_response_seconds: PercentilesView,
        resolution_seconds: PercentilesView,
    ) -> Self {
        let t = total(counts);
        let mut s = ByStatusView::default();
        for (status, n) in by_status {
            match status.as_str() {
                "open" => s.open = *n,
                "pending" => s.pending = *n,
                "resolved" => s.resolved = *n,
                _ => {}
            }
        }
        ConversationsView {
            period: PeriodView::from(p),
            conversations_new: t.conversations_new,
            conversations_resolved: t.conversations_resolved,
            by_status: s,
            first_response_seconds,
            resolution_seconds,
            buckets: buckets(p, counts),
        }
    }
}

/// One member's workload in the range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentView {
    pub user_id: Uuid,
    pub name: String,
    /// Conversations created in the range that are assigned to them.
    pub conversations_assigned: i64,
    /// Conversations resolved in the range that are assigned to them.
    pub conversations_resolved: i64,
    /// Outbound messages they wrote in the range.
    pub messages_sent: i64,
    /// Over the conversations created in the range that are assigned to them.
    pub first_response_seconds: PercentilesView,
}

/// `GET /api/v1/analytics/agents`: every member of the tenant, by name.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AnalyticsAgentsResponse)]
pub struct AgentsView {
    #[serde(flatten)]
    pub period: PeriodView,
    pub data: Vec<AgentView>,
}

/// The deals in one stage now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StageValueView {
    pub pipeline_id: Uuid,
    pub pipeline_name: String,
    pub stage_id: Uuid,
    pub name: String,
    /// `open`, `won` or `lost`.
    pub kind: String,
    pub position: i64,
    /// Deals in the stage now.
    pub count: i64,
    /// Their value (minor units) by currency.
    pub value_minor: BTreeMap<String, i64>,
}

/// `GET /api/v1/analytics/deals`: every stage of every pipeline (pipelines oldest first,
/// stages in order) with the deals in it now, and the deals won and lost in the range.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AnalyticsDealsResponse)]
pub struct DealsView {
    #[serde(flatten)]
    pub period: PeriodView,
    pub stages: Vec<StageValueView>,
    pub deals_won: BTreeMap<String, i64>,
    pub deals_lost: BTreeMap<String, i64>,
}

impl DealsView {
    pub(crate) fn new(
        p: &Period,
        rows: &[StageValue],
        deals_won: BTreeMap<String, i64>,
        deals_lost: BTreeMap<String, i64>,
    ) -> Self {
        let mut stages: Vec<StageValueView> = Vec::new();
        for r in rows {
            if stages.last().map(|s| s.stage_id) != Some(r.stage_id) {
                stages.push(StageValueView {
                    pipeline_id: r.pipeline_id,
                    pipeline_name: r.pipeline_name.clone(),
                    stage_id: r.stage_id,
                    name: r.name.clone(),
                    kind: r.kind.clone(),
                    position: r.position,
                    count: 0,
                    value_minor: BTreeMap::new(),
                });
            }
            if let (Some(stage), Some(currency)) = (stages.last_mut(), &r.currency) {
                stage.count += r.count;
                stage.value_minor.insert(currency.clone(), r.value_minor);
            }
        }
        DealsView {
            period: PeriodView::from(p),
            stages,
            deals_won,
            deals_lost,
        }
    }
}

/// One campaign's funnel: `sent` counts the messages that reached at least sent (so it
/// includes delivered and read), `delivered` those that reached at least delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CampaignFunnelView {
    pub id: uuid::Uuid,
    pub name: String,
    pub connection_id: uuid::Uuid,
    pub status: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    pub targeted: i64,
    pub skipped: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
    pub replied: i64,
}

impl CampaignFunnelView {
    pub(crate) fn new(
        c: &palisade_store::campaigns::Campaign,
        n: &palisade_store::campaigns::Counts,
    ) -> Self {
        CampaignFunnelView {
            id: c.id.as_uuid(),
            name: c.name.clone(),
            connection_id: c.connection_id.as_uuid(),
            status: c.status.as_str().to_owned(),
            started_at: c.started_at.map(rfc3339),
            targeted: n.targeted,
            skipped: n.skipped,
            sent: n.sent + n.delivered + n.read,
            delivered: n.delivered + n.read,
            read: n.read,
            failed: n.failed,
            replied: n.replied,
        }
    }
}

/// The campaigns started in the range with their funnels.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AnalyticsCampaignsResponse)]
pub struct CampaignsAnalyticsView {
    #[serde(flatten)]
    pub period: PeriodView,
    pub campaigns: Vec<CampaignFunnelView>,
}
