//! One operator's stake account and the conservation law it obeys.

use proofrack_common::{OperatorId, StakeUnits};
use serde::{Deserialize, Serialize};

/// One operator's stake, in base units. Fields are private so that only the ledger moves stake,
/// and every move is followed by [`Account::assert_invariants`].
///
/// Conservation (checked after every mutation):
/// `delegated_ever = free + active + withdrawing + withdrawn + slashed`, where
/// `free = delegated - active - withdrawing`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Everything ever delegated to this operator; only grows. The left side of conservation.
    pub(super) delegated_ever: StakeUnits,
    /// Stake currently delegated: ever delegated, less what was withdrawn or slashed.
    pub(super) delegated: StakeUnits,
    /// Bound to tasks (sum of this operator's bindings).
    pub(super) active: StakeUnits,
    /// Requested for withdrawal, not yet paid out; neither free nor bindable.
    pub(super) withdrawing: StakeUnits,
    /// Paid out; has left the operator's delegation.
    pub(super) withdrawn: StakeUnits,
    /// Taken as penalties; has left the operator's delegation.
    pub(super) slashed: StakeUnits,
}

impl Account {
    pub fn delegated_ever(&self) -> StakeUnits {
        self.delegated_ever
    }
    pub fn delegated(&self) -> StakeUnits {
        self.delegated
    }
    pub fn active(&self) -> StakeUnits {
        self.active
    }
    pub fn withdrawing(&self) -> StakeUnits {
        self.withdrawing
    }
    pub fn withdrawn(&self) -> StakeUnits {
        self.withdrawn
    }
    pub fn slashed(&self) -> StakeUnits {
        self.slashed
    }

    /// Stake that may be bound or withdrawn: `delegated - active - withdrawing`.
    pub fn free(&self) -> StakeUnits {
        self.delegated
            .checked_sub(self.active)
            .and_then(|rest| rest.checked_sub(self.withdrawing))
            .expect("ledger invariant: active + withdrawing <= delegated")
    }

    /// Panics if this account breaks the ledger's invariants: a broken invariant is a bug in
    /// the ledger, never an operating error.
    pub fn assert_invariants(&self, operator: &OperatorId) {
        if let Err(broken) = self.check_invariants(operator) {
            panic!("{broken}");
        }
    }

    /// The invariants as a check, for state read back from disk: `active <= delegated`,
    /// `active + withdrawing <= delegated`, and conservation.
    pub fn check_invariants(&self, operator: &OperatorId) -> Result<(), String> {
        if self.active > self.delegated {
            return Err(format!(
                "ledger invariant broken for {operator}: active {} > delegated {}",
                self.active, self.delegated
            ));
        }
        let committed = self.active.checked_add(self.withdrawing);
        if committed.is_none_or(|c| c > self.delegated) {
            return Err(format!(
                "ledger invariant broken for {operator}: active {} + withdrawing {} > delegated {}",
                self.active, self.withdrawing, self.delegated
            ));
        }
        let accounted = self
            .delegated
            .checked_add(self.withdrawn)
            .and_then(|s| s.checked_add(self.slashed));
        if accounted != Some(self.delegated_ever) {
            return Err(format!(
                "ledger conservation broken for {operator}: delegated {} + withdrawn {} + slashed {} != ever delegated {}",
                self.delegated, self.withdrawn, self.slashed, self.delegated_ever
            ));
        }
        Ok(())
    }
}

/// A row of the ledger as a query shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub operator: OperatorId,
    pub delegated: StakeUnits,
    pub active: StakeUnits,
    pub withdrawing: StakeUnits,
    pub free: StakeUnits,
    pub withdrawn: StakeUnits,
    pub slashed: StakeUnits,
    /// Number of tasks this operator's stake is bound to.
    pub bound_tasks: usize,
}
