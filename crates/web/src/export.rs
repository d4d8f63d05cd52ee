//! Streamed exports (CSV and JSON Lines), shared by every route that exports a list: contacts,
//! the audit log, and each later one.
//!
//! An export is read in pages of [`PAGE_SIZE`] (newest first, keyset by id) and rendered as it
//! is read, so memory does not grow with the tenant. CSV quotes every field and neutralises
//! spreadsheet formulas (OWASP "CSV injection": a value starting with `=`, `+`, `-`, `@`, tab or
//! carriage return gets a leading `'`), except columns the row declares safe. JSON Lines is the
//! API's own object, one per line. Kept apart from the routes so the bytes of every export are
//! made by one piece of code.

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use palisade_core::{AppError, AppResult};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// How many rows an export reads at a time.
pub const PAGE_SIZE: i64 = 500;

/// The `format` query parameter of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            _ => Err(AppError::BadRequest {
                code: "invalid_query",
                message: "format must be csv or jsonl".into(),
            }),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }

    /// One row, with its line ending.
    fn line<R: ExportRow>(self, r: &R) -> String {
        let mut line = match self {
            ExportFormat::Csv => r
                .csv_cells()
                .iter()
                .map(CsvCell::render)
                .collect::<Vec<_>>()
                .join(","),
            ExportFormat::Jsonl => serde_json::to_string(r).unwrap_or_default(),
        };
        line.push('\n');
        line
    }
}

/// One CSV field.
pub enum CsvCell {
    /// Any value: quoted, with a formula neutralised.
    Text(String),
    /// A value validated not to start a formula (an E.164 phone): quoted only, so other systems
    /// import it as it is.
    Safe(String),
}

impl CsvCell {
    fn render(&self) -> String {
        match self {
            CsvCell::Text(v) => quoted(&neutralised(v)),
            CsvCell::Safe(v) => quoted(v),
        }
    }
}

fn neutralised(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    }
}

fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\"\""))
}

/// A view that can be a row of an export.
pub trait ExportRow: Serialize {
    /// The CSV header, without its line ending.
    const CSV_HEADER: &'static str;
    /// The CSV fields, in the header's order.
    fn csv_cells(&self) -> Vec<CsvCell>;
    /// The id the next page starts after.
    fn cursor(&self) -> Uuid;
}

/// The streamed export response: `fetch(cursor)` reads the page of at most [`PAGE_SIZE`] rows
/// after `cursor` (the first page with `None`); a short page is the last. A page that fails
/// ends the body with an error (the client sees a truncated download, the log the cause).
/// `name` is the file name without extension (`contacts` → `contacts.csv`).
pub fn streamed<R, F, Fut>(format: ExportFormat, name: &'static str, fetch: F) -> Response
where
    R: ExportRow + Send + 'static,
    F: Fn(Option<Uuid>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AppResult<Vec<R>>> + Send + 'static,
{
    let fetch = Arc::new(fetch);
    let pages = futures_util::stream::unfold(Some(None), move |next: Option<Option<Uuid>>| {
        let fetch = fetch.clone();
        async move {
            let cursor = next?;
            let page = match fetch(cursor).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, export = name, "export page failed");
                    return Some((Err(std::io::Error::other("export interrupted")), None));
                }
            };
            let more = i64::try_from(page.len()).unwrap_or(i64::MAX) >= PAGE_SIZE;
            let next = if more {
                page.last().map(|r| Some(r.cursor()))
            } else {
                None
            };
            let chunk: String = page.iter().map(|r| format.line(r)).collect();
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    let header_line = futures_util::stream::iter(match format {
        ExportFormat::Csv => vec![Ok::<_, std::io::Error>(format!("{}\n", R::CSV_HEADER))],
        ExportFormat::Jsonl => vec![],
    });
    let mut resp = Body::from_stream(header_line.chain(pages)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{name}.{}\"",
        format.extension()
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        for (raw, want) in [
            ("plain", "\"plain\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("=SUM(A1)", "\"'=SUM(A1)\""),
            ("+1", "\"'+1\""),
            ("-1", "\"'-1\""),
            ("@x", "\"'@x\""),
            ("\tx", "\"'\tx\""),
            ("\rx", "\"'\rx\""),
            ("", "\"\""),
        ] {
            assert_eq!(CsvCell::Text(raw.into()).render(), want, "{raw:?}");
        }
        assert_eq!(
            CsvCell::Safe("+447700900123".into()).render(),
            "\"+447700900123\""
        );
    }

    #[test]
    fn formats_parse_with_the_api_error() {
        assert_eq!(ExportFormat::parse("csv").unwrap(), ExportFormat::Csv);
        assert_eq!(ExportFormat::parse("jsonl").unwrap(), ExportFormat::Jsonl);
        let e = ExportFormat::parse("xlsx").unwrap_err();
        assert!(matches!(
            e,
            AppError::BadRequest { code: "invalid_query", ref message } if message == "format must be csv or jsonl"
        ));
    }
}
