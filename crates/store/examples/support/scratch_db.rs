//! The throwaway database of the examples that measure (`audit_overhead` here,
//! `webhook_fanout` in the `palisade` crate, which includes this file by path): with a
//! PostgreSQL URL, a new database on that server; without one, a SQLite file in `dir`. Dropped
//! again by [`ScratchDb::drop`].

use std::path::Path;

pub struct ScratchDb {
    pub url: String,
    /// The PostgreSQL server's URL and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl ScratchDb {
    pub async fn create(postgres: Option<&str>, dir: &Path) -> anyhow::Result<ScratchDb> {
        let Some(base) = postgres else {
            return Ok(ScratchDb {
                url: format!("sqlite://{}", dir.join("bench.sqlite").display()),
                postgres: None,
            });
        };
        let name = format!("palisade_bench_{}", uuid::Uuid::new_v4().simple());
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(base).await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await?;
        let url = format!("{}/{name}", base.rsplit_once('/').map_or(base, |(b, _)| b));
        Ok(ScratchDb {
            url,
            postgres: Some((base.to_owned(), name)),
        })
    }

    /// Drops a PostgreSQL database (a SQLite file goes with its directory).
    pub async fn drop(self) -> anyhow::Result<()> {
        if let Some((base, name)) = self.postgres {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&base).await?;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await?;
        }
        Ok(())
    }
}
