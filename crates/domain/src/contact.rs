//! What a contact is made of: an E.164 phone number, tags and custom attributes, each parsed
//! once at the edge with every limit enforced here, and the [`Contact`] entity they make up.
//!
//! Values read back from the database are taken with `from_stored`, never parsed again: a row
//! written before a rule was tightened (or by inbound processing, which takes the sender's
//! number from Meta) must stay readable, and a read that failed on it would hide the contact
//! from the very people who could fix it.

use crate::{Consent, ContactId, EmailAddress, FieldError, PersonName, TenantId};
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// A person a tenant talks to on WhatsApp.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: ContactId,
    pub tenant_id: TenantId,
    /// Unique in the tenant.
    pub phone: PhoneNumber,
    /// WhatsApp's id of the sender, as Meta sends it (never validated: Meta's, not ours);
    /// absent for contacts that have not written.
    pub wa_id: Option<String>,
    pub name: Option<PersonName>,
    /// The name the person set in WhatsApp, as Meta sends it (never validated).
    pub wa_profile_name: Option<String>,
    pub email: Option<EmailAddress>,
    pub tags: Tags,
    pub custom_attributes: CustomAttributes,
    pub consent: Consent,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Contact {
    /// A new contact of `tenant` with nothing but its phone (consent never asked).
    pub fn new(tenant_id: TenantId, phone: PhoneNumber, now: OffsetDateTime) -> Self {
        Contact {
            id: ContactId::new(),
            tenant_id,
            phone,
            wa_id: None,
            name: None,
            wa_profile_name: None,
            email: None,
            tags: Tags::default(),
            custom_attributes: CustomAttributes::default(),
            consent: Consent::Unknown,
            created_at: now,
            updated_at: now,
        }
    }

    /// Gives the contact another number. WhatsApp's id and profile name belong to the old
    /// number's account; keeping the id would send replies to the old number.
    pub fn change_phone(&mut self, phone: PhoneNumber) {
        if phone != self.phone {
            self.phone = phone;
            self.wa_id = None;
            self.wa_profile_name = None;
        }
    }
}

/// A phone number in E.164: `+` and 8 to 15 digits, the first not 0. Input may carry spaces,
/// dashes, dots and parentheses (`+1 (555) 010-0199`), which are dropped; anything else is
/// refused, including a missing `+` (a number without its country code is ambiguous).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                field,
                "must be an E.164 number: + then 8 to 15 digits with the country code, e.g. +447700900123",
            )
        };
        let s = raw.trim();
        let rest = s.strip_prefix('+').ok_or_else(bad)?;
        let mut digits = String::with_capacity(15);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(bad()),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(bad());
        }
        Ok(Self(format!("+{digits}")))
    }

    /// A number read back from the database, taken as stored (see the module comment).
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 50;

/// A contact's tags: trimmed, lower-cased, deduplicated (first occurrence kept), at most 50,
/// each 1 to 50 characters of letters, digits, spaces, `-`, `_`, `.`, `:` and `/`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<String>);

impl Tags {
    pub fn parse(field: &'static str, raw: &[String]) -> Result<Self, FieldError> {
        let mut out: Vec<String> = Vec::new();
        for t in raw {
            let t = t.trim().to_lowercase();
            let n = t.chars().count();
            if n == 0 || n > MAX_TAG_CHARS {
                return Err(FieldError::new(
                    field,
                    format!("each tag must be 1 to {MAX_TAG_CHARS} characters"),
                ));
            }
            if !t
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ':' | '/'))
            {
                return Err(FieldError::new(
                    field,
                    format!("tag {t:?} may contain only letters, digits, spaces and - _ . : /"),
                ));
            }
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.len() > MAX_TAGS {
            return Err(FieldError::new(field, format!("at most {MAX_TAGS} tags")));
        }
        Ok(Self(out))
    }

    /// One tag, as a filter: normalised like a stored tag.
    pub fn parse_one(field: &'static str, raw: &str) -> Result<String, FieldError> {
        let t = Self::parse(field, &[raw.to_owned()])?;
        Ok(t.0.into_iter().next().unwrap_or_default())
    }

    /// Tags read back from the database, taken as stored (see the module comment).
    pub fn from_stored(stored: Vec<String>) -> Self {
        Self(stored)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

pub const MAX_ATTRIBUTES: usize = 50;
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
pub const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;

/// Custom attributes: a flat JSON object of at most 50 keys (1 to 64 characters, no control
/// characters) whose values are strings, numbers, booleans or null — no nested objects or
/// arrays, so every attribute is one column in an export and one filter in a CRM — and whose
/// compact JSON is at most 8 KiB.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct CustomAttributes(Map<String, Value>);

impl CustomAttributes {
    pub fn parse(field: &'static str, raw: Value) -> Result<Self, FieldError> {
        let Value::Object(map) = raw else {
            return Err(FieldError::new(field, "must be a JSON object"));
        };
        if map.len() > MAX_ATTRIBUTES {
            return Err(FieldError::new(
                field,
                format!("at most {MAX_ATTRIBUTES} keys"),
            ));
        }
        for (k, v) in &map {
            let n = k.chars().count();
            if n == 0 || n > MAX_ATTRIBUTE_KEY_CHARS || k.chars().any(char::is_control) {
                return Err(FieldError::new(
                    field,
                    format!(
                        "keys must be 1 to {MAX_ATTRIBUTE_KEY_CHARS} characters without control characters"
                    ),
                ));
            }
            if v.is_object() || v.is_array() {
                return Err(FieldError::new(
                    field,
                    format!("{k:?}: values must be strings, numbers, booleans or null, not objects or arrays"),
                ));
            }
        }
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > MAX_ATTRIBUTES_BYTES {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON (is {size})"),
            ));
        }
        Ok(Self(map))
    }

    /// Attributes read back from the database, taken as stored (see the module comment).
    pub fn from_stored(stored: Map<String, Value>) -> Self {
        Self(stored)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phones_are_normalised_to_e164() {
        for (raw, want) in [
            ("+447700900123", "+447700900123"),
            (" +1 (555) 010-0199 ", "+15550100199"),
            ("+49.30.1234567", "+49301234567"),
            ("+12345678", "+12345678"),
            ("+123456789012345", "+123456789012345"),
        ] {
            assert_eq!(PhoneNumber::parse("phone", raw).unwrap().as_str(), want);
        }
    }

    #[test]
    fn bad_phones_are_refused() {
        for raw in [
            "",
            "447700900123",
            "+",
            "+1234567",
            "+1234567890123456",
            "+0447700900123",
            "+44 7700 900123 ext 5",
            "+44/7700900123",
            "++447700900123",
            "+４４7700900123",
        ] {
            let e = PhoneNumber::parse("phone", raw).unwrap_err();
            assert_eq!(e.field, "phone", "{raw}");
        }
    }

    #[test]
    fn tags_are_normalised_and_bounded() {
        let t = Tags::parse(
            "tags",
            &[
                " VIP ".into(),
                "vip".into(),
                "Lead:Hot".into(),
                "são paulo".into(),
            ],
        )
        .unwrap();
        assert_eq!(t.as_slice(), ["vip", "lead:hot", "são paulo"]);
        assert!(Tags::parse("tags", &["  ".into()]).is_err());
        assert!(Tags::parse("tags", &["x".repeat(51)]).is_err());
        assert!(Tags::parse("tags", &["a\"b".into()]).is_err());
        assert!(Tags::parse("tags", &["a%b".into()]).is_err());
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse("tags", &many).is_err());
        let dup: Vec<String> = (0..60).map(|i| format!("T{}", i % 50)).collect();
        assert_eq!(Tags::parse("tags", &dup).unwrap().as_slice().len(), 50);
    }

    #[test]
    fn attributes_are_flat_small_objects() {
        let ok = json!({"plan": "gold", "seats": 3, "vip": true, "note": null});
        assert_eq!(
            CustomAttributes::parse("a", ok.clone())
                .unwrap()
                .into_value(),
            ok
        );
        assert!(CustomAttributes::parse("a", json!([1])).is_err());
        assert!(CustomAttributes::parse("a", json!({"x": {"y": 1}})).is_err());
        assert!(CustomAttributes::parse("a", json!({"x": [1]})).is_err());
        assert!(CustomAttributes::parse("a", json!({"": 1})).is_err());
        assert!(CustomAttributes::parse("a", json!({"k".repeat(65): 1})).is_err());
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(CustomAttributes::parse("a", Value::Object(many)).is_err());
        let big = json!({"k": "x".repeat(8200)});
        assert!(CustomAttributes::parse("a", big).is_err());
    }
}
