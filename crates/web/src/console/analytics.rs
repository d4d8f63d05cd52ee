//! `/analytics`: the team's dashboard for members (`analytics.read`), read through the use
//! cases `GET /api/v1/analytics/{overview,agents,deals}` call, with the same query.
//!
//! The period is picked as a person thinks of it (the last 7, 30 or 90 days, today included,
//! or from one date to another, both included) and turned here into the API's range
//! (`from` = the first day, `to` = the day after the last: the API's end is excluded). Days are
//! local to the time zone asked for (`UTC` when none: neither the tenant nor its users have a
//! time zone of their own). A value the API refuses is shown next to its field with the API's
//! `422`, and nothing else is read.
//!
//! The charts are server-rendered SVG (`console::chart`), with the numbers in a table as well.

use super::chart::{self, BarChart, Bucket, Series};
use super::deals::format_money;
use super::page::{app_error, bad_query, render_with, Choice, Chrome, Nav};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::analytics::{
    self, AgentsView, AnalyticsQuery, DealsView, OverviewView, PercentilesView,
};
use palisade_core::AppError;
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/analytics", get(dashboard))
}

/// The presets of the period picker, in days (today included).
const PRESETS: [(&str, i64); 3] = [("7", 7), ("30", 30), ("90", 90)];

#[derive(Debug, Default, Deserialize)]
struct Params {
    /// `7`, `30`, `90` (the default `30`) or `custom` (then `from` and `to`).
    #[serde(default)]
    period: String,
    #[serde(default)]
    from: String,
    /// The last day, included.
    #[serde(default)]
    to: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    tz: String,
    #[serde(default)]
    connection: String,
}

/// The form as the person left it (shown back with the results or the errors).
struct Form {
    period: String,
    from: String,
    to: String,
    interval: String,
    tz: String,
    connection: String,
}

/// One figure of the overview.
struct Figure {
    label: &'static str,
    value: String,
    hint: String,
}

struct BucketRow {
    start: String,
    messages_in: String,
    messages_out: String,
    conversations_new: String,
    conversations_resolved: String,
}

struct AgentRow {
    name: String,
    assigned: String,
    resolved: String,
    sent: String,
    median: String,
    p90: String,
}

struct StageRow {
    pipeline: String,
    name: String,
    kind: String,
    count: String,
    value: String,
}

/// What the dashboard shows when the API answered.
struct Results {
    range_label: String,
    figures: Vec<Figure>,
    messages_chart: BarChart,
    conversations_chart: BarChart,
    buckets: Vec<BucketRow>,
    agents: Vec<AgentRow>,
    stages: Vec<StageRow>,
    interval_word: &'static str,
}

#[derive(Template)]
#[template(path = "analytics/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    form: Form,
    presets: Vec<Choice>,
    connections: Vec<Choice>,
    /// The API's problems by form field (`from`, `to`, `interval`, `tz`, `connection`).
    errors: BTreeMap<String, String>,
    error_message: String,
    results: Option<Results>,
}

impl DashboardPage {
    fn error(&self, field: &str) -> &str {
        self.errors.get(field).map(String::as_str).unwrap_or("")
    }
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

/// The date `now` falls on in `tz` (UTC when the name is not a zone: the API then names the
/// field).
fn today_in(now: time::OffsetDateTime, tz: &str) -> jiff::civil::Date {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_second(now.unix_timestamp())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(zone)
        .date()
}

/// The API's query for the form: a preset's days end today; a custom range's last day is
/// included, so the API's (excluded) end is the day after it.
fn query(
    form: &Form,
    today: jiff::civil::Date,
) -> Result<AnalyticsQuery, BTreeMap<String, String>> {
    let day = |d: jiff::civil::Date, n: i64| {
        d.checked_add(jiff::Span::new().days(n))
            .map(|d| d.to_string())
            .unwrap_or_default()
    };
    let (from, to) = match PRESETS.iter().find(|(k, _)| *k == form.period) {
        Some((_, days)) => (day(today, 1 - days), day(today, 1)),
        None if form.period != "custom" => {
            return Err(BTreeMap::from([(
                "period".to_owned(),
                "must be the last 7, 30 or 90 days, or the dates below".to_owned(),
            )]))
        }
        None => {
            let to = match form.to.trim().parse::<jiff::civil::Date>() {
                Ok(d) => day(d, 1),
                Err(_) => form.to.trim().to_owned(),
            };
            (form.from.trim().to_owned(), to)
        }
    };
    let connection_id = match form.connection.trim() {
        "" => None,
        raw => match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => {
                return Err(BTreeMap::from([(
                    "connection".to_owned(),
                    "is not a WhatsApp number of your tenant".to_owned(),
                )]))
            }
        },
    };
    Ok(AnalyticsQuery {
        from: Some(from),
        to: Some(to),
        interval: Some(form.interval.clone()),
        connection_id,
        tz: Some(form.tz.clone()),
    })
}

/// The API's field names as the form's.
fn form_errors(fields: BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    fields
        .into_iter()
        .map(|(k, v)| {
            let k = if k == "connection_id" {
                "connection".into()
            } else {
                k
            };
            (k, v.join(" "))
        })
        .collect()
}

fn results(
    o: &OverviewView,
    a: &AgentsView,
    d: &DealsView,
    first_day: &str,
    last_day: &str,
) -> Results {
    let buckets: Vec<Bucket> = o.buckets.iter().map(|b| day_labels(&b.start)).collect();
    let week = o.period.interval == "week";
    let per = if week { "week" } else { "day" };
    let series = |f: fn(&analytics::BucketView) -> i64| o.buckets.iter().map(f).collect();
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
            o.period.tz
        ),
        figures: vec![
            Figure {
                label: "Messages received",
                value: count(o.messages_in),
                hint: String::new(),
            },
            Figure {
                label: "Messages sent",
                value: count(o.messages_out),
                hint: String::new(),
            },
            Figure {
                label: "New conversations",
                value: count(o.conversations_new),
                hint: String::new(),
            },
            Figure {
                label: "Resolved conversations",
                value: count(o.conversations_resolved),
                hint: String::new(),
            },
            percentiles("First response", &o.first_response_seconds, "conversations"),
            percentiles("Resolution time", &o.resolution_seconds, "conversations"),
            Figure {
                label: "Deals won",
                value: money(&o.deals_won),
                hint: String::new(),
            },
            Figure {
                label: "Deals lost",
                value: money(&o.deals_lost),
                hint: String::new(),
            },
        ],
        messages_chart,
        conversations_chart,
        buckets: o
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
        interval_word: if week { "Week of" } else { "Day" },
    }
}

async fn dashboard(
    State(state): State<AppState>,
    viewer: Viewer,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let Query(params) = match params {
        Ok(q) => q,
        Err(e) => return bad_query(e),
    };
    // Members only, before anything is computed (the use cases ask again).
    if let Err(e) = p.require(palisade_domain::Permission::AnalyticsRead) {
        return app_error(e);
    }
    let nonempty = |v: &str, d: &str| {
        let v = v.trim();
        if v.is_empty() {
            d.to_owned()
        } else {
            v.to_owned()
        }
    };
    let form = Form {
        period: nonempty(&params.period, "30"),
        from: params.from.trim().to_owned(),
        to: params.to.trim().to_owned(),
        interval: nonempty(&params.interval, "day"),
        tz: nonempty(&params.tz, "UTC"),
        connection: params.connection.trim().to_owned(),
    };
    // The numbers a member may filter by: only admins may list them (as in the API).
    let connections: Vec<Choice> = palisade_core::whatsapp::connections::list(s, p)
        .await
        .map(|list| {
            list.into_iter()
                .map(|c| Choice {
                    value: c.id.to_string(),
                    label: c.display_name,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut page = DashboardPage {
        chrome: Chrome::new(s, &viewer, "Analytics", Nav::Analytics),
        presets: PRESETS
            .iter()
            .map(|(k, d)| Choice {
                value: (*k).to_owned(),
                label: format!("Last {d} days"),
            })
            .chain(std::iter::once(Choice {
                value: "custom".into(),
                label: "Dates below".into(),
            }))
            .collect(),
        connections,
        errors: BTreeMap::new(),
        error_message: String::new(),
        results: None,
        form,
    };
    let q = match query(&page.form, today_in(s.now(), &page.form.tz)) {
        Ok(q) => q,
        Err(errors) => {
            page.errors = errors;
            page.error_message = "Check the highlighted fields.".into();
            return render_with(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    // A preset shows its days in the date fields (the last one included).
    let last =
        q.to.as_deref()
            .and_then(|t| t.parse::<jiff::civil::Date>().ok())
            .and_then(|d| d.checked_sub(jiff::Span::new().days(1)).ok())
            .map(|d| d.to_string())
            .unwrap_or_default();
    if page.form.period != "custom" {
        page.form.from = q.from.clone().unwrap_or_default();
        page.form.to = last;
    }
    let read = async {
        let o = analytics::overview(s, p, &q).await?;
        let a = analytics::agents(s, p, &q).await?;
        let d = analytics::deals(s, p, &q).await?;
        Ok::<_, AppError>((o, a, d))
    };
    match read.await {
        Ok((o, a, d)) => {
            page.results = Some(results(&o, &a, &d, &page.form.from, &page.form.to));
            render_with(StatusCode::OK, &page)
        }
        Err(AppError::Validation { message, fields }) => {
            page.errors = form_errors(fields);
            page.error_message = message;
            render_with(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => app_error(e),
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

    fn form(period: &str, from: &str, to: &str) -> Form {
        Form {
            period: period.into(),
            from: from.into(),
            to: to.into(),
            interval: "day".into(),
            tz: "UTC".into(),
            connection: String::new(),
        }
    }

    #[test]
    fn presets_end_today_and_a_custom_last_day_is_included() {
        let today: jiff::civil::Date = "2026-03-10".parse().unwrap();
        let q = query(&form("7", "", ""), today).unwrap();
        assert_eq!(q.from.as_deref(), Some("2026-03-04"));
        assert_eq!(q.to.as_deref(), Some("2026-03-11"));
        let q = query(&form("custom", "2026-02-01", "2026-02-28"), today).unwrap();
        assert_eq!(q.from.as_deref(), Some("2026-02-01"));
        assert_eq!(q.to.as_deref(), Some("2026-03-01"));
        // What is not a date goes to the API as it is, which names the field.
        let q = query(&form("custom", "", "soon"), today).unwrap();
        assert_eq!(q.to.as_deref(), Some("soon"));
        let mut f = form("30", "", "");
        f.connection = "nope".into();
        assert!(query(&f, today).unwrap_err().contains_key("connection"));
        assert!(query(&form("365", "", ""), today)
            .unwrap_err()
            .contains_key("period"));
    }

    #[test]
    fn dates_are_labelled_for_people() {
        let b = day_labels("2026-03-07");
        assert_eq!((b.short.as_str(), b.long.as_str()), ("7 Mar", "7 Mar 2026"));
        assert_eq!(day_labels("garbage").long, "garbage");
        assert_eq!(day_labels("2026-13-01").long, "2026-13-01");
    }
}
