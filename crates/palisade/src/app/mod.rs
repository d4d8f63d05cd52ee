//! Wiring: configuration in, a running server out.
//!
//! [`Application::build`] does everything that can fail (keys, database, migrations, production
//! checks, binding the port) before anything is spawned, so `serve` and the tests either get a
//! ready server or a clear error. Tests bind port 0 and read the port back.

mod keys;
mod settings;

pub use keys::*;
pub use settings::*;

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
        // SQLite: the WAL copied back into the database file after commits, off the writer.
        let wal_checkpointer = self.services.store.spawn_wal_checkpointer();
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
        if let Some(w) = wal_checkpointer {
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
