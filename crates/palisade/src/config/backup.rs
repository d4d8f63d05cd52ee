//! The backup settings: encryption to age recipients or a passphrase, the schedule, and their
//! checks.

use super::*;

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

pub(super) fn age_secret(p: &SecretString) -> palisade_core::backup::AgeSecret {
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
pub(super) fn check_backup_settings(raw: &RawConfig) -> Result<(), ConfigError> {
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
pub(super) fn backup_summary(raw: &RawConfig) -> String {
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
