//! What the shell keeps about trust, beside the core: the stake authority the authorization
//! table needs (chain mode refuses withdrawals), counters of refusals and of duplicate agent
//! processes for `/metrics`, and each agent control link's last sign of life (the holder of
//! a live session keeps it; see `agent_session.rs`).

use crate::tasks::authz::StakeAuthority;
use proofrack_common::OperatorId;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Default)]
pub struct TrustState {
    /// Set once a chain stake source is attached: its registry's address.
    chain_registry: OnceLock<String>,
    /// Refusals by the authorization table, by action name.
    refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// Connections held off because another process held the agent's session, by operator.
    duplicates: Mutex<BTreeMap<OperatorId, u64>>,
}

impl TrustState {
    pub fn stake_authority(&self) -> StakeAuthority {
        match self.chain_registry.get() {
            Some(registry) => StakeAuthority::Chain {
                registry: registry.clone(),
            },
            None => StakeAuthority::Coordinator,
        }
    }

    /// Chain mode: the contract at `registry` handles withdrawals. Once per process.
    pub fn set_chain_registry(&self, registry: String) -> bool {
        self.chain_registry.set(registry).is_ok()
    }

    pub fn count_refusal(&self, action: &'static str) {
        *self
            .refusals
            .lock()
            .expect("refusal counters poisoned")
            .entry(action)
            .or_default() += 1;
    }

    pub fn refusals(&self) -> BTreeMap<&'static str, u64> {
        self.refusals
            .lock()
            .expect("refusal counters poisoned")
            .clone()
    }

    pub fn count_duplicate(&self, operator: &OperatorId) {
        *self
            .duplicates
            .lock()
            .expect("duplicate counters poisoned")
            .entry(operator.clone())
            .or_default() += 1;
    }

    pub fn duplicates(&self) -> BTreeMap<OperatorId, u64> {
        self.duplicates
            .lock()
            .expect("duplicate counters poisoned")
            .clone()
    }
}
