//! The boundary between the ledger and wherever delegations come from.
//!
//! The ledger never asks a source for anything: the shell drains a [`StakeSource`] and feeds
//! each [`StakeEvent`] to the core (`CoordinatorCore::handle_stake_event`). Today the only
//! source is the operator list in `coordinator.toml` ([`StaticStakeSource`]); a chain-backed
//! source (contract events read by an RPC client in the shell) implements the same trait later
//! without the ledger changing.

use proofrack_common::{OperatorId, StakeUnits};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A change of an operator's delegation, as reported by a stake source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StakeEvent {
    /// The operator is known (possibly with no stake yet).
    OperatorRegistered { operator: OperatorId },
    /// Stake delegated to the operator.
    Delegated {
        operator: OperatorId,
        amount: StakeUnits,
    },
    /// The operator asked to withdraw free stake.
    WithdrawalRequested {
        operator: OperatorId,
        amount: StakeUnits,
    },
    /// A requested withdrawal was paid out.
    WithdrawalCompleted {
        operator: OperatorId,
        amount: StakeUnits,
    },
}

/// Something that reports delegation changes. Sources do their I/O elsewhere (the shell);
/// `drain` only hands over what has already arrived, so the core never blocks on it.
pub trait StakeSource {
    /// Events that arrived since the last call, oldest first.
    fn drain(&mut self) -> Vec<StakeEvent>;
}

/// A fixed list of delegations, e.g. from `coordinator.toml`: reported once, on the first
/// drain.
#[derive(Clone, Debug, Default)]
pub struct StaticStakeSource {
    pending: VecDeque<StakeEvent>,
}

impl StaticStakeSource {
    /// Every operator is registered, then each positive delegation is reported.
    pub fn new(delegations: impl IntoIterator<Item = (OperatorId, StakeUnits)>) -> Self {
        let mut pending = VecDeque::new();
        for (operator, amount) in delegations {
            pending.push_back(StakeEvent::OperatorRegistered {
                operator: operator.clone(),
            });
            if amount > StakeUnits::ZERO {
                pending.push_back(StakeEvent::Delegated { operator, amount });
            }
        }
        StaticStakeSource { pending }
    }
}

impl StakeSource for StaticStakeSource {
    fn drain(&mut self) -> Vec<StakeEvent> {
        self.pending.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_source_reports_once_and_skips_zero_delegations() {
        let a = OperatorId::new("op-a").unwrap();
        let b = OperatorId::new("op-b").unwrap();
        let mut s =
            StaticStakeSource::new([(a.clone(), StakeUnits(100)), (b.clone(), StakeUnits(0))]);
        assert_eq!(
            s.drain(),
            vec![
                StakeEvent::OperatorRegistered {
                    operator: a.clone()
                },
                StakeEvent::Delegated {
                    operator: a,
                    amount: StakeUnits(100)
                },
                StakeEvent::OperatorRegistered { operator: b },
            ]
        );
        assert!(s.drain().is_empty());
    }
}

/// The stake events that bring a (possibly restored) ledger in line with the operator list of
/// `coordinator.toml`, where each `delegated` is the total the operator was ever given. New
/// operators are registered and delegated to; a raised amount delegates the difference; a
/// lowered one cannot take stake back (a warning says to withdraw instead).
pub fn reconcile_static_stake(
    ledger: &super::Ledger,
    delegations: &[(OperatorId, StakeUnits)],
) -> Vec<StakeEvent> {
    let mut fresh = Vec::new();
    let mut events = Vec::new();
    for (operator, amount) in delegations {
        match ledger.account(operator) {
            None => fresh.push((operator.clone(), *amount)),
            Some(account) if *amount > account.delegated_ever() => {
                let more = amount
                    .checked_sub(account.delegated_ever())
                    .expect("checked greater");
                tracing::info!(%operator, %more, "configured delegation raised");
                events.push(StakeEvent::Delegated {
                    operator: operator.clone(),
                    amount: more,
                });
            }
            Some(account) if *amount < account.delegated_ever() => {
                tracing::warn!(%operator, configured = %amount, ever_delegated = %account.delegated_ever(), "configured delegation is below what was already delegated; stake cannot be taken back through the config: use `proofrack operator withdraw`");
            }
            Some(_) => {}
        }
    }
    let mut source = StaticStakeSource::new(fresh);
    let mut out = source.drain();
    out.extend(events);
    out
}
