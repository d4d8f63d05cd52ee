//! Sending queued messages through the Graph API.
//!
//! `messaging::send_message` stores a message `queued` with its row in
//! `whatsapp_outbound_queue`, in one transaction. A sender on every node ([`spawn_worker`])
//! claims due rows under a `SystemScope` (moving `next_attempt_at` ahead as a lease, so a
//! sender that dies mid-send only delays the message), sends each with the connection's
//! decrypted token, and then in one unit of work (actor `whatsapp-sender`) either stores Meta's wamid and `sent`, or
//! schedules a retry with backoff (throughput and pair-rate limits, Meta's temporary errors,
//! 5xx, network), or marks the message `failed` with Meta's code and a readable reason. The
//! status webhooks then move it to `delivered` and `read` (`whatsapp::inbound`, by wamid).
//! A throughput refusal also holds back the connection's other campaign sends of the round
//! (see [`send_pending`]), so a number over Meta's throughput is not sent one refused request
//! per queued message.
//!
//! A suspended tenant's sends are not claimed: they keep their place in the queue (no attempt
//! counted, no backoff) and go out in order once the tenant is reactivated. A batch already
//! claimed when the suspension lands is finished (at most [`BATCH`] messages per sender), so
//! nothing claimed is lost or left leased. Meta's 24-hour customer service window is checked
//! when a message is queued and again by Meta when it is sent: a free-form message whose
//! window closed during a long suspension fails with Meta's 131047 and a readable reason
//! (send a template), never silently.

use super::connections::secret_aad;
use super::graph::GraphError;
use super::outbound_media::Prepared;
use crate::error::code;
use crate::worker::Next;
use crate::{AppResult, Services, SystemActor, UnitOfWork};
use palisade_domain::{ConnectionId, ConnectionStatus};
use palisade_store::send_queue::{self as store, QueuedSend, SendPriority};
use palisade_store::whatsapp_connections as connections;
use palisade_store::SystemScope;
use serde_json::{json, Value};
use std::collections::HashSet;
use time::Duration;

/// Transient failures are retried this many times in all, then the message fails.
pub const MAX_ATTEMPTS: i64 = 8;
const BATCH: i64 = 50;
/// Campaign sends claimed at once: between two such batches the sender looks for people's
/// replies again.
const BULK_BATCH: i64 = 10;
/// How long a claimed send is hidden from other senders.
const LEASE: Duration = Duration::minutes(2);

/// The wait before the attempt after `attempts` failed ones: 4^n seconds (Meta's advice for
/// the pair rate limit), at most 15 minutes.
pub fn backoff(attempts: i64) -> Duration {
    let n = u32::try_from(attempts.clamp(0, 6)).unwrap_or(6);
    Duration::seconds(4_i64.pow(n).min(900))
}

/// The sender: sends whatever is due, every `every`, and at once when a person's message was
/// queued (`Services::outbound_sends`).
pub fn spawn_worker(s: Services, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let wake = s.outbound_sends.clone();
    crate::worker::spawn_periodic(
        "WhatsApp sending round failed",
        every,
        Some(wake),
        move || {
            let s = s.clone();
            async move { send_pending(&s).await.map(|_| Next::Wait) }
        },
    )
}

/// How long a campaign send is held back, without an attempt, once its connection was refused
/// for throughput in this sending round (Meta counts a number's throughput per second).
pub const THROTTLE_HOLD: Duration = Duration::seconds(1);

/// Meta's answers that say the number (or the app, or the WABA) is over its throughput, not
/// the message: 130429 (the number's throughput), 80007 (the WABA's rate limit), 4 (the app's
/// call limit).
pub fn is_throughput_refusal(e: &GraphError) -> bool {
    matches!(
        e,
        GraphError::Api {
            code: 4 | 80007 | 130429,
            ..
        }
    )
}

/// Sends every due queued message. Returns how many were attempted.
///
/// Once Meta refuses a send for throughput (see [`is_throughput_refusal`]), the rest of that
/// connection's campaign sends claimed in this call are held back for [`THROTTLE_HOLD`]
/// without calling Meta or counting an attempt: one refused request per connection and round,
/// not one per queued message. Agents' replies are still tried. The refused send itself is
/// retried with backoff (a definite refusal: nothing was sent, so a campaign message too).
pub async fn send_pending(s: &Services) -> AppResult<usize> {
    let mut done = 0;
    let mut throttled: HashSet<ConnectionId> = HashSet::new();
    loop {
        let mut uow = UnitOfWork::system(
            s,
            SystemActor::OutboundSender,
            SystemScope::new("whatsapp.outbound.claim"),
        )
        .await?;
        let now = uow.now();
        // People's replies first, a full batch; campaign sends a few at a time, so a reply
        // queued while a campaign is sending waits for at most [`BULK_BATCH`] of them.
        let mut claimed =
            store::claim_sends_of(uow.tx(), SendPriority::Interactive, now, now + LEASE, BATCH)
                .await?;
        if claimed.is_empty() {
            claimed =
                store::claim_sends_of(uow.tx(), SendPriority::Bulk, now, now + LEASE, BULK_BATCH)
                    .await?;
        }
        uow.commit().await?;
        // Ids are UUID v7: messages go out in the order they were written (RETURNING does not
        // promise the claim's order, and a backlog, e.g. after a suspension, is claimed at once).
        claimed.sort_by_key(|q| q.message_id);
        if claimed.is_empty() {
            return Ok(done);
        }
        for q in claimed {
            if let Err(e) = send_one(s, &q, &mut throttled).await {
                tracing::warn!(error = %e, message = %q.message_id, "WhatsApp send failed; retried after the lease");
            }
            done += 1;
        }
    }
}

enum Outcome {
    Sent(String),
    Retry(String),
    Failed(Value),
}

async fn send_one(
    s: &Services,
    q: &QueuedSend,
    throttled: &mut HashSet<ConnectionId>,
) -> AppResult<()> {
    let tenant = q.tenant_id;
    let mut tx = s
        .store
        .begin_read(SystemScope::new("whatsapp.outbound.send"))
        .await?;
    let job = store::send_job(&mut tx, tenant, q.message_id).await?;
    let conn = match &job {
        Some((m, _)) => connections::find_any(&mut tx, m.connection_id).await?,
        None => None,
    };
    drop(tx);
    if let Some((m, _)) = &job {
        if throttled.contains(&m.connection_id) && hold_back(s, q).await? {
            return Ok(());
        }
    }
    let connection = job.as_ref().map(|(m, _)| m.connection_id);
    let outcome = match (job, conn) {
        (None, _) => return Ok(()), // deleted with its queue row
        (Some(_), None) => Outcome::Failed(error(
            0,
            "connection_missing",
            "the WhatsApp connection no longer exists",
        )),
        (Some(_), Some(c)) if c.status != ConnectionStatus::Active => Outcome::Failed(error(
            0,
            code::CONNECTION_DISCONNECTED,
            "the WhatsApp connection was disconnected before the message could be sent",
        )),
        (Some((m, to)), Some(c)) => match bulk_gate(s, tenant, &m).await? {
            Gate::Gone => return Ok(()),
            Gate::Refuse(err) => Outcome::Failed(err),
            Gate::Go { bulk } => {
                let token = s
                    .keys
                    .encryption
                    .decrypt(&c.access_token_ciphertext, &secret_aad(&c, "access_token"))
                    .map_err(|e| anyhow::anyhow!("access token of connection {}: {e:?}", c.id))?;
                let token = String::from_utf8(token).map_err(|_| {
                    anyhow::anyhow!("access token of connection {} is not UTF-8", c.id)
                })?;
                let mut body = m.body.clone();
                if let Some(o) = body.as_object_mut() {
                    o.insert("messaging_product".into(), json!("whatsapp"));
                    o.insert("recipient_type".into(), json!("individual"));
                    o.insert("to".into(), json!(to));
                }
                // A file to send is uploaded to Meta first (`outbound_media`).
                let prepared = super::outbound_media::prepare_body(
                    s,
                    &token,
                    &c.phone_number_id,
                    tenant,
                    q.message_id,
                    body,
                )
                .await?;
                let sent = match prepared {
                    Prepared::Body(body) => s
                        .graph
                        .send_message(&token, &c.phone_number_id, &body)
                        .await
                        .map(Ok),
                    Prepared::Graph(e) => Err(e),
                    Prepared::Failed(err) => Ok(Err(err)),
                };
                match sent {
                    Ok(Ok(wamid)) => Outcome::Sent(wamid),
                    Ok(Err(err)) => Outcome::Failed(err),
                    // A bulk send that did not reach Meta's answer may have been sent: at most
                    // once.
                    Err(e @ GraphError::Transport(_)) if bulk => Outcome::Failed(error(
                        0,
                        "outcome_unknown",
                        &format!(
                            "the request to WhatsApp failed without an answer ({e}); a campaign \
                             message is not sent twice"
                        ),
                    )),
                    Err(e) if e.is_transient() && q.attempts + 1 < MAX_ATTEMPTS => {
                        if let (true, Some(c)) = (is_throughput_refusal(&e), connection) {
                            throttled.insert(c);
                        }
                        Outcome::Retry(e.to_string())
                    }
                    Err(GraphError::Api {
                        code,
                        message,
                        details,
                        ..
                    }) => Outcome::Failed(error(
                        code,
                        &message,
                        &details.unwrap_or_else(|| reason(code).to_owned()),
                    )),
                    Err(e @ GraphError::Transport(_)) => Outcome::Failed(error(
                        0,
                        "unreachable",
                        &format!("gave up after {MAX_ATTEMPTS} attempts: {e}"),
                    )),
                }
            }
        },
    };
    let mut uow = UnitOfWork::system(
        s,
        SystemActor::OutboundSender,
        SystemScope::new("whatsapp.outbound.send"),
    )
    .await?
    .for_tenant(tenant);
    let now = uow.now();
    let status_moved = !matches!(outcome, Outcome::Retry(_));
    match outcome {
        Outcome::Sent(wamid) => {
            store::mark_sent(uow.tx(), tenant, q.message_id, &wamid, now).await?;
        }
        Outcome::Retry(why) => {
            tracing::info!(message = %q.message_id, attempts = q.attempts + 1, error = %why, "WhatsApp send will be retried");
            store::retry_send(
                uow.tx(),
                tenant,
                q.message_id,
                now + backoff(q.attempts),
                &why,
            )
            .await?;
        }
        Outcome::Failed(err) => {
            tracing::warn!(message = %q.message_id, error = %err, "WhatsApp send failed");
            let stopped_marketing = has_code(&err, STOPPED_MARKETING);
            store::mark_failed(uow.tx(), tenant, q.message_id, err, now).await?;
            if stopped_marketing {
                if let Some((m, _)) = store::send_job(uow.tx(), tenant, q.message_id).await? {
                    crate::contacts::opt_out_stopped_marketing(
                        &mut uow,
                        tenant,
                        m.conversation_id,
                        q.message_id,
                        now,
                    )
                    .await?;
                }
            }
        }
    }
    if status_moved {
        let events = crate::realtime::sender_events(s, uow.tx(), tenant, &[q.message_id]).await?;
        if !events.is_empty() {
            uow.after_commit(move |s| s.realtime.publish_all(&events));
        }
    }
    uow.commit().await
}

/// Holds a campaign send back (see [`send_pending`]); `false` when it is not one (sent now).
async fn hold_back(s: &Services, q: &QueuedSend) -> AppResult<bool> {
    let mut tx = s
        .store
        .begin(SystemScope::new("whatsapp.outbound.hold"))
        .await?;
    let now = s.clock.now();
    let held = store::hold_bulk(
        &mut tx,
        q.tenant_id,
        q.message_id,
        now + THROTTLE_HOLD,
        "held back: WhatsApp refused this number's sends for throughput",
    )
    .await?;
    tx.commit().await?;
    Ok(held)
}

/// Meta's error when the contact stopped marketing messages from this business: the message
/// fails and the contact is opted out of marketing (source `whatsapp`).
pub const STOPPED_MARKETING: i64 = 131050;

/// Whether a stored error (`[{code, …}]`) carries Meta's `code`.
pub fn has_code(err: &Value, code: i64) -> bool {
    err.as_array().is_some_and(|a| {
        a.iter()
            .any(|e| e.get("code").and_then(Value::as_i64) == Some(code))
    })
}

enum Gate {
    Go { bulk: bool },
    Refuse(Value),
    Gone,
}

/// Before a send reaches Meta: an interactive message goes; a campaign (bulk) message records
/// that its attempt started (committed first, so that a crash after Meta's answer cannot send it
/// twice: see `send_queue::begin_attempt`), and is refused if an earlier attempt was interrupted
/// (`outcome_unknown`) or the contact opted out meanwhile (`contact_opted_out`).
async fn bulk_gate(
    s: &Services,
    tenant: palisade_domain::TenantId,
    m: &palisade_store::messages::Message,
) -> AppResult<Gate> {
    use palisade_store::send_queue::Attempt;
    let mut tx = s
        .store
        .begin(SystemScope::new("whatsapp.outbound.attempt"))
        .await?;
    let now = s.clock.now();
    let attempt = store::begin_attempt(&mut tx, tenant, m.id, now).await?;
    let opted_out = if attempt == Attempt::BulkStarted {
        palisade_store::contacts::find_by_conversation_for_update(
            &mut tx,
            tenant,
            m.conversation_id,
        )
        .await?
        .is_some_and(|c| c.consent.is_opted_out())
    } else {
        false
    };
    tx.commit().await?;
    Ok(match attempt {
        Attempt::Gone => Gate::Gone,
        Attempt::Interactive => Gate::Go { bulk: false },
        Attempt::BulkInterrupted => Gate::Refuse(error(
            0,
            "outcome_unknown",
            "an earlier attempt to send this campaign message was interrupted; WhatsApp may have \
             sent it, so it is not sent twice",
        )),
        Attempt::BulkStarted if opted_out => Gate::Refuse(error(
            0,
            "contact_opted_out",
            "the contact opted out before the campaign message was sent",
        )),
        Attempt::BulkStarted => Gate::Go { bulk: true },
    })
}

/// An error in the shape of Meta's status webhooks' `errors` (`[{code, title, message}]`).
fn error(code: i64, title: &str, message: &str) -> Value {
    json!([{ "code": code, "title": title, "message": message }])
}

/// A readable reason for Meta's common permanent errors, when Meta gave no details.
fn reason(code: i64) -> &'static str {
    match code {
        0 | 190 => "the connection's access token is invalid or expired; reconnect the number",
        3 | 10 | 200..=299 | 131005 => "the access token lacks a permission for this number",
        100 | 131008 | 131009 => "WhatsApp refused the message's parameters",
        131026 => "the message could not be delivered: the recipient may not use WhatsApp",
        131047 => "more than 24 hours have passed since the contact last wrote; send a template",
        131050 => "the contact stopped marketing messages from this business",
        131051 => "WhatsApp does not support this message type",
        131053 => "WhatsApp refused the file to send (its type or size)",
        132000 => "the number of template parameters does not match the template",
        132001 => "the template does not exist in this language or is not approved",
        368 | 131031 => "the WhatsApp Business account is restricted",
        _ => "WhatsApp refused the message",
    }
}
