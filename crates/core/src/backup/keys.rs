//! How archives are encrypted and decrypted: age X25519 recipients and identities, or a
//! passphrase.

use super::*;

/// How archives are encrypted.
#[derive(Clone)]
pub enum Encryption {
    Recipients(Vec<age::x25519::Recipient>),
    Passphrase(SecretString),
    None,
}

impl Encryption {
    pub fn is_none(&self) -> bool {
        matches!(self, Encryption::None)
    }

    pub(super) fn encryptor(&self) -> Result<age::Encryptor, String> {
        match self {
            Encryption::Recipients(r) => {
                age::Encryptor::with_recipients(r.iter().map(|r| r as &dyn age::Recipient))
                    .map_err(|e| format!("cannot encrypt to PALISADE_BACKUP_RECIPIENTS: {e}"))
            }
            Encryption::Passphrase(p) => Ok(age::Encryptor::with_user_passphrase(p.clone())),
            Encryption::None => Err("no encryption configured".into()),
        }
    }
}

/// What can decrypt archives: the identities of `PALISADE_BACKUP_IDENTITY_FILE` and/or the
/// passphrase.
#[derive(Clone, Default)]
pub struct Decryption {
    pub identity_file: Option<PathBuf>,
    pub passphrase: Option<SecretString>,
}

impl Decryption {
    /// Whether anything is configured that could decrypt an archive.
    pub fn is_configured(&self) -> bool {
        self.identity_file.is_some() || self.passphrase.is_some()
    }

    pub(super) fn decrypt<R: std::io::BufRead>(
        &self,
        input: R,
    ) -> Result<age::stream::StreamReader<R>, BackupError> {
        let decryptor = age::Decryptor::new_buffered(input).map_err(|e| {
            BackupError::new(format!(
                "the archive's age header cannot be read (damaged or modified): {e}"
            ))
        })?;
        if decryptor.is_scrypt() {
            let Some(passphrase) = &self.passphrase else {
                return Err(BackupError::new(
                    "this backup is encrypted with a passphrase: set PALISADE_BACKUP_PASSPHRASE",
                ));
            };
            let identity = age::scrypt::Identity::new(passphrase.clone());
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(|e| match e {
                    age::DecryptError::DecryptionFailed
                    | age::DecryptError::NoMatchingKeys
                    | age::DecryptError::KeyDecryptionFailed => BackupError::new(
                        "wrong passphrase: PALISADE_BACKUP_PASSPHRASE does not decrypt this backup",
                    ),
                    other => BackupError::new(format!("cannot decrypt the backup: {other}")),
                })
        } else {
            let Some(path) = &self.identity_file else {
                return Err(BackupError::new(
                    "this backup is encrypted to age recipients: set PALISADE_BACKUP_IDENTITY_FILE to a file holding a matching identity",
                ));
            };
            let identities = load_identities(path)?;
            decryptor
                .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                .map_err(|e| match e {
                    age::DecryptError::NoMatchingKeys => BackupError::new(
                        "wrong identity: no identity in PALISADE_BACKUP_IDENTITY_FILE matches a recipient of this backup",
                    ),
                    other => BackupError::new(format!(
                        "cannot decrypt the backup (damaged or modified): {other}"
                    )),
                })
        }
    }
}

/// The identities of an age identity file (`AGE-SECRET-KEY-1…` lines), with a clear error.
pub fn load_identities(
    path: &Path,
) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, BackupError> {
    let what = "PALISADE_BACKUP_IDENTITY_FILE";
    let file = age::IdentityFile::from_file(path.to_string_lossy().into_owned())
        .map_err(|e| BackupError::new(format!("{what}: cannot read {}: {e}", path.display())))?;
    let ids = file.into_identities().map_err(|e| {
        BackupError::new(format!(
            "{what}: {} holds no usable age identity: {e}",
            path.display()
        ))
    })?;
    if ids.is_empty() {
        return Err(BackupError::new(format!(
            "{what}: {} holds no age identity (AGE-SECRET-KEY-1…)",
            path.display()
        )));
    }
    Ok(ids)
}

/// Parses `PALISADE_BACKUP_RECIPIENTS` (comma-separated age X25519 public keys).
pub fn parse_recipients(text: &str) -> Result<Vec<age::x25519::Recipient>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            age::x25519::Recipient::from_str(s).map_err(|_| {
                format!("PALISADE_BACKUP_RECIPIENTS: {s:?} is not an age X25519 public key (age1…; `age-keygen` prints one)")
            })
        })
        .collect()
}

/// Redacted for logs and errors.
pub fn describe_encryption(e: &Encryption) -> String {
    match e {
        Encryption::Recipients(r) => format!("age, {} recipient(s)", r.len()),
        Encryption::Passphrase(p) if p.expose_secret().is_empty() => {
            "age passphrase (empty!)".into()
        }
        Encryption::Passphrase(_) => "age passphrase".into(),
        Encryption::None => "none".into(),
    }
}
