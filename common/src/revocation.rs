//! The revocation list: serials the coordinator refuses, kept as a JSON file in the CA
//! directory (`revoked.json`). `proofrack certs revoke` adds to it; the coordinator polls it
//! with [`RevocationHandle::reload_if_changed`] and its TLS verifier consults the shared
//! handle during every handshake, so a revocation takes effect without a restart.
//!
//! Why a file and not CRLs/OCSP: one coordinator, one CA directory, operators who edit with a
//! CLI. A JSON list is inspectable and diffable; the serial is the only thing matched.

use crate::identity::{normalize_serial_hex, IdentityError};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Largest revocation file read. Each entry is ~200 bytes, so this holds tens of thousands
/// of revocations, far more than a rack's worth of leaves over years, while keeping a
/// once-a-second poll cheap and a corrupted giant file from being read into memory.
pub const MAX_REVOCATION_FILE_BYTES: u64 = 8 << 20;

/// How often a coordinator re-reads the list: a revocation takes effect within this, and
/// reading a small bounded file every two seconds costs nothing measurable.
pub const REVOCATION_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Version of the file format, written into the file.
pub const REVOCATION_FORMAT_VERSION: u32 = 1;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedEntry {
    /// Canonical serial (see [`crate::identity::serial_hex`]).
    pub serial_hex: String,
    /// The SPIFFE ID the certificate carried, for people reading the file; not matched.
    pub identity: Option<String>,
    pub revoked_at: UnixMillis,
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct RevocationFile {
    format_version: u32,
    revoked: Vec<RevokedEntry>,
}

/// A set of revoked serials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    by_serial: BTreeMap<String, RevokedEntry>,
}

impl RevocationList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_serial.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_serial.is_empty()
    }

    /// Whether the (canonical) serial is revoked.
    pub fn is_revoked(&self, serial_hex: &str) -> bool {
        self.by_serial.contains_key(serial_hex)
    }

    pub fn get(&self, serial_hex: &str) -> Option<&RevokedEntry> {
        self.by_serial.get(serial_hex)
    }

    pub fn entries(&self) -> impl Iterator<Item = &RevokedEntry> {
        self.by_serial.values()
    }

    /// Adds an entry; returns false (and keeps the first entry) if the serial was already
    /// revoked. The serial is normalised first.
    pub fn revoke(&mut self, mut entry: RevokedEntry) -> Result<bool, IdentityError> {
        entry.serial_hex = normalize_serial_hex(&entry.serial_hex)?;
        if self.by_serial.contains_key(&entry.serial_hex) {
            return Ok(false);
        }
        self.by_serial.insert(entry.serial_hex.clone(), entry);
        Ok(true)
    }

    pub fn to_json(&self) -> String {
        let file = RevocationFile {
            format_version: REVOCATION_FORMAT_VERSION,
            revoked: self.by_serial.values().cloned().collect(),
        };
        // Serialising plain strings and integers cannot fail.
        let mut s = serde_json::to_string_pretty(&file).expect("revocation list serialises");
        s.push('\n');
        s
    }

    pub fn from_json(path: &Path, text: &str) -> Result<RevocationList, RevocationError> {
        let file: RevocationFile =
            serde_json::from_str(text).map_err(|e| RevocationError::Malformed {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        if file.format_version != REVOCATION_FORMAT_VERSION {
            return Err(RevocationError::Malformed {
                path: path.to_path_buf(),
                detail: format!(
                    "format_version {} is not the {} this build reads",
                    file.format_version, REVOCATION_FORMAT_VERSION
                ),
            });
        }
        let mut list = RevocationList::new();
        for entry in file.revoked {
            list.revoke(entry).map_err(|e| RevocationError::Malformed {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        }
        Ok(list)
    }

    /// Reads a revocation file. A missing file is an error: the coordinator must not start
    /// believing nothing is revoked because a path is wrong.
    pub fn load(path: &Path) -> Result<RevocationList, RevocationError> {
        let bytes = read_bounded(path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| RevocationError::Malformed {
            path: path.to_path_buf(),
            detail: "not UTF-8".into(),
        })?;
        Self::from_json(path, text)
    }

    /// Writes the list atomically (temporary file, fsync, rename) so a polling coordinator
    /// never reads half a file.
    pub fn save(&self, path: &Path) -> Result<(), RevocationError> {
        let io = |e: std::io::Error| RevocationError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(self.to_json().as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, RevocationError> {
    let meta = std::fs::metadata(path).map_err(|e| RevocationError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if meta.len() > MAX_REVOCATION_FILE_BYTES {
        return Err(RevocationError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    std::fs::read(path).map_err(|e| RevocationError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation list {}: {source}; `proofrack certs init` creates it in the CA directory", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("revocation list {} is malformed: {detail}; fix or restore the file (the previous list stays in force)", path.display())]
    Malformed { path: PathBuf, detail: String },
    #[error("revocation list {} is {len} bytes, above the {MAX_REVOCATION_FILE_BYTES}-byte limit", path.display())]
    TooLarge { path: PathBuf, len: u64 },
}

/// A revocation list shared between the TLS verifier and the task that reloads it.
#[derive(Clone, Debug)]
pub struct RevocationHandle {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// `None` for a handle that never reloads (tests, or a deployment with no CA directory).
    path: Option<PathBuf>,
    state: RwLock<Loaded>,
    /// Handshakes refused because the peer's serial is on the list.
    refused_handshakes: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Loaded {
    list: RevocationList,
    /// SHA-256 of the file bytes last loaded, to skip re-parsing an unchanged file.
    digest: [u8; 32],
}

/// What a reload found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    Unchanged,
    Reloaded { revoked: usize },
}

impl RevocationHandle {
    /// Loads the list at `path`; later reloads read the same path.
    pub fn load(path: impl Into<PathBuf>) -> Result<RevocationHandle, RevocationError> {
        let path = path.into();
        let bytes = read_bounded(&path)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| RevocationError::Malformed {
            path: path.clone(),
            detail: "not UTF-8".into(),
        })?;
        let list = RevocationList::from_json(&path, text)?;
        let digest = Sha256::digest(&bytes).into();
        Ok(RevocationHandle {
            inner: Arc::new(Shared {
                path: Some(path),
                state: RwLock::new(Loaded { list, digest }),
                refused_handshakes: Default::default(),
            }),
        })
    }

    /// A fixed list with no file behind it.
    pub fn fixed(list: RevocationList) -> RevocationHandle {
        RevocationHandle {
            inner: Arc::new(Shared {
                path: None,
                state: RwLock::new(Loaded {
                    list,
                    digest: [0; 32],
                }),
                refused_handshakes: Default::default(),
            }),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    pub fn is_revoked(&self, serial_hex: &str) -> bool {
        self.read(|l| l.is_revoked(serial_hex))
    }

    /// The TLS verifier refused a handshake of a revoked certificate.
    pub fn count_refused_handshake(&self) {
        self.inner
            .refused_handshakes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Handshakes refused for a revoked certificate since start.
    pub fn refused_handshakes(&self) -> u64 {
        self.inner
            .refused_handshakes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on the current list.
    pub fn read<T>(&self, f: impl FnOnce(&RevocationList) -> T) -> T {
        // A panic while holding the lock cannot leave the list half-updated (the swap is one
        // assignment), so a poisoned lock is still safe to read.
        let guard = self.inner.state.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.list)
    }

    /// Re-reads the file if its contents changed. Cheap enough to call every second: the
    /// file is small and bounded, and is parsed only when its hash differs. On error the
    /// previous list stays in force.
    pub fn reload_if_changed(&self) -> Result<ReloadOutcome, RevocationError> {
        let Some(path) = self.inner.path.as_deref() else {
            return Ok(ReloadOutcome::Unchanged);
        };
        let bytes = read_bounded(path)?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if self
            .inner
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .digest
            == digest
        {
            return Ok(ReloadOutcome::Unchanged);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| RevocationError::Malformed {
            path: path.to_path_buf(),
            detail: "not UTF-8".into(),
        })?;
        let list = RevocationList::from_json(path, text)?;
        let revoked = list.len();
        let mut guard = self.inner.state.write().unwrap_or_else(|p| p.into_inner());
        *guard = Loaded { list, digest };
        tracing::info!(path = %path.display(), revoked, "revocation list reloaded");
        Ok(ReloadOutcome::Reloaded { revoked })
    }
}

impl RevocationHandle {
    /// Reloads every `interval` forever (spawn it). Errors are logged and the previous list
    /// stays in force. `on_reload` runs after each change, e.g. to close live connections
    /// whose serial is now revoked (the handshake check only guards new connections).
    pub async fn reload_every(
        self,
        interval: Duration,
        mut on_reload: impl FnMut(&RevocationHandle) + Send,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload_if_changed() {
                Ok(ReloadOutcome::Unchanged) => {}
                Ok(ReloadOutcome::Reloaded { .. }) => on_reload(&self),
                Err(e) => tracing::warn!(error = %e, "revocation list not reloaded"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: &str) -> RevokedEntry {
        RevokedEntry {
            serial_hex: serial.into(),
            identity: None,
            revoked_at: UnixMillis(1),
            reason: "test".into(),
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "proofrack-revocation-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("revoked.json")
    }

    #[test]
    fn revoke_normalises_and_dedupes() {
        let mut l = RevocationList::new();
        assert!(l.revoke(entry("00:AB:01")).unwrap());
        assert!(!l.revoke(entry("ab01")).unwrap());
        assert!(l.is_revoked("ab01"));
        assert!(!l.is_revoked("ab02"));
        assert!(l.revoke(entry("not hex")).is_err());
    }

    #[test]
    fn file_round_trip_and_reload_only_on_change() {
        let path = temp_path("reload");
        RevocationList::new().save(&path).unwrap();
        let handle = RevocationHandle::load(&path).unwrap();
        assert_eq!(
            handle.reload_if_changed().unwrap(),
            ReloadOutcome::Unchanged
        );
        assert!(!handle.is_revoked("0a"));

        let mut l = RevocationList::load(&path).unwrap();
        l.revoke(entry("0a")).unwrap();
        l.save(&path).unwrap();
        assert_eq!(
            handle.reload_if_changed().unwrap(),
            ReloadOutcome::Reloaded { revoked: 1 }
        );
        assert!(handle.is_revoked("0a"));
        assert_eq!(RevocationList::load(&path).unwrap(), l);

        // A corrupted file is an error and the old list stays in force.
        std::fs::write(&path, "{ nope").unwrap();
        let err = handle.reload_if_changed().unwrap_err().to_string();
        assert!(
            err.contains("malformed") && err.contains("revoked.json"),
            "{err}"
        );
        assert!(handle.is_revoked("0a"));
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn reload_every_picks_up_changes_and_calls_back() {
        let path = temp_path("every");
        RevocationList::new().save(&path).unwrap();
        let handle = RevocationHandle::load(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let task = tokio::spawn(handle.clone().reload_every(
                Duration::from_secs(2),
                move |h| {
                    let _ = tx.send(h.is_revoked("0b"));
                },
            ));
            let mut l = RevocationList::new();
            l.revoke(entry("0b")).unwrap();
            l.save(&path).unwrap();
            assert_eq!(rx.recv().await, Some(true));
            task.abort();
        });
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = RevocationHandle::load("/nonexistent/proofrack/revoked.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/proofrack/revoked.json") && err.contains("certs init"),
            "{err}"
        );
    }

    #[test]
    fn wrong_format_version_is_refused() {
        let err =
            RevocationList::from_json(Path::new("r.json"), r#"{"format_version":9,"revoked":[]}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("format_version 9"), "{err}");
    }
}
