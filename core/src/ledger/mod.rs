//! The stake ledger: a pure state machine over operators' delegated stake, the stake bound to
//! tasks, withdrawals and slashing.
//!
//! Architecture invariant: the ledger does no I/O and does not know where delegations come
//! from (a TOML file today, a chain later: see [`source`]). It cannot fail on the network.
//! After every mutation it asserts, per operator, `active + withdrawing <= delegated` and
//! conservation (`ever delegated = free + active + withdrawing + withdrawn + slashed`), and the
//! same sums globally.

mod account;
mod error;
mod outside;
pub mod source;

#[cfg(test)]
mod proptests;

pub use account::{Account, LedgerRow};
pub use error::{BindRejected, DelegateRejected, UnbindRejected, WithdrawalRejected};
pub use outside::{OutsideStake, OutsideStakeRejected, OutsideSync};

use proofrack_common::{OperatorId, StakeUnits, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Up to this many bindings, release builds check that each operator's active stake is the
/// sum of its bindings after every change (debug builds always do). Past it that walk, linear
/// in the bindings, would cost each accept of a 100,000-task rack a walk over all of them; the
/// coordinator core's amortised full check does it instead.
pub const FULL_CHECK_MAX_BINDINGS: usize = 256;

/// Stake bound to one task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub operator: OperatorId,
    pub amount: StakeUnits,
}

/// What a slash did: `slashed + released = the binding's amount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashOutcome {
    pub operator: OperatorId,
    /// Left the operator's delegation as a penalty.
    pub slashed: StakeUnits,
    /// Returned to the operator's free stake.
    pub released: StakeUnits,
}

/// Global counters kept independently of the accounts, so the global conservation check
/// compares two separately maintained numbers rather than a sum with itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    delegated_ever: StakeUnits,
    withdrawn: StakeUnits,
    slashed: StakeUnits,
}

/// The ledger as it is stored: accounts and global counters. Bindings are not stored with it:
/// they are the bound tasks' collateral, rebuilt from the stored tasks by
/// [`Ledger::restore`], so the two can never disagree on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerState {
    pub accounts: BTreeMap<OperatorId, Account>,
    pub totals: Totals,
}

/// The ledger. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    accounts: BTreeMap<OperatorId, Account>,
    bindings: BTreeMap<TaskId, Binding>,
    /// How many of `bindings` each operator has (operators with none are absent), so that a
    /// ledger read by a client costs the operators, not operators × bindings.
    bound_tasks: BTreeMap<OperatorId, usize>,
    totals: Totals,
    /// Outside figures of operators the ledger could not fully follow yet (stake bound here
    /// that the source no longer has); re-applied as their tasks end (`outside.rs`).
    outside_gaps: BTreeMap<OperatorId, outside::OutsideStake>,
}

fn add(a: StakeUnits, b: StakeUnits, what: &str) -> StakeUnits {
    a.checked_add(b)
        .unwrap_or_else(|| panic!("ledger overflow adding to {what}: {a} + {b}"))
}

fn sub(a: StakeUnits, b: StakeUnits, what: &str) -> StakeUnits {
    a.checked_sub(b)
        .unwrap_or_else(|| panic!("ledger underflow taking from {what}: {a} - {b}"))
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    // ---- getters ----

    pub fn account(&self, operator: &OperatorId) -> Option<&Account> {
        self.accounts.get(operator)
    }

    /// Free stake of `operator`, `None` if the ledger does not know it.
    pub fn free(&self, operator: &OperatorId) -> Option<StakeUnits> {
        self.accounts.get(operator).map(Account::free)
    }

    pub fn binding(&self, task: TaskId) -> Option<&Binding> {
        self.bindings.get(&task)
    }

    pub fn bindings(&self) -> impl Iterator<Item = (TaskId, &Binding)> {
        self.bindings.iter().map(|(t, b)| (*t, b))
    }

    pub fn operators(&self) -> impl Iterator<Item = (&OperatorId, &Account)> {
        self.accounts.iter()
    }

    /// The largest current delegation of any operator (zero with no operators).
    pub fn largest_delegation(&self) -> StakeUnits {
        self.accounts
            .values()
            .map(Account::delegated)
            .max()
            .unwrap_or(StakeUnits::ZERO)
    }

    /// One row per operator, in operator order.
    pub fn rows(&self) -> Vec<LedgerRow> {
        self.accounts
            .iter()
            .map(|(operator, a)| LedgerRow {
                operator: operator.clone(),
                delegated: a.delegated,
                active: a.active,
                withdrawing: a.withdrawing,
                free: a.free(),
                withdrawn: a.withdrawn,
                slashed: a.slashed,
                bound_tasks: self.bound_tasks.get(operator).copied().unwrap_or(0),
            })
            .collect()
    }

    // ---- mutations ----

    /// Makes `operator` known with no stake. Returns whether it was new.
    pub fn add_operator(&mut self, operator: OperatorId) -> bool {
        let added = !self.accounts.contains_key(&operator);
        self.accounts.entry(operator).or_default();
        self.assert_invariants_after_change();
        added
    }

    /// Adds `amount` to `operator`'s delegated stake, creating the operator if new.
    pub fn delegate(
        &mut self,
        operator: &OperatorId,
        amount: StakeUnits,
    ) -> Result<(), DelegateRejected> {
        if amount == StakeUnits::ZERO {
            return Err(DelegateRejected::ZeroAmount {
                operator: operator.clone(),
            });
        }
        let current = self.accounts.get(operator).cloned().unwrap_or_default();
        let overflow = || DelegateRejected::Overflow {
            operator: operator.clone(),
            amount,
            delegated_ever: current.delegated_ever,
        };
        let delegated_ever = current
            .delegated_ever
            .checked_add(amount)
            .ok_or_else(overflow)?;
        let delegated = current.delegated.checked_add(amount).ok_or_else(overflow)?;
        let total_ever = self
            .totals
            .delegated_ever
            .checked_add(amount)
            .ok_or_else(overflow)?;
        let account = self.accounts.entry(operator.clone()).or_default();
        account.delegated_ever = delegated_ever;
        account.delegated = delegated;
        self.totals.delegated_ever = total_ever;
        self.assert_invariants_after_change();
        Ok(())
    }

    /// `operator`'s account for a withdrawal of `amount`: known, and a non-zero amount.
    fn withdrawal_account(
        &mut self,
        operator: &OperatorId,
        amount: StakeUnits,
    ) -> Result<&mut Account, WithdrawalRejected> {
        if amount == StakeUnits::ZERO && self.accounts.contains_key(operator) {
            return Err(WithdrawalRejected::ZeroAmount {
                operator: operator.clone(),
            });
        }
        self.accounts
            .get_mut(operator)
            .ok_or_else(|| WithdrawalRejected::UnknownOperator {
                operator: operator.clone(),
            })
    }

    /// Moves `amount` of `operator`'s free stake to withdrawing.
    pub fn request_withdrawal(
        &mut self,
        operator: &OperatorId,
        amount: StakeUnits,
    ) -> Result<(), WithdrawalRejected> {
        let account = self.withdrawal_account(operator, amount)?;
        let free = account.free();
        if amount > free {
            return Err(WithdrawalRejected::InsufficientFreeStake {
                operator: operator.clone(),
                free,
                requested: amount,
                delegated: account.delegated(),
                active: account.active(),
                withdrawing: account.withdrawing(),
            });
        }
        account.withdrawing = add(account.withdrawing, amount, "withdrawing");
        self.assert_invariants_after_change();
        Ok(())
    }

    /// Pays out `amount` of `operator`'s pending withdrawal: it leaves the delegation.
    pub fn complete_withdrawal(
        &mut self,
        operator: &OperatorId,
        amount: StakeUnits,
    ) -> Result<(), WithdrawalRejected> {
        let account = self.withdrawal_account(operator, amount)?;
        if amount > account.withdrawing {
            return Err(WithdrawalRejected::NotRequested {
                operator: operator.clone(),
                withdrawing: account.withdrawing,
                requested: amount,
            });
        }
        account.withdrawing = sub(account.withdrawing, amount, "withdrawing");
        account.delegated = sub(account.delegated, amount, "delegated");
        account.withdrawn = add(account.withdrawn, amount, "withdrawn");
        self.totals.withdrawn = add(self.totals.withdrawn, amount, "total withdrawn");
        self.assert_invariants_after_change();
        Ok(())
    }

    /// Binds `amount` of `operator`'s free stake to `task`: it becomes active.
    pub fn bind(
        &mut self,
        task: TaskId,
        operator: &OperatorId,
        amount: StakeUnits,
    ) -> Result<(), BindRejected> {
        if let Some(existing) = self.bindings.get(&task) {
            return Err(BindRejected::TaskAlreadyBound {
                task,
                operator: existing.operator.clone(),
            });
        }
        let account =
            self.accounts
                .get_mut(operator)
                .ok_or_else(|| BindRejected::UnknownOperator {
                    operator: operator.clone(),
                })?;
        if amount == StakeUnits::ZERO {
            return Err(BindRejected::ZeroAmount { task });
        }
        let free = account.free();
        if amount > free {
            return Err(BindRejected::InsufficientFreeStake {
                task,
                operator: operator.clone(),
                free,
                needed: amount,
            });
        }
        account.active = add(account.active, amount, "active");
        *self.bound_tasks.entry(operator.clone()).or_default() += 1;
        self.bindings.insert(
            task,
            Binding {
                operator: operator.clone(),
                amount,
            },
        );
        self.assert_invariants_after_change();
        Ok(())
    }

    /// Returns `task`'s whole binding to its operator's free stake.
    pub fn release(&mut self, task: TaskId) -> Result<Binding, UnbindRejected> {
        let binding = self
            .bindings
            .remove(&task)
            .ok_or(UnbindRejected::NotBound { task })?;
        self.forget_bound_task(&binding.operator);
        let account = self
            .accounts
            .get_mut(&binding.operator)
            .expect("ledger invariant: every binding's operator has an account");
        account.active = sub(account.active, binding.amount, "active");
        self.assert_invariants_after_change();
        self.close_outside_gap(&binding.operator, StakeUnits::ZERO);
        Ok(binding)
    }

    /// Takes `bps` basis points (rounded down) of `task`'s binding as a penalty, out of the
    /// operator's delegation, and releases the rest. `bps` above 10 000 is a programmer error
    /// (policies are validated when loaded).
    pub fn slash(&mut self, task: TaskId, bps: u16) -> Result<SlashOutcome, UnbindRejected> {
        assert!(bps <= 10_000, "slash of {bps} basis points; at most 10000");
        let binding = self
            .bindings
            .remove(&task)
            .ok_or(UnbindRejected::NotBound { task })?;
        self.forget_bound_task(&binding.operator);
        let slashed = binding.amount.mul_bps(bps);
        let released = sub(binding.amount, slashed, "binding");
        let account = self
            .accounts
            .get_mut(&binding.operator)
            .expect("ledger invariant: every binding's operator has an account");
        account.active = sub(account.active, binding.amount, "active");
        account.delegated = sub(account.delegated, slashed, "delegated");
        account.slashed = add(account.slashed, slashed, "slashed");
        self.totals.slashed = add(self.totals.slashed, slashed, "total slashed");
        self.assert_invariants_after_change();
        self.close_outside_gap(&binding.operator, slashed);
        Ok(SlashOutcome {
            operator: binding.operator,
            slashed,
            released,
        })
    }

    /// One binding of `operator` is gone.
    fn forget_bound_task(&mut self, operator: &OperatorId) {
        let count = self
            .bound_tasks
            .get_mut(operator)
            .expect("ledger invariant: a bound operator has a bound task count");
        *count -= 1;
        if *count == 0 {
            self.bound_tasks.remove(operator);
        }
    }

    // ---- persistence ----

    /// Accounts and counters, for the durable store.
    pub fn state(&self) -> LedgerState {
        LedgerState {
            accounts: self.accounts.clone(),
            totals: self.totals.clone(),
        }
    }

    /// Rebuilds a ledger read back from disk and checks every invariant, returning the first
    /// broken one instead of panicking: a store that breaks them must be refused, not served.
    pub fn restore(
        state: LedgerState,
        bindings: BTreeMap<TaskId, Binding>,
    ) -> Result<Ledger, String> {
        let mut bound_tasks: BTreeMap<OperatorId, usize> = BTreeMap::new();
        for b in bindings.values() {
            *bound_tasks.entry(b.operator.clone()).or_default() += 1;
        }
        let ledger = Ledger {
            accounts: state.accounts,
            bindings,
            bound_tasks,
            totals: state.totals,
            // Rebuilt by the stake source's first sync after the restart.
            outside_gaps: BTreeMap::new(),
        };
        ledger.check_invariants()?;
        Ok(ledger)
    }

    // ---- invariants ----

    /// Panics if any invariant is broken: per operator (see [`Account::assert_invariants`]),
    /// active equals the sum of its bindings, and the global sums match the global counters.
    pub fn assert_invariants(&self) {
        if let Err(broken) = self.check_invariants() {
            panic!("{broken}");
        }
    }

    /// After each change: every invariant while the bindings are few (and always in debug
    /// builds); past [`FULL_CHECK_MAX_BINDINGS`] all but the walk over every binding, which
    /// the coordinator core's periodic full check ([`Ledger::assert_invariants`]) still does.
    fn assert_invariants_after_change(&self) {
        let walk = cfg!(debug_assertions) || self.bindings.len() <= FULL_CHECK_MAX_BINDINGS;
        if let Err(broken) = self.check_invariants_with(walk) {
            panic!("{broken}");
        }
    }

    /// The invariants of [`Ledger::assert_invariants`] as a check.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_invariants_with(true)
    }

    /// `walk_bindings`: also check that each operator's active stake is the sum of its
    /// bindings (a walk over every binding).
    fn check_invariants_with(&self, walk_bindings: bool) -> Result<(), String> {
        let overflow = |what: &str| format!("ledger invariant: {what} overflows u128");
        let mut bound: BTreeMap<&OperatorId, StakeUnits> = BTreeMap::new();
        let mut counted: BTreeMap<&OperatorId, usize> = BTreeMap::new();
        let bindings = if walk_bindings {
            Some(&self.bindings)
        } else {
            None
        };
        for (task, b) in bindings.into_iter().flatten() {
            if b.amount == StakeUnits::ZERO {
                return Err(format!("ledger invariant: {task} bound with zero stake"));
            }
            if !self.accounts.contains_key(&b.operator) {
                return Err(format!(
                    "ledger invariant: {task} bound to unknown operator {}",
                    b.operator
                ));
            }
            *counted.entry(&b.operator).or_default() += 1;
            let sum = bound.entry(&b.operator).or_default();
            *sum = sum
                .checked_add(b.amount)
                .ok_or_else(|| overflow("bound sum"))?;
        }
        let kept = self.bound_tasks.iter().map(|(operator, n)| (operator, *n));
        if walk_bindings && !kept.eq(counted.iter().map(|(operator, n)| (*operator, *n))) {
            return Err(format!(
                "ledger invariant: bound task counts kept per operator {:?} differ from the \
                 bindings' {counted:?}",
                self.bound_tasks
            ));
        }
        let mut ever = StakeUnits::ZERO;
        let mut withdrawn = StakeUnits::ZERO;
        let mut slashed = StakeUnits::ZERO;
        let mut parts = StakeUnits::ZERO;
        for (operator, a) in &self.accounts {
            a.check_invariants(operator)?;
            let bound_here = bound.get(operator).copied().unwrap_or_default();
            if walk_bindings && a.active != bound_here {
                return Err(format!(
                    "ledger invariant broken for {operator}: active {} != sum of its bindings {}",
                    a.active, bound_here
                ));
            }
            let add = |x: StakeUnits, y: StakeUnits| {
                x.checked_add(y).ok_or_else(|| overflow("a global sum"))
            };
            ever = add(ever, a.delegated_ever)?;
            withdrawn = add(withdrawn, a.withdrawn)?;
            slashed = add(slashed, a.slashed)?;
            for part in [a.free(), a.active, a.withdrawing, a.withdrawn, a.slashed] {
                parts = add(parts, part)?;
            }
        }
        let totals = &self.totals;
        if ever != totals.delegated_ever {
            return Err(format!(
                "global conservation broken: accounts' ever delegated {ever} != counter {}",
                totals.delegated_ever
            ));
        }
        if withdrawn != totals.withdrawn {
            return Err(format!(
                "global conservation broken: accounts' withdrawn {withdrawn} != counter {}",
                totals.withdrawn
            ));
        }
        if slashed != totals.slashed {
            return Err(format!(
                "global conservation broken: accounts' slashed {slashed} != counter {}",
                totals.slashed
            ));
        }
        if parts != ever {
            return Err(format!("global conservation broken: free + active + withdrawing + withdrawn + slashed = {parts} != ever delegated {ever}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> OperatorId {
        OperatorId::new(name).unwrap()
    }

    #[test]
    fn bind_takes_free_stake_and_refuses_over_commitment() {
        let mut l = Ledger::new();
        l.delegate(&op("op-a"), StakeUnits(100)).unwrap();
        l.bind(TaskId(1), &op("op-a"), StakeUnits(40)).unwrap();
        l.bind(TaskId(2), &op("op-a"), StakeUnits(40)).unwrap();
        let err = l.bind(TaskId(3), &op("op-a"), StakeUnits(40)).unwrap_err();
        assert_eq!(
            err,
            BindRejected::InsufficientFreeStake {
                task: TaskId(3),
                operator: op("op-a"),
                free: StakeUnits(20),
                needed: StakeUnits(40)
            }
        );
        assert_eq!(
            err.to_string(),
            "operator op-a has 20 free stake, task-3 needs 40"
        );
        l.release(TaskId(1)).unwrap();
        l.bind(TaskId(3), &op("op-a"), StakeUnits(40)).unwrap();
        assert_eq!(l.account(&op("op-a")).unwrap().active(), StakeUnits(80));
    }

    #[test]
    fn bind_rejects_unknown_operator_duplicate_task_and_zero() {
        let mut l = Ledger::new();
        l.delegate(&op("op-a"), StakeUnits(10)).unwrap();
        assert!(matches!(
            l.bind(TaskId(1), &op("op-z"), StakeUnits(1)),
            Err(BindRejected::UnknownOperator { .. })
        ));
        l.bind(TaskId(1), &op("op-a"), StakeUnits(1)).unwrap();
        assert!(matches!(
            l.bind(TaskId(1), &op("op-a"), StakeUnits(1)),
            Err(BindRejected::TaskAlreadyBound { .. })
        ));
        assert!(matches!(
            l.bind(TaskId(2), &op("op-a"), StakeUnits(0)),
            Err(BindRejected::ZeroAmount { .. })
        ));
    }

    #[test]
    fn slash_takes_bps_out_of_delegation_and_releases_the_rest() {
        let mut l = Ledger::new();
        l.delegate(&op("op-a"), StakeUnits(100)).unwrap();
        l.bind(TaskId(1), &op("op-a"), StakeUnits(40)).unwrap();
        let out = l.slash(TaskId(1), 2_500).unwrap();
        assert_eq!(
            out,
            SlashOutcome {
                operator: op("op-a"),
                slashed: StakeUnits(10),
                released: StakeUnits(30)
            }
        );
        let a = l.account(&op("op-a")).unwrap();
        assert_eq!(
            (a.delegated(), a.active(), a.free(), a.slashed()),
            (
                StakeUnits(90),
                StakeUnits(0),
                StakeUnits(90),
                StakeUnits(10)
            )
        );
        assert_eq!(
            l.slash(TaskId(1), 100),
            Err(UnbindRejected::NotBound { task: TaskId(1) })
        );
    }

    #[test]
    fn withdrawal_only_of_free_stake() {
        let mut l = Ledger::new();
        l.delegate(&op("op-a"), StakeUnits(100)).unwrap();
        l.bind(TaskId(1), &op("op-a"), StakeUnits(70)).unwrap();
        assert!(matches!(
            l.request_withdrawal(&op("op-a"), StakeUnits(31)),
            Err(WithdrawalRejected::InsufficientFreeStake { .. })
        ));
        // The refusal names what is in the way, with the figures.
        let bound = l
            .request_withdrawal(&op("op-a"), StakeUnits(50))
            .unwrap_err()
            .to_string();
        assert_eq!(
            bound,
            "operator op-a cannot withdraw 50 now: it has 30 free stake (100 delegated, 70 bound \
             to tasks, 0 already withdrawing); 20 more becomes free as its tasks finish. Withdraw \
             at most 30 now, or wait for its tasks to end"
        );
        let absent = l
            .request_withdrawal(&op("op-a"), StakeUnits(150))
            .unwrap_err()
            .to_string();
        assert_eq!(
            absent,
            "operator op-a cannot withdraw 150: it has 30 free stake (100 delegated, 70 bound to \
             tasks, 0 already withdrawing), so even with no task running at most 100 can be \
             withdrawn; withdraw at most 30 now"
        );
        l.request_withdrawal(&op("op-a"), StakeUnits(30)).unwrap();
        assert_eq!(l.free(&op("op-a")), Some(StakeUnits(0)));
        assert!(matches!(
            l.complete_withdrawal(&op("op-a"), StakeUnits(31)),
            Err(WithdrawalRejected::NotRequested { .. })
        ));
        l.complete_withdrawal(&op("op-a"), StakeUnits(30)).unwrap();
        let a = l.account(&op("op-a")).unwrap();
        assert_eq!(
            (a.delegated(), a.withdrawn(), a.withdrawing()),
            (StakeUnits(70), StakeUnits(30), StakeUnits(0))
        );
    }

    #[test]
    fn delegation_overflow_is_a_typed_rejection() {
        let mut l = Ledger::new();
        l.delegate(&op("op-a"), StakeUnits(u128::MAX)).unwrap();
        assert!(matches!(
            l.delegate(&op("op-a"), StakeUnits(1)),
            Err(DelegateRejected::Overflow { .. })
        ));
        // a second operator's delegation would overflow the global total
        assert!(matches!(
            l.delegate(&op("op-b"), StakeUnits(1)),
            Err(DelegateRejected::Overflow { .. })
        ));
        assert!(l.account(&op("op-b")).is_none());
    }

    #[test]
    #[should_panic(expected = "ledger invariant broken")]
    fn a_corrupted_account_panics() {
        let mut l = Ledger::new();
        l.delegate(&op("op-a"), StakeUnits(10)).unwrap();
        l.accounts.get_mut(&op("op-a")).unwrap().active = StakeUnits(11);
        l.assert_invariants();
    }
}
