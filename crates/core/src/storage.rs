//! Tenant file storage: where downloaded WhatsApp media (and later ticket attachments) live.
//!
//! Threat: a file name or path taken from input (a sender's document name, a key read back
//! from a tampered row) could escape the storage root or land in another tenant's directory.
//! Invariants:
//! - Every object lives under `<root>/<tenant id>/`; the tenant comes from the caller's scope,
//!   never from input.
//! - Keys are generated here (a UUID v7 in lowercase hex, 32 characters) and a key is checked
//!   to have exactly that shape before it is turned into a path, so no input ever names a file.
//! - A file appears under its key only complete: it is written to a temporary file in the same
//!   directory, flushed to disk and renamed; an abandoned upload removes its temporary file.
//! - Directories are created 0700 and files 0600 (the server's user only).
//!
//! Only the local filesystem is implemented; [`Storage`] is the seam for an S3-compatible
//! backend (the multi-node deployment shape), which would add a variant, not change callers.

use palisade_domain::TenantId;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWriteExt};
use uuid::Uuid;

/// The object store of every tenant.
#[derive(Debug, Clone)]
pub struct Storage {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Local { root: PathBuf },
}

/// A stored object opened for reading.
pub struct StoredObject {
    pub size: u64,
    pub reader: Pin<Box<dyn AsyncRead + Send + Sync>>,
}

impl Storage {
    /// Files under `root` (created on first write).
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Storage {
            backend: Backend::Local { root: root.into() },
        }
    }

    /// Starts writing a new object for `tenant`; [`Upload::finish`] makes it visible.
    pub async fn begin(&self, tenant: TenantId) -> io::Result<Upload> {
        match &self.backend {
            Backend::Local { root } => {
                let dir = root.join(tenant.as_uuid().simple().to_string());
                create_private_dir(&dir).await?;
                let key = Uuid::now_v7().simple().to_string();
                let temp = dir.join(format!(".partial-{key}"));
                let file = open_private(&temp).await?;
                Ok(Upload {
                    file: Some(file),
                    temp: Some(temp),
                    dest: dir.join(&key),
                    key,
                })
            }
        }
    }

    /// Opens an object; `None` when it does not exist (or the key is not one of ours).
    pub async fn open(&self, tenant: TenantId, key: &str) -> io::Result<Option<StoredObject>> {
        let Some(path) = self.path(tenant, key) else {
            return Ok(None);
        };
        match tokio::fs::File::open(&path).await {
            Ok(f) => {
                let size = f.metadata().await?.len();
                Ok(Some(StoredObject {
                    size,
                    reader: Box::pin(f),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes an object (nothing happens when it does not exist).
    pub async fn delete(&self, tenant: TenantId, key: &str) -> io::Result<()> {
        let Some(path) = self.path(tenant, key) else {
            return Ok(());
        };
        match tokio::fs::remove_file(path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn path(&self, tenant: TenantId, key: &str) -> Option<PathBuf> {
        if !valid_key(key) {
            return None;
        }
        match &self.backend {
            Backend::Local { root } => {
                Some(root.join(tenant.as_uuid().simple().to_string()).join(key))
            }
        }
    }
}

/// Keys are exactly what [`Storage::begin`] generates (32 lowercase hex digits) or a content
/// address given to [`Upload::finish_as`] (a SHA-256: 64 lowercase hex digits).
fn valid_key(key: &str) -> bool {
    (key.len() == 32 || key.len() == 64)
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An object being written. Dropped without [`Upload::finish`], its temporary file is removed.
pub struct Upload {
    file: Option<tokio::fs::File>,
    temp: Option<PathBuf>,
    dest: PathBuf,
    key: String,
}

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(chunk).await,
            None => Err(io::Error::other("upload already finished")),
        }
    }

    /// Flushes the bytes to disk and makes the object visible under its key, which it returns.
    pub async fn finish(mut self) -> io::Result<String> {
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other("upload already finished"));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let Some(temp) = self.temp.take() else {
            return Err(io::Error::other("upload already finished"));
        };
        if let Err(e) = tokio::fs::rename(&temp, &self.dest).await {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok(std::mem::take(&mut self.key))
    }
}

impl Upload {
    /// [`finish`](Self::finish), naming the object by its content: `sha256_hex` (64 lowercase
    /// hex digits, checked) instead of the generated key. An object of that name already has
    /// these bytes, so it is replaced by an identical copy.
    pub async fn finish_as(mut self, sha256_hex: &str) -> io::Result<String> {
        if sha256_hex.len() != 64 || !valid_key(sha256_hex) {
            return Err(io::Error::other("not a SHA-256 in lowercase hex"));
        }
        self.dest = match self.dest.parent() {
            Some(dir) => dir.join(sha256_hex),
            None => return Err(io::Error::other("no tenant directory")),
        };
        self.key = sha256_hex.to_owned();
        self.finish().await
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // Best effort: an abandoned upload leaves no partial file behind.
            let _ = std::fs::remove_file(temp);
        }
    }
}

async fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = tokio::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir).await
}

async fn open_private(path: &Path) -> io::Result<tokio::fs::File> {
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn objects_are_written_whole_per_tenant_and_keys_are_ours() {
        let dir = std::env::temp_dir().join(format!("palisade-storage-{}", Uuid::now_v7()));
        let s = Storage::local(&dir);
        let (a, b) = (
            TenantId::from_uuid(Uuid::now_v7()),
            TenantId::from_uuid(Uuid::now_v7()),
        );
        let mut up = s.begin(a).await.unwrap();
        up.write(b"hello ").await.unwrap();
        up.write(b"world").await.unwrap();
        let key = up.finish().await.unwrap();
        assert!(valid_key(&key));
        let mut o = s.open(a, &key).await.unwrap().unwrap();
        assert_eq!(o.size, 11);
        let mut got = Vec::new();
        o.reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello world");
        // Another tenant's directory does not have it; made-up keys are never paths.
        assert!(s.open(b, &key).await.unwrap().is_none());
        for bad in [
            "../x",
            "",
            "ABCDEF",
            &format!("../{key}"),
            &key.to_uppercase(),
        ] {
            assert!(s.open(a, bad).await.unwrap().is_none(), "{bad}");
        }
        // An abandoned upload leaves nothing behind.
        let mut up = s.begin(a).await.unwrap();
        up.write(b"partial").await.unwrap();
        drop(up);
        let names: Vec<String> = std::fs::read_dir(dir.join(a.as_uuid().simple().to_string()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![key.clone()]);
        s.delete(a, &key).await.unwrap();
        assert!(s.open(a, &key).await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
