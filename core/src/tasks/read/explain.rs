//! Why a task went where it went: its record folded from its history into what an operator
//! asks — each admission decision (the agent chosen, the predicted time and due time, every
//! agent rejected and why), the stake bound, predicted against actual proving time, and each
//! failure with its cause (deadline, invalid proof, agent lost, out of memory).
//!
//! Pure: a function of a [`TaskView`]; `proofrack explain TASK` prints it. Its JSON (the
//! HTTP API's and `explain --json`) follows docs/json.md: RFC 3339 times, amounts as decimal
//! strings.

use super::queries::TaskView;
use crate::admission::AgentVerdict;
use crate::tasks::history::TaskEvent;
use proofrack_common::timefmt::{self, rfc3339_option_serde, rfc3339_serde};
use proofrack_common::{decimal_option_serde, decimal_serde};
use proofrack_common::{StakeUnits, TaskId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};

/// Why an attempt, or the task, failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureCause {
    /// The agent missed its due time, or the task's deadline passed.
    Deadline,
    InvalidProof,
    /// The agent disconnected or stopped answering.
    AgentLost,
    OutOfMemory,
    Other,
}

impl FailureCause {
    /// Classifies a free-text reason (a decline, a failure cause).
    pub fn from_reason(reason: &str) -> FailureCause {
        let r = reason.to_ascii_lowercase();
        if r.contains("out of memory") || r.contains("memory") {
            FailureCause::OutOfMemory
        } else if r.contains("invalid proof") || r.contains("does not verify") {
            FailureCause::InvalidProof
        } else if r.contains("due time") || r.contains("deadline") {
            FailureCause::Deadline
        } else if r.contains("disconnect") || r.contains("agent lost") || r.contains("gone") {
            FailureCause::AgentLost
        } else {
            FailureCause::Other
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureCause::Deadline => "deadline",
            FailureCause::InvalidProof => "invalid proof",
            FailureCause::AgentLost => "agent lost",
            FailureCause::OutOfMemory => "out of memory",
            FailureCause::Other => "other",
        })
    }
}

/// One admission decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(with = "rfc3339_serde")]
    pub at: UnixMillis,
    /// The agent offered the task (`None`: no agent fit).
    pub chosen: Option<String>,
    pub predicted_proving_ms: Option<u64>,
    #[serde(with = "rfc3339_option_serde")]
    pub due_at: Option<UnixMillis>,
    /// The aggregated reason, when no agent fit.
    pub no_fit: Option<String>,
    /// Every agent that did not fit, with its reasons.
    pub rejected: Vec<(String, Vec<String>)>,
    /// Agents that fit but finish later than the chosen one.
    pub fit_but_later: Vec<String>,
}

/// One failure on the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(with = "rfc3339_serde")]
    pub at: UnixMillis,
    pub agent: Option<String>,
    pub cause: FailureCause,
    pub detail: String,
    #[serde(with = "decimal_option_serde")]
    pub slashed: Option<StakeUnits>,
}

/// The whole record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskExplanation {
    /// `task-N` in JSON, as everywhere else.
    #[serde(with = "task_id_serde")]
    pub task: TaskId,
    pub circuit: String,
    #[serde(with = "decimal_serde")]
    pub collateral: StakeUnits,
    #[serde(with = "rfc3339_serde")]
    pub submitted_at: UnixMillis,
    #[serde(with = "rfc3339_serde")]
    pub deadline: UnixMillis,
    pub decisions: Vec<Decision>,
    /// The last stake binding: (agent, collateral); in JSON `["op-a/gpu-01", "40"]`.
    #[serde(with = "stake_bound_serde")]
    pub stake_bound: Option<(String, StakeUnits)>,
    /// Of the attempt that verified.
    pub predicted_proving_ms: Option<u64>,
    pub actual_proving_ms: Option<u64>,
    pub failures: Vec<Failure>,
    /// Set when the task itself failed.
    pub failed: Option<Failure>,
    pub verified_by: Option<String>,
}

/// A task id as `task-N` in JSON.
mod task_id_serde {
    use proofrack_common::TaskId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &TaskId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TaskId, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `stake_bound` with its amount as a decimal string, as every amount in JSON.
mod stake_bound_serde {
    use proofrack_common::StakeUnits;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        v: &Option<(String, StakeUnits)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref()
            .map(|(agent, amount)| (agent, amount.get().to_string()))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(String, StakeUnits)>, D::Error> {
        Option::<(String, String)>::deserialize(d)?
            .map(|(agent, amount)| {
                amount
                    .parse()
                    .map(|a| (agent, a))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

fn verdict_lines(
    verdicts: &[AgentVerdict],
    chosen: Option<&str>,
) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let mut rejected = Vec::new();
    let mut later = Vec::new();
    for v in verdicts {
        let name = v.agent.to_string();
        match &v.fit {
            Err(misfits) => {
                rejected.push((name, misfits.iter().map(ToString::to_string).collect()))
            }
            Ok(_) if Some(name.as_str()) != chosen => later.push(name),
            Ok(_) => {}
        }
    }
    (rejected, later)
}

/// Folds a task's record into its explanation.
pub fn explain(view: &TaskView) -> TaskExplanation {
    let mut e = TaskExplanation {
        task: view.id,
        circuit: view.circuit.clone(),
        collateral: view.collateral,
        submitted_at: view.submitted_at,
        deadline: view.deadline,
        decisions: Vec::new(),
        stake_bound: None,
        predicted_proving_ms: None,
        actual_proving_ms: None,
        failures: Vec::new(),
        failed: None,
        verified_by: None,
    };
    for h in &view.history {
        match &h.event {
            TaskEvent::Offered {
                placement,
                verdicts,
                ..
            } => {
                let chosen = placement.agent.to_string();
                let (rejected, fit_but_later) = verdict_lines(verdicts, Some(&chosen));
                e.decisions.push(Decision {
                    at: h.at,
                    chosen: Some(chosen),
                    predicted_proving_ms: Some(placement.predicted_proving_ms),
                    due_at: Some(placement.due_at),
                    no_fit: None,
                    rejected,
                    fit_but_later,
                });
            }
            TaskEvent::NoFit { reason, verdicts } => {
                let (rejected, _) = verdict_lines(verdicts, None);
                e.decisions.push(Decision {
                    at: h.at,
                    chosen: None,
                    predicted_proving_ms: None,
                    due_at: None,
                    no_fit: Some(reason.to_string()),
                    rejected,
                    fit_but_later: Vec::new(),
                });
            }
            TaskEvent::StakeBound {
                agent, collateral, ..
            } => e.stake_bound = Some((agent.to_string(), *collateral)),
            TaskEvent::Verified {
                agent,
                predicted_proving_ms,
                actual_proving_ms,
            } => {
                e.verified_by = Some(agent.to_string());
                e.predicted_proving_ms = Some(*predicted_proving_ms);
                e.actual_proving_ms = Some(*actual_proving_ms);
            }
            TaskEvent::InvalidProof { agent, slashed, .. } => e.failures.push(Failure {
                at: h.at,
                agent: Some(agent.to_string()),
                cause: FailureCause::InvalidProof,
                detail: h.to_string(),
                slashed: Some(*slashed),
            }),
            TaskEvent::DueTimeMissed { agent, slashed, .. } => e.failures.push(Failure {
                at: h.at,
                agent: Some(agent.to_string()),
                cause: FailureCause::Deadline,
                detail: h.to_string(),
                slashed: Some(*slashed),
            }),
            TaskEvent::OfferWithdrawn { agent, reason } => e.failures.push(Failure {
                at: h.at,
                agent: Some(agent.to_string()),
                cause: FailureCause::AgentLost,
                detail: reason.clone(),
                slashed: None,
            }),
            TaskEvent::OfferExpired { agent } => e.failures.push(Failure {
                at: h.at,
                agent: Some(agent.to_string()),
                cause: FailureCause::AgentLost,
                detail: "offer expired unanswered".into(),
                slashed: None,
            }),
            TaskEvent::Declined { agent, reason } => {
                let cause = FailureCause::from_reason(reason);
                if cause == FailureCause::OutOfMemory {
                    e.failures.push(Failure {
                        at: h.at,
                        agent: Some(agent.to_string()),
                        cause,
                        detail: reason.clone(),
                        slashed: None,
                    });
                }
            }
            TaskEvent::Failed { cause } => {
                e.failed = Some(Failure {
                    at: h.at,
                    agent: None,
                    cause: FailureCause::from_reason(cause),
                    detail: cause.clone(),
                    slashed: None,
                })
            }
            _ => {}
        }
    }
    e
}

impl fmt::Display for TaskExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Times from the submission: the record reads the same whenever it is read.
        let rel = |t: UnixMillis| {
            if t >= self.submitted_at {
                format!("+{}", timefmt::span(t.saturating_since(self.submitted_at)))
            } else {
                format!("-{}", timefmt::span(self.submitted_at.saturating_since(t)))
            }
        };
        writeln!(
            f,
            "{}: circuit {}, collateral {}, submitted {}, deadline {} ({} after submission)",
            self.task,
            self.circuit,
            self.collateral,
            timefmt::utc(self.submitted_at),
            timefmt::utc(self.deadline),
            timefmt::span(self.deadline.saturating_since(self.submitted_at))
        )?;
        match (&self.verified_by, &self.failed) {
            (Some(agent), _) => writeln!(f, "outcome: verified, proven by {agent}")?,
            (None, Some(fail)) => writeln!(f, "outcome: failed ({}): {}", fail.cause, fail.detail)?,
            (None, None) => writeln!(f, "outcome: not finished yet")?,
        }
        if let (Some(p), Some(a)) = (self.predicted_proving_ms, self.actual_proving_ms) {
            writeln!(
                f,
                "proving time: predicted {}, actual {}",
                timefmt::span_ms(p),
                timefmt::span_ms(a)
            )?;
        }
        if let Some((agent, c)) = &self.stake_bound {
            writeln!(f, "stake bound: {c} of {agent}'s operator")?;
        }
        writeln!(f, "admission decisions (times from the submission):")?;
        for d in &self.decisions {
            let mut line = format!("  {} ", rel(d.at));
            match (&d.chosen, &d.no_fit) {
                (Some(agent), _) => {
                    let _ = write!(
                        line,
                        "offered to {agent} (predicted proving time {}, due {})",
                        timefmt::span_ms(d.predicted_proving_ms.unwrap_or(0)),
                        d.due_at.map_or("-".into(), rel)
                    );
                }
                (None, Some(reason)) => {
                    let _ = write!(line, "no agent fit: {reason}");
                }
                (None, None) => line.push_str("no decision"),
            }
            writeln!(f, "{line}")?;
            if !d.fit_but_later.is_empty() {
                writeln!(
                    f,
                    "      also fit, finishing later: {}",
                    d.fit_but_later.join(", ")
                )?;
            }
            for (agent, why) in &d.rejected {
                writeln!(f, "      rejected {agent}: {}", why.join("; "))?;
            }
        }
        if !self.failures.is_empty() {
            writeln!(f, "failures:")?;
            for x in &self.failures {
                writeln!(
                    f,
                    "  {} {} on {}: {}",
                    rel(x.at),
                    x.cause,
                    x.agent.as_deref().unwrap_or("-"),
                    x.detail
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_classified() {
        assert_eq!(
            FailureCause::from_reason("CUDA out of memory allocating 3 GiB"),
            FailureCause::OutOfMemory
        );
        assert_eq!(
            FailureCause::from_reason("invalid proof from op-a/g; no time left to reassign it"),
            FailureCause::InvalidProof
        );
        assert_eq!(
            FailureCause::from_reason("op-a/g missed its due time 5"),
            FailureCause::Deadline
        );
        assert_eq!(
            FailureCause::from_reason("agent disconnected"),
            FailureCause::AgentLost
        );
        assert_eq!(FailureCause::from_reason("?"), FailureCause::Other);
    }
}
