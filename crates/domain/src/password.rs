//! Password policy: what a tenant accepts as a password.
//!
//! Two presets. `modern` follows NIST SP 800-63B: length (12–128), a strength estimate (zxcvbn
//! score ≥ 3, fed the user's email, name and tenant name so "acme-ana-2024" scores low), a
//! common-password blocklist, and no reuse of the last five. It sets no composition rules and no
//! expiry, which NIST advises against. `compliance` adds both for customers whose auditors ask for
//! them (PCI DSS style): upper, lower, digit, symbol, and a 90-day maximum age.
//!
//! Checking history needs password hashes, so it lives in `core`; the rule and its message are here.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordPolicyPreset {
    Modern,
    Compliance,
}

impl PasswordPolicyPreset {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Modern => "modern",
            Self::Compliance => "compliance",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "modern" => Some(Self::Modern),
            "compliance" => Some(Self::Compliance),
            _ => None,
        }
    }
    pub const fn policy(self) -> PasswordPolicy {
        match self {
            Self::Modern => PasswordPolicy {
                min_length: 12,
                max_length: 128,
                min_strength: 3,
                history: 5,
                require_composition: false,
                max_age_days: None,
            },
            Self::Compliance => PasswordPolicy {
                min_length: 12,
                max_length: 128,
                min_strength: 3,
                history: 5,
                require_composition: true,
                max_age_days: Some(90),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// zxcvbn score, 0–4.
    pub min_strength: u8,
    /// How many previous passwords may not be reused.
    pub history: usize,
    pub require_composition: bool,
    pub max_age_days: Option<i64>,
}

/// Words that say who the password belongs to; a password built from them is weak.
#[derive(Debug, Clone, Default)]
pub struct PasswordContext<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub tenant_name: &'a str,
}

/// One failed rule: a stable code and a sentence for the person choosing the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordViolation {
    pub rule: &'static str,
    pub message: String,
}

impl PasswordViolation {
    fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }

    /// The password appears in a known data breach (the breached-password check in `core`).
    /// The message names the rule, so a client can recognise it among the others.
    pub fn breached() -> Self {
        Self::new(
            "breached",
            "is a breached password: it appears in known data breaches, choose another",
        )
    }

    pub fn reused(history: usize) -> Self {
        Self::new(
            "reused",
            format!("must not be one of your last {history} passwords"),
        )
    }
}

fn blocklist() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .collect()
    })
}

/// True when the password, or its stem without trailing digits and symbols, is a known common one.
fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    let stem = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    let list = blocklist();
    list.contains(lower.as_str()) || (stem.chars().count() >= 4 && list.contains(stem))
}

impl PasswordPolicy {
    /// Every rule the password breaks (empty when it is acceptable), history aside.
    pub fn check(&self, password: &str, ctx: &PasswordContext<'_>) -> Vec<PasswordViolation> {
        let mut out = Vec::new();
        let len = password.chars().count();
        if len < self.min_length {
            out.push(PasswordViolation::new(
                "min_length",
                format!("must be at least {} characters", self.min_length),
            ));
        }
        if len > self.max_length {
            out.push(PasswordViolation::new(
                "max_length",
                format!("must be at most {} characters", self.max_length),
            ));
            // Do not feed an oversized input to the estimator.
            return out;
        }
        if is_common(password) {
            out.push(PasswordViolation::new(
                "common",
                "is a commonly used password",
            ));
        }
        if self.require_composition {
            type Rule = (&'static str, fn(char) -> bool, &'static str);
            let rules: [Rule; 4] = [
                (
                    "uppercase",
                    char::is_uppercase,
                    "must contain an uppercase letter",
                ),
                (
                    "lowercase",
                    char::is_lowercase,
                    "must contain a lowercase letter",
                ),
                ("digit", |c| c.is_ascii_digit(), "must contain a digit"),
                (
                    "symbol",
                    |c| !c.is_alphanumeric() && !c.is_whitespace(),
                    "must contain a symbol",
                ),
            ];
            for (rule, pred, msg) in rules {
                if !password.chars().any(pred) {
                    out.push(PasswordViolation::new(rule, msg));
                }
            }
        }
        if !password.is_empty() {
            let mut inputs: Vec<&str> = vec![ctx.email, ctx.name, ctx.tenant_name];
            if let Some((local, domain)) = ctx.email.split_once('@') {
                inputs.push(local);
                inputs.push(domain);
            }
            inputs.extend(ctx.name.split_whitespace());
            inputs.extend(ctx.tenant_name.split_whitespace());
            // zxcvbn matches the lower-cased password against the inputs as given.
            let lowered: Vec<String> = inputs
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_lowercase())
                .collect();
            let inputs: Vec<&str> = lowered.iter().map(String::as_str).collect();
            let estimate = zxcvbn::zxcvbn(password, &inputs);
            let score = u8::from(estimate.score());
            if score < self.min_strength {
                let hint = estimate
                    .feedback()
                    .and_then(|f| f.warning().map(|w| format!(" ({w})")))
                    .unwrap_or_default();
                out.push(PasswordViolation::new(
                    "strength",
                    format!("is too easy to guess{hint}; use a longer phrase of unrelated words"),
                ));
            }
        }
        out
    }

    /// Whether a password last changed at `changed_at` must now be changed.
    pub fn is_expired(&self, changed_at: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
        self.max_age_days
            .is_some_and(|days| now - changed_at > time::Duration::days(days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PasswordContext<'static> {
        PasswordContext {
            email: "ana@acme.example",
            name: "Ana Lima",
            tenant_name: "Acme Widgets",
        }
    }

    fn rules(p: &PasswordPolicy, pw: &str) -> Vec<&'static str> {
        p.check(pw, &ctx()).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_long_random_phrase_passes_modern() {
        let p = PasswordPolicyPreset::Modern.policy();
        assert!(rules(&p, "correct-orbit-lantern-quietly").is_empty());
    }

    #[test]
    fn short_common_and_weak_passwords_report_every_rule() {
        let p = PasswordPolicyPreset::Modern.policy();
        let r = rules(&p, "password");
        assert!(
            r.contains(&"min_length") && r.contains(&"common") && r.contains(&"strength"),
            "{r:?}"
        );
        assert!(rules(&p, "Password2024!!").contains(&"common"));
        assert_eq!(rules(&p, &"ab1!".repeat(40)), vec!["max_length"]);
    }

    #[test]
    fn personal_context_weakens_a_password() {
        let p = PasswordPolicyPreset::Modern.policy();
        let pw = "Ana@Acme.example1";
        assert!(!p
            .check(pw, &PasswordContext::default())
            .iter()
            .any(|v| v.rule == "strength"));
        assert!(
            rules(&p, pw).contains(&"strength"),
            "the same password, built from who the user is"
        );
    }

    #[test]
    fn compliance_adds_composition_and_expiry() {
        let p = PasswordPolicyPreset::Compliance.policy();
        let r = rules(&p, "correct-orbit-lantern-quietly");
        assert!(r.contains(&"uppercase") && r.contains(&"digit"), "{r:?}");
        assert!(!r.contains(&"lowercase") && !r.contains(&"symbol"), "{r:?}");
        assert!(rules(&p, "Correct-orbit-lantern-7").is_empty());
        let now = time::OffsetDateTime::now_utc();
        assert!(p.is_expired(now - time::Duration::days(91), now));
        assert!(!p.is_expired(now - time::Duration::days(89), now));
        assert!(!PasswordPolicyPreset::Modern
            .policy()
            .is_expired(now - time::Duration::days(900), now));
    }
}
