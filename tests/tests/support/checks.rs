//! Assertions on the coordinator's views.

use proofrack_common::protocol::{OperatorLedgerRow, TaskState, TaskStatusView};
use proofrack_common::StakeUnits;

pub fn agent_is(state: &TaskState, operator: &str, name: &str) -> bool {
    let agent = match state {
        TaskState::Offered { agent, .. }
        | TaskState::Proving { agent, .. }
        | TaskState::Verifying { agent }
        | TaskState::Verified { agent, .. } => agent,
        TaskState::Queued { .. } | TaskState::Failed { .. } | TaskState::Reassigning { .. } => {
            return false
        }
    };
    agent.operator.as_str() == operator && agent.name.as_str() == name
}

pub fn queued_reason(v: &TaskStatusView) -> Option<&str> {
    match &v.state {
        TaskState::Queued { reason } => Some(reason),
        _ => None,
    }
}

pub fn has_history_line(v: &TaskStatusView, needle: &str) -> bool {
    v.history.iter().any(|h| h.what.contains(needle))
}

pub fn assert_row(row: &OperatorLedgerRow, delegated: u128, active: u128, slashed: u128) {
    assert_eq!(
        (row.delegated, row.active, row.slashed),
        (
            StakeUnits(delegated),
            StakeUnits(active),
            StakeUnits(slashed)
        ),
        "operator {} (delegated, active, slashed): {row:?}",
        row.operator
    );
}
