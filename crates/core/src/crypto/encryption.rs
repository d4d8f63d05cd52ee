//! AES-256-GCM for secrets at rest (WhatsApp tokens, webhook secrets, TOTP seeds).
//!
//! Ciphertext text form: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The 96-bit nonce is
//! random per message; with at most ~2^32 messages per key that stays far from collision bounds,
//! and rotation resets the count.

use super::keyring::{parse_ring, KeyRingError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

pub struct EncryptionKeyRing {
    keys: Vec<(String, Aes256Gcm)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext names key {0}, which is not in the ring")]
    UnknownKey(String),
    #[error("ciphertext does not authenticate (wrong key or associated data, or tampered)")]
    Unauthentic,
}

impl EncryptionKeyRing {
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        let keys = parse_ring(text)?
            .into_iter()
            .map(|k| (k.id, Aes256Gcm::new(&k.bytes.into())))
            .collect();
        Ok(EncryptionKeyRing { keys })
    }

    /// Encrypts with the newest key, binding `aad` (e.g. `"whatsapp_connection:<tenant>:<id>"`).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<String> {
        let (id, cipher) = self
            .keys
            .last()
            .ok_or_else(|| anyhow::anyhow!("empty key ring"))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("v1.{id}.{}", URL_SAFE_NO_PAD.encode(blob)))
    }

    pub fn decrypt(&self, text: &str, aad: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut parts = text.splitn(3, '.');
        let (Some("v1"), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DecryptError::Malformed);
        };
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| DecryptError::UnknownKey(id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| DecryptError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(DecryptError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| DecryptError::Unauthentic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::generate_ring_text;

    #[test]
    fn round_trips_and_binds_associated_data() {
        let ring = EncryptionKeyRing::parse(&generate_ring_text()).unwrap();
        let ct = ring.encrypt(b"EAAG-secret", b"row:1").unwrap();
        assert!(!ct.contains("EAAG"));
        assert_eq!(ring.decrypt(&ct, b"row:1").unwrap(), b"EAAG-secret");
        assert_eq!(
            ring.decrypt(&ct, b"row:2").unwrap_err(),
            DecryptError::Unauthentic
        );
        let mut tampered = ct.clone();
        tampered.pop();
        tampered.push(if ct.ends_with('A') { 'B' } else { 'A' });
        assert!(ring.decrypt(&tampered, b"row:1").is_err());
    }

    #[test]
    fn old_keys_still_decrypt_after_rotation() {
        let old = generate_ring_text();
        let ring_old = EncryptionKeyRing::parse(&old).unwrap();
        let ct = ring_old.encrypt(b"s", b"a").unwrap();
        let rotated = EncryptionKeyRing::parse(&format!("{old},{}", generate_ring_text())).unwrap();
        assert_eq!(rotated.decrypt(&ct, b"a").unwrap(), b"s");
        let new_ct = rotated.encrypt(b"s", b"a").unwrap();
        assert_ne!(
            new_ct.split('.').nth(1),
            ct.split('.').nth(1),
            "newest key encrypts"
        );
        let without_old = EncryptionKeyRing::parse(&generate_ring_text()).unwrap();
        assert!(matches!(
            without_old.decrypt(&ct, b"a"),
            Err(DecryptError::UnknownKey(_))
        ));
    }
}
