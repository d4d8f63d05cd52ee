//! The mails an app queued, as a test reads them: `app.wait_mail(to, kind)`.
//!
//! Mails are read from the outbox and decrypted with the app's key ring. A mail whose body is
//! gone from the outbox (sent by the mail worker) is read from what the worker delivered: the
//! test apps have no SMTP URL unless a test sets one, so the worker writes
//! `<data dir>/mail/<outbox id>.eml` (this node's or a peer's). A mail sent over SMTP (to a
//! test's `SmtpSink`) is read from the sink.

use crate::{TestApp, TestDb};
use palisade_core::mail::Content;
use std::time::Duration;

/// One queued mail.
#[derive(Debug, Clone)]
pub struct TestMail {
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl TestMail {
    /// The first run of exactly `digits` ASCII digits in the plain-text part (a one-time code).
    pub fn code(&self, digits: usize) -> Option<String> {
        self.text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == digits)
            .map(str::to_owned)
    }

    /// The first link in the plain-text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> Option<String> {
        self.text
            .split_whitespace()
            .find(|w| w.starts_with(prefix))
            .map(str::to_owned)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    kind: String,
    to_address: String,
    payload: String,
}

const SELECT: &str =
    "SELECT id, kind, to_address, payload FROM mail_outbox ORDER BY created_at, id";

impl TestApp {
    /// Every mail queued for `to` (any kind), oldest first.
    pub async fn mails_to(&self, to: &str) -> Vec<TestMail> {
        use sqlx::Connection;
        let rows: Vec<Row> = match &self.db {
            TestDb::Sqlite { url } => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
                sqlx::query_as(SELECT)
                    .fetch_all(&mut c)
                    .await
                    .expect("outbox")
            }
            TestDb::Postgres { admin_url, .. } => {
                let mut c = sqlx::PgConnection::connect(admin_url)
                    .await
                    .expect("postgres");
                sqlx::query_as(SELECT)
                    .fetch_all(&mut c)
                    .await
                    .expect("outbox")
            }
        };
        rows.into_iter()
            .filter(|r| r.to_address.eq_ignore_ascii_case(to))
            .filter_map(|r| {
                if r.payload.is_empty() {
                    return self.delivered(r);
                }
                let aad = format!("mail_outbox:{}", r.id);
                let plain = self
                    .services
                    .keys
                    .encryption
                    .decrypt(&r.payload, aad.as_bytes())
                    .expect("decrypt an outbox payload");
                let c: Content = serde_json::from_slice(&plain).expect("outbox payload");
                Some(TestMail {
                    kind: r.kind,
                    to: r.to_address,
                    subject: c.subject,
                    text: c.text,
                    html: c.html,
                })
            })
            .collect()
    }

    /// A sent mail as the worker wrote it (`<id>.eml` in a mail directory); `None` when it was
    /// not written here (given up, or sent over SMTP).
    fn delivered(&self, r: Row) -> Option<TestMail> {
        let dirs = self.mail_dirs.lock().expect("mail dirs").clone();
        let bytes = dirs
            .iter()
            .find_map(|d| std::fs::read(d.join(format!("{}.eml", r.id))).ok())?;
        let m = mail_parser::MessageParser::default()
            .parse(&bytes)
            .expect("a delivered .eml file parses");
        let subject = m.subject().unwrap_or_default().to_owned();
        let text = m.body_text(0).map(|c| c.into_owned()).unwrap_or_default();
        let html = m.body_html(0).map(|c| c.into_owned()).unwrap_or_default();
        Some(TestMail {
            kind: r.kind,
            to: r.to_address,
            subject,
            text,
            html,
        })
    }

    /// Mails of `kind` queued for `to`, oldest first.
    pub async fn mails_of(&self, to: &str, kind: &str) -> Vec<TestMail> {
        let mut all = self.mails_to(to).await;
        all.retain(|m| m.kind == kind);
        all
    }

    /// The newest mail of `kind` for `to`, waiting up to five seconds for it.
    pub async fn wait_mail(&self, to: &str, kind: &str) -> TestMail {
        for _ in 0..100 {
            if let Some(m) = self.mails_of(to, kind).await.pop() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {kind} mail to {to} within 5 s");
    }
}
