//! Inputs from the shell's registry, from clients and from the stake source.

use super::error::{CircuitRejected, StakeEventRejected, SubmitRejected};
use super::history::{History, TaskEvent};
use super::model::{Task, TaskSpec, TaskState};
use super::{Circuit, CoordinatorCore, PassScope, MAX_CIRCUITS, MAX_CIRCUIT_NAME_LEN};
use crate::admission::AgentId;
use crate::ledger::source::StakeEvent;
use proofrack_common::telemetry::ProofShape;
use proofrack_common::{KeyId, StakeUnits, TaskId, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};

/// Most circuit names listed in an "unknown circuit" message.
const MAX_CIRCUITS_LISTED: usize = 16;

impl CoordinatorCore {
    /// Registers (or replaces) a circuit. Tasks already submitted keep the key and shape they
    /// were submitted with.
    pub fn register_circuit(
        &mut self,
        name: String,
        key_id: KeyId,
        shape: ProofShape,
    ) -> Result<(), CircuitRejected> {
        if name.is_empty() || name.len() > MAX_CIRCUIT_NAME_LEN {
            return Err(CircuitRejected::BadName {
                name,
                max: MAX_CIRCUIT_NAME_LEN,
            });
        }
        if !self.circuits.contains_key(&name) && self.circuits.len() >= MAX_CIRCUITS {
            return Err(CircuitRejected::TooMany { max: MAX_CIRCUITS });
        }
        tracing::info!(circuit = %name, key = %key_id.short(), domain = shape.domain_size, "circuit registered");
        self.circuits.insert(name, Circuit { key_id, shape });
        Ok(())
    }

    /// Removes a circuit no unfinished task uses; new submissions for it are refused as for
    /// any unknown circuit. Finished tasks keep their record.
    pub fn unregister_circuit(&mut self, name: &str) -> Result<(), CircuitRejected> {
        if !self.circuits.contains_key(name) {
            return Err(CircuitRejected::Unknown {
                name: name.to_string(),
            });
        }
        let tasks = self
            .tasks
            .values()
            .filter(|t| !t.state.is_finished() && t.spec.circuit == name)
            .count();
        if tasks > 0 {
            return Err(CircuitRejected::InUse {
                name: name.to_string(),
                tasks,
            });
        }
        self.circuits.remove(name);
        tracing::info!(circuit = %name, "circuit unregistered");
        Ok(())
    }

    /// A delegation change from the stake source. More stake may let waiting tasks run.
    pub fn handle_stake_event(
        &mut self,
        now: UnixMillis,
        event: StakeEvent,
    ) -> Result<(), StakeEventRejected> {
        self.expire(now);
        let result = match event {
            StakeEvent::OperatorRegistered { operator } => {
                self.ledger_mut().add_operator(operator);
                Ok(())
            }
            StakeEvent::Delegated { operator, amount } => self
                .ledger_mut()
                .delegate(&operator, amount)
                .map_err(Into::into),
            StakeEvent::WithdrawalRequested { operator, amount } => self
                .ledger_mut()
                .request_withdrawal(&operator, amount)
                .map_err(Into::into),
            StakeEvent::WithdrawalCompleted { operator, amount } => self
                .ledger_mut()
                .complete_withdrawal(&operator, amount)
                .map_err(Into::into),
        };
        self.settle(now);
        result
    }

    /// A client's submission. Returns the task's id; a repeated (client, request id) returns
    /// the id of the task it created. The task is offered at once if an agent fits, else it
    /// waits in the queue (bounded by `policy.queue_capacity` unfinished tasks).
    pub fn handle_submit(
        &mut self,
        now: UnixMillis,
        spec: TaskSpec,
    ) -> Result<TaskId, SubmitRejected> {
        self.expire(now);
        let result = self.submit(now, spec);
        let scope = match &result {
            Ok(id) => PassScope::Task(*id),
            Err(_) => PassScope::OnlyIfNeeded,
        };
        self.settle_scoped(now, scope);
        result
    }

    fn submit(&mut self, now: UnixMillis, spec: TaskSpec) -> Result<TaskId, SubmitRejected> {
        if let Some(existing) = self.requests.get(&(spec.client.clone(), spec.request_id)) {
            return Ok(*existing);
        }
        let Some(circuit) = self.circuits.get(&spec.circuit).cloned() else {
            let mut known: Vec<&str> = self
                .circuits
                .keys()
                .take(MAX_CIRCUITS_LISTED)
                .map(String::as_str)
                .collect();
            if self.circuits.len() > MAX_CIRCUITS_LISTED {
                known.push("...");
            }
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(SubmitRejected::UnknownCircuit {
                circuit: spec.circuit,
                known,
            });
        };
        if spec.collateral == StakeUnits::ZERO {
            return Err(SubmitRejected::ZeroCollateral);
        }
        if spec.deadline <= now {
            return Err(SubmitRejected::DeadlinePassed {
                deadline: spec.deadline,
                now,
            });
        }
        let available_ms = spec.deadline.0 - now.0;
        if available_ms > self.policy.max_deadline_ms {
            return Err(SubmitRejected::DeadlineTooFar {
                available_ms,
                max_ms: self.policy.max_deadline_ms,
            });
        }
        if !self.can_finish_within(&circuit.shape, available_ms) {
            let (needed_ms, fastest) = self.fastest_possible_ms(&circuit.shape);
            return Err(SubmitRejected::DeadlineTooShort {
                available_ms,
                needed_ms,
                fastest,
            });
        }
        let largest_delegated = self.ledger.largest_delegation();
        if spec.collateral > largest_delegated {
            return Err(SubmitRejected::CollateralAboveAllStake {
                collateral: spec.collateral,
                largest_delegated,
            });
        }
        self.index.refresh(&self.tasks);
        let held = self.index.client_load(&spec.client).unfinished;
        let cap = self.policy.unfinished_cap_of(&spec.client);
        if held >= cap {
            self.stats.note_refusal("client_share");
            return Err(SubmitRejected::ClientShareFull {
                client: spec.client,
                held,
                cap,
            });
        }
        let unfinished = self.tasks.len() - self.finished.len();
        if unfinished >= self.policy.queue_capacity {
            self.stats.note_refusal("queue_full");
            return Err(SubmitRejected::QueueFull {
                capacity: self.policy.queue_capacity,
            });
        }

        let id = TaskId(self.next_task);
        self.next_task += 1;
        let mut history = History::default();
        history.push(
            now,
            TaskEvent::Submitted {
                client: spec.client.clone(),
                circuit: spec.circuit.clone(),
                collateral: spec.collateral,
                deadline: spec.deadline,
            },
        );
        // Debug: one line per submission is tens of thousands a second at rack scale; the
        // info line per task is its outcome ("proof verified"; failures warn).
        tracing::debug!(task = %id, circuit = %spec.circuit, collateral = %spec.collateral, client = %spec.client, "task submitted");
        self.requests
            .insert((spec.client.clone(), spec.request_id), id);
        self.tasks.insert(
            id,
            Task {
                id,
                spec,
                key_id: circuit.key_id,
                shape: circuit.shape,
                submitted_at: now,
                state: TaskState::Queued,
                declined_until: BTreeMap::new(),
                failed_on: BTreeSet::new(),
                waiting_reason: "waiting for admission".to_string(),
                history,
                slashes: 0,
            },
        );
        self.dirty.tasks.insert(id);
        self.index.touch(id);
        self.dirty.meta = true;
        self.emit_status(id);
        Ok(id)
    }

    /// Whether `available_ms` is at least [`CoordinatorCore::fastest_possible_ms`], stopping
    /// at the first agent fast enough (the common case asks one agent, not the fleet).
    fn can_finish_within(&self, shape: &ProofShape, available_ms: u64) -> bool {
        let mut any_calibrated = false;
        for r in self.fleet.values().filter(|r| r.connected) {
            if let Some(t) = &r.telemetry {
                any_calibrated = true;
                let proving = shape.estimate_proving_ms(&t.report.calibration);
                if proving.saturating_add(self.policy.deadline_margin_for(proving)) <= available_ms
                {
                    return true;
                }
            }
        }
        !any_calibrated && self.policy.deadline_margin_for(1).saturating_add(1) <= available_ms
    }

    /// The shortest time any proof of `shape` could take, margin included: on the fastest
    /// agent that has reported a calibration, or just the constant margin when none has.
    pub(crate) fn fastest_possible_ms(&self, shape: &ProofShape) -> (u64, Option<AgentId>) {
        let floor = self.policy.deadline_margin_for(1).saturating_add(1);
        self.fleet
            .values()
            .filter(|r| r.connected)
            .filter_map(|r| {
                let proving = shape.estimate_proving_ms(&r.telemetry.as_ref()?.report.calibration);
                Some((
                    proving.saturating_add(self.policy.deadline_margin_for(proving)),
                    r.id.clone(),
                ))
            })
            .min()
            .map_or((floor, None), |(ms, agent)| (ms, Some(agent)))
    }
}
