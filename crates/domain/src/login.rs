//! The vocabulary of a user's login history: how a sign-in was attempted and how it ended.
//!
//! Both are stored as text with a CHECK constraint (migration 0019) and shown as is in
//! `GET /api/v1/auth/login-history`; the sets below are the CHECK's and the API's.

use serde::Serialize;

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginResult {
    /// Signed in: a session was created.
    Success,
    /// A wrong password (or passkey assertion) for an existing account.
    Failure,
    /// Refused without checking anything because the account is locked after repeated failures.
    Locked,
    /// The password was right but the second factor was wrong.
    MfaFailure,
}

impl LoginResult {
    pub const ALL: [LoginResult; 4] = [
        LoginResult::Success,
        LoginResult::Failure,
        LoginResult::Locked,
        LoginResult::MfaFailure,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LoginResult::Success => "success",
            LoginResult::Failure => "failure",
            LoginResult::Locked => "locked",
            LoginResult::MfaFailure => "mfa_failure",
        }
    }
}

/// The credential that decided a sign-in attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    Password,
    Passkey,
    Totp,
    RecoveryCode,
}

impl LoginMethod {
    pub const ALL: [LoginMethod; 4] = [
        LoginMethod::Password,
        LoginMethod::Passkey,
        LoginMethod::Totp,
        LoginMethod::RecoveryCode,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Password => "password",
            LoginMethod::Passkey => "passkey",
            LoginMethod::Totp => "totp",
            LoginMethod::RecoveryCode => "recovery_code",
        }
    }
}

text_enum!(LoginResult, "login result");
text_enum!(LoginMethod, "login method");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text_and_serde() {
        for r in LoginResult::ALL {
            assert_eq!(r.as_str().parse::<LoginResult>(), Ok(r));
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.as_str())
            );
        }
        for m in LoginMethod::ALL {
            assert_eq!(m.as_str().parse::<LoginMethod>(), Ok(m));
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::json!(m.as_str())
            );
        }
        assert!("LOCKED".parse::<LoginResult>().is_err());
        assert!("sms".parse::<LoginMethod>().is_err());
    }
}
