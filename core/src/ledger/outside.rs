//! Stake changed outside the coordinator (on chain): the ledger follows the source's figures.
//!
//! A chain stake source reports each operator's stake as absolute figures ([`OutsideStake`]),
//! not as deltas, so following them is idempotent: the same figures twice change nothing, and
//! after a reorg or a restart the ledger is simply brought to the figures at the new block.
//!
//! Stake bound to tasks never moves here. When the source says an operator has less than its
//! active stake (a slash from elsewhere, or withdrawals paid out while tasks were bound), the
//! ledger keeps `delegated = active` and reports the difference as `shortfall`; withdrawals
//! queued on chain beyond `delegated - active` are reported as `withdrawing_unmet`. In both
//! cases the operator's free stake is zero, so it gets no new offers, while its bound tasks go
//! on. Calling [`Ledger::sync_outside`] again with the same figures after those tasks end (the
//! chain follower does on every poll) closes the gap.

use super::{Ledger, Totals};
use proofrack_common::{OperatorId, StakeUnits};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An operator's stake as the outside source counts it. Conservation holds on the source
/// too: `delegated_ever = delegated + withdrawn + slashed`, and `withdrawing <= delegated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideStake {
    /// Delegated and not paid out, including stake queued for withdrawal.
    pub delegated: StakeUnits,
    /// Queued for withdrawal, not yet paid out.
    pub withdrawing: StakeUnits,
    pub delegated_ever: StakeUnits,
    pub withdrawn: StakeUnits,
    pub slashed: StakeUnits,
}

impl OutsideStake {
    /// These figures after a slash of `amount` the source does not show yet, taken as the
    /// StakeRegistry takes it: from stake not queued for withdrawal first, then from queued
    /// stake, never more than there is. Conservation is kept.
    pub fn less_slash(self, amount: StakeUnits) -> OutsideStake {
        let active = self.delegated.saturating_sub(self.withdrawing);
        let from_active = amount.min(active);
        let from_queued = amount.saturating_sub(from_active).min(self.withdrawing);
        let taken = StakeUnits(from_active.0 + from_queued.0);
        OutsideStake {
            delegated: self.delegated.saturating_sub(taken),
            withdrawing: self.withdrawing.saturating_sub(from_queued),
            slashed: StakeUnits(self.slashed.0.saturating_add(taken.0)),
            ..self
        }
    }
}

/// What following the source did to one operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideSync {
    pub delegated_before: StakeUnits,
    pub delegated_after: StakeUnits,
    pub free_after: StakeUnits,
    /// The source has this much less than the operator's active stake; kept in the ledger
    /// until the bound tasks end.
    pub shortfall: StakeUnits,
    /// Queued for withdrawal on the source but still bound to tasks here.
    pub withdrawing_unmet: StakeUnits,
}

/// Figures from the source that cannot be right.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum OutsideStakeRejected {
    #[error(
        "stake source reports {operator} with delegated {} + withdrawn {} + slashed {} != ever \
         delegated {}: the source's figures are inconsistent; check the contract and the RPC node",
        .stake.delegated, .stake.withdrawn, .stake.slashed, .stake.delegated_ever
    )]
    NotConserved {
        operator: OperatorId,
        stake: OutsideStake,
    },
    #[error(
        "stake source reports {operator} withdrawing {} of only {} delegated: the source's \
         figures are inconsistent; check the contract and the RPC node",
        .stake.withdrawing, .stake.delegated
    )]
    WithdrawingAboveDelegated {
        operator: OperatorId,
        stake: OutsideStake,
    },
    #[error("stake source figures for {operator} overflow the ledger's totals: amounts are u128 base units")]
    Overflow { operator: OperatorId },
}

/// `total - old + new`, or `None` on overflow. `old` is part of `total`, so the subtraction
/// cannot underflow unless the ledger is already broken (which panics).
fn replace(total: StakeUnits, old: StakeUnits, new: StakeUnits) -> Option<StakeUnits> {
    total
        .checked_sub(old)
        .expect("ledger invariant: a global total includes each account's part")
        .checked_add(new)
}

impl Ledger {
    /// Brings `operator`'s account to the source's figures `stake` (see the module docs),
    /// creating the operator if new. Bound stake never moves.
    pub fn sync_outside(
        &mut self,
        operator: &OperatorId,
        stake: OutsideStake,
    ) -> Result<OutsideSync, OutsideStakeRejected> {
        let conserved = stake
            .delegated
            .checked_add(stake.withdrawn)
            .and_then(|s| s.checked_add(stake.slashed));
        if conserved != Some(stake.delegated_ever) {
            return Err(OutsideStakeRejected::NotConserved {
                operator: operator.clone(),
                stake,
            });
        }
        if stake.withdrawing > stake.delegated {
            return Err(OutsideStakeRejected::WithdrawingAboveDelegated {
                operator: operator.clone(),
                stake,
            });
        }
        let old = self.accounts.get(operator).cloned().unwrap_or_default();
        let overflow = || OutsideStakeRejected::Overflow {
            operator: operator.clone(),
        };
        let delegated = stake.delegated.max(old.active);
        let shortfall = delegated.checked_sub(stake.delegated).expect("max");
        let room = delegated.checked_sub(old.active).expect("max");
        let withdrawing = stake.withdrawing.min(room);
        let withdrawing_unmet = stake.withdrawing.checked_sub(withdrawing).expect("min");
        let delegated_ever = stake
            .delegated_ever
            .checked_add(shortfall)
            .ok_or_else(overflow)?;
        let totals = Totals {
            delegated_ever: replace(
                self.totals.delegated_ever,
                old.delegated_ever,
                delegated_ever,
            )
            .ok_or_else(overflow)?,
            withdrawn: replace(self.totals.withdrawn, old.withdrawn, stake.withdrawn)
                .ok_or_else(overflow)?,
            slashed: replace(self.totals.slashed, old.slashed, stake.slashed)
                .ok_or_else(overflow)?,
        };
        if shortfall > StakeUnits::ZERO || withdrawing_unmet > StakeUnits::ZERO {
            self.outside_gaps.insert(operator.clone(), stake);
        } else {
            self.outside_gaps.remove(operator);
        }
        let account = self.accounts.entry(operator.clone()).or_default();
        account.delegated_ever = delegated_ever;
        account.delegated = delegated;
        account.withdrawing = withdrawing;
        account.withdrawn = stake.withdrawn;
        account.slashed = stake.slashed;
        let free_after = account.free();
        self.totals = totals;
        self.assert_invariants();
        Ok(OutsideSync {
            delegated_before: old.delegated,
            delegated_after: delegated,
            free_after,
            shortfall,
            withdrawing_unmet,
        })
    }
}

impl Ledger {
    /// After `operator`'s stake was released or slashed (`own_slash`): if the source had
    /// less than was bound, follow its figures as far as the released stake now allows, so
    /// stake the source no longer has never becomes free here.
    pub(super) fn close_outside_gap(&mut self, operator: &OperatorId, own_slash: StakeUnits) {
        if let Some(stake) = self.outside_gaps.get(operator).copied() {
            self.sync_outside(operator, stake.less_slash(own_slash))
                .expect("outside figures accepted before stay consistent after a slash");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_common::TaskId;

    fn op(name: &str) -> OperatorId {
        OperatorId::new(name).unwrap()
    }

    fn stake(delegated: u128, withdrawing: u128, withdrawn: u128, slashed: u128) -> OutsideStake {
        OutsideStake {
            delegated: StakeUnits(delegated),
            withdrawing: StakeUnits(withdrawing),
            delegated_ever: StakeUnits(delegated + withdrawn + slashed),
            withdrawn: StakeUnits(withdrawn),
            slashed: StakeUnits(slashed),
        }
    }

    #[test]
    fn follows_the_source_and_is_idempotent() {
        let mut l = Ledger::new();
        let s = stake(100, 30, 5, 2);
        let out = l.sync_outside(&op("op-a"), s).unwrap();
        assert_eq!(out.delegated_after, StakeUnits(100));
        assert_eq!(out.free_after, StakeUnits(70));
        assert_eq!(
            l.sync_outside(&op("op-a"), s).unwrap().delegated_before,
            StakeUnits(100)
        );
        let a = l.account(&op("op-a")).unwrap();
        assert_eq!(
            (
                a.delegated(),
                a.withdrawing(),
                a.withdrawn(),
                a.slashed(),
                a.delegated_ever()
            ),
            (
                StakeUnits(100),
                StakeUnits(30),
                StakeUnits(5),
                StakeUnits(2),
                StakeUnits(107)
            )
        );
        // a reorg that removes a delegation lowers every figure again
        l.sync_outside(&op("op-a"), stake(40, 0, 0, 0)).unwrap();
        assert_eq!(
            l.account(&op("op-a")).unwrap().delegated_ever(),
            StakeUnits(40)
        );
    }

    #[test]
    fn bound_stake_stays_and_the_gap_closes_when_tasks_end() {
        let mut l = Ledger::new();
        l.sync_outside(&op("op-a"), stake(100, 0, 0, 0)).unwrap();
        l.bind(TaskId(1), &op("op-a"), StakeUnits(60)).unwrap();
        // 80 slashed elsewhere: only 20 left on the source, 60 bound here
        let out = l.sync_outside(&op("op-a"), stake(20, 0, 0, 80)).unwrap();
        assert_eq!(out.shortfall, StakeUnits(40));
        assert_eq!(
            (out.delegated_after, out.free_after),
            (StakeUnits(60), StakeUnits(0))
        );
        // all 20 queued for withdrawal: none of it is free here
        let out = l.sync_outside(&op("op-a"), stake(20, 20, 0, 80)).unwrap();
        assert_eq!(
            (out.shortfall, out.withdrawing_unmet),
            (StakeUnits(40), StakeUnits(20))
        );
        // The release closes the gap at once: none of the bound stake becomes free.
        l.release(TaskId(1)).unwrap();
        let a = l.account(&op("op-a")).unwrap();
        assert_eq!(
            (a.delegated(), a.withdrawing(), a.free()),
            (StakeUnits(20), StakeUnits(20), StakeUnits(0))
        );
        let out = l.sync_outside(&op("op-a"), stake(20, 20, 0, 80)).unwrap();
        assert_eq!(
            (out.shortfall, out.withdrawing_unmet),
            (StakeUnits(0), StakeUnits(0))
        );
        let a = l.account(&op("op-a")).unwrap();
        assert_eq!(
            (a.delegated(), a.withdrawing(), a.free()),
            (StakeUnits(20), StakeUnits(20), StakeUnits(0))
        );
    }

    #[test]
    fn a_slash_of_bound_stake_during_a_gap_is_kept() {
        let mut l = Ledger::new();
        l.sync_outside(&op("op-a"), stake(100, 0, 0, 0)).unwrap();
        l.bind(TaskId(1), &op("op-a"), StakeUnits(60)).unwrap();
        l.sync_outside(&op("op-a"), stake(20, 0, 0, 80)).unwrap();
        let out = l.slash(TaskId(1), 5_000).unwrap();
        assert_eq!(out.slashed, StakeUnits(30));
        // the source's 20 less our 30 not yet on chain: nothing left, 110 slashed in all
        let a = l.account(&op("op-a")).unwrap();
        assert_eq!(
            (a.delegated(), a.slashed(), a.free()),
            (StakeUnits(0), StakeUnits(100), StakeUnits(0))
        );
    }

    #[test]
    fn own_slashes_come_off_active_first_then_queued() {
        let chain = stake(100, 30, 10, 0);
        let s = chain.less_slash(StakeUnits(20));
        assert_eq!(
            (s.delegated, s.withdrawing, s.slashed),
            (StakeUnits(80), StakeUnits(30), StakeUnits(20))
        );
        let s = chain.less_slash(StakeUnits(80));
        assert_eq!(
            (s.delegated, s.withdrawing, s.slashed),
            (StakeUnits(20), StakeUnits(20), StakeUnits(80))
        );
        let s = chain.less_slash(StakeUnits(500));
        assert_eq!(
            (s.delegated, s.withdrawing, s.slashed),
            (StakeUnits(0), StakeUnits(0), StakeUnits(100))
        );
        assert_eq!(s.delegated_ever, chain.delegated_ever);
    }

    #[test]
    fn inconsistent_figures_are_refused_without_change() {
        let mut l = Ledger::new();
        l.sync_outside(&op("op-a"), stake(10, 0, 0, 0)).unwrap();
        let mut bad = stake(100, 0, 0, 0);
        bad.delegated_ever = StakeUnits(99);
        assert!(matches!(
            l.sync_outside(&op("op-a"), bad),
            Err(OutsideStakeRejected::NotConserved { .. })
        ));
        assert!(matches!(
            l.sync_outside(&op("op-a"), stake(10, 11, 0, 0)),
            Err(OutsideStakeRejected::WithdrawingAboveDelegated { .. })
        ));
        assert_eq!(l.account(&op("op-a")).unwrap().delegated(), StakeUnits(10));
    }
}
