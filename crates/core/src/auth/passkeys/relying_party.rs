//! The WebAuthn relying party: which domain passkeys are bound to and which origins may use them.
//!
//! Built once at start from `PALISADE_WEBAUTHN_RP_ID` / `PALISADE_WEBAUTHN_ORIGINS`, falling
//! back to the host and origin of `PALISADE_PUBLIC_URL`. Settings given explicitly that cannot
//! work fail start-up with a message naming them; a fallback that cannot work (the public URL is
//! an IP address, which WebAuthn does not accept as a relying party id) leaves passkeys off, with
//! a warning, and their routes answer `503` saying what to set. The RP id must never change once
//! credentials exist: authenticators bind every credential to it.

use crate::Settings;
use std::time::Duration;
use webauthn_rs::prelude::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long a ceremony may take: the browser's timeout and the challenge's lifetime.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// The relying party, or why passkeys are off.
pub struct RelyingParty {
    inner: Result<Webauthn, String>,
    rp_id: String,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.rp_id)
            .field("enabled", &self.inner.is_ok())
            .finish()
    }
}

impl RelyingParty {
    /// The relying party of `settings`. `Err` for explicit settings that cannot work (start-up
    /// must fail); `Ok` with passkeys off when only the fallback cannot work.
    pub fn from_settings(settings: &Settings) -> Result<RelyingParty, String> {
        let public = Url::parse(&settings.public_url)
            .map_err(|e| format!("PALISADE_PUBLIC_URL={:?}: {e}", settings.public_url))?;
        let explicit_id = settings
            .webauthn_rp_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let loopback = public.domain().is_none() && is_loopback_ip(&public);
        let rp_id = match explicit_id {
            Some(id) => id.trim_end_matches('.').to_ascii_lowercase(),
            None => match public.domain() {
                Some(d) => d.trim_end_matches('.').to_ascii_lowercase(),
                // The development default (`http://127.0.0.1:8080`): WebAuthn refuses IP
                // addresses, but the same server opened as http://localhost:<port> works.
                None if loopback => "localhost".to_owned(),
                None => {
                    return Ok(RelyingParty::off(format!(
                        "passkeys are off: PALISADE_PUBLIC_URL ({}) has no domain name, and \
                         WebAuthn needs one; set PALISADE_PUBLIC_URL to the address people use \
                         (e.g. http://localhost:8080 in development) or set \
                         PALISADE_WEBAUTHN_RP_ID and PALISADE_WEBAUTHN_ORIGINS",
                        settings.public_url
                    )))
                }
            },
        };
        let explicit_origins = !settings.webauthn_origins.is_empty();
        let origins: Vec<Url> = if explicit_origins {
            settings
                .webauthn_origins
                .iter()
                .map(|o| parse_origin(o))
                .collect::<Result<_, _>>()?
        } else if loopback {
            let port = public.port_or_known_default().unwrap_or(80);
            vec![parse_origin(&format!("http://localhost:{port}"))?]
        } else {
            vec![parse_origin(&public.origin().ascii_serialization())
                .map_err(|e| format!("PALISADE_PUBLIC_URL: {e}"))?]
        };
        let fallback = explicit_id.is_none() && !explicit_origins;
        match build(&rp_id, &origins, settings.production) {
            Ok(w) => Ok(RelyingParty {
                inner: Ok(w),
                rp_id,
            }),
            Err(e) if fallback => Ok(RelyingParty::off(format!(
                "passkeys are off: {e} (derived from PALISADE_PUBLIC_URL; set \
                 PALISADE_WEBAUTHN_RP_ID and PALISADE_WEBAUTHN_ORIGINS)"
            ))),
            Err(e) => Err(e),
        }
    }

    /// [`Self::from_settings`] for the services, which cannot fail: configuration errors are
    /// refused earlier (the binary validates the settings); here they only turn passkeys off.
    pub fn from_settings_or_disabled(settings: &Settings) -> RelyingParty {
        match Self::from_settings(settings) {
            Ok(rp) => {
                if let Err(why) = &rp.inner {
                    tracing::warn!("{why}");
                }
                rp
            }
            Err(e) => {
                tracing::error!("passkeys are off: {e}");
                RelyingParty::off(format!("passkeys are off: {e}"))
            }
        }
    }

    fn off(reason: String) -> RelyingParty {
        RelyingParty {
            inner: Err(reason),
            rp_id: String::new(),
        }
    }

    /// The relying party, or `503` saying what to configure.
    pub fn webauthn(&self) -> crate::AppResult<&Webauthn> {
        self.inner
            .as_ref()
            .map_err(|why| crate::AppError::Unavailable {
                message: why.clone(),
                retry_after_secs: 3600,
            })
    }

    /// The relying party id ("" when passkeys are off).
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }
}

/// An origin: a scheme, a host and an optional port, nothing else.
fn parse_origin(s: &str) -> Result<Url, String> {
    let s = s.trim().trim_end_matches('/');
    let u = Url::parse(s).map_err(|e| format!("PALISADE_WEBAUTHN_ORIGINS: {s:?}: {e}"))?;
    if !matches!(u.scheme(), "https" | "http") || u.domain().is_none() {
        return Err(format!(
            "PALISADE_WEBAUTHN_ORIGINS: {s:?} is not an origin like https://crm.example.com \
             (a scheme and a domain name; WebAuthn refuses IP addresses)"
        ));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "PALISADE_WEBAUTHN_ORIGINS: {s:?} is not an origin: drop the path"
        ));
    }
    Ok(u)
}

fn build(rp_id: &str, origins: &[Url], production: bool) -> Result<Webauthn, String> {
    let Some(first) = origins.first() else {
        return Err("PALISADE_WEBAUTHN_ORIGINS names no origin".into());
    };
    for o in origins {
        let host = o.domain().unwrap_or_default().to_ascii_lowercase();
        if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
            return Err(format!(
                "PALISADE_WEBAUTHN_RP_ID={rp_id:?} must be the host of every origin or a \
                 parent domain of it; {} is not",
                o.origin().ascii_serialization()
            ));
        }
        // Browsers offer WebAuthn only in a secure context: https, or http on localhost.
        if production && o.scheme() == "http" && !is_localhost(&host) {
            return Err(format!(
                "{} is plain http: browsers allow passkeys only over https (or on localhost)",
                o.origin().ascii_serialization()
            ));
        }
    }
    let mut b = WebauthnBuilder::new(rp_id, first)
        .map_err(|e| format!("PALISADE_WEBAUTHN_RP_ID={rp_id:?}: {e}"))?
        .rp_name("Palisade")
        .timeout(CEREMONY_TTL)
        // A development server on localhost may be reached on any port; nothing else can
        // answer for localhost.
        .allow_any_port(is_localhost(rp_id));
    for o in origins.iter().skip(1) {
        b = b.append_allowed_origin(o);
    }
    b.build()
        .map_err(|e| format!("PALISADE_WEBAUTHN_RP_ID={rp_id:?}: {e}"))
}

fn is_loopback_ip(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public: &str, rp: Option<&str>, origins: &[&str]) -> Settings {
        Settings {
            public_url: public.into(),
            webauthn_rp_id: rp.map(str::to_owned),
            webauthn_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            ..Settings::default()
        }
    }

    #[test]
    fn the_public_url_gives_the_defaults() {
        let rp =
            RelyingParty::from_settings(&settings("https://crm.example.com/", None, &[])).unwrap();
        assert_eq!(rp.rp_id(), "crm.example.com");
        let w = rp.webauthn().unwrap();
        assert_eq!(
            w.get_allowed_origins()[0].origin().ascii_serialization(),
            "https://crm.example.com"
        );
        let rp =
            RelyingParty::from_settings(&settings("http://localhost:8080", None, &[])).unwrap();
        assert_eq!(rp.rp_id(), "localhost");
    }

    #[test]
    fn a_loopback_public_url_means_localhost() {
        let rp =
            RelyingParty::from_settings(&settings("http://127.0.0.1:8080", None, &[])).unwrap();
        assert_eq!(rp.rp_id(), "localhost");
        assert_eq!(
            rp.webauthn().unwrap().get_allowed_origins()[0]
                .origin()
                .ascii_serialization(),
            "http://localhost:8080"
        );
    }

    #[test]
    fn an_ip_public_url_turns_passkeys_off_but_does_not_stop_the_server() {
        let rp = RelyingParty::from_settings(&settings("http://10.0.0.7:8080", None, &[])).unwrap();
        let err = rp.webauthn().unwrap_err().to_string();
        assert!(err.contains("PALISADE_WEBAUTHN_RP_ID"), "{err}");
    }

    #[test]
    fn explicit_settings_that_cannot_work_are_refused() {
        for (rp, origins) in [
            (Some("example.com"), vec!["https://crm.other.com"]),
            (Some("example.com"), vec!["https://127.0.0.1"]),
            (Some("example.com"), vec!["https://crm.example.com/login"]),
            (Some("example.com"), vec!["not a url"]),
            (Some("crm.example.com"), vec!["https://example.com"]),
        ] {
            assert!(
                RelyingParty::from_settings(&settings("http://127.0.0.1:1", rp, &origins)).is_err(),
                "{rp:?} {origins:?}"
            );
        }
        let ok = RelyingParty::from_settings(&settings(
            "http://127.0.0.1:1",
            Some("example.com"),
            &["https://crm.example.com", "https://example.com"],
        ))
        .unwrap();
        assert_eq!(ok.webauthn().unwrap().get_allowed_origins().len(), 2);
    }

    #[test]
    fn production_refuses_plain_http_except_on_localhost() {
        let mut s = settings("https://x.example.com", None, &["http://crm.example.com"]);
        s.webauthn_rp_id = Some("example.com".into());
        s.production = true;
        assert!(RelyingParty::from_settings(&s).is_err());
        let mut s = settings("http://localhost:8080", None, &[]);
        s.production = true;
        assert!(RelyingParty::from_settings(&s).is_ok());
    }
}
