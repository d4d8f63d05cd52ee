//! Key rings for signing (Ed25519) and encrypting secrets at rest (AES-256-GCM).
//!
//! Threat: a leaked or weak key forges sessions or exposes every stored secret; a key that cannot
//! rotate turns a leak into an outage. Invariants:
//! - A ring is a list of `id:base64url(32 bytes)` entries; the **last** entry is the newest and is
//!   the one that signs or encrypts. Older entries only verify or decrypt, so rotation is: append a
//!   key, deploy, wait for old tokens to expire / re-encrypt, then drop the old key.
//! - Every token names its key (`kid`) and every ciphertext starts with its key id; nothing is
//!   tried against "all keys" — except the server's own MACs (CSRF tokens), which carry no key
//!   id: they are checked against the MAC key derived from each signing key (a handful), so
//!   appending a signing key does not invalidate the CSRF tokens of signed-in browsers.
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
    /// HMAC keys for CSRF tokens and other server-side MACs, one derived from each signing key,
    /// the newest first: the newest makes new MACs, every one verifies (see [`Keys::mac_matches`]).
    mac_keys: Vec<[u8; 32]>,
}

impl Keys {
    pub fn new(signing: SigningKeyRing, encryption: EncryptionKeyRing) -> Self {
        let mac_keys = signing.derive_mac_keys(b"palisade mac key v1");
        Keys {
            signing,
            encryption,
            mac_keys,
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

    /// The MAC of `data` under the newest key.
    pub fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        match self.mac_keys.first() {
            Some(key) => mac_with(key, label, data),
            // A ring is never empty (parsing refuses it); an empty MAC never matches a real one.
            None => [0; 32],
        }
    }

    /// Whether `mac` is the MAC of `data` under any key of the ring, so MACs made before a new
    /// signing key was appended still verify. Compared in constant time.
    pub fn mac_matches(&self, label: &[u8], data: &[u8], mac: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.mac_keys
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | mac_with(key, label, data).ct_eq(mac)
            })
            .into()
    }
}

fn mac_with(key: &[u8; 32], label: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable_hmac());
    m.update(label);
    m.update(&[0]);
    m.update(data);
    m.finalize().into_bytes().into()
}

// HMAC accepts keys of any length, so construction cannot fail.
#[allow(clippy::panic)]
fn unreachable_hmac() -> hmac::Hmac<sha2::Sha256> {
    panic!("HMAC-SHA256 accepts every key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_made_before_a_key_was_appended_still_verify() {
        let one = generate_ring_text();
        let two = generate_ring_text();
        let enc = EncryptionKeyRing::parse(&generate_ring_text()).unwrap();
        let before = Keys::new(SigningKeyRing::parse(&one).unwrap(), enc);
        let mac = before.mac(b"csrf", b"session");
        let enc = EncryptionKeyRing::parse(&generate_ring_text()).unwrap();
        let after = Keys::new(SigningKeyRing::parse(&format!("{one},{two}")).unwrap(), enc);
        assert!(after.mac_matches(b"csrf", b"session", &mac));
        assert_ne!(
            after.mac(b"csrf", b"session"),
            mac,
            "the newest key makes new MACs"
        );
        assert!(!after.mac_matches(b"csrf", b"other session", &mac));
        assert!(!after.mac_matches(b"csrf", b"session", b"short"));
    }
}
