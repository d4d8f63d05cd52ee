//! Simulator configuration: the start-up [`SimConfig`] and the run-time patch accepted by
//! `POST /_sim/config`.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Everything the simulator can be tuned with. Every field except `listen`, `public_base_url`
/// and `seed` can also be changed while the simulator runs (`POST /_sim/config`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Address to bind. Port 0 picks a free port (use [`crate::Sim::local_addr`] afterwards).
    pub listen: SocketAddr,
    /// Base URL written into absolute URLs the simulator hands out (media download URLs).
    /// Defaults to `http://<local_addr>` (with `0.0.0.0`/`::` replaced by loopback).
    pub public_base_url: Option<String>,
    /// Seed for the random decisions (batching, duplicates, skipped `delivered`, ids).
    /// `None` seeds from the OS.
    pub seed: Option<u64>,

    /// Emit `sent` → `delivered` → `read` status webhooks automatically after each accepted send.
    pub auto_status: bool,
    /// Delay before each automatic status step, in milliseconds.
    pub status_step_delay_ms: u64,
    /// Probability (0..=1) that an automatic progression skips `delivered` (Meta sends only `read`
    /// when both happen at once).
    pub skip_delivered_rate: f64,
    /// Probability (0..=1) that a webhook POST is delivered a second time, byte for byte.
    pub duplicate_rate: f64,
    /// Probability (0..=1) that a webhook change opens a batch: changes for the same number that
    /// arrive within `batch_window_ms` are sent in one POST (several `changes[]`).
    pub batch_rate: f64,
    /// How long a batch collects changes, in milliseconds.
    pub batch_window_ms: u64,
    /// Largest number of changes in one batched POST (Meta: 1000).
    pub batch_max: usize,
    /// Outside the 24-hour window, accept a free-form send (200 with a wamid) and then emit a
    /// `failed` status with error 131047, instead of answering 131047 synchronously.
    pub accept_then_fail: bool,
    /// Per phone number message throughput (inbound and outbound counted together); error 130429
    /// beyond it. Meta's default is 80.
    pub throughput_per_second: u32,
    /// Pair rate limit burst: messages to one recipient allowed back to back (Meta: 45).
    /// 0 disables the pair limit.
    pub pair_burst: u32,
    /// Pair rate limit refill: one more message per this many milliseconds (Meta: 6000).
    pub pair_interval_ms: u64,
    /// Length of the customer service window, in milliseconds (Meta: 24 h).
    pub window_ms: u64,
    /// Lifetime of a media download URL, in milliseconds (Meta: 5 min).
    pub media_url_ttl_ms: u64,
    /// Base of the media download URLs handed out, instead of the simulator's own base URL
    /// (empty: the simulator's). Fault mode: point it at another host name to check that a
    /// client refuses media URLs on hosts it does not trust.
    pub media_url_base: String,
    /// Fault mode: serve media downloads with their first byte changed, so the bytes no longer
    /// match the SHA-256 in the webhook and in `GET /{media_id}` (a corrupted transfer).
    pub media_corrupt_downloads: bool,
    /// Fault mode: every media upload (`POST /{phone_number_id}/media`) is refused with 131053,
    /// as Meta refuses a file it will not take (a type or content it rejects).
    pub media_refuse_uploads: bool,
    /// Fault mode: media downloads wait (the response is not started) while this is true,
    /// then are served. `GET /_sim/config` counts the waiting ones in
    /// `media_downloads_waiting`, so a test can act while a download is in flight.
    pub media_hold_downloads: bool,
    /// Fault mode: a send Meta accepted (recorded, listed by `GET …/outbound`) has its answer
    /// held back while this is true, then answered. `GET /_sim/config` counts the waiting ones
    /// in `send_answers_waiting`, so a test can kill a client whose send reached Meta but whose
    /// answer did not (the message went out; the client cannot know).
    pub hold_send_answers: bool,
    /// Delay before a created template turns `APPROVED` (and a
    /// `message_template_status_update` webhook is emitted), in milliseconds. A template whose
    /// status was set in the meantime (`POST /_sim/templates/{id}/status`) keeps it.
    pub template_review_delay_ms: u64,
    /// Whether created templates are approved by themselves after the delay (`true`) or stay
    /// `PENDING` until `POST /_sim/templates/{id}/status` decides.
    pub template_auto_approve: bool,
    /// Webhook delivery attempts in total (first try included) before a POST is dropped.
    pub max_delivery_attempts: u32,
    /// Delay before the first retry; doubled for each further retry ("7 days, compressed").
    pub retry_base_delay_ms: u64,
    /// Upper bound of the retry delay.
    pub retry_max_delay_ms: u64,
    /// Timeout of one webhook POST (and of the subscribe handshake GET).
    pub webhook_timeout_ms: u64,
    /// How many webhook attempts `GET /_sim/deliveries` keeps (oldest dropped first).
    pub delivery_log_capacity: usize,
}

impl Default for SimConfig {
    /// Settings for `palisade sim`: Meta's limits, human-scale delays, occasional batching.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8090)),
            public_base_url: None,
            seed: None,
            auto_status: true,
            status_step_delay_ms: 1000,
            skip_delivered_rate: 0.1,
            duplicate_rate: 0.0,
            batch_rate: 0.1,
            batch_window_ms: 200,
            batch_max: 1000,
            accept_then_fail: false,
            throughput_per_second: 80,
            pair_burst: 45,
            pair_interval_ms: 6000,
            window_ms: 24 * 60 * 60 * 1000,
            media_url_ttl_ms: 5 * 60 * 1000,
            media_url_base: String::new(),
            media_corrupt_downloads: false,
            media_refuse_uploads: false,
            media_hold_downloads: false,
            hold_send_answers: false,
            template_review_delay_ms: 1000,
            template_auto_approve: true,
            max_delivery_attempts: 10,
            retry_base_delay_ms: 1000,
            retry_max_delay_ms: 60_000,
            webhook_timeout_ms: 10_000,
            delivery_log_capacity: 10_000,
        }
    }
}

impl SimConfig {
    /// Settings for tests: port 0, millisecond delays, no randomness unless a test asks for it.
    pub fn testing() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: Some(7),
            status_step_delay_ms: 10,
            skip_delivered_rate: 0.0,
            batch_rate: 0.0,
            batch_window_ms: 100,
            template_review_delay_ms: 0,
            max_delivery_attempts: 5,
            retry_base_delay_ms: 20,
            retry_max_delay_ms: 200,
            webhook_timeout_ms: 2000,
            ..Self::default()
        }
    }

    pub(crate) fn apply(&mut self, patch: &ConfigPatch) {
        macro_rules! set {
            ($($field:ident),*) => {
                $(if let Some(v) = patch.$field.clone() { self.$field = v; })*
            };
        }
        set!(
            auto_status,
            status_step_delay_ms,
            skip_delivered_rate,
            duplicate_rate,
            batch_rate,
            batch_window_ms,
            batch_max,
            accept_then_fail,
            throughput_per_second,
            pair_burst,
            pair_interval_ms,
            window_ms,
            media_url_ttl_ms,
            media_url_base,
            media_corrupt_downloads,
            media_refuse_uploads,
            media_hold_downloads,
            hold_send_answers,
            template_review_delay_ms,
            template_auto_approve,
            max_delivery_attempts,
            retry_base_delay_ms,
            retry_max_delay_ms,
            webhook_timeout_ms,
            delivery_log_capacity
        );
        for rate in [
            &mut self.skip_delivered_rate,
            &mut self.duplicate_rate,
            &mut self.batch_rate,
        ] {
            *rate = if rate.is_nan() {
                0.0
            } else {
                rate.clamp(0.0, 1.0)
            };
        }
        self.batch_max = self.batch_max.max(1);
        self.max_delivery_attempts = self.max_delivery_attempts.max(1);
    }
}

/// Body of `POST /_sim/config`: every field optional, absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub auto_status: Option<bool>,
    pub status_step_delay_ms: Option<u64>,
    pub skip_delivered_rate: Option<f64>,
    pub duplicate_rate: Option<f64>,
    pub batch_rate: Option<f64>,
    pub batch_window_ms: Option<u64>,
    pub batch_max: Option<usize>,
    pub accept_then_fail: Option<bool>,
    pub throughput_per_second: Option<u32>,
    pub pair_burst: Option<u32>,
    pub pair_interval_ms: Option<u64>,
    pub window_ms: Option<u64>,
    pub media_url_ttl_ms: Option<u64>,
    pub media_url_base: Option<String>,
    pub media_corrupt_downloads: Option<bool>,
    pub media_refuse_uploads: Option<bool>,
    pub media_hold_downloads: Option<bool>,
    pub hold_send_answers: Option<bool>,
    pub template_review_delay_ms: Option<u64>,
    pub template_auto_approve: Option<bool>,
    pub max_delivery_attempts: Option<u32>,
    pub retry_base_delay_ms: Option<u64>,
    pub retry_max_delay_ms: Option<u64>,
    pub webhook_timeout_ms: Option<u64>,
    pub delivery_log_capacity: Option<usize>,
}
