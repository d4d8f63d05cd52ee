//! `palisade-wa-sim`: a local simulator of Meta's WhatsApp Business Cloud API, for Palisade's
//! tests, demos and benchmarks. It serves the Graph API routes a CRM calls and sends the signed
//! webhooks Meta would send, following `docs/reference/whatsapp-cloud-api.md` (the "reference").
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = palisade_wa_sim::build(palisade_wa_sim::SimConfig::testing()).await?;
//! let base = sim.base_url(); // e.g. http://127.0.0.1:41234 → use as WHATSAPP_GRAPH_BASE_URL
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(sim.run_until(async move { let _ = stopped.await; }));
//! // … drive it …
//! let _ = stop.send(());
//! let _ = server.await;
//! # Ok(()) }
//! ```
//!
//! # What is faithful
//!
//! * **Routes**, all under `/{version}` (`v\d+\.\d+`): `POST /{phone_number_id}/messages`
//!   (every send type of reference §2.2, `status:"read"` mark-as-read and `typing_indicator`),
//!   `POST /{phone_number_id}/media` (multipart `file`, `type`, `messaging_product`),
//!   `GET|DELETE /{media_id}`, `GET|POST|DELETE /{waba_id}/message_templates`,
//!   `GET|POST /{template_id}`, `GET /{phone_number_id}?fields=…` (`quality_rating`,
//!   `throughput.level`, `display_phone_number`, `verified_name`,
//!   `whatsapp_business_manager_messaging_limit`, …), plus the onboarding calls `GET /{waba_id}`,
//!   `GET /{waba_id}/phone_numbers`, `GET|POST /{waba_id}/subscribed_apps` and
//!   `POST /{phone_number_id}/register`.
//! * **Auth**: `Authorization: Bearer <token>` (or `?access_token=`). Missing or unknown token →
//!   HTTP 401, code 190 (`OAuthException`); a valid token of another number → HTTP 403, code 10.
//! * **Error envelope** of reference §2.4: `{"error":{"message":"(#code) Title","type",
//!   "code","error_data":{"messaging_product":"whatsapp","details"},"fbtrace_id"}}`, no
//!   `error_subcode`, plus the `www-authenticate`, `x-fb-trace-id` and `x-fb-request-id` headers.
//!   HTTP 400 for request, policy and throttling errors.
//! * **Send validation**: `messaging_product` ≠ `whatsapp` → 100; unknown `type` → 131051;
//!   missing required field → 131008; length/count limits (4096 text, 1024 caption/button body,
//!   3 buttons, 20-char button titles, 10 sections/rows, 24/72-char row title/description,
//!   60-char header/footer) → 131009; wrong JSON types → 100. Unknown template/language or not
//!   `APPROVED` → 132001; parameter count mismatch per header/body/URL button → 132000.
//! * **Success body** `{"messaging_product","contacts":[{"input","wa_id"}],"messages":[{"id"}]}`
//!   with `input` echoed verbatim and `wamid.<base64>` ids built like Meta's.
//! * **Customer service window**: an inbound message opens/resets a 24 h window per
//!   (number, customer). A free-form send outside it → 131047, or (`accept_then_fail`) 200 and a
//!   `failed` status webhook carrying error 131047. Templates are always allowed.
//! * **Rate limits**: 80 messages per second per number by default (inbound and outbound counted
//!   together, only sends refused) → 130429; pair limit as a token bucket of 45 per recipient,
//!   refilled one per 6 s → 131056.
//! * **Webhooks**: envelope of reference §1.4 (`object`, `entry[].id` = WABA id,
//!   `changes[].value` with `messaging_product`, `metadata`, `contacts`+`messages` or `statuses`,
//!   `field`), signed `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`.
//!   Statuses go `sent → delivered → read` (sometimes skipping `delivered`), with `pricing` on
//!   `sent` and on the first of `delivered`/`read`, and `conversation` only for Graph ≤ v23
//!   (taken from the version of the send request); `biz_opaque_callback_data` is echoed. Only
//!   HTTP 200 counts as delivered; anything else is retried with exponential backoff. Optional
//!   batching of several changes into one POST and duplicate injection.
//! * **Subscription**: the GET handshake of reference §1.1 (`hub.mode=subscribe`,
//!   `hub.verify_token`, numeric `hub.challenge`), accepted only on 200 with the challenge echoed
//!   byte for byte.
//! * **Media**: upload with Meta's MIME and size limits (131053 otherwise), `GET /{media_id}` with
//!   `url`, `mime_type`, `sha256` (hex), `file_size` (integer); the URL
//!   (`/whatsapp_business/attachments/?mid=…&ext=…&hash=…` on the simulator's host) needs the
//!   bearer token and answers 404 once expired (5 min by default).
//! * **Templates**: every number's WABA starts with the approved `hello_world` (no parameters)
//!   and `order_confirmation` (`{{1}}`, `{{2}}`) in `en_US`. Created templates answer
//!   `{"id","status":"PENDING","category"}`, become `APPROVED` after a configurable delay and emit
//!   `message_template_status_update`. Lists page with `limit`/`after`/`before` cursors and
//!   `paging.next`.
//!
//! # What is simplified
//!
//! * Each simulated phone number has its own WABA, access token and app secret; there are no
//!   apps, businesses, system users or token expiry. `display_phone_number` is digits only
//!   everywhere (the real phone-number node formats it as `+1 555-…`).
//! * `to` is normalised by dropping every non-digit; Meta's country-code prepending and the
//!   Brazil/Mexico rewrites are not simulated. Every recipient "has WhatsApp" (no 131026).
//! * Messaging-limit tiers (unique users outside the window), quality rating changes, opt-outs
//!   (131050), 131049, paused templates and the WABA endpoint rate limits (4/80007) are not
//!   enforced; they can be emitted by hand as `failed` statuses through the control API, and a
//!   recipient's template sends can be made to fail synchronously with 131049 or 131050
//!   (`/_sim/recipients/{wa_id}/refuse`, any template category).
//! * Media sent by `link` is not fetched; media ids never expire (Meta: 30 days), only URLs do.
//!   Template header media handles and resumable uploads are not simulated.
//! * Delivery order is "concurrent" (each POST is its own task); the retry schedule is a
//!   compressed exponential backoff (`retry_base_delay_ms` doubling up to `retry_max_delay_ms`,
//!   `max_delivery_attempts` in total) instead of Meta's undocumented 7-day schedule.
//! * Interactive types other than `button`, `list` and `cta_url` are accepted with light checks.
//! * State is in memory and lost at shutdown.
//!
//! # Control API (`/_sim`, no auth, JSON)
//!
//! | Route | Body | Answer |
//! |---|---|---|
//! | `POST /_sim/phone-numbers` | `{display_phone_number?, verified_name?}` | 201 `{phone_number_id, waba_id, access_token, app_secret, display_phone_number, …}` |
//! | `GET /_sim/phone-numbers` | | every number, same shape |
//! | `POST /_sim/phone-numbers/{id}/subscribe` | `{callback_url, verify_token}` | 200 `{phone_number_id, callback_url, verified: true}` after a successful GET handshake; 422 `{error}` explaining why it failed |
//! | `DELETE /_sim/phone-numbers/{id}/subscribe` | | 204, webhooks stop |
//! | `POST /_sim/inbound` | `{phone_number_id, from, profile_name?, type, <type>: {…}, context?, referral?, timestamp?}` | 201 `{wamid, message}`; webhook sent, window opened. Media types (`image`, `video`, `audio`, `document`, `sticker`) may carry `data_base64`; the simulator stores the bytes and fills `id`, `mime_type`, `sha256`, `url` |
//! | `GET /_sim/phone-numbers/{id}/outbound` | | `[{wamid, to, type, body, status, at_ms}]`, oldest first; `body` is the send request as received, `status` is `accepted` until a status webhook is emitted, `at_ms` when the send was accepted (Unix ms) |
//! | `POST /_sim/phone-numbers/{id}/outbound/{wamid}/status` | `{status, error?}` (`error`: code or `{code, title?, details?}`) | 200 `{status: <statuses[] item>}`; the webhook is emitted at once |
//! | `GET /_sim/deliveries[?phone_number_id=]` | | webhook attempts, oldest first: `[{delivery_id, phone_number_id, url, status, error, latency_ms, attempt, duplicate, signature, at_ms, body}]` (`status` null when no HTTP answer) |
//! | `DELETE /_sim/deliveries` | | 204, log cleared |
//! | `GET /_sim/config` | | the run-time settings |
//! | `POST /_sim/config` | any of `auto_status`, `status_step_delay_ms`, `skip_delivered_rate`, `duplicate_rate`, `batch_rate`, `batch_window_ms`, `batch_max`, `accept_then_fail`, `throughput_per_second`, `pair_burst`, `pair_interval_ms`, `window_ms`, `media_url_ttl_ms`, `media_url_base`, `media_corrupt_downloads`, `media_refuse_uploads` (every upload refused with 131053), `media_hold_downloads`, `hold_send_answers`, `template_review_delay_ms`, `template_auto_approve`, `max_delivery_attempts`, `retry_base_delay_ms`, `retry_max_delay_ms`, `webhook_timeout_ms`, `delivery_log_capacity` | the settings after the change |
//! | `POST /_sim/templates/{template_id}/status` | `{status, reason?}` | 200; sets e.g. `PAUSED`/`REJECTED` and emits `message_template_status_update` |
//! | `POST /_sim/templates/{template_id}/quality` | `{score}` | 200; sets `GREEN`/`YELLOW`/`RED`/`UNKNOWN` and emits `message_template_quality_update` |
//! | `POST /_sim/templates/{template_id}/category` | `{category}` | 200; recategorises it and emits `template_category_update` |
//! | `POST /_sim/recipients/{wa_id}/refuse` | `{code}` (131049 or 131050) | 200 `{wa_id, code}`; from now on every template send to `wa_id` fails synchronously with that error (131049: the per-user marketing limit; 131050: the user stopped marketing messages) |
//! | `DELETE /_sim/recipients/{wa_id}/refuse` | | 204; that recipient's template sends are accepted again |

mod config;
mod control;
mod error;
mod graph;
mod ids;
mod state;
mod validate;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use rand::SeedableRng as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use config::SimConfig;
pub use webhook::signature_header;

use state::{AppState, Event};

/// A bound, not yet running simulator. Create it with [`build`], start it with [`Sim::run_until`].
pub struct Sim {
    listener: TcpListener,
    local_addr: SocketAddr,
    base_url: String,
    router: Router,
    state: Arc<AppState>,
    events: mpsc::UnboundedReceiver<Event>,
    shutdown: watch::Sender<bool>,
}

/// Binds `config.listen` (port 0 picks a free port) and prepares the simulator.
pub async fn build(config: SimConfig) -> std::io::Result<Sim> {
    let listener = TcpListener::bind(config.listen).await?;
    let local_addr = listener.local_addr()?;
    let base_url = match &config.public_base_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let mut addr = local_addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{addr}")
        }
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let rng = match config.seed {
        Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
        None => rand::rngs::StdRng::from_entropy(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut config = config;
    config.apply(&config::ConfigPatch::default());
    let state = Arc::new(AppState::new(
        config,
        base_url.clone(),
        rng,
        tx,
        http,
        shutdown_rx,
    ));
    let router = Router::new()
        .merge(control::routes())
        .merge(graph::routes())
        .fallback(|| async { error::GraphError::unknown_path() })
        .with_state(state.clone());
    Ok(Sim {
        listener,
        local_addr,
        base_url,
        router,
        state,
        events: rx,
        shutdown,
    })
}

impl Sim {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>` (or `public_base_url`): the Graph base URL to configure in Palisade
    /// (requests then go to `{base_url}/{version}/…`); the control API is `{base_url}/_sim`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Serves until `shutdown` resolves, then stops the webhook emitter, status progressions and
    /// pending retries.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let emitter = tokio::spawn(webhook::run_emitter(self.state.clone(), self.events));
        tracing::info!(addr = %self.local_addr, "WhatsApp Cloud API simulator listening");
        let result = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = self.shutdown.send(true);
        emitter.abort();
        result
    }
}
