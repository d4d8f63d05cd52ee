//! Identifier generators shaped like Meta's.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rand::distributions::{Alphanumeric, Uniform};
use rand::Rng as _;

/// A numeric Graph object id (phone number, WABA, media, template): 15 or 16 digits.
pub fn numeric_id() -> String {
    let mut rng = rand::thread_rng();
    let first = rng.gen_range(1..=9u8);
    let rest: String = (&mut rng)
        .sample_iter(Uniform::new_inclusive(0u8, 9))
        .take(15)
        .map(|d| char::from(b'0' + d))
        .collect();
    format!("{first}{rest}")
}

/// `wamid.<base64>`, built like Meta's: a small binary header, the recipient's digits and a random
/// hex message key, base64-encoded (`wamid.HBgL…` for an 11-digit number).
pub fn wamid(recipient_digits: &str) -> String {
    let mut rng = rand::thread_rng();
    let digits = recipient_digits.as_bytes();
    let mut raw = Vec::with_capacity(digits.len() + 32);
    raw.extend_from_slice(&[0x1c, 0x18]);
    raw.push(u8::try_from(digits.len()).unwrap_or(u8::MAX));
    raw.extend_from_slice(digits);
    raw.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
    for _ in 0..18 {
        let nibble: u8 = rng.gen_range(0..16);
        raw.push(
            b"0123456789ABCDEF"
                .get(usize::from(nibble))
                .copied()
                .unwrap_or(b'0'),
        );
    }
    raw.push(0x00);
    format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// An access token shaped like a Meta system-user token (`EAA…`).
pub fn access_token() -> String {
    format!("EAAG{}", alnum(120))
}

/// 32 lowercase hex characters, like an app secret.
pub fn app_secret() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A `fbtrace_id`-like token.
pub fn fbtrace_id() -> String {
    format!("A{}", alnum(22))
}

/// 32 lowercase hex characters (conversation ids).
pub fn hex32() -> String {
    app_secret()
}

/// A numeric verification challenge.
pub fn challenge() -> String {
    rand::thread_rng()
        .gen_range(1_000_000_000u64..10_000_000_000)
        .to_string()
}

pub fn alnum(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Unix milliseconds now.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Digits only (`+1 (650) 555-1234` → `16505551234`).
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wamid_looks_like_meta() {
        let id = wamid("16505551234");
        assert!(id.starts_with("wamid.HBgL"), "{id}");
    }
}
