//! Replies to operator commands, remembered by (client, request id) so that a retry after a
//! lost reply gets the first answer and changes nothing twice.
//!
//! Bounded twice: at most [`MAX_ADMIN_REQUESTS`] replies (the oldest forgotten first), and
//! none older than `policy.request_retention_ms` (forgotten by the timer). Each reply is its
//! own row in the store, so remembering one writes one row, whatever the log holds.

use super::admin::{AdminReply, MAX_ADMIN_REQUESTS};
use proofrack_common::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Who asked, and their request id.
pub type CommandKey = (String, u64);

/// A remembered reply and when it was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCommand {
    pub reply: AdminReply,
    pub at: UnixMillis,
}

/// The remembered replies. Keys whose rows changed are reported to `changed` by every
/// mutator, for the durable store.
#[derive(Debug, Default)]
pub(crate) struct CommandLog {
    replies: BTreeMap<CommandKey, StoredCommand>,
    /// (answered at, key), oldest first.
    by_age: BTreeSet<(UnixMillis, CommandKey)>,
}

impl CommandLog {
    pub(crate) fn get(&self, client: &str, request_id: u64) -> Option<&AdminReply> {
        // A borrowed (String, u64) key needs an owned String; commands are rare.
        self.replies
            .get(&(client.to_string(), request_id))
            .map(|s| &s.reply)
    }

    pub(crate) fn stored(&self, key: &CommandKey) -> Option<&StoredCommand> {
        self.replies.get(key)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.replies.len()
    }

    /// Every reply, oldest first.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&CommandKey, &StoredCommand)> + '_ {
        self.by_age
            .iter()
            .map(|(_, k)| (k, self.replies.get(k).expect("aged key is stored")))
    }

    /// Remembers `reply` at `at`; forgets the oldest past [`MAX_ADMIN_REQUESTS`].
    pub(crate) fn remember(
        &mut self,
        key: CommandKey,
        reply: AdminReply,
        at: UnixMillis,
        changed: &mut BTreeSet<CommandKey>,
    ) {
        self.insert(key.clone(), StoredCommand { reply, at });
        changed.insert(key);
        self.trim(changed);
    }

    /// Restores a stored reply as it was (no change to store).
    pub(crate) fn insert(&mut self, key: CommandKey, stored: StoredCommand) {
        if let Some(old) = self.replies.remove(&key) {
            self.by_age.remove(&(old.at, key.clone()));
        }
        self.by_age.insert((stored.at, key.clone()));
        self.replies.insert(key, stored);
    }

    fn forget_oldest(&mut self, changed: &mut BTreeSet<CommandKey>) {
        if let Some((_, key)) = self.by_age.pop_first() {
            self.replies.remove(&key);
            changed.insert(key);
        }
    }

    fn trim(&mut self, changed: &mut BTreeSet<CommandKey>) {
        while self.replies.len() > MAX_ADMIN_REQUESTS {
            self.forget_oldest(changed);
        }
    }

    /// Forgets replies given `retention_ms` or longer before `now`, and any past the count
    /// bound (a store from a build with a higher bound).
    pub(crate) fn expire(
        &mut self,
        now: UnixMillis,
        retention_ms: u64,
        changed: &mut BTreeSet<CommandKey>,
    ) {
        while self
            .by_age
            .first()
            .is_some_and(|(at, _)| at.0.saturating_add(retention_ms) <= now.0)
        {
            self.forget_oldest(changed);
        }
        self.trim(changed);
    }

    /// When the oldest reply is due to be forgotten.
    pub(crate) fn next_expiry(&self, retention_ms: u64) -> Option<UnixMillis> {
        self.by_age
            .first()
            .map(|(at, _)| UnixMillis(at.0.saturating_add(retention_ms)))
    }

    /// Panics unless both maps hold the same replies and the count bound holds.
    pub(crate) fn assert_consistent(&self) {
        assert_eq!(
            self.replies.len(),
            self.by_age.len(),
            "command log out of step"
        );
        for (at, key) in &self.by_age {
            assert_eq!(
                self.replies.get(key).map(|s| s.at),
                Some(*at),
                "command log age index out of step"
            );
        }
        assert!(
            self.replies.len() <= MAX_ADMIN_REQUESTS,
            "more remembered command replies than MAX_ADMIN_REQUESTS"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(n: u64) -> AdminReply {
        AdminReply {
            ok: true,
            message: format!("reply {n}"),
        }
    }

    #[test]
    fn bounded_by_count_and_by_age() {
        let mut log = CommandLog::default();
        let mut changed = BTreeSet::new();
        for i in 0..(MAX_ADMIN_REQUESTS as u64 + 10) {
            log.remember(
                ("c".into(), i),
                reply(i),
                UnixMillis(1_000 + i),
                &mut changed,
            );
        }
        assert_eq!(log.len(), MAX_ADMIN_REQUESTS);
        assert!(log.get("c", 9).is_none(), "the oldest ten were forgotten");
        assert_eq!(log.get("c", 10), Some(&reply(10)));
        assert_eq!(changed.len(), MAX_ADMIN_REQUESTS + 10);
        log.assert_consistent();

        // Age: everything answered at or before now - retention goes.
        assert_eq!(log.next_expiry(500), Some(UnixMillis(1_510)));
        changed.clear();
        log.expire(UnixMillis(1_520), 500, &mut changed);
        assert_eq!(log.len(), MAX_ADMIN_REQUESTS - 11);
        assert_eq!(changed.len(), 11);
        assert!(log.get("c", 20).is_none());
        assert!(log.get("c", 21).is_some());
        log.assert_consistent();
    }

    #[test]
    fn a_repeated_key_keeps_one_row_at_its_latest_age() {
        let mut log = CommandLog::default();
        let mut changed = BTreeSet::new();
        log.remember(("c".into(), 1), reply(1), UnixMillis(5), &mut changed);
        log.remember(("c".into(), 1), reply(2), UnixMillis(9), &mut changed);
        assert_eq!(log.len(), 1);
        assert_eq!(log.next_expiry(1), Some(UnixMillis(10)));
        log.assert_consistent();
    }
}
