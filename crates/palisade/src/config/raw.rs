//! The raw settings as read from file and environment, with their defaults (the README's
//! configuration table lists each one).

use super::*;

/// The raw settings as read from file and environment. See the README for each one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub database_migration_url: Option<String>,
    pub database_max_connections: u32,
    pub env: Environment,
    #[serde(skip_serializing)]
    pub signing_keys: Option<SecretString>,
    pub signing_keys_file: Option<PathBuf>,
    #[serde(skip_serializing)]
    pub encryption_keys: Option<SecretString>,
    pub encryption_keys_file: Option<PathBuf>,
    pub rate_limit_api_per_minute: u32,
    pub rate_limit_login_per_minute: u32,
    pub rate_limit_register_per_hour: u32,
    /// Refused WhatsApp webhook POSTs per minute per client address; 0 disables.
    pub rate_limit_webhook_failures_per_minute: u32,
    pub lockout_threshold: u32,
    pub lockout_minutes: u64,
    pub login_failure_delay_ms: u64,
    pub password_hash_concurrency: Option<usize>,
    pub password_hash_queue: usize,
    /// Comma-separated addresses or CIDR ranges.
    pub trusted_proxies: String,
    /// Comma-separated origins.
    pub cors_origins: String,
    pub behind_tls_proxy: bool,
    pub cookie_secure: bool,
    pub request_timeout_secs: u64,
    pub max_body_bytes: usize,
    /// Development and tests only: webhooks may target http, loopback and private addresses.
    pub webhooks_allow_private_targets: bool,
    /// Comma-separated hosts whose webhooks (and their subdomains') need no approval.
    pub webhooks_allowed_domains: String,
    pub webhooks_max_per_tenant: usize,
    /// Delivery attempts per webhook endpoint per minute (at least 1).
    pub webhooks_deliveries_per_minute: u32,
    /// How often this node's delivery worker looks for due deliveries; 0 runs no worker.
    pub webhooks_worker_interval_ms: u64,
    /// Campaign messages per second per WhatsApp connection (at least 1).
    pub campaign_messages_per_second: u32,
    pub whatsapp_graph_base_url: String,
    pub whatsapp_graph_api_version: String,
    /// Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Comma-separated; an inbound message that is exactly one of them opts its sender out.
    pub opt_out_keywords: String,
    /// Comma-separated; an inbound message that is exactly one of them lifts an opt-out.
    pub opt_in_keywords: String,
    /// Days a processed inbound webhook body is kept (then dropped, the row kept); 0 keeps them.
    pub inbound_retention_days: u32,
    /// Root of the tenants' file storage; defaults to `<data_dir>/storage`.
    pub storage_dir: Option<PathBuf>,
    /// Largest inbound media file downloaded, in bytes (WhatsApp's per-type maxima apply too).
    pub media_max_bytes: u64,
    /// Largest ticket attachment accepted, in bytes (`413 file_too_large` beyond; the upload is
    /// refused while it streams in).
    pub upload_max_bytes: u64,
    /// Bytes one user may upload per UTC day (`429 upload_quota_exceeded` beyond).
    pub upload_quota_bytes_per_day: u64,
    /// Comma-separated MIME types an attachment may be, within the safe set (see
    /// `docs/security.md`); empty: the whole safe set.
    pub upload_allowed_types: String,
    /// How often this node looks for due media downloads; 0 runs no media worker.
    pub media_worker_interval_ms: u64,
    /// How often this node sends due queued WhatsApp messages; 0 runs no sender.
    pub outbound_worker_interval_ms: u64,
    /// Websockets one user (or API key) may hold open on a node; 0: no limit.
    pub ws_max_per_user: usize,
    /// `optional` (codes are sent, nothing is blocked) or `required` (an unverified user may
    /// reach only /me, verification, logout and sessions).
    pub email_verification: palisade_core::settings::EmailVerification,
    /// Password reset requests per hour per client address; 0 disables.
    pub rate_limit_password_forgot_per_hour: u32,
    /// The breached-password check: `off`, `warn` or `enforce`; unset: `enforce` in
    /// production, `off` in development.
    pub hibp_mode: Option<String>,
    /// The k-anonymity range API (the SHA-1 prefix is appended).
    pub hibp_url: String,
    /// The WebAuthn relying party id; defaults to the host of the public URL.
    pub webauthn_rp_id: Option<String>,
    /// Comma-separated origins passkeys may be used from; defaults to the public URL's origin.
    pub webauthn_origins: String,
    /// Where mails go: `smtp://host:port` (plain), `smtp://…?tls=required` (STARTTLS),
    /// `smtps://…` (implicit TLS), credentials as `user:password@`. Unset: `.eml` files under
    /// `<data_dir>/mail/`.
    #[serde(skip_serializing)]
    pub smtp_url: Option<SecretString>,
    /// The From of every mail, a mailbox (`Name <address>` or a bare address).
    pub mail_from: String,
    /// How often this node looks for due mails (retries, other nodes' mails); 0 runs no worker.
    pub mail_worker_interval_ms: u64,
    /// Address of the metrics listener (`GET /metrics`); empty: no metrics.
    pub metrics_listen: String,
    /// Requests slower than this are logged at warn and counted as slow.
    pub slow_request_ms: u64,
    /// Base URL of an OTLP/HTTP collector (`/v1/traces` is appended); empty: no traces.
    pub otlp_endpoint: String,
    /// `service.name` of the exported traces.
    pub otlp_service_name: String,
    /// Redis shared by every node (`redis://…`, `rediss://…`); unset or empty: none.
    #[serde(skip_serializing)]
    pub redis_url: Option<SecretString>,
    /// What every Redis key and channel of this deployment starts with.
    pub redis_key_prefix: String,
    /// CA certificates (PEM) that a `rediss://` Redis is verified against; unset: the
    /// system's roots.
    pub redis_ca_file: Option<PathBuf>,
    /// Failed sign-ins of one account within the detection window that raise
    /// `account_under_attack`.
    pub detect_failed_logins: u32,
    /// Different accounts one address fails against within the window (`password_spraying`).
    pub detect_spray_accounts: u32,
    /// The window of the sign-in and read-volume rules, in minutes.
    pub detect_window_minutes: u64,
    /// Rows an export may have before it raises `mass_data_access`.
    pub detect_export_rows: u64,
    /// Exports by one user in an hour beyond which `mass_data_access` is raised.
    pub detect_exports_per_hour: u32,
    /// Contacts and messages one credential may read through the API within the window.
    pub detect_read_records: u64,
    /// Speed between two successful sign-ins of one user above which `impossible_travel` is
    /// raised, km/h.
    pub detect_travel_kmh: u32,
    /// How far back `new_country` looks for the countries a user signed in from, in days.
    pub detect_new_country_days: u32,
    /// The platform's security mailbox: every alert that opens, of every tenant.
    pub security_alert_email: Option<String>,
    /// The platform's alert webhook: every alert that opens, signed.
    pub security_alert_webhook: Option<String>,
    /// The `whsec_` secret the platform alert webhook is signed with.
    #[serde(skip_serializing)]
    pub security_alert_webhook_secret: Option<SecretString>,
    /// A MaxMind-format City database (`.mmdb`) for the geographic detection rules
    /// (`impossible_travel`, `new_country`, an API key's new country); unset: those rules are off.
    pub geoip_db: Option<PathBuf>,
    /// Where scheduled backups are written; unset: no scheduled backups.
    pub backup_dir: Option<PathBuf>,
    /// When scheduled backups run (cron: minute hour day-of-month month day-of-week, UTC).
    pub backup_schedule: String,
    /// Scheduled archives older than this many days are deleted once a newer one has been
    /// verified; 0 keeps every archive.
    pub backup_retention_days: u32,
    /// Comma-separated age X25519 public keys (`age1…`) backups are encrypted to.
    pub backup_recipients: String,
    /// A passphrase backups are encrypted with (age scrypt), instead of recipients.
    #[serde(skip_serializing)]
    pub backup_passphrase: Option<SecretString>,
    /// An age identity file (`AGE-SECRET-KEY-1…`) that decrypts backups for verify and restore.
    pub backup_identity_file: Option<PathBuf>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_migration_url: None,
            database_max_connections: 10,
            env: Environment::Development,
            signing_keys: None,
            signing_keys_file: None,
            encryption_keys: None,
            encryption_keys_file: None,
            rate_limit_api_per_minute: 100,
            rate_limit_login_per_minute: 5,
            rate_limit_register_per_hour: 3,
            rate_limit_webhook_failures_per_minute: 60,
            lockout_threshold: 5,
            lockout_minutes: 15,
            login_failure_delay_ms: 100,
            password_hash_concurrency: None,
            password_hash_queue: 64,
            trusted_proxies: String::new(),
            cors_origins: String::new(),
            behind_tls_proxy: false,
            cookie_secure: true,
            request_timeout_secs: 30,
            max_body_bytes: 1024 * 1024,
            webhooks_allow_private_targets: false,
            webhooks_allowed_domains: String::new(),
            webhooks_max_per_tenant: 10,
            webhooks_deliveries_per_minute: 60,
            webhooks_worker_interval_ms: 1000,
            campaign_messages_per_second: 20,
            whatsapp_graph_base_url: "https://graph.facebook.com".into(),
            whatsapp_graph_api_version: "v25.0".into(),
            public_url: None,
            opt_out_keywords: palisade_core::contacts::DEFAULT_OPT_OUT_KEYWORDS.join(","),
            opt_in_keywords: palisade_core::contacts::DEFAULT_OPT_IN_KEYWORDS.join(","),
            inbound_retention_days: 7,
            storage_dir: None,
            media_max_bytes: 100 * 1024 * 1024,
            upload_max_bytes: 10 * 1024 * 1024,
            upload_quota_bytes_per_day: 200 * 1024 * 1024,
            upload_allowed_types: String::new(),
            media_worker_interval_ms: 1000,
            outbound_worker_interval_ms: 1000,
            ws_max_per_user: 20,
            email_verification: palisade_core::settings::EmailVerification::Optional,
            rate_limit_password_forgot_per_hour: 5,
            hibp_mode: None,
            hibp_url: palisade_core::auth::breach::DEFAULT_HIBP_URL.into(),
            webauthn_rp_id: None,
            webauthn_origins: String::new(),
            smtp_url: None,
            mail_from: "Palisade <no-reply@localhost>".into(),
            mail_worker_interval_ms: 1000,
            metrics_listen: String::new(),
            slow_request_ms: 1000,
            otlp_endpoint: String::new(),
            otlp_service_name: "palisade".into(),
            redis_url: None,
            redis_key_prefix: "palisade".into(),
            redis_ca_file: None,
            detect_failed_logins: 10,
            detect_spray_accounts: 10,
            detect_window_minutes: 10,
            detect_export_rows: 10_000,
            detect_exports_per_hour: 3,
            detect_read_records: 5_000,
            detect_travel_kmh: 1_000,
            detect_new_country_days: 90,
            security_alert_email: None,
            security_alert_webhook: None,
            security_alert_webhook_secret: None,
            geoip_db: None,
            backup_dir: None,
            backup_schedule: "0 2 * * *".into(),
            backup_retention_days: 30,
            backup_recipients: String::new(),
            backup_passphrase: None,
            backup_identity_file: None,
        }
    }
}
