//! Parsing and generating the `id:base64url` key-ring text shared by both rings.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::collections::HashSet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("the key ring is empty")]
    Empty,
    #[error("entry {0} is not of the form id:base64url-key")]
    Malformed(usize),
    #[error("key id {0:?} must be 1-32 characters of A-Z a-z 0-9 _ -")]
    BadId(String),
    #[error("key {0} is not valid base64url")]
    BadEncoding(String),
    #[error("key {0} must be exactly 32 bytes, got {1}")]
    BadLength(String, usize),
    #[error(
        "key {0} is weak (too few distinct bytes); generate one with `palisade keys generate`"
    )]
    Weak(String),
    #[error("key id {0} appears twice")]
    DuplicateId(String),
    #[error("keys {0} and {1} are the same key")]
    DuplicateKey(String, String),
}

pub struct RawKey {
    pub id: String,
    pub bytes: [u8; 32],
}

/// Prints the id only: key bytes never reach a log.
impl std::fmt::Debug for RawKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub fn parse_ring(text: &str) -> Result<Vec<RawKey>, KeyRingError> {
    let mut out: Vec<RawKey> = Vec::new();
    let mut ids = HashSet::new();
    for (i, entry) in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let (id, b64) = entry
            .split_once(':')
            .ok_or(KeyRingError::Malformed(i + 1))?;
        let (id, b64) = (id.trim(), b64.trim());
        let id_ok = !id.is_empty()
            && id.len() <= 32
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !id_ok {
            return Err(KeyRingError::BadId(id.to_owned()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| KeyRingError::BadEncoding(id.to_owned()))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyRingError::BadLength(id.to_owned(), bytes.len()))?;
        // 32 random bytes have ~30 distinct values; fewer than 16 means a pattern, not a key.
        if bytes.iter().collect::<HashSet<_>>().len() < 16 {
            return Err(KeyRingError::Weak(id.to_owned()));
        }
        if !ids.insert(id.to_owned()) {
            return Err(KeyRingError::DuplicateId(id.to_owned()));
        }
        if let Some(prev) = out.iter().find(|k| k.bytes == bytes) {
            return Err(KeyRingError::DuplicateKey(prev.id.clone(), id.to_owned()));
        }
        out.push(RawKey {
            id: id.to_owned(),
            bytes,
        });
    }
    if out.is_empty() {
        return Err(KeyRingError::Empty);
    }
    Ok(out)
}

/// A new one-key ring: `k<date><random>:<base64url 32 random bytes>`.
pub fn generate_ring_text() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut tag = [0u8; 3];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "k{:04}{:02}{:02}{}:{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        hex::encode(tag),
        URL_SAFE_NO_PAD.encode(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rings_parse() {
        let a = generate_ring_text();
        let b = generate_ring_text();
        let ring = parse_ring(&format!("{a},{b}")).unwrap();
        assert_eq!(ring.len(), 2);
    }

    #[test]
    fn weak_and_malformed_keys_are_refused() {
        let zeros = URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert_eq!(
            parse_ring(&format!("a:{zeros}")).unwrap_err(),
            KeyRingError::Weak("a".into())
        );
        assert!(matches!(
            parse_ring("a:abc").unwrap_err(),
            KeyRingError::BadLength(..)
        ));
        assert_eq!(
            parse_ring("nocolon").unwrap_err(),
            KeyRingError::Malformed(1)
        );
        assert_eq!(parse_ring("  ").unwrap_err(), KeyRingError::Empty);
        let k = generate_ring_text();
        let (_, key) = k.split_once(':').unwrap();
        assert!(matches!(
            parse_ring(&format!("a:{key},b:{key}")).unwrap_err(),
            KeyRingError::DuplicateKey(..)
        ));
        assert!(matches!(
            parse_ring(&format!(
                "a:{key},a:{}",
                generate_ring_text().split_once(':').unwrap().1
            ))
            .unwrap_err(),
            KeyRingError::DuplicateId(..)
        ));
        assert!(matches!(
            parse_ring(&format!("bad id:{key}")).unwrap_err(),
            KeyRingError::BadId(..)
        ));
    }
}
