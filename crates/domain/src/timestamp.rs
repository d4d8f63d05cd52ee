//! How a point in time is written in every answer, payload, event and export: RFC 3339.
//!
//! One function so that REST responses, webhook payloads, realtime frames and exports cannot
//! drift apart. (The store's fixed-width SQLite column format is a storage concern and lives in
//! the store.)

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `t` as RFC 3339 (`2026-12-06T03:06:32Z`, fractional seconds only when present, `Z` for UTC).
///
/// Formatting only fails for years outside 0..=9999, which no clock or stored value produces;
/// such a value renders as an empty string rather than failing the whole answer.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn writes_rfc3339_with_z_and_only_the_fraction_present() {
        assert_eq!(
            rfc3339(datetime!(2026-12-06 03:06:32 UTC)),
            "2026-12-06T03:06:32Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-12-06 03:06:32.25 UTC)),
            "2026-12-06T03:06:32.25Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-01-02 00:00:00.000_001 UTC)),
            "2026-01-02T00:00:00.000001Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-12-06 05:06:32 +02:00)),
            "2026-12-06T05:06:32+02:00"
        );
    }

    #[test]
    fn an_unformattable_year_is_an_empty_string_not_a_panic() {
        assert_eq!(rfc3339(datetime!(-0001-01-01 00:00 UTC)), "");
    }
}
