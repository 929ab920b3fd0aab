//! Table layout. Keys are task ids or fixed names; values are postcard.

use super::{ExtraWrite, LoadedState, StoreError};
use crate::admission::AgentId;
use crate::tasks::{Changes, CommandKey, DurableState, MetaState, StoredCommand, TaskRow};
use proofrack_common::protocol::FieldBytes;
use proofrack_common::TaskId;
use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

const TASKS: TableDefinition<u64, &[u8]> = TableDefinition::new("tasks");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const PROOFS: TableDefinition<u64, &[u8]> = TableDefinition::new("proofs");
const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// Known agents (their circuit breakers), keyed by `OPERATOR/NAME`.
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
/// The audit log, keyed by line number.
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Remembered operator-command replies: postcard of (client, request id) → postcard of the
/// reply and when it was given. One row each, so remembering one writes one row.
const COMMANDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("commands");

const KEY_LEDGER: &str = "ledger";
const KEY_META: &str = "meta";
const KEY_FORMAT: &str = "format";
/// Bumped when a stored type changes incompatibly; an older binary refuses a newer store.
const FORMAT_VERSION: u32 = 1;

/// A verified proof as kept for clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProof {
    pub proof: Vec<u8>,
    pub public_inputs: Vec<FieldBytes>,
}

/// A delivered proof not yet judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDelivery {
    pub proof: Vec<u8>,
    pub public_inputs: Vec<FieldBytes>,
    pub proving_ms: u64,
}

fn w(e: impl std::fmt::Display) -> StoreError {
    StoreError::Write(e.to_string())
}

fn c(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(super) fn create(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(w)?;
    {
        txn.open_table(TASKS).map_err(w)?;
        txn.open_table(PROOFS).map_err(w)?;
        txn.open_table(DELIVERIES).map_err(w)?;
        // Created here for stores written before these tables existed, too.
        txn.open_table(AGENTS).map_err(w)?;
        txn.open_table(AUDIT).map_err(w)?;
        txn.open_table(COMMANDS).map_err(w)?;
        let mut state = txn.open_table(STATE).map_err(w)?;
        let stored = state
            .get(KEY_FORMAT)
            .map_err(c)?
            .map(|v| postcard::from_bytes::<u32>(v.value()))
            .transpose()
            .map_err(c)?;
        match stored {
            Some(v) if v != FORMAT_VERSION => {
                return Err(StoreError::Corrupt(format!(
                    "store format {v}, this build reads format {FORMAT_VERSION}"
                )))
            }
            Some(_) => {}
            None => {
                let bytes = postcard::to_allocvec(&FORMAT_VERSION).map_err(w)?;
                state.insert(KEY_FORMAT, bytes.as_slice()).map_err(w)?;
            }
        }
    }
    txn.commit().map_err(w)
}

pub(super) fn load(txn: &ReadTransaction) -> Result<LoadedState, StoreError> {
    let state = txn.open_table(STATE).map_err(c)?;
    let ledger = state.get(KEY_LEDGER).map_err(c)?;
    let meta = state.get(KEY_META).map_err(c)?;
    let mut out = LoadedState::default();
    if let (Some(ledger), Some(meta)) = (ledger, meta) {
        let ledger = postcard::from_bytes(ledger.value())
            .map_err(|e| StoreError::Corrupt(format!("ledger row: {e}")))?;
        let meta: MetaState = postcard::from_bytes(meta.value())
            .map_err(|e| StoreError::Corrupt(format!("meta row: {e}")))?;
        let tasks_table = txn.open_table(TASKS).map_err(c)?;
        let mut tasks = Vec::new();
        for row in tasks_table.iter().map_err(c)? {
            let (_, v) = row.map_err(c)?;
            tasks.push(TaskRow(v.value().to_vec()));
        }
        let mut agents = Vec::new();
        for row in txn.open_table(AGENTS).map_err(c)?.iter().map_err(c)? {
            let (k, v) = row.map_err(c)?;
            let agent: AgentId = k
                .value()
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("agent row {:?}: {e}", k.value())))?;
            let facts = postcard::from_bytes(v.value())
                .map_err(|e| StoreError::Corrupt(format!("agent row {agent}: {e}")))?;
            agents.push((agent, facts));
        }
        let mut audit = Vec::new();
        for row in txn.open_table(AUDIT).map_err(c)?.iter().map_err(c)? {
            let (k, v) = row.map_err(c)?;
            let entry = postcard::from_bytes(v.value())
                .map_err(|e| StoreError::Corrupt(format!("audit line {}: {e}", k.value())))?;
            audit.push(entry);
        }
        let commands_table = txn.open_table(COMMANDS).map_err(c)?;
        let mut commands = Vec::new();
        for row in commands_table.iter().map_err(c)? {
            let (k, v) = row.map_err(c)?;
            let key: CommandKey = postcard::from_bytes(k.value())
                .map_err(|e| StoreError::Corrupt(format!("command row key: {e}")))?;
            let stored: StoredCommand = postcard::from_bytes(v.value())
                .map_err(|e| StoreError::Corrupt(format!("command row of {key:?}: {e}")))?;
            commands.push((key, stored));
        }
        out.core = Some(DurableState {
            tasks,
            ledger,
            meta,
            agents,
            audit,
            commands,
        });
    }
    let proofs = txn.open_table(PROOFS).map_err(c)?;
    for row in proofs.iter().map_err(c)? {
        let (k, v) = row.map_err(c)?;
        let p = postcard::from_bytes(v.value())
            .map_err(|e| StoreError::Corrupt(format!("proof of task-{}: {e}", k.value())))?;
        out.proofs.insert(TaskId(k.value()), p);
    }
    let deliveries = txn.open_table(DELIVERIES).map_err(c)?;
    for row in deliveries.iter().map_err(c)? {
        let (k, v) = row.map_err(c)?;
        let d = postcard::from_bytes(v.value())
            .map_err(|e| StoreError::Corrupt(format!("delivery of task-{}: {e}", k.value())))?;
        out.deliveries.insert(TaskId(k.value()), d);
    }
    Ok(out)
}

pub(super) fn apply(
    txn: &WriteTransaction,
    changes: &Changes,
    extra: &[ExtraWrite],
) -> Result<(), StoreError> {
    let mut tasks = txn.open_table(TASKS).map_err(w)?;
    let mut proofs = txn.open_table(PROOFS).map_err(w)?;
    let mut deliveries = txn.open_table(DELIVERIES).map_err(w)?;
    let mut state = txn.open_table(STATE).map_err(w)?;
    for x in extra {
        match x {
            ExtraWrite::Proof(task, p) => {
                let bytes = postcard::to_allocvec(p).map_err(w)?;
                proofs.insert(task.0, bytes.as_slice()).map_err(w)?;
            }
            ExtraWrite::Delivery(task, d) => {
                let bytes = postcard::to_allocvec(d).map_err(w)?;
                deliveries.insert(task.0, bytes.as_slice()).map_err(w)?;
            }
            ExtraWrite::DeliveryDone(task) => {
                deliveries.remove(task.0).map_err(w)?;
            }
        }
    }
    for (id, row) in &changes.tasks {
        match row {
            Some(row) => {
                tasks.insert(id.0, row.0.as_slice()).map_err(w)?;
            }
            None => {
                tasks.remove(id.0).map_err(w)?;
                proofs.remove(id.0).map_err(w)?;
                deliveries.remove(id.0).map_err(w)?;
            }
        }
    }
    if let Some(ledger) = &changes.ledger {
        let bytes = postcard::to_allocvec(ledger).map_err(w)?;
        state.insert(KEY_LEDGER, bytes.as_slice()).map_err(w)?;
    }
    if let Some(meta) = &changes.meta {
        let bytes = postcard::to_allocvec(meta).map_err(w)?;
        state.insert(KEY_META, bytes.as_slice()).map_err(w)?;
    }
    let mut agents = txn.open_table(AGENTS).map_err(w)?;
    for (agent, row) in &changes.agents {
        let key = agent.to_string();
        match row {
            Some(facts) => {
                let bytes = postcard::to_allocvec(facts).map_err(w)?;
                agents.insert(key.as_str(), bytes.as_slice()).map_err(w)?;
            }
            None => {
                agents.remove(key.as_str()).map_err(w)?;
            }
        }
    }
    let mut audit = txn.open_table(AUDIT).map_err(w)?;
    // Added before pruned: a line added and pruned within one group commit ends up absent.
    for entry in &changes.audit.added {
        let bytes = postcard::to_allocvec(entry).map_err(w)?;
        audit.insert(entry.seq, bytes.as_slice()).map_err(w)?;
    }
    for seq in &changes.audit.pruned {
        audit.remove(*seq).map_err(w)?;
    }
    if !changes.commands.is_empty() {
        let mut commands = txn.open_table(COMMANDS).map_err(w)?;
        for (key, row) in &changes.commands {
            let key = postcard::to_allocvec(key).map_err(w)?;
            match row {
                Some(stored) => {
                    let bytes = postcard::to_allocvec(stored).map_err(w)?;
                    commands
                        .insert(key.as_slice(), bytes.as_slice())
                        .map_err(w)?;
                }
                None => {
                    commands.remove(key.as_slice()).map_err(w)?;
                }
            }
        }
    }
    Ok(())
}
