//! TOTP (RFC 6238) with `totp-rs`: SHA-1, 6 digits, 30-second steps, issuer "Palisade", the
//! account named by its email. The secret is encrypted with the key ring, bound to the user's
//! id (so a row copied onto another user does not decrypt). The previous, current and next
//! steps are accepted; which step matched is returned so the caller can refuse replays (a code
//! is accepted at most once: its step must be newer than the last accepted one).

use crate::{AppError, AppResult, Services};
use palisade_domain::UserId;
use qrcode::render::svg;
use qrcode::QrCode;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const ISSUER: &str = "Palisade";
pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u8 = 6;

/// What the user copies into an authenticator app.
pub struct Enrolment {
    /// The secret in base32 (for typing it in).
    pub secret: String,
    /// `otpauth://totp/Palisade:<email>?secret=…&issuer=Palisade…`
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

fn build(secret: Vec<u8>, email: &str) -> AppResult<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(email.replace(':', "_"))
        .build()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp: {e}")))
}

/// A fresh 160-bit secret, its enrolment data, and the secret encrypted for storage.
pub fn generate(s: &Services, user: UserId, email: &str) -> AppResult<(Enrolment, String)> {
    let secret = Secret::generate();
    let totp = build(secret.as_bytes().to_vec(), email)?;
    let otpauth_uri = totp
        .to_url()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp url: {e}")))?;
    let qr_svg = QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("qr code: {e}")))?
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let sealed = s
        .keys
        .encryption
        .encrypt(secret.as_bytes(), &aad(user))
        .map_err(AppError::Internal)?;
    Ok((
        Enrolment {
            secret: secret.to_base32(),
            otpauth_uri,
            qr_svg,
        },
        sealed,
    ))
}

fn aad(user: UserId) -> Vec<u8> {
    let mut a = b"totp:".to_vec();
    a.extend_from_slice(user.as_uuid().as_bytes());
    a
}

/// The steps whose code equals `code` (previous, current, next), newest first. Empty when the
/// code is wrong or malformed.
pub fn matching_steps(
    s: &Services,
    user: UserId,
    sealed: &str,
    code: &str,
    now: OffsetDateTime,
) -> AppResult<Vec<i64>> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Vec::new());
    }
    let secret = s
        .keys
        .encryption
        .decrypt(sealed, &aad(user))
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp secret: {e:?}")))?;
    let totp = build(secret, "user")?;
    let t = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let current = t / STEP_SECONDS;
    let mut found = Vec::new();
    for step in [current + 1, current, current.saturating_sub(1)] {
        let expected = totp.generate(step * STEP_SECONDS).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found.push(i64::try_from(step).unwrap_or(i64::MAX));
        }
    }
    found.dedup();
    Ok(found)
}

/// The code of `time` for a base32 secret (tests and tools compute codes the same way).
pub fn code_at(base32_secret: &str, time: OffsetDateTime) -> Option<String> {
    let secret = Secret::try_from_base32(base32_secret).ok()?;
    let totp = build(secret.as_bytes().to_vec(), "user").ok()?;
    Some(
        totp.generate(u64::try_from(time.unix_timestamp()).ok()?)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s → 94287082 (8 digits); 6 digits: 287082.
        let secret = Secret::from(b"12345678901234567890".to_vec());
        let code = code_at(
            &secret.to_base32(),
            OffsetDateTime::from_unix_timestamp(59).unwrap(),
        );
        assert_eq!(code.as_deref(), Some("287082"));
    }
}
