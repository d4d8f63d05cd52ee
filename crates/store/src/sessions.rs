//! Device sessions: one per login, the parent of its refresh tokens and access tokens.

use crate::{Query, Result, Scope, Tx};
use palisade_domain::{SessionId, TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    revoked_reason: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    browser: Option<String>,
    os: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            id: r.id.into(),
            tenant_id: r.tenant_id.map(Into::into),
            user_id: r.user_id.into(),
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoked_reason: r.revoked_reason,
            ip: r.ip,
            user_agent: r.user_agent,
            browser: r.browser,
            os: r.os,
        }
    }
}

const COLUMNS: &str = "id, tenant_id, user_id, created_at, last_seen_at, expires_at, revoked_at, \
    revoked_reason, ip, user_agent, browser, os";

pub async fn insert<S: Scope>(tx: &mut Tx<S>, s: &Session) -> Result<()> {
    tx.execute(
        Query::new(format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(s.id)
        .bind(s.tenant_id)
        .bind(s.user_id)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .bind(s.revoked_reason.clone())
        .bind(s.ip.clone())
        .bind(s.user_agent.clone())
        .bind(s.browser.clone())
        .bind(s.os.clone()),
    )
    .await?;
    Ok(())
}

pub async fn find<S: Scope>(tx: &mut Tx<S>, id: SessionId) -> Result<Option<Session>> {
    let tenant = tx.scope().tenant();
    Ok(tx
        .fetch_optional::<SessionRow>(
            Query::new(format!(
                "SELECT {COLUMNS} FROM sessions WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
            ))
            .bind(id)
            .bind(tenant),
        )
        .await?
        .map(Into::into))
}

/// A user's sessions that are neither revoked nor expired, newest first.
pub async fn list_active<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    now: OffsetDateTime,
) -> Result<Vec<Session>> {
    let tenant = tx.scope().tenant();
    let rows: Vec<SessionRow> = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {COLUMNS} FROM sessions
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
                   AND revoked_at IS NULL AND expires_at > $3
                 ORDER BY created_at DESC, id DESC"
            ))
            .bind(user)
            .bind(tenant)
            .bind(now),
        )
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn touch<S: Scope>(
    tx: &mut Tx<S>,
    id: SessionId,
    now: OffsetDateTime,
    ip: Option<&str>,
) -> Result<()> {
    let tenant = tx.scope().tenant();
    tx.execute(
        Query::new(
            "UPDATE sessions SET last_seen_at = $3, ip = coalesce($4, ip)
             WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)",
        )
        .bind(id)
        .bind(tenant)
        .bind(now)
        .bind(ip),
    )
    .await?;
    Ok(())
}

/// Revokes one session; returns whether it was active.
pub async fn revoke<S: Scope>(
    tx: &mut Tx<S>,
    id: SessionId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let tenant = tx.scope().tenant();
    let n = tx
        .execute(
            Query::new(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = $4
                 WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2) AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(tenant)
            .bind(now)
            .bind(reason),
        )
        .await?;
    Ok(n > 0)
}

/// Revokes every active session of a user except `keep`; returns the ids revoked.
pub async fn revoke_all_for_user<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<SessionId>> {
    let tenant = tx.scope().tenant();
    #[derive(sqlx::FromRow)]
    struct Id {
        id: Uuid,
    }
    let ids: Vec<Id> = tx
        .fetch_all(
            Query::new(
                "UPDATE sessions SET revoked_at = $4, revoked_reason = $5
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2)
                   AND ($3 IS NULL OR id <> $3) AND revoked_at IS NULL
                 RETURNING id",
            )
            .bind(user)
            .bind(tenant)
            .bind(keep)
            .bind(now)
            .bind(reason),
        )
        .await?;
    Ok(ids.into_iter().map(|r| r.id.into()).collect())
}

/// Whether the user has signed in from `ip` since `since` — a sign that a login from there is the
/// owner, who is then not held back by a lock an attacker caused.
pub async fn signed_in_from<S: Scope>(
    tx: &mut Tx<S>,
    user: UserId,
    ip: &str,
    since: OffsetDateTime,
) -> Result<bool> {
    #[derive(sqlx::FromRow)]
    struct N {
        n: i64,
    }
    let tenant = tx.scope().tenant();
    let row: N = tx
        .fetch_one(
            Query::new(
                "SELECT COUNT(*) AS n FROM sessions
                 WHERE user_id = $1 AND ($2 IS NULL OR tenant_id = $2) AND ip = $3 AND created_at >= $4",
            )
            .bind(user)
            .bind(tenant)
            .bind(ip)
            .bind(since),
        )
        .await?;
    Ok(row.n > 0)
}
