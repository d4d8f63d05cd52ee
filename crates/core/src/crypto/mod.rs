//! Key rings for signing (Ed25519) and encrypting secrets at rest (AES-256-GCM).
//!
//! Threat: a leaked or weak key forges sessions or exposes every stored secret; a key that cannot
//! rotate turns a leak into an outage. Invariants:
//! - A ring is a list of `id:base64url(32 bytes)` entries; the **last** entry is the newest and is
//!   the one that signs or encrypts. Older entries only verify or decrypt, so rotation is: append a
//!   key, deploy, wait for old tokens to expire / re-encrypt, then drop the old key.
//! - Every token names its key (`kid`) and every ciphertext starts with its key id; nothing is
//!   tried against "all keys".
//! - Keys with the wrong length, repeated ids, or visibly non-random bytes are refused at start.
//! - Ciphertexts bind associated data (the row's identity), so a ciphertext copied to another row
//!   or tenant does not decrypt.

mod encryption;
mod keyring;
mod signing;

pub use encryption::EncryptionKeyRing;
pub use keyring::{generate_ring_text, KeyRingError, RawKey};
pub use signing::SigningKeyRing;

/// The application's key material.
pub struct Keys {
    pub signing: SigningKeyRing,
    pub encryption: EncryptionKeyRing,
    /// HMAC key for CSRF tokens and other server-side MACs, derived from the newest signing key.
    mac_key: [u8; 32],
}

impl Keys {
    pub fn new(signing: SigningKeyRing, encryption: EncryptionKeyRing) -> Self {
        let mac_key = signing.derive_mac_key(b"palisade mac key v1");
        Keys {
            signing,
            encryption,
            mac_key,
        }
    }

    /// Fresh development keys (tests, first start in development).
    pub fn generate() -> Self {
        let s = generate_ring_text();
        let e = generate_ring_text();
        // Generated rings always parse; fall back to a second try rather than panic.
        match (SigningKeyRing::parse(&s), EncryptionKeyRing::parse(&e)) {
            (Ok(s), Ok(e)) => Keys::new(s, e),
            _ => Keys::generate(),
        }
    }

    pub fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(&self.mac_key)
            .unwrap_or_else(|_| unreachable_hmac());
        m.update(label);
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

// HMAC accepts keys of any length, so construction cannot fail.
#[allow(clippy::panic)]
fn unreachable_hmac() -> hmac::Hmac<sha2::Sha256> {
    panic!("HMAC-SHA256 accepts every key length")
}
