//! Broadcast campaigns: one approved template sent to an audience of contacts.
//!
//! ```text
//!   draft ──start──► running ──(no pending recipient left)──► completed
//!     │  └─start (scheduled_at in the future)─► scheduled ──(due)──► running
//!     │                  running | scheduled ──pause──► paused ──resume──► running | scheduled
//!     └── any state but completed / cancelled ──cancel──► cancelled
//! ```
//!
//! The parameters reuse the order notifications' [`TemplateParameter`] (a literal or a contact
//! field with a fallback, parsed by [`crate::integration::parse_parameter`]); campaigns refuse
//! `order_field` (a campaign has no order).

use crate::integration::{parse_parameter, TemplateParameter, MAX_PARAMETERS};
use crate::{Contact, ContactId, FieldError, Tags};
use serde_json::{json, Value};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignStatus {
    Draft,
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 6] = [
        CampaignStatus::Draft,
        CampaignStatus::Scheduled,
        CampaignStatus::Running,
        CampaignStatus::Paused,
        CampaignStatus::Completed,
        CampaignStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignStatus> {
        CampaignStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// `start`: a draft runs now, or waits for `scheduled_at` when that is in the future.
    pub fn start(self, scheduled_in_future: bool) -> Result<CampaignStatus, Refused> {
        match self {
            CampaignStatus::Draft if scheduled_in_future => Ok(CampaignStatus::Scheduled),
            CampaignStatus::Draft => Ok(CampaignStatus::Running),
            other => Err(Refused::new(other, "start", "only a draft can be started")),
        }
    }

    /// `pause`: a running or scheduled campaign stops dispatching.
    pub fn pause(self) -> Result<CampaignStatus, Refused> {
        match self {
            CampaignStatus::Running | CampaignStatus::Scheduled => Ok(CampaignStatus::Paused),
            other => Err(Refused::new(
                other,
                "pause",
                "only a running or scheduled campaign can be paused",
            )),
        }
    }

    /// `resume`: a paused campaign runs again, or waits when its `scheduled_at` is still ahead.
    pub fn resume(self, scheduled_in_future: bool) -> Result<CampaignStatus, Refused> {
        match self {
            CampaignStatus::Paused if scheduled_in_future => Ok(CampaignStatus::Scheduled),
            CampaignStatus::Paused => Ok(CampaignStatus::Running),
            other => Err(Refused::new(
                other,
                "resume",
                "only a paused campaign can be resumed",
            )),
        }
    }

    /// `cancel`: any campaign not yet finished.
    pub fn cancel(self) -> Result<CampaignStatus, Refused> {
        match self {
            CampaignStatus::Completed | CampaignStatus::Cancelled => Err(Refused::new(
                self,
                "cancel",
                "a completed or cancelled campaign cannot be cancelled",
            )),
            _ => Ok(CampaignStatus::Cancelled),
        }
    }

    /// Whether the campaign may still be edited (its audience is not materialised yet).
    pub fn editable(self) -> bool {
        matches!(self, CampaignStatus::Draft | CampaignStatus::Scheduled)
    }

    /// Whether the campaign may be deleted (not while it is sending).
    pub fn deletable(self) -> bool {
        self != CampaignStatus::Running
    }
}

/// A refused state change: the current status and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: CampaignStatus,
    pub action: &'static str,
    pub message: String,
}

impl Refused {
    fn new(status: CampaignStatus, action: &'static str, why: &str) -> Self {
        Refused {
            status,
            action,
            message: format!("cannot {action} a {} campaign: {why}", status.as_str()),
        }
    }
}

/// Who a campaign targets. A contact is in the audience when it has one of `tags` or is one of
/// `contact_ids` (with neither given: every contact of the tenant), and has none of
/// `exclude_tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub tags: Vec<String>,
    pub contact_ids: Vec<ContactId>,
    pub exclude_tags: Vec<String>,
}

/// At most this many `contact_ids` in an audience.
pub const MAX_CONTACT_IDS: usize = 10_000;

impl Audience {
    /// Parses `{tags?, contact_ids?, exclude_tags?}`; every problem is a field error.
    pub fn parse(raw: &Value) -> Result<Audience, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(o) = raw.as_object() else {
            return Err(vec![FieldError::new(
                "audience",
                "must be an object with tags, contact_ids and/or exclude_tags",
            )]);
        };
        if let Some(k) = o
            .keys()
            .find(|k| !["tags", "contact_ids", "exclude_tags"].contains(&k.as_str()))
        {
            errors.push(FieldError::new("audience", format!("unknown field {k:?}")));
        }
        let strings = |field: &'static str, errors: &mut Vec<FieldError>| -> Vec<String> {
            match o.get(field.trim_start_matches("audience.")) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(_) => {
                    errors.push(FieldError::new(field, "must be an array of strings"));
                    Vec::new()
                }
            }
        };
        let tags_of = |field: &'static str, errors: &mut Vec<FieldError>| {
            let raw = strings(field, errors);
            match Tags::parse(field, &raw) {
                Ok(t) => t.as_slice().to_vec(),
                Err(e) => {
                    errors.push(e);
                    Vec::new()
                }
            }
        };
        let tags = tags_of("audience.tags", &mut errors);
        let exclude_tags = tags_of("audience.exclude_tags", &mut errors);
        let mut contact_ids: Vec<ContactId> = Vec::new();
        let ids = strings("audience.contact_ids", &mut errors);
        if ids.len() > MAX_CONTACT_IDS {
            errors.push(FieldError::new(
                "audience.contact_ids",
                format!("at most {MAX_CONTACT_IDS} contact ids"),
            ));
        } else {
            for id in ids {
                match uuid::Uuid::parse_str(&id) {
                    Ok(u) => {
                        let id = ContactId::from(u);
                        if !contact_ids.contains(&id) {
                            contact_ids.push(id);
                        }
                    }
                    Err(_) => {
                        errors.push(FieldError::new(
                            "audience.contact_ids",
                            format!("{id:?} is not a contact id (a UUID)"),
                        ));
                        break;
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Audience {
                tags,
                contact_ids,
                exclude_tags,
            })
        } else {
            Err(errors)
        }
    }

    /// Whether the audience is every contact (no tag and no id named).
    pub fn everyone(&self) -> bool {
        self.tags.is_empty() && self.contact_ids.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "tags": self.tags,
            "contact_ids": self.contact_ids,
            "exclude_tags": self.exclude_tags,
        })
    }

    /// Read back from the database (written by [`Audience::parse`]); a value that no longer
    /// parses is the empty audience rather than a failed read.
    pub fn from_stored(stored: &Value) -> Audience {
        Audience::parse(stored).unwrap_or_default()
    }
}

/// Parses a campaign's parameters: an array of `{type: literal, value}` or `{type:
/// contact_field, field, fallback?}`, one per template variable, in order.
pub fn parse_parameters(raw: &Value) -> Result<Vec<TemplateParameter>, Vec<FieldError>> {
    let Some(list) = raw.as_array() else {
        return Err(vec![FieldError::new("parameters", "must be an array")]);
    };
    if list.len() > MAX_PARAMETERS {
        return Err(vec![FieldError::new(
            "parameters",
            format!("at most {MAX_PARAMETERS} parameters"),
        )]);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in list.iter().enumerate() {
        if p.get("type").and_then(Value::as_str) == Some("order_field") {
            errors.push(FieldError::new(
                "parameters",
                format!(
                    "parameter {}: a campaign has no order; use literal or contact_field",
                    i + 1
                ),
            ));
            continue;
        }
        match parse_parameter(p) {
            Ok(TemplateParameter::OrderField(_)) => {}
            Ok(p) => out.push(p),
            Err(m) => errors.push(FieldError::new(
                "parameters",
                format!("parameter {}: {m}", i + 1),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parameters read back from the database (written by [`parse_parameters`]).
pub fn parameters_from_stored(stored: &Value) -> Vec<TemplateParameter> {
    parse_parameters(stored).unwrap_or_default()
}

/// The parameters' values for `contact`, or `None` when a contact field has no value and no
/// fallback (the recipient is skipped, `missing_parameter`).
pub fn parameter_values(params: &[TemplateParameter], contact: &Contact) -> Option<Vec<String>> {
    params
        .iter()
        .map(|p| match p {
            TemplateParameter::Literal(v) => Some(v.clone()),
            TemplateParameter::ContactField { field, fallback } => {
                field.value_of(contact).or_else(|| fallback.clone())
            }
            TemplateParameter::OrderField(_) => None,
        })
        .collect()
}

/// Whether a campaign whose `scheduled_at` is `at` waits at `now`.
pub fn in_future(at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    at.is_some_and(|at| at > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignStatus as S;

    #[test]
    fn the_state_machine_allows_only_its_transitions() {
        assert_eq!(S::Draft.start(false), Ok(S::Running));
        assert_eq!(S::Draft.start(true), Ok(S::Scheduled));
        for s in [
            S::Scheduled,
            S::Running,
            S::Paused,
            S::Completed,
            S::Cancelled,
        ] {
            assert!(s.start(false).is_err(), "{s:?}");
        }
        assert_eq!(S::Running.pause(), Ok(S::Paused));
        assert_eq!(S::Scheduled.pause(), Ok(S::Paused));
        for s in [S::Draft, S::Paused, S::Completed, S::Cancelled] {
            assert!(s.pause().is_err(), "{s:?}");
        }
        assert_eq!(S::Paused.resume(false), Ok(S::Running));
        assert_eq!(S::Paused.resume(true), Ok(S::Scheduled));
        assert!(S::Running.resume(false).is_err());
        for s in [S::Draft, S::Scheduled, S::Running, S::Paused] {
            assert_eq!(s.cancel(), Ok(S::Cancelled));
        }
        for s in [S::Completed, S::Cancelled] {
            assert!(s.cancel().is_err());
        }
        assert!(!S::Running.deletable());
        assert!(S::Paused.deletable());
        assert_eq!(
            S::Completed.pause().unwrap_err().message,
            "cannot pause a completed campaign: only a running or scheduled campaign can be paused"
        );
    }

    #[test]
    fn audiences_parse_and_refuse_bad_fields() {
        let a = Audience::parse(&json!({"tags": ["VIP", "vip"], "exclude_tags": ["x"]})).unwrap();
        assert_eq!(a.tags, ["vip"]);
        assert_eq!(a.exclude_tags, ["x"]);
        assert!(!a.everyone());
        assert!(Audience::parse(&json!({})).unwrap().everyone());
        let bad =
            Audience::parse(&json!({"contact_ids": ["nope"], "tags": "vip", "x": 1})).unwrap_err();
        let fields: Vec<_> = bad.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["audience", "audience.tags", "audience.contact_ids"]
        );
        let many: Vec<String> = (0..=MAX_CONTACT_IDS)
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        assert!(Audience::parse(&json!({ "contact_ids": many })).is_err());
        let a = Audience::parse(&a.to_json()).unwrap();
        assert_eq!(a.tags, ["vip"]);
    }

    #[test]
    fn parameters_refuse_order_fields() {
        let ok = parse_parameters(&json!([
            {"type": "literal", "value": "Hi"},
            {"type": "contact_field", "field": "name", "fallback": "friend"}
        ]))
        .unwrap();
        assert_eq!(ok.len(), 2);
        let e = parse_parameters(&json!([{"type": "order_field", "field": "number"}])).unwrap_err();
        assert!(e[0].message.contains("no order"), "{:?}", e);
        assert!(parse_parameters(&json!({})).is_err());
        assert!(parse_parameters(&json!([{"type": "literal", "value": ""}])).is_err());
    }
}
