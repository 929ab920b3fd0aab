//! Admission's offer without every agent's verdict: [`choose`] decides each agent's fit with
//! the same checks as `evaluate` but without building its verdict (no allocation), and builds
//! in full only the verdicts a task's record keeps. With a thousand agents, `admit` spends most
//! of its time allocating a thousand verdicts that the record then drops.
//!
//! Contract (tested against `admit` in `tests.rs`): when some agent fits, `choose` offers the
//! same placement as `admit`, with the verdicts `keep_verdicts(admit(..).verdicts)` keeps and
//! the same counts; when none fits it returns `None` and the caller runs `admit` for the
//! explanation.

use super::{
    evaluate, health, AgentSnapshot, AgentTelemetry, AgentVerdict, Placement, TaskDemand, Timing,
};
use crate::policy::Policy;
use proofrack_common::{OperatorId, StakeUnits, UnixMillis};
use std::collections::BTreeMap;

/// An offer as the task's record keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub placement: Placement,
    /// The fit agents first, then rejected connected agents, then the rest, each group in
    /// agent id order, at most `keep` (a fleet of at most `keep`: all, in id order).
    pub verdicts: Vec<AgentVerdict>,
    pub agents_considered: usize,
    pub agents_rejected: usize,
}

/// See the module documentation. `fleet` is in agent id order (as the core's fleet map
/// yields it); `keep` is how many verdicts to build.
pub fn choose(
    demand: &TaskDemand<'_>,
    fleet: &[AgentSnapshot<'_>],
    free_stake: &BTreeMap<OperatorId, StakeUnits>,
    now: UnixMillis,
    policy: &Policy,
    keep: usize,
) -> Option<Choice> {
    let needed_bytes = demand.shape.estimate_memory_bytes();
    let mut fits = Vec::with_capacity(fleet.len());
    // (predicted done, agent index) of the best agent that did not fail this task before,
    // and of the best that did (a last resort).
    let mut best: [Option<(UnixMillis, usize)>; 2] = [None, None];
    // Agents come grouped by operator (ids sort by operator first): one stake lookup per
    // operator, not per agent.
    let mut stake_of: Option<(&OperatorId, bool)> = None;
    let mut memo = ProvingTimeMemo::default();
    for (i, agent) in fleet.iter().enumerate() {
        let operator = &agent.id.operator;
        let has_stake = match stake_of {
            Some((op, has)) if op == operator => has,
            _ => {
                let has = free_stake
                    .get(operator)
                    .is_some_and(|free| *free >= demand.collateral);
                stake_of = Some((operator, has));
                has
            }
        };
        let done = if has_stake {
            fit_done_at(demand, agent, needed_bytes, now, policy, &mut memo)
        } else {
            None
        };
        fits.push(done.is_some());
        if let Some(done) = done {
            let slot = usize::from(demand.failed_on.contains(agent.id));
            // Ties go to the lower agent id: the fleet is in id order, so the earlier index
            // (comparing ids would compare strings for every fit agent).
            let better = best[slot].is_none_or(|(d, j)| (done, i) < (d, j));
            if better {
                best[slot] = Some((done, i));
            }
        }
    }
    let (_, chosen) = best[0].or(best[1])?;
    let placement = match evaluate(demand, &fleet[chosen], free_stake, now, policy).fit {
        Ok(p) => p,
        Err(misfits) => panic!(
            "admission's quick check found {} fit but its full check did not: {misfits:?}",
            fleet[chosen].id
        ),
    };

    debug_assert!(
        fleet.windows(2).all(|w| w[0].id < w[1].id),
        "choose takes the fleet in agent id order"
    );
    // A fleet within `keep` is kept whole, in id order.
    let all = fleet.len() <= keep;
    let rank = |i: usize| match (fits[i], fleet[i].connected) {
        _ if all => 0,
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    };
    let mut verdicts = Vec::with_capacity(keep.min(fleet.len()));
    'ranks: for r in 0..3 {
        for (i, agent) in fleet.iter().enumerate() {
            if verdicts.len() >= keep {
                break 'ranks;
            }
            if rank(i) == r {
                verdicts.push(evaluate(demand, agent, free_stake, now, policy));
            }
        }
    }
    Some(Choice {
        placement,
        verdicts,
        agents_considered: fleet.len(),
        agents_rejected: fits.iter().filter(|f| !**f).count(),
    })
}

/// The last (calibrated MSM rate, NTT rate, speed factor) seen in one `choose` and the
/// (proving time, margin) it gives the task: a rack's agents mostly share hardware, so the
/// u128 arithmetic runs once per task instead of once per agent.
#[derive(Default)]
struct ProvingTimeMemo {
    last: Option<(SpeedKey, (u64, u64))>,
}

/// (calibrated MSM points/s, NTT elements/s, learned speed factor ‰).
type SpeedKey = (u64, u64, u32);

impl ProvingTimeMemo {
    /// `(predicted_proving_ms, margin_ms)` as `Timing::of` computes them.
    fn get(
        &mut self,
        demand: &TaskDemand<'_>,
        agent: &AgentSnapshot<'_>,
        t: &AgentTelemetry,
        policy: &Policy,
    ) -> (u64, u64) {
        let cal = &t.report.calibration;
        let key = (
            cal.msm_g1_points_per_sec,
            cal.ntt_elements_per_sec,
            agent.speed_factor_permille,
        );
        match self.last {
            Some((k, v)) if k == key => v,
            _ => {
                let proving_ms = crate::admission::apply_speed_factor(
                    demand.shape.estimate_proving_ms(cal),
                    agent.speed_factor_permille,
                );
                let v = (proving_ms, policy.deadline_margin_for(proving_ms));
                self.last = Some((key, v));
                v
            }
        }
    }
}

/// For an agent whose operator has the stake: `Some(predicted finish)` exactly when
/// `evaluate` finds it fit, cheapest checks first.
fn fit_done_at(
    demand: &TaskDemand<'_>,
    agent: &AgentSnapshot<'_>,
    needed_bytes: u64,
    now: UnixMillis,
    policy: &Policy,
    memo: &mut ProvingTimeMemo,
) -> Option<UnixMillis> {
    if !agent.connected || agent.draining || agent.breaker_open(now).is_some() {
        return None;
    }
    if agent.assignments.len() >= policy.max_tasks_per_agent as usize {
        return None;
    }
    let t = agent.telemetry?;
    if t.age_ms(now) > policy.telemetry_max_age_ms {
        return None;
    }
    if demand
        .declined_until
        .get(agent.id)
        .is_some_and(|until| *until > now)
    {
        return None;
    }
    if !health::problems(t, policy).is_empty() {
        return None;
    }
    let free_bytes = t
        .compute_memory_free_bytes()
        .saturating_sub(agent.reserved_memory_bytes());
    if needed_bytes > free_bytes {
        return None;
    }
    // As `Timing::of`, with the proving time memoised.
    let (proving_ms, margin_ms) = memo.get(demand, agent, t, policy);
    let done_at = agent.earliest_start(now).0.saturating_add(proving_ms);
    let due_at = done_at.saturating_add(margin_ms);
    debug_assert_eq!(
        (due_at, done_at),
        {
            let timing = Timing::of(demand, agent, t, now, policy);
            (timing.due_at.0, timing.predicted_done_at.0)
        },
        "memoised timing differs from Timing::of"
    );
    (UnixMillis(due_at) <= demand.deadline).then_some(UnixMillis(done_at))
}
