//! Who in a tenant must sign in with a second factor.

use crate::Role;
use serde::{Deserialize, Serialize};

/// A tenant's two-factor requirement (`tenants.require_2fa`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorRequirement {
    /// Nobody is required to (the default); anyone may enable it.
    #[default]
    Off,
    /// Admins (the owner included) must.
    Admins,
    /// Every user must.
    Everyone,
}

impl TwoFactorRequirement {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Admins => "admins",
            Self::Everyone => "everyone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "admins" => Some(Self::Admins),
            "everyone" => Some(Self::Everyone),
            _ => None,
        }
    }

    /// Whether a user of `role` in a tenant with this requirement must have a second factor.
    /// Super admins belong to no tenant; their rule is the platform's (production).
    pub const fn applies_to(self, role: Role) -> bool {
        match self {
            Self::Off => false,
            Self::Admins => matches!(role, Role::Admin),
            Self::Everyone => matches!(role, Role::Admin | Role::Agent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_back_and_apply_by_role() {
        for r in [
            TwoFactorRequirement::Off,
            TwoFactorRequirement::Admins,
            TwoFactorRequirement::Everyone,
        ] {
            assert_eq!(TwoFactorRequirement::parse(r.as_str()), Some(r));
        }
        assert_eq!(TwoFactorRequirement::parse("all"), None);
        assert!(!TwoFactorRequirement::Off.applies_to(Role::Admin));
        assert!(TwoFactorRequirement::Admins.applies_to(Role::Admin));
        assert!(!TwoFactorRequirement::Admins.applies_to(Role::Agent));
        assert!(TwoFactorRequirement::Everyone.applies_to(Role::Agent));
    }
}
