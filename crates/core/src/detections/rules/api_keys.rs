//! An API key used from an address (or a country) it has never used.

use super::*;

/// An API key of `tenant` was used from `ip`: the first time this node sees the pair, it is
/// remembered in the database; an address (or, with a GeoIP database, a country) the key had
/// never used raises `api_key_new_address`.
pub fn api_key_used(
    s: &Services,
    tenant: TenantId,
    key: palisade_domain::ApiKeyId,
    key_name: &str,
    ip: Option<IpAddr>,
) {
    let Some(ip) = ip else {
        return;
    };
    let address = ip.to_string();
    if s.detector.key_addresses.len() > MAX_TRACKED * 10 {
        // Only a cache of what the database already knows: forgetting costs one query each.
        s.detector.key_addresses.clear();
    }
    if !s.detector.key_addresses.insert((key, address.clone())) {
        return;
    }
    let s2 = s.clone();
    let name = key_name.to_owned();
    tokio::spawn(async move {
        if let Err(e) = key_address(&s2, tenant, key, &name, &address).await {
            // Forget it, so the next request tries again.
            s2.detector.key_addresses.remove(&(key, address));
            tracing::warn!(error = %e, "recording an API key's address failed");
        }
    });
}

pub(super) async fn key_address(
    s: &Services,
    tenant: TenantId,
    key: palisade_domain::ApiKeyId,
    name: &str,
    address: &str,
) -> AppResult<()> {
    let now = s.now();
    let country = locate(s, Some(address)).and_then(|p| p.country);
    let (new, known, new_country) = {
        let scope = SystemScope::new("detections.api_key_addresses");
        let mut tx = s.store.begin(scope).await?;
        let r = store::remember_api_key_address(&mut tx, tenant, key, address, now).await?;
        let c = match &country {
            Some(c) => {
                let (new, known) = store::remember_api_key_address(
                    &mut tx,
                    tenant,
                    key,
                    &format!("country:{c}"),
                    now,
                )
                .await?;
                new && known
            }
            None => false,
        };
        tx.commit().await?;
        (r.0, r.1, c)
    };
    if new_country {
        raise(
            s,
            alert(
                Some(tenant),
                AlertRule::ApiKeyNewAddress,
                AlertSeverity::High,
                ("api_key", key.to_string(), Some(name.to_owned())),
                format!(
                    "The API key was used from a country it has never used ({}, {address})",
                    country.unwrap_or_default()
                ),
                vec![],
            ),
        )
        .await?;
        return Ok(());
    }
    if new && known {
        raise(
            s,
            alert(
                Some(tenant),
                AlertRule::ApiKeyNewAddress,
                AlertSeverity::Medium,
                ("api_key", key.to_string(), Some(name.to_owned())),
                format!("The API key was used from an address it has never used ({address})"),
                vec![],
            ),
        )
        .await?;
    }
    Ok(())
}
