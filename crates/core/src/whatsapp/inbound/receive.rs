//! The handler's side of a webhook POST: [`admit`] before the body is read, [`receive`] after
//! (signature first, then the pipeline), and the refusals. Separate from the pipeline because
//! this is the part an attacker talks to: nothing here parses the body.

use super::super::connections::secret_aad;
use super::super::webhook_refusals;
use crate::auth::RequestMeta;
use crate::rate_limit::ClientKey;
use crate::{AppError, AppResult, Services};
use hmac::{Hmac, Mac};
use palisade_domain::{ConnectionId, ConnectionStatus, InboundEventId};
use palisade_store::whatsapp_connections::{self as connections, Connection};
use palisade_store::whatsapp_inbound::InboundEvent;
use palisade_store::SystemScope;

/// Meta sends up to 3 MB per POST.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// A connection a webhook POST may be delivered to, found by [`admit`] before the body is read.
pub struct Admitted {
    conn: Connection,
}

/// The first step of a webhook POST, taken before its body is read: the connection must exist
/// and be active. Anything else is refused at once, so a stranger cannot make this node read
/// megabytes for a made-up id. The lookup is cached for [`super::CONNECTION_TTL`] for active
/// connections, so Meta's bursts cost no query each.
///
/// Refusals count against the client address's failure budget (`webhook_failures`): `401`
/// (`unknown_connection`, `connection_disconnected`) within it, `429 rate_limited` with a wait
/// beyond it. A disconnected connection's refusals are recorded in its tenant's audit log, one
/// record per minute ([`webhook_refusals`]); made-up ids are only traced.
pub async fn admit(
    s: &Services,
    meta: &RequestMeta,
    connection_id: ConnectionId,
) -> AppResult<Admitted> {
    let conn = match s.inbound.cached(connection_id) {
        Some(c) => Some(c),
        None => {
            let mut tx = s
                .store
                .begin_read(SystemScope::new("whatsapp.webhook.receive"))
                .await?;
            let found = connections::find_any(&mut tx, connection_id).await?;
            drop(tx);
            if let Some(c) = found
                .as_ref()
                .filter(|c| c.status == ConnectionStatus::Active)
            {
                s.inbound.remember(c);
            }
            found
        }
    };
    match conn {
        None => Err(refuse(
            s,
            meta,
            None,
            connection_id,
            0,
            "unknown_connection",
            "no such WhatsApp connection",
        )
        .await),
        Some(c) if c.status != ConnectionStatus::Active => Err(refuse(
            s,
            meta,
            Some(&c),
            connection_id,
            0,
            "connection_disconnected",
            "this WhatsApp connection is disconnected",
        )
        .await),
        Some(conn) => Ok(Admitted { conn }),
    }
}

/// Verifies a webhook POST for an [`admit`]ted connection, then stores and processes it (see the
/// module docs). Returns the stored event's id once it is committed. A missing or wrong
/// signature is refused like [`admit`]'s refusals (401, or 429 past the address's failure
/// budget) and counted in the connection's per-minute security record. A correctly signed POST
/// is never limited, whatever its address did before: the signature is checked first.
pub async fn receive(
    s: &Services,
    meta: &RequestMeta,
    admitted: Admitted,
    signature: Option<&str>,
    body: Vec<u8>,
) -> AppResult<InboundEventId> {
    let conn = admitted.conn;
    let refusal = match signature {
        None => Some(("signature_missing", "X-Hub-Signature-256 is required")),
        Some(signature) => {
            let secret = s
                .keys
                .encryption
                .decrypt(
                    &conn.app_secret_ciphertext,
                    &secret_aad(&conn, "app_secret"),
                )
                .map_err(|e| anyhow::anyhow!("app secret of connection {}: {e:?}", conn.id))?;
            (!signature_valid(&secret, signature, &body)).then_some((
                "signature_invalid",
                "X-Hub-Signature-256 does not match the body",
            ))
        }
    };
    if let Some((code, message)) = refusal {
        return Err(refuse(s, meta, Some(&conn), conn.id, body.len(), code, message).await);
    }
    let event = InboundEvent {
        id: InboundEventId::new(),
        tenant_id: conn.tenant_id,
        connection_id: conn.id,
        body,
        received_at: s.now(),
        processed_at: None,
        attempts: 0,
        error: None,
    };
    let id = event.id;
    s.inbound.submit(s, event).await?;
    crate::metrics::inbound_event("accepted");
    Ok(id)
}

/// Counts a refused POST against its address's failure budget and, for a real connection, in
/// its per-minute security record; returns the answer: 401 `code`, or 429 past the budget.
async fn refuse(
    s: &Services,
    meta: &RequestMeta,
    conn: Option<&Connection>,
    connection_id: ConnectionId,
    body_bytes: usize,
    code: &'static str,
    message: &str,
) -> AppError {
    let wait = match meta.ip {
        Some(ip) => s
            .limits
            .webhook_failures
            .check(&ClientKey::of(ip))
            .await
            .err(),
        None => None,
    };
    if let Some(c) = conn {
        webhook_refusals::record(
            s,
            &webhook_refusals::Refusal {
                meta,
                connection_id: c.id,
                tenant_id: c.tenant_id,
                reason: code,
                body_bytes,
                rate_limited: wait.is_some(),
            },
        )
        .await;
    }
    match wait {
        Some(retry_after_secs) => {
            // Past the budget, refusals are only counted: a flood must not fill the logs.
            tracing::debug!(%connection_id, reason = code, "WhatsApp webhook refused (rate limited)");
            crate::metrics::inbound_event("rate_limited");
            AppError::rate_limited(
                "too many refused webhook deliveries from your address; correctly signed deliveries are still accepted",
                retry_after_secs,
            )
        }
        None => {
            tracing::warn!(%connection_id, reason = code, "WhatsApp webhook refused");
            crate::metrics::inbound_event("refused");
            AppError::Unauthenticated {
                code,
                message: message.into(),
            }
        }
    }
}

/// `header` is `sha256=<lowercase hex HMAC-SHA256(secret, body)>`; compared in constant time.
pub fn signature_valid(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_test_vector_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let sig = "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756";
        assert!(signature_valid(b"test_app_secret", sig, body));
        assert!(!signature_valid(b"other", sig, body));
        assert!(!signature_valid(b"test_app_secret", &sig[7..], body));
        assert!(!signature_valid(b"test_app_secret", "sha256=zz", body));
    }
}
