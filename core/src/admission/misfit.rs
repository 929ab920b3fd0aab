//! Why one agent does not fit one task.

use super::format;
use proofrack_common::{OperatorId, StakeUnits, UnixMillis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One reason an agent was not chosen. An agent can have several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Misfit {
    Disconnected,
    /// Its operator drained it (`proofrack drain`), or it was handed its tasks' successors.
    Draining,
    /// A CUDA agent that reports no GPU: the device fell off the bus or the driver lost it.
    NoGpu,
    NoTelemetry,
    StaleTelemetry {
        age_ms: u64,
        limit_ms: u64,
    },
    Overheating {
        gpu: u32,
        temperature_c: u32,
        limit_c: u32,
    },
    NewEccErrors {
        gpu: u32,
        new_errors: u64,
    },
    Throttling {
        gpu: u32,
        nvml_reasons: u64,
    },
    UnknownOperator {
        operator: OperatorId,
    },
    InsufficientStake {
        operator: OperatorId,
        free: StakeUnits,
        needed: StakeUnits,
    },
    AgentFull {
        tasks: usize,
        limit: u32,
    },
    InsufficientMemory {
        needed_bytes: u64,
        free_bytes: u64,
        reported_free_bytes: u64,
        reserved_bytes: u64,
    },
    TooSlow {
        finish_in_ms: u64,
        margin_ms: u64,
        deadline_in_ms: u64,
    },
    RecentlyDeclined {
        until: UnixMillis,
    },
    /// Its circuit breaker is open (repeated failures, or proofs far slower than its
    /// calibration): no new tasks until `until`.
    BreakerOpen {
        until: UnixMillis,
    },
}

impl Misfit {
    /// Whether this is a health problem (excludes the agent whatever the task).
    pub fn is_health(&self) -> bool {
        matches!(
            self,
            Misfit::Overheating { .. }
                | Misfit::NewEccErrors { .. }
                | Misfit::Throttling { .. }
                | Misfit::NoGpu
        )
    }

    /// Whether the agent cannot be trusted to finish what it holds, so its bound tasks are
    /// handed to another agent at once: a lost GPU, uncorrectable memory errors, or a GPU at
    /// its temperature limit. Throttling only slows a proof down and is not one of these.
    pub fn hands_over_tasks(&self) -> bool {
        matches!(
            self,
            Misfit::NoGpu | Misfit::NewEccErrors { .. } | Misfit::Overheating { .. }
        )
    }
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfit::Disconnected => write!(f, "not connected"),
            Misfit::Draining => write!(f, "draining: takes no new tasks"),
            Misfit::NoGpu => write!(
                f,
                "CUDA agent reports no GPU (lost from the bus or the driver)"
            ),
            Misfit::NoTelemetry => write!(f, "has sent no telemetry yet"),
            Misfit::StaleTelemetry { age_ms, limit_ms } => write!(
                f,
                "telemetry is {} old (limit {})",
                format::millis(*age_ms),
                format::millis(*limit_ms)
            ),
            Misfit::Overheating {
                gpu,
                temperature_c,
                limit_c,
            } => {
                write!(f, "GPU {gpu} at {temperature_c} °C (limit {limit_c} °C)")
            }
            Misfit::NewEccErrors { gpu, new_errors } => {
                write!(f, "GPU {gpu} has {new_errors} new uncorrectable ECC errors since the agent connected")
            }
            Misfit::Throttling { gpu, nvml_reasons } => {
                write!(f, "GPU {gpu} is throttling (thermal or power brake, NVML reasons {nvml_reasons:#x})")
            }
            Misfit::UnknownOperator { operator } => {
                write!(f, "operator {operator} has no stake in the ledger")
            }
            Misfit::InsufficientStake {
                operator,
                free,
                needed,
            } => {
                write!(
                    f,
                    "operator {operator} has {free} free stake, needs {needed}"
                )
            }
            Misfit::AgentFull { tasks, limit } => {
                write!(f, "has {tasks} tasks (limit {limit} per agent)")
            }
            Misfit::InsufficientMemory {
                needed_bytes,
                free_bytes,
                reported_free_bytes,
                reserved_bytes,
            } => write!(
                f,
                "needs {}; {} free ({} reported, {} reserved by its tasks)",
                format::bytes(*needed_bytes),
                format::bytes(*free_bytes),
                format::bytes(*reported_free_bytes),
                format::bytes(*reserved_bytes)
            ),
            Misfit::TooSlow {
                finish_in_ms,
                margin_ms,
                deadline_in_ms,
            } => write!(
                f,
                "would finish in {} (+{} safety margin), deadline in {}",
                format::millis(*finish_in_ms),
                format::millis(*margin_ms),
                format::millis(*deadline_in_ms)
            ),
            Misfit::RecentlyDeclined { until } => {
                write!(
                    f,
                    "declined this task or let its offer expire; not offered again before {until}"
                )
            }
            Misfit::BreakerOpen { until } => {
                write!(f, "circuit breaker open until {until}: no new tasks")
            }
        }
    }
}
