//! A contact's marketing consent and the only rules that change it.
//!
//! Consent is the current state, never a history (the audit log keeps that):
//!
//! ```text
//!              API true / opt-in keyword (lifts an older opt-out only)
//!   Unknown ───────────────────────────────► OptedIn{at}
//!      │  ▲                                    │
//!      │  └── (never goes back to Unknown)     │ API false / opt-out keyword (not older than `at`)
//!      ▼                                        ▼
//!   OptedOut{at, source} ◄─────────────────────┘
//! ```
//!
//! Two paths change it: an explicit choice through the API ([`Consent::choose`]) and a keyword
//! in an inbound message ([`Consent::apply_keyword`]). Both live here so the SQL only stores
//! the result. Keywords are applied as of the message's time, so a late redelivery of an old
//! message cannot undo a newer choice.

use serde::Serialize;
use time::OffsetDateTime;

/// Who opted a contact out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptOutSource {
    /// Someone set `marketing_opt_in: false` through the API.
    Api,
    /// The contact sent an opt-out keyword (`STOP`, …).
    Keyword,
    /// WhatsApp refused a marketing template because the contact stopped marketing messages
    /// from this business (Meta's error 131050).
    Whatsapp,
}

impl OptOutSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            OptOutSource::Api => "api",
            OptOutSource::Keyword => "keyword",
            OptOutSource::Whatsapp => "whatsapp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(OptOutSource::Api),
            "keyword" => Some(OptOutSource::Keyword),
            "whatsapp" => Some(OptOutSource::Whatsapp),
            _ => None,
        }
    }
}

/// A consent change asked for by an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordConsent {
    /// Opt the contact out (unless already out, or opted in after the keyword's time).
    OptOut,
    /// Lift an opt-out made before the keyword's time (a contact that never opted out is left
    /// alone: a keyword does not create consent).
    OptIn,
}

/// A contact's marketing consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consent {
    /// Never asked.
    #[default]
    Unknown,
    OptedIn {
        at: OffsetDateTime,
    },
    OptedOut {
        at: OffsetDateTime,
        source: OptOutSource,
    },
}

impl Consent {
    /// An explicit choice made through the API, at `now`. Choosing what is already the state
    /// keeps it as it is (and so its timestamp and, for an opt-out, its source).
    #[must_use]
    pub fn choose(self, opt_in: bool, now: OffsetDateTime) -> Consent {
        match (opt_in, self) {
            (true, Consent::OptedIn { .. }) | (false, Consent::OptedOut { .. }) => self,
            (true, _) => Consent::OptedIn { at: now },
            (false, _) => Consent::OptedOut {
                at: now,
                source: OptOutSource::Api,
            },
        }
    }

    /// A keyword sent at `at`; `None` when it changes nothing. An opt-out keyword opts out
    /// unless already opted out or opted in after `at`; an opt-in keyword lifts only an opt-out
    /// made at or before `at`.
    #[must_use]
    pub fn apply_keyword(self, keyword: KeywordConsent, at: OffsetDateTime) -> Option<Consent> {
        match (keyword, self) {
            (KeywordConsent::OptOut, Consent::Unknown) => Some(Consent::OptedOut {
                at,
                source: OptOutSource::Keyword,
            }),
            (KeywordConsent::OptOut, Consent::OptedIn { at: since }) if since <= at => {
                Some(Consent::OptedOut {
                    at,
                    source: OptOutSource::Keyword,
                })
            }
            (KeywordConsent::OptIn, Consent::OptedOut { at: since, .. }) if since <= at => {
                Some(Consent::OptedIn { at })
            }
            _ => None,
        }
    }

    /// WhatsApp reports, at `at`, that the contact stopped marketing messages (131050): opted
    /// out unless already out or opted in after `at`. `None` when it changes nothing.
    #[must_use]
    pub fn apply_whatsapp_stop(self, at: OffsetDateTime) -> Option<Consent> {
        match self {
            Consent::OptedOut { .. } => None,
            Consent::OptedIn { at: since } if since > at => None,
            _ => Some(Consent::OptedOut {
                at,
                source: OptOutSource::Whatsapp,
            }),
        }
    }

    /// The contact agreed to marketing messages.
    pub fn marketing_opt_in(&self) -> bool {
        matches!(self, Consent::OptedIn { .. })
    }

    /// The contact refused marketing messages.
    pub fn is_opted_out(&self) -> bool {
        matches!(self, Consent::OptedOut { .. })
    }

    pub fn opted_in_at(&self) -> Option<OffsetDateTime> {
        match self {
            Consent::OptedIn { at } => Some(*at),
            _ => None,
        }
    }

    pub fn opted_out_at(&self) -> Option<OffsetDateTime> {
        match self {
            Consent::OptedOut { at, .. } => Some(*at),
            _ => None,
        }
    }

    pub fn opt_out_source(&self) -> Option<OptOutSource> {
        match self {
            Consent::OptedOut { source, .. } => Some(*source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(secs)
    }

    const fn out(at: OffsetDateTime, source: OptOutSource) -> Consent {
        Consent::OptedOut { at, source }
    }

    #[test]
    fn api_choice_sets_the_state_at_now() {
        assert_eq!(
            Consent::Unknown.choose(true, t(5)),
            Consent::OptedIn { at: t(5) }
        );
        assert_eq!(
            Consent::Unknown.choose(false, t(5)),
            out(t(5), OptOutSource::Api)
        );
        assert_eq!(
            Consent::OptedIn { at: t(1) }.choose(false, t(5)),
            out(t(5), OptOutSource::Api)
        );
        assert_eq!(
            out(t(1), OptOutSource::Keyword).choose(true, t(5)),
            Consent::OptedIn { at: t(5) }
        );
    }

    #[test]
    fn api_choice_of_the_current_state_keeps_it() {
        let inn = Consent::OptedIn { at: t(1) };
        assert_eq!(inn.choose(true, t(5)), inn);
        // An opt-out by keyword stays one (source and time) when the API repeats it.
        let by_keyword = out(t(1), OptOutSource::Keyword);
        assert_eq!(by_keyword.choose(false, t(5)), by_keyword);
    }

    #[test]
    fn opt_out_keyword() {
        let k = KeywordConsent::OptOut;
        assert_eq!(
            Consent::Unknown.apply_keyword(k, t(5)),
            Some(out(t(5), OptOutSource::Keyword))
        );
        // Opted in before (or at) the keyword: out.
        for since in [1, 5] {
            assert_eq!(
                Consent::OptedIn { at: t(since) }.apply_keyword(k, t(5)),
                Some(out(t(5), OptOutSource::Keyword))
            );
        }
        // Opted in after the keyword was sent (a late redelivery): unchanged.
        assert_eq!(Consent::OptedIn { at: t(9) }.apply_keyword(k, t(5)), None);
        // Already out, whatever the source or time: unchanged.
        assert_eq!(out(t(1), OptOutSource::Api).apply_keyword(k, t(5)), None);
        assert_eq!(
            out(t(9), OptOutSource::Keyword).apply_keyword(k, t(5)),
            None
        );
    }

    #[test]
    fn opt_in_keyword() {
        let k = KeywordConsent::OptIn;
        // Never creates consent.
        assert_eq!(Consent::Unknown.apply_keyword(k, t(5)), None);
        assert_eq!(Consent::OptedIn { at: t(1) }.apply_keyword(k, t(5)), None);
        // Lifts an opt-out made before (or at) the keyword, of either source.
        for since in [1, 5] {
            for source in [OptOutSource::Api, OptOutSource::Keyword] {
                assert_eq!(
                    out(t(since), source).apply_keyword(k, t(5)),
                    Some(Consent::OptedIn { at: t(5) })
                );
            }
        }
        // An opt-out newer than the keyword stands.
        assert_eq!(
            out(t(9), OptOutSource::Keyword).apply_keyword(k, t(5)),
            None
        );
    }

    #[test]
    fn accessors_follow_the_state() {
        let c = out(t(3), OptOutSource::Keyword);
        assert!(c.is_opted_out() && !c.marketing_opt_in());
        assert_eq!(c.opted_out_at(), Some(t(3)));
        assert_eq!(c.opted_in_at(), None);
        assert_eq!(
            c.opt_out_source().map(OptOutSource::as_str),
            Some("keyword")
        );
        let c = Consent::OptedIn { at: t(2) };
        assert!(c.marketing_opt_in() && !c.is_opted_out());
        assert_eq!(c.opted_in_at(), Some(t(2)));
        assert_eq!(Consent::Unknown.opted_out_at(), None);
        assert_eq!(OptOutSource::parse("api"), Some(OptOutSource::Api));
        assert_eq!(OptOutSource::parse("sms"), None);
    }
}
