//! Wiring: configuration in, a running server out.
//!
//! [`Application::build`] does everything that can fail (keys, database, migrations, production
//! checks, binding the port) before anything is spawned, so `serve` and the tests either get a
//! ready server or a clear error. Tests bind port 0 and read the port back.

use crate::config::{ensure_dir, key_ring_text, Config, ConfigError};
use palisade_core::backup::schedule::Plan;
use palisade_core::backup::BackupContext;
use palisade_core::crypto::{generate_ring_text, EncryptionKeyRing, Keys, SigningKeyRing};
use palisade_core::mail::Mailer;
use palisade_core::{Clock, Services, Settings, SystemClock};
use palisade_store::{DatabaseSettings, Store};
use palisade_web::{AppState, WebConfig};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// The metrics listener and its router, when `PALISADE_METRICS_LISTEN` is set.
    metrics: Option<Metrics>,
    services: Services,
    webhooks_worker_interval: Duration,
    media_worker_interval: Duration,
    outbound_worker_interval: Duration,
    mailer: Arc<Mailer>,
    mail_worker_interval: Duration,
    /// Scheduled backups, when `PALISADE_BACKUP_DIR` is set.
    backups: Option<(BackupContext, Plan, Option<time::OffsetDateTime>)>,
}

/// The metrics listener: bound in `build`, like the public one, so a taken port fails the start.
struct Metrics {
    listener: TcpListener,
    router: axum::Router,
    handle: palisade_web::metrics::PrometheusHandle,
}

/// The configured mail transport: SMTP (`PALISADE_SMTP_URL`) or `.eml` files under
/// `<data_dir>/mail/`, sending as `PALISADE_MAIL_FROM`. Call within a Tokio runtime.
pub fn mailer(config: &Config) -> Result<Mailer, ConfigError> {
    Mailer::new(
        crate::config::smtp_url(&config.raw),
        &config.raw.mail_from,
        config.raw.data_dir.join("mail"),
    )
    .map_err(ConfigError)
}

pub fn database_settings(config: &Config) -> DatabaseSettings {
    DatabaseSettings {
        url: config.database_url.clone(),
        migration_url: config
            .raw
            .database_migration_url
            .clone()
            .filter(|u| !u.trim().is_empty()),
        max_connections: config.raw.database_max_connections,
    }
}

/// What backup operations need, from the configuration; `actor` names them in the audit log.
pub fn backup_context(config: &Config, actor: &'static str) -> Result<BackupContext, ConfigError> {
    Ok(BackupContext {
        database: database_settings(config),
        storage_dir: settings(config).storage_dir,
        encryption: crate::config::backup_encryption(&config.raw)?,
        decryption: crate::config::backup_decryption(&config.raw),
        actor,
    })
}

pub fn settings(config: &Config) -> Settings {
    let r = &config.raw;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Settings {
        production: config.production(),
        rate_limit_api_per_minute: r.rate_limit_api_per_minute,
        rate_limit_login_per_minute: r.rate_limit_login_per_minute,
        rate_limit_register_per_hour: r.rate_limit_register_per_hour,
        rate_limit_webhook_failures_per_minute: r.rate_limit_webhook_failures_per_minute,
        lockout_threshold: r.lockout_threshold,
        lockout_duration: Duration::from_secs(r.lockout_minutes.saturating_mul(60)),
        login_failure_delay: Duration::from_millis(r.login_failure_delay_ms),
        // Leave a core for the request workers: hashing is ~20 ms of CPU per login.
        password_hash_concurrency: r.password_hash_concurrency.unwrap_or((cores / 2).max(1)),
        password_hash_queue: r.password_hash_queue,
        cookie_secure: r.cookie_secure,
        webhooks_allow_private_targets: r.webhooks_allow_private_targets,
        webhooks_allowed_domains: crate::config::split_list(&r.webhooks_allowed_domains)
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        webhooks_max_per_tenant: r.webhooks_max_per_tenant,
        webhooks_deliveries_per_minute: r.webhooks_deliveries_per_minute,
        campaign_messages_per_second: r.campaign_messages_per_second,
        whatsapp_graph_base_url: r.whatsapp_graph_base_url.trim_end_matches('/').to_owned(),
        whatsapp_graph_api_version: r.whatsapp_graph_api_version.clone(),
        public_url: r
            .public_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| format!("http://{}", config.listen)),
        opt_out_keywords: crate::config::split_list(&r.opt_out_keywords)
            .map(str::to_owned)
            .collect(),
        opt_in_keywords: crate::config::split_list(&r.opt_in_keywords)
            .map(str::to_owned)
            .collect(),
        storage_dir: r
            .storage_dir
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| r.data_dir.join("storage")),
        media_max_bytes: r.media_max_bytes,
        upload_max_bytes: r.upload_max_bytes,
        upload_quota_bytes_per_day: r.upload_quota_bytes_per_day,
        // Checked when the configuration was loaded.
        upload_allowed_types: crate::config::upload_allowed_types(&r.upload_allowed_types)
            .unwrap_or_default(),
        inbound_retention_days: r.inbound_retention_days,
        ws_max_per_user: r.ws_max_per_user,
        email_verification: r.email_verification,
        rate_limit_password_forgot_per_hour: r.rate_limit_password_forgot_per_hour,
        hibp_mode: config.hibp_mode,
        hibp_url: r.hibp_url.trim().to_owned(),
        webauthn_rp_id: r.webauthn_rp_id.clone().filter(|v| !v.trim().is_empty()),
        webauthn_origins: crate::config::split_list(&r.webauthn_origins)
            .map(str::to_owned)
            .collect(),
        redis_url: crate::config::redis_url(r).map(|u| u.to_owned().into()),
        redis_key_prefix: r.redis_key_prefix.trim().to_owned(),
        // Read and checked with the configuration.
        redis_ca_pem: crate::config::redis_ca_pem(r).ok().flatten(),
        detect: palisade_core::detections::DetectionSettings {
            failed_logins: r.detect_failed_logins.max(1),
            spray_accounts: r.detect_spray_accounts.max(1),
            window: Duration::from_secs(r.detect_window_minutes.max(1) * 60),
            export_rows: r.detect_export_rows,
            exports_per_hour: r.detect_exports_per_hour,
            read_records: r.detect_read_records,
            travel_kmh: f64::from(r.detect_travel_kmh.max(1)),
            new_country_days: i64::from(r.detect_new_country_days.max(1)),
            alert_email: r
                .security_alert_email
                .clone()
                .filter(|v| !v.trim().is_empty()),
            alert_webhook: r
                .security_alert_webhook
                .clone()
                .filter(|v| !v.trim().is_empty()),
            alert_webhook_secret: r.security_alert_webhook_secret.clone(),
        },
        ..Settings::default()
    }
}

pub fn web_config(config: &Config) -> WebConfig {
    WebConfig {
        trusted_proxies: config.trusted_proxies.clone(),
        cors_origins: config.cors_origins.clone(),
        hsts: config.raw.behind_tls_proxy,
        request_timeout: Duration::from_secs(config.raw.request_timeout_secs.max(1)),
        max_body_bytes: config.raw.max_body_bytes,
        slow_request: Duration::from_millis(config.raw.slow_request_ms),
        traces: config.otlp.is_some(),
        json_logs: crate::telemetry::json_logs(),
    }
}

/// Loads the key rings: configured ones, or in development the ones under the data directory
/// (generated on first start, mode 0600). Production refuses to start without configured keys.
pub fn load_keys(config: &Config) -> Result<Keys, ConfigError> {
    let r = &config.raw;
    let signing = key_ring_text(
        &r.signing_keys,
        &r.signing_keys_file,
        "PALISADE_SIGNING_KEYS",
    )?;
    let encryption = key_ring_text(
        &r.encryption_keys,
        &r.encryption_keys_file,
        "PALISADE_ENCRYPTION_KEYS",
    )?;
    let (signing, encryption) = match (signing, encryption) {
        (Some(s), Some(e)) => (s.expose_secret().to_owned(), e.expose_secret().to_owned()),
        (s, e) if config.production() => {
            let missing: Vec<&str> = [
                ("PALISADE_SIGNING_KEYS", s.is_none()),
                ("PALISADE_ENCRYPTION_KEYS", e.is_none()),
            ]
            .into_iter()
            .filter(|(_, m)| *m)
            .map(|(n, _)| n)
            .collect();
            return Err(ConfigError(format!(
                "production needs key rings: set {} (or the _FILE variant); `palisade keys generate` prints a fresh set",
                missing.join(" and ")
            )));
        }
        (s, e) => {
            let dir = r.data_dir.join("keys");
            let s = match s {
                Some(s) => s.expose_secret().to_owned(),
                None => dev_key_file(&dir.join("signing.keys"))?,
            };
            let e = match e {
                Some(e) => e.expose_secret().to_owned(),
                None => dev_key_file(&dir.join("encryption.keys"))?,
            };
            (s, e)
        }
    };
    let signing = SigningKeyRing::parse(&signing)
        .map_err(|e| ConfigError(format!("PALISADE_SIGNING_KEYS: {e}")))?;
    let encryption = EncryptionKeyRing::parse(&encryption)
        .map_err(|e| ConfigError(format!("PALISADE_ENCRYPTION_KEYS: {e}")))?;
    Ok(Keys::new(signing, encryption))
}

/// Reads a development key file, creating it (0600) with a fresh key on first start.
fn dev_key_file(path: &Path) -> Result<String, ConfigError> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().to_owned());
    }
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    let text = generate_ring_text();
    write_private(path, &text)
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "generated a development key ring");
    Ok(text)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

/// Reasons production mode refuses to start, each saying what to fix.
pub fn production_refusals(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if !config.production() {
        return out;
    }
    if !config.raw.cookie_secure {
        out.push("PALISADE_COOKIE_SECURE=false would send session cookies without Secure; remove it (serve over HTTPS)".into());
    }
    if config.raw.webhooks_allow_private_targets {
        out.push("PALISADE_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true would let webhooks reach loopback, private and metadata addresses over plain http; remove it".into());
    }
    out
}

impl Application {
    /// Connects, migrates, checks and binds; spawns nothing.
    pub async fn build(config: &Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let refusals = production_refusals(config);
        if !refusals.is_empty() {
            anyhow::bail!(
                "refusing to start in production:\n  - {}",
                refusals.join("\n  - ")
            );
        }
        if config.database_url.starts_with("sqlite:") {
            ensure_dir(&config.raw.data_dir)?;
        }
        let keys = load_keys(config)?;
        let mailer = Arc::new(mailer(config)?);
        if config.production() && crate::config::smtp_url(&config.raw).is_none() {
            tracing::warn!(
                "PALISADE_SMTP_URL is not set: mails are written to {} and never reach users",
                config.raw.data_dir.join("mail").display()
            );
        }
        let db = database_settings(config);
        Store::migrate(&db).await?;
        let store = Store::connect(&db).await?;
        if config.production() {
            if let Some(reason) = store.unsafe_role_reason().await? {
                anyhow::bail!("refusing to start in production: {reason}");
            }
        }
        let services = Services::new(store, clock, settings(config), keys);
        if let Some(path) = config
            .raw
            .geoip_db
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            let db =
                palisade_core::detections::geo::GeoDb::open(path).map_err(anyhow::Error::msg)?;
            services.detector.set_geo(db);
        }
        palisade_core::auth::cache::load_recent(&services).await?;
        let state = AppState {
            services: services.clone(),
            web: Arc::new(web_config(config)),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let handle = palisade_web::metrics::install().map_err(anyhow::Error::msg)?;
                let listener = TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {addr} (PALISADE_METRICS_LISTEN): {e}")
                })?;
                Some(Metrics {
                    listener,
                    router: palisade_web::metrics::router(handle.clone(), &state),
                    handle,
                })
            }
            None => None,
        };
        let backups = match crate::config::backup_plan(&config.raw)? {
            Some(plan) => {
                let first = plan.next_after(services.now());
                Some((backup_context(config, "backup-scheduler")?, plan, first))
            }
            None => None,
        };
        Ok(Application {
            backups,
            listener,
            metrics,
            router: palisade_web::router(state),
            services,
            webhooks_worker_interval: Duration::from_millis(config.raw.webhooks_worker_interval_ms),
            media_worker_interval: Duration::from_millis(config.raw.media_worker_interval_ms),
            outbound_worker_interval: Duration::from_millis(config.raw.outbound_worker_interval_ms),
            mailer,
            mail_worker_interval: Duration::from_millis(config.raw.mail_worker_interval_ms),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics listener's address, when metrics are on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|m| m.listener.local_addr().ok())
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The mail transport this node's worker sends through.
    pub fn mailer(&self) -> Arc<Mailer> {
        self.mailer.clone()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // Cross-process realtime fan-out (PostgreSQL): listening before serving, so a socket
        // opened here hears every node's events; first, as it can fail.
        let realtime = palisade_core::realtime::start(&self.services).await?;
        // Revocations and other auth changes over Redis (when set), subscribed before serving.
        let sharing = palisade_core::auth::cache::spawn_sharing(&self.services).await;
        let sync = palisade_core::auth::cache::spawn_sync(
            self.services.clone(),
            Duration::from_millis(250),
        );
        let usage = palisade_core::auth::api_keys::spawn_usage_flusher(
            self.services.clone(),
            Duration::from_secs(30),
        );
        let webhooks = (self.webhooks_worker_interval > Duration::ZERO).then(|| {
            palisade_core::webhooks::spawn_worker(
                self.services.clone(),
                self.webhooks_worker_interval,
            )
        });
        // Security alerts for the platform's alert webhook (PALISADE_SECURITY_ALERT_WEBHOOK),
        // queued with the alert: woken after that commit, and on the webhook worker's timer.
        let alert_webhooks = (self.webhooks_worker_interval > Duration::ZERO
            && self.services.settings.detect.alert_webhook.is_some())
        .then(|| {
            palisade_core::detections::webhook_outbox::spawn_worker(
                self.services.clone(),
                self.webhooks_worker_interval,
            )
        });
        // Meta's webhook POSTs are stored and processed in batches by this node's pipeline;
        // the worker picks up what a crash or a database failure left unprocessed.
        let pipeline = palisade_core::whatsapp::inbound::spawn_pipeline(self.services.clone());
        let inbound = palisade_core::whatsapp::inbound::spawn_worker(
            self.services.clone(),
            Duration::from_secs(1),
        );
        // Refused webhook POSTs: one audit record per connection per minute, written when the
        // minute has ended.
        let refusals = palisade_core::whatsapp::webhook_refusals::spawn_flusher(
            self.services.clone(),
            Duration::from_secs(1),
        );
        // Queued outgoing messages (stored with their queue row when written).
        let outbound = (self.outbound_worker_interval > Duration::ZERO).then(|| {
            palisade_core::whatsapp::outbound::spawn_worker(
                self.services.clone(),
                self.outbound_worker_interval,
            )
        });
        // Campaigns: scheduled ones started when due, running ones queued at the pace.
        let campaigns = (self.outbound_worker_interval > Duration::ZERO).then(|| {
            palisade_core::campaigns::dispatch::spawn_worker(
                self.services.clone(),
                self.outbound_worker_interval.min(Duration::from_secs(1)),
            )
        });
        // Inbound media downloads: woken when media messages are stored, and on a timer.
        let media = (self.media_worker_interval > Duration::ZERO).then(|| {
            palisade_core::whatsapp::media::spawn_worker(
                self.services.clone(),
                self.media_worker_interval,
            )
        });
        // Queued mails (account security): woken after the commit that queued them, and on a
        // timer for retries, other nodes' mails and leases that ran out.
        let mail = (self.mail_worker_interval > Duration::ZERO).then(|| {
            tracing::info!(transport = %self.mailer.describe(), "mail worker started");
            palisade_core::mail::worker::spawn_worker(
                self.services.clone(),
                self.mailer.clone(),
                self.mail_worker_interval,
            )
        });
        // PostgreSQL's message counts, appended by the trigger on `messages`, folded into the
        // analytics rollups about once a second (migration 0038; readers add what is pending).
        let count_folder = (self.services.store.backend() == palisade_store::Backend::Postgres)
            .then(|| {
                palisade_core::analytics::spawn_count_folder(
                    self.services.clone(),
                    Duration::from_secs(1),
                )
            });
        // Processed webhook bodies past their retention are dropped, in bounded batches.
        let retention = palisade_core::whatsapp::retention::spawn_worker(
            self.services.clone(),
            palisade_core::whatsapp::retention::INTERVAL,
        );
        // Sign-in attempts past their retention (180 days) are deleted hourly.
        let login_history = palisade_core::auth::login_history::spawn_pruning(
            self.services.clone(),
            palisade_core::whatsapp::retention::INTERVAL,
        );
        // Scheduled backups (PALISADE_BACKUP_DIR): created, verified, old ones pruned.
        let backups = self.backups.map(|(ctx, plan, first)| {
            palisade_core::backup::schedule::spawn(
                self.services.clone(),
                ctx,
                plan,
                first,
                palisade_core::backup::schedule::TICK,
            )
        });
        let limits = self.services.limits.clone();
        // A plain timer, not `worker::spawn_periodic`: `shrink` cannot fail and has nothing to
        // drain, and it keeps tokio's default (burst) catch-up.
        let shrink = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.shrink();
            }
        });
        // The metrics listener: served until the public one has drained.
        let metrics = self.metrics.map(|m| {
            let upkeep = palisade_web::metrics::spawn_upkeep(m.handle);
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(m.listener, m.router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
            [upkeep, server]
        });
        let hub = self.services.realtime.clone();
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Websockets are not in-flight requests: tell them to go (1001) so clients reconnect.
            hub.shut_down();
        })
        .await;
        for t in realtime
            .into_iter()
            .chain(sharing)
            .chain(metrics.into_iter().flatten())
        {
            t.abort();
        }
        sync.abort();
        shrink.abort();
        usage.abort();
        inbound.abort();
        refusals.abort();
        for p in pipeline {
            p.abort();
        }
        if let Some(w) = outbound {
            w.abort();
        }
        if let Some(w) = campaigns {
            w.abort();
        }
        retention.abort();
        login_history.abort();
        if let Some(w) = count_folder {
            w.abort();
        }
        if let Some(w) = backups {
            w.abort();
        }
        if let Some(w) = webhooks {
            w.abort();
        }
        if let Some(w) = alert_webhooks {
            w.abort();
        }
        if let Some(w) = media {
            w.abort();
        }
        if let Some(w) = mail {
            w.abort();
        }
        // The minute in progress too: no counted refusal is left out of the audit log.
        palisade_core::whatsapp::webhook_refusals::flush(&self.services, true).await;
        if let Err(e) = self.services.api_key_usage.flush(&self.services).await {
            tracing::warn!(error = %e, "could not record the last API key usage");
        }
        self.services.store.close().await;
        Ok(result?)
    }
}

/// Key loading for `check-config`: like start-up, but never writes development keys.
pub fn load_keys_checked(config: &Config) -> Result<(), ConfigError> {
    let r = &config.raw;
    for (direct, file, name) in [
        (
            &r.signing_keys,
            &r.signing_keys_file,
            "PALISADE_SIGNING_KEYS",
        ),
        (
            &r.encryption_keys,
            &r.encryption_keys_file,
            "PALISADE_ENCRYPTION_KEYS",
        ),
    ] {
        match key_ring_text(direct, file, name)? {
            // Both rings share the text format and its checks.
            Some(text) => {
                EncryptionKeyRing::parse(text.expose_secret())
                    .map_err(|e| ConfigError(format!("{name}: {e}")))?;
            }
            None if config.production() => {
                return Err(ConfigError(format!(
                    "{name} is not set (required in production)"
                )))
            }
            None => {}
        }
    }
    Ok(())
}
