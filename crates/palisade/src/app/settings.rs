//! The configuration turned into each component's settings: the core's, the web layer's, the
//! database's, the mailer and the backups'.

use super::*;

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
