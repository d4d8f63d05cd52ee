//! Passkeys (WebAuthn): registering them, listing and removing them, and signing in with one.
//!
//! Threat: a stolen or replayed WebAuthn answer, a cloned authenticator, a credential planted
//! on someone else's account, and ceremony state a client could forge. Invariants:
//! - Ceremony state never leaves the server: webauthn-rs's state is stored in
//!   `webauthn_challenges` and only its id (sign-in) or nothing (registration: one pending per
//!   user) goes to the client. A challenge is consumed by one conditional UPDATE before its
//!   answer is checked, so it works once, even for two requests at the same instant, and a
//!   failed answer spends it too. It lives five minutes ([`CEREMONY_TTL`]).
//! - User verification is required at registration and sign-in, so a passkey sign-in is a
//!   complete multi-factor sign-in ([`sessions::SignInMethod::Passkey`]).
//! - A credential id belongs to one account in the whole deployment (a unique index).
//! - The signature counter only moves forward: webauthn-rs refuses an answer whose counter is
//!   not above the stored one (a possible clone; audited `auth.passkey.counter_regressed`), and
//!   the stored counter is advanced by a conditional UPDATE, so two sign-ins racing with the
//!   same counter value cannot both succeed.
//! - The user handle in a discoverable credential is the user's id; a passwordless sign-in
//!   takes the account from the stored passkey (found by credential id) and refuses an answer
//!   whose user handle names another account.

mod register;
mod relying_party;
mod sign_in;

pub use register::{finish_registration, remove, start_registration};
pub use relying_party::{RelyingParty, CEREMONY_TTL};
pub use sign_in::{finish_sign_in, start_sign_in, SignInChallenge};

use super::Principal;
use crate::error::code;
use crate::{AppError, AppResult, Services};
use palisade_domain::{rfc3339, FieldError, PasskeyId};
use palisade_store::passkeys::{self as rows, StoredPasskey};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

// A passkey as the API shows it (a plain comment: a doc comment would become the schema's
// description).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = PasskeyResponse)]
pub struct PasskeyView {
    pub id: Uuid,
    /// The name the user gave it, e.g. `Laptop`.
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The last sign-in with it; `null` until then.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> Self {
        PasskeyView {
            id: p.id.as_uuid(),
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
        }
    }
}

/// The caller's passkeys, oldest first.
pub async fn list(s: &Services, p: &Principal) -> AppResult<Vec<PasskeyView>> {
    own_account(p)?;
    let mut tx = s.store.begin_read(p.own_scope()).await?;
    let keys = rows::list_for_user(&mut tx, p.user_id).await?;
    Ok(keys.iter().map(PasskeyView::from).collect())
}

/// Passkeys are a person's own credentials: only their own session may see or change them.
/// API keys, impersonations and a session whose password has expired are refused.
fn own_account(p: &Principal) -> AppResult<()> {
    p.session_id()?;
    if p.impersonator.is_some() {
        return Err(AppError::Forbidden {
            code: code::IMPERSONATION_FORBIDDEN,
            message: "an impersonation cannot see or change the user's passkeys".into(),
        });
    }
    if p.password_change_only {
        return Err(AppError::Forbidden {
            code: code::PASSWORD_EXPIRED,
            message: "your password has expired; change it with POST /api/v1/auth/password".into(),
        });
    }
    Ok(())
}

/// A passkey's name: trimmed, 1 to 64 characters, no control characters.
pub fn parse_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(FieldError::new("name", "must not be empty"));
    }
    if len > 64 {
        return Err(FieldError::new("name", "must be at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn invalid_passkey(message: &str) -> AppError {
    AppError::Unauthenticated {
        code: code::INVALID_PASSKEY,
        message: message.to_owned(),
    }
}

fn invalid_challenge() -> AppError {
    AppError::BadRequest {
        code: code::INVALID_CHALLENGE,
        message: "the passkey challenge is unknown, already used or expired; start again".into(),
    }
}

fn state_error(e: serde_json::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("webauthn state: {e}"))
}

fn passkey_id(id: Uuid) -> PasskeyId {
    PasskeyId::from_uuid(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Laptop ").unwrap(), "Laptop");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(65)).is_err());
        assert_eq!(parse_name(&"é".repeat(64)).unwrap().chars().count(), 64);
        assert!(parse_name("a\u{7}b").is_err());
    }
}
