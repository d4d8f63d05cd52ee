//! Previous password hashes, so a user cannot cycle back to a recent password.

use crate::{Query, Result, Scope, Tx};
use palisade_domain::{TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn insert<S: Scope>(
    tx: &mut Tx<S>,
    tenant_id: TenantId,
    user: UserId,
    hash: &str,
    now: OffsetDateTime,
) -> Result<()> {
    tx.execute(
        Query::new(
            "INSERT INTO password_history (id, tenant_id, user_id, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(user)
        .bind(hash)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// The user's `limit` most recent password hashes, newest first.
pub async fn recent<S: Scope>(tx: &mut Tx<S>, user: UserId, limit: usize) -> Result<Vec<String>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        password_hash: String,
    }
    let tenant = tx.scope().tenant();
    let rows: Vec<Row> = tx
        .fetch_all(
            Query::new(
                "SELECT password_hash FROM password_history
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .bind(user)
            .bind(tenant)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX)),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.password_hash).collect())
}
