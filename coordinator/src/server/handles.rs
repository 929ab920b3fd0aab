//! The server as the narrow handles the shells beside it take ([`crate::handle`]): the
//! HTTP endpoints read through [`CoreView`], the chain stake source drives through
//! [`CoreDriver`]. Each method is the server's own, unchanged.

use super::Shared;
use crate::handle::{BoxedEvent, CoreDriver, CoreView, LimitCounters, StakeHook, TrustCounters};
use crate::tasks::CoordinatorCore;
use proofrack_common::metrics::DurationHistogram;
use proofrack_common::UnixMillis;
use std::future::Future;
use std::pin::Pin;

impl CoreView for Shared {
    fn read_core(&self, f: &mut dyn FnMut(&CoordinatorCore, UnixMillis)) {
        self.read(f)
    }

    fn connected_agents(&self) -> usize {
        Shared::connected_agents(self)
    }

    fn verification_time(&self) -> DurationHistogram {
        Shared::verification_time(self)
    }

    fn revoked_handshakes_refused(&self) -> u64 {
        Shared::revoked_handshakes_refused(self)
    }

    fn trust_counters(&self) -> TrustCounters {
        let trust = self.trust();
        TrustCounters {
            refusals: trust.refusals(),
            duplicates: trust.duplicates(),
        }
    }

    fn limit_counters(&self) -> LimitCounters {
        let limits = self.limits();
        LimitCounters {
            hits: limits
                .hits()
                .into_iter()
                .map(|(limit, n)| (limit.label(), n))
                .collect(),
            connections: limits.connections(),
            frame_bytes_held: limits.frame_bytes_held(),
            uploads: limits.uploads(),
        }
    }
}

impl CoreDriver for Shared {
    fn now(&self) -> UnixMillis {
        Shared::now(self)
    }

    fn apply_event<'a>(
        &'a self,
        event: BoxedEvent<'a>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.apply(event))
    }

    fn set_stake_hook(&self, hook: StakeHook) -> bool {
        Shared::set_stake_hook(self, hook)
    }

    fn set_chain_registry(&self, registry: String) -> bool {
        self.trust().set_chain_registry(registry)
    }
}
