//! The signing and encryption key rings: from the configuration, or in development generated
//! once into the data directory (owner-only files).

use super::*;

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
pub(super) fn dev_key_file(path: &Path) -> Result<String, ConfigError> {
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
pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
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
pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
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
