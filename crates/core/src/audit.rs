//! Building audit records, the one shape a record leaves the server in ([`AuditRecordView`]:
//! the REST answer and both export formats), and reading the log ([`log`]). Writing records is
//! [`UnitOfWork::audit`](crate::UnitOfWork::audit), always in the transaction of the change
//! recorded.

use crate::auth::{Principal, RequestMeta};
use palisade_domain::{rfc3339, TenantId};
use palisade_store::audit::{AuditEntry, AuditRecord};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Keys whose values never reach the audit log.
const SECRET_KEYS: &[&str] = &[
    "password",
    "password_hash",
    "token",
    "secret",
    "access_token",
    "refresh_token",
    "key",
];

/// Replaces secret-looking fields in `v` (recursively) with `"[redacted]"`.
pub fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    let lower = k.to_lowercase();
                    if SECRET_KEYS
                        .iter()
                        .any(|s| lower == *s || lower.ends_with(&format!("_{s}")))
                    {
                        *val = Value::String("[redacted]".into());
                    } else {
                        walk(val);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// An entry for `action`, stamped with the request's origin.
pub fn entry(meta: &RequestMeta, tenant: Option<TenantId>, action: &str) -> AuditEntry {
    AuditEntry {
        tenant_id: tenant,
        action: action.to_owned(),
        ip: meta.ip.map(|ip| ip.to_string()),
        user_agent: meta.user_agent.clone(),
        request_id: Some(meta.request_id.clone()),
        metadata: serde_json::json!({}),
        ..AuditEntry::default()
    }
}

/// An entry for an action taken by `p`, in `p`'s tenant unless `tenant` says otherwise.
/// Under impersonation the actor is the super admin, and the user they act as is recorded in
/// `metadata.impersonating`: both identities, always.
pub fn by(p: &Principal, meta: &RequestMeta, tenant: Option<TenantId>, action: &str) -> AuditEntry {
    let mut e = entry(meta, tenant.or(p.tenant_id()), action);
    match &p.impersonator {
        Some(imp) => {
            e.actor_id = Some(imp.user_id);
            e.actor_email = Some(imp.email.clone());
            e.actor_role = Some(palisade_domain::Role::SuperAdmin.as_str().to_owned());
            e.metadata = serde_json::json!({
                "impersonating": { "user_id": p.user_id, "email": p.email, "write": imp.write }
            });
        }
        None => {
            e.actor_id = Some(p.user_id);
            e.actor_email = Some(p.email.clone());
            e.actor_role = Some(p.role.as_str().to_owned());
        }
    }
    if let Some(k) = p.api_key() {
        e.metadata = serde_json::json!({ "api_key": { "id": k.id, "name": k.name } });
    }
    e
}

// An audit record as the API shows it: the REST answer and the export (JSON Lines as is, CSV
// column by column). Its chain id and predecessor's hash stay inside (`palisade audit verify`
// reads them). (A plain comment: a doc comment would become the schema's description.)
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AuditRecordResponse)]
pub struct AuditRecordView {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// Position in the tenant's hash chain.
    pub seq: Option<i64>,
    /// SHA-256 linking this record to the previous one (see `palisade audit verify`).
    pub hash: Option<String>,
}

impl From<AuditRecord> for AuditRecordView {
    fn from(r: AuditRecord) -> Self {
        let e = r.entry;
        AuditRecordView {
            id: r.id.as_uuid(),
            tenant_id: e.tenant_id.map(|t| t.as_uuid()),
            created_at: rfc3339(r.created_at),
            actor_id: e.actor_id.map(|a| a.as_uuid()),
            actor_email: e.actor_email,
            actor_role: e.actor_role,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            ip: e.ip,
            user_agent: e.user_agent,
            request_id: e.request_id,
            metadata: e.metadata,
            before: e.before,
            after: e.after,
            seq: r.seq,
            hash: r.hash,
        }
    }
}

impl AuditRecordView {
    /// The CSV columns, in order (see [`AuditRecordView::csv_fields`]).
    pub const CSV_HEADER: &'static str = "id,created_at,tenant_id,actor_id,actor_email,actor_role,action,target_type,target_id,ip,user_agent,request_id,metadata,before,after,seq,hash";

    /// The values of a CSV row, in the order of [`AuditRecordView::CSV_HEADER`]: JSON values
    /// compact, absent values empty.
    pub fn csv_fields(&self) -> [String; 17] {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let id = |v: Option<Uuid>| v.map(|t| t.to_string()).unwrap_or_default();
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
        [
            self.id.to_string(),
            self.created_at.clone(),
            id(self.tenant_id),
            id(self.actor_id),
            opt(&self.actor_email),
            opt(&self.actor_role),
            self.action.clone(),
            opt(&self.target_type),
            opt(&self.target_id),
            opt(&self.ip),
            opt(&self.user_agent),
            opt(&self.request_id),
            self.metadata.to_string(),
            json(&self.before),
            json(&self.after),
            self.seq.map(|s| s.to_string()).unwrap_or_default(),
            opt(&self.hash),
        ]
    }
}

pub trait AuditEntryExt {
    fn target(self, kind: &str, id: impl ToString) -> Self;
    fn metadata(self, v: Value) -> Self;
    fn change(self, before: Option<Value>, after: Option<Value>) -> Self;
}

impl AuditEntryExt for AuditEntry {
    fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.target_type = Some(kind.to_owned());
        self.target_id = Some(id.to_string());
        self
    }
    /// Merges `v` into the metadata (keeping what `by` recorded about the credential).
    fn metadata(mut self, v: Value) -> Self {
        match (&mut self.metadata, redact(v)) {
            (Value::Object(existing), Value::Object(new)) => existing.extend(new),
            (slot, new) => *slot = new,
        }
        self
    }
    fn change(mut self, before: Option<Value>, after: Option<Value>) -> Self {
        self.before = before.map(redact);
        self.after = after.map(redact);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = redact(serde_json::json!({
            "name": "Ana", "password": "x", "nested": {"refresh_token": "y", "api_key": "z"},
            "list": [{"secret": "s"}]
        }));
        assert_eq!(v["name"], "Ana");
        assert_eq!(v["password"], "[redacted]");
        assert_eq!(v["nested"]["refresh_token"], "[redacted]");
        assert_eq!(v["nested"]["api_key"], "[redacted]");
        assert_eq!(v["list"][0]["secret"], "[redacted]");
    }
}

/// Reading and exporting the audit log, and verifying its hash chains.
pub mod log {
    use super::AuditEntryExt;
    use crate::auth::{Principal, RequestMeta};
    use crate::{AppError, AppResult, Services, UnitOfWork};
    use palisade_domain::{Permission, Role};
    use palisade_store::audit::{self as store, AuditRecord};
    use palisade_store::{Store, SystemScope};

    pub use palisade_store::audit::{AuditFilter, ChainReport};

    /// Records matching `filter`, newest first. Tenant admins see their tenant only; super
    /// admins see every tenant and may narrow to one with `filter.tenant`.
    pub async fn search(
        s: &Services,
        p: &Principal,
        mut filter: AuditFilter,
    ) -> AppResult<Vec<AuditRecord>> {
        p.require(Permission::AuditLogRead)?;
        if p.role != Role::SuperAdmin {
            filter.tenant = None;
        }
        filter.limit = filter.limit.clamp(1, 500);
        let mut tx = s.store.begin_read(p.own_scope()).await?;
        Ok(store::search(&mut tx, &filter).await?)
    }

    /// Checks the export limit and records the export; the caller then streams pages with
    /// [`search`].
    pub async fn start_export(
        s: &Services,
        p: &Principal,
        meta: &RequestMeta,
        format: &str,
        filter: &AuditFilter,
    ) -> AppResult<()> {
        p.require(Permission::AuditLogRead)?;
        p.require(Permission::DataExport).or_else(|e| {
            if p.role == Role::SuperAdmin {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let key = p.tenant_id().map_or(p.user_id.as_uuid(), |t| t.as_uuid());
        s.limits
            .export
            .check(&key)
            .await
            .map_err(|wait| AppError::rate_limited("at most 10 audit exports per hour", wait))?;
        let mut uow = UnitOfWork::begin_in(s, p, meta, p.own_scope()).await?;
        let mut entry = uow.entry("audit_log.exported").metadata(serde_json::json!({
                "format": format,
                "action": filter.action, "actor_id": filter.actor_id, "target_type": filter.target_type,
                "target_id": filter.target_id, "q": filter.q, "tenant": filter.tenant,
        }));
        entry.target_type = Some("audit_log".into());
        uow.audit(entry).await?;
        uow.commit().await?;
        Ok(())
    }

    /// Verifies every chain, or one tenant's (the CLI).
    pub async fn verify(
        store: &Store,
        tenant: Option<palisade_domain::TenantId>,
    ) -> anyhow::Result<Vec<ChainReport>> {
        let mut tx = store.begin_read(SystemScope::new("audit.verify")).await?;
        Ok(store::verify(&mut tx, tenant).await?)
    }
}
