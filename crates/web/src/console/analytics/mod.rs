//! `/analytics`: the team's dashboard for members (`analytics.read`), read through the use
//! cases `GET /api/v1/analytics/{conversations,agents,deals,campaigns}` call, with the same
//! query (the overview's figures are the conversations' and the deals' answers).
//!
//! The period is picked as a person thinks of it (the last 7, 30 or 90 days, today included,
//! or from one date to another, both included) and turned here into the API's range
//! (`from` = the first day, `to` = the day after the last: the API's end is excluded). Days are
//! local to the time zone asked for (`UTC` when none: neither the tenant nor its users have a
//! time zone of their own). A value the API refuses is shown next to its field with the API's
//! `422`, and nothing else is read.
//!
//! The charts are server-rendered SVG (`console::chart`), with the numbers in a table as well.

mod results;

use super::page::{app_error, render_with, Choice, Chrome, Nav, PageQuery};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::analytics::{self, AnalyticsQuery};
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
    results: Option<results::Results>,
}

impl DashboardPage {
    fn error(&self, field: &str) -> &str {
        self.errors.get(field).map(String::as_str).unwrap_or("")
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

async fn dashboard(
    State(state): State<AppState>,
    viewer: Viewer,
    PageQuery(params): PageQuery<Params>,
) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
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
        let c = analytics::conversations(s, p, &q).await?;
        let a = analytics::agents(s, p, &q).await?;
        let d = analytics::deals(s, p, &q).await?;
        let k = analytics::campaigns(s, p, &q).await?;
        Ok::<_, AppError>((c, a, d, k))
    };
    match read.await {
        Ok((c, a, d, k)) => {
            page.results = Some(results::results(
                &c,
                &a,
                &d,
                &k,
                &page.form.from,
                &page.form.to,
            ));
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
}
