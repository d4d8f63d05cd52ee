//! Managing a tenant's API keys (admins, signed in as users — never with an API key).

use crate::audit::AuditEntryExt;
use crate::auth::cache;
use crate::auth::{api_keys as keys, tokens, Principal, RequestMeta};
use crate::error::{code, FieldErrors};
use crate::{AppError, AppResult, Services, UnitOfWork};
use palisade_domain::{ApiKeyId, EventType, FieldError, Permission, UserId};
use palisade_store::api_keys;
use palisade_store::auth_changes::ChangeKind;
use palisade_store::Scope;
use time::OffsetDateTime;

mod view;

pub use palisade_store::api_keys::ApiKey;
pub use view::{ApiKeyEvent, ApiKeyView};

pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub allowed_ips: Option<Vec<String>>,
}

/// Only users manage keys: an API key never manages credentials, whatever its scopes.
fn require_manager(p: &Principal) -> AppResult<()> {
    if p.api_key().is_some() {
        return Err(AppError::Forbidden {
            code: code::API_KEY_NOT_ALLOWED,
            message: "API keys cannot manage API keys; sign in as an admin".into(),
        });
    }
    p.require(Permission::ApiKeysManage)
}

fn parse_name(name: &str) -> Result<String, FieldError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(n.to_owned())
}

/// The names given, each once, in the order of their names.
fn parse_scopes(scopes: &[String]) -> Result<Vec<palisade_domain::Scope>, FieldError> {
    if scopes.is_empty() {
        return Err(FieldError::new("scopes", "must name at least one scope"));
    }
    let unknown: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|s| palisade_domain::Scope::parse(s).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(FieldError::new(
            "scopes",
            format!(
                "unknown scope(s): {}; see the README for the list",
                unknown.join(", ")
            ),
        ));
    }
    let mut out: Vec<palisade_domain::Scope> = scopes
        .iter()
        .filter_map(|s| palisade_domain::Scope::parse(s))
        .collect();
    out.sort_by_key(|s| s.as_str());
    out.dedup();
    Ok(out)
}

fn parse_ips(ips: &[String]) -> Result<Vec<String>, FieldError> {
    ips.iter()
        .map(|s| {
            let t = s.trim();
            t.parse::<ipnet::IpNet>()
                .map(|n| n.to_string())
                .or_else(|_| {
                    t.parse::<std::net::IpAddr>()
                        .map(|ip| ipnet::IpNet::from(ip).to_string())
                })
                .map_err(|_| {
                    FieldError::new(
                        "allowed_ips",
                        format!("{t:?} is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

fn json(k: &ApiKey) -> serde_json::Value {
    ApiKeyEvent::from(k).to_json()
}

/// Creates a key; returns the record and the secret, which is never shown again.
pub async fn create(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    input: NewApiKey,
) -> AppResult<(ApiKey, String)> {
    require_manager(p)?;
    let now = s.now();
    let mut errors = FieldErrors::new();
    let name = errors.check(parse_name(&input.name));
    let scopes = errors.check(parse_scopes(&input.scopes));
    let ips = errors.check_some(input.allowed_ips.as_deref(), parse_ips);
    if input.expires_at.is_some_and(|e| e <= now) {
        errors.push(FieldError::new("expires_at", "must be in the future"));
    }
    let (Some(name), Some(scopes)) = (name, scopes) else {
        return Err(AppError::validation(errors));
    };
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let secret = keys::generate();
    let key = ApiKey {
        id: ApiKeyId::new(),
        tenant_id: p.tenant_scope()?.tenant_id(),
        name,
        prefix: keys::display_prefix(&secret),
        scopes,
        allowed_ips: ips,
        expires_at: input.expires_at,
        created_by: p.user_id,
        created_at: now,
        updated_at: now,
        last_used_at: None,
        last_used_ip: None,
        total_requests: 0,
        revoked_at: None,
        revoked_by: None,
        revocation_reason: None,
    };
    api_keys::insert(uow.tx(), &key, &tokens::secret_hash(&secret)).await?;
    uow.audit(
        uow.entry("api_key.created")
            .target("api_key", key.id)
            .change(None, Some(json(&key))),
    )
    .await?;
    uow.emit(EventType::ApiKeyCreated, &ApiKeyEvent::from(&key))
        .await?;
    uow.commit().await?;
    Ok((key, secret))
}

pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<ApiKey>> {
    require_manager(p)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    Ok(api_keys::list(&mut tx).await?)
}

pub async fn get(s: &Services, p: &Principal, id: ApiKeyId) -> AppResult<ApiKey> {
    require_manager(p)?;
    let mut tx = s.store.begin_read(p.tenant_scope()?).await?;
    api_keys::find(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("API key"))
}

pub async fn update(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ApiKeyId,
    name: Option<&str>,
    scopes: Option<&[String]>,
) -> AppResult<ApiKey> {
    require_manager(p)?;
    let mut errors = FieldErrors::new();
    let name = errors.check_some(name, parse_name);
    let scopes = errors.check_some(scopes, parse_scopes);
    errors.finish()?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = api_keys::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n;
    }
    if let Some(sc) = scopes {
        after.scopes = sc;
    }
    after.updated_at = now;
    api_keys::update(uow.tx(), &after).await?;
    cache::record(uow.tx(), ChangeKind::ApiKey, id.as_uuid(), now).await?;
    uow.audit(
        uow.entry("api_key.updated")
            .target("api_key", id)
            .change(Some(json(&before)), Some(json(&after))),
    )
    .await?;
    uow.after_commit(move |s| s.auth_cache.forget_api_key(id));
    uow.commit().await?;
    Ok(after)
}

pub async fn revoke(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ApiKeyId,
    reason: Option<&str>,
) -> AppResult<ApiKey> {
    require_manager(p)?;
    let reason = reason
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty());
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = api_keys::find_for_update(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    if before.revoked_at.is_some() {
        return Err(AppError::conflict(
            code::ALREADY_REVOKED,
            "this API key is already revoked",
        ));
    }
    let mut after = before.clone();
    after.revoked_at = Some(now);
    after.revoked_by = Some(p.user_id);
    after.revocation_reason = reason.clone();
    after.updated_at = now;
    api_keys::update(uow.tx(), &after).await?;
    cache::record(uow.tx(), ChangeKind::ApiKey, id.as_uuid(), now).await?;
    uow.audit(
        uow.entry("api_key.revoked")
            .target("api_key", id)
            .metadata(serde_json::json!({ "reason": reason })),
    )
    .await?;
    uow.emit(EventType::ApiKeyRevoked, &ApiKeyEvent::from(&after))
        .await?;
    uow.after_commit(move |s| s.auth_cache.forget_api_key(id));
    uow.commit().await?;
    Ok(after)
}

pub async fn delete(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    id: ApiKeyId,
) -> AppResult<()> {
    require_manager(p)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = api_keys::find(uow.tx(), id)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    api_keys::delete(uow.tx(), id).await?;
    cache::record(uow.tx(), ChangeKind::ApiKey, id.as_uuid(), now).await?;
    uow.audit(
        uow.entry("api_key.deleted")
            .target("api_key", id)
            .change(Some(json(&before)), None),
    )
    .await?;
    uow.after_commit(move |s| s.auth_cache.forget_api_key(id));
    uow.commit().await?;
    Ok(())
}

/// Revokes the keys a user created (their deletion or demotion) in the caller's unit of work,
/// queues an `api_key.revoked` event for each, and forgets them in the authentication cache
/// once it commits. Returns the revoked keys' ids.
pub async fn revoke_created_by<S: Scope>(
    uow: &mut UnitOfWork<'_, S>,
    creator: UserId,
    by: UserId,
    reason: &str,
) -> AppResult<Vec<ApiKeyId>> {
    let now = uow.now();
    let keys = api_keys::revoke_by_creator(uow.tx(), creator, by, reason, now).await?;
    for k in &keys {
        cache::record(uow.tx(), ChangeKind::ApiKey, k.id.as_uuid(), now).await?;
        uow.emit(EventType::ApiKeyRevoked, &ApiKeyEvent::from(k))
            .await?;
    }
    let ids: Vec<ApiKeyId> = keys.iter().map(|k| k.id).collect();
    let forget = ids.clone();
    uow.after_commit(move |s| {
        for k in forget {
            s.auth_cache.forget_api_key(k);
        }
    });
    Ok(ids)
}
