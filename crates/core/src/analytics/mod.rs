//! Analytics: what a tenant's team did over a range of local days or weeks, computed by the
//! database (`palisade_store::analytics`), read by members (`analytics.read`; API keys with
//! `analytics:read`).
//!
//! The range is `[from, to)`: `from` and `to` are RFC 3339 times or dates (`YYYY-MM-DD`, the
//! local midnight starting that day in `tz`), `from < to`, at most [`MAX_RANGE_DAYS`] days;
//! without `to` it ends now, without `from` it starts [`DEFAULT_DAYS`] local days back. It
//! is cut into buckets that start at local midnights in `tz` (an IANA name, default `UTC`):
//! days (`interval=day`, the default) or ISO weeks starting on Monday (`interval=week`). A day
//! is 23 or 25 hours long on a daylight-saving change; the first and last bucket are clipped
//! to the range. The bucket boundaries are computed here (with `jiff` and the system's time
//! zone database) as UTC instants; the store counts the rows of each.
//!
//! What is counted: messages by their creation time (in: `inbound`, out: `outbound`; notes
//! are neither); conversations by creation (`conversations_new`) and by resolution
//! (`conversations_resolved`); first-response time over the conversations created in the range
//! (first inbound message to the first outbound one at or after it); resolution time over the
//! conversations resolved in the range (creation to resolution); deals won or lost by when they
//! entered their won / lost stage (`connection_id` does not apply to deals).

pub mod view;

use crate::auth::Principal;
use crate::error::FieldErrors;
use crate::{AppError, AppResult, Services};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use palisade_domain::{ConnectionId, FieldError, Permission, UserId};
use palisade_store::analytics::{self as store, Bucket, Measure, Range};
use palisade_store::whatsapp_connections;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;
pub use view::{
    AgentView, AgentsView, BucketView, CampaignFunnelView, CampaignsAnalyticsView,
    ConversationsView, DealsView, OverviewView, PercentilesView, StageValueView,
};

/// The longest range: a year and a day, so a leap year fits whole.
pub const MAX_RANGE_DAYS: i64 = 366;

/// The query of every analytics endpoint, as received.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub interval: Option<String>,
    pub connection_id: Option<Uuid>,
    pub tz: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
        }
    }
}

/// A parsed query: the range, its buckets (each with its local start date) and the zone.
#[derive(Debug, Clone)]
pub struct Period {
    pub range: Range,
    pub buckets: Vec<Bucket>,
    pub starts: Vec<Date>,
    pub tz_name: String,
    pub interval: Interval,
}

fn is_zone_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.contains("..")
        && !s.starts_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
}

fn parse_zone(errors: &mut FieldErrors, raw: Option<&str>) -> Option<(String, TimeZone)> {
    let name = raw.unwrap_or("UTC");
    let zone = if is_zone_name(name) {
        TimeZone::get(name).ok()
    } else {
        None
    };
    match zone {
        Some(z) => Some((name.to_owned(), z)),
        None => {
            errors.push(FieldError::new(
                "tz",
                "must be an IANA time zone name such as Europe/Berlin or America/New_York",
            ));
            None
        }
    }
}

/// An RFC 3339 time, or a date (its local midnight in `tz`).
fn parse_instant(
    errors: &mut FieldErrors,
    field: &'static str,
    raw: Option<&str>,
    tz: Option<&TimeZone>,
) -> Option<Timestamp> {
    let raw = raw?;
    if raw.is_empty() {
        errors.push(FieldError::new(
            field,
            "must be an RFC 3339 time (2026-03-01T00:00:00Z) or a date (2026-03-01) when given",
        ));
        return None;
    }
    if raw.len() == 10 {
        if let Ok(d) = raw.parse::<Date>() {
            // A date's start in an unknown zone is reported with the zone.
            let tz = tz?;
            return match local_midnight(d, tz) {
                Some(t) => Some(t),
                None => {
                    errors.push(FieldError::new(field, "is out of range"));
                    None
                }
            };
        }
    }
    match time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(to_timestamp)
    {
        Some(t) => Some(t),
        None => {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 time (2026-03-01T00:00:00Z) or a date (2026-03-01)",
            ));
            None
        }
    }
}

/// The instant the day `d` starts in `tz` (midnight, or the first time after a midnight that a
/// daylight-saving change skips).
fn local_midnight(d: Date, tz: &TimeZone) -> Option<Timestamp> {
    Some(
        d.to_zoned_datetime(tz.clone())
            .ok()?
            .start_of_day()
            .ok()?
            .timestamp(),
    )
}

fn to_timestamp(t: OffsetDateTime) -> Option<Timestamp> {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).ok()
}

fn to_time(t: Timestamp) -> AppResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("a bucket boundary is out of range: {e}")))
}

/// Days in the range when `from` is left out: the local day holding the range's last instant
/// and the [`DEFAULT_DAYS`]` - 1` before it.
pub const DEFAULT_DAYS: i64 = 30;

/// The default `from`: the local midnight starting the first of the [`DEFAULT_DAYS`] days that
/// end with the one holding `to`'s last instant (`to` at a midnight ends the day before it).
fn default_from(to: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let last = to
        .checked_sub(jiff::SignedDuration::from_nanos(1))
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    local_midnight(
        last.checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1))
            .ok()?,
        tz,
    )
}

/// Parses and checks the query (every problem in one `422`), and cuts the range into buckets.
/// `to` defaults to `now`, `from` to the start of the [`DEFAULT_DAYS`] local days ending with
/// `to`'s.
pub fn parse_period(q: &AnalyticsQuery, now: OffsetDateTime) -> AppResult<Period> {
    let mut errors = FieldErrors::new();
    let zone = parse_zone(&mut errors, q.tz.as_deref());
    let tz = zone.as_ref().map(|(_, z)| z);
    let to = match q.to.as_deref() {
        Some(raw) => parse_instant(&mut errors, "to", Some(raw), tz),
        None => to_timestamp(now),
    };
    let from = match q.from.as_deref() {
        Some(raw) => parse_instant(&mut errors, "from", Some(raw), tz),
        None => to.zip(tz).and_then(|(to, tz)| default_from(to, tz)),
    };
    // A `to` so early that 30 days before it is no date (year 1) leaves no default.
    if from.is_none() && q.from.is_none() && to.is_some() && tz.is_some() {
        errors.push(FieldError::new("from", "is required with so early a `to`"));
    }
    let interval = match q.interval.as_deref() {
        None | Some("day") => Some(Interval::Day),
        Some("week") => Some(Interval::Week),
        Some(_) => {
            errors.push(FieldError::new("interval", "must be day or week"));
            None
        }
    };
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            errors.push(FieldError::new("to", "must be after from"));
        } else if to.as_second() - from.as_second() > MAX_RANGE_DAYS * 86_400 {
            errors.push(FieldError::new(
                "to",
                format!("the range may span at most {MAX_RANGE_DAYS} days"),
            ));
        }
    }
    let (Some(from), Some(to), Some(interval), Some((tz_name, tz)), true) =
        (from, to, interval, zone, errors.is_empty())
    else {
        return Err(AppError::validation(errors));
    };

    // Local start dates from the one holding `from` (its week's Monday for weeks) until `to`.
    let mut start = from.to_zoned_datetime(tz.clone()).date();
    if interval == Interval::Week {
        let back = i64::from(start.weekday().to_monday_zero_offset());
        start = start
            .checked_sub(jiff::Span::new().days(back))
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    let step = match interval {
        Interval::Day => jiff::Span::new().days(1),
        Interval::Week => jiff::Span::new().weeks(1),
    };
    let (mut buckets, mut starts) = (Vec::new(), Vec::new());
    let mut day = start;
    loop {
        let next = day
            .checked_add(step)
            .map_err(|e| AppError::Internal(e.into()))?;
        let lo = local_midnight(day, &tz)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no midnight for {day}")))?;
        if lo >= to {
            break;
        }
        let hi = local_midnight(next, &tz)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no midnight for {next}")))?;
        buckets.push(Bucket {
            lo: to_time(lo.max(from))?,
            hi: to_time(hi.min(to))?,
        });
        starts.push(day);
        day = next;
    }
    Ok(Period {
        range: Range {
            from: to_time(from)?,
            to: to_time(to)?,
            connection_id: q.connection_id.map(ConnectionId::from_uuid),
        },
        buckets,
        starts,
        tz_name,
        interval,
    })
}

/// Parses the query and checks `connection_id` is one of the tenant's numbers (`422`).
async fn begin(
    s: &Services,
    p: &Principal,
    q: &AnalyticsQuery,
) -> AppResult<(Period, palisade_store::Tx<palisade_store::TenantScope>)> {
    p.require(Permission::AnalyticsRead)?;
    let period = parse_period(q, s.now())?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    if let Some(c) = period.range.connection_id {
        if whatsapp_connections::find(&mut tx, c).await?.is_none() {
            return Err(AppError::field(
                "connection_id",
                "is not a WhatsApp number of your tenant",
            ));
        }
    }
    Ok((period, tx))
}

fn money(rows: &[(String, String, i64, i64)], kind: &str) -> BTreeMap<String, i64> {
    rows.iter()
        .filter(|r| r.0 == kind)
        .map(|r| (r.1.clone(), r.2))
        .collect()
}

fn percentiles_of(
    m: &std::collections::HashMap<Option<UserId>, store::Percentiles>,
    key: Option<UserId>,
) -> PercentilesView {
    m.get(&key).map(PercentilesView::from).unwrap_or_default()
}

/// [`store::percentiles`] in a read transaction of its own, so that a page's independent
/// figures are read at once on separate connections: over a year each of them reads tens of
/// thousands of conversations, and one after another they took PostgreSQL past 200 ms.
async fn percentiles_apart(
    s: &Services,
    p: &Principal,
    range: &Range,
    measure: Measure,
    by_assignee: bool,
) -> AppResult<ByAssignee> {
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(store::percentiles(&mut tx, range, measure, by_assignee).await?)
}

type ByAssignee = std::collections::HashMap<Option<UserId>, store::Percentiles>;

/// The period's bucket counts (on the checked transaction `tx`) and its first-response and
/// resolution percentiles (each on its own connection), read at once.
async fn counts_and_percentiles(
    s: &Services,
    p: &Principal,
    tx: &mut palisade_store::Tx<palisade_store::TenantScope>,
    period: &Period,
) -> AppResult<(Vec<store::BucketCounts>, ByAssignee, ByAssignee)> {
    tokio::try_join!(
        async { AppResult::Ok(store::bucket_counts(tx, &period.range, &period.buckets).await?) },
        percentiles_apart(s, p, &period.range, Measure::FirstResponse, false),
        percentiles_apart(s, p, &period.range, Measure::Resolution, false),
    )
}

pub async fn overview(s: &Services, p: &Principal, q: &AnalyticsQuery) -> AppResult<OverviewView> {
    let (period, mut tx) = begin(s, p, q).await?;
    let (counts, first, resolution) = counts_and_percentiles(s, p, &mut tx, &period).await?;
    let deals = store::closed_deal_values(&mut tx, &period.range).await?;
    Ok(OverviewView::new(
        &period,
        &counts,
        percentiles_of(&first, None),
        percentiles_of(&resolution, None),
        money(&deals, "won"),
        money(&deals, "lost"),
    ))
}

pub async fn conversations(
    s: &Services,
    p: &Principal,
    q: &AnalyticsQuery,
) -> AppResult<ConversationsView> {
    let (period, mut tx) = begin(s, p, q).await?;
    let (counts, first, resolution) = counts_and_percentiles(s, p, &mut tx, &period).await?;
    let by_status = store::conversations_by_status(&mut tx, &period.range).await?;
    Ok(ConversationsView::new(
        &period,
        &counts,
        &by_status,
        percentiles_of(&first, None),
        percentiles_of(&resolution, None),
    ))
}

pub async fn agents(s: &Services, p: &Principal, q: &AnalyticsQuery) -> AppResult<AgentsView> {
    let (period, mut tx) = begin(s, p, q).await?;
    let counts = store::agent_counts(&mut tx, &period.range).await?;
    let first = store::percentiles(&mut tx, &period.range, Measure::FirstResponse, true).await?;
    Ok(AgentsView {
        period: view::PeriodView::from(&period),
        data: counts
            .into_iter()
            .map(|a| AgentView {
                user_id: a.user_id.as_uuid(),
                first_response_seconds: percentiles_of(&first, Some(a.user_id)),
                name: a.name,
                conversations_assigned: a.conversations_assigned,
                conversations_resolved: a.conversations_resolved,
                messages_sent: a.messages_sent,
            })
            .collect(),
    })
}

pub async fn deals(s: &Services, p: &Principal, q: &AnalyticsQuery) -> AppResult<DealsView> {
    let (period, mut tx) = begin(s, p, q).await?;
    let stages = store::stage_values(&mut tx).await?;
    let closed = store::closed_deal_values(&mut tx, &period.range).await?;
    Ok(DealsView::new(
        &period,
        &stages,
        money(&closed, "won"),
        money(&closed, "lost"),
    ))
}

/// Campaigns started in the range (of one connection when given), each with its funnel:
/// targeted, then how many messages reached at least sent, delivered and read, failed, and
/// replied (at most 500 campaigns, oldest first).
pub async fn campaigns(
    s: &Services,
    p: &Principal,
    q: &AnalyticsQuery,
) -> AppResult<CampaignsAnalyticsView> {
    let (period, mut tx) = begin(s, p, q).await?;
    let list = palisade_store::campaigns::started_between(
        &mut tx,
        period.range.from,
        period.range.to,
        period.range.connection_id,
        500,
    )
    .await?;
    let ids: Vec<_> = list.iter().map(|c| c.id).collect();
    let counts = palisade_store::campaigns::counts_many(&mut tx, &ids).await?;
    let out = list
        .iter()
        .map(|c| CampaignFunnelView::new(c, &counts.get(&c.id).cloned().unwrap_or_default()))
        .collect();
    Ok(CampaignsAnalyticsView {
        period: view::PeriodView::from(&period),
        campaigns: out,
    })
}

/// PostgreSQL's message counts appended by the trigger on `messages` (migration 0038) folded
/// into the rollups, by this node's worker ([`spawn_count_folder`]); a full batch asks for
/// another round at once. Readers add what is not folded yet, so this only keeps the pending
/// table small. SQLite has nothing to fold.
pub async fn fold_counts(s: &Services) -> AppResult<crate::worker::Next> {
    let mut tx = s
        .store
        .begin(palisade_store::SystemScope::new("analytics.fold_counts"))
        .await?;
    let n = store::fold_count_deltas(&mut tx).await?;
    tx.commit().await?;
    Ok(
        if n >= u64::try_from(store::FOLD_BATCH).unwrap_or(u64::MAX) {
            crate::worker::Next::Again
        } else {
            crate::worker::Next::Wait
        },
    )
}

/// The worker of [`fold_counts`], every `every` (PostgreSQL only: the server starts it there).
pub fn spawn_count_folder(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    crate::worker::spawn_periodic("folding message counts failed", every, None, move || {
        let s = s.clone();
        async move { fold_counts(&s).await }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed "now" for the defaults.
    const NOW: OffsetDateTime = time::macros::datetime!(2026-03-10 15:30 UTC);

    fn parse_period_at(q: &AnalyticsQuery) -> AppResult<Period> {
        parse_period(q, NOW)
    }

    fn q(from: &str, to: &str, interval: &str, tz: &str) -> AnalyticsQuery {
        AnalyticsQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            interval: Some(interval.into()),
            connection_id: None,
            tz: Some(tz.into()),
        }
    }

    fn hours(b: &Bucket) -> i64 {
        (b.hi - b.lo).whole_hours()
    }

    #[test]
    fn new_york_days_are_23_and_25_hours_on_the_changes() {
        let p = parse_period_at(&q("2026-03-07", "2026-03-10", "day", "America/New_York")).unwrap();
        let lens: Vec<i64> = p.buckets.iter().map(hours).collect();
        assert_eq!(lens, [24, 23, 24]);
        assert_eq!(p.starts[1].to_string(), "2026-03-08");
        assert_eq!(
            p.buckets[0].lo,
            time::macros::datetime!(2026-03-07 05:00 UTC)
        );
        let p = parse_period_at(&q("2026-11-01", "2026-11-02", "day", "America/New_York")).unwrap();
        assert_eq!(p.buckets.iter().map(hours).collect::<Vec<_>>(), [25]);
    }

    #[test]
    fn kolkata_days_start_at_half_past_six_the_evening_before_in_utc() {
        let p = parse_period_at(&q("2026-01-05", "2026-01-07", "day", "Asia/Kolkata")).unwrap();
        assert_eq!(
            p.buckets[0].lo,
            time::macros::datetime!(2026-01-04 18:30 UTC)
        );
        assert_eq!(p.buckets.len(), 2);
    }

    #[test]
    fn weeks_start_on_monday_and_are_clipped_to_the_range() {
        // 2026-03-04 is a Wednesday.
        let p = parse_period_at(&q("2026-03-04", "2026-03-17", "week", "UTC")).unwrap();
        assert_eq!(
            p.starts.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            ["2026-03-02", "2026-03-09", "2026-03-16"]
        );
        assert_eq!(
            p.buckets[0].lo,
            time::macros::datetime!(2026-03-04 00:00 UTC)
        );
        assert_eq!(
            p.buckets[2].hi,
            time::macros::datetime!(2026-03-17 00:00 UTC)
        );
    }

    #[test]
    fn without_a_range_it_is_the_last_thirty_local_days_until_now() {
        let p = parse_period_at(&AnalyticsQuery {
            tz: Some("America/New_York".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.buckets.len(), 30);
        assert_eq!(p.starts.first().unwrap().to_string(), "2026-02-09");
        assert_eq!(p.starts.last().unwrap().to_string(), "2026-03-10");
        assert_eq!(p.range.from, time::macros::datetime!(2026-02-09 05:00 UTC));
        assert_eq!(p.range.to, NOW);
        // A `to` at a midnight ends the day before it; `from` alone runs until now.
        let p = parse_period_at(&AnalyticsQuery {
            to: Some("2026-03-01".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.buckets.len(), 30);
        assert_eq!(p.starts.first().unwrap().to_string(), "2026-01-30");
        assert_eq!(p.starts.last().unwrap().to_string(), "2026-02-28");
        let p = parse_period_at(&AnalyticsQuery {
            from: Some("2026-03-09".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.buckets.len(), 2);
        assert_eq!(p.range.to, NOW);
    }

    #[test]
    fn bad_queries_name_every_field() {
        let e = |q: AnalyticsQuery| match parse_period_at(&q) {
            Err(AppError::Validation { fields, .. }) => fields.into_keys().collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e(AnalyticsQuery {
                from: Some(String::new()),
                to: Some(String::new()),
                ..Default::default()
            }),
            ["from", "to"]
        );
        assert_eq!(e(q("2026-03-02", "2026-03-01", "day", "UTC")), ["to"]);
        assert_eq!(e(q("2025-01-01", "2026-01-03", "day", "UTC")), ["to"]);
        assert_eq!(
            e(q("2026-01-01", "2026-01-03", "month", "UTC")),
            ["interval"]
        );
        assert_eq!(
            e(q("2026-01-01", "2026-01-03", "day", "Mars/Olympus")),
            ["tz"]
        );
        assert_eq!(
            e(q("2026-01-01", "2026-01-03", "day", "../../etc/passwd")),
            ["tz"]
        );
        assert_eq!(e(q("yesterday", "2026-01-03", "day", "UTC")), ["from"]);
        assert!(parse_period_at(&q("2025-01-01", "2026-01-02", "day", "UTC")).is_ok());
    }
}
