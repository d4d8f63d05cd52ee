//! The download worker: claims due jobs, looks each media up on the Graph API with the
//! connection's token, fetches it only from an allowed host ([`host_allowed`]), checks size and
//! SHA-256, and records `stored`, a retry or `failed` (see the state diagram in [`super`]).

use super::super::connections::secret_aad;
use super::super::graph::GraphError;
use super::{clip, type_max_bytes, MAX_ATTEMPTS, META_MEDIA_HOSTS};
use crate::error::code;
use crate::worker::Next;
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use base64::Engine as _;
use palisade_domain::{ConnectionStatus, MediaStatus, TenantId};
use palisade_store::media::{self as store, ClaimedJob, MessageMedia, StoredFile};
use palisade_store::whatsapp_connections::{self as connections, Connection};
use palisade_store::SystemScope;
use sha2::{Digest, Sha256};
use time::Duration;

/// Downloads run at once on one node.
const CONCURRENCY: i64 = 4;
/// How long a claimed job is hidden from other workers: longer than a download may take.
const LEASE: Duration = Duration::minutes(10);
/// A download's time limit (Meta's media URLs expire after 5 minutes).
const DOWNLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The worker: downloads what is due when woken by [`super::enqueue_downloads`] (after its commit), and every `every`.
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let kick = s.media_downloads.clone();
    crate::worker::spawn_periodic(
        "media download round failed",
        every,
        Some(kick),
        move || {
            let s = s.clone();
            async move { download_due(&s).await.map(|_| Next::Wait) }
        },
    )
}

fn download_client() -> AppResult<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(DOWNLOAD_TIMEOUT)
        .user_agent("Palisade")
        .build()
        .map_err(|e| anyhow::anyhow!("media download client: {e}").into())
}

/// Downloads every due job (a few at a time). Returns how many were attempted.
pub async fn download_due(s: &Services) -> AppResult<usize> {
    let client = download_client()?;
    let mut done = 0;
    loop {
        let mut uow = UnitOfWork::system(
            s,
            SystemActor::MediaWorker,
            SystemScope::new("whatsapp.media.claim"),
        )
        .await?;
        let now = uow.now();
        let claimed = store::claim_due(uow.tx(), now, now + LEASE, CONCURRENCY).await?;
        uow.commit().await?;
        if claimed.is_empty() {
            return Ok(done);
        }
        let mut set = tokio::task::JoinSet::new();
        for job in claimed {
            let (s, client) = (s.clone(), client.clone());
            set.spawn(async move {
                if let Err(e) = download_one(&s, &client, &job).await {
                    tracing::warn!(error = %e, message = %job.message_id, "media download failed; retried after the lease");
                }
            });
            done += 1;
        }
        while set.join_next().await.is_some() {}
    }
}

enum Outcome {
    Stored(StoredFile),
    Retry(&'static str, String),
    Failed(&'static str, String),
}

async fn download_one(s: &Services, client: &reqwest::Client, job: &ClaimedJob) -> AppResult<()> {
    let tenant = job.tenant_id;
    let mut tx = s
        .store
        .begin_read(SystemScope::new("whatsapp.media.download"))
        .await?;
    let Some((media, connection_id)) = store::job(&mut tx, tenant, job.message_id).await? else {
        return Ok(()); // deleted with its message
    };
    if media.status != MediaStatus::Pending {
        return Ok(());
    }
    let conn = connections::find_any(&mut tx, connection_id).await?;
    drop(tx);
    let outcome = match conn {
        None => Outcome::Failed(
            "connection_missing",
            "the WhatsApp connection no longer exists".into(),
        ),
        Some(c) if c.status != ConnectionStatus::Active => Outcome::Failed(
            code::CONNECTION_DISCONNECTED,
            "the WhatsApp connection was disconnected before the media could be downloaded".into(),
        ),
        Some(c) => {
            let token = s
                .keys
                .encryption
                .decrypt(&c.access_token_ciphertext, &secret_aad(&c, "access_token"))
                .map_err(|e| anyhow::anyhow!("access token of connection {}: {e:?}", c.id))?;
            let token = String::from_utf8(token)
                .map_err(|_| anyhow::anyhow!("access token of connection {} is not UTF-8", c.id))?;
            fetch(s, client, tenant, &media, &c, &token).await
        }
    };
    let outcome = match outcome {
        Outcome::Retry(code, why) if job.attempts + 1 >= MAX_ATTEMPTS => Outcome::Failed(
            code,
            format!("gave up after {MAX_ATTEMPTS} attempts: {why}"),
        ),
        o => o,
    };
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::MediaWorker,
        SystemScope::new("whatsapp.media.download"),
    )
    .await?
    .for_tenant(tenant);
    let now = uow.now();
    // Whether the stored file ends up referenced by nobody: its message was erased while it
    // downloaded (or another worker recorded the same media first).
    let mut orphan = None;
    match &outcome {
        Outcome::Stored(f) => {
            let recorded = match store::mark_stored(uow.tx(), tenant, job.message_id, f, now).await
            {
                Ok(recorded) => recorded,
                Err(e) => {
                    drop(uow);
                    let _ = s.storage.delete(tenant, &f.storage_key).await;
                    return Err(e.into());
                }
            };
            if !recorded {
                orphan = Some(f.storage_key.as_str());
            }
        }
        Outcome::Retry(code, why) => {
            tracing::info!(message = %job.message_id, attempts = job.attempts + 1, code, error = %why, "media download will be retried");
            let next = now + super::super::outbound::backoff(job.attempts);
            store::retry(uow.tx(), tenant, job.message_id, next, code, why, now).await?;
        }
        Outcome::Failed(code, why) => {
            tracing::warn!(message = %job.message_id, code, error = %why, "media download failed");
            store::mark_failed(uow.tx(), tenant, job.message_id, code, why, now).await?;
        }
    }
    if let Some(key) = orphan {
        let message = job.message_id;
        uow.after_commit_async("could not remove the file of an erased message", async move {
            tracing::info!(%message, "media downloaded for an erased message; the file is removed");
            s.storage
                .delete(tenant, key)
                .await
                .map_err(|e| anyhow::anyhow!("message {message}, file {key}: {e}"))
        });
    }
    if let Err(e) = uow.commit().await {
        if let Outcome::Stored(f) = &outcome {
            // Not recorded, so not kept: the next attempt downloads it again.
            let _ = s.storage.delete(tenant, &f.storage_key).await;
        }
        return Err(e);
    }
    Ok(())
}

async fn fetch(
    s: &Services,
    client: &reqwest::Client,
    tenant: TenantId,
    media: &MessageMedia,
    conn: &Connection,
    token: &str,
) -> Outcome {
    let info = match s
        .graph
        .media_info(token, &media.media_id, &conn.phone_number_id)
        .await
    {
        Ok(info) => info,
        Err(e) if e.is_transient() => return Outcome::Retry("graph_unavailable", e.to_string()),
        Err(e) if e.is_bad_token() => {
            return Outcome::Failed(
                "token_invalid",
                "Meta refused the connection's access token; reconnect the number".into(),
            )
        }
        Err(GraphError::Api { code, message, .. }) => {
            return Outcome::Failed(
                "media_unavailable",
                format!(
                    "Meta has no such media for this number (error {code}: {message}); \
                     media of inbound messages expires after 7 days"
                ),
            )
        }
        Err(e) => return Outcome::Retry("graph_unavailable", e.to_string()),
    };
    let limit = type_max_bytes(&media.kind).min(s.settings.media_max_bytes);
    let too_large = |size: u64| {
        Outcome::Failed(
            "too_large",
            format!(
                "the {} is larger than the {limit} bytes allowed ({size} bytes or more)",
                media.kind
            ),
        )
    };
    if let Some(size) = info.size().filter(|n| *n > limit) {
        return too_large(size);
    }
    let url = match reqwest::Url::parse(&info.url) {
        Ok(u) => u,
        Err(_) => return Outcome::Failed("bad_media_url", "Meta's media URL is not a URL".into()),
    };
    let base = match reqwest::Url::parse(&s.settings.whatsapp_graph_base_url) {
        Ok(u) => u,
        Err(_) => {
            return Outcome::Failed(
                "bad_media_url",
                "the configured Graph base URL is not a URL".into(),
            )
        }
    };
    if let Err(why) = host_allowed(&url, &base) {
        return Outcome::Failed("host_not_allowed", why);
    }
    let mut resp = match crate::safe_http::traced_send(client.get(url).bearer_auth(token)).await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry("download_error", e.without_url().to_string()),
    };
    let status = resp.status();
    if status.is_redirection() {
        return Outcome::Failed(
            "redirect_refused",
            format!("the media URL answered HTTP {status}; redirects are not followed"),
        );
    }
    if status.as_u16() == 404 || status.as_u16() == 410 {
        // Meta: an expired URL answers 404; the next attempt asks for a fresh one.
        return Outcome::Retry(
            "media_url_expired",
            format!("the media URL answered HTTP {status}"),
        );
    }
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        return Outcome::Retry(
            "download_error",
            format!("the media URL answered HTTP {status}"),
        );
    }
    if !status.is_success() {
        return Outcome::Failed(
            "download_refused",
            format!("the media URL answered HTTP {status}"),
        );
    }
    if let Some(len) = resp.content_length().filter(|n| *n > limit) {
        return too_large(len);
    }
    let mut upload = match s.storage.begin(tenant).await {
        Ok(u) => u,
        Err(e) => return Outcome::Retry("storage_error", format!("cannot write the file: {e}")),
    };
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                size = size.saturating_add(chunk.len() as u64);
                if size > limit {
                    return too_large(size); // the upload is dropped: no file is left
                }
                hasher.update(&chunk);
                if let Err(e) = upload.write(&chunk).await {
                    return Outcome::Retry("storage_error", format!("cannot write the file: {e}"));
                }
            }
            Ok(None) => break,
            Err(e) => return Outcome::Retry("download_error", e.without_url().to_string()),
        }
    }
    let digest: [u8; 32] = hasher.finalize().into();
    for (from, expected) in [("webhook", &media.sha256), ("media lookup", &info.sha256)] {
        let Some(expected) = expected.as_deref() else {
            continue;
        };
        match sha256_matches(expected, &digest) {
            Some(true) => {}
            Some(false) => {
                return Outcome::Failed(
                    "sha256_mismatch",
                    format!(
                        "the downloaded bytes do not match the SHA-256 Meta gave in the {from}; \
                         the file was discarded"
                    ),
                )
            }
            None => {
                tracing::warn!(message = %media.message_id, from, "Meta's sha256 is neither hex nor base64; not checked")
            }
        }
    }
    let key = match upload.finish().await {
        Ok(k) => k,
        Err(e) => return Outcome::Retry("storage_error", format!("cannot write the file: {e}")),
    };
    Outcome::Stored(StoredFile {
        mime_type: info
            .mime_type
            .as_deref()
            .map(|m| clip(m, 255))
            .or_else(|| media.mime_type.clone()),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        content_sha256: hex::encode(digest),
        storage_key: key,
    })
}

/// Whether Meta's `sha256` (hex in media lookups, base64 in webhooks) names `digest`; `None`
/// when it is in neither encoding.
pub fn sha256_matches(expected: &str, digest: &[u8; 32]) -> Option<bool> {
    let e = expected.trim();
    let decoded = if e.len() == 64 {
        hex::decode(e).ok()
    } else {
        None
    }
    .or_else(|| {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(e).ok())
    })?;
    (decoded.len() == 32).then(|| decoded.as_slice() == digest.as_slice())
}

/// The media host policy (see the module comment): `Err` says why `url` may not be fetched.
pub fn host_allowed(url: &reqwest::Url, graph_base: &reqwest::Url) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the media URL carries credentials".into());
    }
    let host = |u: &reqwest::Url| {
        u.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
    };
    let Some(name) = host(url) else {
        return Err("the media URL has no host".into());
    };
    if url.scheme() == graph_base.scheme()
        && Some(&name) == host(graph_base).as_ref()
        && url.port_or_known_default() == graph_base.port_or_known_default()
    {
        return Ok(());
    }
    let meta = matches!(url.host(), Some(url::Host::Domain(_)))
        && META_MEDIA_HOSTS
            .iter()
            .any(|pattern| match pattern.strip_prefix('*') {
                Some(suffix) => name.ends_with(suffix) && name.len() > suffix.len(),
                None => name == *pattern,
            });
    if !meta {
        return Err(format!(
            "{name} is neither the Graph API's host nor one of Meta's media hosts"
        ));
    }
    if url.scheme() != "https" || url.port_or_known_default() != Some(443) {
        return Err(format!(
            "{name}: Meta's media hosts are fetched over https on port 443 only"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn media_urls_are_fetched_only_on_the_graph_origin_or_metas_media_hosts() {
        let meta = url("https://graph.facebook.com");
        let sim = url("http://127.0.0.1:8090");
        for ok in [
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
            "https://scontent.xx.fbcdn.net/v/t1/x.jpg",
            "https://mmg.whatsapp.net/d/f/x.enc",
            "https://graph.facebook.com/v25.0/1/download",
        ] {
            assert_eq!(host_allowed(&url(ok), &meta), Ok(()), "{ok}");
        }
        assert_eq!(host_allowed(&url("http://127.0.0.1:8090/x"), &sim), Ok(()));
        for bad in [
            "http://lookaside.fbsbx.com/x",          // not https
            "https://lookaside.fbsbx.com:8443/x",    // not 443
            "https://evil.example/x",                // not Meta
            "https://fbcdn.net.evil.example/x",      // suffix trick
            "https://evilfbcdn.net/x",               // not a subdomain
            "https://user:pw@lookaside.fbsbx.com/x", // credentials
            "https://169.254.169.254/latest",        // an address
            "http://127.0.0.1:8091/x",               // the sim's host, another port
        ] {
            assert!(host_allowed(&url(bad), &meta).is_err(), "{bad}");
            assert!(host_allowed(&url(bad), &sim).is_err(), "{bad}");
        }
        assert!(host_allowed(&url("http://localhost:8090/x"), &sim).is_err());
    }

    #[test]
    fn sha256_is_read_as_hex_or_base64() {
        let digest: [u8; 32] = Sha256::digest(b"abc").into();
        let hex = hex::encode(digest);
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(sha256_matches(&hex, &digest), Some(true));
        assert_eq!(sha256_matches(&hex.to_uppercase(), &digest), Some(true));
        assert_eq!(sha256_matches(&b64, &digest), Some(true));
        let other: [u8; 32] = Sha256::digest(b"abd").into();
        assert_eq!(sha256_matches(&hex, &other), Some(false));
        assert_eq!(sha256_matches(&b64, &other), Some(false));
        assert_eq!(sha256_matches("4654+8g=", &digest), None);
    }
}
