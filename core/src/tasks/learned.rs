//! Learned speed: each agent's effective throughput corrected by its real proving times, so
//! an agent whose calibration is optimistic stops getting tasks it cannot finish in time.
//!
//! Per agent the core keeps a factor, actual over calibrated proving time, in permille
//! (1000 = as calibrated), as an exponentially weighted moving average over its verified
//! proofs. Admission multiplies its calibrated prediction by it. The factor outlives the
//! agent's connection (a restarted agent re-reports the same optimistic calibration).
//!
//! The actual time is the agent's own report of its proving time (the same figure the
//! task's history records). An agent that under-reports it only gets tasks it then misses,
//! and those are slashed.

use super::CoordinatorCore;
use crate::admission::AgentId;
use proofrack_common::{TaskId, UnixMillis};
use std::collections::BTreeMap;

/// As calibrated.
pub const NEUTRAL_SPEED_FACTOR_PERMILLE: u32 = 1_000;
/// Fastest learned correction: 4× faster than calibrated. Calibration runs the real kernels,
/// so a larger gap means a mis-measured report, not a fast box.
pub const MIN_SPEED_FACTOR_PERMILLE: u32 = 250;
/// Slowest learned correction: 8× slower than calibrated; beyond that the agent is broken
/// (throttled, shared) and its health checks, not admission's arithmetic, should exclude it.
pub const MAX_SPEED_FACTOR_PERMILLE: u32 = 8_000;
/// Weight of the newest observation in the moving average, as 1/N: a quarter, so three
/// consistent proofs move the factor most of the way while one outlier moves it little.
pub const SPEED_EWMA_INVERSE_WEIGHT: u32 = 4;
/// Proofs predicted shorter than this teach nothing: fixed costs (witness, key loading) swamp
/// the throughput, and the ratio would be noise.
pub const MIN_LEARNING_PREDICTION_MS: u64 = 20;
/// Most agents whose factor is remembered after they are gone; bounds the map.
pub const MAX_LEARNED_AGENTS: usize = 2 * super::MAX_AGENTS;

const _: () = assert!(MIN_SPEED_FACTOR_PERMILLE <= NEUTRAL_SPEED_FACTOR_PERMILLE);
const _: () = assert!(NEUTRAL_SPEED_FACTOR_PERMILLE <= MAX_SPEED_FACTOR_PERMILLE);
// The breaker's slow-factor limit stays under the cap, which an average can only approach.
const _: () =
    assert!(*crate::policy::BREAKER_SLOW_FACTOR_RANGE_PERMILLE.end() < MAX_SPEED_FACTOR_PERMILLE);

pub use crate::admission::apply_speed_factor;

/// The factors, by agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LearnedSpeeds {
    factors: BTreeMap<AgentId, u32>,
}

impl LearnedSpeeds {
    pub(crate) fn factor(&self, agent: &AgentId) -> u32 {
        self.factors
            .get(agent)
            .copied()
            .unwrap_or(NEUTRAL_SPEED_FACTOR_PERMILLE)
    }

    /// Folds one proof in; returns the new factor.
    pub(crate) fn observe(&mut self, agent: &AgentId, calibrated_ms: u64, actual_ms: u64) -> u32 {
        let old = self.factor(agent);
        if calibrated_ms < MIN_LEARNING_PREDICTION_MS {
            return old;
        }
        let ratio = ((actual_ms as u128 * 1_000) / calibrated_ms as u128).clamp(
            MIN_SPEED_FACTOR_PERMILLE as u128,
            MAX_SPEED_FACTOR_PERMILLE as u128,
        ) as u32;
        let n = SPEED_EWMA_INVERSE_WEIGHT;
        let new = ((old as u64 * (n as u64 - 1) + ratio as u64) / n as u64) as u32;
        assert!(
            (MIN_SPEED_FACTOR_PERMILLE..=MAX_SPEED_FACTOR_PERMILLE).contains(&new),
            "a moving average of clamped ratios stays within the clamp"
        );
        if self.factors.len() >= MAX_LEARNED_AGENTS && !self.factors.contains_key(agent) {
            // Forget some agent to stay bounded; a forgotten one starts neutral again.
            let first = self.factors.keys().next().cloned().expect("map is full");
            self.factors.remove(&first);
        }
        self.factors.insert(agent.clone(), new);
        new
    }
}

impl CoordinatorCore {
    /// After a verified proof: learn from `agent`'s actual proving time for task `id`.
    pub(crate) fn learn_speed(
        &mut self,
        now: UnixMillis,
        agent: &AgentId,
        id: TaskId,
        actual_ms: u64,
    ) {
        let Some(record) = self.fleet.get(agent) else {
            return;
        };
        let Some(t) = record.telemetry.as_ref() else {
            return;
        };
        let calibrated_ms = self.tasks[&id]
            .shape
            .estimate_proving_ms(&t.report.calibration);
        let factor = self.learned.observe(agent, calibrated_ms, actual_ms);
        tracing::debug!(%agent, task = %id, calibrated_ms, actual_ms, factor_permille = factor, at = now.0, "learned speed");
        if let Some(record) = self.fleet.get_mut(agent) {
            record.speed_factor_permille = factor;
        }
    }

    /// An agent's learned correction (permille; 1000 = as calibrated).
    pub fn speed_factor_permille(&self, agent: &AgentId) -> u32 {
        self.learned.factor(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentId {
        AgentId::new(
            proofrack_common::OperatorId::new("op-a").unwrap(),
            proofrack_common::AgentName::new("g").unwrap(),
        )
    }

    #[test]
    fn an_optimistic_calibration_is_corrected_and_clamped() {
        let mut s = LearnedSpeeds::default();
        let a = agent();
        assert_eq!(s.factor(&a), 1_000);
        // Twice as slow as calibrated, three times: most of the way to 2000.
        for _ in 0..3 {
            s.observe(&a, 100, 200);
        }
        assert_eq!(s.factor(&a), 1_577, "1000 → 1250 → 1437 → 1577");
        for _ in 0..50 {
            s.observe(&a, 100, 200);
        }
        assert!((1_990..=2_000).contains(&s.factor(&a)), "{}", s.factor(&a));
        // A wildly slow outlier is clamped before it is averaged in.
        let before = s.factor(&a);
        s.observe(&a, 100, 1_000_000);
        assert_eq!(s.factor(&a), (before * 3 + MAX_SPEED_FACTOR_PERMILLE) / 4);
        // Tiny proofs teach nothing.
        let before = s.factor(&a);
        s.observe(&a, 5, 5_000);
        assert_eq!(s.factor(&a), before);
        assert_eq!(apply_speed_factor(100, 1_500), 150);
        assert_eq!(apply_speed_factor(0, 1_500), 1);
        assert_eq!(apply_speed_factor(u64::MAX, 8_000), u64::MAX);
    }
}
