//! A template message checked before it is queued: the template approved in that language,
//! and the parameters the send gives matching what it was approved with.

use super::*;

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

pub(super) fn has_type(v: &Value, kind: &str) -> bool {
    v.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

/// How many parameters a send's `components` give the button at `index` (Meta's send format:
/// `{type: "button", sub_type: "url", index: "0", parameters: [{type: "text", text: "…"}]}`;
/// the index may be a string or a number).
pub(super) fn given_button_parameters(components: Option<&Value>, index: usize) -> i64 {
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
