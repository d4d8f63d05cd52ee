//! Integration tests: the real server over HTTP, on SQLite and (when
//! `PALISADE_TEST_POSTGRES_URL` is set) PostgreSQL. `both!` turns each `async fn name(db: Db)`
//! into `name::sqlite` and `name::postgres`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Runs each listed test on both databases. The PostgreSQL variant is skipped (and says so)
/// when `PALISADE_TEST_POSTGRES_URL` is not set.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(palisade_testkit::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if palisade_testkit::Db::postgres_url().is_none() {
                        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
                        return;
                    }
                    super::$name(palisade_testkit::Db::Postgres).await
                }
            }
        )*
    };
}

/// Like `both!`, for tests that need Redis: each variant is skipped (and says so) when
/// `PALISADE_TEST_REDIS_URL` is not set. The test body points its apps at Redis itself
/// (`palisade_testkit::use_redis`).
macro_rules! both_with_redis {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if palisade_testkit::redis_url().is_none() {
                        eprintln!("skipped: set PALISADE_TEST_REDIS_URL to run with Redis");
                        return;
                    }
                    super::$name(palisade_testkit::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if palisade_testkit::Db::postgres_url().is_none() {
                        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
                        return;
                    }
                    if palisade_testkit::redis_url().is_none() {
                        eprintln!("skipped: set PALISADE_TEST_REDIS_URL to run with Redis");
                        return;
                    }
                    super::$name(palisade_testkit::Db::Postgres).await
                }
            }
        )*
    };
}

mod account_story;
mod analytics;
mod analytics_hours;
mod api_keys;
mod audit;
mod backups;
mod foundation;
mod nodes;
mod proxies;
mod races;
mod startup;
mod support;

mod attachments;
mod auth_login;
mod breached_passwords;
mod campaigns;
mod campaigns_crash;
mod console;
mod console_account;
mod console_admin;
mod console_analytics;
mod console_campaigns;
mod console_contacts;
mod console_deals;
mod console_inbox;
mod console_ops;
mod console_pipelines;
mod console_security;
mod console_templates;
mod console_tickets;
mod contacts;
mod conversations;
mod cross_tenant;
mod deals;
mod email_verification;
mod http_errors;
mod inbound;
mod integrations;
mod lifecycle;
mod login_history;
mod mail;
mod many_nodes;
mod media;
mod media_send;
mod metrics;
mod notifications;
mod openapi;
mod outbound;
mod passkeys;
mod password_reset;
mod passwords;
mod platform;
mod reach;
mod realtime;
mod registration;
mod schema_parity;
mod security_alerts;
mod security_geo;
mod serve_nodes;
mod sessions;
mod templates;
mod tenant;
mod tickets;
mod tokens;
mod traces;
mod two_factor;
mod two_factor_enforcement;
mod users;
mod webhook_floods;
mod webhook_urls;
mod webhooks;
mod whatsapp;
mod whatsapp_reconnect;
