//! The `[limits]` in force: connection slots (all peers, clients, one identity), each
//! connection's frame budget, and the upload gate (how many at once, how many bytes). Every
//! limit hit is counted for `proofrack_limit_hits_total{limit=...}` and logged, at most once
//! per [`LOG_EVERY`] per limit with the count since, so a flood is one line a few seconds,
//! not one per attempt.

use crate::limits::Limits;
use proofrack_common::framing::{BudgetStats, FrameBudget, FrameReader, MAX_FRAME_BYTES};
use proofrack_common::identity::{IdentityKind, PeerCertInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// At most one log line per limit this often (with the number of hits since the last line).
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// QUIC close code for a connection refused or closed by a limit (the reason says which).
pub const CLOSE_LIMIT: u32 = 4;
/// How often the server looks whether a flood has ended (see [`ServerLimits::trim_after_floods`]).
pub const TRIM_CHECK_EVERY: Duration = Duration::from_secs(5);
/// A drop of this many open connections counts as the end of a flood.
const TRIM_CONNECTION_DROP: usize = 64;

/// Each limit that can be hit, as named in the metric's `limit` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    /// `max_connections`: refused before the handshake.
    Connections,
    /// `max_client_connections`.
    ClientConnections,
    /// `max_connections_per_identity`, a client refused.
    IdentityConnections,
    /// `max_connections_per_identity`, an agent's oldest connection closed.
    IdentityOldestClosed,
    /// `frame_bytes_per_connection` / `frame_bytes_total`: a reader waited for budget.
    FrameBudget,
    /// `request_timeout_ms`: a request, frame or upload chunk did not arrive whole in time.
    RequestTimeout,
    /// `max_concurrent_uploads`.
    ConcurrentUploads,
    /// `upload_bytes_in_flight`.
    UploadBytesInFlight,
    /// `max_upload_bytes`, or the size a witness's circuit allows.
    UploadSize,
    /// `policy.max_unfinished_per_client` (counted by the core; listed for the help text).
    ClientShare,
}

impl Limit {
    pub const ALL: [Limit; 10] = [
        Limit::Connections,
        Limit::ClientConnections,
        Limit::IdentityConnections,
        Limit::IdentityOldestClosed,
        Limit::FrameBudget,
        Limit::RequestTimeout,
        Limit::ConcurrentUploads,
        Limit::UploadBytesInFlight,
        Limit::UploadSize,
        Limit::ClientShare,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::ClientConnections => "max_client_connections",
            Limit::IdentityConnections => "max_connections_per_identity",
            Limit::IdentityOldestClosed => "max_connections_per_identity_oldest_closed",
            Limit::FrameBudget => "frame_bytes",
            Limit::RequestTimeout => "request_timeout_ms",
            Limit::ConcurrentUploads => "max_concurrent_uploads",
            Limit::UploadBytesInFlight => "upload_bytes_in_flight",
            Limit::UploadSize => "max_upload_bytes",
            Limit::ClientShare => "max_unfinished_per_client",
        }
    }
}

#[derive(Default)]
struct HitLog {
    total: u64,
    since_line: u64,
    last_line: Option<Instant>,
}

/// The live limits of one server. See the module documentation.
pub struct ServerLimits {
    limits: Limits,
    /// Connections in their handshake or open.
    slots: Arc<AtomicUsize>,
    /// Open connections per identity (its URI): (connection id, connection), oldest first.
    by_identity: Mutex<HashMap<String, Vec<(u64, quinn::Connection)>>>,
    clients_open: AtomicUsize,
    frame_total: Arc<Semaphore>,
    frame_stats: Arc<BudgetStats>,
    uploads: Arc<Semaphore>,
    upload_bytes: Arc<Mutex<u64>>,
    hits: Mutex<BTreeMap<Limit, HitLog>>,
}

/// A connection slot (handshake or open); given back when dropped.
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upload under way: its place among `max_concurrent_uploads` and its announced bytes
/// in `upload_bytes_in_flight`, both given back when dropped.
pub struct UploadPermit {
    _slot: tokio::sync::OwnedSemaphorePermit,
    bytes: u64,
    in_flight: Arc<Mutex<u64>>,
}

impl UploadPermit {
    /// Adds a second file of `total_len` bytes to this upload (a registration's `.r1cs`):
    /// size-checked, and counted against the quota.
    pub fn add(
        &mut self,
        limits: &ServerLimits,
        what: &str,
        total_len: u64,
        max_len: u64,
    ) -> Result<(), String> {
        limits.check_upload_size(what, total_len, max_len)?;
        limits.reserve_upload_bytes(total_len)?;
        self.bytes += total_len;
        Ok(())
    }
}

impl Drop for UploadPermit {
    fn drop(&mut self) {
        *self.in_flight.lock().expect("upload bytes poisoned") -= self.bytes;
    }
}

impl ServerLimits {
    pub fn new(limits: Limits) -> Self {
        ServerLimits {
            frame_total: FrameBudget::total(limits.frame_bytes_total as usize),
            uploads: Arc::new(Semaphore::new(limits.max_concurrent_uploads)),
            limits,
            slots: Arc::new(AtomicUsize::new(0)),
            by_identity: Mutex::new(HashMap::new()),
            clients_open: AtomicUsize::new(0),
            frame_stats: Arc::new(BudgetStats::default()),
            upload_bytes: Arc::new(Mutex::new(0)),
            hits: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn settings(&self) -> &Limits {
        &self.limits
    }

    /// Counts a hit and logs it (rate-limited). `detail` names the peer where known.
    pub fn hit(&self, limit: Limit, detail: &str) {
        let mut hits = self.hits.lock().expect("limit hits poisoned");
        let log = hits.entry(limit).or_default();
        log.total += 1;
        log.since_line += 1;
        let now = Instant::now();
        if log
            .last_line
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            tracing::warn!(
                limit = limit.label(),
                hits_since_last_line = log.since_line,
                hits_total = log.total,
                %detail,
                "limit reached"
            );
            log.since_line = 0;
            log.last_line = Some(now);
        }
    }

    /// Hits so far, per limit (every limit listed, zero or not). Frame budget hits are the
    /// times a reader waited (the readers count and log them, see
    /// [`proofrack_common::framing::BudgetStats`]).
    pub fn hits(&self) -> Vec<(Limit, u64)> {
        let hits = self.hits.lock().expect("limit hits poisoned");
        Limit::ALL
            .iter()
            .map(|l| match l {
                Limit::FrameBudget => (*l, self.frame_stats.waits()),
                _ => (*l, hits.get(l).map_or(0, |h| h.total)),
            })
            .collect()
    }

    /// A slot for a new connection attempt, or `None` at `max_connections`.
    pub fn admit_connection(&self) -> Option<ConnectionSlot> {
        let taken = self.slots.fetch_add(1, Ordering::Relaxed);
        if taken >= self.limits.max_connections {
            self.slots.fetch_sub(1, Ordering::Relaxed);
            self.hit(
                Limit::Connections,
                &format!(
                    "{} connections open or in their handshake; new attempts refused",
                    self.limits.max_connections
                ),
            );
            return None;
        }
        Some(ConnectionSlot(self.slots.clone()))
    }

    /// Admits an authenticated connection under the client and per-identity caps, or says
    /// why not. An agent at its cap has its oldest connection closed instead.
    pub fn admit_identity(
        &self,
        conn_id: u64,
        conn: &quinn::Connection,
        peer: &PeerCertInfo,
    ) -> Result<(), String> {
        let identity = peer.identity.to_string();
        let cap = self.limits.max_connections_per_identity;
        let mut by_identity = self.by_identity.lock().expect("connections poisoned");
        let open = by_identity.get(&identity).map_or(0, Vec::len);
        if counts_as_client(peer) {
            if open >= cap {
                drop(by_identity);
                let reason = format!(
                    "{identity} already has {open} connections open, the most one certificate may have (limits.max_connections_per_identity = {cap}); close some or reuse one"
                );
                self.hit(Limit::IdentityConnections, &identity);
                return Err(reason);
            }
            let clients = self.clients_open.load(Ordering::Relaxed);
            if clients >= self.limits.max_client_connections {
                drop(by_identity);
                self.hit(Limit::ClientConnections, &identity);
                return Err(format!(
                    "the coordinator serves {clients} client connections, its most (limits.max_client_connections); retry later"
                ));
            }
            self.clients_open.fetch_add(1, Ordering::Relaxed);
        } else if open >= cap {
            let conns = by_identity.get_mut(&identity).expect("counted above");
            let (_, oldest) = conns.remove(0);
            oldest.close(
                CLOSE_LIMIT.into(),
                format!("replaced by a newer connection of {identity}: more than {cap} at once (limits.max_connections_per_identity)").as_bytes(),
            );
            self.hit(Limit::IdentityOldestClosed, &identity);
        }
        by_identity
            .entry(identity)
            .or_default()
            .push((conn_id, conn.clone()));
        Ok(())
    }

    /// Forgets an admitted connection.
    pub fn release_identity(&self, conn_id: u64, peer: &PeerCertInfo) {
        let identity = peer.identity.to_string();
        let mut by_identity = self.by_identity.lock().expect("connections poisoned");
        if let Some(conns) = by_identity.get_mut(&identity) {
            let before = conns.len();
            conns.retain(|(id, _)| *id != conn_id);
            let removed = before != conns.len();
            if conns.is_empty() {
                by_identity.remove(&identity);
            }
            if removed && counts_as_client(peer) {
                self.clients_open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Connections open or in their handshake, and client connections open.
    pub fn connections(&self) -> (usize, usize) {
        (
            self.slots.load(Ordering::Relaxed),
            self.clients_open.load(Ordering::Relaxed),
        )
    }

    /// A new connection's frame budget.
    pub fn frame_budget(&self) -> FrameBudget {
        FrameBudget::new(
            self.limits.frame_bytes_per_connection as usize,
            &self.frame_total,
            &self.frame_stats,
        )
    }

    /// A reader for one stream of a connection with `budget`.
    pub fn frame_reader(&self, budget: &FrameBudget) -> FrameReader {
        FrameReader::new(MAX_FRAME_BYTES)
            .with_budget(budget.clone())
            .whole_within(self.limits.request_timeout())
    }

    /// Bytes held in partial frames now, all connections together.
    pub fn frame_bytes_held(&self) -> u64 {
        self.frame_stats.held_bytes()
    }

    /// Starts an upload of `total_len` announced bytes (at most `max_len` for its kind), or
    /// says why not; nothing of the payload has been read yet.
    pub fn begin_upload(
        &self,
        what: &str,
        total_len: u64,
        max_len: u64,
    ) -> Result<UploadPermit, String> {
        self.check_upload_size(what, total_len, max_len)?;
        let Ok(slot) = self.uploads.clone().try_acquire_owned() else {
            self.hit(Limit::ConcurrentUploads, what);
            return Err(format!(
                "the coordinator is receiving {} uploads, its most at once (limits.max_concurrent_uploads); retry in a minute",
                self.limits.max_concurrent_uploads
            ));
        };
        self.reserve_upload_bytes(total_len)?;
        Ok(UploadPermit {
            _slot: slot,
            bytes: total_len,
            in_flight: self.upload_bytes.clone(),
        })
    }

    /// Refuses an announced size above `max_len` (the kind's) or `max_upload_bytes`.
    fn check_upload_size(&self, what: &str, total_len: u64, max_len: u64) -> Result<(), String> {
        let max_len = max_len.min(self.limits.max_upload_bytes);
        if total_len > max_len {
            self.hit(Limit::UploadSize, what);
            return Err(format!(
                "{what} of {total_len} bytes is above the {max_len}-byte limit for it (limits.max_upload_bytes, or what its kind allows)"
            ));
        }
        Ok(())
    }

    fn reserve_upload_bytes(&self, more: u64) -> Result<(), String> {
        let mut in_flight = self.upload_bytes.lock().expect("upload bytes poisoned");
        let quota = self.limits.upload_bytes_in_flight;
        if in_flight.saturating_add(more) > quota {
            let now = *in_flight;
            drop(in_flight);
            self.hit(Limit::UploadBytesInFlight, "upload");
            return Err(format!(
                "uploads in progress already announce {now} bytes; {more} more would pass the {quota}-byte quota (limits.upload_bytes_in_flight); retry when they finish"
            ));
        }
        *in_flight += more;
        Ok(())
    }

    /// After a flood (limits hit, or many connections gone), once it has been quiet for
    /// [`TRIM_CHECK_EVERY`], asks the allocator to give freed pages back to the system: the
    /// memory a flood of handshakes made the coordinator allocate is freed when they end, but
    /// glibc keeps it in its arenas, so the process would stay at its peak. Never in steady
    /// operation (no hits, no churn), so the core's own heap is not walked for nothing.
    pub async fn trim_after_floods(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let total_hits = |s: &Self| s.hits().iter().map(|(_, n)| n).sum::<u64>();
        let mut last_hits = total_hits(self);
        let mut last_conns = self.connections().0;
        let mut pending = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TRIM_CHECK_EVERY) => {}
                _ = stop.changed() => return,
            }
            let hits = total_hits(self);
            let conns = self.connections().0;
            let quiet = hits == last_hits;
            pending |= !quiet || conns + TRIM_CONNECTION_DROP <= last_conns;
            if pending && quiet {
                pending = false;
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
            }
            last_hits = hits;
            last_conns = conns;
        }
    }

    /// Uploads in progress and their announced bytes.
    pub fn uploads(&self) -> (usize, u64) {
        (
            self.limits.max_concurrent_uploads - self.uploads.available_permits(),
            *self.upload_bytes.lock().expect("upload bytes poisoned"),
        )
    }
}

/// Whether a connection counts among `max_client_connections` and is refused, not let in by
/// closing its oldest, at its identity's cap: every identity but an agent's. People and their
/// tools (requesters, and any administrator identity) share the client slots; only agents,
/// which reconnect on their own after a restart, take the rest of `max_connections`.
fn counts_as_client(peer: &PeerCertInfo) -> bool {
    peer.identity.kind() != IdentityKind::Agent
}

/// Gives the allocator's free pages back to the system (glibc's `malloc_trim`).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let before = std::time::Instant::now();
        // SAFETY: malloc_trim only walks glibc's own free lists under their locks; it takes
        // no pointers from us and is safe to call from any thread at any time.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            released,
            ms = before.elapsed().as_millis() as u64,
            "freed memory given back after a flood"
        );
    }
}
