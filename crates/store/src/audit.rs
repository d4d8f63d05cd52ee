//! The audit log: append-only, written in the same transaction as the change it records.
//!
//! There is deliberately no update or delete function here. On SQLite triggers refuse both; on
//! PostgreSQL the application role has only SELECT and INSERT on the table.

use crate::{Query, Result, Scope, StoreError, Tx};
use palisade_domain::{TenantId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub tenant_id: Option<TenantId>,
    pub actor_id: Option<UserId>,
    pub actor_email: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: serde_json::Value,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub metadata: sqlx::types::Json<serde_json::Value>,
    pub before: Option<sqlx::types::Json<serde_json::Value>>,
    pub after: Option<sqlx::types::Json<serde_json::Value>>,
}

pub async fn append<S: Scope>(tx: &mut Tx<S>, e: &AuditEntry, now: OffsetDateTime) -> Result<()> {
    if let Some(scope_tenant) = tx.scope().tenant() {
        if e.tenant_id != Some(scope_tenant) {
            return Err(StoreError::Integrity(
                "audit entry outside the scope's tenant".into(),
            ));
        }
    }
    let metadata = if e.metadata.is_null() {
        serde_json::json!({})
    } else {
        e.metadata.clone()
    };
    tx.execute(
        Query::new(
            "INSERT INTO audit_log (id, tenant_id, created_at, actor_id, actor_email, actor_role,
                action, target_type, target_id, ip, user_agent, request_id, metadata, before, after)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(Uuid::now_v7())
        .bind(e.tenant_id)
        .bind(now)
        .bind(e.actor_id)
        .bind(e.actor_email.clone())
        .bind(e.actor_role.clone())
        .bind(e.action.as_str())
        .bind(e.target_type.clone())
        .bind(e.target_id.clone())
        .bind(e.ip.clone())
        .bind(e.user_agent.clone())
        .bind(e.request_id.clone())
        .bind(metadata)
        .bind(e.before.clone())
        .bind(e.after.clone()),
    )
    .await?;
    Ok(())
}

/// The scope's records, newest first (the search API arrives with the integrations issue).
pub async fn recent<S: Scope>(tx: &mut Tx<S>, limit: i64) -> Result<Vec<AuditRecord>> {
    let tenant = tx.scope().tenant();
    tx.fetch_all(
        Query::new(
            "SELECT id, tenant_id, created_at, actor_id, actor_email, actor_role, action,
                    target_type, target_id, ip, user_agent, request_id, metadata, before, after
             FROM audit_log WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit),
    )
    .await
}
