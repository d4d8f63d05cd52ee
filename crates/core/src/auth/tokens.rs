//! Access tokens (JWT, EdDSA) and the opaque secrets (refresh, invite).
//!
//! Threat: forged, replayed or confused tokens. Invariants (RFC 8725):
//! - One pinned algorithm, EdDSA; `alg: none`, HMAC and RSA headers are refused before any key is
//!   looked at. `typ` must be `at+jwt`. `kid` is looked up only in the local ring.
//! - `iss`, `aud`, `exp`, `nbf` are required and checked against our clock (5 s leeway for
//!   clock skew between nodes); lifetime is 15 minutes and never outlives the session.
//! - Refresh and invite tokens are 256 random bits with a recognisable prefix, stored only as
//!   SHA-256 hashes (a fast hash suffices for high-entropy secrets).

use crate::crypto::SigningKeyRing;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
pub const REFRESH_PREFIX: &str = "pal_rt_";
pub const INVITE_PREFIX: &str = "pal_inv_";
pub const PASSWORD_RESET_PREFIX: &str = "pal_pr_";
const LEEWAY_SECS: i64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user.
    pub sub: Uuid,
    /// The device session.
    pub sid: Uuid,
    /// The tenant; absent for super admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// Set when the password has expired: the token may only change it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pwc: bool,
    /// Set on impersonation tokens: the super admin acting as `sub` (RFC 8693 `act`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// Who is really acting under an impersonation token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Actor {
    pub sub: Uuid,
    pub email: String,
    /// Whether the impersonation may change anything.
    pub write: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token's algorithm or type is not accepted")]
    WrongAlgorithm,
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    #[error("the access token's signature or claims are invalid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
}

pub fn issue(keys: &SigningKeyRing, claims: &AccessClaims) -> anyhow::Result<String> {
    let key = keys.active();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.id.clone());
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| anyhow::anyhow!("jwt: {e}"))
}

pub fn verify(
    keys: &SigningKeyRing,
    token: &str,
    issuer: &str,
    audience: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(TokenError::WrongAlgorithm);
    }
    let kid = header.kid.ok_or(TokenError::UnknownKey)?;
    let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.algorithms = vec![Algorithm::EdDSA];
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    // Time is checked below against our clock, not the library's.
    v.validate_exp = false;
    v.validate_nbf = false;
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v)
        .map_err(|_| TokenError::Invalid)?;
    let c = data.claims;
    let now = now.unix_timestamp();
    if c.exp <= now - LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    if c.nbf > now + LEEWAY_SECS {
        return Err(TokenError::NotYetValid);
    }
    Ok(c)
}

/// A new opaque secret: `prefix` + base64url(32 random bytes).
pub fn new_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(b))
}

pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{generate_ring_text, Keys};

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "palisade".into(),
            aud: "palisade-api".into(),
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            tid: Some(Uuid::now_v7()),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: Uuid::now_v7(),
            pwc: false,
            act: None,
        }
    }

    fn check(keys: &SigningKeyRing, t: &str) -> Result<AccessClaims, TokenError> {
        verify(
            keys,
            t,
            "palisade",
            "palisade-api",
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn a_fresh_token_verifies() {
        let keys = Keys::generate();
        let c = claims(OffsetDateTime::now_utc().unix_timestamp());
        let t = issue(&keys.signing, &c).unwrap();
        assert_eq!(check(&keys.signing, &t).unwrap(), c);
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn alg_none_and_hs256_confusion_are_refused() {
        let keys = Keys::generate();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let body = b64(&serde_json::to_value(claims(now)).unwrap());
        let kid = keys.signing.active().id.clone();
        let none = format!(
            "{}.{body}.",
            b64(&serde_json::json!({"alg":"none","typ":"at+jwt","kid":kid}))
        );
        assert_eq!(
            check(&keys.signing, &none).unwrap_err(),
            TokenError::Malformed
        );
        // HS256 signed with the public key bytes, the classic confusion attack.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid);
        h.typ = Some("at+jwt".into());
        let hs = jsonwebtoken::encode(
            &h,
            &claims(now),
            &jsonwebtoken::EncodingKey::from_secret(b"public"),
        )
        .unwrap();
        assert_eq!(
            check(&keys.signing, &hs).unwrap_err(),
            TokenError::WrongAlgorithm
        );
    }

    #[test]
    fn wrong_audience_issuer_type_and_key_are_refused() {
        let keys = Keys::generate();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut c = claims(now);
        c.aud = "someone-else".into();
        assert_eq!(
            check(&keys.signing, &issue(&keys.signing, &c).unwrap()).unwrap_err(),
            TokenError::Invalid
        );
        let mut c = claims(now);
        c.iss = "evil".into();
        assert_eq!(
            check(&keys.signing, &issue(&keys.signing, &c).unwrap()).unwrap_err(),
            TokenError::Invalid
        );
        let other = SigningKeyRing::parse(&generate_ring_text()).unwrap();
        let t = issue(&other, &claims(now)).unwrap();
        assert_eq!(
            check(&keys.signing, &t).unwrap_err(),
            TokenError::UnknownKey
        );
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(keys.signing.active().id.clone());
        h.typ = Some("JWT".into());
        let t = jsonwebtoken::encode(&h, &claims(now), &keys.signing.active().encoding).unwrap();
        assert_eq!(
            check(&keys.signing, &t).unwrap_err(),
            TokenError::WrongAlgorithm
        );
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let keys = Keys::generate();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut c = claims(now - 2000);
        c.exp = now - 60;
        assert_eq!(
            check(&keys.signing, &issue(&keys.signing, &c).unwrap()).unwrap_err(),
            TokenError::Expired
        );
        let mut c = claims(now);
        c.nbf = now + 600;
        assert_eq!(
            check(&keys.signing, &issue(&keys.signing, &c).unwrap()).unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let keys = Keys::generate();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let t = issue(&keys.signing, &claims(now)).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_value(claims(now)).unwrap()),
            parts[2]
        );
        assert_eq!(
            check(&keys.signing, &forged).unwrap_err(),
            TokenError::Invalid
        );
    }

    #[test]
    fn secrets_are_prefixed_and_long() {
        let s = new_secret(REFRESH_PREFIX);
        assert!(s.starts_with("pal_rt_") && s.len() == 7 + 43);
        assert_ne!(s, new_secret(REFRESH_PREFIX));
        assert_eq!(secret_hash(&s).len(), 32);
    }
}
