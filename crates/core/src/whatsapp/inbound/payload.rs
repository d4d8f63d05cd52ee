//! What a webhook payload says, as typed structs (Meta's shape: `entry[] → changes[] → value
//! → metadata / contacts[] / messages[] / statuses[]`, reference §2), and the customer
//! messages and status changes found in it.
//!
//! Read leniently, exactly as far as the former `serde_json::Value` walk was: unknown fields
//! are ignored; a field of the wrong shape reads as absent (every field goes through one of the
//! `deserialize_with` readers of [`super::lenient`], which never fail on well-formed JSON); a malformed item is
//! noted and skipped, never the whole POST. A body that is not JSON is noted as such, with
//! `serde_json`'s own message.
//!
//! Each message's own JSON is kept whole (`messages` is read as a list of `Value`s), because
//! it is stored as the message's body and read again later (media jobs, consent keywords);
//! [`MessageFields`] is the typed view of it. Everything else is never built as a `Value`.
//!
//! One difference from reading the whole body as a `Value` first: `serde_json` skips fields
//! that no struct here names without building them, so only in those it does not refuse a
//! number beyond `f64`, a lone UTF-16 surrogate escape or nesting deeper than 128 levels. Such
//! a body (Meta never sends one, and it must carry the app secret's signature) is now
//! processed instead of being noted as not JSON. Invalid UTF-8 is still refused everywhere.

use super::lenient;
use crate::templates::TemplateChange;
use palisade_domain::{ConnectionId, MessageStatus};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use time::OffsetDateTime;

/// A webhook POST's body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Notification<'a> {
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) object: Option<Cow<'a, str>>,
    /// `None` when missing or not an array.
    #[serde(borrow, deserialize_with = "lenient::objects")]
    pub(super) entry: Option<Vec<Entry<'a>>>,
}

/// One WhatsApp Business Account's part of a notification.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Entry<'a> {
    #[serde(borrow, deserialize_with = "lenient::objects")]
    pub(super) changes: Option<Vec<Change<'a>>>,
}

/// One change: `field` names what changed (only `messages` is handled).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Change<'a> {
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) field: Option<Cow<'a, str>>,
    /// `Some` whenever the key is present, whatever its shape (a non-object reads as empty).
    #[serde(borrow, deserialize_with = "lenient::object")]
    pub(super) value: Option<ChangeValue<'a>>,
}

/// What a `messages` change carries.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ChangeValue<'a> {
    #[serde(borrow, deserialize_with = "lenient::object")]
    pub(super) metadata: Option<Metadata<'a>>,
    #[serde(borrow, deserialize_with = "lenient::objects")]
    pub(super) contacts: Option<Vec<Contact<'a>>>,
    /// Each message's JSON as it came (see the module docs).
    #[serde(deserialize_with = "lenient::values")]
    pub(super) messages: Option<Vec<Value>>,
    #[serde(borrow, deserialize_with = "lenient::objects")]
    pub(super) statuses: Option<Vec<Status<'a>>>,
    #[serde(deserialize_with = "lenient::present")]
    pub(super) errors: Option<Value>,
    // Meta's template webhooks (`message_template_status_update`,
    // `message_template_quality_update`, `template_category_update`).
    /// Meta's id of the template: a number in Meta's payloads (a string is read too).
    #[serde(deserialize_with = "lenient::present")]
    pub(super) message_template_id: Option<Value>,
    /// The new status of a status update.
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) event: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) reason: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) new_quality_score: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) new_category: Option<Cow<'a, str>>,
}

/// The business number a change is for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Metadata<'a> {
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) phone_number_id: Option<Cow<'a, str>>,
}

/// A sender's WhatsApp profile.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Contact<'a> {
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) wa_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "lenient::object")]
    pub(super) profile: Option<Profile<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Profile<'a> {
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) name: Option<Cow<'a, str>>,
}

/// A status update of a message this business sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Status<'a> {
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "lenient::text")]
    pub(super) status: Option<Cow<'a, str>>,
    #[serde(deserialize_with = "lenient::present")]
    pub(super) errors: Option<Value>,
}

/// The fields Palisade reads from a customer message: a typed view of its JSON, read from
/// the `Value` kept for storage (so its strings are borrowed from that value).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MessageFields<'a> {
    #[serde(borrow, deserialize_with = "lenient::str_of_value")]
    pub(super) id: Option<&'a str>,
    #[serde(borrow, deserialize_with = "lenient::str_of_value")]
    pub(super) from: Option<&'a str>,
    /// Unix seconds, as a string (Meta's form) or a number.
    #[serde(deserialize_with = "lenient::unix_time")]
    pub(super) timestamp: Option<OffsetDateTime>,
    #[serde(rename = "type", borrow, deserialize_with = "lenient::str_of_value")]
    pub(super) kind: Option<&'a str>,
    #[serde(borrow, deserialize_with = "lenient::object")]
    pub(super) text: Option<TextBody<'a>>,
    #[serde(borrow, deserialize_with = "lenient::object")]
    pub(super) context: Option<Context<'a>>,
    #[serde(deserialize_with = "lenient::present")]
    pub(super) errors: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TextBody<'a> {
    #[serde(borrow, deserialize_with = "lenient::str_of_value")]
    pub(super) body: Option<&'a str>,
}

/// The message a reply answers.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Context<'a> {
    #[serde(borrow, deserialize_with = "lenient::str_of_value")]
    pub(super) id: Option<&'a str>,
}

/// Reads a body. `Err` is the note to keep: the body is not JSON.
///
/// Read straight into the structs; only if that fails (not JSON, or a key repeated in an
/// object, which derived structs refuse) is the body read as a `Value`, which keeps the last of
/// repeated keys and gives the note its wording, and the structs are read from that.
pub(super) fn read(body: &[u8]) -> Result<Notification<'_>, String> {
    if std::str::from_utf8(body).is_ok() {
        if let Ok(n) = serde_json::from_slice::<Notification<'_>>(body) {
            return Ok(n);
        }
    }
    let value =
        serde_json::from_slice::<Value>(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    Notification::deserialize(value).map_err(|e| format!("the body is not JSON: {e}"))
}

/// The messages and statuses of every `messages` change of a payload for the number
/// `phone_number_id` (connection `connection`, for the logs); what is skipped goes to `notes`.
pub(super) fn changes<'a>(
    event: usize,
    connection: ConnectionId,
    phone_number_id: &str,
    payload: &'a Notification<'_>,
    notes: &mut Vec<String>,
) -> (Vec<Incoming<'a>>, Vec<StatusChange<'a>>) {
    let (mut messages, mut statuses) = (Vec::new(), Vec::new());
    if payload.object.as_deref() != Some("whatsapp_business_account") {
        notes.push("object is not whatsapp_business_account".to_owned());
        return (messages, statuses);
    }
    let Some(entries) = &payload.entry else {
        notes.push("no entry array".to_owned());
        return (messages, statuses);
    };
    for (ei, entry) in entries.iter().enumerate() {
        for (ci, change) in entry.changes.iter().flatten().enumerate() {
            let at = format!("entry[{ei}].changes[{ci}]");
            let field = change.field.as_deref().unwrap_or("");
            if TEMPLATE_FIELDS.contains(&field) {
                continue; // read by `template_changes`
            }
            if field != "messages" {
                tracing::debug!(field, "WhatsApp webhook field not handled yet");
                continue;
            }
            let Some(value) = &change.value else {
                notes.push(format!("{at}: no value"));
                continue;
            };
            let pid = value
                .metadata
                .as_ref()
                .and_then(|m| m.phone_number_id.as_deref());
            if pid != Some(phone_number_id) {
                notes.push(format!("{at}: for another phone number id, skipped"));
                continue;
            }
            messages.extend(incoming(event, value, &at, notes));
            statuses.extend(status_changes(value, &at, notes));
            if let Some(errors) = &value.errors {
                tracing::warn!(%connection, %errors, "WhatsApp reported errors");
            }
        }
    }
    (messages, statuses)
}

/// The webhook fields about message templates.
const TEMPLATE_FIELDS: [&str; 3] = [
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
];

/// The template changes of a payload (Meta's template webhooks carry no phone number id: they
/// are for the connection's WABA, and the connection is the one the webhook was posted to);
/// what is skipped goes to `notes`.
pub(super) fn template_changes(
    payload: &Notification<'_>,
    notes: &mut Vec<String>,
) -> Vec<TemplateChange> {
    use crate::templates::TemplateChangeKind as K;
    let mut out = Vec::new();
    if payload.object.as_deref() != Some("whatsapp_business_account") {
        return out;
    }
    for (ei, entry) in payload.entry.iter().flatten().enumerate() {
        for (ci, change) in entry.changes.iter().flatten().enumerate() {
            let field = change.field.as_deref().unwrap_or("");
            if !TEMPLATE_FIELDS.contains(&field) {
                continue;
            }
            let at = format!("entry[{ei}].changes[{ci}]");
            let Some(value) = &change.value else {
                notes.push(format!("{at}: no value"));
                continue;
            };
            let meta_id = match &value.message_template_id {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            };
            let Some(meta_id) = meta_id.filter(|id| id.len() <= 64) else {
                notes.push(format!("{at}: {field} without a message_template_id"));
                continue;
            };
            let text = |v: &Option<Cow<'_, str>>| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.len() <= 500)
                    .map(str::to_owned)
            };
            let kind = match field {
                "message_template_status_update" => text(&value.event).map(|status| K::Status {
                    status,
                    reason: text(&value.reason),
                }),
                "message_template_quality_update" => {
                    text(&value.new_quality_score).map(|score| K::Quality { score })
                }
                _ => text(&value.new_category).map(|category| K::Category { category }),
            };
            match kind {
                Some(change) => out.push(TemplateChange { meta_id, change }),
                None => notes.push(format!("{at}: {field} without its new value")),
            }
        }
    }
    out
}

/// A customer message found in a payload, checked, waiting to be stored.
pub(super) struct Incoming<'a> {
    /// Index of its event in the batch (for notes).
    pub(super) event: usize,
    /// Its JSON as it came (stored as the message body).
    pub(super) message: &'a Value,
    pub(super) fields: MessageFields<'a>,
    pub(super) wamid: &'a str,
    pub(super) from: &'a str,
    pub(super) profile: Option<&'a str>,
}

/// A status found in a payload.
pub(super) struct StatusChange<'a> {
    pub(super) wamid: &'a str,
    pub(super) status: MessageStatus,
    pub(super) error: Option<Value>,
}

/// The well-formed messages of a change `value` (those without an id or a phone-number sender
/// are noted and skipped), with their sender's WhatsApp profile name.
fn incoming<'a>(
    event: usize,
    value: &'a ChangeValue<'_>,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<Incoming<'a>> {
    let Some(list) = &value.messages else {
        return Vec::new();
    };
    let profiles: HashMap<&str, &str> = value
        .contacts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let name = c.profile.as_ref()?.name.as_deref()?;
            Some((c.wa_id.as_deref()?, name))
        })
        .collect();
    let mut out = Vec::with_capacity(list.len());
    for (mi, m) in list.iter().enumerate() {
        let fields = view(m);
        let (Some(wamid), Some(from)) = (fields.id, fields.from) else {
            notes.push(format!("{at}.messages[{mi}]: no id or from, skipped"));
            continue;
        };
        if from.len() < 5 || from.len() > 15 || !from.bytes().all(|b| b.is_ascii_digit()) {
            notes.push(format!(
                "{at}.messages[{mi}]: from is not a phone number, skipped"
            ));
            continue;
        }
        let profile = profiles.get(from).copied().or_else(|| {
            // `from` and `wa_id` "may not always match"; with one contact, it is theirs.
            (profiles.len() == 1)
                .then(|| profiles.values().next().copied())
                .flatten()
        });
        out.push(Incoming {
            event,
            message: m,
            fields,
            wamid,
            from,
            profile,
        });
    }
    out
}

/// The statuses of a change `value` that can move a message (`played` and future values are
/// ignored; entries without an id or status are noted and skipped).
fn status_changes<'a>(
    value: &'a ChangeValue<'_>,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<StatusChange<'a>> {
    let Some(list) = &value.statuses else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (si, st) in list.iter().enumerate() {
        let (Some(wamid), Some(status)) = (st.id.as_deref(), st.status.as_deref()) else {
            notes.push(format!("{at}.statuses[{si}]: no id or status, skipped"));
            continue;
        };
        let Some(status) = MessageStatus::from_meta(status) else {
            continue;
        };
        let error = (status == MessageStatus::Failed)
            .then(|| st.errors.clone())
            .flatten();
        out.push(StatusChange {
            wamid,
            status,
            error,
        });
    }
    out
}

/// The typed view of one message's JSON (a non-object reads as empty).
fn view(message: &Value) -> MessageFields<'_> {
    match message {
        // Every field is read leniently, and a `Value` has no repeated keys: this cannot fail.
        Value::Object(_) => MessageFields::deserialize(message).unwrap_or_default(),
        _ => MessageFields::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a payload yields, in a comparable form: notes, messages (wamid, from, profile,
    /// time, type, text, reply-to, errors, body) and statuses (wamid, status, error).
    type Outcome = (Vec<String>, Vec<String>, Vec<String>);

    fn typed(body: &str) -> Outcome {
        let mut notes = Vec::new();
        let payload = match read(body.as_bytes()) {
            Ok(p) => p,
            Err(why) => return (vec![why], Vec::new(), Vec::new()),
        };
        let (messages, statuses) = changes(0, ConnectionId::new(), "PN", &payload, &mut notes);
        let messages = messages
            .iter()
            .map(|m| {
                let kind = m.fields.kind.unwrap_or("unknown");
                let text = (kind == "text")
                    .then(|| m.fields.text.as_ref().and_then(|t| t.body))
                    .flatten();
                let context = m.fields.context.as_ref().and_then(|c| c.id);
                format!(
                    "{} {} {:?} {:?} {kind} {text:?} {context:?} {:?} {}",
                    m.wamid, m.from, m.profile, m.fields.timestamp, m.fields.errors, m.message
                )
            })
            .collect();
        let statuses = statuses
            .iter()
            .map(|s| format!("{} {} {:?}", s.wamid, s.status, s.error))
            .collect();
        (notes, messages, statuses)
    }

    /// The former walk over a `serde_json::Value`, kept here as the reference the typed
    /// payload must match.
    fn walked(body: &str) -> Outcome {
        let payload: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => return (vec![format!("the body is not JSON: {e}")], vec![], vec![]),
        };
        let (mut notes, mut messages, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
        if payload.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
            notes.push("object is not whatsapp_business_account".to_owned());
            return (notes, messages, statuses);
        }
        let Some(entries) = payload.get("entry").and_then(Value::as_array) else {
            notes.push("no entry array".to_owned());
            return (notes, messages, statuses);
        };
        let time = |v: Option<&Value>| {
            let secs = match v? {
                Value::String(s) => s.parse::<i64>().ok()?,
                Value::Number(n) => n.as_i64()?,
                _ => return None,
            };
            OffsetDateTime::from_unix_timestamp(secs).ok()
        };
        for (ei, entry) in entries.iter().enumerate() {
            let changes = entry.get("changes").and_then(Value::as_array);
            for (ci, change) in changes
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let at = format!("entry[{ei}].changes[{ci}]");
                if change.get("field").and_then(Value::as_str) != Some("messages") {
                    continue;
                }
                let Some(value) = change.get("value") else {
                    notes.push(format!("{at}: no value"));
                    continue;
                };
                if value
                    .pointer("/metadata/phone_number_id")
                    .and_then(Value::as_str)
                    != Some("PN")
                {
                    notes.push(format!("{at}: for another phone number id, skipped"));
                    continue;
                }
                let profiles: HashMap<&str, &str> = value
                    .get("contacts")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|c| {
                        Some((
                            c.get("wa_id")?.as_str()?,
                            c.pointer("/profile/name")?.as_str()?,
                        ))
                    })
                    .collect();
                let list = value.get("messages").and_then(Value::as_array);
                for (mi, m) in list
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let (Some(wamid), Some(from)) = (
                        m.get("id").and_then(Value::as_str),
                        m.get("from").and_then(Value::as_str),
                    ) else {
                        notes.push(format!("{at}.messages[{mi}]: no id or from, skipped"));
                        continue;
                    };
                    if from.len() < 5
                        || from.len() > 15
                        || !from.bytes().all(|b| b.is_ascii_digit())
                    {
                        notes.push(format!(
                            "{at}.messages[{mi}]: from is not a phone number, skipped"
                        ));
                        continue;
                    }
                    let profile = profiles.get(from).copied().or_else(|| {
                        (profiles.len() == 1)
                            .then(|| profiles.values().next().copied())
                            .flatten()
                    });
                    let kind = m.get("type").and_then(Value::as_str).unwrap_or("unknown");
                    let text = (kind == "text")
                        .then(|| m.pointer("/text/body").and_then(Value::as_str))
                        .flatten();
                    let context = m.pointer("/context/id").and_then(Value::as_str);
                    messages.push(format!(
                        "{wamid} {from} {profile:?} {:?} {kind} {text:?} {context:?} {:?} {m}",
                        time(m.get("timestamp")),
                        m.get("errors").cloned()
                    ));
                }
                let list = value.get("statuses").and_then(Value::as_array);
                for (si, st) in list
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let (Some(wamid), Some(status)) = (
                        st.get("id").and_then(Value::as_str),
                        st.get("status").and_then(Value::as_str),
                    ) else {
                        notes.push(format!("{at}.statuses[{si}]: no id or status, skipped"));
                        continue;
                    };
                    if MessageStatus::from_meta(status).is_none() {
                        continue;
                    }
                    let error = (status == "failed")
                        .then(|| st.get("errors").cloned())
                        .flatten();
                    statuses.push(format!("{wamid} {status} {error:?}"));
                }
            }
        }
        (notes, messages, statuses)
    }

    fn wrap(value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{value}}}]}}]}}"#
        )
    }

    #[test]
    fn the_typed_payload_reads_what_the_value_walk_read() {
        let meta = r#""messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"PN"}"#;
        let values = [
            // Meta's shapes.
            format!(
                r#"{{{meta},"contacts":[{{"profile":{{"name":"Ana"}},"wa_id":"15551234567"}}],"messages":[{{"from":"15551234567","id":"wamid.A","timestamp":"1700000000","type":"text","text":{{"body":"hi"}}}}]}}"#
            ),
            format!(
                r#"{{{meta},"messages":[{{"from":"15551234567","id":"wamid.B","timestamp":1700000001,"type":"image","image":{{"id":"9","mime_type":"image/jpeg"}},"context":{{"id":"wamid.Q","from":"1"}}}}]}}"#
            ),
            format!(
                r#"{{{meta},"statuses":[{{"id":"wamid.S","status":"delivered","timestamp":"1"}},{{"id":"wamid.T","status":"failed","errors":[{{"code":131047}}]}},{{"id":"wamid.U","status":"played"}},{{"id":"wamid.V","status":"failed","errors":null}}]}}"#
            ),
            format!(
                r#"{{{meta},"messages":[{{"from":"15551234567","id":"wamid.C","type":"unsupported","errors":[{{"code":131051}}]}}],"errors":[{{"code":1}}]}}"#
            ),
            // Wrong shapes, item by item.
            format!(
                r#"{{{meta},"messages":[7,null,{{"id":5,"from":"15551234567"}},{{"id":"wamid.D","from":"+1555"}},{{"id":"wamid.E","from":"15551234567","type":5,"text":"x","timestamp":1.5}},{{"id":"wamid.F","from":"15551234567","type":"text","text":{{"body":7}},"timestamp":"-3","context":[1]}}]}}"#
            ),
            format!(r#"{{{meta},"messages":{{"id":"x"}},"statuses":"no","contacts":7}}"#),
            format!(
                r#"{{{meta},"contacts":[1,{{"wa_id":5,"profile":{{"name":"X"}}}},{{"wa_id":"155","profile":"Y"}},{{"wa_id":"166","profile":{{"name":"Bo"}}}}],"messages":[{{"id":"wamid.G","from":"15559999999","timestamp":18446744073709551615}}]}}"#
            ),
            format!(
                r#"{{{meta},"statuses":[{{"id":"wamid.H"}},[],{{"id":"wamid.I","status":"read","errors":[1]}}]}}"#
            ),
            // Escapes (not borrowable from the body), repeated keys, nulls.
            format!(
                r#"{{{meta},"messages":[{{"id":"wamid.\u0041","from":"1555\u0031234567","type":"te\u0078t","text":{{"body":"a\"b\n"}}}}]}}"#
            ),
            format!(
                r#"{{{meta},"messages":[{{"id":"wamid.1","id":"wamid.2","from":"15551234567"}}]}}"#
            ),
            r#"{"metadata":{"phone_number_id":"PN"},"metadata":{"phone_number_id":"other"}}"#
                .to_owned(),
            r#"{"metadata":{"phone_number_id":"other"}}"#.to_owned(),
            r#"{"metadata":[1]}"#.to_owned(),
            "null".to_owned(),
            "[]".to_owned(),
            r#""x""#.to_owned(),
        ];
        let mut bodies: Vec<String> = values.iter().map(|v| wrap(v)).collect();
        bodies.extend(
            [
                "",
                "{",
                "[1,2]",
                r#"{"object":"page","entry":[]}"#,
                r#"{"object":5}"#,
                r#"{"object":"whatsapp_business_account"}"#,
                r#"{"object":"whatsapp_business_account","entry":{}}"#,
                r#"{"object":"whatsapp_business_account","entry":[1,[],{"changes":5},{"changes":[1,{"field":"statuses"},{"field":"messages"},{"field":"messages","value":null}]}]}"#,
                r#"{"object":"whatsapp_business_account","object":"page","entry":[]}"#,
                r#"{"object":"whatsapp_business_account","entry":[]} x"#,
            ]
            .map(str::to_owned),
        );
        for body in &bodies {
            assert_eq!(typed(body), walked(body), "{body}");
        }
        // Meta's own shapes take the direct path, not the `Value` fallback.
        for body in bodies.iter().take(4) {
            assert!(
                serde_json::from_str::<Notification<'_>>(body).is_ok(),
                "{body}"
            );
        }
        // The corpus reaches the interesting branches.
        let all: Vec<Outcome> = bodies.iter().map(|b| typed(b)).collect();
        assert!(all.iter().map(|o| o.1.len()).sum::<usize>() >= 8);
        assert!(all.iter().map(|o| o.2.len()).sum::<usize>() >= 4);
        assert!(all
            .iter()
            .any(|o| o.0.iter().any(|n| n.starts_with("the body is not JSON"))));
    }

    #[test]
    fn invalid_utf8_is_still_not_json() {
        let body = b"{\"object\":\"whatsapp_business_account\",\"entry\":[],\"x\":\"\xff\"}";
        let Err(why) = read(body) else {
            panic!("read invalid UTF-8");
        };
        assert!(why.starts_with("the body is not JSON"), "{why}");
    }
}
