//! Configuration: defaults → optional `palisade.toml` → `PALISADE_*` environment variables.
//!
//! Validated once at start into [`Config`] and passed explicitly; nothing reads the environment
//! later. Secrets are `SecretString`s, whose `Debug` prints nothing; `palisade check-config`
//! prints the effective configuration with them redacted.

use crate::telemetry::OtlpSettings;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use palisade_core::auth::breach::HibpMode;
use palisade_core::backup::schedule::Plan;
use palisade_core::backup::{Decryption, Encryption};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

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

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub raw: RawConfig,
    pub listen: SocketAddr,
    /// Where `GET /metrics` is served, when metrics are on.
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_origins: Vec<String>,
    pub hibp_mode: HibpMode,
    /// Where traces are exported, when `PALISADE_OTLP_ENDPOINT` is set.
    pub otlp: Option<OtlpSettings>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads from `palisade.toml` (or `PALISADE_CONFIG`) and the environment.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var("PALISADE_CONFIG").unwrap_or_else(|_| "palisade.toml".into());
        let figment = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::file(&file))
            .merge(
                Env::prefixed("PALISADE_")
                    .ignore(&[
                        "config",
                        "test_postgres_url",
                        "test_redis_url",
                        "log",
                        "log_format",
                    ])
                    .split("__"),
            );
        let raw: RawConfig = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        Config::from_raw(raw)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            ConfigError(format!(
                "PALISADE_LISTEN={:?} is not an address like 127.0.0.1:8080",
                raw.listen
            ))
        })?;
        let metrics_listen = match raw.metrics_listen.trim() {
            "" => None,
            text => {
                let addr: SocketAddr = text.parse().map_err(|_| {
                    ConfigError(format!(
                        "PALISADE_METRICS_LISTEN={text:?} is not an address like 127.0.0.1:9464 (empty turns metrics off)"
                    ))
                })?;
                if addr == listen && addr.port() != 0 {
                    return Err(ConfigError(format!(
                        "PALISADE_METRICS_LISTEN={text:?} is the public address: metrics need a listener of their own"
                    )));
                }
                Some(addr)
            }
        };
        let database_url = match &raw.database_url {
            Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
            _ => format!(
                "sqlite://{}",
                raw.data_dir.join("palisade.sqlite").display()
            ),
        };
        let trusted_proxies = split_list(&raw.trusted_proxies)
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "PALISADE_TRUSTED_PROXIES: {s:?} is not an IP address or CIDR range"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cors_origins = split_list(&raw.cors_origins).map(str::to_owned).collect();
        if raw.campaign_messages_per_second == 0 {
            return Err(ConfigError(
                "PALISADE_CAMPAIGN_MESSAGES_PER_SECOND must be at least 1 (pause a campaign to stop it)"
                    .into(),
            ));
        }
        if raw.webhooks_deliveries_per_minute == 0 {
            return Err(ConfigError(
                "PALISADE_WEBHOOKS_DELIVERIES_PER_MINUTE must be at least 1 \
                 (0 would never deliver; stop the worker with PALISADE_WEBHOOKS_WORKER_INTERVAL_MS=0)"
                    .into(),
            ));
        }
        let hibp_mode = match raw.hibp_mode.as_deref().map(str::trim) {
            None | Some("") => HibpMode::default_for(raw.env == Environment::Production),
            Some(m) => HibpMode::parse(m).ok_or_else(|| {
                ConfigError(format!(
                    "PALISADE_HIBP_MODE={m:?} is not one of off, warn, enforce"
                ))
            })?,
        };
        let hibp_url = raw.hibp_url.trim();
        let after_scheme = hibp_url
            .strip_prefix("https://")
            .or_else(|| hibp_url.strip_prefix("http://"));
        match after_scheme {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => {
                return Err(ConfigError(format!(
                    "PALISADE_HIBP_URL={:?} is not an http(s) URL like {}",
                    raw.hibp_url,
                    palisade_core::auth::breach::DEFAULT_HIBP_URL
                )))
            }
        }
        let otlp =
            OtlpSettings::parse(&raw.otlp_endpoint, &raw.otlp_service_name).map_err(ConfigError)?;
        palisade_core::mail::transport::parse_from(&raw.mail_from).map_err(ConfigError)?;
        if let Some(url) = smtp_url(&raw) {
            palisade_core::mail::transport::check_smtp_url(url).map_err(ConfigError)?;
        }
        if let Some(url) = redis_url(&raw) {
            palisade_core::coordination::check_url(url).map_err(ConfigError)?;
            let ca = redis_ca_pem(&raw).map_err(ConfigError)?;
            palisade_core::coordination::check_tls(url, ca.as_deref()).map_err(ConfigError)?;
        } else if raw.redis_ca_file.is_some() {
            return Err(ConfigError(
                "PALISADE_REDIS_CA_FILE is set without PALISADE_REDIS_URL".into(),
            ));
        }
        let prefix = raw.redis_key_prefix.trim();
        if prefix.is_empty() || prefix.len() > 64 || prefix.chars().any(|c| c.is_whitespace()) {
            return Err(ConfigError(format!(
                "PALISADE_REDIS_KEY_PREFIX={:?} must be 1 to 64 characters without spaces",
                raw.redis_key_prefix
            )));
        }
        if let Some(url) = raw
            .security_alert_webhook
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError(format!(
                    "PALISADE_SECURITY_ALERT_WEBHOOK must be an http(s) URL, not {url:?}"
                )));
            }
            let secret_ok = raw
                .security_alert_webhook_secret
                .as_ref()
                .and_then(|k| palisade_core::webhooks::secret_bytes(k.expose_secret()))
                .is_some();
            if !secret_ok {
                return Err(ConfigError(
                    "PALISADE_SECURITY_ALERT_WEBHOOK needs PALISADE_SECURITY_ALERT_WEBHOOK_SECRET, a whsec_ secret (base64 after the prefix)".into(),
                ));
            }
        }
        if let Some(path) = raw
            .geoip_db
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            palisade_core::detections::geo::GeoDb::open(path).map_err(ConfigError)?;
        }
        for (name, value) in [
            ("PALISADE_DETECT_TRAVEL_KMH", raw.detect_travel_kmh),
            (
                "PALISADE_DETECT_NEW_COUNTRY_DAYS",
                raw.detect_new_country_days,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        check_backup_settings(&raw)?;
        upload_allowed_types(&raw.upload_allowed_types)?;
        if raw.upload_max_bytes == 0 {
            return Err(ConfigError(
                "PALISADE_UPLOAD_MAX_BYTES must be at least 1".into(),
            ));
        }
        let config = Config {
            raw,
            listen,
            metrics_listen,
            database_url,
            trusted_proxies,
            cors_origins,
            hibp_mode,
            otlp,
        };
        // Passkey settings given explicitly must work; a fallback that cannot only turns
        // passkeys off (with a warning at start).
        palisade_core::auth::passkeys::RelyingParty::from_settings(&crate::app::settings(&config))
            .map_err(ConfigError)?;
        Ok(config)
    }

    pub fn production(&self) -> bool {
        self.raw.env == Environment::Production
    }

    /// The effective configuration with secrets redacted, as TOML.
    pub fn redacted(&self) -> String {
        let mut out = toml_escape_table(&self.raw);
        let ring = |s: &Option<SecretString>| match s {
            Some(v) => format!(
                "\"[redacted: {} key(s)]\"",
                v.expose_secret()
                    .split(',')
                    .filter(|x| !x.trim().is_empty())
                    .count()
            ),
            None => "\"[not set]\"".into(),
        };
        out.push_str(&format!(
            "signing_keys = {}\n",
            ring(&self.raw.signing_keys)
        ));
        out.push_str(&format!(
            "encryption_keys = {}\n",
            ring(&self.raw.encryption_keys)
        ));
        out.push_str(&format!(
            "smtp_url = {}\n",
            match smtp_url(&self.raw) {
                Some(u) => format!("{:?}", palisade_store::redact_url(u)),
                None => "\"[not set: mails are written to <data_dir>/mail/]\"".into(),
            }
        ));
        out.push_str(&format!(
            "redis_url = {}\n",
            match redis_url(&self.raw) {
                Some(u) => format!("{:?}", palisade_store::redact_url(u)),
                None => "\"[not set: limits, revocations and realtime stay on each node and the database]\"".into(),
            }
        ));
        out.push_str(&format!(
            "# effective hibp_mode: {}\n",
            self.hibp_mode.as_str()
        ));
        out.push_str(&format!(
            "# effective database: {}\n",
            palisade_store_redact(&self.database_url)
        ));
        out.push_str(&format!(
            "backup_passphrase = {}\n",
            if backup_passphrase(&self.raw).is_some() {
                "\"[redacted]\""
            } else {
                "\"[not set]\""
            }
        ));
        out.push_str(&backup_summary(&self.raw));
        out.push_str(&match self.metrics_listen {
            Some(addr) => format!("# metrics: GET http://{addr}/metrics\n"),
            None => "# metrics: off (set PALISADE_METRICS_LISTEN to serve GET /metrics)\n".into(),
        });
        out.push_str(&match &self.otlp {
            Some(o) => format!(
                "# traces: OTLP/HTTP to {} as service {:?}\n",
                o.traces_url, o.service_name
            ),
            None => "# traces: off (set PALISADE_OTLP_ENDPOINT to export them)\n".into(),
        });
        out
    }
}

/// The backup passphrase when one is set and not blank.
pub fn backup_passphrase(raw: &RawConfig) -> Option<SecretString> {
    raw.backup_passphrase
        .as_ref()
        .filter(|p| !p.expose_secret().is_empty())
        .cloned()
}

/// How backups are encrypted: to `PALISADE_BACKUP_RECIPIENTS`, with `PALISADE_BACKUP_PASSPHRASE`,
/// or not at all (refused unless asked for).
pub fn backup_encryption(raw: &RawConfig) -> Result<Encryption, ConfigError> {
    let recipients =
        palisade_core::backup::parse_recipients(&raw.backup_recipients).map_err(ConfigError)?;
    match (recipients.is_empty(), backup_passphrase(raw)) {
        (false, Some(_)) => Err(ConfigError(
            "set PALISADE_BACKUP_RECIPIENTS or PALISADE_BACKUP_PASSPHRASE, not both (age encrypts to keys or to a passphrase)".into(),
        )),
        (false, None) => Ok(Encryption::Recipients(recipients)),
        (true, Some(p)) => Ok(Encryption::Passphrase(age_secret(&p))),
        (true, None) => Ok(Encryption::None),
    }
}

/// What decrypts backups: `PALISADE_BACKUP_IDENTITY_FILE` and/or the passphrase.
pub fn backup_decryption(raw: &RawConfig) -> Decryption {
    Decryption {
        identity_file: raw
            .backup_identity_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty()),
        passphrase: backup_passphrase(raw).map(|p| age_secret(&p)),
    }
}

fn age_secret(p: &SecretString) -> palisade_core::backup::AgeSecret {
    palisade_core::backup::AgeSecret::from(p.expose_secret().to_owned())
}

/// The schedule of `palisade serve`'s backups, when `PALISADE_BACKUP_DIR` is set.
pub fn backup_plan(raw: &RawConfig) -> Result<Option<Plan>, ConfigError> {
    let cron = palisade_core::backup::parse_schedule(&raw.backup_schedule).map_err(ConfigError)?;
    Ok(raw
        .backup_dir
        .clone()
        .filter(|d| !d.as_os_str().is_empty())
        .map(|dir| Plan {
            dir,
            cron,
            retention_days: raw.backup_retention_days,
        }))
}

/// The backup settings' checks (for the start and `check-config`): keys that parse, a schedule
/// that parses, an identity file that can be read, and scheduled backups only when encrypted.
fn check_backup_settings(raw: &RawConfig) -> Result<(), ConfigError> {
    let encryption = backup_encryption(raw)?;
    let plan = backup_plan(raw)?;
    if let Some(path) = backup_decryption(raw).identity_file {
        palisade_core::backup::load_identities(&path).map_err(|e| ConfigError(e.0))?;
    }
    if plan.is_some() && encryption.is_none() {
        return Err(ConfigError(
            "PALISADE_BACKUP_DIR turns scheduled backups on, and they are always encrypted: set PALISADE_BACKUP_RECIPIENTS (age public keys) or PALISADE_BACKUP_PASSPHRASE".into(),
        ));
    }
    Ok(())
}

/// `check-config`'s lines about backups.
fn backup_summary(raw: &RawConfig) -> String {
    let encryption = backup_encryption(raw)
        .map(|e| palisade_core::backup::describe_encryption(&e))
        .unwrap_or_else(|e| e.0);
    let decryption = match (
        raw.backup_identity_file.as_ref().filter(|p| !p.as_os_str().is_empty()),
        backup_passphrase(raw),
    ) {
        (Some(_), _) => "PALISADE_BACKUP_IDENTITY_FILE",
        (None, Some(_)) => "the passphrase",
        (None, None) => "nothing configured (verify and restore need PALISADE_BACKUP_IDENTITY_FILE or the passphrase)",
    };
    let schedule = match backup_plan(raw) {
        Ok(Some(p)) => format!(
            "scheduled ({:?}, UTC) into {}, archives kept {}",
            raw.backup_schedule.trim(),
            p.dir.display(),
            if p.retention_days == 0 {
                "forever".to_owned()
            } else {
                format!("{} days once a newer one verifies", p.retention_days)
            }
        ),
        Ok(None) => "not scheduled (set PALISADE_BACKUP_DIR)".into(),
        Err(e) => e.0,
    };
    format!("# backups: {schedule}; encryption: {encryption}; decryption: {decryption}\n")
}

/// The SMTP URL when one is set and not blank.
pub fn smtp_url(raw: &RawConfig) -> Option<&str> {
    raw.smtp_url
        .as_ref()
        .map(|u| u.expose_secret().trim())
        .filter(|u| !u.is_empty())
}

/// The CA certificates of `PALISADE_REDIS_CA_FILE`, when it is set.
pub fn redis_ca_pem(raw: &RawConfig) -> Result<Option<Vec<u8>>, String> {
    raw.redis_ca_file
        .as_ref()
        .map(|path| {
            std::fs::read(path).map_err(|e| {
                format!(
                    "PALISADE_REDIS_CA_FILE={} cannot be read: {e}",
                    path.display()
                )
            })
        })
        .transpose()
}

/// The Redis URL when one is set and not blank.
pub fn redis_url(raw: &RawConfig) -> Option<&str> {
    raw.redis_url
        .as_ref()
        .map(|u| u.expose_secret().trim())
        .filter(|u| !u.is_empty())
}

/// `PALISADE_UPLOAD_ALLOWED_TYPES`: each type must be in the safe set (a type outside it is
/// refused, naming the safe set); empty means the whole safe set.
pub fn upload_allowed_types(raw: &str) -> Result<Vec<String>, ConfigError> {
    use palisade_core::tickets::sniff::{is_safe_type, SAFE_TYPES};
    let listed: Vec<String> = split_list(raw).map(str::to_ascii_lowercase).collect();
    if let Some(bad) = listed.iter().find(|t| !is_safe_type(t)) {
        return Err(ConfigError(format!(
            "PALISADE_UPLOAD_ALLOWED_TYPES: {bad:?} is not in the safe set ({})",
            SAFE_TYPES
                .iter()
                .map(|(m, _)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(if listed.is_empty() {
        SAFE_TYPES.iter().map(|(m, _)| (*m).to_owned()).collect()
    } else {
        listed
    })
}

pub fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn palisade_store_redact(url: &str) -> String {
    palisade_store::redact_url(url)
}

fn toml_escape_table(raw: &RawConfig) -> String {
    let mut v = serde_json::to_value(raw).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        for key in ["database_url", "database_migration_url"] {
            if let Some(serde_json::Value::String(s)) = map.get(key).cloned() {
                map.insert(
                    key.into(),
                    serde_json::Value::String(palisade_store::redact_url(&s)),
                );
            }
        }
    }
    let mut out = String::new();
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            match val {
                serde_json::Value::Null => out.push_str(&format!("# {k} = (not set)\n")),
                other => out.push_str(&format!("{k} = {other}\n")),
            }
        }
    }
    out
}

/// Reads a key ring from the variable or the file it names.
pub fn key_ring_text(
    direct: &Option<SecretString>,
    file: &Option<PathBuf>,
    name: &str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(v) = direct {
        return Ok(Some(v.clone()));
    }
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|s| Some(SecretString::from(s.trim().to_owned())))
            .map_err(|e| ConfigError(format!("{name}_FILE: cannot read {}: {e}", path.display()))),
        None => Ok(None),
    }
}

/// Creates a directory (and parents); a directory this creates is private to the server's user
/// (0700), since it holds the database and, in development, the keys.
pub fn ensure_dir(p: &Path) -> Result<(), ConfigError> {
    if p.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(p)
        .map_err(|e| ConfigError(format!("cannot create {}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_geographic_thresholds_are_read_and_zero_is_refused() {
        let c = Config::from_raw(RawConfig {
            detect_travel_kmh: 800,
            detect_new_country_days: 30,
            ..RawConfig::default()
        })
        .unwrap();
        let detect = crate::app::settings(&c).detect;
        assert_eq!(detect.travel_kmh, 800.0);
        assert_eq!(detect.new_country_days, 30);
        for raw in [
            RawConfig {
                detect_travel_kmh: 0,
                ..RawConfig::default()
            },
            RawConfig {
                detect_new_country_days: 0,
                ..RawConfig::default()
            },
        ] {
            let e = Config::from_raw(raw).unwrap_err().0;
            assert!(
                e.contains("PALISADE_DETECT_") && e.contains("at least 1"),
                "{e}"
            );
        }
    }

    #[test]
    fn redis_settings_are_checked_and_the_password_never_printed() {
        let with = |url: &str, prefix: &str| {
            Config::from_raw(RawConfig {
                redis_url: Some(url.to_owned().into()),
                redis_key_prefix: prefix.into(),
                ..RawConfig::default()
            })
        };
        let c = with("redis://:s3cret@redis.internal:6379/0", "acme").unwrap();
        let printed = c.redacted();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("redis_url = \"redis://:***@redis.internal:6379/0\""),
            "{printed}"
        );
        assert!(printed.contains("redis_key_prefix = \"acme\""), "{printed}");
        let e = with("http://:s3cret@redis.internal", "acme").unwrap_err().0;
        assert!(
            e.contains("PALISADE_REDIS_URL") && !e.contains("s3cret"),
            "{e}"
        );
        let e = with("redis://127.0.0.1:6379", " ").unwrap_err().0;
        assert!(e.contains("PALISADE_REDIS_KEY_PREFIX"), "{e}");
        // Empty means no Redis.
        let c = with("  ", "palisade").unwrap();
        assert!(crate::app::settings(&c).redis_url.is_none());
        assert!(c.redacted().contains("redis_url = \"[not set"));
    }

    #[test]
    fn a_redis_ca_file_needs_a_rediss_url_and_a_readable_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let with = |url: Option<&str>, ca: &Path| {
            Config::from_raw(RawConfig {
                redis_url: url.map(|u| u.to_owned().into()),
                redis_ca_file: Some(ca.to_path_buf()),
                ..RawConfig::default()
            })
        };
        let missing = dir.path().join("missing.pem");
        let e = with(Some("rediss://:s3cret@redis.internal:6380"), &missing)
            .unwrap_err()
            .0;
        assert!(
            e.contains("PALISADE_REDIS_CA_FILE")
                && e.contains("cannot be read")
                && !e.contains("s3cret"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let e = with(Some("rediss://redis.internal:6380"), &junk)
            .unwrap_err()
            .0;
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = with(Some("redis://redis.internal:6379"), &junk)
            .unwrap_err()
            .0;
        assert!(e.contains("not a rediss://"), "{e}");
        let e = with(None, &junk).unwrap_err().0;
        assert!(e.contains("without PALISADE_REDIS_URL"), "{e}");
    }

    #[test]
    fn defaults_are_sqlite_in_the_data_dir_on_localhost() {
        let c = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(
            c.database_url.starts_with("sqlite://") && c.database_url.ends_with("palisade.sqlite")
        );
        assert!(!c.production());
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let raw = RawConfig {
            listen: "nope".into(),
            ..RawConfig::default()
        };
        assert!(Config::from_raw(raw)
            .unwrap_err()
            .0
            .contains("PALISADE_LISTEN"));
        let raw = RawConfig {
            trusted_proxies: "10.0.0.1, bad".into(),
            ..RawConfig::default()
        };
        assert!(Config::from_raw(raw)
            .unwrap_err()
            .0
            .contains("PALISADE_TRUSTED_PROXIES"));
        let raw = RawConfig {
            trusted_proxies: "10.0.0.1, 192.168.0.0/16".into(),
            ..RawConfig::default()
        };
        assert_eq!(Config::from_raw(raw).unwrap().trusted_proxies.len(), 2);
    }

    #[test]
    fn the_breach_check_enforces_in_production_and_is_off_in_development() {
        let mode = |env: Environment, mode: Option<&str>| {
            let raw = RawConfig {
                env,
                hibp_mode: mode.map(str::to_owned),
                ..RawConfig::default()
            };
            Config::from_raw(raw).map(|c| crate::app::settings(&c).hibp_mode)
        };
        assert_eq!(
            mode(Environment::Production, None).unwrap(),
            HibpMode::Enforce
        );
        assert_eq!(mode(Environment::Development, None).unwrap(), HibpMode::Off);
        assert_eq!(
            mode(Environment::Production, Some("warn")).unwrap(),
            HibpMode::Warn
        );
        assert_eq!(
            mode(Environment::Development, Some(" Enforce ")).unwrap(),
            HibpMode::Enforce
        );
        assert!(mode(Environment::Development, Some("strict"))
            .unwrap_err()
            .0
            .contains("PALISADE_HIBP_MODE"));
        let settings = crate::app::settings(&Config::from_raw(RawConfig::default()).unwrap());
        assert_eq!(settings.hibp_url, "https://api.pwnedpasswords.com/range/");
        for bad in ["", "ftp://mirror/range/", "https://", "pwned/range"] {
            let raw = RawConfig {
                hibp_url: bad.into(),
                ..RawConfig::default()
            };
            assert!(
                Config::from_raw(raw)
                    .unwrap_err()
                    .0
                    .contains("PALISADE_HIBP_URL"),
                "{bad}"
            );
        }
    }

    #[test]
    fn consent_keywords_are_a_comma_separated_list() {
        let settings = |out: &str, inn: &str| {
            let raw = RawConfig {
                opt_out_keywords: out.into(),
                opt_in_keywords: inn.into(),
                ..RawConfig::default()
            };
            crate::app::settings(&Config::from_raw(raw).unwrap())
        };
        let d = crate::app::settings(&Config::from_raw(RawConfig::default()).unwrap());
        for k in ["STOP", "STOP PROMOTIONS", "ARRÊT", "BAJA", "STOPP", "SAIR"] {
            assert!(d.opt_out_keywords.iter().any(|x| x == k), "{k}");
        }
        assert_eq!(d.opt_in_keywords, ["START", "UNSTOP"]);
        let s = settings(" HALT , Basta,,", "");
        assert_eq!(s.opt_out_keywords, ["HALT", "Basta"]);
        assert!(s.opt_in_keywords.is_empty(), "empty disables");
    }

    #[test]
    fn passkey_settings_that_cannot_work_stop_the_start() {
        let raw = RawConfig {
            public_url: Some("https://crm.example.com".into()),
            webauthn_rp_id: Some("other.example".into()),
            ..RawConfig::default()
        };
        let err = Config::from_raw(raw).unwrap_err().0;
        assert!(err.contains("PALISADE_WEBAUTHN_RP_ID"), "{err}");
        let raw = RawConfig {
            webauthn_origins: "https://crm.example.com/app".into(),
            webauthn_rp_id: Some("example.com".into()),
            ..RawConfig::default()
        };
        assert!(Config::from_raw(raw)
            .unwrap_err()
            .0
            .contains("PALISADE_WEBAUTHN_ORIGINS"));
        let raw = RawConfig {
            webauthn_origins: "https://crm.example.com, https://app.example.com".into(),
            webauthn_rp_id: Some("example.com".into()),
            ..RawConfig::default()
        };
        let s = crate::app::settings(&Config::from_raw(raw).unwrap());
        assert_eq!(s.webauthn_origins.len(), 2);
        // The default (a loopback address) starts, with passkeys on localhost.
        assert!(Config::from_raw(RawConfig::default()).is_ok());
    }

    #[test]
    fn metrics_are_off_by_default_and_need_their_own_address() {
        let c = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(c.metrics_listen, None);
        assert!(c.redacted().contains("# metrics: off"));
        let with = |v: &str| {
            Config::from_raw(RawConfig {
                metrics_listen: v.into(),
                ..RawConfig::default()
            })
        };
        let c = with(" 127.0.0.1:9464 ").unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(c
            .redacted()
            .contains("# metrics: GET http://127.0.0.1:9464/metrics"));
        for bad in ["9464", "localhost:9464", "127.0.0.1"] {
            let e = with(bad).unwrap_err().0;
            assert!(e.contains("PALISADE_METRICS_LISTEN"), "{bad}: {e}");
        }
        let e = with("127.0.0.1:8080").unwrap_err().0;
        assert!(e.contains("public address"), "{e}");
        assert_eq!(c.raw.slow_request_ms, 1000);
    }

    #[test]
    fn traces_are_off_by_default_and_need_an_http_collector_url() {
        let c = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(c.otlp, None);
        assert!(c.redacted().contains("# traces: off"));
        let with = |endpoint: &str, service: &str| {
            Config::from_raw(RawConfig {
                otlp_endpoint: endpoint.into(),
                otlp_service_name: service.into(),
                ..RawConfig::default()
            })
        };
        for (given, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            (
                " https://otel.example.com/ ",
                "https://otel.example.com/v1/traces",
            ),
            (
                "https://otel.example.com/otlp/",
                "https://otel.example.com/otlp/v1/traces",
            ),
            (
                "http://collector:4318/v1/traces",
                "http://collector:4318/v1/traces",
            ),
        ] {
            let c = with(given, "palisade").unwrap();
            let o = c.otlp.clone().unwrap();
            assert_eq!(o.traces_url, url, "{given}");
            assert!(
                c.redacted().contains(&format!(
                    "# traces: OTLP/HTTP to {url} as service \"palisade\""
                )),
                "{}",
                c.redacted()
            );
        }
        assert_eq!(
            with("http://c:4318", " crm-eu ")
                .unwrap()
                .otlp
                .unwrap()
                .service_name,
            "crm-eu"
        );
        for bad in [
            "collector:4318",
            "127.0.0.1:4318",
            "grpc://collector:4317",
            "http://",
            "http://collector:4318/?x=1",
            "not a url",
        ] {
            let e = with(bad, "palisade").unwrap_err().0;
            assert!(e.contains("PALISADE_OTLP_ENDPOINT"), "{bad}: {e}");
        }
        let e = with("https://user:hunter2@otel.example.com", "palisade")
            .unwrap_err()
            .0;
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_HEADERS") && !e.contains("hunter2"),
            "{e}"
        );
        let e = with("http://c:4318", " ").unwrap_err().0;
        assert!(e.contains("PALISADE_OTLP_SERVICE_NAME"), "{e}");
    }

    #[test]
    fn redaction_hides_secrets_and_passwords() {
        let raw = RawConfig {
            signing_keys: Some(SecretString::from("a:SECRETSECRET".to_owned())),
            database_url: Some("postgres://app:hunter2@db/p".into()),
            ..RawConfig::default()
        };
        let text = Config::from_raw(raw).unwrap().redacted();
        assert!(
            !text.contains("SECRETSECRET") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("[redacted: 1 key(s)]"));
    }

    #[test]
    fn mail_settings_are_checked_and_the_smtp_password_redacted() {
        let c = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(c.raw.mail_from, "Palisade <no-reply@localhost>");
        assert!(c.redacted().contains("smtp_url = \"[not set"));
        let raw = RawConfig {
            mail_from: "Palisade <not an address>".into(),
            ..RawConfig::default()
        };
        let e = Config::from_raw(raw).unwrap_err().0;
        assert!(e.contains("PALISADE_MAIL_FROM"), "{e}");
        let raw = RawConfig {
            smtp_url: Some(SecretString::from("ftp://u:hunter2@x".to_owned())),
            ..RawConfig::default()
        };
        let e = Config::from_raw(raw).unwrap_err().0;
        assert!(
            e.contains("PALISADE_SMTP_URL") && !e.contains("hunter2"),
            "{e}"
        );
        let raw = RawConfig {
            smtp_url: Some(SecretString::from(
                "smtp://mailer:hunter2@mail.example.com:587?tls=required".to_owned(),
            )),
            ..RawConfig::default()
        };
        let text = Config::from_raw(raw).unwrap().redacted();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("smtp_url = \"smtp://mailer:***@mail.example.com:587?tls=required\""),
            "{text}"
        );
    }
}
