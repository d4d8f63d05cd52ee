//! The change feed that keeps every node's authentication caches honest.
//!
//! A revoked session, a changed user or a suspended tenant is written here in the same
//! transaction as the change; each node polls the recent rows and drops what it cached about
//! them. Rows carry only ids, so the table needs no tenant isolation.

use crate::{Query, Result, Scope, SystemScope, Tx};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Session,
    User,
    Tenant,
    ApiKey,
}

impl ChangeKind {
    const fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Session => "session",
            ChangeKind::User => "user",
            ChangeKind::Tenant => "tenant",
            ChangeKind::ApiKey => "api_key",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub seq: i64,
    pub kind: ChangeKind,
    pub subject_id: Uuid,
    pub created_at: OffsetDateTime,
}

pub async fn record<S: Scope>(
    tx: &mut Tx<S>,
    kind: ChangeKind,
    subject: Uuid,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new("INSERT INTO auth_changes (kind, subject_id, created_at) VALUES ($1, $2, $3)")
            .bind(kind.as_str())
            .bind(subject)
            .bind(now),
    )
    .await?;
    Ok(())
}

/// Changes recorded at or after `since` (a node's first read at start).
pub async fn since(tx: &mut Tx<SystemScope>, since: OffsetDateTime) -> Result<Vec<Change>> {
    read(tx, Query::new(
        "SELECT seq, kind, subject_id, created_at FROM auth_changes WHERE created_at >= $1 ORDER BY seq",
    ).bind(since)).await
}

/// Changes with a sequence number above `seq` (the poll).
pub async fn after(tx: &mut Tx<SystemScope>, seq: i64) -> Result<Vec<Change>> {
    read(tx, Query::new(
        "SELECT seq, kind, subject_id, created_at FROM auth_changes WHERE seq > $1 ORDER BY seq",
    ).bind(seq)).await
}

async fn read(tx: &mut Tx<SystemScope>, q: Query) -> Result<Vec<Change>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        seq: i64,
        kind: String,
        subject_id: Uuid,
        created_at: OffsetDateTime,
    }
    let rows: Vec<Row> = tx.fetch_all(q).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let kind = match r.kind.as_str() {
                "session" => ChangeKind::Session,
                "user" => ChangeKind::User,
                "tenant" => ChangeKind::Tenant,
                "api_key" => ChangeKind::ApiKey,
                _ => return None,
            };
            Some(Change {
                seq: r.seq,
                kind,
                subject_id: r.subject_id,
                created_at: r.created_at,
            })
        })
        .collect())
}

pub async fn prune(tx: &mut Tx<SystemScope>, before: OffsetDateTime) -> Result<u64> {
    tx.execute(Query::new("DELETE FROM auth_changes WHERE created_at < $1").bind(before))
        .await
}
