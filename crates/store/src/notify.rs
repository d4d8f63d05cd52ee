//! Cross-process notifications: PostgreSQL `LISTEN`/`NOTIFY`, used by the realtime fan-out so
//! an event caused on one node reaches the websockets of every node.
//!
//! On SQLite there is nothing to do: it runs as a single process by design, so [`Store::notify`]
//! answers `false` ("local only") and [`Store::listen`] `None`. On PostgreSQL the listener has
//! its own connection (outside the application pool, so it never takes a request's slot) and
//! reconnects by itself; notifications sent while it was disconnected are lost, which realtime
//! clients tolerate (they reload what they show when they reconnect).

use crate::db::Pools;
use crate::{Result, Store, StoreError};
use sqlx::postgres::{PgListener, PgPoolOptions};

/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more.
pub const NOTIFY_MAX_BYTES: usize = 7999;

/// A subscription to one notification channel (PostgreSQL only).
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// The next payload. Reconnects transparently after a lost connection.
    pub async fn recv(&mut self) -> Result<String> {
        let n = self.inner.recv().await.map_err(StoreError::from_sqlx)?;
        Ok(n.payload().to_owned())
    }
}

impl Store {
    /// Sends each payload (at most [`NOTIFY_MAX_BYTES`] each) on `channel` to every process
    /// listening, in order, in one statement. Returns `false` when the database has no
    /// cross-process channel (SQLite: local only).
    pub async fn notify(&self, channel: &str, payloads: &[String]) -> Result<bool> {
        match &self.pools {
            Pools::Sqlite { .. } => Ok(false),
            Pools::Postgres { pool, .. } => {
                if !payloads.is_empty() {
                    sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                        .bind(channel)
                        .bind(payloads)
                        .execute(pool)
                        .await
                        .map_err(StoreError::from_sqlx)?;
                }
                Ok(true)
            }
        }
    }

    /// Listens on `channel` on a dedicated connection; `None` on SQLite (local only).
    pub async fn listen(&self, channel: &str) -> Result<Option<Listener>> {
        match &self.pools {
            Pools::Sqlite { .. } => Ok(None),
            Pools::Postgres { options, .. } => {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_lazy_with((**options).clone());
                let mut inner = PgListener::connect_with(&pool)
                    .await
                    .map_err(StoreError::from_sqlx)?;
                inner.listen(channel).await.map_err(StoreError::from_sqlx)?;
                Ok(Some(Listener { inner }))
            }
        }
    }
}
