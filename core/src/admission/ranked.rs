//! Admission proportional to the agents that fit: a [`RankedFleet`] is built once per
//! admission pass and keeps the agents that can take any task at all (connected, not drained,
//! breaker closed, a free place in its task limit, fresh and healthy telemetry) grouped by
//! speed (calibrated MSM and NTT rates and learned speed factor: the same predicted proving
//! time for every task) and, within a group, in the order a task would finish on them (when a
//! slot frees, then agent id). A task then walks each group from its head only until the
//! first agent that fits, or until the rest of the group cannot beat the best found.
//!
//! On a rack where the agents share a few hardware types, a task costs one look per type
//! plus one per agent ahead of the chosen one that does not fit (no stake left, not enough
//! memory for this task, recently declined it), instead of one per agent. After an offer,
//! [`RankedFleet::refresh`] moves only the agent that took it.
//!
//! Contract (tested against `admit` in `tests.rs` on every admission case, and by the
//! dispatcher in debug builds on small fleets): when some agent fits, [`RankedFleet::choose`]
//! offers the same placement as `admit`; when none does it returns `None` and the caller runs
//! `admit` for the explanation.

use super::{evaluate, health, AgentId, AgentSnapshot, AgentVerdict, Placement, TaskDemand};
use crate::policy::Policy;
use proofrack_common::telemetry::Calibration;
use proofrack_common::{OperatorId, StakeUnits, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};

/// An offer as the task's record keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub placement: Placement,
    /// The chosen agent's verdict first, then the other fit agents the walk saw (the best of
    /// each other speed group; agents that failed this task before), then the agents ranked
    /// ahead of a group's best that did not fit, then connected agents out of service for a
    /// reason other than being full (a breaker open, stale or unhealthy, drained: why a
    /// faster agent was passed over), each part in agent id order, at most `keep`.
    pub verdicts: Vec<AgentVerdict>,
    /// The agents in the pass's fleet.
    pub agents_considered: usize,
    /// The agents that could not take it: out of service for any task, or ranked ahead of
    /// the chosen one and not fit for this one. Agents ranked after it are not examined.
    pub agents_rejected: usize,
}

/// (calibrated MSM points/s, NTT elements/s, learned speed factor ‰): agents with the same
/// key predict the same proving time for every task.
type SpeedKey = (u64, u64, u32);

/// Agents of one speed, in the order a task would finish on them.
#[derive(Debug)]
struct SpeedGroup {
    /// A calibration with this group's rates (the proving time depends on nothing else).
    calibration: Calibration,
    speed_factor_permille: u32,
    /// (when a slot frees, at `now` or later; agent index, which is agent id order).
    order: BTreeSet<(u64, u32)>,
}

/// One agent as the walk needs it.
#[derive(Debug)]
struct Entry {
    id: AgentId,
    /// `(group, earliest start)` when it can take a task at all; `None` when out of service.
    ranked: Option<(usize, u64)>,
    /// Reported free compute memory less what its tasks reserve.
    free_bytes: u64,
}

/// The fleet as one admission pass sees it. See the module documentation.
#[derive(Debug)]
pub struct RankedFleet {
    now: UnixMillis,
    /// In agent id order.
    entries: Vec<Entry>,
    groups: Vec<SpeedGroup>,
    group_of: BTreeMap<SpeedKey, usize>,
    out_of_service: usize,
    /// The connected agents among them that are out of service for a reason an operator
    /// acts on (breaker open, drained, stale or unhealthy telemetry), by index: their
    /// verdicts explain why a choice passed them over. Agents that are only full are not
    /// listed: on a busy rack that is most of the fleet, and a full agent is working, not
    /// failing (they are counted in `out_of_service`, so the record's "N of M agents out of
    /// service or ahead of it did not fit" includes them, and `proofrack agents` shows each
    /// agent's load). Keeping their verdicts cost ~2 KB per task, half of a bound task's memory.
    connected_out_of_service: BTreeSet<u32>,
}

impl RankedFleet {
    /// `fleet` in agent id order (as the core's fleet map yields it).
    pub fn build<'a>(
        fleet: impl IntoIterator<Item = AgentSnapshot<'a>>,
        now: UnixMillis,
        policy: &Policy,
    ) -> RankedFleet {
        let mut ranked = RankedFleet {
            now,
            entries: Vec::new(),
            groups: Vec::new(),
            group_of: BTreeMap::new(),
            out_of_service: 0,
            connected_out_of_service: BTreeSet::new(),
        };
        for agent in fleet {
            debug_assert!(
                ranked.entries.last().is_none_or(|e| e.id < *agent.id),
                "a ranked fleet is built in agent id order"
            );
            ranked.entries.push(Entry {
                id: agent.id.clone(),
                ranked: None,
                free_bytes: 0,
            });
            ranked.out_of_service += 1;
            ranked.place(ranked.entries.len() - 1, &agent, policy);
        }
        ranked
    }

    /// Agents in the pass's fleet.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes `agent` again after its assignments changed (an offer made to it in this pass).
    pub fn refresh(&mut self, agent: &AgentSnapshot<'_>, policy: &Policy) {
        let Ok(i) = self.entries.binary_search_by(|e| e.id.cmp(agent.id)) else {
            return;
        };
        if let Some((group, start)) = self.entries[i].ranked.take() {
            self.groups[group].order.remove(&(start, i as u32));
            self.out_of_service += 1;
        }
        self.connected_out_of_service.remove(&(i as u32));
        self.place(i, agent, policy);
    }

    /// Ranks entry `i` from `agent` if it can take a task at all (it is unranked now).
    fn place(&mut self, i: usize, agent: &AgentSnapshot<'_>, policy: &Policy) {
        let now = self.now;
        let well = agent.connected
            && !agent.draining
            && agent.breaker_open(now).is_none()
            && agent.telemetry.is_some_and(|t| {
                t.age_ms(now) <= policy.telemetry_max_age_ms
                    && health::problems(t, policy).is_empty()
            });
        let full = agent.assignments.len() >= policy.max_tasks_per_agent as usize;
        let Some(t) = agent.telemetry.filter(|_| well && !full) else {
            if agent.connected && !well {
                self.connected_out_of_service.insert(i as u32);
            }
            return;
        };
        let cal = &t.report.calibration;
        let key = (
            cal.msm_g1_points_per_sec,
            cal.ntt_elements_per_sec,
            agent.speed_factor_permille,
        );
        let group = match self.group_of.get(&key) {
            Some(g) => *g,
            None => {
                self.groups.push(SpeedGroup {
                    calibration: cal.clone(),
                    speed_factor_permille: agent.speed_factor_permille,
                    order: BTreeSet::new(),
                });
                self.group_of.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let start = agent.earliest_start(now).0;
        self.groups[group].order.insert((start, i as u32));
        let entry = &mut self.entries[i];
        entry.ranked = Some((group, start));
        entry.free_bytes = t
            .compute_memory_free_bytes()
            .saturating_sub(agent.reserved_memory_bytes());
        self.out_of_service -= 1;
    }

    /// Where `demand` goes, with the verdicts its record keeps (at most `keep`), or `None`
    /// when no agent fits. `snapshot_of` gives the fleet's agent of an id this fleet was built
    /// from (unchanged since, but for [`RankedFleet::refresh`]ed ones).
    pub fn choose<'a>(
        &self,
        demand: &TaskDemand<'_>,
        free_stake: &BTreeMap<OperatorId, StakeUnits>,
        policy: &Policy,
        keep: usize,
        snapshot_of: impl Fn(&AgentId) -> AgentSnapshot<'a>,
    ) -> Option<Choice> {
        let walk = self.walk(demand, free_stake, policy, keep);
        let chosen = walk.best[0].or(walk.best[1])?.1 as usize;
        let verdict = |i: usize| {
            let agent = snapshot_of(&self.entries[i].id);
            evaluate(demand, &agent, free_stake, self.now, policy)
        };
        let chosen_verdict = verdict(chosen);
        let placement = match &chosen_verdict.fit {
            Ok(p) => p.clone(),
            Err(misfits) => panic!(
                "admission's ranked walk found {} fit but its full check did not: {misfits:?}",
                self.entries[chosen].id
            ),
        };
        let mut verdicts = Vec::with_capacity(keep.min(1 + walk.fits.len() + walk.misfits.len()));
        verdicts.push(chosen_verdict);
        let others = walk.fits.iter().filter(|i| **i != chosen);
        let out_of_service = self.connected_out_of_service.iter().map(|i| *i as usize);
        for i in others.chain(&walk.misfits).copied().chain(out_of_service) {
            if verdicts.len() >= keep {
                break;
            }
            let mut v = verdict(i);
            if let Err(misfits) = &mut v.fit {
                // Kept as long as the task: no spare capacity.
                misfits.shrink_to_fit();
            }
            debug_assert_eq!(
                v.fit.is_ok(),
                walk.fits.contains(&i),
                "the ranked walk and the full check disagree on {}",
                v.agent
            );
            verdicts.push(v);
        }
        Some(Choice {
            placement,
            verdicts,
            agents_considered: self.entries.len(),
            agents_rejected: self.out_of_service + walk.misfit_count,
        })
    }

    /// Each speed group from its head: the best fit agent (`best[0]`; `best[1]` among those
    /// that failed this task before), and the agents seen on the way.
    fn walk(
        &self,
        demand: &TaskDemand<'_>,
        free_stake: &BTreeMap<OperatorId, StakeUnits>,
        policy: &Policy,
        keep: usize,
    ) -> Walk {
        let needed_bytes = demand.shape.estimate_memory_bytes();
        let now = self.now;
        let mut walk = Walk::default();
        // Free stake per operator, looked up once per operator met.
        let mut stake_ok: BTreeMap<&OperatorId, bool> = BTreeMap::new();
        for group in &self.groups {
            let proving_ms = super::apply_speed_factor(
                demand.shape.estimate_proving_ms(&group.calibration),
                group.speed_factor_permille,
            );
            let margin_ms = policy.deadline_margin_for(proving_ms);
            for &(start, i) in &group.order {
                let done = start.saturating_add(proving_ms);
                let due = done.saturating_add(margin_ms);
                // Nothing later in this group finishes sooner, or before the deadline.
                if walk.best[0].is_some_and(|best| (done, i) > best) {
                    break;
                }
                let entry = &self.entries[i as usize];
                let operator = &entry.id.operator;
                let has_stake = *stake_ok.entry(operator).or_insert_with(|| {
                    free_stake
                        .get(operator)
                        .is_some_and(|free| *free >= demand.collateral)
                });
                let declined = demand
                    .declined_until
                    .get(&entry.id)
                    .is_some_and(|until| *until > now);
                let fits = UnixMillis(due) <= demand.deadline
                    && has_stake
                    && needed_bytes <= entry.free_bytes
                    && !declined;
                if !fits {
                    walk.misfit_count += 1;
                    if walk.misfits.len() < keep {
                        walk.misfits.push(i as usize);
                    }
                    if UnixMillis(due) > demand.deadline {
                        break;
                    }
                    continue;
                }
                if walk.fits.len() < keep {
                    walk.fits.push(i as usize);
                }
                let slot = usize::from(demand.failed_on.contains(&entry.id));
                if walk.best[slot].is_none_or(|best| (done, i) < best) {
                    walk.best[slot] = Some((done, i));
                }
                if slot == 0 {
                    // The group's best: the rest of it finishes no sooner.
                    break;
                }
            }
        }
        walk.fits.sort_unstable();
        walk.misfits.sort_unstable();
        walk
    }
}

/// What one task's walk found.
#[derive(Default)]
struct Walk {
    /// (predicted done, agent index) of the best fit agent that did not fail this task
    /// before, and of the best that did (a last resort).
    best: [Option<(u64, u32)>; 2],
    /// Fit agents seen (at most `keep`), by index.
    fits: Vec<usize>,
    /// Agents seen that did not fit (at most `keep`), by index, and how many there were.
    misfits: Vec<usize>,
    misfit_count: usize,
}
