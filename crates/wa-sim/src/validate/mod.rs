//! Validation of `POST /{version}/{phone_number_id}/messages` bodies (reference §2.2, §7).
//!
//! This file checks the envelope (`messaging_product`, `to`, `type`, `context`) and the short
//! per-type rules; interactive messages ([`interactive`]) and the check of a template send against
//! the stored templates ([`template`]) have their own files.

mod interactive;
mod template;

use serde_json::{Map, Value};

use crate::error::GraphError;

use interactive::validate_interactive;
pub use template::{check_template, variables};

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
