//! The mails an app queued, as a test reads them: `app.wait_mail(to, kind)`.
//!
//! Mails are read from the outbox and decrypted with the app's key ring. A mail whose body is
//! gone from the outbox (sent by the mail worker) is read from what the worker delivered.

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
            .filter(|r| r.to_address.eq_ignore_ascii_case(to) && !r.payload.is_empty())
            .map(|r| {
                let aad = format!("mail_outbox:{}", r.id);
                let plain = self
                    .services
                    .keys
                    .encryption
                    .decrypt(&r.payload, aad.as_bytes())
                    .expect("decrypt an outbox payload");
                let c: Content = serde_json::from_slice(&plain).expect("outbox payload");
                TestMail {
                    kind: r.kind,
                    to: r.to_address,
                    subject: c.subject,
                    text: c.text,
                    html: c.html,
                }
            })
            .collect()
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
