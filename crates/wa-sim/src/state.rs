//! Shared simulator state: phone numbers, templates, media, windows, rate limiters, outbound
//! messages, the webhook queue and the delivery log.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::Rng as _;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::config::SimConfig;
use crate::error::GraphError;
use crate::ids;

/// Locks a mutex, recovering the data if another thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub callback_url: String,
    pub verify_token: String,
}

#[derive(Debug, Clone)]
pub struct Phone {
    pub id: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub display_phone_number: String,
    pub verified_name: String,
    pub subscription: Option<Subscription>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub parameter_format: String,
    pub components: Value,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN` (listed as `quality_score.score`).
    pub quality_score: String,
    /// Why it was rejected (`NONE` unless it was).
    pub rejected_reason: String,
}

impl Template {
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "quality_score": {"score": self.quality_score},
            "rejected_reason": self.rejected_reason,
            "id": self.id,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Media {
    pub id: String,
    pub phone_id: String,
    pub mime_type: String,
    pub bytes: Bytes,
    pub sha256_hex: String,
}

#[derive(Debug, Clone)]
pub struct Outbound {
    pub wamid: String,
    pub to: String,
    pub kind: String,
    pub body: Value,
    pub status: String,
    /// Major Graph version of the send request (`conversation` only for ≤ 23).
    pub version: u32,
    /// Pricing category: `service`, `marketing`, `utility` or `authentication`.
    pub category: String,
    /// Whether this message was free (service message or utility template inside the window).
    pub free: bool,
    /// `pricing`/`conversation` already sent along with a `delivered` or `read`.
    pub billed_after_sent: bool,
    /// When the send was accepted (Unix milliseconds).
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One webhook POST attempt, as listed by `GET /_sim/deliveries`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub delivery_id: u64,
    pub phone_number_id: String,
    pub url: String,
    /// HTTP status of the answer, `null` when there was none (connect error, timeout).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub attempt: u32,
    /// True for an injected duplicate of an earlier delivery.
    pub duplicate: bool,
    pub signature: String,
    pub at_ms: u64,
    pub body: Value,
}

/// A change waiting for the webhook emitter.
#[derive(Debug, Clone)]
pub struct Event {
    pub phone_id: String,
    /// `{"value":…, "field":…}`.
    pub change: Value,
}

#[derive(Default)]
pub struct Inner {
    pub phones: HashMap<String, Phone>,
    /// token → phone number id
    pub tokens: HashMap<String, String>,
    /// waba id → phone number id
    pub wabas: HashMap<String, String>,
    /// templates of each WABA, oldest first
    pub templates: HashMap<String, Vec<Template>>,
    pub media: HashMap<String, Media>,
    /// (phone id, wa_id) → last inbound message
    pub windows: HashMap<(String, String), Instant>,
    throughput: HashMap<String, VecDeque<Instant>>,
    pairs: HashMap<(String, String), Bucket>,
    /// per phone, oldest first
    pub outbound: HashMap<String, Vec<Outbound>>,
    /// wamid → (phone id, index into outbound)
    pub outbound_index: HashMap<String, (String, usize)>,
    /// (phone id, wamid) of inbound messages (for mark-as-read)
    pub inbound_ids: HashSet<(String, String)>,
    /// (phone id, wa_id, category) → (conversation id, expiration unix seconds)
    conversations: HashMap<(String, String, String), (String, u64)>,
    /// wa_id → the error (131049 or 131050) its template sends are refused with
    pub refusals: HashMap<String, u32>,
}

pub struct AppState {
    pub config: Mutex<SimConfig>,
    pub base_url: String,
    pub inner: Mutex<Inner>,
    rng: Mutex<StdRng>,
    pub events: mpsc::UnboundedSender<Event>,
    pub http: reqwest::Client,
    pub shutdown: watch::Receiver<bool>,
    pub deliveries: Mutex<VecDeque<DeliveryRecord>>,
    delivery_seq: AtomicU64,
    /// Key for the `hash` of media download URLs.
    url_key: String,
    /// Media downloads waiting while `media_hold_downloads` is on.
    pub media_downloads_waiting: AtomicU64,
    /// Send answers waiting while `hold_send_answers` is on.
    pub send_answers_waiting: AtomicU64,
}

impl AppState {
    pub fn new(
        config: SimConfig,
        base_url: String,
        rng: StdRng,
        events: mpsc::UnboundedSender<Event>,
        http: reqwest::Client,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config: Mutex::new(config),
            base_url,
            inner: Mutex::new(Inner::default()),
            rng: Mutex::new(rng),
            events,
            http,
            shutdown,
            deliveries: Mutex::new(VecDeque::new()),
            delivery_seq: AtomicU64::new(1),
            url_key: ids::app_secret(),
            media_downloads_waiting: AtomicU64::new(0),
            send_answers_waiting: AtomicU64::new(0),
        }
    }

    pub fn cfg(&self) -> SimConfig {
        lock(&self.config).clone()
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        lock(&self.rng).gen::<f64>() < p
    }

    pub fn next_delivery_id(&self) -> u64 {
        self.delivery_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn record_delivery(&self, record: DeliveryRecord) {
        let cap = lock(&self.config).delivery_log_capacity;
        let mut log = lock(&self.deliveries);
        log.push_back(record);
        while log.len() > cap {
            log.pop_front();
        }
    }

    /// Sleeps `ms`; false when the simulator is shutting down.
    pub async fn pause(&self, ms: u64) -> bool {
        let mut rx = self.shutdown.clone();
        if *rx.borrow() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => true,
            _ = rx.changed() => false,
        }
    }

    /// Queues a webhook change for a phone number.
    pub fn emit(&self, phone_id: &str, field: &str, value: Value) {
        let event = Event {
            phone_id: phone_id.to_owned(),
            change: json!({"value": value, "field": field}),
        };
        if self.events.send(event).is_err() {
            tracing::debug!("webhook emitter stopped; change dropped");
        }
    }

    /// `messaging_product` + `metadata` of a change value.
    pub fn value_head(phone: &Phone) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("messaging_product".into(), json!("whatsapp"));
        map.insert(
            "metadata".into(),
            json!({
                "display_phone_number": phone.display_phone_number,
                "phone_number_id": phone.id,
            }),
        );
        map
    }

    pub fn phone(&self, id: &str) -> Option<Phone> {
        lock(&self.inner).phones.get(id).cloned()
    }

    // ----- media URLs -----

    pub fn media_url_hash(&self, media_id: &str, expires_ms: u64) -> String {
        sign_hex(&self.url_key, format!("{media_id}|{expires_ms}").as_bytes())
    }

    /// A signed download URL that expires after `media_url_ttl_ms`, on `media_url_base` when
    /// one is configured (a fault mode), else on the simulator itself.
    pub fn media_url(&self, media_id: &str) -> String {
        let cfg = self.cfg();
        let expires = ids::unix_millis().saturating_add(cfg.media_url_ttl_ms);
        let hash = self.media_url_hash(media_id, expires);
        let base = match cfg.media_url_base.trim_end_matches('/') {
            "" => self.base_url.as_str(),
            other => other,
        };
        format!("{base}/whatsapp_business/attachments/?mid={media_id}&ext={expires}&hash={hash}")
    }

    // ----- rate limits -----

    /// Counts one message against the number's throughput; `enforce` rejects when full.
    pub fn take_throughput(
        inner: &mut Inner,
        phone_id: &str,
        limit: u32,
        enforce: bool,
    ) -> Result<(), GraphError> {
        let now = Instant::now();
        let window = inner.throughput.entry(phone_id.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if enforce && window.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
            return Err(GraphError::throughput());
        }
        window.push_back(now);
        Ok(())
    }

    /// Token bucket per (number, recipient): `burst` capacity, one token per `interval_ms`.
    pub fn take_pair(
        inner: &mut Inner,
        phone_id: &str,
        wa_id: &str,
        burst: u32,
        interval_ms: u64,
    ) -> Result<(), GraphError> {
        if burst == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let cap = f64::from(burst);
        let bucket = inner
            .pairs
            .entry((phone_id.to_owned(), wa_id.to_owned()))
            .or_insert(Bucket {
                tokens: cap,
                at: now,
            });
        let elapsed = now.duration_since(bucket.at).as_secs_f64() * 1000.0;
        let refill = if interval_ms == 0 {
            cap
        } else {
            elapsed / interval_ms as f64
        };
        bucket.tokens = (bucket.tokens + refill).min(cap);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(GraphError::pair_rate());
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    pub fn window_open(inner: &Inner, phone_id: &str, wa_id: &str, window_ms: u64) -> bool {
        inner
            .windows
            .get(&(phone_id.to_owned(), wa_id.to_owned()))
            .is_some_and(|t| t.elapsed() < Duration::from_millis(window_ms))
    }

    // ----- statuses -----

    /// Builds the `statuses[]` item for `wamid`, updates the stored status and queues the webhook.
    /// Returns the status object, or `None` for an unknown wamid.
    pub fn emit_status(&self, wamid: &str, status: &str, errors: Option<Value>) -> Option<Value> {
        let (phone, item) = {
            let mut inner = lock(&self.inner);
            let (phone_id, idx) = inner.outbound_index.get(wamid).cloned()?;
            let phone = inner.phones.get(&phone_id).cloned()?;
            let out = inner
                .outbound
                .get(&phone_id)
                .and_then(|v| v.get(idx))
                .cloned()?;
            let now = ids::unix_now();
            let mut item = serde_json::Map::new();
            item.insert("id".into(), json!(out.wamid));
            item.insert("status".into(), json!(status));
            item.insert("timestamp".into(), json!(now.to_string()));
            item.insert("recipient_id".into(), json!(out.to));
            let billable_step = match status {
                "sent" => true,
                "delivered" | "read" => !out.billed_after_sent,
                _ => false,
            };
            if billable_step {
                if out.version <= 23 {
                    let key = (phone_id.clone(), out.to.clone(), out.category.clone());
                    let (conv_id, expires) = match inner.conversations.get(&key) {
                        Some((id, exp)) if *exp > now => (id.clone(), *exp),
                        _ => {
                            let fresh = (ids::hex32(), now + 24 * 3600);
                            inner.conversations.insert(key, fresh.clone());
                            fresh
                        }
                    };
                    let mut conv = json!({"id": conv_id, "origin": {"type": out.category}});
                    if status == "sent" {
                        if let Some(obj) = conv.as_object_mut() {
                            obj.insert("expiration_timestamp".into(), json!(expires.to_string()));
                        }
                    }
                    item.insert("conversation".into(), conv);
                }
                let pricing_type = if out.free {
                    "free_customer_service"
                } else {
                    "regular"
                };
                item.insert(
                    "pricing".into(),
                    json!({
                        "billable": !out.free,
                        "pricing_model": "PMP",
                        "type": pricing_type,
                        "category": out.category,
                    }),
                );
            }
            if let Some(cb) = out.body.get("biz_opaque_callback_data") {
                item.insert("biz_opaque_callback_data".into(), cb.clone());
            }
            if let Some(errors) = errors {
                item.insert("errors".into(), errors);
            }
            if let Some(stored) = inner
                .outbound
                .get_mut(&phone_id)
                .and_then(|v| v.get_mut(idx))
            {
                stored.status = status.to_owned();
                if billable_step && status != "sent" {
                    stored.billed_after_sent = true;
                }
            }
            (phone, Value::Object(item))
        };
        let mut value = Self::value_head(&phone);
        value.insert("statuses".into(), json!([item.clone()]));
        self.emit(&phone.id, "messages", Value::Object(value));
        Some(item)
    }

    pub fn outbound_status(&self, wamid: &str) -> Option<String> {
        let inner = lock(&self.inner);
        let (phone_id, idx) = inner.outbound_index.get(wamid)?;
        inner
            .outbound
            .get(phone_id)
            .and_then(|v| v.get(*idx))
            .map(|o| o.status.clone())
    }
}

/// Lowercase hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => String::new(),
    }
}

/// Rank of a status for monotonic automatic progression.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "accepted" => 0,
        "sent" => 1,
        "delivered" => 2,
        "read" | "played" => 3,
        _ => 4,
    }
}
