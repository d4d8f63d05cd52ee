//! Recovery codes: ten single-use codes shown once, stored as MACs under the key ring (a
//! leaked table cannot be brute-forced offline without the key), bound to the user.

use crate::Services;
use palisade_domain::UserId;
use rand::Rng;

pub const COUNT: usize = 10;
/// Unambiguous characters (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new code, `XXXXX-XXXXX` (10 characters, ~49 bits).
pub fn generate_code() -> String {
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            out.push('-');
        }
        let idx = rng.gen_range(0..ALPHABET.len());
        out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'X')));
    }
    out
}

/// The form a code is compared in: upper case, without separators or spaces.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn input(user: UserId, code: &str) -> Vec<u8> {
    let mut d = user.as_uuid().as_bytes().to_vec();
    d.extend_from_slice(normalise(code).as_bytes());
    d
}

pub fn hash(s: &Services, user: UserId, code: &str) -> Vec<u8> {
    s.keys.mac(b"recovery-code", &input(user, code)).to_vec()
}

/// Constant-time comparison under every MAC key of the ring.
pub fn matches(s: &Services, user: UserId, code: &str, stored: &[u8]) -> bool {
    s.keys
        .mac_matches(b"recovery-code", &input(user, code), stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_shape_and_normalise() {
        let c = generate_code();
        assert_eq!(c.len(), 11);
        assert_eq!(c.chars().nth(5), Some('-'));
        assert_eq!(normalise(&c.to_lowercase()).len(), 10);
        assert_ne!(generate_code(), generate_code());
    }
}
