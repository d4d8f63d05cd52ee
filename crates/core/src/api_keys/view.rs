//! The shapes an API key leaves the server in. Two, on purpose: the REST answer
//! ([`ApiKeyView`], `ApiKeyResponse` in the OpenAPI document) writes `expires_at` in RFC 3339,
//! while the `api_key.*` webhook events ([`ApiKeyEvent`]) have always carried it as Unix
//! seconds (docs/webhooks.md). Changing either would break the clients or receivers that read
//! it, so the event keeps its documented contract as its own typed struct
//! (docs/architecture.md says why).

use palisade_domain::{rfc3339, Scope};
use palisade_store::api_keys::ApiKey;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ApiKeyResponse)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub allowed_ips: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    pub created_by: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub total_requests: i64,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    pub revoked_by: Option<Uuid>,
    pub revocation_reason: Option<String>,
}

impl ApiKeyView {
    /// The key as seen at `now` (its status depends on the time: `expired` once past
    /// `expires_at`).
    pub fn new(k: &ApiKey, now: OffsetDateTime) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        ApiKeyView {
            id: k.id.as_uuid(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            allowed_ips: k.allowed_ips.clone(),
            expires_at: k.expires_at.map(rfc3339),
            status: status.into(),
            created_by: k.created_by.as_uuid(),
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            last_used_ip: k.last_used_ip.clone(),
            total_requests: k.total_requests,
            revoked_at: k.revoked_at.map(rfc3339),
            revoked_by: k.revoked_by.map(|u| u.as_uuid()),
            revocation_reason: k.revocation_reason.clone(),
        }
    }
}

/// The data of `api_key.created` and `api_key.revoked` events, and the before/after of the
/// key's audit records. The secret is never in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyEvent {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub allowed_ips: Option<Vec<String>>,
    /// Unix seconds (the documented contract), not RFC 3339 as in the REST answer.
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub revocation_reason: Option<String>,
}

impl From<&ApiKey> for ApiKeyEvent {
    fn from(k: &ApiKey) -> Self {
        ApiKeyEvent {
            id: k.id.as_uuid(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            allowed_ips: k.allowed_ips.clone(),
            expires_at: k.expires_at.map(|t| t.unix_timestamp()),
            revoked: k.revoked_at.is_some(),
            revocation_reason: k.revocation_reason.clone(),
        }
    }
}

impl ApiKeyEvent {
    /// As an audit record's before or after.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::{ApiKeyId, TenantId, UserId};
    use time::macros::datetime;

    #[test]
    fn the_event_keeps_unix_seconds_where_the_answer_has_rfc_3339() {
        let at = datetime!(2026-11-30 19:33:54 UTC);
        let k = ApiKey {
            id: ApiKeyId::new(),
            tenant_id: TenantId::new(),
            name: "CRM sync".into(),
            prefix: "pal_live_AbC1".into(),
            scopes: vec![Scope::ContactsRead],
            allowed_ips: None,
            expires_at: Some(at + time::Duration::days(1)),
            created_by: UserId::new(),
            created_at: at,
            updated_at: at,
            last_used_at: None,
            last_used_ip: None,
            total_requests: 0,
            revoked_at: None,
            revoked_by: None,
            revocation_reason: None,
        };
        let event = serde_json::to_value(ApiKeyEvent::from(&k)).unwrap();
        let rest = serde_json::to_value(ApiKeyView::new(&k, at)).unwrap();
        assert_eq!(event["expires_at"], 1_796_153_634);
        assert_eq!(rest["expires_at"], "2026-12-01T19:33:54Z");
        assert_eq!(event["id"], rest["id"]);
        assert_eq!(event["revoked"], false);
        assert_eq!(rest["status"], "active");
        assert!(event.get("key").is_none() && event.get("key_hash").is_none());
    }
}
