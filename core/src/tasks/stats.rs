//! Admission counters and the assignment-latency histogram, kept by the core as it decides,
//! for the metrics endpoint (read through `CoordinatorCore::admission_stats`).
//!
//! Pure like the rest of the core: the counters change only inside `handle_*`, with `now`.

use super::history::{HistoryEntry, TaskEvent};
use crate::admission::{FleetReason, NoFit};
use proofrack_common::metrics::DurationHistogram;
use proofrack_common::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Admission counters. A waiting task's no-fit is counted when its reason changes (as its
/// history records it), not on every retry, so the counts follow decisions, not passes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionStats {
    /// (outcome, reason) → decisions: ("offered", "fit") or ("no_fit", the leading reason).
    pub decisions: BTreeMap<(String, String), u64>,
    /// From a task's submission to its first offer.
    pub assignment_latency: DurationHistogram,
    /// Circuit breakers opened since the coordinator started.
    pub breaker_trips: u64,
    /// Submissions refused for room, by reason: "queue_full" (the whole queue) or
    /// "client_share" (the client's share of it).
    pub refusals: BTreeMap<String, u64>,
}

impl AdmissionStats {
    /// Called by the core when it offers a task; `history` is the task's history before
    /// this offer is recorded.
    pub(crate) fn note_offer(
        &mut self,
        now: UnixMillis,
        submitted_at: UnixMillis,
        history: &[HistoryEntry],
    ) {
        *self
            .decisions
            .entry(("offered".into(), "fit".into()))
            .or_default() += 1;
        let first = !history
            .iter()
            .any(|e| matches!(e.event, TaskEvent::Offered { .. }));
        if first {
            self.assignment_latency
                .observe_ms(now.0.saturating_sub(submitted_at.0));
        }
    }

    /// Called by the core when it refuses a submission for room.
    pub(crate) fn note_refusal(&mut self, reason: &'static str) {
        *self.refusals.entry(reason.to_string()).or_default() += 1;
    }

    /// Called by the core when a waiting task's no-fit reason changes.
    pub(crate) fn note_no_fit(&mut self, no_fit: &NoFit) {
        let reason = no_fit
            .reasons
            .first()
            .map_or("no_agents_connected", reason_label);
        *self
            .decisions
            .entry(("no_fit".into(), reason.into()))
            .or_default() += 1;
    }
}

/// A short label for a no-fit reason (a metric label value).
pub fn reason_label(r: &FleetReason) -> &'static str {
    match r {
        FleetReason::NoAgentsConnected => "no_agents_connected",
        FleetReason::Telemetry { .. } => "telemetry",
        FleetReason::Unhealthy { .. } => "unhealthy",
        FleetReason::Stake { .. } => "stake",
        FleetReason::Full { .. } => "agents_full",
        FleetReason::Memory { .. } => "memory",
        FleetReason::Speed { .. } => "speed",
        FleetReason::Declined { .. } => "declined",
        FleetReason::Draining { .. } => "draining",
        FleetReason::BreakerOpen { .. } => "breaker_open",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_common::{AgentId, AgentName, OperatorId};

    #[test]
    fn first_offer_only_feeds_the_latency() {
        let mut s = AdmissionStats::default();
        s.note_offer(UnixMillis(1_250), UnixMillis(1_000), &[]);
        let agent = AgentId::new(
            OperatorId::new("op-a").unwrap(),
            AgentName::new("g").unwrap(),
        );
        let offered = HistoryEntry {
            at: UnixMillis(1_250),
            event: TaskEvent::Offered {
                placement: crate::admission::Placement {
                    agent,
                    memory_bytes: 1,
                    predicted_proving_ms: 1,
                    start_at: UnixMillis(1_250),
                    predicted_done_at: UnixMillis(1_251),
                    due_at: UnixMillis(2_000),
                },
                expires_at: UnixMillis(2_000),
                verdicts: vec![],
                agents_considered: 1,
                agents_rejected: 0,
            },
        };
        s.note_offer(UnixMillis(9_000), UnixMillis(1_000), &[offered]);
        assert_eq!(s.decisions[&("offered".into(), "fit".into())], 2);
        assert_eq!(
            s.assignment_latency.count(),
            1,
            "a re-offer is not an assignment latency"
        );
        assert_eq!(s.assignment_latency.sum_ms(), 250);
        s.note_no_fit(&NoFit {
            connected_agents: 0,
            reasons: vec![FleetReason::NoAgentsConnected],
        });
        assert_eq!(
            s.decisions[&("no_fit".into(), "no_agents_connected".into())],
            1
        );
    }
}
