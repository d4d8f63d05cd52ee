//! The knobs services read. The binary fills this from defaults, `palisade.toml` and `PALISADE_*`
//! variables; tests build it directly.

use std::time::Duration;

/// Whether an unverified email address restricts its user (`PALISADE_EMAIL_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVerification {
    /// Codes are sent; nothing is blocked.
    #[default]
    Optional,
    /// An unverified user may reach only `/api/v1/me`, verify, resend, logout and sessions.
    Required,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub production: bool,
    /// Issuer and audience of access tokens.
    pub token_issuer: String,
    pub token_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub invite_ttl: Duration,
    /// Requests per minute per principal (or IP when anonymous); 0 disables.
    pub rate_limit_api_per_minute: u32,
    /// Login attempts per minute per IP; 0 disables.
    pub rate_limit_login_per_minute: u32,
    /// Registrations per hour per IP; 0 disables.
    pub rate_limit_register_per_hour: u32,
    /// Refused WhatsApp webhook POSTs per minute per client address; beyond it refusals are
    /// 429. Correctly signed POSTs are never counted nor refused. 0 disables.
    pub rate_limit_webhook_failures_per_minute: u32,
    /// Consecutive failures that lock an account.
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    /// First step of the progressive delay on a failed login; doubles per failure, capped at 2 s.
    pub login_failure_delay: Duration,
    /// Password hashes computed at once (keep below the core count so requests still run).
    pub password_hash_concurrency: usize,
    /// Hash requests allowed to wait; beyond this, logins get 503 with Retry-After.
    pub password_hash_queue: usize,
    /// Mark cookies Secure (refused off in production).
    pub cookie_secure: bool,
    /// How long a deleted user can still be restored.
    pub restore_window: Duration,
    /// Development and tests only: webhooks may target http, loopback and private addresses.
    pub webhooks_allow_private_targets: bool,
    /// Hosts (and their subdomains) whose webhooks need no approval, for every tenant.
    pub webhooks_allowed_domains: Vec<String>,
    /// Webhooks a tenant may have.
    pub webhooks_max_per_tenant: usize,
    /// Delivery attempts per endpoint per minute; more wait for the next minute.
    pub webhooks_deliveries_per_minute: u32,
    /// Campaign messages queued per second per WhatsApp connection, across all its running
    /// campaigns (at least 1).
    pub campaign_messages_per_second: u32,
    /// Base URL of Meta's Graph API (tests point it at `palisade sim`). Operator-trusted.
    pub whatsapp_graph_base_url: String,
    /// The pinned Graph API version, e.g. `v25.0`.
    pub whatsapp_graph_api_version: String,
    /// Public base URL of this server, for the webhook callback URLs shown to admins.
    pub public_url: String,
    /// Inbound messages that opt a contact out of marketing (whole text, case-insensitive).
    pub opt_out_keywords: Vec<String>,
    /// Inbound messages that lift a contact's opt-out.
    pub opt_in_keywords: Vec<String>,
    /// Days a processed inbound webhook body is kept before it is dropped (the row stays);
    /// 0 keeps bodies forever.
    pub inbound_retention_days: u32,
    /// Root of the local file storage (one directory per tenant): downloaded WhatsApp media.
    pub storage_dir: std::path::PathBuf,
    /// Largest media file downloaded, in bytes, on top of WhatsApp's per-type maxima.
    pub media_max_bytes: u64,
    /// Largest ticket attachment accepted, in bytes (`413 file_too_large` beyond).
    pub upload_max_bytes: u64,
    /// Bytes one user may upload per UTC day (`429 upload_quota_exceeded` beyond).
    pub upload_quota_bytes_per_day: u64,
    /// The MIME types an attachment may be: a subset of `tickets::sniff::SAFE_TYPES`.
    pub upload_allowed_types: Vec<String>,
    /// Websockets one user (or one API key) may hold open on a node; 0: no limit.
    pub ws_max_per_user: usize,
    /// Whether an unverified email address restricts its user.
    pub email_verification: EmailVerification,
    /// `POST /api/v1/auth/password/forgot` per client address per hour; beyond it 429. 0 disables.
    pub rate_limit_password_forgot_per_hour: u32,
    /// The breached-password check (`PALISADE_HIBP_MODE`).
    pub hibp_mode: crate::auth::breach::HibpMode,
    /// The k-anonymity range API the check asks (`PALISADE_HIBP_URL`). Operator-trusted.
    pub hibp_url: String,
    /// The WebAuthn relying party id (a domain); `None`: the host of `public_url`.
    pub webauthn_rp_id: Option<String>,
    /// The origins passkey ceremonies may come from; empty: the origin of `public_url`.
    pub webauthn_origins: Vec<String>,
    /// Redis shared by every node (`PALISADE_REDIS_URL`); `None`: each node on its own.
    pub redis_url: Option<secrecy::SecretString>,
    /// What every Redis key and channel of this deployment starts with
    /// (`PALISADE_REDIS_KEY_PREFIX`), so deployments (or tests) can share one Redis.
    pub redis_key_prefix: String,
    /// The CA certificates (PEM) a `rediss://` Redis is verified against
    /// (`PALISADE_REDIS_CA_FILE`); `None`: the system's roots.
    pub redis_ca_pem: Option<Vec<u8>>,
    /// Detection thresholds and the platform's alert destinations.
    pub detect: crate::detections::DetectionSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            production: false,
            token_issuer: "palisade".into(),
            token_audience: "palisade-api".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            rate_limit_api_per_minute: 100,
            rate_limit_login_per_minute: 5,
            rate_limit_register_per_hour: 3,
            rate_limit_webhook_failures_per_minute: 60,
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            login_failure_delay: Duration::from_millis(100),
            password_hash_concurrency: 1,
            password_hash_queue: 64,
            cookie_secure: true,
            restore_window: Duration::from_secs(30 * 24 * 3600),
            webhooks_allow_private_targets: false,
            webhooks_allowed_domains: Vec::new(),
            webhooks_max_per_tenant: 10,
            webhooks_deliveries_per_minute: 60,
            campaign_messages_per_second: 20,
            whatsapp_graph_base_url: "https://graph.facebook.com".into(),
            whatsapp_graph_api_version: "v25.0".into(),
            public_url: "http://127.0.0.1:8080".into(),
            opt_out_keywords: crate::contacts::DEFAULT_OPT_OUT_KEYWORDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            opt_in_keywords: crate::contacts::DEFAULT_OPT_IN_KEYWORDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            inbound_retention_days: 7,
            storage_dir: "./data/storage".into(),
            media_max_bytes: 100 * 1024 * 1024,
            upload_max_bytes: 10 * 1024 * 1024,
            upload_quota_bytes_per_day: 200 * 1024 * 1024,
            upload_allowed_types: crate::tickets::sniff::SAFE_TYPES
                .iter()
                .map(|(m, _)| (*m).to_owned())
                .collect(),
            ws_max_per_user: 20,
            email_verification: EmailVerification::Optional,
            rate_limit_password_forgot_per_hour: 5,
            hibp_mode: crate::auth::breach::HibpMode::Off,
            hibp_url: crate::auth::breach::DEFAULT_HIBP_URL.into(),
            webauthn_rp_id: None,
            webauthn_origins: Vec::new(),
            redis_url: None,
            redis_key_prefix: "palisade".into(),
            redis_ca_pem: None,
            detect: crate::detections::DetectionSettings::default(),
        }
    }
}
