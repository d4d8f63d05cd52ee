//! A new template checked before Meta sees it: name and language, the components with
//! Meta's limits, variables numbered from one with their examples, the buttons.

use super::*;

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
pub(super) fn positional(
    field: &'static str,
    text: &str,
    errors: &mut Vec<FieldError>,
) -> Option<usize> {
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

pub(super) fn text_of<'a>(
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
pub(super) fn example_values(
    c: &serde_json::Map<String, Value>,
    key: &str,
    nested: bool,
) -> Option<usize> {
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

pub(super) fn check_components(
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

pub(super) fn check_header(
    c: &serde_json::Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> usize {
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

pub(super) fn check_body(
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

pub(super) fn check_buttons(c: &serde_json::Map<String, Value>, errors: &mut Vec<FieldError>) {
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
