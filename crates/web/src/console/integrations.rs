//! `/settings/integrations`: the tenant's shops (WooCommerce) for admins (`integrations.manage`;
//! agents get the `403` page, an impersonation `impersonation_forbidden`, as in the API).
//!
//! Reading calls `palisade_core::integrations::list`, as `GET /api/v1/integrations` does.
//! Every change is a `data-api` form against the JSON API: create (the answer's callback URL
//! and secret are shown once, through `data-then="fill:…"`; the page never has the secret, so
//! a reload shows it no more), rotate the secret (the new one shown once), replace the rules
//! (`PATCH`, the whole list: `static/integrations.js` adds the rule the form describes to the
//! ones the page lists; removing a rule sends the list without it) and delete.
//!
//! A rule's template is chosen among the approved templates of the integration's number (all
//! the tenant's numbers when it uses the only active one), read with `templates::list`.

use super::page::{app_error, render, Choice, Chrome, Nav};
use super::Viewer;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use palisade_core::integrations::{self, IntegrationView};
use palisade_core::templates::{self, TemplateListQuery};
use palisade_domain::integration::{parse_rules, Rule, RuleTrigger, TemplateParameter};
use serde_json::Value;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/settings/integrations", get(page))
}

struct RuleRow {
    summary: String,
    /// The integration's rules without this one (what its "Remove" form sends).
    without: String,
}

struct IntegrationRow {
    id: Uuid,
    name: String,
    callback_url: String,
    connection: String,
    rules: Vec<RuleRow>,
    /// The rules as the API holds them (JSON), which "Add rule" extends.
    rules_json: String,
    /// `name:language` of the approved templates its rules may send.
    templates: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "settings/integrations.html")]
struct IntegrationsPage {
    chrome: Chrome,
    integrations: Vec<IntegrationRow>,
    connections: Vec<Choice>,
    triggers: Vec<Choice>,
}

/// `Order created, status completed → order_confirmation (en_US) with {{1}} the contact's
/// name (or "there"), {{2}} the order number`.
fn describe(rule: &Rule) -> String {
    let mut out = match rule.on {
        RuleTrigger::OrderCreated => "When an order is created".to_owned(),
        RuleTrigger::OrderStatusChanged => "When an order's status changes".to_owned(),
    };
    if let Some(s) = &rule.status {
        out.push_str(&format!(" to {s}"));
        if rule.on == RuleTrigger::OrderCreated {
            out = format!("When an order is created with status {s}");
        }
    }
    out.push_str(&format!(
        ", send {} ({})",
        rule.template.name, rule.template.language
    ));
    if !rule.parameters.is_empty() {
        let params: Vec<String> = rule
            .parameters
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let what = match p {
                    TemplateParameter::Literal(v) => format!("“{v}”"),
                    TemplateParameter::OrderField(f) => format!("the order's {}", f.as_str()),
                    TemplateParameter::ContactField { field, fallback } => {
                        let f = format!("the contact's {}", field.as_string());
                        match fallback {
                            Some(fb) => format!("{f} (or “{fb}”)"),
                            None => f,
                        }
                    }
                };
                format!("{{{{{}}}}} {what}", i + 1)
            })
            .collect();
        out.push_str(&format!(" with {}", params.join(", ")));
    }
    out
}

fn rows(rules: &[Value]) -> Vec<RuleRow> {
    let parsed = parse_rules(&Value::Array(rules.to_vec())).unwrap_or_default();
    parsed
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let without: Vec<&Value> = rules
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, v)| v)
                .collect();
            RuleRow {
                summary: describe(r),
                without: serde_json::to_string(&without).unwrap_or_else(|_| "[]".into()),
            }
        })
        .collect()
}

async fn page(State(state): State<AppState>, viewer: Viewer) -> Response {
    let s = &state.services;
    let p = &viewer.principal;
    let list: Vec<IntegrationView> = match integrations::list(s, p).await {
        Ok(l) => l,
        Err(e) => return app_error(e),
    };
    let connections = palisade_core::whatsapp::connections::list(s, p)
        .await
        .unwrap_or_default();
    let approved = templates::list(
        s,
        p,
        TemplateListQuery {
            status: Some("APPROVED".into()),
            limit: Some(200),
            ..TemplateListQuery::default()
        },
    )
    .await
    .map(|page| page.data)
    .unwrap_or_default();
    let integrations = list
        .into_iter()
        .map(|i| {
            let mut templates: Vec<Choice> = approved
                .iter()
                .filter(|t| {
                    i.connection_id
                        .is_none_or(|c| t.connection_id.as_uuid() == c)
                })
                .map(|t| Choice {
                    value: format!("{}:{}", t.name, t.language),
                    label: format!("{} ({})", t.name, t.language),
                })
                .collect();
            templates.sort_by(|a, b| a.value.cmp(&b.value));
            templates.dedup_by(|a, b| a.value == b.value);
            IntegrationRow {
                id: i.id,
                connection: match i.connection_id {
                    None => "The only active number".into(),
                    Some(c) => connections
                        .iter()
                        .find(|x| x.id.as_uuid() == c)
                        .map(|x| x.display_name.clone())
                        .unwrap_or_else(|| c.to_string()),
                },
                rules: rows(&i.rules),
                rules_json: serde_json::to_string(&i.rules).unwrap_or_else(|_| "[]".into()),
                name: i.name,
                callback_url: i.callback_url,
                templates,
            }
        })
        .collect();
    render(&IntegrationsPage {
        chrome: Chrome::new(s, &viewer, "Integrations", Nav::Settings),
        integrations,
        connections: connections
            .into_iter()
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.display_name,
            })
            .collect(),
        triggers: [
            (RuleTrigger::OrderCreated, "An order is created"),
            (RuleTrigger::OrderStatusChanged, "An order's status changes"),
        ]
        .into_iter()
        .map(|(t, label)| Choice {
            value: t.as_str().to_owned(),
            label: label.to_owned(),
        })
        .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_described_and_each_can_be_removed() {
        let rules = vec![
            json!({"on": "order.created", "status": null,
                "template": {"name": "order_confirmation", "language": "en_US"},
                "parameters": [{"type": "contact_field", "field": "name", "fallback": "there"},
                               {"type": "order_field", "field": "number"}]}),
            json!({"on": "order.status_changed", "status": "completed",
                "template": {"name": "order_shipped", "language": "pt_BR"},
                "parameters": [{"type": "literal", "value": "Acme"}]}),
        ];
        let r = rows(&rules);
        assert_eq!(
            r[0].summary,
            "When an order is created, send order_confirmation (en_US) with {{1}} the contact's name (or “there”), {{2}} the order's number"
        );
        assert_eq!(
            r[1].summary,
            "When an order's status changes to completed, send order_shipped (pt_BR) with {{1}} “Acme”"
        );
        let without: Vec<Value> = serde_json::from_str(&r[0].without).unwrap();
        assert_eq!(without, vec![rules[1].clone()]);
        let without: Vec<Value> = serde_json::from_str(&r[1].without).unwrap();
        assert_eq!(without, vec![rules[0].clone()]);
    }
}
