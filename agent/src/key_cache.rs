//! The agent's on-disk cache of proving keys.
//!
//! Keys are content-addressed: a [`KeyId`] is the SHA-256 of the key's canonical bytes, and
//! the cache is a directory of `<hex>.key` files. Every read re-hashes the file, so a
//! corrupt file is never proved with: it is deleted, reported as [`KeyLookup::Corrupt`] and
//! fetched again. A new key is streamed into a temporary file in the same directory
//! ([`KeyCache::insert_streaming`]) and renamed into place only after its hash matched
//! ([`KeyCache::commit`]), so a crash or a broken stream never leaves a half key under a
//! real name. Total size is bounded; the least recently used keys go first. A file's
//! modification time records its last access, so the order survives restarts.
//!
//! One agent process owns a cache directory; two processes sharing one is not supported.
//! The methods do blocking file I/O: call them from a blocking thread in async code.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proofrack_common::{KeyId, UnixMillis};
use sha2::{Digest, Sha256};

/// Default bound on the cache's total size. A Groth16 key for a 2^22-constraint circuit is
/// about 1.6 GB (64 B per G1 base, 128 B per G2 base); 32 GiB keeps a dozen such keys and
/// leaves room on the 64 GiB disks of our GPU boxes.
pub const DEFAULT_KEY_CACHE_MAX_BYTES: u64 = 32 << 30;
/// Largest single key accepted from a stream: a 2^26 domain (the largest NTT the backends
/// take) needs about 16 GiB of bases. A stream past this is refused rather than allowed to
/// fill the disk.
pub const MAX_KEY_BYTES: u64 = 16 << 30;

const KEY_SUFFIX: &str = ".key";
/// Temporary files start with this; leftovers from a crash are deleted at open.
const PARTIAL_PREFIX: &str = ".partial-";

/// Bounds of one cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCacheLimits {
    pub max_total_bytes: u64,
    pub max_key_bytes: u64,
}

impl Default for KeyCacheLimits {
    fn default() -> Self {
        KeyCacheLimits {
            max_total_bytes: DEFAULT_KEY_CACHE_MAX_BYTES,
            max_key_bytes: MAX_KEY_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyCacheError {
    #[error("key cache: could not {op} {path}: {source}; check the cache directory exists, is writable by the agent and the disk has room")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("key {expected} was streamed but its bytes hash to {actual}; the copy is discarded, fetch the key again")]
    HashMismatch { expected: KeyId, actual: KeyId },
    #[error("key {key} is larger than {max_key_bytes} bytes, the agent's limit for one key; raise max_key_bytes if such keys are expected")]
    TooLarge { key: KeyId, max_key_bytes: u64 },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> KeyCacheError + 'a {
    move |source| KeyCacheError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// The result of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyLookup {
    /// The key's bytes, verified against its id.
    Hit(Vec<u8>),
    Miss,
    /// The cached file did not hash to its id (`found` is what it hashed to). It has been
    /// deleted; fetch the key again.
    Corrupt {
        found: KeyId,
    },
}

/// Which keys are cached, their sizes and last access: the pure part of the cache.
#[derive(Debug, Default)]
struct LruIndex {
    entries: HashMap<KeyId, Entry>,
    total_bytes: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    size_bytes: u64,
    last_access: UnixMillis,
}

impl LruIndex {
    fn upsert(&mut self, id: KeyId, size_bytes: u64, last_access: UnixMillis) {
        if let Some(old) = self.entries.insert(
            id,
            Entry {
                size_bytes,
                last_access,
            },
        ) {
            self.total_bytes -= old.size_bytes;
        }
        self.total_bytes += size_bytes;
        debug_assert_eq!(
            self.total_bytes,
            self.entries.values().map(|e| e.size_bytes).sum::<u64>()
        );
    }

    fn remove(&mut self, id: &KeyId) {
        if let Some(old) = self.entries.remove(id) {
            self.total_bytes -= old.size_bytes;
        }
    }

    /// Keys to evict, least recently used first (ties by id, for determinism), until the
    /// total fits `max_total_bytes`; never `keep`.
    fn eviction_victims(&self, max_total_bytes: u64, keep: Option<&KeyId>) -> Vec<KeyId> {
        let mut by_age: Vec<(UnixMillis, KeyId, u64)> = self
            .entries
            .iter()
            .filter(|(id, _)| Some(*id) != keep)
            .map(|(id, e)| (e.last_access, *id, e.size_bytes))
            .collect();
        by_age.sort();
        let mut total = self.total_bytes;
        let mut victims = Vec::new();
        for (_, id, size) in by_age {
            if total <= max_total_bytes {
                break;
            }
            total -= size;
            victims.push(id);
        }
        victims
    }
}

/// A directory of content-addressed proving keys with a size bound.
#[derive(Debug)]
pub struct KeyCache {
    dir: PathBuf,
    limits: KeyCacheLimits,
    index: LruIndex,
}

impl KeyCache {
    /// Opens (creating if needed) the cache in `dir`: indexes the `<hex>.key` files, deletes
    /// partial files a crash left behind and evicts down to the bound. Does not re-hash the
    /// keys (that happens on every read).
    pub fn open(dir: impl Into<PathBuf>, limits: KeyCacheLimits) -> Result<Self, KeyCacheError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut index = LruIndex::default();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PARTIAL_PREFIX) {
                tracing::info!(path = %path.display(), "deleting a partial key file left by an earlier run");
                fs::remove_file(&path).map_err(io_err("delete", &path))?;
                continue;
            }
            let Some(id) = parse_key_file_name(&name) else {
                tracing::debug!(path = %path.display(), "ignoring a file that is not <sha256-hex>.key");
                continue;
            };
            let meta = entry.metadata().map_err(io_err("stat", &path))?;
            let last_access = meta.modified().map(unix_millis).unwrap_or_default();
            index.upsert(id, meta.len(), last_access);
        }
        let mut cache = KeyCache { dir, limits, index };
        cache.evict_to_bound(None)?;
        tracing::info!(
            dir = %cache.dir.display(),
            keys = cache.len(),
            total_bytes = cache.total_bytes(),
            max_total_bytes = limits.max_total_bytes,
            "key cache opened"
        );
        Ok(cache)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn limits(&self) -> KeyCacheLimits {
        self.limits
    }
    pub fn total_bytes(&self) -> u64 {
        self.index.total_bytes
    }
    pub fn len(&self) -> usize {
        self.index.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }
    /// Every cached key's id (advertised to the coordinator at connect).
    pub fn ids(&self) -> Vec<KeyId> {
        self.index.entries.keys().copied().collect()
    }

    pub fn contains(&self, id: &KeyId) -> bool {
        self.index.entries.contains_key(id)
    }
    /// Where key `id` lives once cached.
    pub fn path_of(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("{}{KEY_SUFFIX}", id.to_hex()))
    }

    /// Reads key `id`, verifying its hash, and marks it used at `now`. A corrupt file is
    /// deleted and reported (warn) as [`KeyLookup::Corrupt`].
    pub fn get(&mut self, id: &KeyId, now: UnixMillis) -> Result<KeyLookup, KeyCacheError> {
        let path = self.path_of(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.index.remove(id);
                return Ok(KeyLookup::Miss);
            }
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        let found = key_id_of(&bytes);
        if found != *id {
            tracing::warn!(
                key = %id, found = %found, path = %path.display(),
                "cached proving key is corrupt; deleted it, it will be fetched again"
            );
            self.index.remove(id);
            fs::remove_file(&path).map_err(io_err("delete", &path))?;
            return Ok(KeyLookup::Corrupt { found });
        }
        // Record the access in the file's mtime so LRU order survives a restart. Failing
        // to is harmless (the key is only evicted a little early): log and go on.
        if let Err(e) = file.set_modified(system_time(now)) {
            tracing::debug!(path = %path.display(), error = %e, "could not record key access time");
        }
        self.index.upsert(*id, bytes.len() as u64, now);
        Ok(KeyLookup::Hit(bytes))
    }

    /// Starts writing key `id`: the returned writer streams into a temporary file in the
    /// cache directory. Hand it to [`commit`](Self::commit) when the stream ends; dropping
    /// it instead deletes the temporary file.
    pub fn insert_streaming(&self, id: KeyId) -> Result<KeyWriter, KeyCacheError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp_path = self.dir.join(format!(
            "{PARTIAL_PREFIX}{}-{}-{n}",
            id.to_hex(),
            std::process::id()
        ));
        let file = File::create(&tmp_path).map_err(io_err("create", &tmp_path))?;
        Ok(KeyWriter {
            id,
            tmp_path,
            file: Some(BufWriter::new(file)),
            hasher: Sha256::new(),
            written_bytes: 0,
            max_key_bytes: self.limits.max_key_bytes,
            committed: false,
        })
    }

    /// Finishes a streamed key: checks its hash, syncs it to disk, renames it into place,
    /// marks it used at `now` and evicts least recently used keys down to the bound.
    /// Returns the key's path.
    pub fn commit(
        &mut self,
        mut writer: KeyWriter,
        now: UnixMillis,
    ) -> Result<PathBuf, KeyCacheError> {
        let id = writer.id;
        let actual = KeyId(writer.hasher.clone().finalize().into());
        if actual != id {
            return Err(KeyCacheError::HashMismatch {
                expected: id,
                actual,
            });
        }
        let tmp_path = writer.tmp_path.clone();
        let file = writer.file.take().expect("a KeyWriter is committed once");
        let file = file
            .into_inner()
            .map_err(|e| io_err("write", &tmp_path)(e.into_error()))?;
        file.set_modified(system_time(now))
            .map_err(io_err("set the time of", &tmp_path))?;
        file.sync_all().map_err(io_err("sync", &tmp_path))?;
        drop(file);
        let path = self.path_of(&id);
        fs::rename(&tmp_path, &path).map_err(io_err("rename into place", &path))?;
        writer.committed = true;
        // Make the rename durable before anything relies on the key being there.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync", &self.dir))?;
        self.index.upsert(id, writer.written_bytes, now);
        if writer.written_bytes > self.limits.max_total_bytes {
            tracing::warn!(
                key = %id, size_bytes = writer.written_bytes,
                max_total_bytes = self.limits.max_total_bytes,
                "a single proving key is larger than the whole key cache; keeping it, evicting every other key"
            );
        }
        self.evict_to_bound(Some(&id))?;
        Ok(path)
    }

    /// Stores a key held in memory (a convenience over the streaming pair).
    pub fn insert(
        &mut self,
        id: KeyId,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<PathBuf, KeyCacheError> {
        let mut w = self.insert_streaming(id)?;
        w.write_all(bytes).map_err(|e| {
            match e.get_ref().and_then(|r| r.downcast_ref::<TooLargeMarker>()) {
                Some(_) => KeyCacheError::TooLarge {
                    key: id,
                    max_key_bytes: self.limits.max_key_bytes,
                },
                None => io_err("write", &w.tmp_path)(e),
            }
        })?;
        self.commit(w, now)
    }

    /// Deletes key `id` if cached; returns whether it was.
    pub fn remove(&mut self, id: &KeyId) -> Result<bool, KeyCacheError> {
        self.index.remove(id);
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("delete", &path)(e)),
        }
    }

    fn evict_to_bound(&mut self, keep: Option<&KeyId>) -> Result<(), KeyCacheError> {
        for victim in self
            .index
            .eviction_victims(self.limits.max_total_bytes, keep)
        {
            tracing::info!(key = %victim, "evicting least recently used proving key");
            self.remove(&victim)?;
        }
        Ok(())
    }
}

/// Marks the io::Error a [`KeyWriter`] returns when a stream passes the size limit.
#[derive(Debug)]
struct TooLargeMarker;
impl std::fmt::Display for TooLargeMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("proving key stream is larger than the agent's limit for one key")
    }
}
impl std::error::Error for TooLargeMarker {}

/// A key being streamed into the cache. Hashes as it writes; refuses to grow past the
/// cache's `max_key_bytes`.
#[derive(Debug)]
pub struct KeyWriter {
    id: KeyId,
    tmp_path: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: Sha256,
    written_bytes: u64,
    max_key_bytes: u64,
    committed: bool,
}

impl KeyWriter {
    pub fn key_id(&self) -> KeyId {
        self.id
    }
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }
}

impl Write for KeyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written_bytes + buf.len() as u64 > self.max_key_bytes {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, TooLargeMarker));
        }
        let file = self
            .file
            .as_mut()
            .expect("a KeyWriter is not written after commit");
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for KeyWriter {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.file.take());
            if let Err(e) = fs::remove_file(&self.tmp_path) {
                tracing::warn!(path = %self.tmp_path.display(), error = %e, "could not delete an abandoned partial key file; it is deleted at the next start");
            }
        }
    }
}

/// The content address of a key's canonical bytes.
pub fn key_id_of(bytes: &[u8]) -> KeyId {
    KeyId(Sha256::digest(bytes).into())
}

fn parse_key_file_name(name: &str) -> Option<KeyId> {
    let hex_part = name.strip_suffix(KEY_SUFFIX)?;
    let mut id = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut id).ok()?;
    // Only the canonical lowercase spelling, so one key has one file name.
    (hex_part == hex::encode(id)).then_some(KeyId(id))
}

fn system_time(t: UnixMillis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(t.0)
}

fn unix_millis(t: SystemTime) -> UnixMillis {
    UnixMillis(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests;
