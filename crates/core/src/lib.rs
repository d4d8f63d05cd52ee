//! Palisade's use cases and security primitives.
//!
//! Every service function takes the acting identity ([`auth::Principal`]) or names the system
//! work it does, checks permission on its first line, and writes its audit record in the same
//! transaction as its change. The web layer only parses input and renders output.

pub mod analytics;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod campaigns;
pub mod client_address;
pub mod clock;
pub mod contacts;
pub mod coordination;
pub mod crypto;
pub mod deals;
pub mod detections;
pub mod error;
pub mod integrations;
pub mod mail;
pub mod messaging;
pub mod metrics;
pub mod notifications;
pub mod outbox;
pub mod pagination;
pub mod platform;
pub mod rate_limit;
pub mod realtime;
pub mod safe_http;
pub mod settings;
pub mod storage;
pub mod templates;
pub mod tenants;
pub mod tickets;
pub mod unit_of_work;
pub mod users;
pub mod webhooks;
pub mod whatsapp;
pub mod worker;

use std::sync::Arc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, AppResult};
pub use settings::Settings;
pub use unit_of_work::{SystemActor, UnitOfWork};

/// Everything a use case needs, built once at start and shared (cheap to clone).
#[derive(Clone)]
pub struct Services {
    pub store: palisade_store::Store,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub keys: Arc<crypto::Keys>,
    pub hasher: auth::hashing::PasswordHasher,
    pub auth_cache: Arc<auth::cache::AuthCache>,
    pub limits: Arc<rate_limit::Limits>,
    pub api_key_usage: Arc<auth::api_keys::UsageBuffer>,
    /// The Graph API client (base URL and version from the settings).
    pub graph: whatsapp::graph::GraphClient,
    /// Tenant file storage (downloaded media).
    pub storage: Arc<storage::Storage>,
    /// Wakes this node's media worker when new media messages were stored.
    pub media_downloads: Arc<tokio::sync::Notify>,
    /// Wakes this node's WhatsApp sender when an interactive message (a person's reply, not a
    /// campaign's) was queued.
    pub outbound_sends: Arc<tokio::sync::Notify>,
    /// Wakes this node's mail worker when mails were queued.
    pub mail_outbox: Arc<tokio::sync::Notify>,
    /// Wakes this node's platform alert webhook worker (an alert was queued for it).
    pub alert_webhooks: Arc<tokio::sync::Notify>,
    /// Realtime events for the websockets of this node (and, on PostgreSQL, of every node).
    pub realtime: Arc<realtime::Hub>,
    /// Meta's verified webhook POSTs, stored and processed in batches.
    pub inbound: Arc<whatsapp::inbound::Pipeline>,
    /// The breached-password check (asked only when `settings.hibp_mode` is not `off`).
    pub breach: Arc<dyn auth::breach::BreachChecker>,
    /// The WebAuthn relying party (passkeys), built once from the settings.
    pub passkeys: Arc<auth::passkeys::RelyingParty>,
    /// Redis shared by the nodes (`PALISADE_REDIS_URL`), when configured.
    pub redis: Option<Arc<coordination::Redis>>,
    /// This node's counters for the in-memory detection rules.
    pub detector: Arc<detections::Detector>,
}

impl Services {
    pub fn new(
        store: palisade_store::Store,
        clock: Arc<dyn Clock>,
        settings: Settings,
        keys: crypto::Keys,
    ) -> Self {
        let settings = Arc::new(settings);
        // The URL was checked with the configuration; a client that still cannot be built
        // leaves the node on its own limits, loudly.
        let redis = settings.redis_url.as_ref().and_then(|url| {
            use secrecy::ExposeSecret;
            coordination::Redis::new(
                url.expose_secret(),
                &settings.redis_key_prefix,
                settings.redis_ca_pem.as_deref(),
            )
            .map(Arc::new)
            .map_err(|e| tracing::error!(error = %e, "Redis is not used"))
            .ok()
        });
        let cross_process = store.backend() == palisade_store::Backend::Postgres || redis.is_some();
        Services {
            hasher: auth::hashing::PasswordHasher::new(
                settings.password_hash_concurrency,
                settings.password_hash_queue,
            ),
            auth_cache: Arc::new(auth::cache::AuthCache::new()),
            limits: Arc::new(rate_limit::Limits::new(&settings, redis.as_ref())),
            api_key_usage: Arc::new(auth::api_keys::UsageBuffer::default()),
            graph: whatsapp::graph::GraphClient::new(
                &settings.whatsapp_graph_base_url,
                &settings.whatsapp_graph_api_version,
            ),
            storage: Arc::new(storage::Storage::local(settings.storage_dir.clone())),
            media_downloads: Arc::new(tokio::sync::Notify::new()),
            outbound_sends: Arc::new(tokio::sync::Notify::new()),
            mail_outbox: Arc::new(tokio::sync::Notify::new()),
            alert_webhooks: Arc::new(tokio::sync::Notify::new()),
            detector: Arc::default(),
            inbound: Arc::default(),
            breach: Arc::new(auth::breach::HibpRangeClient::new(
                &settings.hibp_url,
                std::time::Duration::from_secs(2),
            )),
            passkeys: Arc::new(auth::passkeys::RelyingParty::from_settings_or_disabled(
                &settings,
            )),
            realtime: Arc::new(
                realtime::Hub::new(cross_process)
                    .with_max_sockets_per_owner(settings.ws_max_per_user)
                    .with_remote_max_bytes(if redis.is_some() {
                        realtime::REDIS_MAX_BYTES
                    } else {
                        palisade_store::NOTIFY_MAX_BYTES
                    }),
            ),
            redis,
            store,
            clock,
            settings,
            keys: Arc::new(keys),
        }
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}
