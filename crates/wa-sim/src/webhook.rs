//! Webhook emitter: batching, signing, retries with backoff, duplicate injection, and the GET
//! verification handshake.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ids;
use crate::state::{lock, sign_hex, AppState, DeliveryRecord, Event};

/// `sha256=<hex>` value of the `X-Hub-Signature-256` header for `body`.
pub fn signature_header(app_secret: &str, body: &[u8]) -> String {
    format!("sha256={}", sign_hex(app_secret, body))
}

/// Runs until the event channel closes or the simulator shuts down.
pub async fn run_emitter(state: Arc<AppState>, mut rx: mpsc::UnboundedReceiver<Event>) {
    let mut pending: HashMap<String, (Vec<Value>, Instant)> = HashMap::new();
    let mut shutdown = state.shutdown.clone();
    loop {
        let next = pending.values().map(|(_, deadline)| *deadline).min();
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            event = rx.recv() => {
                let Some(event) = event else { break };
                let cfg = state.cfg();
                if let Some((changes, _)) = pending.get_mut(&event.phone_id) {
                    changes.push(event.change);
                    if changes.len() >= cfg.batch_max {
                        if let Some((changes, _)) = pending.remove(&event.phone_id) {
                            dispatch(&state, &event.phone_id, changes);
                        }
                    }
                } else if cfg.batch_max > 1 && state.chance(cfg.batch_rate) {
                    let deadline = Instant::now() + Duration::from_millis(cfg.batch_window_ms);
                    pending.insert(event.phone_id, (vec![event.change], deadline));
                } else {
                    dispatch(&state, &event.phone_id, vec![event.change]);
                }
            }
            () = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {
                let now = Instant::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, (_, deadline))| *deadline <= now)
                    .map(|(phone, _)| phone.clone())
                    .collect();
                for phone in due {
                    if let Some((changes, _)) = pending.remove(&phone) {
                        dispatch(&state, &phone, changes);
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Wraps the changes in Meta's envelope, signs it and starts the delivery (and maybe a duplicate).
fn dispatch(state: &Arc<AppState>, phone_id: &str, changes: Vec<Value>) {
    let Some(phone) = state.phone(phone_id) else {
        return;
    };
    let Some(sub) = phone.subscription.clone() else {
        tracing::debug!(phone_id, "no webhook subscription; change dropped");
        return;
    };
    let mut entry = serde_json::Map::new();
    entry.insert("id".into(), json!(phone.waba_id));
    let non_message = changes
        .iter()
        .any(|c| c.get("field").and_then(Value::as_str) != Some("messages"));
    if non_message {
        entry.insert("time".into(), json!(ids::unix_now()));
    }
    entry.insert("changes".into(), Value::Array(changes));
    let envelope = json!({"object": "whatsapp_business_account", "entry": [Value::Object(entry)]});
    let body = match serde_json::to_vec(&envelope) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::warn!(error = %e, "could not serialize a webhook");
            return;
        }
    };
    let signature = signature_header(&phone.app_secret, &body);
    let cfg = state.cfg();
    let duplicate = state.chance(cfg.duplicate_rate);
    let delivery = Delivery {
        id: state.next_delivery_id(),
        phone_id: phone_id.to_owned(),
        url: sub.callback_url,
        body,
        signature,
    };
    if duplicate {
        let copy = delivery.clone();
        let st = state.clone();
        tokio::spawn(async move {
            if st.pause(5).await {
                deliver(st, copy, true).await;
            }
        });
    }
    tokio::spawn(deliver(state.clone(), delivery, false));
}

#[derive(Debug, Clone)]
struct Delivery {
    id: u64,
    phone_id: String,
    url: String,
    body: Bytes,
    signature: String,
}

async fn deliver(state: Arc<AppState>, d: Delivery, duplicate: bool) {
    let body_json: Value = serde_json::from_slice(&d.body).unwrap_or(Value::Null);
    let mut attempt: u32 = 1;
    loop {
        let cfg = state.cfg();
        let started = std::time::Instant::now();
        let result = state
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &d.signature)
            .header("user-agent", "facebookexternalua")
            .timeout(Duration::from_millis(cfg.webhook_timeout_ms.max(1)))
            .body(d.body.clone())
            .send()
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error) = match result {
            Ok(resp) => (Some(resp.status().as_u16()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        state.record_delivery(DeliveryRecord {
            delivery_id: d.id,
            phone_number_id: d.phone_id.clone(),
            url: d.url.clone(),
            status,
            error,
            latency_ms,
            attempt,
            duplicate,
            signature: d.signature.clone(),
            at_ms: ids::unix_millis(),
            body: body_json.clone(),
        });
        // Only 200 counts as success (reference §1.3).
        if status == Some(200) || attempt >= cfg.max_delivery_attempts {
            if status != Some(200) {
                tracing::info!(url = %d.url, attempt, "webhook dropped after the last attempt");
            }
            return;
        }
        let shift = (attempt - 1).min(20);
        let delay = cfg
            .retry_base_delay_ms
            .saturating_mul(1u64 << shift)
            .min(cfg.retry_max_delay_ms);
        if !state.pause(delay).await {
            return;
        }
        attempt += 1;
    }
}

/// Meta's verification GET. `Ok(())` only for 200 with the challenge echoed verbatim.
pub async fn handshake(
    state: &AppState,
    callback_url: &str,
    verify_token: &str,
) -> Result<(), String> {
    let challenge = ids::challenge();
    let timeout = Duration::from_millis(state.cfg().webhook_timeout_ms.max(1));
    let resp = state
        .http
        .get(callback_url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", verify_token),
            ("hub.challenge", challenge.as_str()),
        ])
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("could not reach callback_url {callback_url}: {e}"))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| format!("could not read the answer of callback_url: {e}"))?;
    if status.as_u16() != 200 {
        return Err(format!(
            "callback_url answered the verification request with HTTP {status}; expected 200 \
             with the hub.challenge value as the body"
        ));
    }
    if body != challenge {
        return Err(format!(
            "callback_url answered 200 but the body {:?} is not the challenge {challenge:?} \
             (echo hub.challenge verbatim, as text/plain, not JSON-quoted)",
            truncate(&body, 100)
        ));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Starts the automatic `sent → delivered → read` progression of an accepted message.
pub fn spawn_progression(state: &Arc<AppState>, wamid: String) {
    let state = state.clone();
    tokio::spawn(async move {
        let cfg = state.cfg();
        let skip_delivered = state.chance(cfg.skip_delivered_rate);
        let steps: &[&str] = if skip_delivered {
            &["sent", "read"]
        } else {
            &["sent", "delivered", "read"]
        };
        for step in steps {
            if !state.pause(cfg.status_step_delay_ms).await {
                return;
            }
            // Keep the automatic progression monotonic: stop when a manual status went further.
            let current = state.outbound_status(&wamid).unwrap_or_default();
            if crate::state::status_rank(&current) >= crate::state::status_rank(step) {
                return;
            }
            state.emit_status(&wamid, step, None);
        }
    });
}

/// Emits a `failed` status with `errors` after the status step delay.
pub fn spawn_failure(state: &Arc<AppState>, wamid: String, errors: Value) {
    let state = state.clone();
    tokio::spawn(async move {
        let delay = state.cfg().status_step_delay_ms;
        if state.pause(delay).await {
            state.emit_status(&wamid, "failed", Some(errors));
        }
    });
}

/// Makes a template `APPROVED` after the review delay and emits the status-update webhook,
/// unless automatic approval is off or the template is no longer `PENDING` by then (a status
/// set through the control API in the meantime stands).
pub fn spawn_template_review(state: &Arc<AppState>, template_id: String) {
    let state = state.clone();
    tokio::spawn(async move {
        let cfg = state.cfg();
        if !cfg.template_auto_approve {
            return;
        }
        let delay = cfg.template_review_delay_ms;
        if delay > 0 && !state.pause(delay).await {
            return;
        }
        change_template_status(&state, &template_id, Some("PENDING"), "APPROVED", "NONE");
    });
}

/// Sets a template's status and emits `message_template_status_update`. False if unknown.
pub fn set_template_status(
    state: &AppState,
    template_id: &str,
    status: &str,
    reason: &str,
) -> bool {
    change_template_status(state, template_id, None, status, reason)
}

/// [`set_template_status`], only while the template's status is `only_from` when that is given
/// (checked and changed under one lock, so a status set meanwhile through the control API
/// stands). False if unknown or not in that status.
fn change_template_status(
    state: &AppState,
    template_id: &str,
    only_from: Option<&str>,
    status: &str,
    reason: &str,
) -> bool {
    let found = {
        let mut inner = lock(&state.inner);
        let mut found = None;
        for (waba, list) in inner.templates.iter_mut() {
            if let Some(t) = list.iter_mut().find(|t| t.id == template_id) {
                if only_from.is_some_and(|from| t.status != from) {
                    break;
                }
                t.status = status.to_owned();
                t.rejected_reason = if status == "REJECTED" {
                    reason.to_owned()
                } else {
                    "NONE".to_owned()
                };
                found = Some((waba.clone(), t.clone()));
                break;
            }
        }
        found.and_then(|(waba, t)| inner.wabas.get(&waba).map(|p| (p.clone(), t)))
    };
    let Some((phone_id, t)) = found else {
        return false;
    };
    let template_id_num: Value =
        t.id.parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(t.id));
    state.emit(
        &phone_id,
        "message_template_status_update",
        json!({
            "event": status,
            "message_template_id": template_id_num,
            "message_template_name": t.name,
            "message_template_language": t.language,
            "reason": reason,
            "message_template_category": t.category,
        }),
    );
    true
}

/// Applies `change` to a template and returns (the phone of its WABA, it before, it after).
fn change_template(
    state: &AppState,
    template_id: &str,
    change: impl FnOnce(&mut crate::state::Template),
) -> Option<(String, crate::state::Template, crate::state::Template)> {
    let mut inner = lock(&state.inner);
    let mut found = None;
    for (waba, list) in inner.templates.iter_mut() {
        if let Some(t) = list.iter_mut().find(|t| t.id == template_id) {
            let before = t.clone();
            change(t);
            found = Some((waba.clone(), before, t.clone()));
            break;
        }
    }
    let (waba, before, after) = found?;
    let phone = inner.wabas.get(&waba)?.clone();
    Some((phone, before, after))
}

fn numeric(id: &str) -> Value {
    id.parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(id))
}

/// Sets a template's quality score and emits `message_template_quality_update`. False if
/// unknown.
pub fn set_template_quality(state: &AppState, template_id: &str, score: &str) -> bool {
    let Some((phone_id, before, t)) =
        change_template(state, template_id, |t| t.quality_score = score.to_owned())
    else {
        return false;
    };
    state.emit(
        &phone_id,
        "message_template_quality_update",
        json!({
            "previous_quality_score": before.quality_score,
            "new_quality_score": t.quality_score,
            "message_template_id": numeric(&t.id),
            "message_template_name": t.name,
            "message_template_language": t.language,
        }),
    );
    true
}

/// Sets a template's category (Meta recategorising it) and emits `template_category_update`.
/// False if unknown.
pub fn set_template_category(state: &AppState, template_id: &str, category: &str) -> bool {
    let Some((phone_id, before, t)) =
        change_template(state, template_id, |t| t.category = category.to_owned())
    else {
        return false;
    };
    state.emit(
        &phone_id,
        "template_category_update",
        json!({
            "message_template_id": numeric(&t.id),
            "message_template_name": t.name,
            "message_template_language": t.language,
            "previous_category": before.category,
            "new_category": t.category,
        }),
    );
    true
}
