//! The archive format: a tar stream, compressed with zstd, encrypted with age (X25519
//! recipients or a passphrase), or only compressed when the operator asked for
//! `--unencrypted`.
//!
//! Entries: `database.sqlite` (a `VACUUM INTO` copy) or `database.pgdump` (`pg_dump -Fc`),
//! `storage/<tenant>/<key>` for every stored file, and `manifest.json` last, which names every
//! other entry with its size and SHA-256 (computed while the entry is written, so each part is
//! read once). Reading recomputes the hashes while unpacking and compares them with the
//! manifest; age authenticates the whole stream, so a flipped byte in an encrypted archive
//! fails decryption before any hash is compared.

use super::{BackupError, Decryption, Encryption};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

pub const FORMAT: &str = "palisade-backup-v1";
pub const MANIFEST: &str = "manifest.json";
pub const SQLITE_PART: &str = "database.sqlite";
pub const POSTGRES_PART: &str = "database.pgdump";
pub const STORAGE_PREFIX: &str = "storage/";
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// What `manifest.json` says about the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub palisade_version: String,
    /// The newest migration applied to the database at the snapshot.
    pub migration_level: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    pub parts: Vec<Part>,
}

/// One entry of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// The database entry's name for this manifest's database kind.
    pub fn database_part(&self) -> &'static str {
        if self.database == "postgres" {
            POSTGRES_PART
        } else {
            SQLITE_PART
        }
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Writes the archive to `out` (through `<out>.partial`, renamed when complete, mode 0600):
/// the database file under `db_part`, every file under `storage` (if it exists), then the
/// manifest built from `head` and the parts' hashes. Blocking: run it on a blocking thread.
pub fn write(
    out: &Path,
    encryption: &Encryption,
    db_file: &Path,
    db_part: &str,
    storage: &Path,
    head: Manifest,
) -> Result<Manifest, BackupError> {
    let partial = partial_path(out);
    let file = create_private(&partial)
        .map_err(|e| BackupError::new(format!("cannot create {}: {e}", partial.display())))?;
    let written = (|| -> io::Result<Manifest> {
        let buf = BufWriter::with_capacity(1 << 20, file);
        let (buf, manifest) = match encryption {
            Encryption::None => write_tar(buf, db_file, db_part, storage, head)?,
            Encryption::Recipients(_) | Encryption::Passphrase(_) => {
                let encryptor = encryption.encryptor().map_err(io::Error::other)?;
                let w = encryptor.wrap_output(buf)?;
                let (w, manifest) = write_tar(w, db_file, db_part, storage, head)?;
                (w.finish()?, manifest)
            }
        };
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(manifest)
    })();
    match written {
        Ok(manifest) => {
            std::fs::rename(&partial, out).map_err(|e| {
                BackupError::new(format!("cannot rename to {}: {e}", out.display()))
            })?;
            Ok(manifest)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(BackupError::new(format!(
                "cannot write the archive {}: {e}",
                out.display()
            )))
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn write_tar<W: Write>(
    w: W,
    db_file: &Path,
    db_part: &str,
    storage: &Path,
    mut head: Manifest,
) -> io::Result<(W, Manifest)> {
    let mut z = zstd::Encoder::new(w, 3)?;
    {
        let mut tar = tar::Builder::new(&mut z);
        head.parts.clear();
        head.parts.push(append_file(&mut tar, db_file, db_part)?);
        for (rel, path) in storage_files(storage)? {
            match append_file(&mut tar, &path, &format!("{STORAGE_PREFIX}{rel}")) {
                Ok(part) => head.parts.push(part),
                // A file deleted since it was listed (a contact's erasure) is simply not in
                // this backup, as if the snapshot had been taken a moment later.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let json = serde_json::to_vec_pretty(&head).map_err(io::Error::other)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        tar.finish()?;
    }
    Ok((z.finish()?, head))
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, path: &Path, name: &str) -> io::Result<Part> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = Hashing {
        inner: BufReader::with_capacity(1 << 20, file).take(size),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, name, &mut reader)?;
    if reader.bytes != size {
        return Err(io::Error::other(format!(
            "{} shrank while it was archived",
            path.display()
        )));
    }
    Ok(Part {
        path: name.to_owned(),
        bytes: size,
        sha256: hex::encode(reader.hasher.finalize()),
    })
}

/// Every complete file under the storage root, with its path relative to it (`/`-separated),
/// sorted. Uploads in progress (`.partial-*`) and anything that is not a plain file are left
/// out.
fn storage_files(root: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".partial-") {
                continue;
            }
            let kind = entry.file_type()?;
            let rel = format!("{prefix}{name}");
            if kind.is_dir() {
                stack.push((entry.path(), format!("{rel}/")));
            } else if kind.is_file() {
                out.push((rel, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What [`unpack`] found.
#[derive(Debug)]
pub struct Unpacked {
    pub manifest: Manifest,
    pub encrypted: bool,
    /// Every disagreement between the entries and the manifest, in words.
    pub problems: Vec<String>,
    /// Storage files unpacked (relative paths under `storage/` of the target directory).
    pub storage_files: usize,
}

/// Decrypts (when encrypted), decompresses and unpacks `archive` into `into`, hashing every
/// entry, and compares the entries with the manifest. An archive that cannot be opened at all
/// (wrong key, damaged, not an archive) is an error; disagreements are `problems`. Blocking.
pub fn unpack(
    archive: &Path,
    decryption: &Decryption,
    into: &Path,
) -> Result<Unpacked, BackupError> {
    let mut file = File::open(archive)
        .map_err(|e| BackupError::new(format!("cannot open {}: {e}", archive.display())))?;
    let mut magic = [0u8; 21];
    let n = read_up_to(&mut file, &mut magic)
        .map_err(|e| BackupError::new(format!("cannot read {}: {e}", archive.display())))?;
    let head = magic.get(..n).unwrap_or_default();
    let encrypted = if head.starts_with(AGE_MAGIC) {
        true
    } else if head.starts_with(ZSTD_MAGIC) {
        false
    } else {
        return Err(BackupError::new(format!(
            "{} is not a Palisade backup (neither age-encrypted nor zstd-compressed)",
            archive.display()
        )));
    };
    let file = File::open(archive)
        .map_err(|e| BackupError::new(format!("cannot open {}: {e}", archive.display())))?;
    let buf = BufReader::with_capacity(1 << 20, file);
    let entries = if encrypted {
        let reader = decryption.decrypt(buf)?;
        read_entries(reader, into)
    } else {
        read_entries(buf, into)
    }
    .map_err(|e| {
        BackupError::new(format!(
            "the archive is damaged or was modified{}: {e}",
            if encrypted {
                " (its encryption no longer authenticates)"
            } else {
                ""
            }
        ))
    })?;
    let Some(manifest_bytes) = entries.manifest else {
        return Err(BackupError::new(
            "the archive has no manifest.json: not a complete Palisade backup",
        ));
    };
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BackupError::new(format!("manifest.json cannot be read: {e}")))?;
    let mut problems = Vec::new();
    if manifest.format != FORMAT {
        problems.push(format!(
            "manifest format is {:?}, this version reads {FORMAT:?}",
            manifest.format
        ));
    }
    let mut seen = entries.parts;
    for part in &manifest.parts {
        match seen.remove(&part.path) {
            None => problems.push(format!(
                "{} is in the manifest but not in the archive",
                part.path
            )),
            Some((bytes, sha)) => {
                if sha != part.sha256 || bytes != part.bytes {
                    problems.push(format!(
                        "{}: SHA-256 {sha} ({bytes} bytes) does not match the manifest's {} ({} bytes)",
                        part.path, part.sha256, part.bytes
                    ));
                }
            }
        }
    }
    for path in seen.keys() {
        problems.push(format!("{path} is in the archive but not in the manifest"));
    }
    if !manifest
        .parts
        .iter()
        .any(|p| p.path == manifest.database_part())
    {
        problems.push(format!(
            "the manifest names no {} (database {:?})",
            manifest.database_part(),
            manifest.database
        ));
    }
    let storage_files = manifest
        .parts
        .iter()
        .filter(|p| p.path.starts_with(STORAGE_PREFIX))
        .count();
    Ok(Unpacked {
        manifest,
        encrypted,
        problems,
        storage_files,
    })
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default())? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

struct Entries {
    manifest: Option<Vec<u8>>,
    /// path → (bytes, SHA-256 hex)
    parts: BTreeMap<String, (u64, String)>,
}

fn read_entries<R: Read>(r: R, into: &Path) -> io::Result<Entries> {
    let z = zstd::Decoder::new(r)?;
    let mut tar = tar::Archive::new(z);
    let mut out = Entries {
        manifest: None,
        parts: BTreeMap::new(),
    };
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == MANIFEST {
            let mut v = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut v)?;
            out.manifest = Some(v);
            continue;
        }
        let Some(target) = safe_join(into, &name) else {
            return Err(io::Error::other(format!(
                "entry {name:?} has an unsafe path"
            )));
        };
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut reader = Hashing {
            inner: &mut entry,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut f = BufWriter::with_capacity(1 << 20, create_private(&target)?);
        io::copy(&mut reader, &mut f)?;
        f.flush()?;
        let sha = hex::encode(reader.hasher.finalize());
        out.parts.insert(name, (reader.bytes, sha));
    }
    Ok(out)
}

/// `base/name` when `name` is a relative path of plain components (no `..`, no root).
pub(crate) fn safe_join(base: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    if name.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(base.join(rel))
}

/// A new file readable by the server's user only.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}
