//! Security alerts: the rules that raise them, how severe they are, and where they stand.
//!
//! The names are the wire values of `GET /api/v1/security/alerts` (`rule=`, `severity=`,
//! `status=`), of the `security.alert` webhook event and of the
//! `palisade_security_alerts_total{rule,severity}` metric: a closed set, so the metric has a
//! bounded number of series and a filter with a typo is a 400, not an empty page.

/// A detection rule (docs/security.md, "Detections and alerts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertRule {
    /// Many failed sign-ins for one account in a short time.
    AccountUnderAttack,
    /// One client address failing against many accounts in a short time.
    PasswordSpraying,
    /// Two successful sign-ins of one user too far apart for the time between them.
    ImpossibleTravel,
    /// A successful sign-in from a country the user has not signed in from in 90 days.
    NewCountry,
    /// A change that grants more power: a user made admin, ownership transferred, a powerful
    /// API key, the 2FA requirement lowered, a webhook to a new domain, a super admin created.
    PrivilegeEscalation,
    /// A large export, many exports, or one credential reading many records.
    MassDataAccess,
    /// An API key used from an address (or country) it has never used.
    ApiKeyNewAddress,
    /// A scheduled backup failed or did not run (raised by the backup scheduler).
    BackupFailed,
}

impl AlertRule {
    pub const ALL: [AlertRule; 8] = [
        AlertRule::AccountUnderAttack,
        AlertRule::PasswordSpraying,
        AlertRule::ImpossibleTravel,
        AlertRule::NewCountry,
        AlertRule::PrivilegeEscalation,
        AlertRule::MassDataAccess,
        AlertRule::ApiKeyNewAddress,
        AlertRule::BackupFailed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertRule::AccountUnderAttack => "account_under_attack",
            AlertRule::PasswordSpraying => "password_spraying",
            AlertRule::ImpossibleTravel => "impossible_travel",
            AlertRule::NewCountry => "new_country",
            AlertRule::PrivilegeEscalation => "privilege_escalation",
            AlertRule::MassDataAccess => "mass_data_access",
            AlertRule::ApiKeyNewAddress => "api_key_new_address",
            AlertRule::BackupFailed => "backup_failed",
        }
    }
}

text_enum!(AlertRule, "alert rule");

/// How urgent an alert is. High and critical alerts are mailed to the tenant's admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertSeverity {
    Low,
    Medium,
    High,
    Critical,
}

impl AlertSeverity {
    pub const ALL: [AlertSeverity; 4] = [
        AlertSeverity::Low,
        AlertSeverity::Medium,
        AlertSeverity::High,
        AlertSeverity::Critical,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Low => "low",
            AlertSeverity::Medium => "medium",
            AlertSeverity::High => "high",
            AlertSeverity::Critical => "critical",
        }
    }

    /// Whether the tenant's admins get a mail about it.
    pub fn is_mailed(self) -> bool {
        self >= AlertSeverity::High
    }
}

text_enum!(AlertSeverity, "alert severity");

/// Where an alert stands. `open` and `acknowledged` are both unresolved: a repeat of the same
/// rule on the same subject bumps them; once `resolved`, a repeat opens a new alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 3] = [
        AlertStatus::Open,
        AlertStatus::Acknowledged,
        AlertStatus::Resolved,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }
}

text_enum!(AlertStatus, "alert status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in AlertRule::ALL {
            assert_eq!(r.as_str().parse::<AlertRule>(), Ok(r));
        }
        for s in AlertSeverity::ALL {
            assert_eq!(s.as_str().parse::<AlertSeverity>(), Ok(s));
        }
        for s in AlertStatus::ALL {
            assert_eq!(s.as_str().parse::<AlertStatus>(), Ok(s));
        }
        assert!("brute_force".parse::<AlertRule>().is_err());
    }

    #[test]
    fn only_high_and_critical_are_mailed() {
        assert!(!AlertSeverity::Medium.is_mailed());
        assert!(AlertSeverity::High.is_mailed());
        assert!(AlertSeverity::Critical.is_mailed());
    }
}
