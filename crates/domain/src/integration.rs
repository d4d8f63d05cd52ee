//! Store integrations: an online shop (WooCommerce) that tells Palisade about its orders by
//! signed webhooks, and the rules that turn an order event into a WhatsApp template message.
//!
//! Everything the shop or an admin sends is parsed here once: an integration's name, its
//! rules (the trigger, an optional order status, the template and its parameters), and a
//! billing phone number written the way shoppers write them (national, with the billing
//! country) into E.164. The order itself is recorded as the shop sent it (`status` is the
//! shop's own word: WooCommerce plugins add statuses), bounded in length.

use crate::text::parse_display_text;
use crate::{Contact, ContactId, FieldError, IntegrationId, OrderId, PhoneNumber, TenantId};
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// Which shop software an integration speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    WooCommerce,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 1] = [IntegrationKind::WooCommerce];

    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::WooCommerce => "woocommerce",
        }
    }

    pub fn parse(s: &str) -> Option<IntegrationKind> {
        IntegrationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(IntegrationKind, "integration kind");

/// A shop connected to a tenant. The secret signs the shop's webhooks; it is kept encrypted
/// (`secret_ciphertext`, bound to the integration's tenant and id) and shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub id: IntegrationId,
    pub tenant_id: TenantId,
    pub kind: IntegrationKind,
    pub name: IntegrationName,
    pub secret_ciphertext: String,
    /// The WhatsApp connection the rules' templates are sent from; `None`: the tenant's only
    /// active connection, if it has exactly one.
    pub connection_id: Option<crate::ConnectionId>,
    pub rules: Vec<Rule>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// 1 to 100 characters of display text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IntegrationName(String);

impl IntegrationName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        parse_display_text(field, raw, 100).map(Self)
    }
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What happened to an order that a rule can react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RuleTrigger {
    /// The first time Palisade hears of the order (whichever topic brought it).
    #[serde(rename = "order.created")]
    OrderCreated,
    /// A later delivery of a known order with another status.
    #[serde(rename = "order.status_changed")]
    OrderStatusChanged,
}

impl RuleTrigger {
    pub const ALL: [RuleTrigger; 2] = [RuleTrigger::OrderCreated, RuleTrigger::OrderStatusChanged];

    pub const fn as_str(self) -> &'static str {
        match self {
            RuleTrigger::OrderCreated => "order.created",
            RuleTrigger::OrderStatusChanged => "order.status_changed",
        }
    }

    pub fn parse(s: &str) -> Option<RuleTrigger> {
        RuleTrigger::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

text_enum!(RuleTrigger, "rule trigger");

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
const MAX_PARAMETER_CHARS: usize = 1024;

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
fn check_template_name(name: &str) -> Result<(), String> {
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
fn check_language(code: &str) -> Result<(), String> {
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

/// Whether a rule's template was queued for an order, and what went wrong if not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Queued for sending (the message's own status follows Meta's).
    Queued,
    /// Not sent: the contact opted out, or has no phone.
    Skipped,
    /// Could not be queued (no connection, template refused, parameter without value).
    Failed,
}

impl NotificationStatus {
    pub const ALL: [NotificationStatus; 3] = [
        NotificationStatus::Queued,
        NotificationStatus::Skipped,
        NotificationStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Queued => "queued",
            NotificationStatus::Skipped => "skipped",
            NotificationStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationStatus> {
        NotificationStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

text_enum!(NotificationStatus, "notification status");

/// An order a shop told Palisade about, on its customer's contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    /// The shop's order id.
    pub external_id: String,
    /// The number the shop shows the customer (often the id).
    pub number: String,
    pub status: String,
    /// A decimal amount as the shop wrote it (`29.35`).
    pub total: String,
    pub currency: String,
    /// `None` when the order came without a usable phone number.
    pub contact_id: Option<ContactId>,
    /// `2 × T-shirt, 1 × Mug` (at most 500 characters).
    pub line_summary: String,
    pub notification: Option<NotificationStatus>,
    pub notification_error: Option<String>,
    pub message_id: Option<Uuid>,
    /// When the shop last modified the order (WooCommerce's `date_modified_gmt`), if it said.
    pub shop_modified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Order {
    /// Whether a delivery describing the order as of `shop_modified_at` is older than what is
    /// stored, so applying it would put an older state back. Equal times are not stale (the
    /// shop's clock has whole seconds: two changes within one second both apply, in arrival
    /// order), and a side without a time cannot be compared, so it applies.
    pub fn is_newer_than(&self, shop_modified_at: Option<OffsetDateTime>) -> bool {
        matches!((self.shop_modified_at, shop_modified_at), (Some(stored), Some(incoming)) if incoming < stored)
    }
}

/// The calling code of an ISO 3166-1 alpha-2 country (`GB` → 44).
pub fn calling_code(country: &str) -> Option<u16> {
    const CODES: &[(u16, &str)] = &[
        (
            1,
            "US CA AG AI AS BB BM BS DM DO GD GU JM KN KY LC MP MS PR SX TC TT VC VG VI",
        ),
        (7, "RU KZ"),
        (20, "EG"),
        (27, "ZA"),
        (30, "GR"),
        (31, "NL"),
        (32, "BE"),
        (33, "FR"),
        (34, "ES"),
        (36, "HU"),
        (39, "IT VA"),
        (40, "RO"),
        (41, "CH"),
        (43, "AT"),
        (44, "GB GG IM JE"),
        (45, "DK"),
        (46, "SE"),
        (47, "NO SJ"),
        (48, "PL"),
        (49, "DE"),
        (51, "PE"),
        (52, "MX"),
        (53, "CU"),
        (54, "AR"),
        (55, "BR"),
        (56, "CL"),
        (57, "CO"),
        (58, "VE"),
        (60, "MY"),
        (61, "AU CX CC"),
        (62, "ID"),
        (63, "PH"),
        (64, "NZ"),
        (65, "SG"),
        (66, "TH"),
        (81, "JP"),
        (82, "KR"),
        (84, "VN"),
        (86, "CN"),
        (90, "TR"),
        (91, "IN"),
        (92, "PK"),
        (93, "AF"),
        (94, "LK"),
        (95, "MM"),
        (98, "IR"),
        (211, "SS"),
        (212, "MA EH"),
        (213, "DZ"),
        (216, "TN"),
        (218, "LY"),
        (220, "GM"),
        (221, "SN"),
        (222, "MR"),
        (223, "ML"),
        (224, "GN"),
        (225, "CI"),
        (226, "BF"),
        (227, "NE"),
        (228, "TG"),
        (229, "BJ"),
        (230, "MU"),
        (231, "LR"),
        (232, "SL"),
        (233, "GH"),
        (234, "NG"),
        (235, "TD"),
        (236, "CF"),
        (237, "CM"),
        (238, "CV"),
        (239, "ST"),
        (240, "GQ"),
        (241, "GA"),
        (242, "CG"),
        (243, "CD"),
        (244, "AO"),
        (245, "GW"),
        (246, "IO"),
        (248, "SC"),
        (249, "SD"),
        (250, "RW"),
        (251, "ET"),
        (252, "SO"),
        (253, "DJ"),
        (254, "KE"),
        (255, "TZ"),
        (256, "UG"),
        (257, "BI"),
        (258, "MZ"),
        (260, "ZM"),
        (261, "MG"),
        (262, "RE YT"),
        (263, "ZW"),
        (264, "NA"),
        (265, "MW"),
        (266, "LS"),
        (267, "BW"),
        (268, "SZ"),
        (269, "KM"),
        (290, "SH"),
        (291, "ER"),
        (297, "AW"),
        (298, "FO"),
        (299, "GL"),
        (350, "GI"),
        (351, "PT"),
        (352, "LU"),
        (353, "IE"),
        (354, "IS"),
        (355, "AL"),
        (356, "MT"),
        (357, "CY"),
        (358, "FI AX"),
        (359, "BG"),
        (370, "LT"),
        (371, "LV"),
        (372, "EE"),
        (373, "MD"),
        (374, "AM"),
        (375, "BY"),
        (376, "AD"),
        (377, "MC"),
        (378, "SM"),
        (380, "UA"),
        (381, "RS"),
        (382, "ME"),
        (383, "XK"),
        (385, "HR"),
        (386, "SI"),
        (387, "BA"),
        (389, "MK"),
        (420, "CZ"),
        (421, "SK"),
        (423, "LI"),
        (500, "FK"),
        (501, "BZ"),
        (502, "GT"),
        (503, "SV"),
        (504, "HN"),
        (505, "NI"),
        (506, "CR"),
        (507, "PA"),
        (508, "PM"),
        (509, "HT"),
        (590, "GP BL MF"),
        (591, "BO"),
        (592, "GY"),
        (593, "EC"),
        (594, "GF"),
        (595, "PY"),
        (596, "MQ"),
        (597, "SR"),
        (598, "UY"),
        (599, "CW BQ"),
        (670, "TL"),
        (672, "NF"),
        (673, "BN"),
        (674, "NR"),
        (675, "PG"),
        (676, "TO"),
        (677, "SB"),
        (678, "VU"),
        (679, "FJ"),
        (680, "PW"),
        (681, "WF"),
        (682, "CK"),
        (683, "NU"),
        (685, "WS"),
        (686, "KI"),
        (687, "NC"),
        (688, "TV"),
        (689, "PF"),
        (690, "TK"),
        (691, "FM"),
        (692, "MH"),
        (850, "KP"),
        (852, "HK"),
        (853, "MO"),
        (855, "KH"),
        (856, "LA"),
        (880, "BD"),
        (886, "TW"),
        (960, "MV"),
        (961, "LB"),
        (962, "JO"),
        (963, "SY"),
        (964, "IQ"),
        (965, "KW"),
        (966, "SA"),
        (967, "YE"),
        (968, "OM"),
        (970, "PS"),
        (971, "AE"),
        (972, "IL"),
        (973, "BH"),
        (974, "QA"),
        (975, "BT"),
        (976, "MN"),
        (977, "NP"),
        (992, "TJ"),
        (993, "TM"),
        (994, "AZ"),
        (995, "GE"),
        (996, "KG"),
        (998, "UZ"),
    ];
    let c = country.trim().to_ascii_uppercase();
    if c.len() != 2 {
        return None;
    }
    CODES
        .iter()
        .find(|(_, list)| list.split(' ').any(|x| x == c))
        .map(|(code, _)| *code)
}

/// A shopper's phone number in E.164, through [`PhoneNumber::parse`]. A number written with
/// `+` (or `00`) is taken as international; otherwise it is a national number of the billing
/// `country`: its trunk prefix (`0` in most countries; `1` in North America, `8` in Russia,
/// Kazakhstan, Belarus and Lithuania, `06` in Hungary; none in Italy, San Marino, the Vatican
/// and Côte d'Ivoire, where the leading `0` is part of the number) is dropped and the calling
/// code put in front.
pub fn phone_from_billing(
    field: &'static str,
    raw: &str,
    country: Option<&str>,
) -> Result<PhoneNumber, FieldError> {
    let s = raw.trim();
    if s.starts_with('+') {
        return PhoneNumber::parse(field, s);
    }
    let mut digits = String::with_capacity(20);
    for c in s.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return PhoneNumber::parse(field, s),
        }
    }
    if let Some(rest) = digits.strip_prefix("00") {
        return PhoneNumber::parse(field, &format!("+{rest}"));
    }
    let country = country.map(|c| c.trim().to_ascii_uppercase());
    let Some(code) = country.as_deref().and_then(calling_code) else {
        return Err(FieldError::new(
            field,
            "is a national number without a known billing country; it needs its country code",
        ));
    };
    let country = country.unwrap_or_default();
    let national = match (code, country.as_str()) {
        (1, _) if digits.len() == 11 => digits.strip_prefix('1').unwrap_or(&digits),
        (7, _) | (375, _) | (370, _) => digits.strip_prefix('8').unwrap_or(&digits),
        (36, _) => digits.strip_prefix("06").unwrap_or(&digits),
        (_, "IT" | "SM" | "VA" | "CI") => &digits,
        _ => digits.strip_prefix('0').unwrap_or(&digits),
    };
    PhoneNumber::parse(field, &format!("+{code}{national}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn phone(raw: &str, country: &str) -> String {
        phone_from_billing("phone", raw, Some(country))
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|e| format!("error: {}", e.message))
    }

    #[test]
    fn billing_phones_become_e164() {
        assert_eq!(phone("07700 900123", "GB"), "+447700900123");
        assert_eq!(phone("+44 7700 900123", "US"), "+447700900123");
        assert_eq!(phone("0044 7700 900123", "US"), "+447700900123");
        assert_eq!(phone("(555) 010-0199", "US"), "+15550100199");
        assert_eq!(phone("1-555-010-0199", "us"), "+15550100199");
        assert_eq!(phone("06 12 34 56 78", "FR"), "+33612345678");
        assert_eq!(phone("06 123 4567", "IT"), "+39061234567");
        assert_eq!(phone("(11) 91234-5678", "BR"), "+5511912345678");
        assert_eq!(phone("8 916 123-45-67", "RU"), "+79161234567");
        assert!(phone("07700 900123", "").starts_with("error"));
        assert!(phone("07700 900123", "ZZ").starts_with("error"));
        assert!(phone("call me", "GB").starts_with("error"));
        assert!(phone("123", "GB").starts_with("error"));
    }

    #[test]
    fn rules_parse_with_every_problem_named() {
        let ok = parse_rules(&json!([{
            "on": "order.status_changed", "status": "completed",
            "template": {"name": "order_done", "language": "en_US"},
            "parameters": [
                {"type": "contact_field", "field": "name", "fallback": "there"},
                {"type": "order_field", "field": "number"},
                {"type": "literal", "value": "Acme"},
                {"type": "contact_field", "field": "custom_attributes.tier"},
            ],
        }]))
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].parameters.len(), 4);
        assert_eq!(
            rules_from_stored(&Value::Array(ok.iter().map(Rule::to_json).collect())),
            ok
        );

        let errs = parse_rules(&json!([
            {"on": "order.shipped", "template": {"name": "Bad Name", "language": "english"},
             "parameters": [{"type": "literal"}, {"type": "contact_field", "field": "age"}]},
            {"on": "order.created", "status": "Done!", "template": {"name": "x", "language": "en"}, "extra": 1},
        ]))
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.message.clone()).collect();
        for want in [
            "rule 0: on must be",
            "rule 0: template.name",
            "rule 0: template.language",
            "rule 0: parameter 1: a literal needs a value",
            "rule 0: parameter 2: field must be",
            "rule 1: unknown field \"extra\"",
            "rule 1: status must be an order status",
        ] {
            assert!(
                text.iter().any(|t| t.starts_with(want)),
                "{want} not in {text:?}"
            );
        }
        assert!(parse_rules(&json!({})).is_err());
        assert!(parse_rules(&Value::Array(vec![json!({}); MAX_RULES + 1])).is_err());
    }

    #[test]
    fn rules_match_their_trigger_and_status() {
        let r = |on, status: Option<&str>| Rule {
            on,
            status: status.map(str::to_owned),
            template: TemplateRef {
                name: "t".into(),
                language: "en".into(),
            },
            parameters: Vec::new(),
        };
        let changed = OrderEvent::StatusChanged {
            from: "processing".into(),
        };
        assert!(r(RuleTrigger::OrderCreated, None).matches(&OrderEvent::Created, "pending"));
        assert!(!r(RuleTrigger::OrderCreated, None).matches(&changed, "completed"));
        assert!(
            r(RuleTrigger::OrderStatusChanged, Some("completed")).matches(&changed, "completed")
        );
        assert!(
            !r(RuleTrigger::OrderStatusChanged, Some("completed")).matches(&changed, "refunded")
        );
        assert!(!r(RuleTrigger::OrderStatusChanged, None).matches(&OrderEvent::Unchanged, "x"));
    }
}
