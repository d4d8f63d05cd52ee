//! Pipelines and deals: the values a deal is made of, parsed once at the edge.
//!
//! A pipeline is an ordered list of stages; a stage's [`StageKind`] says whether a deal in it
//! is still open, won or lost (a deal's status is its stage's kind). Amounts are integers in
//! the currency's minor unit (`value_minor`), with an ISO 4217 [`Currency`].

use crate::text::parse_display_text;
use crate::{
    ContactId, DealId, DealStageChangeId, FieldError, PipelineId, StageId, TenantId, UserId,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// One stage of a pipeline, at `position` (0 first).
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub id: StageId,
    pub pipeline_id: PipelineId,
    pub name: PipelineName,
    pub position: i64,
    pub probability: Probability,
    pub kind: StageKind,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A pipeline with its stages in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub id: PipelineId,
    pub tenant_id: TenantId,
    pub name: PipelineName,
    /// The pipeline the tenant was given when it was created.
    pub is_default: bool,
    pub stages: Vec<Stage>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Pipeline {
    pub fn stage(&self, id: StageId) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// The pipeline every new tenant gets: Lead, Qualified, Proposal, Negotiation, Won, Lost.
    pub fn default_for(tenant_id: TenantId, now: OffsetDateTime) -> Pipeline {
        let id = PipelineId::new();
        let stages = [
            ("Lead", 10, StageKind::Open),
            ("Qualified", 25, StageKind::Open),
            ("Proposal", 50, StageKind::Open),
            ("Negotiation", 75, StageKind::Open),
            ("Won", 100, StageKind::Won),
            ("Lost", 0, StageKind::Lost),
        ];
        Pipeline {
            id,
            tenant_id,
            name: PipelineName::from_stored("Sales".into()),
            is_default: true,
            stages: stages
                .into_iter()
                .zip(0..)
                .map(|((name, probability, kind), position)| Stage {
                    id: StageId::new(),
                    pipeline_id: id,
                    name: PipelineName::from_stored(name.into()),
                    position,
                    probability: Probability(probability),
                    kind,
                    created_at: now,
                    updated_at: now,
                })
                .collect(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// A deal: a sale to a contact, in a stage of a pipeline. `status` is its stage's kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Deal {
    pub id: DealId,
    pub tenant_id: TenantId,
    pub title: DealTitle,
    /// In the currency's minor unit (cents); never negative.
    pub value_minor: i64,
    pub currency: Currency,
    pub contact_id: ContactId,
    pub pipeline_id: PipelineId,
    pub stage_id: StageId,
    pub status: StageKind,
    pub owner_id: Option<UserId>,
    /// `YYYY-MM-DD`.
    pub expected_close_date: Option<String>,
    pub lost_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One entry of a deal's stage history: its creation (no `from`) or a move.
#[derive(Debug, Clone, PartialEq)]
pub struct DealStageChange {
    pub id: DealStageChangeId,
    pub deal_id: DealId,
    pub from_stage_id: Option<StageId>,
    pub from_stage_name: Option<String>,
    pub to_stage_id: StageId,
    pub to_stage_name: String,
    pub to_stage_kind: StageKind,
    /// The user who moved it (an API key acts for its creator).
    pub changed_by: Option<UserId>,
    pub api_key_id: Option<Uuid>,
    pub changed_at: OffsetDateTime,
}

/// A calendar date `YYYY-MM-DD` that exists (`2026-02-30` does not).
pub fn parse_date(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let bad = || FieldError::new(field, "must be a date written YYYY-MM-DD");
    let s = raw.trim();
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
        return Err(bad());
    };
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    time::Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
    Ok(s.to_owned())
}

/// Whether a deal in a stage is still being worked (`open`), or closed as `won` or `lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

impl StageKind {
    pub const ALL: [StageKind; 3] = [StageKind::Open, StageKind::Won, StageKind::Lost];

    pub const fn as_str(self) -> &'static str {
        match self {
            StageKind::Open => "open",
            StageKind::Won => "won",
            StageKind::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<StageKind> {
        StageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(StageKind, "stage kind");

/// The active ISO 4217 currency codes (funds and precious metals left out).
pub const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// An ISO 4217 currency code (`EUR`), from [`ISO_4217`]; lower case is accepted and stored
/// upper case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        if ISO_4217.contains(&code.as_str()) {
            Ok(Self(code))
        } else {
            Err(FieldError::new(
                field,
                format!("{raw:?} is not an ISO 4217 currency code (like EUR, USD, BRL)"),
            ))
        }
    }
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A deal's title: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DealTitle(String);

impl DealTitle {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        parse_display_text(field, raw, 200).map(Self)
    }
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a pipeline or a stage: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PipelineName(String);

impl PipelineName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        parse_display_text(field, raw, 100).map(Self)
    }
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The chance (percent, 0 to 100) that a deal in a stage is won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Probability(u8);

impl Probability {
    pub fn parse(field: &'static str, raw: i64) -> Result<Self, FieldError> {
        u8::try_from(raw)
            .ok()
            .filter(|p| *p <= 100)
            .map(Self)
            .ok_or_else(|| FieldError::new(field, "must be an integer from 0 to 100"))
    }
    pub fn from_stored(stored: i64) -> Self {
        Self(u8::try_from(stored.clamp(0, 100)).unwrap_or(0))
    }
    pub const fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(Currency::parse("c", "eur").unwrap().as_str(), "EUR");
        assert_eq!(Currency::parse("c", " BRL ").unwrap().as_str(), "BRL");
        for bad in ["", "EURO", "XXX", "ABC", "€"] {
            assert!(Currency::parse("c", bad).is_err(), "{bad}");
        }
        let mut sorted = ISO_4217.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ISO_4217.len());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("d", "2026-12-31").unwrap(), "2026-12-31");
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026/01/01",
            "",
            "2026-1-01",
        ] {
            assert!(parse_date("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn probabilities_and_kinds() {
        assert_eq!(Probability::parse("p", 0).unwrap().get(), 0);
        assert_eq!(Probability::parse("p", 100).unwrap().get(), 100);
        assert!(Probability::parse("p", 101).is_err());
        assert!(Probability::parse("p", -1).is_err());
        for k in StageKind::ALL {
            assert_eq!(StageKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(StageKind::parse("closed"), None);
    }
}
