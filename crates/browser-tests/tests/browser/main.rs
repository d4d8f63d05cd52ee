//! Browser tests of the web console: headless Chromium (Debian's `/usr/bin/chromium`, driven
//! over the DevTools protocol by chromiumoxide) against the real `palisade serve` and
//! `palisade sim` binaries, on SQLite and, when `PALISADE_TEST_POSTGRES_URL` is set, PostgreSQL.
//!
//! Not part of `cargo test --workspace` (the target is `test = false`, so machines without
//! Chromium never build the driver). Run alone:
//!
//! ```sh
//! scripts/fetch-axe.sh            # once: axe-core into target/axe/
//! cargo build -p palisade && cargo test -p palisade-browser-tests --test browser
//! ```
//!
//! A test is an `async fn name(db: Db)` listed in a `both!` below; it starts a [`Server`], opens
//! a [`Page`] and acts as a person would (see `harness` and docs/console.md).

// Test code: a failed step is a panic with its reason, as in the other suites.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Runs each named `async fn(Db)` as two tests, `name::sqlite` and `name::postgres` (the latter
/// skipped with a note when `PALISADE_TEST_POSTGRES_URL` is unset).
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
pub(crate) use both;

mod console_auth;
mod contacts;
mod deals;
// The harness is the API browser tests are written with: not every test uses all of it.
mod account;
mod admin;
mod analytics;
mod campaigns;
#[allow(dead_code, unused_imports)]
mod harness;
mod inbox;
mod integrations;
mod journey;
mod ops;
mod security_alerts;
mod selftest;
mod small_screen;
mod templates;
mod tickets;
