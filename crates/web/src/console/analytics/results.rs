//! What the dashboard shows, from the use cases' answers: the figures, the charts and the
//! tables.

use crate::console::chart::{self, BarChart, Bucket, Series, ShareBar};
use crate::console::money::format_money;
use palisade_core::analytics::{
    self, AgentsView, CampaignFunnelView, CampaignsAnalyticsView, ConversationsView, DealsView,
    PercentilesView,
};
use std::collections::BTreeMap;

/// One figure of the overview.
pub(super) struct Figure {
    pub(super) label: &'static str,
    pub(super) value: String,
    pub(super) hint: String,
}

pub(super) struct BucketRow {
    pub(super) start: String,
    pub(super) messages_in: String,
    pub(super) messages_out: String,
    pub(super) conversations_new: String,
    pub(super) conversations_resolved: String,
}

pub(super) struct AgentRow {
    pub(super) name: String,
    pub(super) assigned: String,
    pub(super) resolved: String,
    pub(super) sent: String,
    pub(super) median: String,
    pub(super) p90: String,
}

pub(super) struct StageRow {
    pub(super) pipeline: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) count: String,
    pub(super) value: String,
}

/// What the dashboard shows when the API answered.
pub(super) struct Results {
    pub(super) range_label: String,
    pub(super) figures: Vec<Figure>,
    pub(super) messages_chart: BarChart,
    pub(super) conversations_chart: BarChart,
    pub(super) buckets: Vec<BucketRow>,
    pub(super) agents: Vec<AgentRow>,
    pub(super) stages: Vec<StageRow>,
    /// Conversations created in the period, by their status now.
    pub(super) by_status: ShareBar,
    /// The campaigns started in the period.
    pub(super) campaigns: Vec<FunnelRow>,
    pub(super) interval_word: &'static str,
}

/// One campaign started in the period, and how far its messages got.
pub(super) struct FunnelRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) status: String,
    pub(super) targeted: String,
    pub(super) sent: String,
    pub(super) delivered: String,
    pub(super) read: String,
    pub(super) replied: String,
    pub(super) failed: String,
    pub(super) skipped: String,
    pub(super) bar: ShareBar,
}

/// Seconds as a person reads a duration: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub(crate) fn human_duration(seconds: Option<f64>) -> String {
    let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "No data".into();
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // finite, >= 0, rounded
    let s = s.round().min(1e15) as u64;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, m) if m < 10 && sec > 0 => format!("{m} min {sec} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

fn count(n: i64) -> String {
    chart::group_digits(i128::from(n))
}

fn money(values: &BTreeMap<String, i64>) -> String {
    if values.is_empty() {
        return "None".into();
    }
    values
        .iter()
        .map(|(cur, v)| format_money(i128::from(*v), cur))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percentiles(label: &'static str, p: &PercentilesView, what: &str) -> Figure {
    Figure {
        label,
        value: human_duration(p.median),
        hint: if p.count == 0 {
            format!("no {what} measured")
        } else {
            format!(
                "median; 90% within {} ({} {what})",
                human_duration(p.p90),
                count(p.count)
            )
        },
    }
}

/// `2026-03-07` → (`7 Mar`, `7 Mar 2026`).
fn day_labels(date: &str) -> Bucket {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    let month = m
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| m.checked_sub(1))
        .and_then(|i| MONTHS.get(i));
    match (y, month, d.and_then(|d| d.parse::<u8>().ok())) {
        (Some(y), Some(mon), Some(d)) => Bucket {
            short: format!("{d} {mon}"),
            long: format!("{d} {mon} {y}"),
        },
        _ => Bucket {
            short: date.to_owned(),
            long: date.to_owned(),
        },
    }
}

pub(super) fn results(
    c: &ConversationsView,
    a: &AgentsView,
    d: &DealsView,
    campaigns: &CampaignsAnalyticsView,
    first_day: &str,
    last_day: &str,
) -> Results {
    let buckets: Vec<Bucket> = c.buckets.iter().map(|b| day_labels(&b.start)).collect();
    let week = c.period.interval == "week";
    let per = if week { "week" } else { "day" };
    let series = |f: fn(&analytics::BucketView) -> i64| c.buckets.iter().map(f).collect();
    let messages_chart = chart::bars(
        "messages-chart",
        &format!("Messages per {per}"),
        "No messages in this period",
        &buckets,
        &[
            Series {
                name: "Received",
                class: "bar-in",
                values: series(|b| b.messages_in),
            },
            Series {
                name: "Sent",
                class: "bar-out",
                values: series(|b| b.messages_out),
            },
        ],
    );
    let conversations_chart = chart::bars(
        "conversations-chart",
        &format!("Conversations per {per}"),
        "No new or resolved conversations in this period",
        &buckets,
        &[
            Series {
                name: "New",
                class: "bar-new",
                values: series(|b| b.conversations_new),
            },
            Series {
                name: "Resolved",
                class: "bar-resolved",
                values: series(|b| b.conversations_resolved),
            },
        ],
    );
    Results {
        range_label: format!(
            "{} to {} ({})",
            day_labels(first_day).long,
            day_labels(last_day).long,
            c.period.tz
        ),
        figures: vec![
            Figure {
                label: "Messages received",
                value: count(c.buckets.iter().map(|b| b.messages_in).sum()),
                hint: String::new(),
            },
            Figure {
                label: "Messages sent",
                value: count(c.buckets.iter().map(|b| b.messages_out).sum()),
                hint: String::new(),
            },
            Figure {
                label: "New conversations",
                value: count(c.conversations_new),
                hint: String::new(),
            },
            Figure {
                label: "Resolved conversations",
                value: count(c.conversations_resolved),
                hint: String::new(),
            },
            percentiles("First response", &c.first_response_seconds, "conversations"),
            percentiles("Resolution time", &c.resolution_seconds, "conversations"),
            Figure {
                label: "Deals won",
                value: money(&d.deals_won),
                hint: String::new(),
            },
            Figure {
                label: "Deals lost",
                value: money(&d.deals_lost),
                hint: String::new(),
            },
        ],
        messages_chart,
        conversations_chart,
        buckets: c
            .buckets
            .iter()
            .zip(&buckets)
            .map(|(b, l)| BucketRow {
                start: l.long.clone(),
                messages_in: count(b.messages_in),
                messages_out: count(b.messages_out),
                conversations_new: count(b.conversations_new),
                conversations_resolved: count(b.conversations_resolved),
            })
            .collect(),
        agents: a
            .data
            .iter()
            .map(|x| AgentRow {
                name: x.name.clone(),
                assigned: count(x.conversations_assigned),
                resolved: count(x.conversations_resolved),
                sent: count(x.messages_sent),
                median: human_duration(x.first_response_seconds.median),
                p90: human_duration(x.first_response_seconds.p90),
            })
            .collect(),
        stages: d
            .stages
            .iter()
            .map(|s| StageRow {
                pipeline: s.pipeline_name.clone(),
                name: s.name.clone(),
                kind: s.kind.clone(),
                count: count(s.count),
                value: if s.value_minor.is_empty() {
                    "—".into()
                } else {
                    money(&s.value_minor)
                },
            })
            .collect(),
        by_status: chart::shares(
            "status-bar".into(),
            "Conversations created in the period, by status now",
            &[
                ("Open", "bar-in", c.by_status.open),
                ("Pending", "bar-new", c.by_status.pending),
                ("Resolved", "bar-resolved", c.by_status.resolved),
            ],
        ),
        campaigns: campaigns.campaigns.iter().map(funnel).collect(),
        interval_word: if week { "Week of" } else { "Day" },
    }
}

/// `n` of `of` as a share (`—` when there is no whole).
fn percent(n: i64, of: i64) -> String {
    if of <= 0 {
        return "—".into();
    }
    #[allow(clippy::cast_precision_loss)] // a share on screen
    let share = n.max(0) as f64 / of as f64 * 100.0;
    format!("{share:.0}%")
}

fn funnel(f: &CampaignFunnelView) -> FunnelRow {
    // The funnel's counts are cumulative (sent includes delivered and read); the bar shows each
    // recipient once, at the furthest step it reached.
    let waiting = f.targeted - f.skipped - f.sent - f.failed;
    FunnelRow {
        id: f.id.to_string(),
        name: f.name.clone(),
        status: f.status.clone(),
        targeted: count(f.targeted),
        sent: count(f.sent),
        delivered: format!("{} ({})", count(f.delivered), percent(f.delivered, f.sent)),
        read: format!("{} ({})", count(f.read), percent(f.read, f.sent)),
        replied: format!("{} ({})", count(f.replied), percent(f.replied, f.sent)),
        failed: count(f.failed),
        skipped: count(f.skipped),
        bar: chart::shares(
            format!("funnel-{}", f.id),
            &format!("How far the messages of {} got", f.name),
            &[
                ("Read", "funnel-read", f.read),
                (
                    "Delivered, not read",
                    "funnel-delivered",
                    f.delivered - f.read,
                ),
                ("Sent, not delivered", "funnel-sent", f.sent - f.delivered),
                ("Failed", "funnel-failed", f.failed),
                ("Skipped", "funnel-skipped", f.skipped),
                ("Waiting", "funnel-waiting", waiting),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        let d = |s: f64| human_duration(Some(s));
        assert_eq!(human_duration(None), "No data");
        assert_eq!(human_duration(Some(f64::NAN)), "No data");
        assert_eq!(human_duration(Some(-3.0)), "No data");
        assert_eq!(d(0.0), "0 s");
        assert_eq!(d(42.4), "42 s");
        assert_eq!(d(125.0), "2 min 5 s");
        assert_eq!(d(720.0), "12 min");
        assert_eq!(d(3600.0), "1 h");
        assert_eq!(d(3.0 * 3600.0 + 5.0 * 60.0 + 9.0), "3 h 5 min");
        assert_eq!(d(2.0 * 86_400.0 + 4.0 * 3600.0), "2 d 4 h");
        assert_eq!(d(86_400.0 + 59.0), "1 d");
        assert!(d(1e300).ends_with(" d 1 h") || d(1e300).ends_with(" d"));
    }

    #[test]
    fn dates_are_labelled_for_people() {
        let b = day_labels("2026-03-07");
        assert_eq!((b.short.as_str(), b.long.as_str()), ("7 Mar", "7 Mar 2026"));
        assert_eq!(day_labels("garbage").long, "garbage");
        assert_eq!(day_labels("2026-13-01").long, "2026-13-01");
    }

    #[test]
    fn shares_of_a_whole_read_as_percentages() {
        assert_eq!(percent(1, 3), "33%");
        assert_eq!(percent(3, 3), "100%");
        assert_eq!(percent(0, 0), "—");
        assert_eq!(percent(-2, 4), "0%");
    }
}
