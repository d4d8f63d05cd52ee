//! Validation of `POST /{version}/{phone_number_id}/messages` bodies (reference §2.2, §7).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::GraphError;
use crate::state::Template;

/// A message send that passed validation.
#[derive(Debug, Clone)]
pub struct Send {
    /// `to` exactly as sent (echoed in `contacts[].input`).
    pub input: String,
    /// Normalized digits.
    pub wa_id: String,
    pub kind: String,
}

/// What a valid body asks for.
#[derive(Debug, Clone)]
pub enum Request {
    /// `{"status":"read","message_id":…}` (optionally with `typing_indicator`).
    MarkRead {
        message_id: String,
    },
    Send(Send),
}

const MEDIA_TYPES: [&str; 5] = ["image", "audio", "video", "document", "sticker"];
const KNOWN_TYPES: [&str; 11] = [
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
];
const INTERACTIVE_TYPES: [&str; 11] = [
    "button",
    "list",
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
    "voice_call",
    "call_permission_request",
];

type R<T> = Result<T, GraphError>;

fn obj<'a>(v: &'a Value, name: &str) -> R<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        GraphError::invalid_parameter(format!("Param {name} must be a JSON object."))
    })
}

fn req<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<&'a Value> {
    match m.get(key) {
        None | Some(Value::Null) => Err(GraphError::missing(path)),
        Some(v) => Ok(v),
    }
}

fn req_str<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<&'a str> {
    let v = req(m, key, path)?;
    let s = v
        .as_str()
        .ok_or_else(|| GraphError::invalid_parameter(format!("Param {path} must be a string.")))?;
    if s.is_empty() {
        return Err(GraphError::missing(path));
    }
    Ok(s)
}

fn opt_str<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<Option<&'a str>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(GraphError::invalid_parameter(format!(
            "Param {path} must be a string."
        ))),
    }
}

fn max_len(s: &str, max: usize, what: &str) -> R<()> {
    let len = s.chars().count();
    if len > max {
        return Err(GraphError::invalid_value(format!(
            "{what} length invalid. Min length: 1, Max length: {max}. Actual length: {len}"
        )));
    }
    Ok(())
}

/// Validates a send body. Template existence is checked separately ([`check_template`]).
pub fn validate(body: &Value) -> R<Request> {
    let m = obj(body, "body")?;
    match m.get("messaging_product").and_then(Value::as_str) {
        Some("whatsapp") => {}
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ))
        }
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param messaging_product must be 'whatsapp', got '{other}'."
            )))
        }
    }
    if let Some(status) = m.get("status") {
        if status.as_str() != Some("read") {
            return Err(GraphError::invalid_parameter(
                "Param status must be 'read'.",
            ));
        }
        let message_id = req_str(m, "message_id", "message_id")?;
        if let Some(ti) = m.get("typing_indicator") {
            let ti = obj(ti, "typing_indicator")?;
            if ti.get("type").and_then(Value::as_str) != Some("text") {
                return Err(GraphError::invalid_parameter(
                    "Param typing_indicator['type'] must be 'text'.",
                ));
            }
        }
        return Ok(Request::MarkRead {
            message_id: message_id.to_owned(),
        });
    }
    if let Some(rt) = opt_str(m, "recipient_type", "recipient_type")? {
        if rt != "individual" && rt != "group" {
            return Err(GraphError::invalid_parameter(
                "Param recipient_type must be one of {individual, group}.",
            ));
        }
    }
    let input = req_str(m, "to", "to")?;
    if !input
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '(' | ')' | ' '))
    {
        return Err(GraphError::invalid_parameter(format!(
            "Param to '{input}' is not a valid phone number."
        )));
    }
    let wa_id = crate::ids::digits(input);
    if wa_id.len() < 5 || wa_id.len() > 15 {
        return Err(GraphError::invalid_parameter(format!(
            "Param to '{input}' is not a valid phone number."
        )));
    }
    let kind = opt_str(m, "type", "type")?.unwrap_or("text");
    if !KNOWN_TYPES.contains(&kind) {
        return Err(GraphError::unsupported_type(kind));
    }
    if let Some(ctx) = m.get("context") {
        let ctx = obj(ctx, "context")?;
        req_str(ctx, "message_id", "context['message_id']")?;
    }
    let content = req(m, kind, kind)?;
    if kind == "contacts" {
        validate_contacts(content)?;
        return Ok(Request::Send(Send {
            input: input.to_owned(),
            wa_id,
            kind: kind.to_owned(),
        }));
    }
    let c = obj(content, kind)?;
    match kind {
        "text" => {
            let body = req_str(c, "body", "text['body']")?;
            max_len(body, 4096, "Text body")?;
            if c.get("preview_url").is_some_and(|v| !v.is_boolean()) {
                return Err(GraphError::invalid_parameter(
                    "Param text['preview_url'] must be a boolean.",
                ));
            }
        }
        k if MEDIA_TYPES.contains(&k) => validate_media(c, k)?,
        "location" => {
            for key in ["latitude", "longitude"] {
                let v = req(c, key, &format!("location['{key}']"))?;
                let ok = v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok());
                if !ok {
                    return Err(GraphError::invalid_parameter(format!(
                        "Param location['{key}'] must be a number."
                    )));
                }
            }
        }
        "reaction" => {
            req_str(c, "message_id", "reaction['message_id']")?;
            match c.get("emoji") {
                None | Some(Value::Null) => return Err(GraphError::missing("reaction['emoji']")),
                Some(Value::String(_)) => {}
                Some(_) => {
                    return Err(GraphError::invalid_parameter(
                        "Param reaction['emoji'] must be a string.",
                    ))
                }
            }
        }
        "interactive" => validate_interactive(c)?,
        "template" => {
            req_str(c, "name", "template['name']")?;
            let lang = req(c, "language", "template['language']")?;
            let lang = obj(lang, "template['language']")?;
            req_str(lang, "code", "template['language']['code']")?;
            if let Some(comps) = c.get("components") {
                if !comps.is_array() {
                    return Err(GraphError::invalid_parameter(
                        "Param template['components'] must be an array.",
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(Request::Send(Send {
        input: input.to_owned(),
        wa_id,
        kind: kind.to_owned(),
    }))
}

fn validate_contacts(cards: &Value) -> R<()> {
    let cards = cards
        .as_array()
        .ok_or_else(|| GraphError::invalid_parameter("Param contacts must be an array."))?;
    if cards.is_empty() {
        return Err(GraphError::missing("contacts"));
    }
    for (i, card) in cards.iter().enumerate() {
        let card = obj(card, "contacts[]")?;
        let name = obj(
            req(card, "name", &format!("contacts[{i}]['name']"))?,
            "name",
        )?;
        req_str(
            name,
            "formatted_name",
            &format!("contacts[{i}]['name']['formatted_name']"),
        )?;
    }
    Ok(())
}

fn validate_media(c: &Map<String, Value>, kind: &str) -> R<()> {
    let id = opt_str(c, "id", &format!("{kind}['id']"))?;
    let link = opt_str(c, "link", &format!("{kind}['link']"))?;
    match (id, link) {
        (None, None) => {
            return Err(GraphError::missing(&format!(
                "{kind}['id'] or {kind}['link']"
            )))
        }
        (Some(_), Some(_)) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param {kind} must contain either id or link, not both."
            )))
        }
        (None, Some(link)) => {
            if !(link.starts_with("https://") || link.starts_with("http://")) {
                return Err(GraphError::invalid_value(format!(
                    "{kind}['link'] must be an http(s) URL."
                )));
            }
        }
        (Some(_), None) => {}
    }
    if let Some(caption) = opt_str(c, "caption", &format!("{kind}['caption']"))? {
        if kind == "audio" || kind == "sticker" {
            return Err(GraphError::invalid_parameter(format!(
                "Param {kind}['caption'] is not supported for {kind} messages."
            )));
        }
        max_len(caption, 1024, "Caption")?;
    }
    if kind != "document" && c.contains_key("filename") {
        return Err(GraphError::invalid_parameter(format!(
            "Param {kind}['filename'] is only valid for documents."
        )));
    }
    Ok(())
}

fn text_of<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<&'a str> {
    let part = req(m, key, path)?;
    let part = obj(part, path)?;
    req_str(part, "text", &format!("{path}['text']"))
}

fn validate_interactive(c: &Map<String, Value>) -> R<()> {
    let kind = req_str(c, "type", "interactive['type']")?;
    if !INTERACTIVE_TYPES.contains(&kind) {
        return Err(GraphError::invalid_parameter(format!(
            "Param interactive['type'] '{kind}' is not a valid interactive message type."
        )));
    }
    let needs_body = matches!(
        kind,
        "button" | "list" | "cta_url" | "product_list" | "flow"
    );
    let body_max = if kind == "list" { 4096 } else { 1024 };
    if needs_body || c.contains_key("body") {
        let body = text_of(c, "body", "interactive['body']")?;
        max_len(body, body_max, "Body text")?;
    }
    if c.contains_key("footer") {
        let footer = text_of(c, "footer", "interactive['footer']")?;
        max_len(footer, 60, "Footer text")?;
    }
    if let Some(header) = c.get("header") {
        let header = obj(header, "interactive['header']")?;
        let htype = req_str(header, "type", "interactive['header']['type']")?;
        let allowed: &[&str] = if kind == "list" {
            &["text"]
        } else {
            &["text", "image", "video", "document"]
        };
        if !allowed.contains(&htype) {
            return Err(GraphError::invalid_parameter(format!(
                "Param interactive['header']['type'] '{htype}' is not allowed for {kind} messages."
            )));
        }
        if htype == "text" {
            let text = req_str(header, "text", "interactive['header']['text']")?;
            max_len(text, 60, "Header text")?;
        } else {
            let media = req(header, htype, &format!("interactive['header']['{htype}']"))?;
            validate_media(obj(media, htype)?, htype)?;
        }
    }
    let action = req(c, "action", "interactive['action']")?;
    let action = obj(action, "interactive['action']")?;
    match kind {
        "button" => {
            let buttons = req(action, "buttons", "interactive['action']['buttons']")?;
            let buttons = buttons.as_array().ok_or_else(|| {
                GraphError::invalid_parameter(
                    "Param interactive['action']['buttons'] must be an array.",
                )
            })?;
            if buttons.is_empty() {
                return Err(GraphError::missing("interactive['action']['buttons']"));
            }
            if buttons.len() > 3 {
                return Err(GraphError::invalid_value(format!(
                    "Buttons count invalid. Min count: 1, Max count: 3. Actual count: {}",
                    buttons.len()
                )));
            }
            let mut titles = HashSet::new();
            let mut ids = HashSet::new();
            for (i, b) in buttons.iter().enumerate() {
                let b = obj(b, "button")?;
                let path = format!("interactive['action']['buttons'][{i}]");
                if req_str(b, "type", &format!("{path}['type']"))? != "reply" {
                    return Err(GraphError::invalid_parameter(format!(
                        "Param {path}['type'] must be 'reply'."
                    )));
                }
                let reply = obj(req(b, "reply", &format!("{path}['reply']"))?, "reply")?;
                let id = req_str(reply, "id", &format!("{path}['reply']['id']"))?;
                max_len(id, 256, "Button id")?;
                let title = req_str(reply, "title", &format!("{path}['reply']['title']"))?;
                max_len(title, 20, "Button title")?;
                if !titles.insert(title.to_owned()) {
                    return Err(GraphError::invalid_value("Button title is not unique."));
                }
                if !ids.insert(id.to_owned()) {
                    return Err(GraphError::invalid_value("Button id is not unique."));
                }
            }
        }
        "list" => {
            let button = req_str(action, "button", "interactive['action']['button']")?;
            max_len(button, 20, "Button label")?;
            let sections = req(action, "sections", "interactive['action']['sections']")?;
            let sections = sections.as_array().ok_or_else(|| {
                GraphError::invalid_parameter(
                    "Param interactive['action']['sections'] must be an array.",
                )
            })?;
            if sections.is_empty() {
                return Err(GraphError::missing("interactive['action']['sections']"));
            }
            if sections.len() > 10 {
                return Err(GraphError::invalid_value(format!(
                    "Sections count invalid. Min count: 1, Max count: 10. Actual count: {}",
                    sections.len()
                )));
            }
            let mut rows_total = 0usize;
            let mut row_ids = HashSet::new();
            for (i, s) in sections.iter().enumerate() {
                let s = obj(s, "section")?;
                let path = format!("interactive['action']['sections'][{i}]");
                match opt_str(s, "title", &format!("{path}['title']"))? {
                    Some(t) => max_len(t, 24, "Section title")?,
                    None if sections.len() > 1 => {
                        return Err(GraphError::missing(&format!("{path}['title']")))
                    }
                    None => {}
                }
                let rows = req(s, "rows", &format!("{path}['rows']"))?;
                let rows = rows.as_array().ok_or_else(|| {
                    GraphError::invalid_parameter(format!("Param {path}['rows'] must be an array."))
                })?;
                if rows.is_empty() {
                    return Err(GraphError::missing(&format!("{path}['rows']")));
                }
                rows_total += rows.len();
                for (j, r) in rows.iter().enumerate() {
                    let r = obj(r, "row")?;
                    let rpath = format!("{path}['rows'][{j}]");
                    let id = req_str(r, "id", &format!("{rpath}['id']"))?;
                    max_len(id, 200, "Row id")?;
                    let title = req_str(r, "title", &format!("{rpath}['title']"))?;
                    max_len(title, 24, "Row title")?;
                    if let Some(d) = opt_str(r, "description", &format!("{rpath}['description']"))?
                    {
                        max_len(d, 72, "Row description")?;
                    }
                    if !row_ids.insert(id.to_owned()) {
                        return Err(GraphError::invalid_value("Row id is not unique."));
                    }
                }
            }
            if rows_total > 10 {
                return Err(GraphError::invalid_value(format!(
                    "Rows count invalid. Min count: 1, Max count: 10. Actual count: {rows_total}"
                )));
            }
        }
        "cta_url" => {
            let params = req(action, "parameters", "interactive['action']['parameters']")?;
            let params = obj(params, "parameters")?;
            let text = req_str(
                params,
                "display_text",
                "interactive['action']['parameters']['display_text']",
            )?;
            max_len(text, 20, "Display text")?;
            req_str(params, "url", "interactive['action']['parameters']['url']")?;
        }
        _ => {}
    }
    Ok(())
}

/// Variables (`{{1}}`, `{{name}}`) of a template text, distinct, in order of appearance.
pub fn variables(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else { break };
        let name = after.get(..end).unwrap_or_default().trim().to_owned();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
        rest = after.get(end + 2..).unwrap_or_default();
    }
    out
}

fn component<'a>(components: &'a [Value], kind: &str) -> Option<&'a Value> {
    components.iter().find(|c| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

fn params_of(send_components: &[Value], kind: &str) -> Vec<Value> {
    component(send_components, kind)
        .and_then(|c| c.get("parameters"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn index_of(v: &Value) -> Option<u64> {
    match v.get("index") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn mismatch(what: &str, got: usize, expected: usize) -> GraphError {
    GraphError::template_params(format!(
        "{what}: number of localizable_params ({got}) does not match the expected number of params ({expected})"
    ))
}

/// Checks a template send against the stored template: 132001 when it is missing (in that
/// language) or not approved, 132000 when a component's parameter count differs.
pub fn check_template(templates: &[Template], send: &Value) -> R<Template> {
    let t = send.get("template").cloned().unwrap_or(Value::Null);
    let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
    let lang = t
        .get("language")
        .and_then(|l| l.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(tpl) = templates
        .iter()
        .find(|x| x.name == name && x.language == lang && x.status == "APPROVED")
    else {
        return Err(GraphError::template_missing(name, lang));
    };
    let sent: Vec<Value> = t
        .get("components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let defined: Vec<Value> = tpl.components.as_array().cloned().unwrap_or_default();
    let named = tpl.parameter_format.eq_ignore_ascii_case("NAMED");

    for kind in ["header", "body"] {
        let expected: Vec<String> = match component(&defined, kind) {
            None => Vec::new(),
            Some(c) => {
                let format = c.get("format").and_then(Value::as_str).unwrap_or("TEXT");
                if kind == "header" && !format.eq_ignore_ascii_case("TEXT") {
                    vec!["media".to_owned()]
                } else {
                    variables(c.get("text").and_then(Value::as_str).unwrap_or_default())
                }
            }
        };
        let got = params_of(&sent, kind);
        if got.len() != expected.len() {
            return Err(mismatch(kind, got.len(), expected.len()));
        }
        if named && expected.first().map(String::as_str) != Some("media") {
            for p in &got {
                let pname = p
                    .get("parameter_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !expected.iter().any(|e| e == pname) {
                    return Err(GraphError::template_params(format!(
                        "{kind}: parameter_name '{pname}' is not a parameter of the template"
                    )));
                }
            }
        }
    }

    // Buttons whose URL has a variable need one parameter each, addressed by `index`.
    let buttons: Vec<Value> = component(&defined, "buttons")
        .and_then(|c| c.get("buttons"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, b) in buttons.iter().enumerate() {
        let dynamic = b
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("URL"))
            && b.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| u.contains("{{"));
        let provided = sent
            .iter()
            .filter(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("button"))
            })
            .find(|c| index_of(c) == Some(i as u64))
            .and_then(|c| c.get("parameters"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let is_url = b
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("URL"));
        if dynamic && provided != 1 {
            return Err(mismatch(&format!("button at index {i}"), provided, 1));
        }
        if is_url && !dynamic && provided != 0 {
            return Err(mismatch(&format!("button at index {i}"), provided, 0));
        }
    }
    Ok(tpl.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables() {
        assert_eq!(variables("Hi {{1}}, {{2}} and {{1}}"), vec!["1", "2"]);
        assert_eq!(variables("Hi {{ first_name }}"), vec!["first_name"]);
        assert!(variables("none {{").is_empty());
    }
}
