//! The slash outbox: slashes the core decided, sent as transactions until the chain shows
//! them applied at a confirmed block, each recorded with its transaction hash.
//!
//! Never twice: the contract accepts a slash id once only (`slashIdOf(operator, task,
//! attempt)`), the outbox records the intent before anything is sent and the transaction hash
//! right after, and before any (re)send it asks the contract whether the slash is already
//! applied and the node whether the last transaction is still pending. A transaction that
//! vanished (dropped, or reorged out and not re-included) is sent again; the contract's check
//! makes a duplicate that slips through revert instead of slashing twice.

use super::bindings::{reason_code, StakeRegistry::StakeRegistryInstance};
use super::store::{ChainStore, SlashRecord, SlashState};
use super::ChainError;
use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::BlockId;
use alloy::sol_types::SolValue;
use proofrack_common::{OperatorId, StakeUnits, TaskId};
use std::collections::{BTreeMap, BTreeSet};

/// Settled slashes kept in memory (all stay in the store); bounds the outbox's memory.
pub const MAX_SETTLED_IN_MEMORY: usize = 1_024;

/// `StakeRegistry.slashIdOf(operator, task, attempt)`, computed locally.
pub fn slash_id(operator: Address, task: TaskId, attempt: u32) -> B256 {
    keccak256((operator, task.0, attempt).abi_encode())
}

/// The outbox in memory: every unsettled slash and the latest settled ones. The store is its
/// durable copy; both change together.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    records: BTreeMap<B256, SlashRecord>,
}

impl Outbox {
    pub(crate) fn load(store: &ChainStore) -> Result<Outbox, ChainError> {
        let mut outbox = Outbox::default();
        for r in store.slashes()? {
            if !r.is_settled() {
                outbox.records.insert(r.slash_id, r);
            }
        }
        Ok(outbox)
    }

    /// Records a slash the core decided (as an `Intent`); `false` if this slash id is
    /// already known (here or in the store), in which case nothing changes.
    pub(crate) fn note(&mut self, store: &ChainStore, record: SlashRecord) -> bool {
        let id = record.slash_id;
        if self.records.contains_key(&id) || matches!(store.slash(id), Ok(Some(_))) {
            tracing::info!(task = %record.task, attempt = record.attempt, operator = %record.operator, "slash already in the outbox; not recorded again");
            return false;
        }
        if let Err(e) = store.put_slash(&record) {
            tracing::error!(task = %record.task, error = %e, "slash intent not stored; it is sent from memory but a restart before it lands loses it");
        }
        self.records.insert(id, record);
        true
    }

    pub(crate) fn update(&mut self, store: &ChainStore, record: SlashRecord) {
        if let Err(e) = store.put_slash(&record) {
            tracing::error!(task = %record.task, error = %e, "slash state not stored");
        }
        self.records.insert(record.slash_id, record);
        let settled: Vec<B256> = self
            .records
            .values()
            .filter(|r| r.is_settled())
            .map(|r| r.slash_id)
            .collect();
        if settled.len() > MAX_SETTLED_IN_MEMORY {
            for id in &settled[..settled.len() - MAX_SETTLED_IN_MEMORY] {
                self.records.remove(id);
            }
        }
    }

    pub(crate) fn unsettled(&self) -> Vec<SlashRecord> {
        self.records
            .values()
            .filter(|r| !r.is_settled())
            .cloned()
            .collect()
    }

    /// Per operator, the slashes the ledger has taken that the chain's figures at `block` do
    /// not show yet: neither `executed` there (as read at that block) nor final at or before
    /// it. The chain's figures less these are what the ledger must show.
    pub(crate) fn not_yet_at(
        &self,
        block: u64,
        executed: &BTreeSet<B256>,
    ) -> BTreeMap<OperatorId, StakeUnits> {
        let mut out: BTreeMap<OperatorId, StakeUnits> = BTreeMap::new();
        for r in self.records.values() {
            let landed = executed.contains(&r.slash_id)
                || matches!(r.state, SlashState::Final { block: b, .. } if b <= block);
            if landed || matches!(r.state, SlashState::Refused { .. }) {
                continue;
            }
            let sum = out.entry(r.operator.clone()).or_default();
            *sum = StakeUnits(sum.0.saturating_add(r.amount.0));
        }
        out
    }
}

pub(crate) struct Slasher {
    registry: StakeRegistryInstance<DynProvider>,
    provider: DynProvider,
    confirmations: u64,
}

/// What to do with one unsettled slash after looking at the chain.
enum Next {
    Final(u64),
    Wait,
    Send,
}

impl Slasher {
    pub(crate) fn new(
        registry: StakeRegistryInstance<DynProvider>,
        provider: DynProvider,
        confirmations: u64,
    ) -> Slasher {
        Slasher {
            registry,
            provider,
            confirmations,
        }
    }

    async fn applied_at(&self, id: B256, at: BlockId) -> Result<bool, ChainError> {
        self.registry
            .isSlashed(id)
            .block(at)
            .call()
            .await
            .map_err(|e| ChainError::Rpc(format!("StakeRegistry.isSlashed: {e}")))
    }

    async fn next_step(&self, r: &SlashRecord, confirmed: u64) -> Result<Next, ChainError> {
        if self
            .applied_at(r.slash_id, BlockId::number(confirmed))
            .await?
        {
            return Ok(Next::Final(confirmed));
        }
        if self.applied_at(r.slash_id, BlockId::latest()).await? {
            return Ok(Next::Wait); // applied, waiting for confirmations
        }
        let SlashState::Sent { tx } = r.state else {
            return Ok(Next::Send);
        };
        let known = self
            .provider
            .get_transaction_by_hash(tx)
            .await
            .map_err(|e| ChainError::Rpc(format!("eth_getTransactionByHash: {e}")))?;
        Ok(if known.is_some() {
            Next::Wait
        } else {
            Next::Send
        })
    }

    /// One pass over the unsettled slashes: finalises the applied ones, sends the rest that
    /// have no live transaction. Stops at the first node error (the next pass retries).
    pub(crate) async fn pass(
        &self,
        outbox: &std::sync::Mutex<Outbox>,
        store: &ChainStore,
    ) -> Result<(), ChainError> {
        let work = outbox.lock().expect("outbox poisoned").unsettled();
        if work.is_empty() {
            return Ok(());
        }
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| ChainError::Rpc(format!("eth_blockNumber: {e}")))?;
        let confirmed = head.saturating_sub(self.confirmations);
        for mut r in work {
            match self.next_step(&r, confirmed).await? {
                Next::Wait => continue,
                Next::Final(block) => {
                    tracing::info!(task = %r.task, attempt = r.attempt, operator = %r.operator, tx = ?r.tx(), block, "slash final on chain");
                    r.state = SlashState::Final { tx: r.tx(), block };
                }
                Next::Send => {
                    let call = self.registry.slash(
                        r.operator_address,
                        r.task.0,
                        r.attempt,
                        reason_code(r.reason),
                        U256::from(r.amount.0),
                    );
                    match call.send().await {
                        Ok(pending) => {
                            let tx = *pending.tx_hash();
                            tracing::info!(task = %r.task, attempt = r.attempt, operator = %r.operator, amount = %r.amount, %tx, "slash sent");
                            r.state = SlashState::Sent { tx };
                        }
                        Err(e) => {
                            let text = e.to_string();
                            if text.contains("slash already applied") {
                                continue; // landed meanwhile; the next pass finalises it
                            }
                            if text.contains("StakeRegistry:") {
                                tracing::error!(task = %r.task, operator = %r.operator, error = %text, "the registry refuses this slash; not retried: check the slasher key and the operator's registration");
                                r.state = SlashState::Refused {
                                    tx: r.tx(),
                                    error: text,
                                };
                            } else {
                                return Err(ChainError::Rpc(format!(
                                    "sending the slash of {} for {}: {text}",
                                    r.operator, r.task
                                )));
                            }
                        }
                    }
                }
            }
            outbox.lock().expect("outbox poisoned").update(store, r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::SlashReason;

    fn record(id: u8, operator: &str, amount: u128, state: SlashState) -> SlashRecord {
        SlashRecord {
            slash_id: B256::repeat_byte(id),
            task: TaskId(id as u64),
            attempt: 0,
            operator: OperatorId::new(operator).unwrap(),
            operator_address: Address::repeat_byte(id),
            amount: StakeUnits(amount),
            reason: SlashReason::MissedDueTime,
            state,
        }
    }

    #[test]
    fn pending_amounts_exclude_what_the_block_shows() {
        let mut o = Outbox::default();
        for r in [
            record(1, "op-a", 10, SlashState::Intent),
            record(2, "op-a", 5, SlashState::Sent { tx: B256::ZERO }),
            record(3, "op-a", 7, SlashState::Final { tx: None, block: 9 }),
            record(
                4,
                "op-b",
                3,
                SlashState::Final {
                    tx: None,
                    block: 11,
                },
            ),
            record(
                5,
                "op-b",
                100,
                SlashState::Refused {
                    tx: None,
                    error: "x".into(),
                },
            ),
        ] {
            o.records.insert(r.slash_id, r);
        }
        let executed = BTreeSet::from([B256::repeat_byte(2)]);
        let p = o.not_yet_at(10, &executed);
        assert_eq!(
            p.get(&OperatorId::new("op-a").unwrap()),
            Some(&StakeUnits(10))
        );
        assert_eq!(
            p.get(&OperatorId::new("op-b").unwrap()),
            Some(&StakeUnits(3))
        );
        assert_eq!(o.unsettled().len(), 2);
    }
}
