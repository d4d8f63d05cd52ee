//! Where a webhook may point: the outbound (SSRF) policy for webhook traffic, URL parsing under
//! it, and the platform's and the tenant's allow-lists of domains that skip approval. Separate
//! because it is the module's SSRF and approval boundary, read on its own when reviewing it.

use super::delivery::RESPONSE_LOG_BYTES;
use crate::audit::AuditEntryExt;
use crate::auth::{Principal, RequestMeta};
use crate::safe_http::{OutboundPolicy, TargetHost, TargetUrl};
use crate::{AppResult, Services, UnitOfWork};
use palisade_domain::{FieldError, Permission, TenantId};
use palisade_store::webhooks as store;
use palisade_store::{Scope, Tx};
use serde_json::json;

/// The outbound policy for webhook traffic.
pub fn policy(s: &Services) -> OutboundPolicy {
    let mut p = if s.settings.webhooks_allow_private_targets {
        OutboundPolicy::development()
    } else {
        OutboundPolicy::strict()
    };
    p.max_response_bytes = RESPONSE_LOG_BYTES;
    p
}

/// Parses a URL under the webhook policy; the error names the rule, for the tenant.
pub fn parse_url(s: &Services, url: &str) -> Result<TargetUrl, FieldError> {
    TargetUrl::parse(url.trim(), &policy(s))
        .map_err(|e| FieldError::new("url", format!("is not allowed: {e}")))
}

fn host_text(t: &TargetUrl) -> String {
    match t.host() {
        TargetHost::Domain(d) => d.clone(),
        TargetHost::Ip(ip) => ip.to_string(),
    }
}

/// Whether `host` is `entry` or a subdomain of it.
fn host_allowed(host: &str, list: &[String]) -> bool {
    list.iter().any(|e| {
        let e = e.trim().trim_end_matches('.').to_ascii_lowercase();
        !e.is_empty()
            && (host == e
                || host
                    .strip_suffix(e.as_str())
                    .is_some_and(|r| r.ends_with('.')))
    })
}

fn parse_domains(domains: &[String]) -> Result<Vec<String>, FieldError> {
    let mut out = Vec::new();
    for d in domains {
        let t = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !t.is_empty()
            && t.len() <= 253
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if !ok {
            return Err(FieldError::new(
                "allowed_domains",
                format!("{d:?} is not a host name"),
            ));
        }
        out.push(t);
    }
    if out.len() > 50 {
        return Err(FieldError::new("allowed_domains", "at most 50 entries"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub(super) async fn is_allowlisted<S: Scope>(
    s: &Services,
    tx: &mut Tx<S>,
    tenant: TenantId,
    target: &TargetUrl,
) -> AppResult<bool> {
    let host = host_text(target);
    if host_allowed(&host, &s.settings.webhooks_allowed_domains) {
        return Ok(true);
    }
    let tenant_list = store::allowed_domains(tx, tenant).await?;
    Ok(host_allowed(&host, &tenant_list))
}

pub async fn allowed_domains(s: &Services, p: &Principal) -> AppResult<Vec<String>> {
    p.require(Permission::WebhooksRead)?;
    let scope = p.tenant_scope()?;
    let mut tx = s.store.begin_read(scope).await?;
    Ok(store::allowed_domains(&mut tx, scope.tenant_id()).await?)
}

pub async fn set_allowed_domains(
    s: &Services,
    p: &Principal,
    meta: &RequestMeta,
    domains: &[String],
) -> AppResult<Vec<String>> {
    // Allowed domains skip approval: only a signed-in admin decides them, never an API key.
    p.require(Permission::WebhooksApprove)?;
    let scope = p.tenant_scope()?;
    let domains = parse_domains(domains)?;
    let mut uow = UnitOfWork::begin(s, p, meta).await?;
    let now = uow.now();
    let before = store::allowed_domains(uow.tx(), scope.tenant_id()).await?;
    store::set_allowed_domains(uow.tx(), &domains, p.user_id, now).await?;
    let entry = uow
        .entry("webhook.allowed_domains_changed")
        .target("tenant", scope.tenant_id())
        .change(
            Some(json!({ "allowed_domains": before })),
            Some(json!({ "allowed_domains": domains })),
        );
    uow.audit(entry).await?;
    uow.commit().await?;
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_match_hosts_and_subdomains_only() {
        let list = vec!["hooks.example.com".to_owned()];
        assert!(host_allowed("hooks.example.com", &list));
        assert!(host_allowed("a.hooks.example.com", &list));
        assert!(!host_allowed("evilhooks.example.com", &list));
        assert!(!host_allowed("example.com", &list));
    }
}
