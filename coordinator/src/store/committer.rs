//! The group committer: one thread that writes every queued change set in one transaction.

use super::tables;
use super::{Batch, Inner, StoreError, MAX_BATCHES_PER_COMMIT};
use crate::tasks::Changes;

pub(super) fn run(inner: &Inner) {
    loop {
        let batches = {
            let mut q = inner.queue.lock().expect("store queue poisoned");
            while q.batches.is_empty() && !q.closed {
                q = inner.wake.wait(q).expect("store queue poisoned");
            }
            if q.batches.is_empty() {
                return;
            }
            let take = q.batches.len().min(MAX_BATCHES_PER_COMMIT);
            q.batches.drain(..take).collect::<Vec<_>>()
        };
        let last = batches.last().map_or(0, |b| b.seq);
        let count = batches.len();
        let started = std::time::Instant::now();
        match write(&inner.db, batches) {
            Ok(()) => {
                tracing::trace!(
                    batches = count,
                    last,
                    commit_us = started.elapsed().as_micros() as u64,
                    "state committed"
                );
                inner.durable.send_replace(last);
            }
            Err(e) => {
                tracing::error!(error = %e, "state store commit failed; no further acknowledgements");
                *inner.failed.lock().expect("store failure poisoned") = Some(e.to_string());
                inner.durable.send_replace(u64::MAX);
                return;
            }
        }
    }
}

/// Merges the batches (later rows win) and commits them in one durable transaction.
pub(super) fn write(db: &redb::Database, batches: Vec<Batch>) -> Result<(), StoreError> {
    // One map for the whole group (later rows win): folding batch by batch into a list
    // re-sorted every row merged so far for every batch, quadratic in the group's size.
    let mut rows = std::collections::BTreeMap::new();
    let mut agents = std::collections::BTreeMap::new();
    let mut merged = Changes::default();
    let mut extra = Vec::new();
    for b in batches {
        rows.extend(b.changes.tasks);
        if b.changes.ledger.is_some() {
            merged.ledger = b.changes.ledger;
        }
        if b.changes.meta.is_some() {
            merged.meta = b.changes.meta;
        }
        agents.extend(b.changes.agents);
        merged.audit.absorb(b.changes.audit);
        extra.extend(b.extra);
    }
    merged.tasks = rows.into_iter().collect();
    merged.agents = agents.into_iter().collect();
    let txn = db
        .begin_write()
        .map_err(|e| StoreError::Write(e.to_string()))?;
    tables::apply(&txn, &merged, &extra)?;
    txn.commit().map_err(|e| StoreError::Write(e.to_string()))
}
