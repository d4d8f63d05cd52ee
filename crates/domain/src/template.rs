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

/// Meta's limits on a template's parts.
pub const NAME_MAX: usize = 512;
pub const HEADER_TEXT_MAX: usize = 60;
pub const BODY_TEXT_MAX: usize = 1024;
pub const FOOTER_TEXT_MAX: usize = 60;
pub const BUTTON_TEXT_MAX: usize = 25;
pub const BUTTONS_MAX: usize = 10;
pub const URL_MAX: usize = 2000;

/// A template name: `^[a-z0-9_]{1,512}$`.
pub fn parse_name(field: &'static str, raw: &str) -> Result<String, FieldError> {
    if raw.is_empty()
        || raw.len() > NAME_MAX
        || !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(FieldError::new(
            field,
            "must be 1 to 512 lowercase letters, digits and underscores",
        ));
    }
    Ok(raw.to_owned())
}

/// A language code as Meta writes them: `en`, `en_US`, `pt_BR`, `zh_HK`, `es_419`…
pub fn parse_language(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let bad = || FieldError::new(field, "must be a language code such as en or en_US");
    let (lang, region) = match raw.split_once('_') {
        Some((l, r)) => (l, Some(r)),
        None => (raw, None),
    };
    if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(bad());
    }
    if let Some(r) = region {
        if !(2..=4).contains(&r.len()) || !r.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
    }
    Ok(raw.to_owned())
}

/// A new template as submitted, checked against Meta's rules before Meta sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    pub name: String,
    pub language: String,
    pub category: TemplateCategory,
    /// The components as given (Meta accepts either case for `type`/`format`).
    pub components: Value,
    pub header_params: i64,
    pub body_params: i64,
}

/// Checks one text with positional variables: `{{1}}` … `{{n}}` each used, numbered from 1
/// without gaps. Returns n, or `None` (the error noted) when the numbering is wrong.
fn positional(field: &'static str, text: &str, errors: &mut Vec<FieldError>) -> Option<usize> {
    let vars = variables(text);
    let mut numbers = BTreeSet::new();
    for v in &vars {
        match v.parse::<usize>() {
            Ok(n) if n >= 1 && !v.starts_with('0') => {
                numbers.insert(n);
            }
            _ => {
                errors.push(FieldError::new(
                    field,
                    format!("{{{{{v}}}}} is not a variable: variables are {{{{1}}}}, {{{{2}}}}, …"),
                ));
                return None;
            }
        }
    }
    let n = numbers.len();
    if numbers.iter().copied().ne(1..=n) {
        errors.push(FieldError::new(
            field,
            format!(
                "variables must be numbered from {{{{1}}}} without gaps; found {}",
                numbers
                    .iter()
                    .map(|n| format!("{{{{{n}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        return None;
    }
    Some(n)
}

fn text_of<'a>(
    c: &'a serde_json::Map<String, Value>,
    field: &'static str,
    max: usize,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match c.get("text") {
        None | Some(Value::Null) if !required => None,
        Some(Value::String(t)) if !t.trim().is_empty() => {
            if t.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
            Some(t)
        }
        _ => {
            errors.push(FieldError::new(
                field,
                format!("is required: 1 to {max} characters"),
            ));
            None
        }
    }
}

/// `example.<key>` as a list of strings (`header_text: ["…"]`) or the first list of a list
/// (`body_text: [["…", "…"]]`).
fn example_values(c: &serde_json::Map<String, Value>, key: &str, nested: bool) -> Option<usize> {
    let v = c.get("example")?.get(key)?;
    let list = if nested {
        v.as_array()?.first()?.as_array()?
    } else {
        v.as_array()?
    };
    list.iter()
        .all(|x| x.as_str().is_some_and(|s| !s.trim().is_empty()))
        .then_some(list.len())
}

impl NewTemplate {
    /// Checks a new template: the name, the language, the category, and the components
    /// (exactly one BODY, at most one HEADER, FOOTER and BUTTONS; Meta's length limits;
    /// variables `{{1}}`…`{{n}}` without gaps, not at the start or end of the body, none in the
    /// footer; an example value for every variable). Every failing field is reported.
    pub fn parse(
        name: &str,
        language: &str,
        category: &str,
        components: &Value,
    ) -> Result<NewTemplate, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = parse_name("name", name).map_err(|e| errors.push(e)).ok();
        let language = parse_language("language", language)
            .map_err(|e| errors.push(e))
            .ok();
        let category = TemplateCategory::parse("category", category)
            .map_err(|e| errors.push(e))
            .ok();
        let (header_params, body_params) =
            check_components(components, category.as_ref(), &mut errors);
        match (name, language, category) {
            (Some(name), Some(language), Some(category)) if errors.is_empty() => Ok(NewTemplate {
                name,
                language,
                category,
                components: components.clone(),
                header_params,
                body_params,
            }),
            _ => Err(errors),
        }
    }
}

fn check_components(
    components: &Value,
    category: Option<&TemplateCategory>,
    errors: &mut Vec<FieldError>,
) -> (i64, i64) {
    let Some(list) = components.as_array() else {
        errors.push(FieldError::new(
            "components",
            "must be a list of components (HEADER, BODY, FOOTER, BUTTONS)",
        ));
        return (0, 0);
    };
    let (mut header_params, mut body_params) = (0usize, 0usize);
    let mut seen: Vec<String> = Vec::new();
    for c in list {
        let Some(c) = c.as_object() else {
            errors.push(FieldError::new(
                "components",
                "each component must be an object",
            ));
            continue;
        };
        let kind = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        if seen.contains(&kind) {
            errors.push(FieldError::new(
                "components",
                format!("at most one {kind} component"),
            ));
            continue;
        }
        seen.push(kind.clone());
        match kind.as_str() {
            "HEADER" => header_params = check_header(c, errors),
            "BODY" => body_params = check_body(c, category, errors),
            "FOOTER" => {
                if let Some(t) = text_of(c, "components.footer.text", FOOTER_TEXT_MAX, true, errors)
                {
                    if !variables(t).is_empty() {
                        errors.push(FieldError::new(
                            "components.footer.text",
                            "must not contain variables",
                        ));
                    }
                }
            }
            "BUTTONS" => check_buttons(c, errors),
            _ => errors.push(FieldError::new(
                "components",
                "each component's type must be HEADER, BODY, FOOTER or BUTTONS",
            )),
        }
    }
    if !seen.iter().any(|k| k == "BODY") {
        errors.push(FieldError::new(
            "components",
            "a BODY component is required",
        ));
    }
    let n = |x: usize| i64::try_from(x).unwrap_or(i64::MAX);
    (n(header_params), n(body_params))
}

fn check_header(c: &serde_json::Map<String, Value>, errors: &mut Vec<FieldError>) -> usize {
    let format = c
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("TEXT")
        .to_ascii_uppercase();
    match format.as_str() {
        "TEXT" => {
            let Some(t) = text_of(c, "components.header.text", HEADER_TEXT_MAX, true, errors)
            else {
                return 0;
            };
            let Some(n) = positional("components.header.text", t, errors) else {
                return 0;
            };
            if n > 1 {
                errors.push(FieldError::new(
                    "components.header.text",
                    "may hold at most one variable ({{1}})",
                ));
            }
            if n > 0 && example_values(c, "header_text", false) != Some(n) {
                errors.push(FieldError::new(
                    "components.header.example",
                    format!("needs example.header_text with {n} example value(s)"),
                ));
            }
            n
        }
        "IMAGE" | "VIDEO" | "DOCUMENT" | "GIF" => {
            let handle = c
                .get("example")
                .and_then(|e| e.get("header_handle"))
                .and_then(Value::as_array)
                .is_some_and(|h| h.iter().any(|x| x.as_str().is_some_and(|s| !s.is_empty())));
            if !handle {
                errors.push(FieldError::new(
                    "components.header.example",
                    "a media header needs example.header_handle (an uploaded sample's handle)",
                ));
            }
            1
        }
        "LOCATION" => 1,
        _ => {
            errors.push(FieldError::new(
                "components.header.format",
                "must be TEXT, IMAGE, VIDEO, GIF, DOCUMENT or LOCATION",
            ));
            0
        }
    }
}

fn check_body(
    c: &serde_json::Map<String, Value>,
    category: Option<&TemplateCategory>,
    errors: &mut Vec<FieldError>,
) -> usize {
    // Authentication templates' body is Meta's fixed text (no `text` given).
    let required = category != Some(&TemplateCategory::Authentication);
    let Some(t) = text_of(c, "components.body.text", BODY_TEXT_MAX, required, errors) else {
        return 0;
    };
    let Some(n) = positional("components.body.text", t, errors) else {
        return 0;
    };
    if n > 0 {
        let trimmed = t.trim();
        if trimmed.starts_with("{{") || trimmed.ends_with("}}") {
            errors.push(FieldError::new(
                "components.body.text",
                "must not start or end with a variable",
            ));
        }
        if example_values(c, "body_text", true) != Some(n) {
            errors.push(FieldError::new(
                "components.body.example",
                format!("needs example.body_text with one list of {n} example value(s)"),
            ));
        }
    }
    n
}

fn check_buttons(c: &serde_json::Map<String, Value>, errors: &mut Vec<FieldError>) {
    const FIELD: &str = "components.buttons";
    let Some(buttons) = c.get("buttons").and_then(Value::as_array) else {
        errors.push(FieldError::new(FIELD, "must be a list of buttons"));
        return;
    };
    if buttons.is_empty() || buttons.len() > BUTTONS_MAX {
        errors.push(FieldError::new(
            FIELD,
            format!("must hold 1 to {BUTTONS_MAX} buttons"),
        ));
    }
    for b in buttons {
        let kind = b
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        const KINDS: [&str; 9] = [
            "QUICK_REPLY",
            "URL",
            "PHONE_NUMBER",
            "COPY_CODE",
            "OTP",
            "FLOW",
            "CATALOG",
            "MPM",
            "VOICE_CALL",
        ];
        if !KINDS.contains(&kind.as_str()) {
            errors.push(FieldError::new(
                FIELD,
                "each button's type must be QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, OTP, FLOW, CATALOG, MPM or VOICE_CALL",
            ));
            continue;
        }
        let text = b.get("text").and_then(Value::as_str).unwrap_or_default();
        if !matches!(kind.as_str(), "OTP" | "COPY_CODE")
            && (text.trim().is_empty() || text.chars().count() > BUTTON_TEXT_MAX)
        {
            errors.push(FieldError::new(
                FIELD,
                format!("each button's text must be 1 to {BUTTON_TEXT_MAX} characters"),
            ));
        }
        if kind == "URL" {
            let url = b.get("url").and_then(Value::as_str).unwrap_or_default();
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > URL_MAX {
                errors.push(FieldError::new(
                    FIELD,
                    format!("a URL button needs an http(s) url of at most {URL_MAX} characters"),
                ));
            }
        }
        if kind == "PHONE_NUMBER"
            && b.get("phone_number")
                .and_then(Value::as_str)
                .is_none_or(|p| p.trim().is_empty() || p.len() > 20)
        {
            errors.push(FieldError::new(
                FIELD,
                "a PHONE_NUMBER button needs a phone_number of at most 20 characters",
            ));
        }
    }
}

/// Why a template message cannot be sent with a stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRefusal {
    NotApproved(String),
    /// (component, expected, given)
    ParameterCount(&'static str, i64, i64),
    /// A URL button (by its index among the template's buttons) given the wrong number of
    /// parameters: one when its URL has a variable, none otherwise.
    ButtonParameterCount {
        index: usize,
        expected: i64,
        given: i64,
    },
}

/// How many parameters a send's `components` (Meta's send format: `[{type: "body",
/// parameters: […]}, …]`) give to the component `kind` (`body` or `header`, any case).
pub fn given_parameters(components: Option<&Value>, kind: &str) -> i64 {
    components
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            c.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(kind))
        })
        .map(|c| {
            c.get("parameters")
                .and_then(Value::as_array)
                .map_or(0, |p| i64::try_from(p.len()).unwrap_or(i64::MAX))
        })
        .sum()
}

fn has_type(v: &Value, kind: &str) -> bool {
    v.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

/// How many parameters a send's `components` give the button at `index` (Meta's send format:
/// `{type: "button", sub_type: "url", index: "0", parameters: [{type: "text", text: "…"}]}`;
/// the index may be a string or a number).
fn given_button_parameters(components: Option<&Value>, index: usize) -> i64 {
    components
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| has_type(c, "button"))
        .find(|c| {
            let at = match c.get("index") {
                Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
                Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                _ => None,
            };
            at == Some(index)
        })
        .and_then(|c| c.get("parameters"))
        .and_then(Value::as_array)
        .map_or(0, |p| i64::try_from(p.len()).unwrap_or(i64::MAX))
}

impl Template {
    /// Whether a message with this template and these send components may be queued: the
    /// template is `APPROVED`, the body and header get exactly the parameters it has, and each
    /// URL button one parameter when its URL has a variable (none when it has not).
    pub fn check_send(&self, components: Option<&Value>) -> Result<(), SendRefusal> {
        if self.status != TemplateStatus::Approved {
            return Err(SendRefusal::NotApproved(self.status.as_str().to_owned()));
        }
        for (kind, expected) in [("body", self.body_params), ("header", self.header_params)] {
            let given = given_parameters(components, kind);
            if given != expected {
                return Err(SendRefusal::ParameterCount(kind, expected, given));
            }
        }
        for (index, expected) in self.url_buttons() {
            let given = given_button_parameters(components, index);
            if given != expected {
                return Err(SendRefusal::ButtonParameterCount {
                    index,
                    expected,
                    given,
                });
            }
        }
        Ok(())
    }

    /// The template's URL buttons, by index among its buttons, with how many parameters a send
    /// gives each: 1 when the URL has a variable (`https://shop.example/track/{{1}}`), else 0.
    fn url_buttons(&self) -> Vec<(usize, i64)> {
        let buttons = self
            .components
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| has_type(c, "BUTTONS"))
            .filter_map(|c| c.get("buttons").and_then(Value::as_array))
            .flatten();
        buttons
            .enumerate()
            .filter(|(_, b)| has_type(b, "URL"))
            .map(|(i, b)| {
                let dynamic = b
                    .get("url")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.contains("{{"));
                (i, i64::from(dynamic))
            })
            .collect()
    }
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
        let now = OffsetDateTime::UNIX_EPOCH;
        let c = json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi {{1}}, order {{2}}."}]);
        let (header_params, body_params) = parameter_counts(&c);
        let mut t = Template {
            id: TemplateId::new(),
            tenant_id: TenantId::new(),
            connection_id: ConnectionId::new(),
            waba_id: "1".into(),
            meta_id: "2".into(),
            name: "order".into(),
            language: "en_US".into(),
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
        };
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
        let now = OffsetDateTime::UNIX_EPOCH;
        let c = json!([
            {"type": "BODY", "text": "Your order shipped."},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
                {"type": "url", "text": "Shop", "url": "https://shop.example/"}]}
        ]);
        let (header_params, body_params) = parameter_counts(&c);
        let t = Template {
            id: TemplateId::new(),
            tenant_id: TenantId::new(),
            connection_id: ConnectionId::new(),
            waba_id: "1".into(),
            meta_id: "2".into(),
            name: "shipped".into(),
            language: "en".into(),
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
        };
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
