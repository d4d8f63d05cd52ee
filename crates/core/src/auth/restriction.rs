//! Restrictions: a principal that authenticated but may reach only a few routes until its user
//! does something (verifies their email address; later: enrols a second factor).
//!
//! Each [`Restriction`] has the error code it answers with and an allow-list of routes (route
//! templates as the router matched them, e.g. `/api/v1/auth/sessions/{id}`). A principal carries
//! every restriction that applies to it ([`super::Principal::restrictions`], decided once in
//! [`super::authenticate`]); the web layer's `Auth` extractor calls
//! [`super::Principal::check_route`] for every handler that needs a principal, so a new route is
//! restricted without anyone remembering to. To add a restriction: a variant, its code, its
//! allow-list, and where `authenticate` decides it applies.

use crate::error::code;
use crate::AppError;

/// Something the user must do before they may use the API beyond the listed routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// `PALISADE_EMAIL_VERIFICATION=required` and the user's address is not verified.
    EmailUnverified,
}

/// What every restricted principal may still reach: who am I, and signing out.
const ALWAYS_ALLOWED: &[&str] = &[
    "/api/v1/me",
    "/api/v1/auth/logout",
    "/api/v1/auth/logout-all",
    "/api/v1/auth/sessions",
    "/api/v1/auth/sessions/{id}",
];

impl Restriction {
    /// The error code of the 403 outside the allow-list.
    pub fn code(self) -> &'static str {
        match self {
            Restriction::EmailUnverified => code::EMAIL_UNVERIFIED,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Restriction::EmailUnverified => {
                "verify your email address first: POST /api/v1/auth/email/verify with the code \
                 we mailed you (POST /api/v1/auth/email/resend sends a new one)"
            }
        }
    }

    /// The routes this restriction leaves open, besides [`ALWAYS_ALLOWED`].
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Restriction::EmailUnverified => {
                &["/api/v1/auth/email/verify", "/api/v1/auth/email/resend"]
            }
        }
    }

    /// Whether `route` (a route template) stays reachable under this restriction.
    pub fn allows(self, route: &str) -> bool {
        ALWAYS_ALLOWED.contains(&route) || self.allowed().contains(&route)
    }

    /// The answer for a route outside the allow-list.
    pub fn refusal(self) -> AppError {
        AppError::Forbidden {
            code: self.code(),
            message: self.message().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unverified_user_reaches_only_me_verification_and_sign_out() {
        let r = Restriction::EmailUnverified;
        for open in [
            "/api/v1/me",
            "/api/v1/auth/email/verify",
            "/api/v1/auth/email/resend",
            "/api/v1/auth/logout",
            "/api/v1/auth/logout-all",
            "/api/v1/auth/sessions",
            "/api/v1/auth/sessions/{id}",
        ] {
            assert!(r.allows(open), "{open}");
        }
        for closed in [
            "/api/v1/contacts",
            "/api/v1/auth/password",
            "/api/v1/users",
            "/api/v1/ws",
            "/api/v1/me/anything",
        ] {
            assert!(!r.allows(closed), "{closed}");
        }
        assert!(matches!(
            r.refusal(),
            AppError::Forbidden {
                code: "email_unverified",
                ..
            }
        ));
    }
}
