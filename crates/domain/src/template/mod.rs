//! WhatsApp message templates: what Meta approved for a WhatsApp Business Account, kept per
//! connection (`connection_id` with its WABA), and the local checks made before Meta sees a
//! new template ([`NewTemplate::parse`]) or before a template message is queued
//! ([`Template::check_send`]).
//!
//! Meta adds statuses (`IN_APPEAL`, `PENDING_DELETION`, `LIMIT_EXCEEDED`, …) and may add
//! categories, so both sets are open: a value not named here is kept as Meta sent it (the
//! `Other` variants), never refused. Only `APPROVED` templates can be sent.
//!
//! Variables are `{{1}}` … `{{n}}` (positional, the default; Meta's named format `{{name}}` is
//! counted when synced, but new templates are positional). The parameter counts a send must
//! match are kept per component: the body's variables, and the header's (its text variables, or
//! one for a media or location header).

mod new;
mod send;

pub use new::*;
pub use send::*;

use crate::{ConnectionId, FieldError, TemplateId, TenantId};
use serde_json::Value;
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// A template of a connection's WABA as last seen at Meta (or as submitted, until Meta
/// answers).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: TemplateId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    /// The WhatsApp Business Account it belongs to (the connection's, when stored).
    pub waba_id: String,
    /// Meta's id of the template (one name in one language).
    pub meta_id: String,
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    pub status: TemplateStatus,
    /// Meta's quality score (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`), once Meta rated it.
    pub quality_score: Option<String>,
    /// Why Meta rejected, paused or disabled it (Meta's `reason`), when it said.
    pub rejection_reason: Option<String>,
    /// Meta's component list, as Meta returns it.
    pub components: Value,
    pub header_params: i64,
    pub body_params: i64,
    /// When it was last read from Meta (list sync or a webhook); `None` until then.
    pub synced_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Meta's category of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateCategory {
    Marketing,
    Utility,
    Authentication,
    /// A category Meta added after this server was written, kept as Meta sent it.
    Other(String),
}

impl TemplateCategory {
    pub fn as_str(&self) -> &str {
        match self {
            TemplateCategory::Marketing => "MARKETING",
            TemplateCategory::Utility => "UTILITY",
            TemplateCategory::Authentication => "AUTHENTICATION",
            TemplateCategory::Other(s) => s,
        }
    }

    /// One of the three categories a new template may have (Meta's creation examples use lower
    /// case, its answers upper case: both are accepted).
    pub fn parse(field: &'static str, raw: &str) -> Result<TemplateCategory, FieldError> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "MARKETING" => Ok(TemplateCategory::Marketing),
            "UTILITY" => Ok(TemplateCategory::Utility),
            "AUTHENTICATION" => Ok(TemplateCategory::Authentication),
            _ => Err(FieldError::new(
                field,
                "must be MARKETING, UTILITY or AUTHENTICATION",
            )),
        }
    }

    /// What Meta (or the database) says, never refused.
    pub fn from_meta(raw: &str) -> TemplateCategory {
        Self::parse("category", raw)
            .unwrap_or_else(|_| TemplateCategory::Other(raw.trim().to_ascii_uppercase()))
    }
}

/// Meta's review status of a template.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    InAppeal,
    /// A status Meta added (e.g. `PENDING_DELETION`, `LIMIT_EXCEEDED`), kept as Meta sent it.
    Other(String),
}

impl TemplateStatus {
    pub const NAMED: [TemplateStatus; 6] = [
        TemplateStatus::Approved,
        TemplateStatus::Pending,
        TemplateStatus::Rejected,
        TemplateStatus::Paused,
        TemplateStatus::Disabled,
        TemplateStatus::InAppeal,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::Rejected => "REJECTED",
            TemplateStatus::Paused => "PAUSED",
            TemplateStatus::Disabled => "DISABLED",
            TemplateStatus::InAppeal => "IN_APPEAL",
            TemplateStatus::Other(s) => s,
        }
    }

    /// Meta's status (any case); an unnamed one is kept upper-cased in `Other`.
    pub fn parse(raw: &str) -> TemplateStatus {
        let up = raw.trim().to_ascii_uppercase();
        TemplateStatus::NAMED
            .into_iter()
            .find(|s| s.as_str() == up)
            .unwrap_or(TemplateStatus::Other(up))
    }

    /// A status that stops the template from being sent and that the tenant's admins must
    /// hear about.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            TemplateStatus::Paused | TemplateStatus::Rejected | TemplateStatus::Disabled
        )
    }
}

/// The distinct variables (`{{…}}`, trimmed) of a text, in order of first appearance.
pub fn variables(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_owned();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

fn kind_of(c: &Value) -> String {
    c.get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// The (header, body) parameter counts of Meta's component list: the distinct variables of
/// each text, and one for a header whose format is media or a location.
pub fn parameter_counts(components: &Value) -> (i64, i64) {
    let (mut header, mut body) = (0, 0);
    for c in components.as_array().into_iter().flatten() {
        let text = c.get("text").and_then(Value::as_str).unwrap_or_default();
        let n = i64::try_from(variables(text).len()).unwrap_or(i64::MAX);
        match kind_of(c).as_str() {
            "BODY" => body = n,
            "HEADER" => {
                let format = c
                    .get("format")
                    .and_then(Value::as_str)
                    .unwrap_or("TEXT")
                    .to_ascii_uppercase();
                header = if format == "TEXT" { n } else { 1 };
            }
            _ => {}
        }
    }
    (header, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(r: Result<NewTemplate, Vec<FieldError>>) -> Vec<&'static str> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    /// An approved template `name` with components `c` (its parameter counts read from them).
    fn approved(name: &str, language: &str, c: Value) -> Template {
        let now = OffsetDateTime::UNIX_EPOCH;
        let (header_params, body_params) = parameter_counts(&c);
        Template {
            id: TemplateId::new(),
            tenant_id: TenantId::new(),
            connection_id: ConnectionId::new(),
            waba_id: "1".into(),
            meta_id: "2".into(),
            name: name.into(),
            language: language.into(),
            category: TemplateCategory::Utility,
            status: TemplateStatus::Approved,
            quality_score: None,
            rejection_reason: None,
            components: c,
            header_params,
            body_params,
            synced_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn body(text: &str, examples: Value) -> Value {
        json!([{"type": "BODY", "text": text, "example": {"body_text": [examples]}}])
    }

    #[test]
    fn a_valid_template_is_parsed_with_its_parameter_counts() {
        let c = json!([
            {"type": "header", "format": "text", "text": "Hi {{1}}", "example": {"header_text": ["Ann"]}},
            {"type": "BODY", "text": "Your code {{1}} expires in {{2}} days.", "example": {"body_text": [["X1", "3"]]}},
            {"type": "FOOTER", "text": "Shop"},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Open", "url": "https://x.test/"},
                                            {"type": "QUICK_REPLY", "text": "Stop"}]}
        ]);
        let t = NewTemplate::parse("order_update_2", "en_US", "marketing", &c).unwrap();
        assert_eq!((t.header_params, t.body_params), (1, 2));
        assert_eq!(t.category, TemplateCategory::Marketing);
        assert_eq!(parameter_counts(&c), (1, 2));
    }

    #[test]
    fn names_languages_and_categories_are_checked() {
        let c = json!([{"type": "BODY", "text": "Hello there"}]);
        for bad in ["", "Order", "order-1", "ordér", &"a".repeat(513)] {
            assert_eq!(
                fields(NewTemplate::parse(bad, "en", "UTILITY", &c)),
                ["name"],
                "{bad}"
            );
        }
        assert!(NewTemplate::parse(&"a".repeat(512), "en", "UTILITY", &c).is_ok());
        for bad in ["", "EN", "english", "en-US", "en_", "e"] {
            assert_eq!(
                fields(NewTemplate::parse("x", bad, "UTILITY", &c)),
                ["language"],
                "{bad}"
            );
        }
        for ok in ["en", "en_US", "pt_BR", "es_419", "fil"] {
            assert!(NewTemplate::parse("x", ok, "utility", &c).is_ok(), "{ok}");
        }
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "SERVICE", &c)),
            ["category"]
        );
        // every failing field at once
        assert_eq!(
            fields(NewTemplate::parse("X", "EN", "nope", &json!({}))),
            ["name", "language", "category", "components"]
        );
    }

    #[test]
    fn variables_are_numbered_from_one_without_gaps() {
        let ok = body("Hi {{1}}, order {{2}} is {{1}}.", json!(["a", "b"]));
        assert!(NewTemplate::parse("x", "en", "UTILITY", &ok).is_ok());
        for text in [
            "Hi {{2}} there",
            "Hi {{1}} and {{3}} there",
            "Hi {{0}} there",
            "Hi {{name}} there",
            "Hi {{01}} x",
        ] {
            let c = body(text, json!(["a", "b"]));
            assert_eq!(
                fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
                ["components.body.text"],
                "{text}"
            );
        }
        let c = body("{{1}} is here", json!(["a"]));
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.body.text"]
        );
        let c = body("here is {{1}}", json!(["a"]));
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.body.text"]
        );
    }

    #[test]
    fn examples_are_required_for_variables() {
        let c = json!([{"type": "BODY", "text": "Hi {{1}} there"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.body.example"]
        );
        let c = body("Hi {{1}} and {{2}} there", json!(["only one"]));
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.body.example"]
        );
        let c = json!([{"type": "HEADER", "format": "TEXT", "text": "For {{1}}"},
                       {"type": "BODY", "text": "Hello"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.header.example"]
        );
        let c = json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hello"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.header.example"]
        );
    }

    #[test]
    fn meta_length_and_shape_limits() {
        let long = |n: usize| "a".repeat(n);
        let c = json!([{"type": "BODY", "text": long(1025)}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.body.text"]
        );
        assert!(NewTemplate::parse(
            "x",
            "en",
            "UTILITY",
            &json!([{"type": "BODY", "text": long(1024)}])
        )
        .is_ok());
        let c = json!([{"type": "HEADER", "text": long(61)}, {"type": "BODY", "text": "b"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.header.text"]
        );
        let c = json!([{"type": "FOOTER", "text": long(61)}, {"type": "BODY", "text": "b"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.footer.text"]
        );
        let c = json!([{"type": "FOOTER", "text": "x {{1}}"}, {"type": "BODY", "text": "b"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.footer.text"]
        );
        let c = json!([{"type": "BODY", "text": "b"},
                       {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": long(26)}]}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.buttons"]
        );
        let eleven: Vec<Value> = (0..11)
            .map(|_| json!({"type": "QUICK_REPLY", "text": "a"}))
            .collect();
        let c = json!([{"type": "BODY", "text": "b"}, {"type": "BUTTONS", "buttons": eleven}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.buttons"]
        );
        let c = json!([{"type": "HEADER", "text": "x {{1}} {{2}}", "example": {"header_text": ["a", "b"]}},
                       {"type": "BODY", "text": "b"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components.header.text"]
        );
        assert_eq!(
            fields(NewTemplate::parse(
                "x",
                "en",
                "UTILITY",
                &json!([{"type": "FOOTER", "text": "f"}])
            )),
            ["components"]
        );
        let c = json!([{"type": "BODY", "text": "a"}, {"type": "BODY", "text": "b"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components"]
        );
        let c = json!([{"type": "CAROUSEL"}, {"type": "BODY", "text": "b"}]);
        assert_eq!(
            fields(NewTemplate::parse("x", "en", "UTILITY", &c)),
            ["components"]
        );
    }

    #[test]
    fn statuses_and_categories_keep_what_meta_adds() {
        assert_eq!(TemplateStatus::parse("approved"), TemplateStatus::Approved);
        assert_eq!(TemplateStatus::parse("IN_APPEAL"), TemplateStatus::InAppeal);
        let other = TemplateStatus::parse("LIMIT_EXCEEDED");
        assert_eq!(other, TemplateStatus::Other("LIMIT_EXCEEDED".into()));
        assert_eq!(other.as_str(), "LIMIT_EXCEEDED");
        for s in TemplateStatus::NAMED {
            assert_eq!(TemplateStatus::parse(s.as_str()), s);
        }
        assert!(
            TemplateStatus::Paused.needs_attention() && !TemplateStatus::Pending.needs_attention()
        );
        assert_eq!(
            TemplateCategory::from_meta("utility"),
            TemplateCategory::Utility
        );
        assert_eq!(TemplateCategory::from_meta("SERVICE").as_str(), "SERVICE");
    }

    #[test]
    fn a_send_must_match_the_approved_template() {
        let c = json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi {{1}}, order {{2}}."}]);
        let mut t = approved("order", "en_US", c);
        let good = json!([{"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]},
                          {"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]);
        assert_eq!(t.check_send(Some(&good)), Ok(()));
        let short =
            json!([{"type": "header", "parameters": [{}]}, {"type": "body", "parameters": [{}]}]);
        assert_eq!(
            t.check_send(Some(&short)),
            Err(SendRefusal::ParameterCount("body", 2, 1))
        );
        let no_header = json!([{"type": "body", "parameters": [{}, {}]}]);
        assert_eq!(
            t.check_send(Some(&no_header)),
            Err(SendRefusal::ParameterCount("header", 1, 0))
        );
        assert_eq!(
            t.check_send(None),
            Err(SendRefusal::ParameterCount("body", 2, 0))
        );
        t.status = TemplateStatus::Paused;
        assert_eq!(
            t.check_send(Some(&good)),
            Err(SendRefusal::NotApproved("PAUSED".into()))
        );
    }

    #[test]
    fn a_url_button_with_a_variable_needs_its_parameter_and_a_static_one_none() {
        let c = json!([
            {"type": "BODY", "text": "Your order shipped."},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
                {"type": "url", "text": "Shop", "url": "https://shop.example/"}]}
        ]);
        let t = approved("shipped", "en", c);
        let track = |index: Value, n: usize| {
            json!([{"type": "button", "sub_type": "url", "index": index,
                    "parameters": vec![json!({"type": "text", "text": "A1"}); n]}])
        };
        assert_eq!(t.check_send(Some(&track(json!("1"), 1))), Ok(()));
        assert_eq!(t.check_send(Some(&track(json!(1), 1))), Ok(()));
        let missing = SendRefusal::ButtonParameterCount {
            index: 1,
            expected: 1,
            given: 0,
        };
        assert_eq!(t.check_send(None), Err(missing.clone()));
        // Addressed to the wrong button: the dynamic one still has none, and the static one
        // is given one it does not take.
        assert_eq!(t.check_send(Some(&track(json!("0"), 1))), Err(missing));
        assert_eq!(
            t.check_send(Some(&track(json!("1"), 2))),
            Err(SendRefusal::ButtonParameterCount {
                index: 1,
                expected: 1,
                given: 2
            })
        );
        let mut both = track(json!("1"), 1);
        both.as_array_mut().unwrap().push(
            json!({"type": "button", "sub_type": "url", "index": "2", "parameters": [{"type": "text", "text": "x"}]}),
        );
        assert_eq!(
            t.check_send(Some(&both)),
            Err(SendRefusal::ButtonParameterCount {
                index: 2,
                expected: 0,
                given: 1
            })
        );
    }
}
