//! Restrictions: a principal that authenticated but may reach only a few routes until its user
//! does something: verifies their email address, or enrols the second factor their tenant (or,
//! for a super admin, production) requires.
//!
//! Each [`Restriction`] has the error code it answers with and the routes it leaves open
//! (route templates as the router matched them, e.g. `/api/v1/auth/sessions/{id}`). A principal
//! carries every restriction that applies to it ([`super::Principal::restrictions`], decided
//! once in [`super::authenticate`]); the web layer's `Auth` extractor calls
//! [`super::Principal::check_route`] for every handler that needs a principal (the websocket
//! checks its own route), so a new route is restricted without anyone remembering to. Routes
//! that need no principal (sign-in, refresh) never refuse a browser's leftover cookie. To add a
//! restriction: a variant, its code and message, its open routes, and where it is decided.

use super::cache::{TenantSnapshot, UserSnapshot};
use crate::error::code;
use crate::settings::Settings;
use crate::AppError;
use palisade_domain::Role;

/// Something the user must do before they may use the API beyond the routes it leaves open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// `PALISADE_EMAIL_VERIFICATION=required` and the user's address is not verified. Applies
    /// to the user's sessions, API keys and impersonations alike.
    EmailUnverified,
    /// The user must have a second factor (the tenant's `require_2fa`, or a super admin in
    /// production) and has none: only enrolment is open. Sessions only.
    TwoFactorEnrollment,
}

/// What every restricted principal may still reach: who am I, and signing out.
const ALWAYS_OPEN: &[&str] = &["/api/v1/me", "/api/v1/auth/logout"];

impl Restriction {
    /// The error code of the 403 outside the open routes.
    pub fn code(self) -> &'static str {
        match self {
            Restriction::EmailUnverified => code::EMAIL_UNVERIFIED,
            Restriction::TwoFactorEnrollment => code::TWO_FACTOR_ENROLLMENT_REQUIRED,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Restriction::EmailUnverified => {
                "verify your email address first: POST /api/v1/auth/email/verify with the code \
                 we mailed you (POST /api/v1/auth/email/resend sends a new one)"
            }
            Restriction::TwoFactorEnrollment => {
                "your organisation requires two-factor authentication: set it up with \
                 POST /api/v1/auth/2fa/totp/setup (or register a passkey) first"
            }
        }
    }

    /// Exact routes this restriction leaves open, besides [`ALWAYS_OPEN`].
    fn open_routes(self) -> &'static [&'static str] {
        match self {
            Restriction::EmailUnverified => &[
                "/api/v1/auth/logout-all",
                "/api/v1/auth/sessions",
                "/api/v1/auth/sessions/{id}",
                "/api/v1/auth/email/verify",
                "/api/v1/auth/email/resend",
            ],
            Restriction::TwoFactorEnrollment => &[],
        }
    }

    /// Route prefixes (each followed by nothing or `/…`) this restriction leaves open.
    fn open_prefixes(self) -> &'static [&'static str] {
        match self {
            Restriction::EmailUnverified => &[],
            Restriction::TwoFactorEnrollment => &["/api/v1/auth/2fa", "/api/v1/auth/passkeys"],
        }
    }

    /// Whether `route` (a route template) stays reachable under this restriction.
    pub fn allows(self, route: &str) -> bool {
        let under = |prefix: &str| {
            route == prefix
                || route
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        ALWAYS_OPEN.contains(&route)
            || self.open_routes().contains(&route)
            || self.open_prefixes().iter().any(|p| under(p))
    }

    /// The answer for a route the restriction closes.
    pub fn refusal(self) -> AppError {
        AppError::Forbidden {
            code: self.code(),
            message: self.message().into(),
        }
    }
}

/// Whether `user` must have a second factor: the tenant's rule for their role, or, in
/// production, always for a super admin.
pub fn second_factor_required(
    settings: &Settings,
    user: &UserSnapshot,
    tenant: Option<&TenantSnapshot>,
) -> bool {
    match tenant {
        Some(t) => t.require_2fa.applies_to(user.role),
        None => user.role == Role::SuperAdmin && settings.production,
    }
}

/// The restriction on a user's session, if any. Sessions only: API keys and impersonations
/// carry their own limits and are never restricted here.
pub fn decide(
    settings: &Settings,
    user: &UserSnapshot,
    tenant: Option<&TenantSnapshot>,
) -> Option<Restriction> {
    (second_factor_required(settings, user, tenant) && !user.has_second_factor)
        .then_some(Restriction::TwoFactorEnrollment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_domain::{TenantId, TwoFactorRequirement, UserId};

    #[test]
    fn an_unverified_user_reaches_only_me_verification_sessions_and_sign_out() {
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
            "/api/v1/auth/2fa",
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

    fn user(role: Role, tenant: Option<TenantId>, has_second_factor: bool) -> UserSnapshot {
        UserSnapshot {
            id: UserId::new(),
            tenant_id: tenant,
            email: "a@b.example".into(),
            name: "A".into(),
            role,
            is_owner: false,
            deleted: false,
            created_at: time::OffsetDateTime::now_utc(),
            password_changed_at: None,
            email_verified: true,
            has_second_factor,
        }
    }

    fn tenant(r: TwoFactorRequirement) -> TenantSnapshot {
        TenantSnapshot {
            id: TenantId::new(),
            name: "T".into(),
            suspended: false,
            password_policy: palisade_domain::PasswordPolicyPreset::Modern,
            require_2fa: r,
        }
    }

    #[test]
    fn the_decision_follows_the_tenant_and_production_for_super_admins() {
        let dev = Settings::default();
        let prod = Settings {
            production: true,
            ..Settings::default()
        };
        let root = user(Role::SuperAdmin, None, false);
        assert_eq!(decide(&dev, &root, None), None);
        assert_eq!(
            decide(&prod, &root, None),
            Some(Restriction::TwoFactorEnrollment)
        );
        assert_eq!(
            decide(&prod, &user(Role::SuperAdmin, None, true), None),
            None
        );
        let t = tenant(TwoFactorRequirement::Admins);
        let admin = user(Role::Admin, Some(t.id), false);
        let agent = user(Role::Agent, Some(t.id), false);
        assert_eq!(
            decide(&dev, &admin, Some(&t)),
            Some(Restriction::TwoFactorEnrollment)
        );
        assert_eq!(decide(&dev, &agent, Some(&t)), None);
        let off = tenant(TwoFactorRequirement::Off);
        assert_eq!(decide(&prod, &admin, Some(&off)), None);
    }

    #[test]
    fn enrolment_leaves_open_me_logout_and_the_factor_routes_only() {
        let r = Restriction::TwoFactorEnrollment;
        for open in [
            "/api/v1/me",
            "/api/v1/auth/logout",
            "/api/v1/auth/2fa",
            "/api/v1/auth/2fa/totp/setup",
            "/api/v1/auth/passkeys/register/start",
        ] {
            assert!(r.allows(open), "{open}");
        }
        for closed in [
            "/api/v1/contacts",
            "/api/v1/me/../contacts",
            "/api/v1/auth/2factor",
            "/api/v1/auth/sessions",
            "/api/v1/auth/logout-all",
            "/api/v1/mee",
        ] {
            assert!(!r.allows(closed), "{closed}");
        }
    }
}
