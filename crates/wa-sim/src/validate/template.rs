//! Template sends checked against the WABA's stored templates (reference §7): unlike the rest of
//! validation this needs the simulator's state, so [`super::validate`] only checks the shape and
//! the send handler calls [`check_template`] with the number's templates.

use serde_json::Value;

use super::R;
use crate::error::GraphError;
use crate::state::Template;

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
