//! Restricted sessions: a signed-in user who still owes the platform something (today: a second
//! factor the tenant requires) may reach only the routes that settle it, `/api/v1/me` and
//! logout. Everything else answers `403` with the restriction's code.
//!
//! One enum, one allow-list per variant, decided in one function ([`decide`]) when the request
//! authenticates; the web layer asks [`Restriction::allows`] for every route that needs a
//! principal. A new kind of restriction (an unverified email, say) is a new variant.

use super::cache::{TenantSnapshot, UserSnapshot};
use crate::error::code;
use crate::settings::Settings;
use crate::AppError;
use palisade_domain::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// The user must have a second factor (the tenant's `require_2fa`, or a super admin in
    /// production) and has none: only enrolment is open.
    TwoFactorEnrollment,
}

/// Routes every restriction leaves open: who am I, and signing out.
const ALWAYS_OPEN: &[&str] = &["/api/v1/me", "/api/v1/auth/logout"];

impl Restriction {
    /// The path prefixes (each followed by nothing or `/…`) this restriction leaves open,
    /// besides [`ALWAYS_OPEN`].
    const fn open_prefixes(self) -> &'static [&'static str] {
        match self {
            Restriction::TwoFactorEnrollment => &["/api/v1/auth/2fa", "/api/v1/auth/passkeys"],
        }
    }

    /// Whether a request to `path` may proceed under this restriction.
    pub fn allows(self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        ALWAYS_OPEN.contains(&path) || self.open_prefixes().iter().any(|p| under(p))
    }

    /// The answer for a route the restriction closes.
    pub fn error(self) -> AppError {
        match self {
            Restriction::TwoFactorEnrollment => AppError::Forbidden {
                code: code::TWO_FACTOR_ENROLLMENT_REQUIRED,
                message: "your organisation requires two-factor authentication: set it up with \
                          POST /api/v1/auth/2fa/totp/setup (or register a passkey) first"
                    .into(),
            },
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
