//! The rules that turn an order event into a WhatsApp template message: the trigger, an
//! optional order status, the template and its parameters (literals, contact or order fields).

use super::*;

/// A contact's value a template parameter can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactField {
    Name,
    Phone,
    Email,
    /// `custom_attributes.<key>`.
    Custom(String),
}

impl ContactField {
    pub fn parse(raw: &str) -> Option<ContactField> {
        match raw {
            "name" => Some(ContactField::Name),
            "phone" => Some(ContactField::Phone),
            "email" => Some(ContactField::Email),
            other => {
                let key = other.strip_prefix("custom_attributes.")?;
                let ok = !key.is_empty()
                    && key.len() <= 64
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                ok.then(|| ContactField::Custom(key.to_owned()))
            }
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            ContactField::Name => "name".into(),
            ContactField::Phone => "phone".into(),
            ContactField::Email => "email".into(),
            ContactField::Custom(k) => format!("custom_attributes.{k}"),
        }
    }

    /// The contact's value of this field, `None` when empty or unset.
    pub fn value_of(&self, c: &Contact) -> Option<String> {
        self.of(c)
    }

    fn of(&self, c: &Contact) -> Option<String> {
        let v = match self {
            ContactField::Name => c
                .name
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .or_else(|| c.wa_profile_name.clone()),
            ContactField::Phone => Some(c.phone.as_str().to_owned()),
            ContactField::Email => c.email.as_ref().map(|e| e.as_str().to_owned()),
            ContactField::Custom(k) => c.custom_attributes.as_map().get(k).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            }),
        };
        v.filter(|s| !s.trim().is_empty())
    }
}

/// An order's value a template parameter can take (beyond the campaigns' shape: an order
/// notification names the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    Number,
    Status,
    Total,
    Currency,
}

impl OrderField {
    pub const ALL: [OrderField; 4] = [
        OrderField::Number,
        OrderField::Status,
        OrderField::Total,
        OrderField::Currency,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OrderField::Number => "number",
            OrderField::Status => "status",
            OrderField::Total => "total",
            OrderField::Currency => "currency",
        }
    }

    pub fn parse(s: &str) -> Option<OrderField> {
        OrderField::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn of(self, o: &Order) -> String {
        match self {
            OrderField::Number => o.number.clone(),
            OrderField::Status => o.status.clone(),
            OrderField::Total => o.total.clone(),
            OrderField::Currency => o.currency.clone(),
        }
    }
}

/// One template variable, in order (`{{1}}`, `{{2}}`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateParameter {
    Literal(String),
    ContactField {
        field: ContactField,
        fallback: Option<String>,
    },
    OrderField(OrderField),
}

impl TemplateParameter {
    pub fn to_json(&self) -> Value {
        match self {
            TemplateParameter::Literal(v) => json!({"type": "literal", "value": v}),
            TemplateParameter::ContactField { field, fallback } => {
                let mut o = serde_json::Map::new();
                o.insert("type".into(), json!("contact_field"));
                o.insert("field".into(), json!(field.as_string()));
                if let Some(f) = fallback {
                    o.insert("fallback".into(), json!(f));
                }
                Value::Object(o)
            }
            TemplateParameter::OrderField(f) => json!({"type": "order_field", "field": f.as_str()}),
        }
    }
}

/// The template a rule sends: Meta's name and language code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub name: String,
    pub language: String,
}

/// When an order event matches (`on`, and `status` when given), send `template` with
/// `parameters` to the order's customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub on: RuleTrigger,
    pub status: Option<String>,
    pub template: TemplateRef,
    pub parameters: Vec<TemplateParameter>,
}

/// What happened to an order in one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    Created,
    StatusChanged {
        from: String,
    },
    /// A known order sent again with the same status (other fields may have changed).
    Unchanged,
}

pub const MAX_RULES: usize = 20;
pub const MAX_PARAMETERS: usize = 20;
pub(super) const MAX_PARAMETER_CHARS: usize = 1024;

impl Rule {
    /// Whether this rule fires for `event` on an order now in `status`.
    pub fn matches(&self, event: &OrderEvent, status: &str) -> bool {
        let trigger = match event {
            OrderEvent::Created => RuleTrigger::OrderCreated,
            OrderEvent::StatusChanged { .. } => RuleTrigger::OrderStatusChanged,
            OrderEvent::Unchanged => return false,
        };
        self.on == trigger && self.status.as_deref().is_none_or(|s| s == status)
    }

    /// The template's parameter values for `contact` and `order`, or a sentence naming the
    /// first parameter without a value (no fallback).
    pub fn parameter_values(
        &self,
        contact: &Contact,
        order: &Order,
    ) -> Result<Vec<String>, String> {
        self.parameters
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                TemplateParameter::Literal(v) => Ok(v.clone()),
                TemplateParameter::OrderField(f) => Ok(f.of(order)),
                TemplateParameter::ContactField { field, fallback } => field
                    .of(contact)
                    .or_else(|| fallback.clone())
                    .ok_or_else(|| {
                        format!(
                            "parameter {}: the contact has no {} and the rule gives no fallback",
                            i + 1,
                            field.as_string()
                        )
                    }),
            })
            .collect()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "on": self.on.as_str(),
            "status": self.status,
            "template": {"name": self.template.name, "language": self.template.language},
            "parameters": self.parameters.iter().map(TemplateParameter::to_json).collect::<Vec<_>>(),
        })
    }
}

/// An order status as a shop names it: 1 to 40 lowercase letters, digits, `-` and `_`
/// (WooCommerce's `processing`, `on-hold`, `completed`, … and plugins' own).
pub fn parse_order_status(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "must be an order status: 1 to 40 lowercase letters, digits, - and _ (like processing or on-hold)",
        ))
    }
}

/// Parses a list of rules as an admin sends them (JSON), collecting every problem, each named
/// by the rule's index (`rules`: "rule 0: …").
pub fn parse_rules(raw: &Value) -> Result<Vec<Rule>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let at = |i: usize, m: String| FieldError::new("rules", format!("rule {i}: {m}"));
    let Some(list) = raw.as_array() else {
        return Err(vec![FieldError::new("rules", "must be a list of rules")]);
    };
    if list.len() > MAX_RULES {
        return Err(vec![FieldError::new(
            "rules",
            format!("at most {MAX_RULES} rules"),
        )]);
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let Some(o) = r.as_object() else {
            errors.push(at(i, "must be an object".into()));
            continue;
        };
        if let Some(k) = o
            .keys()
            .find(|k| !["on", "status", "template", "parameters"].contains(&k.as_str()))
        {
            errors.push(at(i, format!("unknown field {k:?}")));
        }
        let on = o
            .get("on")
            .and_then(Value::as_str)
            .and_then(RuleTrigger::parse);
        if on.is_none() {
            errors.push(at(
                i,
                "on must be order.created or order.status_changed".into(),
            ));
        }
        let status = match o.get("status") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_order_status("status", s).map(Some),
            Some(_) => Err(FieldError::new("status", "must be a string")),
        };
        let status = status.unwrap_or_else(|e| {
            errors.push(at(i, format!("status {}", e.message)));
            None
        });
        let template = match o.get("template") {
            Some(Value::Object(t)) => {
                let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
                let language = t
                    .get("language")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let mut ok = true;
                if t.keys().any(|k| k != "name" && k != "language") {
                    errors.push(at(i, "template takes only name and language".into()));
                    ok = false;
                }
                if let Err(m) = check_template_name(name) {
                    errors.push(at(i, m));
                    ok = false;
                }
                if let Err(m) = check_language(language) {
                    errors.push(at(i, m));
                    ok = false;
                }
                ok.then(|| TemplateRef {
                    name: name.to_owned(),
                    language: language.to_owned(),
                })
            }
            _ => {
                errors.push(at(i, "template must be an object {name, language}".into()));
                None
            }
        };
        let parameters = match o.get("parameters") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(ps)) if ps.len() <= MAX_PARAMETERS => {
                let mut out = Vec::with_capacity(ps.len());
                for (j, p) in ps.iter().enumerate() {
                    match parse_parameter(p) {
                        Ok(p) => out.push(p),
                        Err(m) => errors.push(at(i, format!("parameter {}: {m}", j + 1))),
                    }
                }
                (out.len() == ps.len()).then_some(out)
            }
            Some(_) => {
                errors.push(at(
                    i,
                    format!("parameters must be a list of at most {MAX_PARAMETERS}"),
                ));
                None
            }
        };
        if let (Some(on), Some(template), Some(parameters)) = (on, template, parameters) {
            out.push(Rule {
                on,
                status,
                template,
                parameters,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Meta's template name format: lowercase letters, digits and underscores, at most 512.
pub(super) fn check_template_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(()).ok_or_else(|| {
        "template.name must be 1 to 512 lowercase letters, digits and underscores".into()
    })
}

/// A language code as Meta writes them: `en`, `en_US`, `pt_BR`, `zh_Hant_HK`.
pub(super) fn check_language(code: &str) -> Result<(), String> {
    let mut parts = code.split('_');
    let first = parts.next().unwrap_or_default();
    let ok = (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .all(|p| (2..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && code.len() <= 16;
    ok.then_some(()).ok_or_else(|| {
        "template.language must be a language code such as en, en_US or pt_BR".into()
    })
}

/// One template parameter (`literal`, `contact_field` or `order_field`); campaigns refuse the
/// last (`campaign::parse_parameters`).
pub fn parse_parameter(p: &Value) -> Result<TemplateParameter, String> {
    let Some(o) = p.as_object() else {
        return Err("must be an object with a type".into());
    };
    let text = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= MAX_PARAMETER_CHARS => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(format!(
                "{k} must be a string of at most {MAX_PARAMETER_CHARS} characters"
            )),
        }
    };
    let allowed: &[&str] = match o.get("type").and_then(Value::as_str) {
        Some("literal") => &["type", "value"],
        Some("contact_field") => &["type", "field", "fallback"],
        Some("order_field") => &["type", "field"],
        _ => return Err("type must be literal, contact_field or order_field".into()),
    };
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field {k:?}"));
    }
    match o.get("type").and_then(Value::as_str) {
        Some("literal") => match text("value")? {
            Some(v) if !v.trim().is_empty() => Ok(TemplateParameter::Literal(v)),
            _ => Err("a literal needs a value (not empty)".into()),
        },
        Some("contact_field") => {
            let field = o
                .get("field")
                .and_then(Value::as_str)
                .and_then(ContactField::parse)
                .ok_or("field must be name, phone, email or custom_attributes.<key>")?;
            let fallback = text("fallback")?.filter(|f| !f.trim().is_empty());
            Ok(TemplateParameter::ContactField { field, fallback })
        }
        _ => {
            let field = o
                .get("field")
                .and_then(Value::as_str)
                .and_then(OrderField::parse)
                .ok_or("field must be number, status, total or currency")?;
            Ok(TemplateParameter::OrderField(field))
        }
    }
}

/// Rules read back from the database (written by [`parse_rules`], so they parse; a row that
/// no longer does is skipped rather than failing the read).
pub fn rules_from_stored(stored: &Value) -> Vec<Rule> {
    match stored.as_array() {
        Some(list) => list
            .iter()
            .filter_map(|r| parse_rules(&Value::Array(vec![r.clone()])).ok())
            .flatten()
            .collect(),
        None => Vec::new(),
    }
}
