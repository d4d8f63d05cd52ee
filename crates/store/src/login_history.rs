//! The login history: sign-in attempts on existing accounts, and the devices they came from.

use crate::{Query, Result, Scope, Tx};
use palisade_domain::{LoginAttemptId, LoginMethod, LoginResult, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

/// One sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    pub id: LoginAttemptId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub at: OffsetDateTime,
    pub ip: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub result: LoginResult,
    pub method: LoginMethod,
}

#[derive(sqlx::FromRow)]
struct LoginAttemptRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    at: OffsetDateTime,
    ip: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    result: String,
    method: String,
}

impl From<LoginAttemptRow> for LoginAttempt {
    fn from(r: LoginAttemptRow) -> Self {
        LoginAttempt {
            id: r.id.into(),
            tenant_id: r.tenant_id.map(Into::into),
            user_id: r.user_id.into(),
            at: r.at,
            ip: r.ip,
            browser: r.browser,
            os: r.os,
            // The CHECK constraints hold the sets; a value from a newer version reads as the
            // most cautious one rather than failing the whole page.
            result: r.result.parse().unwrap_or(LoginResult::Failure),
            method: r.method.parse().unwrap_or(LoginMethod::Password),
        }
    }
}

const COLUMNS: &str = "id, tenant_id, user_id, at, ip, browser, os, result, method";

pub async fn insert<S: Scope>(tx: &mut Tx<S>, a: &LoginAttempt) -> Result<()> {
    tx.execute(
        Query::new(format!(
            "INSERT INTO login_history ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(a.id)
        .bind(a.tenant_id)
        .bind(a.user_id)
        .bind(a.at)
        .bind(a.ip.clone())
        .bind(a.browser.clone())
        .bind(a.os.clone())
        .bind(a.result.as_str())
        .bind(a.method.as_str()),
    )
    .await?;
    Ok(())
}

/// The user's attempts, newest first, older than `before` (a cursor) when given.
pub async fn list<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    before: Option<LoginAttemptId>,
    limit: i64,
) -> Result<Vec<LoginAttempt>> {
    let tenant = tx.scope().tenant();
    let rows: Vec<LoginAttemptRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM login_history
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
                   AND ($3 IS NULL OR id < $3)
                 ORDER BY id DESC LIMIT $4"
            ))
            .bind(user)
            .bind(tenant)
            .bind(before)
            .bind(limit),
        )
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Whether the user has signed in successfully from any device before.
pub async fn has_devices<S: Scope>(tx: &mut Tx<S>, user: UserId) -> Result<bool> {
    #[derive(sqlx::FromRow)]
    struct Row {
        n: i64,
    }
    let tenant = tx.scope().tenant();
    let row: Row = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM login_devices
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)",
            )
            .bind(user)
            .bind(tenant),
        )
        .await?;
    Ok(row.n > 0)
}

/// Records a successful sign-in from `device_hash` at `now` and returns when the user was last
/// seen on it before (`None`: never). One statement, so of two sign-ins racing from a new
/// device exactly one sees it as new (PostgreSQL's upsert waits on the row; SQLite has one
/// writer).
pub async fn remember_device<S: Scope>(
    tx: &mut Tx<S>,
    tenant: Option<TenantId>,
    user: UserId,
    device_hash: &[u8],
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        previous_seen_at: Option<OffsetDateTime>,
    }
    let row: Row = tx
        .fetch_one(
            Query::new(
                "INSERT INTO login_devices
                     (id, tenant_id, user_id, device_hash, first_seen_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (user_id, device_hash) DO UPDATE
                     SET last_seen_at = excluded.last_seen_at,
                         previous_seen_at = login_devices.last_seen_at
                 RETURNING previous_seen_at",
            )
            .bind(Uuid::now_v7())
            .bind(tenant)
            .bind(user)
            .bind(device_hash)
            .bind(now),
        )
        .await?;
    Ok(row.previous_seen_at)
}

/// Deletes attempts older than `before` (retention); returns how many.
pub async fn prune<S: Scope>(tx: &mut Tx<S>, before: OffsetDateTime) -> Result<u64> {
    tx.execute(Query::new("DELETE FROM login_history WHERE at < $1").bind(before))
        .await
}
