//! Following the registry's events: which operators changed up to the confirmed block, and
//! their figures at that block.
//!
//! Each poll takes the confirmed block `C = head - confirmations`, checks that the blocks it
//! processed before are still on the chain (their hashes; a reorg is walked back to the last
//! block that still matches), reads the registry's logs after the last processed block up to
//! `C`, and reads the touched operators' figures from the contract's view at `C` (by hash, so
//! every figure comes from the same block). Following figures rather than replaying deltas
//! makes a poll idempotent: a reorg or a restart re-reads the affected operators (all known
//! ones) at the new confirmed block, and the ledger is brought to them.

use super::bindings::StakeRegistry::{self, StakeRegistryEvents, StakeRegistryInstance};
use super::store::Cursor;
use super::ChainError;
use crate::ledger::OutsideStake;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::rpc::types::{BlockId, BlockNumberOrTag};
use alloy::sol_types::SolEventInterface;
use proofrack_common::{OperatorId, StakeUnits};
use std::collections::{BTreeMap, BTreeSet};

/// Most blocks asked for in one `eth_getLogs`: public RPC providers refuse wider ranges.
pub const MAX_LOG_RANGE_BLOCKS: u64 = 2_000;
/// Most operators followed; bounds the figures read after a reorg or restart (each is one
/// view call) and the ledger's size.
pub const MAX_OPERATORS: usize = 4_096;

/// What one poll saw.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The confirmed block read (number, hash); `None` when no block is confirmed yet.
    pub block: Option<(u64, B256)>,
    /// Figures of the operators that changed (all known ones after a reorg or a restart).
    pub stakes: Vec<(OperatorId, OutsideStake)>,
    /// Registrations first seen in this poll.
    pub new_operators: Vec<(Address, OperatorId)>,
    /// Slash ids (of those asked about) applied at `block`.
    pub executed: BTreeSet<B256>,
    /// Blocks undone by a reorg found in this poll.
    pub reorged_blocks: u64,
}

pub(crate) struct Follower {
    registry: StakeRegistryInstance<DynProvider>,
    provider: DynProvider,
    start_block: u64,
    confirmations: u64,
    cursor: Cursor,
    operators: BTreeMap<Address, OperatorId>,
    /// Re-read every known operator at the next poll (after a restart or a reorg).
    reread_all: bool,
}

fn rpc(what: &str) -> impl FnOnce(alloy::transports::TransportError) -> ChainError + '_ {
    move |e| ChainError::Rpc(format!("{what}: {e}"))
}

fn call(what: &str) -> impl FnOnce(alloy::contract::Error) -> ChainError + '_ {
    move |e| ChainError::Rpc(format!("{what}: {e}"))
}

fn units(v: U256, what: &str, operator: &OperatorId) -> Result<StakeUnits, ChainError> {
    u128::try_from(v).map(StakeUnits).map_err(|_| {
        ChainError::Contract(format!(
            "{what} of {operator} is {v}, above u128: the stake token's amounts do not fit the ledger"
        ))
    })
}

impl Follower {
    pub(crate) fn new(
        provider: DynProvider,
        registry: Address,
        start_block: u64,
        confirmations: u64,
        cursor: Cursor,
        operators: Vec<(Address, OperatorId)>,
    ) -> Follower {
        Follower {
            registry: StakeRegistry::new(registry, provider.clone()),
            provider,
            start_block,
            confirmations,
            cursor,
            operators: operators.into_iter().collect(),
            reread_all: true,
        }
    }

    pub(crate) fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn hash_of(&self, number: u64) -> Result<Option<B256>, ChainError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(rpc("eth_getBlockByNumber"))?;
        Ok(block.map(|b| b.header.hash))
    }

    /// Walks back over the processed blocks until one is still on the chain. Returns how
    /// many processed blocks the reorg undid (0: none).
    async fn undo_reorg(&mut self) -> Result<u64, ChainError> {
        let Some((last, _)) = self.cursor.last() else {
            return Ok(0);
        };
        while let Some((number, hash)) = self.cursor.last() {
            if self.hash_of(number).await? == Some(hash) {
                return Ok(last - number);
            }
            self.cursor.recent.pop();
        }
        tracing::error!(
            last,
            "chain reorg deeper than the remembered blocks; rescanning from the start block"
        );
        Ok(last.saturating_sub(self.start_block) + 1)
    }

    /// One poll. `slash_ids`: pending slashes to check at the confirmed block; `also`:
    /// operators to re-read even if no event touched them.
    pub(crate) async fn poll(
        &mut self,
        slash_ids: &[B256],
        also: &BTreeSet<OperatorId>,
    ) -> Result<Observation, ChainError> {
        let mut obs = Observation {
            reorged_blocks: self.undo_reorg().await?,
            ..Observation::default()
        };
        if obs.reorged_blocks > 0 {
            tracing::warn!(
                blocks = obs.reorged_blocks,
                "chain reorg: re-reading every operator at the new confirmed block"
            );
            self.reread_all = true;
        }
        let head = self
            .provider
            .get_block_number()
            .await
            .map_err(rpc("eth_blockNumber"))?;
        let Some(confirmed) = head.checked_sub(self.confirmations) else {
            return Ok(obs);
        };
        if confirmed < self.start_block {
            return Ok(obs);
        }
        let Some(hash) = self.hash_of(confirmed).await? else {
            return Err(ChainError::Rpc(format!(
                "block {confirmed} missing although the head is {head}; the node may be syncing"
            )));
        };
        // A reorg can leave the confirmed block below the last processed one: process again
        // from there, so nothing the undone blocks did is kept.
        if let Some((last, _)) = self.cursor.last() {
            if last > confirmed {
                self.cursor.truncate_after(confirmed.saturating_sub(1));
                self.reread_all = true;
            }
        }
        let from = self.cursor.last().map_or(self.start_block, |(n, _)| n + 1);
        let mut touched: BTreeSet<Address> = BTreeSet::new();
        let mut lo = from;
        while lo <= confirmed {
            let hi = confirmed.min(lo + MAX_LOG_RANGE_BLOCKS - 1);
            let filter = Filter::new()
                .address(*self.registry.address())
                .from_block(lo)
                .to_block(hi);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(rpc("eth_getLogs"))?;
            for log in logs {
                let event = match StakeRegistryEvents::decode_log(&log.inner) {
                    Ok(e) => e.data,
                    Err(e) => {
                        tracing::warn!(error = %e, "registry log not understood; skipped");
                        continue;
                    }
                };
                let operator = match event {
                    StakeRegistryEvents::OperatorRegistered(e) => {
                        self.register(e.operator, &e.name, &mut obs);
                        e.operator
                    }
                    StakeRegistryEvents::Delegated(e) => e.operator,
                    StakeRegistryEvents::WithdrawalQueued(e) => e.operator,
                    StakeRegistryEvents::WithdrawalCompleted(e) => e.operator,
                    StakeRegistryEvents::Slashed(e) => e.operator,
                };
                touched.insert(operator);
            }
            lo = hi + 1;
        }
        let reread: Vec<(Address, OperatorId)> = self
            .operators
            .iter()
            .filter(|(a, id)| self.reread_all || touched.contains(*a) || also.contains(*id))
            .map(|(a, id)| (*a, id.clone()))
            .collect();
        let at = BlockId::hash(hash);
        for (address, operator) in reread {
            let s = self
                .registry
                .operatorStake(address)
                .block(at)
                .call()
                .await
                .map_err(call("StakeRegistry.operatorStake"))?;
            obs.stakes.push((
                operator.clone(),
                OutsideStake {
                    delegated: units(s.delegated, "delegated", &operator)?,
                    withdrawing: units(s.withdrawing, "withdrawing", &operator)?,
                    delegated_ever: units(s.delegatedEver, "delegatedEver", &operator)?,
                    withdrawn: units(s.withdrawn, "withdrawn", &operator)?,
                    slashed: units(s.slashedTotal, "slashedTotal", &operator)?,
                },
            ));
        }
        for id in slash_ids {
            let done = self
                .registry
                .isSlashed(*id)
                .block(at)
                .call()
                .await
                .map_err(call("StakeRegistry.isSlashed"))?;
            if done {
                obs.executed.insert(*id);
            }
        }
        self.cursor.push(confirmed, hash);
        self.reread_all = false;
        obs.block = Some((confirmed, hash));
        Ok(obs)
    }

    fn register(&mut self, address: Address, name: &str, obs: &mut Observation) {
        let id = match OperatorId::new(name) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(%address, name, error = %e, "operator registered on chain with a name the coordinator cannot use; ignored");
                return;
            }
        };
        if self.operators.get(&address) == Some(&id) {
            return;
        }
        if self.operators.len() >= MAX_OPERATORS {
            tracing::error!(%address, operator = %id, max = MAX_OPERATORS, "too many operators on chain; this one is ignored");
            return;
        }
        tracing::info!(%address, operator = %id, "operator registered on chain");
        self.operators.insert(address, id.clone());
        obs.new_operators.push((address, id));
    }
}
