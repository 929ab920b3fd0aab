//! The audit log: every administrator's action (drain, undrain, withdraw, breaker reset,
//! circuit registration and removal), allowed or refused, with who asked, what, how it ended
//! and when. Kept in the core so an action and its line commit in one transaction; at most
//! [`MAX_AUDIT_ENTRIES`] lines, the oldest pruned first.

use super::CoordinatorCore;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{truncate_utf8, AuditOutcome, MAX_TEXT_BYTES};
use proofrack_common::{OperatorId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Audit lines kept; older ones are pruned. Ten thousand lines of at most ~3 KiB (usually
/// ~200 B) is a few MiB in memory and on disk, months of a rack's admin actions, and bounds
/// what a stream of refused attempts can make the coordinator keep.
pub const MAX_AUDIT_ENTRIES: usize = 10_000;

/// One line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: UnixMillis,
    pub who: String,
    pub action: String,
    pub operator: Option<OperatorId>,
    pub outcome: AuditOutcome,
    pub message: String,
}

/// Lines added and pruned since the store last took them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditChanges {
    pub added: Vec<AuditEntry>,
    pub pruned: Vec<u64>,
}

impl AuditChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.pruned.is_empty()
    }
    /// A later change set after this one (adds before prunes when written, so a line added
    /// and pruned in one group commit ends up absent).
    pub fn absorb(&mut self, later: AuditChanges) {
        self.added.extend(later.added);
        self.pruned.extend(later.pruned);
    }
}

/// The kept lines, oldest first.
#[derive(Debug, Default)]
pub(crate) struct AuditLog {
    entries: VecDeque<AuditEntry>,
    next_seq: u64,
    changes: AuditChanges,
}

impl AuditLog {
    pub(crate) fn restore(mut entries: Vec<AuditEntry>) -> AuditLog {
        entries.sort_by_key(|e| e.seq);
        // A store written before a cap was lowered keeps only the newest.
        let excess = entries.len().saturating_sub(MAX_AUDIT_ENTRIES);
        let pruned: Vec<u64> = entries.drain(..excess).map(|e| e.seq).collect();
        let next_seq = entries.last().map_or(1, |e| e.seq + 1);
        AuditLog {
            entries: entries.into(),
            next_seq,
            changes: AuditChanges {
                added: Vec::new(),
                pruned,
            },
        }
    }

    pub(crate) fn take_changes(&mut self) -> AuditChanges {
        std::mem::take(&mut self.changes)
    }

    pub(crate) fn all(&self) -> impl DoubleEndedIterator<Item = &AuditEntry> {
        self.entries.iter()
    }

    fn push(&mut self, mut entry: AuditEntry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        for text in [&mut entry.who, &mut entry.action, &mut entry.message] {
            truncate_utf8(text, MAX_TEXT_BYTES);
        }
        self.changes.added.push(entry.clone());
        self.entries.push_back(entry);
        while self.entries.len() > MAX_AUDIT_ENTRIES {
            let old = self
                .entries
                .pop_front()
                .expect("over the cap, so not empty");
            self.changes.pruned.push(old.seq);
        }
    }
}

impl CoordinatorCore {
    /// Records one administrator's action. Call it in the same event as the action itself,
    /// so both are committed together.
    pub fn record_audit(
        &mut self,
        now: UnixMillis,
        who: &Identity,
        action: String,
        operator: Option<OperatorId>,
        outcome: AuditOutcome,
        message: String,
    ) {
        tracing::info!(%who, %action, outcome = outcome.name(), operator = operator.as_ref().map(|o| o.as_str()), "audit");
        self.audit.push(AuditEntry {
            seq: 0,
            at: now,
            who: who.to_string(),
            action,
            operator,
            outcome,
            message,
        });
    }

    /// The newest `limit` lines older than `before` (all if `None`), of `operator` only if
    /// given, oldest first; and how many lines match the filter in all.
    pub fn audit_lines(
        &self,
        operator: Option<&OperatorId>,
        before: Option<u64>,
        limit: usize,
    ) -> (Vec<AuditEntry>, usize) {
        let matching = |e: &&AuditEntry| operator.is_none_or(|op| e.operator.as_ref() == Some(op));
        let kept = self.audit.all().filter(matching).count();
        let mut lines: Vec<AuditEntry> = self
            .audit
            .all()
            .rev()
            .filter(|e| before.is_none_or(|b| e.seq < b))
            .filter(matching)
            .take(limit)
            .cloned()
            .collect();
        lines.reverse();
        (lines, kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: Option<&str>) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: UnixMillis(5),
            who: "admin/root".into(),
            action: "x".repeat(5_000),
            operator: op.map(|o| OperatorId::new(o).unwrap()),
            outcome: AuditOutcome::Done,
            message: "ok".into(),
        }
    }

    #[test]
    fn the_log_is_capped_pruning_the_oldest_and_texts_are_bounded() {
        let mut log = AuditLog::default();
        log.next_seq = 1;
        for i in 0..MAX_AUDIT_ENTRIES + 3 {
            log.push(entry(if i % 2 == 0 { Some("op-a") } else { None }));
        }
        assert_eq!(log.entries.len(), MAX_AUDIT_ENTRIES);
        assert_eq!(log.entries.front().unwrap().seq, 4, "the three oldest went");
        assert_eq!(log.entries.back().unwrap().action.len(), MAX_TEXT_BYTES);
        let changes = log.take_changes();
        assert_eq!(changes.added.len(), MAX_AUDIT_ENTRIES + 3);
        assert_eq!(changes.pruned, vec![1, 2, 3]);
        assert!(log.take_changes().is_empty());
        // Restored, numbering goes on after the newest line.
        let restored = AuditLog::restore(log.entries.iter().cloned().collect());
        assert_eq!(restored.next_seq, MAX_AUDIT_ENTRIES as u64 + 4);
    }
}
