//! Ed25519 signing keys for access tokens.

use super::keyring::{parse_ring, KeyRingError};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::signature::KeyPair;

pub struct SigningKey {
    pub id: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    seed: [u8; 32],
}

pub struct SigningKeyRing {
    /// The newest key, which signs.
    active: SigningKey,
    /// Older keys, which only verify.
    older: Vec<SigningKey>,
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed 16-byte prefix, then the seed.
fn pkcs8_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

impl SigningKeyRing {
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        let raw = parse_ring(text)?;
        let mut keys = Vec::with_capacity(raw.len());
        for k in raw {
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&k.bytes)
                .map_err(|_| KeyRingError::Weak(k.id.clone()))?;
            keys.push(SigningKey {
                encoding: EncodingKey::from_ed_der(&pkcs8_from_seed(&k.bytes)),
                decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
                id: k.id,
                seed: k.bytes,
            });
        }
        let active = keys.pop().ok_or(KeyRingError::Empty)?;
        Ok(SigningKeyRing {
            active,
            older: keys,
        })
    }

    /// The newest key, which signs.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// A key by id, for verification. Ids come only from this ring, never from the token's URLs.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.active)
            .chain(&self.older)
            .find(|k| k.id == kid)
    }

    /// One MAC key per signing key, the newest first. Each is derived from its own key's seed
    /// only, so appending a key to the ring leaves every older derived key as it was.
    pub(super) fn derive_mac_keys(&self, label: &[u8]) -> Vec<[u8; 32]> {
        use sha2::Digest;
        std::iter::once(&self.active)
            .chain(self.older.iter().rev())
            .map(|k| {
                let mut h = sha2::Sha256::new();
                h.update(label);
                h.update(k.seed);
                h.finalize().into()
            })
            .collect()
    }
}
