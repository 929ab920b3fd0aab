//! Stake from an outside source that reports absolute figures (the chain), its freshness, and
//! the slashes the core tells the shell about.

use super::effect::{Effect, SlashReason};
use super::CoordinatorCore;
use crate::ledger::{OutsideStake, OutsideStakeRejected, OutsideSync, SlashOutcome};
use proofrack_common::{OperatorId, StakeUnits, TaskId, UnixMillis};

impl CoordinatorCore {
    /// The stake source's current figures for `operator` (see `Ledger::sync_outside`). Less
    /// stake stops new offers at once (free stake falls); tasks already bound go on. More
    /// stake may let waiting tasks run.
    pub fn handle_outside_stake(
        &mut self,
        now: UnixMillis,
        operator: &OperatorId,
        stake: OutsideStake,
    ) -> Result<OutsideSync, OutsideStakeRejected> {
        // Figures first, timeouts after: the caller's figures already account for every slash
        // the shell has seen; a slash due now must come after them, or the figures would undo
        // it in the ledger until the next sync.
        let result = self.ledger_mut().sync_outside(operator, stake);
        self.expire(now);
        if let Ok(sync) = &result {
            if sync.delegated_after != sync.delegated_before {
                tracing::info!(%operator, before = %sync.delegated_before, after = %sync.delegated_after, free = %sync.free_after, "delegated stake changed at the source");
            }
            if sync.shortfall > StakeUnits::ZERO || sync.withdrawing_unmet > StakeUnits::ZERO {
                tracing::warn!(%operator, shortfall = %sync.shortfall, withdrawing_unmet = %sync.withdrawing_unmet, "source has less stake than is bound to tasks; no new offers until they end");
            }
        }
        self.settle(now);
        result
    }

    /// The stake source turned stale (`Some(reason)`: no new offers until it is fresh again)
    /// or fresh (`None`).
    pub fn handle_stake_frozen(&mut self, now: UnixMillis, reason: Option<String>) {
        self.expire(now);
        if self.stake_frozen != reason {
            match &reason {
                Some(r) => tracing::error!(reason = %r, "stake source stale: no new offers"),
                None => tracing::info!("stake source fresh again: offering resumes"),
            }
            self.stake_frozen = reason;
            self.needs_full_pass = true;
        }
        self.settle(now);
    }

    /// Why no new offers are made now, if the stake source is stale.
    pub fn stake_frozen(&self) -> Option<&str> {
        self.stake_frozen.as_deref()
    }

    /// Counts the slash on its task and tells the shell (nothing to send for a zero slash).
    pub(super) fn emit_slash(&mut self, id: TaskId, outcome: &SlashOutcome, reason: SlashReason) {
        let task = self.task_mut(id);
        let attempt = task.slashes;
        task.slashes += 1;
        if outcome.slashed > StakeUnits::ZERO {
            self.emit(Effect::StakeSlashed {
                task: id,
                attempt,
                operator: outcome.operator.clone(),
                amount: outcome.slashed,
                reason,
            });
        }
    }
}
