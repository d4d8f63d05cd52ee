//! Interactive messages (`type: "interactive"`): buttons, lists and CTA URLs, each with its own
//! counts and lengths. Kept apart because it is half of all send validation and has its own
//! vocabulary (header, body, footer, action); the other send types are a few lines each.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{max_len, obj, opt_str, req, req_str, validate_media, R};
use crate::error::GraphError;

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

fn text_of<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> R<&'a str> {
    let part = req(m, key, path)?;
    let part = obj(part, path)?;
    req_str(part, "text", &format!("{path}['text']"))
}

pub(super) fn validate_interactive(c: &Map<String, Value>) -> R<()> {
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
