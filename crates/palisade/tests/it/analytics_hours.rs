//! The hourly message counts (`message_counts_hourly`, migration 0035) next to the quarter
//! hours: a few hundred messages spread over five days at every minute of the hour, written
//! in one statement (PostgreSQL's statement trigger sees them all at once), and the messages
//! in and out of every bucket compared with the messages themselves in zones whose offset is
//! not whole hours (Kolkata +05:30, Kathmandu +05:45, Eucla +08:45), in UTC, for weeks, for
//! RFC 3339 ends inside an hour, and for the agents' sent messages.

use crate::support::whatsapp_fixture;
use palisade_testkit::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::macros::{datetime, format_description};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

both!(hourly_counts_agree_with_the_messages_in_zones_off_the_hour);

fn stored(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].000000000Z"
    ))
    .unwrap()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The start of the local day `start` (a `YYYY-MM-DD` date) at `offset`, in UTC.
fn local_midnight(start: &str, offset: UtcOffset) -> OffsetDateTime {
    let d = time::Date::parse(start, format_description!("[year]-[month]-[day]")).unwrap();
    PrimitiveDateTime::new(d, Time::MIDNIGHT)
        .assume_offset(offset)
        .to_offset(UtcOffset::UTC)
}

async fn hourly_counts_agree_with_the_messages_in_zones_off_the_hour(db: Db) {
    let f = whatsapp_fixture(db).await;
    let app = &f.app;
    let t = f.owner.access_token.as_str();
    let r = app
        .post(
            "/api/v1/contacts",
            Some(t),
            json!({"phone": "+15550001001"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (new_id, time_of) = match db {
        Db::Sqlite => ("randomblob(16)", "x.t"),
        Db::Postgres => ("gen_random_uuid()", "CAST(x.t AS timestamptz)"),
    };
    let created = stored(datetime!(2026-03-05 00:00 UTC));
    app.db
        .execute_as_owner(&format!(
            "INSERT INTO conversations (id, tenant_id, contact_id, connection_id, status,
                 last_message_at, created_at, updated_at)
             SELECT {new_id}, c.tenant_id, c.id, w.id, 'open', '{created}', '{created}', '{created}'
             FROM contacts c JOIN whatsapp_connections w ON w.tenant_id = c.tenant_id
             WHERE c.phone = '+15550001001'"
        ))
        .await
        .unwrap();

    // Every 1,093 s (about 18 minutes, so every minute of the hour comes round) from Mar 6 to
    // Mar 11 UTC: in and out by turns, every seventh a note (never counted), plus one on each
    // hour, half hour and quarter hour near the Kolkata and Kathmandu midnights.
    let start = datetime!(2026-03-06 00:00 UTC);
    let mut times: Vec<(OffsetDateTime, &str)> = (0..395)
        .map(|k: i64| {
            let dir = match k % 7 {
                6 => "internal",
                x if x % 2 == 0 => "inbound",
                _ => "outbound",
            };
            (start + Duration::seconds(k * 1_093), dir)
        })
        .collect();
    for day in 6..11 {
        for (h, m) in [
            (18, 0),
            (18, 14),
            (18, 15),
            (18, 29),
            (18, 30),
            (18, 44),
            (18, 45),
        ] {
            let at = datetime!(2026-03-01 00:00 UTC)
                + Duration::days(day - 1)
                + Duration::hours(h)
                + Duration::minutes(m);
            times.push((at, if m % 2 == 0 { "inbound" } else { "outbound" }));
        }
    }
    let rows: Vec<String> = times
        .iter()
        .enumerate()
        .map(|(i, (at, dir))| {
            let status = match *dir {
                "inbound" => "received",
                "outbound" => "sent",
                _ => "recorded",
            };
            format!("({i}, '{dir}', '{status}', '{}')", stored(*at))
        })
        .collect();
    app.db
        .execute_as_owner(&format!(
            "WITH x(k, direction, status, t) AS (VALUES {})
             INSERT INTO messages (id, tenant_id, conversation_id, connection_id, wamid, direction,
                 type, body, text, status, created_at, status_updated_at, author_id)
             SELECT {new_id}, v.tenant_id, v.id, v.connection_id, 'wamid.h' || x.k, x.direction,
                 'text', '{{}}', 'x', x.status, {time_of}, {time_of},
                 CASE WHEN x.direction = 'inbound' THEN NULL
                      ELSE (SELECT u.id FROM users u WHERE u.email = 'owner@acme.example') END
             FROM conversations v, x",
            rows.join(", ")
        ))
        .await
        .unwrap();
    // The hourly counts hold every message in or out, once (on PostgreSQL once the pending
    // counts are folded in, as the server's worker does every second).
    palisade_core::analytics::fold_counts(&app.services)
        .await
        .unwrap();
    let counted = app
        .db
        .count_as_owner("SELECT CAST(SUM(n) AS bigint) FROM message_counts_hourly")
        .await
        .unwrap();
    let in_or_out = times.iter().filter(|(_, d)| *d != "internal").count();
    assert_eq!(counted, i64::try_from(in_or_out).unwrap());

    let count = |lo: OffsetDateTime, hi: OffsetDateTime, dir: &str| -> i64 {
        let n = times
            .iter()
            .filter(|(at, d)| *d == dir && *at >= lo && *at < hi)
            .count();
        i64::try_from(n).unwrap()
    };
    let get = |path: String| async move {
        let r = app.get(&path, t).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body
    };
    // Every bucket of `body` against the messages, its bounds the local midnights at `offset`
    // (`days` long) clipped to `[from, to)`.
    let check = |body: &Value, offset: UtcOffset, days: i64, from, to| {
        let buckets = body["buckets"].as_array().unwrap();
        assert!(!buckets.is_empty(), "{body}");
        let mut total = 0;
        for b in buckets {
            let lo = local_midnight(b["start"].as_str().unwrap(), offset);
            let (lo, hi) = (lo.max(from), (lo + Duration::days(days)).min(to));
            assert_eq!(b["messages_in"], count(lo, hi, "inbound"), "{b} in {body}");
            assert_eq!(
                b["messages_out"],
                count(lo, hi, "outbound"),
                "{b} in {body}"
            );
            total += b["messages_in"].as_i64().unwrap() + b["messages_out"].as_i64().unwrap();
        }
        assert!(total > 0, "{body}");
    };

    for (tz, h, m) in [
        ("Asia/Kolkata", 5, 30),
        ("Asia/Kathmandu", 5, 45),
        ("Australia/Eucla", 8, 45),
        ("UTC", 0, 0),
    ] {
        let offset = UtcOffset::from_hms(h, m, 0).unwrap();
        let (from, to) = (
            local_midnight("2026-03-06", offset),
            local_midnight("2026-03-11", offset),
        );
        let body = get(format!(
            "/api/v1/analytics/overview?from=2026-03-06&to=2026-03-11&tz={tz}"
        ))
        .await;
        assert_eq!(body["buckets"].as_array().unwrap().len(), 5, "{body}");
        check(&body, offset, 1, from, to);
        assert_eq!(body["messages_in"], count(from, to, "inbound"), "{tz}");
        assert_eq!(body["messages_out"], count(from, to, "outbound"), "{tz}");

        // Weeks (Mar 2 and Mar 9 are Mondays), clipped to the range.
        let body = get(format!(
            "/api/v1/analytics/overview?from=2026-03-06&to=2026-03-11&tz={tz}&interval=week"
        ))
        .await;
        let weeks = body["buckets"].as_array().unwrap();
        assert_eq!(weeks.len(), 2, "{body}");
        check(&body, offset, 7, from, to);

        // RFC 3339 ends inside an hour and inside a quarter hour.
        let (from, to) = (
            datetime!(2026-03-06 10:07:30 UTC),
            datetime!(2026-03-10 18:52:00 UTC),
        );
        let body = get(format!(
            "/api/v1/analytics/overview?from={}&to={}&tz={tz}",
            rfc3339(from),
            rfc3339(to)
        ))
        .await;
        check(&body, offset, 1, from, to);

        // The agents' sent messages over the same range.
        let body = get(format!(
            "/api/v1/analytics/agents?from={}&to={}&tz={tz}",
            rfc3339(from),
            rfc3339(to)
        ))
        .await;
        let owner = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user_id"] == f.owner.user_id.as_str())
            .unwrap_or_else(|| panic!("{body}"))
            .clone();
        assert_eq!(
            owner["messages_sent"],
            count(from, to, "outbound"),
            "{tz}: {body}"
        );
    }
}
