//! The coordinator's durable state, in an embedded redb database (`<data_dir>/state.redb`).
//!
//! Every change the core makes is committed here before anyone is told about it: the shell
//! submits each event's [`Changes`] (with the proof bytes that go with them) and waits for
//! their sequence number to be durable before it replies or sends the event's effects.
//! Commits are grouped: one committer thread writes everything submitted since its last
//! commit in one fsync'd transaction, so many concurrent events cost one disk flush.
//!
//! A second coordinator on the same file is refused (redb holds a file lock). A store whose
//! ledger breaks an invariant is refused at load by [`CoordinatorCore::restore`].
//!
//! [`CoordinatorCore::restore`]: crate::tasks::CoordinatorCore::restore

mod committer;
mod tables;
#[cfg(test)]
mod tests;

pub use tables::{StoredDelivery, StoredProof};

use crate::tasks::{Changes, DurableState};
use proofrack_common::TaskId;
use redb::{Database, ReadableDatabase};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use thiserror::Error;
use tokio::sync::watch;

/// The store's file name inside the data directory.
pub const STORE_FILE: &str = "state.redb";
/// Name of the committer thread (15 bytes at most: Linux truncates thread names there).
/// Benchmarks count its CPU time as the coordinator's.
pub const STORE_THREAD_NAME: &str = "proofrack-store";
/// redb's page cache. The core holds every live row in memory already and the store is only
/// written (and read once at start), so redb's default of 1 GiB would only double the
/// coordinator's memory; writes need just the pages along the paths they change.
pub const STORE_CACHE_BYTES: usize = 32 << 20;
/// Most change sets one group commit takes; bounds one transaction's size and the latency of
/// the first event in it. Under a steady load a commit takes whatever queued during the last.
pub const MAX_BATCHES_PER_COMMIT: usize = 4_096;

/// Bytes written beside the core's rows, in the same transaction.
#[derive(Clone, Debug)]
pub enum ExtraWrite {
    /// A verified proof, for clients.
    Proof(TaskId, StoredProof),
    /// A delivered proof awaiting its verdict (re-verified after a restart).
    Delivery(TaskId, StoredDelivery),
    /// The verdict is in; the delivered bytes are no longer needed.
    DeliveryDone(TaskId),
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "{path} is in use by another coordinator (redb holds its lock); stop that one, or give \
         this one another data_dir"
    )]
    Locked { path: PathBuf },
    #[error(
        "cannot open the state store {path}: {detail}; if the file is damaged, restore it from a \
         backup or move it away to start empty (stake state is then lost)"
    )]
    Open { path: PathBuf, detail: String },
    #[error("the state store is damaged: {0}; restore it from a backup or move it away to start empty (stake state is then lost)")]
    Corrupt(String),
    #[error("state store write failed: {0}; the coordinator stops rather than acknowledge what it could not save")]
    Write(String),
}

/// What was read back at start.
#[derive(Debug, Default)]
pub struct LoadedState {
    /// `None` for an empty (new) store.
    pub core: Option<DurableState>,
    pub proofs: BTreeMap<TaskId, StoredProof>,
    pub deliveries: BTreeMap<TaskId, StoredDelivery>,
}

struct Batch {
    seq: u64,
    changes: Changes,
    extra: Vec<ExtraWrite>,
}

#[derive(Default)]
struct Queue {
    batches: Vec<Batch>,
    /// The last sequence number handed out.
    last_seq: u64,
    closed: bool,
}

struct Inner {
    db: Database,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The highest sequence number committed; `u64::MAX` once the store failed (waiters then
    /// read `failed`).
    durable: watch::Sender<u64>,
    failed: Mutex<Option<String>>,
}

/// The durable store and its committer thread. Cloning shares it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    committer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Store {
    /// Opens (or creates) the store file, taking its lock.
    ///
    /// Every page's checksum is verified at open (redb's integrity check): a file damaged or
    /// altered outside the coordinator is refused with [`StoreError::Corrupt`] instead of being
    /// trusted or panicking on a bad page later. It reads the whole file once per start.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                    path: path.to_path_buf(),
                },
                redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
                    StoreError::Corrupt(format!("{}: {detail}", path.display()))
                }
                other => StoreError::Open {
                    path: path.to_path_buf(),
                    detail: other.to_string(),
                },
            })?;
        Self::start(db)
    }

    /// A store in memory (tests and throwaway runs): same code path, nothing on disk.
    pub fn in_memory() -> Result<Store, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Open {
                path: PathBuf::from("(memory)"),
                detail: e.to_string(),
            })?;
        Self::start(db)
    }

    fn start(db: Database) -> Result<Store, StoreError> {
        tables::create(&db)?;
        let inner = Arc::new(Inner {
            db,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable: watch::Sender::new(0),
            failed: Mutex::new(None),
        });
        let thread_inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name(STORE_THREAD_NAME.into())
            .spawn(move || committer::run(&thread_inner))
            .map_err(|e| StoreError::Open {
                path: PathBuf::from("(committer thread)"),
                detail: e.to_string(),
            })?;
        Ok(Store {
            inner,
            committer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Everything stored.
    pub fn load(&self) -> Result<LoadedState, StoreError> {
        let txn = self
            .inner
            .db
            .begin_read()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tables::load(&txn)
    }

    /// Queues a change set for the next group commit and returns its sequence number; an
    /// empty one queues nothing and returns the last number handed out (waiting on it still
    /// orders the caller after every earlier change). Call under the core's lock, so numbers
    /// follow the order of the events.
    pub fn submit(&self, changes: Changes, extra: Vec<ExtraWrite>) -> u64 {
        let mut q = self.inner.queue.lock().expect("store queue poisoned");
        if changes.is_empty() && extra.is_empty() {
            return q.last_seq;
        }
        q.last_seq += 1;
        let seq = q.last_seq;
        q.batches.push(Batch {
            seq,
            changes,
            extra,
        });
        self.inner.wake.notify_one();
        seq
    }

    /// The last sequence number handed out.
    pub fn last_submitted(&self) -> u64 {
        self.inner
            .queue
            .lock()
            .expect("store queue poisoned")
            .last_seq
    }

    /// Waits until change set `seq` (and all before it) is on disk.
    pub async fn durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut rx = self.inner.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= seq).await;
        match self
            .inner
            .failed
            .lock()
            .expect("store failure poisoned")
            .as_ref()
        {
            Some(why) => Err(StoreError::Write(why.clone())),
            None => Ok(()),
        }
    }

    /// Writes and commits at once (start-up, before serving).
    pub fn commit_now(&self, changes: Changes) -> Result<(), StoreError> {
        let batch = Batch {
            seq: 0,
            changes,
            extra: Vec::new(),
        };
        committer::write(&self.inner.db, vec![batch])
    }

    /// Why the store stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.inner
            .failed
            .lock()
            .expect("store failure poisoned")
            .clone()
    }

    /// Resolves when the store fails.
    pub async fn failed(&self) -> String {
        let mut rx = self.inner.durable.subscribe();
        let _ = rx.wait_for(|d| *d == u64::MAX).await;
        self.failure().unwrap_or_else(|| "store closed".into())
    }

    /// Commits what is queued, stops the committer and releases the file lock once every
    /// clone is dropped.
    pub fn close(&self) {
        {
            let mut q = self.inner.queue.lock().expect("store queue poisoned");
            q.closed = true;
            self.inner.wake.notify_one();
        }
        if let Some(h) = self
            .committer
            .lock()
            .expect("committer handle poisoned")
            .take()
        {
            let _ = h.join();
        }
    }
}
