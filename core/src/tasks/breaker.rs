//! Circuit breakers: an agent that keeps failing, or whose real proving times are far off its
//! calibration, gets no new offers for a cool-down.
//!
//! Failures are the agent's own: a missed due time, an invalid proof, a task it gave up.
//! `policy.breaker_failures` of them in a row (no verified proof in between) open its
//! breaker; so does a learned speed factor (actual over calibrated proving time, see
//! `learned.rs`) of `policy.breaker_slow_factor_permille` or more after a verified proof.
//! An open breaker excludes the agent from admission until `policy.breaker_cooldown_ms` has
//! passed (it keeps proving what it holds); then it closes on probation: one more failure
//! opens it again at once. The agent's operator admin can close it early
//! (`proofrack breaker reset OP/AGENT`). The state is durable (the agent book), so neither a
//! reconnect nor a coordinator restart clears it.

use super::admin::AdminReply;
use super::CoordinatorCore;
use crate::admission::AgentId;
use proofrack_common::UnixMillis;
use serde::{Deserialize, Serialize};

/// One agent's breaker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerState {
    /// Its failures since its last verified proof (or since the breaker last closed).
    pub failures_in_a_row: u32,
    /// Open: no new offers until `until`.
    pub open: Option<OpenBreaker>,
    /// How many times it opened, ever.
    pub trips: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBreaker {
    pub since: UnixMillis,
    pub until: UnixMillis,
    /// Why it opened, for `agents`, `explain`, the fleet page and the log.
    pub why: String,
}

impl BreakerState {
    /// `Some(until)` while open at `now`.
    pub fn open_until(&self, now: UnixMillis) -> Option<UnixMillis> {
        self.open.as_ref().map(|o| o.until).filter(|u| *u > now)
    }
}

impl CoordinatorCore {
    /// `agent` failed a task it held (`what`): one more failure in a row; the breaker opens
    /// at the policy's count.
    pub(crate) fn note_agent_failure(&mut self, now: UnixMillis, agent: &AgentId, what: &str) {
        let limit = self.policy.breaker_failures;
        let Some(facts) = self.agent_book.get_mut(agent) else {
            return;
        };
        let b = &mut facts.breaker;
        b.failures_in_a_row = b.failures_in_a_row.saturating_add(1);
        let failures = b.failures_in_a_row;
        if failures >= limit && b.open.is_none() {
            self.trip_breaker(
                now,
                agent,
                format!("{failures} failures in a row, the last: {what}"),
            );
        }
    }

    /// `agent` delivered a verified proof: its failure streak ends; a learned speed factor at
    /// or past the policy's limit opens the breaker.
    pub(crate) fn note_agent_success(&mut self, now: UnixMillis, agent: &AgentId) {
        let factor = self.learned.factor(agent);
        let limit = self.policy.breaker_slow_factor_permille;
        let Some(facts) = self.agent_book.get_mut(agent) else {
            return;
        };
        facts.breaker.failures_in_a_row = 0;
        if factor >= limit && facts.breaker.open.is_none() {
            self.trip_breaker(
                now,
                agent,
                format!(
                    "its proofs take {}.{:02}× its calibrated time (limit {}.{:02}×): its calibration cannot be trusted",
                    factor / 1000,
                    factor % 1000 / 10,
                    limit / 1000,
                    limit % 1000 / 10
                ),
            );
        }
    }

    fn trip_breaker(&mut self, now: UnixMillis, agent: &AgentId, why: String) {
        let until = UnixMillis(now.0.saturating_add(self.policy.breaker_cooldown_ms));
        let facts = self
            .agent_book
            .get_mut(agent)
            .expect("a breaker trips only for a known agent");
        facts.breaker.open = Some(OpenBreaker {
            since: now,
            until,
            why: why.clone(),
        });
        facts.breaker.trips = facts.breaker.trips.saturating_add(1);
        let book = &mut self.agent_book;
        book.breakers_close_from = book.breakers_close_from.min(until);
        tracing::warn!(%agent, %until, %why, "circuit breaker open: no new offers to this agent until the cool-down ends (`proofrack breaker reset` closes it)");
        if let Some(r) = self.fleet.get_mut(agent) {
            r.breaker_open_until = Some(until);
        }
        self.stats.breaker_trips = self.stats.breaker_trips.saturating_add(1);
    }

    /// Closes every breaker whose cool-down ended by `now`, on probation.
    pub(crate) fn close_due_breakers(&mut self, now: UnixMillis) {
        if now < self.agent_book.breakers_close_from {
            return;
        }
        let mut due: Vec<AgentId> = Vec::new();
        let mut next_close = u64::MAX;
        for (agent, facts) in &self.agent_book.facts {
            match &facts.breaker.open {
                Some(open) if open.until <= now => due.push(agent.clone()),
                Some(open) => next_close = next_close.min(open.until.0),
                None => {}
            }
        }
        self.agent_book.breakers_close_from = UnixMillis(next_close);
        let probation = self.policy.breaker_failures.saturating_sub(1);
        for agent in due {
            let facts = self.agent_book.get_mut(&agent).expect("listed above");
            facts.breaker.open = None;
            facts.breaker.failures_in_a_row = probation;
            tracing::info!(%agent, "circuit breaker closed after its cool-down (on probation: one more failure opens it again)");
            if let Some(r) = self.fleet.get_mut(&agent) {
                r.breaker_open_until = None;
            }
            self.needs_full_pass = true;
        }
    }

    /// When the next open breaker closes.
    /// (A lower bound: at the latest then, `close_due_breakers` makes it exact.)
    pub(crate) fn next_breaker_close(&self) -> Option<UnixMillis> {
        let from = self.agent_book.breakers_close_from;
        (from.0 != u64::MAX).then_some(from)
    }

    /// `agent`'s breaker, if the coordinator knows the agent.
    pub fn breaker(&self, agent: &AgentId) -> Option<&BreakerState> {
        self.agent_book.get(agent).map(|f| &f.breaker)
    }

    /// Agents whose breaker is open at `now`, with until when and why.
    pub fn open_breakers(&self, now: UnixMillis) -> Vec<(AgentId, OpenBreaker)> {
        self.agent_book
            .facts
            .iter()
            .filter_map(|(a, f)| {
                let o = f.breaker.open.as_ref()?;
                (o.until > now).then(|| (a.clone(), o.clone()))
            })
            .collect()
    }

    /// An operator admin closes `agent`'s breaker (and forgets its failure streak). Carries
    /// the request id like the other operator commands: a retry gets the first reply.
    pub fn handle_breaker_reset(
        &mut self,
        now: UnixMillis,
        requester: &str,
        request_id: u64,
        agent: &AgentId,
    ) -> AdminReply {
        self.expire(now);
        let reply = match self.commands.get(requester, request_id).cloned() {
            Some(stored) => stored,
            None => match self.agent_book.get_mut(agent) {
                None => AdminReply {
                    ok: false,
                    message: self.unknown_agent_message(agent),
                },
                Some(facts) => {
                    let was_open = facts.breaker.open.take();
                    facts.breaker.failures_in_a_row = 0;
                    if let Some(r) = self.fleet.get_mut(agent) {
                        r.breaker_open_until = None;
                    }
                    self.needs_full_pass = true;
                    let message = match was_open {
                        Some(o) => format!(
                            "{agent}'s circuit breaker closed (it was open until {} because {}); it is offered tasks again",
                            o.until, o.why
                        ),
                        None => format!(
                            "{agent}'s circuit breaker was not open; its failure count is cleared"
                        ),
                    };
                    tracing::info!(%agent, %requester, "operator command: breaker reset");
                    self.remember(now, requester, request_id, AdminReply { ok: true, message })
                }
            },
        };
        self.settle(now);
        reply
    }
}

// Scenarios with the simulated clock: `coordinator/tests/scenarios/breaker.rs`.
