//! What a webhook payload says: the customer messages and status changes of each change,
//! read leniently (a malformed item is noted and skipped, never the whole POST).

use palisade_store::messaging;
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;

/// A customer message found in a payload, checked, waiting to be stored.
pub(super) struct Incoming<'a> {
    /// Index of its event in the batch (for notes).
    pub(super) event: usize,
    pub(super) message: &'a Value,
    pub(super) wamid: &'a str,
    pub(super) from: &'a str,
    pub(super) profile: Option<&'a str>,
    pub(super) sent_at: Option<OffsetDateTime>,
}

/// A status found in a payload.
pub(super) struct StatusChange<'a> {
    pub(super) wamid: &'a str,
    pub(super) status: &'a str,
    pub(super) error: Option<Value>,
}

fn unix_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    let secs = match v? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The well-formed messages of a change `value` (those without an id or a phone-number sender
/// are noted and skipped), with their sender's WhatsApp profile name.
pub(super) fn incoming<'a>(
    event: usize,
    value: &'a Value,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<Incoming<'a>> {
    let Some(list) = value.get("messages").and_then(Value::as_array) else {
        return Vec::new();
    };
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
    let mut out = Vec::with_capacity(list.len());
    for (mi, m) in list.iter().enumerate() {
        let (Some(wamid), Some(from)) = (
            m.get("id").and_then(Value::as_str),
            m.get("from").and_then(Value::as_str),
        ) else {
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
            wamid,
            from,
            profile,
            sent_at: unix_time(m.get("timestamp")),
        });
    }
    out
}

/// The statuses of a change `value` that can move a message (`played` and future values are
/// ignored; entries without an id or status are noted and skipped).
pub(super) fn status_changes<'a>(
    value: &'a Value,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<StatusChange<'a>> {
    let Some(list) = value.get("statuses").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (si, st) in list.iter().enumerate() {
        let (Some(wamid), Some(status)) = (
            st.get("id").and_then(Value::as_str),
            st.get("status").and_then(Value::as_str),
        ) else {
            notes.push(format!("{at}.statuses[{si}]: no id or status, skipped"));
            continue;
        };
        if messaging::status_rank(status).is_none() {
            continue;
        }
        let error = (status == "failed")
            .then(|| st.get("errors").cloned())
            .flatten();
        out.push(StatusChange {
            wamid,
            status,
            error,
        });
    }
    out
}
