//! What the shells beside the server may do with a running coordinator: [`CoreView`] for
//! the HTTP endpoints (read the core, read the counters) and [`CoreDriver`] for the chain
//! stake source (run events against the core, see its effects). The server implements both
//! and passes itself in, so `http` and `chain` depend on this module and the core, never on
//! the server: the server's configuration names their sections (`config` → `http`, `chain`)
//! without that closing a cycle back to the server.
//!
//! The traits are object safe (the shells hold an `Arc<dyn …>` and stay non-generic); the
//! generic `read` and `apply` callers use are inherent methods on the trait objects.

use crate::tasks::{CoordinatorCore, Effect};
use proofrack_common::metrics::DurationHistogram;
use proofrack_common::{OperatorId, UnixMillis};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// A function the server calls with every effect, under the core's lock; it must not block
/// for long.
pub type StakeHook = Box<dyn Fn(&Effect) + Send + Sync>;

/// An event for [`CoreDriver::apply_event`], boxed so the trait stays object safe.
pub type BoxedEvent<'a> = Box<dyn FnOnce(&mut CoordinatorCore, UnixMillis) + Send + 'a>;

/// What the HTTP endpoints read: the core, and counters the server keeps beside it.
pub trait CoreView: Send + Sync {
    /// Runs `f` on the core at the current time, under the core's lock (no events).
    fn read_core(&self, f: &mut dyn FnMut(&CoordinatorCore, UnixMillis));
    /// Agents with a control stream attached now.
    fn connected_agents(&self) -> usize;
    /// Proof verification times so far.
    fn verification_time(&self) -> DurationHistogram;
    /// Handshakes the TLS verifier refused for a revoked certificate since start.
    fn revoked_handshakes_refused(&self) -> u64;
    /// The trust counters now.
    fn trust_counters(&self) -> TrustCounters;
    /// The `[limits]` counters and gauges now.
    fn limit_counters(&self) -> LimitCounters;
}

impl dyn CoreView + '_ {
    /// Reads the core (no events) and returns what `f` makes of it.
    pub fn read<T>(&self, f: impl FnOnce(&CoordinatorCore, UnixMillis) -> T) -> T {
        let mut f = Some(f);
        let mut out = None;
        self.read_core(&mut |core, now| {
            if let Some(f) = f.take() {
                out = Some(f(core, now));
            }
        });
        out.expect("read_core runs its function once")
    }
}

/// Counters of the authorization table and of agents held off as duplicates.
#[derive(Clone, Debug, Default)]
pub struct TrustCounters {
    /// Refusals by action.
    pub refusals: BTreeMap<&'static str, u64>,
    /// Duplicate agent connections held off, by operator.
    pub duplicates: BTreeMap<OperatorId, u64>,
}

/// The `[limits]` counters and what they bound, at one moment.
#[derive(Clone, Debug, Default)]
pub struct LimitCounters {
    /// Times each limit was reached, by the limit's metrics label.
    pub hits: Vec<(&'static str, u64)>,
    /// Connections open or in their handshake, and those of every identity but agents.
    pub connections: (usize, usize),
    /// Bytes held in partial frames, all connections.
    pub frame_bytes_held: u64,
    /// Uploads in progress and the bytes they announced.
    pub uploads: (usize, u64),
}

/// What the chain stake source drives: events against the core, a hook on its effects, the
/// clock, and the registry that now owns withdrawals.
pub trait CoreDriver: Send + Sync {
    /// The coordinator's clock.
    fn now(&self) -> UnixMillis;
    /// Runs one event against the core, commits what it changed and dispatches its effects
    /// (the server's `apply`: nobody hears of a change a crash could still lose).
    fn apply_event<'a>(
        &'a self,
        event: BoxedEvent<'a>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// Installs the stake hook; `false` if one is already installed.
    fn set_stake_hook(&self, hook: StakeHook) -> bool;
    /// Withdrawals are the contract at `registry`'s from now on; `false` if a registry was
    /// already set.
    fn set_chain_registry(&self, registry: String) -> bool;
}

impl dyn CoreDriver + '_ {
    /// Runs one event against the core (see [`CoreDriver::apply_event`]) and returns its
    /// result once it is durable and dispatched.
    pub async fn apply<T: Send>(
        &self,
        event: impl FnOnce(&mut CoordinatorCore, UnixMillis) -> T + Send,
    ) -> T {
        let mut out = None;
        let slot = &mut out;
        self.apply_event(Box::new(move |core, now| *slot = Some(event(core, now))))
            .await;
        out.expect("apply_event runs its event once")
    }
}
