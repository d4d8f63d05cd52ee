//! Signing keys of outgoing webhooks (Standard Webhooks): HMAC secrets and Ed25519 key pairs,
//! how they are generated and stored, and the `webhook-signature` header computed from them.
//! Separate because it is pure and security-critical: it holds no I/O, and the reference-vector
//! tests pin its output.

use crate::AppResult;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_domain::{TenantId, WebhookId};
use rand::RngCore;

/// Prefix of symmetric secrets (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of Ed25519 private keys (Standard Webhooks); never leaves the server.
pub const PRIVATE_KEY_PREFIX: &str = "whsk_";
/// Prefix of Ed25519 public keys (Standard Webhooks), given to the consumer.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// A fresh secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_…` secret.
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// How an endpoint signs (fixed at creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// HMAC-SHA256 with a `whsec_` secret: `v1,…`.
    HmacSha256,
    /// Ed25519 with a `whsk_` private key: `v1a,…`.
    Ed25519,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::HmacSha256 => "hmac_sha256",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }
    /// `hmac_sha256` (also spelled `hmac-sha256`) or `ed25519`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hmac_sha256" | "hmac-sha256" => Some(SignatureAlgorithm::HmacSha256),
            "ed25519" => Some(SignatureAlgorithm::Ed25519),
            _ => None,
        }
    }
}

/// A fresh Ed25519 key pair: (`whsk_…` private key, `whpk_…` public key).
pub fn generate_ed25519() -> AppResult<(String, String)> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| anyhow::anyhow!("ed25519 key: {e}"))?;
    use ring::signature::KeyPair;
    Ok((
        format!("{PRIVATE_KEY_PREFIX}{}", STANDARD.encode(seed)),
        format!(
            "{PUBLIC_KEY_PREFIX}{}",
            STANDARD.encode(pair.public_key().as_ref())
        ),
    ))
}

/// One key an endpoint signs with, decrypted for one attempt.
pub enum SigningKey {
    Hmac(Vec<u8>),
    Ed25519(ring::signature::Ed25519KeyPair),
}

impl SigningKey {
    /// Parses a stored `whsec_…` or `whsk_…` key.
    pub fn parse(alg: SignatureAlgorithm, key: &str) -> Option<SigningKey> {
        match alg {
            SignatureAlgorithm::HmacSha256 => secret_bytes(key).map(SigningKey::Hmac),
            SignatureAlgorithm::Ed25519 => {
                let seed = STANDARD
                    .decode(key.strip_prefix(PRIVATE_KEY_PREFIX)?)
                    .ok()?;
                ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                    .ok()
                    .map(SigningKey::Ed25519)
            }
        }
    }

    /// `v1,<sig>` or `v1a,<sig>` over `{id}.{timestamp}.{body}`.
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            SigningKey::Hmac(k) => format!("v1,{}", sign(k, msg_id, timestamp, body)),
            SigningKey::Ed25519(pair) => {
                let mut msg = Vec::with_capacity(msg_id.len() + body.len() + 24);
                msg.extend_from_slice(msg_id.as_bytes());
                msg.push(b'.');
                msg.extend_from_slice(timestamp.to_string().as_bytes());
                msg.push(b'.');
                msg.extend_from_slice(body);
                format!("v1a,{}", STANDARD.encode(pair.sign(&msg).as_ref()))
            }
        }
    }
}

/// `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key) else {
        return String::new(); // unreachable: HMAC takes keys of any length
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `webhook-signature` value: one `v1,<sig>` / `v1a,<sig>` per key, space-separated.
pub fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.signature(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn aad(tenant: TenantId, id: WebhookId) -> Vec<u8> {
    format!("webhook:{tenant}:{id}").into_bytes()
}

/// A fresh signing key for `alg`: (what is stored encrypted, what the consumer gets, the
/// public key to store in clear).
pub(super) fn new_signing_key(
    alg: SignatureAlgorithm,
) -> AppResult<(String, String, Option<String>)> {
    Ok(match alg {
        SignatureAlgorithm::HmacSha256 => {
            let secret = generate_secret();
            (secret.clone(), secret, None)
        }
        SignatureAlgorithm::Ed25519 => {
            let (private, public) = generate_ed25519()?;
            (private, public.clone(), Some(public))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The test vector of the Standard Webhooks reference libraries.
        let key = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_default();
        let sig = signature_header(
            &[SigningKey::Hmac(key)],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn ed25519_keys_sign_v1a_that_the_public_key_verifies() {
        let (private, public) = generate_ed25519().unwrap();
        assert!(private.starts_with("whsk_") && public.starts_with("whpk_"));
        let key = SigningKey::parse(SignatureAlgorithm::Ed25519, &private).unwrap();
        let header = signature_header(&[key], "msg_1", 1_614_265_330, b"{}");
        let sig = STANDARD
            .decode(header.strip_prefix("v1a,").unwrap())
            .unwrap();
        let pk = STANDARD
            .decode(public.strip_prefix("whpk_").unwrap())
            .unwrap();
        assert_eq!(pk.len(), 32);
        let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &pk);
        assert!(verifier.verify(b"msg_1.1614265330.{}", &sig).is_ok());
        assert!(verifier.verify(b"msg_1.1614265330.{ }", &sig).is_err());
        assert!(SigningKey::parse(SignatureAlgorithm::Ed25519, "whsec_AAAA").is_none());
    }

    #[test]
    fn secrets_are_32_random_bytes_with_the_prefix() {
        let a = generate_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(secret_bytes(&a).map(|b| b.len()), Some(32));
        assert_ne!(a, generate_secret());
    }
}
