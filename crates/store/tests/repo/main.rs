//! Repository tests: the store's statements run directly, without HTTP, on SQLite and (when
//! `PALISADE_TEST_POSTGRES_URL` is set) PostgreSQL through a role with no SUPERUSER and no
//! BYPASSRLS, so row-level security binds them. `both!` turns each `async fn name(db: Db)` into
//! `name::sqlite` and `name::postgres`, as in the application's integration tests.
//!
//! These check what the SQL itself promises (a status that only moves forward, a queue row
//! claimed once, a hash chain that exposes an edit); the HTTP tests check the product around it.

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
                    super::$name($crate::harness::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::harness::Db::postgres_url().is_none() {
                        eprintln!("skipped: set PALISADE_TEST_POSTGRES_URL to run on PostgreSQL");
                        return;
                    }
                    super::$name($crate::harness::Db::Postgres).await
                }
            }
        )*
    };
}

/// Two workers claim from one queue: `|tx| claim(tx, …)` runs in a first transaction and, while
/// that one still holds its rows, in a second one (PostgreSQL, where `FOR UPDATE SKIP LOCKED`
/// must make the second skip them); on SQLite, whose single writer runs write transactions one
/// at a time, the second runs after the first commits. Returns both claims.
macro_rules! claim_twice {
    ($t:expr, |$tx:ident| $claim:expr) => {{
        let mut first = $t.system().await;
        let a = {
            let $tx = &mut first;
            $claim.await.unwrap()
        };
        let mut holding = Some(first);
        if $t.db == $crate::harness::Db::Sqlite {
            holding.take().unwrap().commit().await.unwrap();
        }
        let mut second = $t.system().await;
        let b = {
            let $tx = &mut second;
            $claim.await.unwrap()
        };
        second.commit().await.unwrap();
        if let Some(first) = holding {
            first.commit().await.unwrap();
        }
        (a, b)
    }};
}

mod harness;

mod analytics;
mod api_keys;
mod audit;
mod campaigns;
mod contacts;
mod inbound_events;
mod isolation;
mod latest_messages;
mod login_history;
mod login_throttle;
mod media;
mod messages;
mod notifications;
mod passkeys;
mod realtime;
mod security_alerts;
mod send_queue;
mod sessions;
mod templates;
mod tenants;
mod two_factor;
mod users;
mod wal;
mod webhooks;
mod whatsapp_connections;
