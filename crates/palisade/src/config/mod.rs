//! Configuration: defaults → optional `palisade.toml` → `PALISADE_*` environment variables.
//!
//! Validated once at start into [`Config`] and passed explicitly; nothing reads the environment
//! later. Secrets are `SecretString`s, whose `Debug` prints nothing; `palisade check-config`
//! prints the effective configuration with them redacted.

mod backup;
mod raw;

pub use backup::*;
pub use raw::*;

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
