//! The chain boundary's own small durable state, in one redb file in the coordinator's data
//! dir: how far the follower got (the last processed blocks with their hashes, for reorg
//! detection across restarts), the operators registered on chain, and the slash outbox.
//!
//! It is independent of the coordinator core's own state: everything here is either a cursor
//! into the chain (re-derivable by rescanning from the start block) or the record of what was
//! sent (which must survive a restart so that no slash is sent twice).

use super::ChainError;
use crate::tasks::SlashReason;
use alloy::primitives::{Address, B256};
use proofrack_common::{OperatorId, StakeUnits, TaskId};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const CURSOR: TableDefinition<&str, &[u8]> = TableDefinition::new("cursor");
const OPERATORS: TableDefinition<&[u8], &str> = TableDefinition::new("operators");
const SLASHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("slashes");
const CURSOR_KEY: &str = "recent";

/// Blocks whose hashes are remembered, newest last: a reorg is detected and undone when it is
/// at most this deep (counted in processed polls). Far above any confirmation count we allow
/// (`MAX_CONFIRMATIONS`), so a reorg that reaches confirmed blocks is still recognised.
pub const REORG_WINDOW: usize = 128;

/// The last processed blocks, oldest first; the last one is where the follower stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub recent: Vec<(u64, B256)>,
}

impl Cursor {
    pub fn last(&self) -> Option<(u64, B256)> {
        self.recent.last().copied()
    }

    /// Records `block` as processed, forgetting the oldest past [`REORG_WINDOW`].
    pub fn push(&mut self, number: u64, hash: B256) {
        self.recent.retain(|(n, _)| *n < number);
        self.recent.push((number, hash));
        if self.recent.len() > REORG_WINDOW {
            let extra = self.recent.len() - REORG_WINDOW;
            self.recent.drain(..extra);
        }
    }

    /// Forgets every block after `number` (a reorg replaced them).
    pub fn truncate_after(&mut self, number: u64) {
        self.recent.retain(|(n, _)| *n <= number);
    }
}

/// Where a slash is on its way to the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlashState {
    /// Decided by the core and recorded; not yet sent (or the last send was lost).
    Intent,
    /// Sent in transaction `tx`, not yet seen applied at a confirmed block.
    Sent { tx: B256 },
    /// Applied on chain at or before confirmed block `block`; never sent again.
    Final { tx: Option<B256>, block: u64 },
    /// The chain refused it for a reason a retry cannot fix (see `error`); alerted, not retried.
    Refused { tx: Option<B256>, error: String },
}

/// One slash in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashRecord {
    /// `StakeRegistry.slashIdOf(operator_address, task, attempt)`.
    pub slash_id: B256,
    pub task: TaskId,
    pub attempt: u32,
    pub operator: OperatorId,
    pub operator_address: Address,
    pub amount: StakeUnits,
    pub reason: SlashReason,
    pub state: SlashState,
}

impl SlashRecord {
    /// Whether it is done with, one way or the other.
    pub fn is_settled(&self) -> bool {
        matches!(
            self.state,
            SlashState::Final { .. } | SlashState::Refused { .. }
        )
    }

    /// The transaction that carries (or carried) it, if one was sent.
    pub fn tx(&self) -> Option<B256> {
        match &self.state {
            SlashState::Intent => None,
            SlashState::Sent { tx } => Some(*tx),
            SlashState::Final { tx, .. } | SlashState::Refused { tx, .. } => *tx,
        }
    }
}

fn store_err(what: &str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Store(format!("{what}: {e}"))
}

/// The redb file. See the module documentation.
pub struct ChainStore {
    db: Database,
}

impl ChainStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<ChainStore, ChainError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| store_err(&format!("creating {}", dir.display()), e))?;
        }
        let db = Database::create(path)
            .map_err(|e| store_err(&format!("opening {}", path.display()), e))?;
        let tx = db.begin_write().map_err(|e| store_err("write", e))?;
        tx.open_table(CURSOR)
            .map_err(|e| store_err("cursor table", e))?;
        tx.open_table(OPERATORS)
            .map_err(|e| store_err("operators table", e))?;
        tx.open_table(SLASHES)
            .map_err(|e| store_err("slashes table", e))?;
        tx.commit().map_err(|e| store_err("commit", e))?;
        Ok(ChainStore { db })
    }

    pub fn cursor(&self) -> Result<Cursor, ChainError> {
        let tx = self.db.begin_read().map_err(|e| store_err("read", e))?;
        let table = tx.open_table(CURSOR).map_err(|e| store_err("cursor", e))?;
        match table.get(CURSOR_KEY).map_err(|e| store_err("cursor", e))? {
            Some(v) => serde_json::from_slice(v.value()).map_err(|e| store_err("cursor", e)),
            None => Ok(Cursor::default()),
        }
    }

    pub fn operators(&self) -> Result<Vec<(Address, OperatorId)>, ChainError> {
        let tx = self.db.begin_read().map_err(|e| store_err("read", e))?;
        let table = tx
            .open_table(OPERATORS)
            .map_err(|e| store_err("operators", e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| store_err("operators", e))? {
            let (k, v) = row.map_err(|e| store_err("operators", e))?;
            let id = OperatorId::new(v.value()).map_err(|e| store_err("operator id", e))?;
            out.push((Address::from_slice(k.value()), id));
        }
        Ok(out)
    }

    /// Records progress: the cursor and newly seen operators, in one transaction.
    pub fn save_progress(
        &self,
        cursor: &Cursor,
        operators: &[(Address, OperatorId)],
    ) -> Result<(), ChainError> {
        let tx = self.db.begin_write().map_err(|e| store_err("write", e))?;
        {
            let mut table = tx.open_table(CURSOR).map_err(|e| store_err("cursor", e))?;
            let bytes = serde_json::to_vec(cursor).map_err(|e| store_err("cursor", e))?;
            table
                .insert(CURSOR_KEY, bytes.as_slice())
                .map_err(|e| store_err("cursor", e))?;
            let mut ops = tx
                .open_table(OPERATORS)
                .map_err(|e| store_err("operators", e))?;
            for (address, id) in operators {
                ops.insert(address.as_slice(), id.as_str())
                    .map_err(|e| store_err("operators", e))?;
            }
        }
        tx.commit().map_err(|e| store_err("commit", e))
    }

    pub fn slash(&self, id: B256) -> Result<Option<SlashRecord>, ChainError> {
        let tx = self.db.begin_read().map_err(|e| store_err("read", e))?;
        let table = tx
            .open_table(SLASHES)
            .map_err(|e| store_err("slashes", e))?;
        match table
            .get(id.as_slice())
            .map_err(|e| store_err("slashes", e))?
        {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| store_err("slash record", e)),
            None => Ok(None),
        }
    }

    pub fn put_slash(&self, record: &SlashRecord) -> Result<(), ChainError> {
        let bytes = serde_json::to_vec(record).map_err(|e| store_err("slash record", e))?;
        let tx = self.db.begin_write().map_err(|e| store_err("write", e))?;
        {
            let mut table = tx
                .open_table(SLASHES)
                .map_err(|e| store_err("slashes", e))?;
            table
                .insert(record.slash_id.as_slice(), bytes.as_slice())
                .map_err(|e| store_err("slashes", e))?;
        }
        tx.commit().map_err(|e| store_err("commit", e))
    }

    /// Every slash ever recorded, in slash id order.
    pub fn slashes(&self) -> Result<Vec<SlashRecord>, ChainError> {
        let tx = self.db.begin_read().map_err(|e| store_err("read", e))?;
        let table = tx
            .open_table(SLASHES)
            .map_err(|e| store_err("slashes", e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| store_err("slashes", e))? {
            let (_, v) = row.map_err(|e| store_err("slashes", e))?;
            out.push(serde_json::from_slice(v.value()).map_err(|e| store_err("slash record", e))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_keeps_a_bounded_window_and_truncates() {
        let mut c = Cursor::default();
        for n in 0..(REORG_WINDOW as u64 + 10) {
            c.push(n, B256::with_last_byte(n as u8));
        }
        assert_eq!(c.recent.len(), REORG_WINDOW);
        assert_eq!(c.last().unwrap().0, REORG_WINDOW as u64 + 9);
        c.truncate_after(100);
        assert_eq!(c.last().unwrap().0, 100);
        // pushing an older block drops the newer ones it replaces
        c.push(90, B256::ZERO);
        assert_eq!(c.last(), Some((90, B256::ZERO)));
    }

    #[test]
    fn survives_reopening() {
        let dir =
            std::env::temp_dir().join(format!("proofrack-chain-store-{}", std::process::id()));
        let path = dir.join("chain.redb");
        let _ = std::fs::remove_file(&path);
        let record = SlashRecord {
            slash_id: B256::repeat_byte(7),
            task: TaskId(3),
            attempt: 0,
            operator: OperatorId::new("op-a").unwrap(),
            operator_address: Address::repeat_byte(1),
            amount: StakeUnits(5),
            reason: SlashReason::MissedDueTime,
            state: SlashState::Sent {
                tx: B256::repeat_byte(9),
            },
        };
        {
            let store = ChainStore::open(&path).unwrap();
            let mut c = Cursor::default();
            c.push(12, B256::repeat_byte(2));
            store
                .save_progress(
                    &c,
                    &[(Address::repeat_byte(1), OperatorId::new("op-a").unwrap())],
                )
                .unwrap();
            store.put_slash(&record).unwrap();
        }
        let store = ChainStore::open(&path).unwrap();
        assert_eq!(
            store.cursor().unwrap().last(),
            Some((12, B256::repeat_byte(2)))
        );
        assert_eq!(store.operators().unwrap().len(), 1);
        assert_eq!(store.slash(record.slash_id).unwrap(), Some(record));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
