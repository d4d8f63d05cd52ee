//! Message templates of a WABA: list (filters, cursors, `paging.next`), create (then reviewed
//! by [`crate::webhook::spawn_template_review`]), edit, delete, and the two templates every WABA
//! starts with.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{
    authenticate, check_version, cursor, ok, own_waba, parse_cursor, parse_json, project, GResult,
    St, Q,
};
use crate::error::GraphError;
use crate::ids;
use crate::state::{lock, Template};
use crate::validate;
use crate::webhook;

pub(super) async fn list_templates(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    own_waba(&st, &version, &waba, "get", &headers, &q)?;
    let all: Vec<Template> = lock(&st.inner)
        .templates
        .get(&waba)
        .cloned()
        .unwrap_or_default();
    let filtered: Vec<Template> = all
        .into_iter()
        .filter(|t| q.get("name").is_none_or(|n| t.name.contains(n.as_str())))
        .filter(|t| {
            q.get("status")
                .is_none_or(|s| t.status.eq_ignore_ascii_case(s))
        })
        .filter(|t| {
            q.get("category")
                .is_none_or(|c| t.category.eq_ignore_ascii_case(c))
        })
        .filter(|t| q.get("language").is_none_or(|l| t.language == *l))
        .collect();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let (start, end) = if let Some(after) = q.get("after").and_then(|c| parse_cursor(c)) {
        let start = after.saturating_add(1).min(filtered.len());
        (start, start.saturating_add(limit).min(filtered.len()))
    } else if let Some(before) = q.get("before").and_then(|c| parse_cursor(c)) {
        let end = before.min(filtered.len());
        (end.saturating_sub(limit), end)
    } else {
        (0, limit.min(filtered.len()))
    };
    let page = filtered.get(start..end).unwrap_or_default();
    let defaults = [
        "name",
        "parameter_format",
        "components",
        "language",
        "status",
        "category",
    ];
    let data = page
        .iter()
        .map(|t| {
            let full = t.to_json().as_object().cloned().unwrap_or_default();
            project(&full, q.get("fields"), &defaults, "WhatsAppMessageTemplate")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({"data": data});
    if !page.is_empty() {
        let link = |cursor_key: &str, c: String| {
            let mut params: Vec<String> = q
                .iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "after" | "before" | "access_token" | "limit")
                })
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            params.sort();
            params.push(format!("limit={limit}"));
            params.push(format!("{cursor_key}={c}"));
            format!(
                "{}/{version}/{waba}/message_templates?{}",
                st.base_url,
                params.join("&")
            )
        };
        let mut paging = json!({
            "cursors": {"before": cursor(start), "after": cursor(end.saturating_sub(1))}
        });
        if let Some(p) = paging.as_object_mut() {
            if end < filtered.len() {
                p.insert(
                    "next".into(),
                    json!(link("after", cursor(end.saturating_sub(1)))),
                );
            }
            if start > 0 {
                p.insert("previous".into(), json!(link("before", cursor(start))));
            }
        }
        if let Some(b) = body.as_object_mut() {
            b.insert("paging".into(), paging);
        }
    }
    Ok(ok(&version, StatusCode::OK, body))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters and `,` kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Uppercases component `type`/`format`/button `type`, as GET responses show them.
fn normalize_components(components: &Value) -> Value {
    let mut out = components.clone();
    if let Some(list) = out.as_array_mut() {
        for c in list.iter_mut() {
            if let Some(obj) = c.as_object_mut() {
                for key in ["type", "format"] {
                    if let Some(Value::String(s)) = obj.get_mut(key) {
                        *s = s.to_ascii_uppercase();
                    }
                }
                if let Some(Value::Array(buttons)) = obj.get_mut("buttons") {
                    for b in buttons.iter_mut() {
                        if let Some(Value::String(s)) = b.get_mut("type") {
                            *s = s.to_ascii_uppercase();
                        }
                    }
                }
            }
        }
    }
    out
}

fn check_components(components: &Value, parameter_format: &str) -> Result<(), GraphError> {
    let list = components
        .as_array()
        .ok_or_else(|| GraphError::invalid_parameter("Param components must be an array."))?;
    let is = |c: &Value, kind: &str| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    };
    let body = list
        .iter()
        .find(|c| is(c, "body"))
        .ok_or_else(|| GraphError::invalid_parameter("A template needs a BODY component."))?;
    let text = body
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            GraphError::invalid_parameter("Param components[BODY]['text'] is required.")
        })?;
    if text.chars().count() > 1024 {
        return Err(GraphError::invalid_parameter(
            "The BODY text is longer than 1024 characters.",
        ));
    }
    for c in list.iter().filter(|c| is(c, "body") || is(c, "header")) {
        let vars = validate::variables(c.get("text").and_then(Value::as_str).unwrap_or_default());
        if vars.is_empty() {
            continue;
        }
        let positional = !parameter_format.eq_ignore_ascii_case("NAMED");
        if positional && vars.iter().any(|v| v.parse::<u32>().is_err()) {
            return Err(GraphError::invalid_parameter(
                "Positional templates use {{1}}, {{2}}, … as variables.",
            ));
        }
        if c.get("example").is_none() {
            return Err(GraphError::invalid_parameter(
                "Every variable needs an example value (component example is missing).",
            ));
        }
    }
    Ok(())
}

pub(super) async fn create_template(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    own_waba(&st, &version, &waba, "post", &headers, &q)?;
    let b = parse_json(&body)?;
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::invalid_parameter("The parameter name is required."))?;
    if name.is_empty()
        || name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(GraphError::invalid_parameter(
            "Param name must be at most 512 lowercase alphanumeric characters or underscores.",
        ));
    }
    let language = b
        .get("language")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| GraphError::invalid_parameter("The parameter language is required."))?;
    let category = b
        .get("category")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .ok_or_else(|| GraphError::invalid_parameter("The parameter category is required."))?;
    if !matches!(
        category.as_str(),
        "AUTHENTICATION" | "MARKETING" | "UTILITY"
    ) {
        return Err(GraphError::invalid_parameter(
            "Param category must be one of {AUTHENTICATION, MARKETING, UTILITY}.",
        ));
    }
    let parameter_format = b
        .get("parameter_format")
        .and_then(Value::as_str)
        .unwrap_or("positional")
        .to_ascii_uppercase();
    if !matches!(parameter_format.as_str(), "POSITIONAL" | "NAMED") {
        return Err(GraphError::invalid_parameter(
            "Param parameter_format must be one of {named, positional}.",
        ));
    }
    let components = b
        .get("components")
        .ok_or_else(|| GraphError::invalid_parameter("The parameter components is required."))?;
    check_components(components, &parameter_format)?;
    let template = Template {
        id: ids::numeric_id(),
        name: name.to_owned(),
        language: language.to_owned(),
        status: "PENDING".into(),
        category: category.clone(),
        parameter_format,
        components: normalize_components(components),
        quality_score: "UNKNOWN".into(),
        rejected_reason: "NONE".into(),
    };
    let id = template.id.clone();
    {
        let mut inner = lock(&st.inner);
        let list = inner.templates.entry(waba.clone()).or_default();
        if list
            .iter()
            .any(|t| t.name == name && t.language == language)
        {
            return Err(GraphError::invalid_parameter(format!(
                "Message template \"{name}\" already exists in language {language}."
            )));
        }
        if list.len() >= 250 {
            return Err(GraphError {
                http: StatusCode::BAD_REQUEST,
                code: 100,
                kind: "OAuthException",
                message: "(#100) Invalid parameter".into(),
                details: Some("Message template limit (250) reached for this WABA.".into()),
            });
        }
        list.push(template);
    }
    webhook::spawn_template_review(&st, id.clone());
    Ok(ok(
        &version,
        StatusCode::OK,
        json!({"id": id, "status": "PENDING", "category": category}),
    ))
}

/// `POST /{version}/{template_id}`: edit a template.
pub(super) async fn edit_template(
    State(st): St,
    Path((version, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> GResult {
    check_version(&version)?;
    let owner = authenticate(&st, &headers, &q)?;
    let edit = parse_json(&body)?;
    let mut inner = lock(&st.inner);
    let owner_waba = inner
        .phones
        .get(&owner)
        .map(|p| p.waba_id.clone())
        .unwrap_or_default();
    let exists_elsewhere = inner
        .templates
        .iter()
        .any(|(w, l)| *w != owner_waba && l.iter().any(|t| t.id == id));
    let Some(t) = inner
        .templates
        .get_mut(&owner_waba)
        .and_then(|l| l.iter_mut().find(|t| t.id == id))
    else {
        if exists_elsewhere || inner.phones.contains_key(&id) {
            return Err(GraphError::permission());
        }
        return Err(GraphError::unknown_object("post", &id));
    };
    if !matches!(t.status.as_str(), "APPROVED" | "REJECTED" | "PAUSED") {
        return Err(GraphError::invalid_parameter(format!(
            "A template with status {} cannot be edited.",
            t.status
        )));
    }
    if let Some(category) = edit.get("category").and_then(Value::as_str) {
        let category = category.to_ascii_uppercase();
        if !matches!(
            category.as_str(),
            "AUTHENTICATION" | "MARKETING" | "UTILITY"
        ) {
            return Err(GraphError::invalid_parameter("Param category is invalid."));
        }
        if t.status == "APPROVED" && category != t.category {
            return Err(GraphError::invalid_parameter(
                "The category of an approved template cannot be changed.",
            ));
        }
        t.category = category;
    }
    if let Some(components) = edit.get("components") {
        check_components(components, &t.parameter_format)?;
        t.components = normalize_components(components);
    }
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

pub(super) async fn delete_templates(
    State(st): St,
    Path((version, waba)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
) -> GResult {
    own_waba(&st, &version, &waba, "delete", &headers, &q)?;
    let Some(name) = q.get("name") else {
        return Err(GraphError::invalid_parameter(
            "The parameter name is required.",
        ));
    };
    let hsm_id = q.get("hsm_id");
    let mut inner = lock(&st.inner);
    let list = inner.templates.entry(waba).or_default();
    let before = list.len();
    list.retain(|t| !(t.name == *name && hsm_id.is_none_or(|h| *h == t.id)));
    if list.len() == before {
        return Err(GraphError::invalid_parameter(format!(
            "Message template \"{name}\" was not found."
        )));
    }
    Ok(ok(&version, StatusCode::OK, json!({"success": true})))
}

/// The templates every simulated WABA starts with.
pub fn seed_templates() -> Vec<Template> {
    vec![
        Template {
            id: ids::numeric_id(),
            name: "hello_world".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."},
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}
            ]),
            quality_score: "GREEN".into(),
            rejected_reason: "NONE".into(),
        },
        Template {
            id: ids::numeric_id(),
            name: "order_confirmation".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is confirmed.",
                 "example": {"body_text": [["Jessica", "SKBUP2-4CPIG9"]]}}
            ]),
            quality_score: "GREEN".into(),
            rejected_reason: "NONE".into(),
        },
    ]
}
