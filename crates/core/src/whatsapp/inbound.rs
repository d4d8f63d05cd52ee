//! Meta's webhook POSTs: verify, store durably, acknowledge, then process.
//!
//! [`receive`] authenticates the request (HMAC-SHA256 of the exact bytes with the connection's
//! app secret, compared in constant time, before any parsing) and stores the body verbatim in
//! `whatsapp_inbound_events` in one short transaction; the handler then answers 200. Processing
//! ([`process_event`], [`process_pending`]) works only from that durable record: the handler
//! spawns it right away for latency, and a worker on every node ([`spawn_worker`]) picks up
//! whatever is left (a crash between the acknowledgement and the processing loses nothing).
//!
//! Processing turns every change of a (possibly batched) payload into contacts, conversations
//! and messages. It is idempotent: a message is keyed by its wamid per connection, so Meta's
//! redeliveries and duplicates change nothing; statuses only move a message forward
//! (`sent → delivered → read`, or `failed` with Meta's error), never back. Media messages
//! get a download job in the same transaction (`whatsapp::media`), and nothing is sent.

use super::connections::secret_aad;
use crate::audit::{self, AuditEntryExt};
use crate::auth::RequestMeta;
use crate::{AppError, AppResult, Services};
use hmac::{Hmac, Mac};
use palisade_domain::TenantId;
use palisade_store::messaging::{self, NewMessage};
use palisade_store::whatsapp_connections::{self as connections, Connection};
use palisade_store::whatsapp_inbound::{self as store, InboundEvent};
use palisade_store::{audit as audit_log, SystemScope, Tx};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;
use uuid::Uuid;

/// Meta sends up to 3 MB per POST.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// A processing attempt that fails on the database is retried this many times in all.
const MAX_ATTEMPTS: i64 = 5;
const BATCH: i64 = 100;

/// Verifies a webhook POST and stores it. Returns the stored event's id. Refusals are 401 with
/// a precise code and an audit record (`whatsapp.webhook.signature_invalid`), in the
/// connection's tenant chain when the connection exists.
pub async fn receive(
    s: &Services,
    meta: &RequestMeta,
    connection_id: Uuid,
    signature: Option<&str>,
    body: Vec<u8>,
) -> AppResult<Uuid> {
    let mut tx = s
        .store
        .begin_read(SystemScope::new("whatsapp.webhook.receive"))
        .await?;
    let conn = connections::find_any(&mut tx, connection_id).await?;
    drop(tx);
    let refusal = match &conn {
        None => Some(("unknown_connection", "no such WhatsApp connection")),
        Some(c) if c.status != "active" => Some((
            "connection_disconnected",
            "this WhatsApp connection is disconnected",
        )),
        Some(_) if signature.is_none() => {
            Some(("signature_missing", "X-Hub-Signature-256 is required"))
        }
        Some(c) => {
            let secret = s
                .keys
                .encryption
                .decrypt(&c.app_secret_ciphertext, &secret_aad(c, "app_secret"))
                .map_err(|e| anyhow::anyhow!("app secret of connection {}: {e:?}", c.id))?;
            (!signature_valid(&secret, signature.unwrap_or_default(), &body)).then_some((
                "signature_invalid",
                "X-Hub-Signature-256 does not match the body",
            ))
        }
    };
    if let Some((code, message)) = refusal {
        // A refusal for a real connection is a security event in its tenant's log. Requests for
        // made-up connection ids are only traced: anyone can send them, and writing each to the
        // audit log would let them flood it.
        if let Some(c) = &conn {
            let mut tx = s
                .store
                .begin(SystemScope::new("whatsapp.webhook.refused"))
                .await?;
            audit_log::append(
                &mut tx,
                &audit::entry(
                    meta,
                    Some(c.tenant_id),
                    "whatsapp.webhook.signature_invalid",
                )
                .target("whatsapp_connection", connection_id)
                .metadata(serde_json::json!({ "reason": code, "body_bytes": body.len() })),
                s.now(),
            )
            .await?;
            tx.commit().await?;
        }
        tracing::warn!(%connection_id, reason = code, "WhatsApp webhook refused");
        return Err(AppError::Unauthenticated {
            code,
            message: message.into(),
        });
    }
    let Some(conn) = conn else {
        return Err(anyhow::anyhow!("unreachable: refused above").into());
    };
    let event = InboundEvent {
        id: Uuid::now_v7(),
        tenant_id: conn.tenant_id,
        connection_id: conn.id,
        body,
        received_at: s.now(),
        processed_at: None,
        attempts: 0,
        error: None,
    };
    let mut tx = s
        .store
        .begin(SystemScope::new("whatsapp.webhook.receive"))
        .await?;
    store::insert(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(event.id)
}

/// `header` is `sha256=<lowercase hex HMAC-SHA256(secret, body)>`; compared in constant time.
pub fn signature_valid(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Spawns the processing of one stored event (right after the acknowledgement).
pub fn spawn_process(s: &Services, id: Uuid) {
    let s = s.clone();
    tokio::spawn(async move {
        if let Err(e) = process_event(&s, id).await {
            tracing::warn!(error = %e, event = %id, "WhatsApp webhook processing failed; the worker retries it");
        }
    });
}

/// The worker: processes whatever is left unprocessed, every `every`.
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = process_pending(&s).await {
                tracing::warn!(error = %e, "WhatsApp inbound processing round failed");
            }
        }
    })
}

/// Processes every unprocessed event (oldest first). Returns how many were processed.
pub async fn process_pending(s: &Services) -> AppResult<usize> {
    let mut done = 0;
    let mut skipped: HashSet<Uuid> = HashSet::new();
    loop {
        let mut tx = s
            .store
            .begin_read(SystemScope::new("whatsapp.inbound.pending"))
            .await?;
        let ids =
            store::pending(&mut tx, BATCH + i64::try_from(skipped.len()).unwrap_or(0)).await?;
        drop(tx);
        let ids: Vec<Uuid> = ids.into_iter().filter(|id| !skipped.contains(id)).collect();
        if ids.is_empty() {
            return Ok(done);
        }
        for id in ids {
            match process_event(s, id).await {
                Ok(true) => done += 1,
                // Locked by another processor, or retried later.
                Ok(false) | Err(_) => {
                    skipped.insert(id);
                }
            }
        }
    }
}

/// Processes one stored event. `Ok(false)` when it was already processed, is being processed
/// elsewhere, or failed on the database (recorded; retried up to a limit).
pub async fn process_event(s: &Services, id: Uuid) -> AppResult<bool> {
    let now = s.now();
    let mut tx = s
        .store
        .begin(SystemScope::new("whatsapp.inbound.process"))
        .await?;
    let Some(event) = store::claim(&mut tx, id).await? else {
        return Ok(false);
    };
    let outcome = match serde_json::from_slice::<Value>(&event.body) {
        Err(e) => Err(format!("the body is not JSON: {e}")),
        Ok(payload) => match connections::find_any(&mut tx, event.connection_id).await? {
            None => Err("the connection no longer exists".to_owned()),
            Some(conn) => match apply(&mut tx, &s.settings, &event, &conn, &payload, now).await {
                Ok(applied) => Ok(applied),
                Err(e) => {
                    // A database failure: roll back and count the attempt.
                    drop(tx);
                    let mut tx = s
                        .store
                        .begin(SystemScope::new("whatsapp.inbound.process"))
                        .await?;
                    let attempts = store::record_attempt(&mut tx, id, &e.to_string()).await?;
                    if attempts >= MAX_ATTEMPTS {
                        store::finish(&mut tx, id, now, Some(format!("gave up: {e}"))).await?;
                    }
                    tx.commit().await?;
                    tracing::warn!(error = %e, event = %id, attempts, "WhatsApp webhook processing failed");
                    return Ok(false);
                }
            },
        },
    };
    let (error, mut applied) = match outcome {
        Ok(applied) if applied.notes.is_empty() => (None, applied),
        Ok(applied) => (Some(applied.notes.join("; ")), applied),
        Err(why) => {
            tracing::warn!(event = %id, error = %why, "WhatsApp webhook could not be processed");
            (Some(why), Applied::default())
        }
    };
    applied.events = crate::realtime::inbound_events(
        s,
        &mut tx,
        event.tenant_id,
        event.connection_id,
        &applied.messages,
        &applied.statuses,
    )
    .await?;
    store::finish(&mut tx, id, now, error).await?;
    tx.commit().await?;
    after_commit(s, &applied);
    Ok(true)
}

/// What processing one stored event changed: the input of the follow-ups that run in its
/// transaction (in [`apply`]) or after it commits (in [`after_commit`]).
#[derive(Debug, Default)]
pub struct Applied {
    /// What was skipped, kept in the event's `error`.
    pub notes: Vec<String>,
    /// Inbound messages stored by this event (redeliveries excluded).
    pub messages: Vec<NewMessage>,
    /// Status changes that moved a message forward: (wamid, new status).
    pub statuses: Vec<(String, String)>,
    /// Realtime events of the above, read in the event's transaction.
    pub events: Vec<crate::realtime::Event>,
}

/// Follow-ups of a committed event that need no transaction.
fn after_commit(s: &Services, applied: &Applied) {
    super::media::after_commit(s, &applied.messages);
    s.realtime.publish_all(&applied.events);
}

/// Applies every change of the payload. Returns notes about what was skipped (kept in the
/// event's `error`); database errors abort the whole event.
async fn apply(
    tx: &mut Tx<SystemScope>,
    settings: &crate::Settings,
    event: &InboundEvent,
    conn: &Connection,
    payload: &Value,
    now: OffsetDateTime,
) -> palisade_store::Result<Applied> {
    let mut applied = Applied::default();
    let notes = &mut applied.notes;
    if payload.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
        notes.push("object is not whatsapp_business_account".to_owned());
        return Ok(applied);
    }
    let Some(entries) = payload.get("entry").and_then(Value::as_array) else {
        notes.push("no entry array".to_owned());
        return Ok(applied);
    };
    for (ei, entry) in entries.iter().enumerate() {
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (ci, change) in changes.iter().enumerate() {
            let at = format!("entry[{ei}].changes[{ci}]");
            let field = change.get("field").and_then(Value::as_str).unwrap_or("");
            if field != "messages" {
                tracing::debug!(field, "WhatsApp webhook field not handled yet");
                continue;
            }
            let Some(value) = change.get("value") else {
                notes.push(format!("{at}: no value"));
                continue;
            };
            let pid = value
                .pointer("/metadata/phone_number_id")
                .and_then(Value::as_str);
            if pid != Some(conn.phone_number_id.as_str()) {
                notes.push(format!("{at}: for another phone number id, skipped"));
                continue;
            }
            let stored = apply_messages(tx, event.tenant_id, conn, value, now, &at, notes).await?;
            let moved = apply_statuses(tx, event.tenant_id, conn, value, now, &at, notes).await?;
            applied.messages.extend(stored);
            applied.statuses.extend(moved);
            if let Some(errors) = value.get("errors") {
                tracing::warn!(connection = %conn.id, %errors, "WhatsApp reported errors");
            }
        }
    }
    crate::contacts::apply_consent_keywords(tx, settings, &applied.messages, now).await?;
    super::media::enqueue_downloads(tx, &applied.messages).await?;
    Ok(applied)
}

fn unix_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    let secs = match v? {
        Value::String(s) => s.parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

async fn apply_messages(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    conn: &Connection,
    value: &Value,
    now: OffsetDateTime,
    at: &str,
    notes: &mut Vec<String>,
) -> palisade_store::Result<Vec<NewMessage>> {
    let Some(list) = value.get("messages").and_then(Value::as_array) else {
        return Ok(Vec::new());
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
    let wamids: Vec<String> = list
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut seen = messaging::existing_wamids(tx, tenant, conn.id, &wamids).await?;
    // First the valid, new messages and their senders; then contacts and conversations in a few
    // multi-row statements (a webhook carries up to hundreds of messages); then the messages.
    let mut accepted: Vec<(&Value, &str, &str, Option<OffsetDateTime>)> = Vec::new();
    let mut senders: Vec<messaging::Sender> = Vec::new();
    let mut known: HashSet<&str> = HashSet::new();
    for (mi, m) in list.iter().enumerate() {
        let (Some(wamid), Some(from)) = (
            m.get("id").and_then(Value::as_str),
            m.get("from").and_then(Value::as_str),
        ) else {
            notes.push(format!("{at}.messages[{mi}]: no id or from, skipped"));
            continue;
        };
        if !seen.insert(wamid.to_owned()) {
            continue; // already stored (redelivery) or repeated in this payload
        }
        if from.len() < 5 || from.len() > 15 || !from.bytes().all(|b| b.is_ascii_digit()) {
            notes.push(format!(
                "{at}.messages[{mi}]: from is not a phone number, skipped"
            ));
            continue;
        }
        if known.insert(from) {
            let profile = profiles.get(from).copied().or_else(|| {
                // `from` and `wa_id` "may not always match"; with one contact, it is theirs.
                (profiles.len() == 1)
                    .then(|| profiles.values().next().copied())
                    .flatten()
            });
            senders.push(messaging::Sender {
                phone: format!("+{from}"),
                wa_id: from.to_owned(),
                profile_name: profile.map(str::to_owned),
            });
        }
        accepted.push((m, wamid, from, unix_time(m.get("timestamp"))));
    }
    if accepted.is_empty() {
        return Ok(Vec::new());
    }
    let contacts = messaging::upsert_contacts(tx, tenant, &senders, now).await?;
    let mut latest: HashMap<Uuid, OffsetDateTime> = HashMap::new();
    for (_, _, from, sent_at) in &accepted {
        if let Some(contact) = contacts.get(&format!("+{from}")) {
            let t = sent_at.unwrap_or(now);
            let e = latest.entry(*contact).or_insert(t);
            *e = (*e).max(t);
        }
    }
    let conversations = messaging::touch_conversations(tx, tenant, conn.id, &latest, now).await?;
    let mut new = Vec::with_capacity(accepted.len());
    for (m, wamid, from, sent_at) in accepted {
        let Some(conversation_id) = contacts
            .get(&format!("+{from}"))
            .and_then(|c| conversations.get(c))
            .copied()
        else {
            // Only if a concurrent erasure removed the contact between the statements.
            notes.push(format!(
                "{at}: message {wamid}: its contact vanished, skipped"
            ));
            continue;
        };
        let kind = m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let text = (kind == "text")
            .then(|| m.pointer("/text/body").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned);
        new.push(NewMessage {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            conversation_id,
            connection_id: conn.id,
            wamid: wamid.to_owned(),
            direction: "inbound",
            kind,
            body: m.clone(),
            text,
            status: "received",
            error: m.get("errors").cloned(),
            context_wamid: m
                .pointer("/context/id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            sent_at,
            created_at: now,
        });
    }
    messaging::insert_messages(tx, &new).await?;
    Ok(new)
}

async fn apply_statuses(
    tx: &mut Tx<SystemScope>,
    tenant: TenantId,
    conn: &Connection,
    value: &Value,
    now: OffsetDateTime,
    at: &str,
    notes: &mut Vec<String>,
) -> palisade_store::Result<Vec<(String, String)>> {
    let mut moved = Vec::new();
    let Some(list) = value.get("statuses").and_then(Value::as_array) else {
        return Ok(moved);
    };
    for (si, st) in list.iter().enumerate() {
        let (Some(wamid), Some(status)) = (
            st.get("id").and_then(Value::as_str),
            st.get("status").and_then(Value::as_str),
        ) else {
            notes.push(format!("{at}.statuses[{si}]: no id or status, skipped"));
            continue;
        };
        if messaging::status_rank(status).is_none() {
            // `played` and future values: nothing to record on the message.
            continue;
        }
        let error = (status == "failed")
            .then(|| st.get("errors").cloned())
            .flatten();
        let changed =
            messaging::advance_status(tx, tenant, conn.id, wamid, status, error, now).await?;
        if changed {
            moved.push((wamid.to_owned(), status.to_owned()));
        } else {
            tracing::debug!(wamid, status, "status for an unknown message or not newer");
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_test_vector_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let sig = "sha256=dec6a680679a968e7e0319355b23599cbfc54502c0784668e9618baa0c633756";
        assert!(signature_valid(b"test_app_secret", sig, body));
        assert!(!signature_valid(b"other", sig, body));
        assert!(!signature_valid(b"test_app_secret", &sig[7..], body));
        assert!(!signature_valid(b"test_app_secret", "sha256=zz", body));
    }
}
