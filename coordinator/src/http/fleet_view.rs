//! The fleet page's data (`/api/fleet`): one consistent read of the core. Stake amounts are
//! decimal strings (JSON numbers lose precision above 2^53 in a browser), instants RFC 3339
//! beside their millisecond counts (the page computes "12 s ago" from those), as
//! docs/json.md describes.

use crate::handle::CoreView;
use crate::tasks::{AgentAccuracy, FleetAgent, MovingTask, SlashRecord};
use proofrack_common::timefmt::rfc3339_serde;
use proofrack_common::UnixMillis;
use serde::Serialize;
use std::collections::BTreeMap;

/// Tasks listed on the page; the counts by state cover the rest.
pub const MAX_TASKS_SHOWN: usize = 50;
/// Slashes listed on the page, newest first.
pub const MAX_SLASHES_SHOWN: usize = 20;

#[derive(Serialize)]
pub struct FleetView {
    pub now_ms: u64,
    #[serde(with = "rfc3339_serde")]
    pub now: UnixMillis,
    pub coordinator_build: String,
    pub operators: Vec<OperatorStake>,
    pub agents: Vec<FleetAgent>,
    pub agents_connected: usize,
    pub task_counts: BTreeMap<&'static str, usize>,
    pub tasks: Vec<MovingTask>,
    pub slashes: Vec<SlashJson>,
    pub accuracy: Vec<AgentAccuracy>,
}

#[derive(Serialize)]
pub struct OperatorStake {
    pub operator: String,
    pub delegated: String,
    pub active: String,
    pub free: String,
    pub promised: String,
    pub withdrawing: String,
    pub slashed: String,
    pub bound_tasks: usize,
}

#[derive(Serialize)]
pub struct SlashJson {
    pub at_ms: u64,
    #[serde(with = "rfc3339_serde")]
    pub at: UnixMillis,
    pub task: String,
    pub agent: String,
    pub operator: String,
    pub slashed: String,
    pub reason: String,
}

impl From<SlashRecord> for SlashJson {
    fn from(s: SlashRecord) -> Self {
        SlashJson {
            at_ms: s.at.0,
            at: s.at,
            task: s.task.to_string(),
            agent: s.agent.to_string(),
            operator: s.operator.to_string(),
            slashed: s.slashed.get().to_string(),
            reason: s.reason,
        }
    }
}

pub fn fleet_view(core: &dyn CoreView) -> FleetView {
    let mut view = core.read(|core, now| FleetView {
        now_ms: now.0,
        now,
        coordinator_build: format!("proofrack-coordinator {}", env!("CARGO_PKG_VERSION")),
        operators: core
            .ledger_rows()
            .into_iter()
            .map(|r| OperatorStake {
                operator: r.operator.to_string(),
                delegated: r.delegated.get().to_string(),
                active: r.active.get().to_string(),
                free: r.free.get().to_string(),
                promised: r.promised_to_offers.get().to_string(),
                withdrawing: r.withdrawing.get().to_string(),
                slashed: r.slashed.get().to_string(),
                bound_tasks: r.bound_tasks,
            })
            .collect(),
        agents: core.fleet_agents(now),
        agents_connected: 0,
        task_counts: core.task_state_counts(),
        tasks: core.moving_tasks(now, MAX_TASKS_SHOWN),
        slashes: core
            .recent_slashes(MAX_SLASHES_SHOWN)
            .into_iter()
            .map(SlashJson::from)
            .collect(),
        accuracy: core.agent_accuracy(),
    });
    view.agents_connected = core.connected_agents();
    view
}
