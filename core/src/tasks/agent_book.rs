//! What the coordinator remembers about every agent that ever connected, beyond its
//! connection: that it exists (operators may drain only agents the coordinator knows), and its
//! circuit breaker (see `breaker.rs`). Durable, one row per agent, bounded by
//! [`MAX_KNOWN_AGENTS`].

use super::breaker::BreakerState;
use super::CoordinatorCore;
use crate::admission::AgentId;
use proofrack_common::{AgentName, OperatorId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Agents remembered. Only certificates the CA issued can connect, so this grows only with
/// the rack; twice the fleet limit leaves room for boxes renamed or retired. When full, an
/// agent with nothing to remember (not connected, not drained, breaker closed with no
/// failures) is forgotten for the newcomer.
pub const MAX_KNOWN_AGENTS: usize = 2 * super::MAX_AGENTS;
/// Known agents listed when a drain names one the coordinator does not know.
pub const MAX_KNOWN_AGENTS_LISTED: usize = 16;

/// One agent's durable facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFacts {
    pub first_seen: UnixMillis,
    pub breaker: BreakerState,
}

/// Rows changed since the store last took them: `None` for a forgotten agent.
pub type AgentChanges = Vec<(AgentId, Option<AgentFacts>)>;

#[derive(Debug)]
pub(crate) struct AgentBook {
    pub(crate) facts: BTreeMap<AgentId, AgentFacts>,
    dirty: BTreeSet<AgentId>,
    /// No open breaker closes before this (`u64::MAX`: none is open). A lower bound: lowered
    /// when a breaker opens, made exact by the walk that closes the due ones, so checking
    /// for due breakers on every event costs a comparison, not a walk of every agent ever
    /// seen (see `breaker.rs`).
    pub(crate) breakers_close_from: UnixMillis,
}

impl Default for AgentBook {
    fn default() -> Self {
        AgentBook::restore(Vec::new())
    }
}

impl AgentBook {
    pub(crate) fn restore(rows: Vec<(AgentId, AgentFacts)>) -> AgentBook {
        let facts: BTreeMap<AgentId, AgentFacts> = rows.into_iter().collect();
        let breakers_close_from = UnixMillis(
            facts
                .values()
                .filter_map(|f| f.breaker.open.as_ref().map(|o| o.until.0))
                .min()
                .unwrap_or(u64::MAX),
        );
        AgentBook {
            facts,
            dirty: BTreeSet::new(),
            breakers_close_from,
        }
    }

    pub(crate) fn get(&self, agent: &AgentId) -> Option<&AgentFacts> {
        self.facts.get(agent)
    }

    /// The facts to change: marks the row for the store.
    pub(crate) fn get_mut(&mut self, agent: &AgentId) -> Option<&mut AgentFacts> {
        let facts = self.facts.get_mut(agent)?;
        self.dirty.insert(agent.clone());
        Some(facts)
    }

    pub(crate) fn take_changes(&mut self) -> AgentChanges {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|a| {
                let row = self.facts.get(&a).cloned();
                (a, row)
            })
            .collect()
    }

    pub(crate) fn all_rows(&self) -> Vec<(AgentId, AgentFacts)> {
        self.facts
            .iter()
            .map(|(a, f)| (a.clone(), f.clone()))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.facts.len()
    }
}

impl CoordinatorCore {
    /// An agent connected: remember it (once).
    pub(crate) fn note_agent_seen(&mut self, now: UnixMillis, agent: &AgentId) {
        if self.agent_book.facts.contains_key(agent) {
            return;
        }
        if self.agent_book.len() >= MAX_KNOWN_AGENTS {
            let idle = self
                .agent_book
                .facts
                .iter()
                .find(|(a, f)| {
                    !self.fleet.contains_key(a)
                        && !self.drained.contains(*a)
                        && f.breaker == BreakerState::default()
                })
                .map(|(a, _)| a.clone());
            match idle {
                Some(old) => {
                    self.agent_book.facts.remove(&old);
                    self.agent_book.dirty.insert(old);
                }
                None => {
                    tracing::warn!(%agent, max = MAX_KNOWN_AGENTS, "agent book full of agents with state; not remembering this one");
                    return;
                }
            }
        }
        self.agent_book.facts.insert(
            agent.clone(),
            AgentFacts {
                first_seen: now,
                breaker: BreakerState::default(),
            },
        );
        self.agent_book.dirty.insert(agent.clone());
    }

    /// Whether the coordinator knows `agent`: it connected at some point (and was not
    /// forgotten), is connected or holds tasks now, or is drained.
    pub fn knows_agent(&self, agent: &AgentId) -> bool {
        self.agent_book.facts.contains_key(agent)
            || self.fleet.contains_key(agent)
            || self.drained.contains(agent)
    }

    /// The refusal of a command naming an agent the coordinator does not know.
    pub(crate) fn unknown_agent_message(&self, agent: &AgentId) -> String {
        let (names, total) = self.known_agents_of(&agent.operator, MAX_KNOWN_AGENTS_LISTED);
        let known = match total {
            0 => format!("{} has no agent this coordinator knows", agent.operator),
            n if n > names.len() => format!(
                "{}'s known agents: {} (the first {} of {n})",
                agent.operator,
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                names.len()
            ),
            _ => format!(
                "{}'s known agents: {}",
                agent.operator,
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "{agent} is not an agent this coordinator knows (it has never connected); nothing was changed. {known}"
        )
    }

    /// `operator`'s known agents, in name order: at most `limit`, and how many there are.
    pub fn known_agents_of(&self, operator: &OperatorId, limit: usize) -> (Vec<AgentName>, usize) {
        let all: BTreeSet<&AgentName> = self
            .agent_book
            .facts
            .keys()
            .chain(self.fleet.keys())
            .chain(self.drained.iter())
            .filter(|a| &a.operator == operator)
            .map(|a| &a.name)
            .collect();
        let total = all.len();
        (all.into_iter().take(limit).cloned().collect(), total)
    }
}
