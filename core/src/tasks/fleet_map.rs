//! The fleet's records by agent id, with a version that moves on every mutable access: a
//! view derived from the records (admission's `RankedFleet`, kept across passes) is current
//! exactly while the version it was built at is. Every change to a record goes through
//! [`FleetMap::get_mut`], [`FleetMap::iter_mut`], [`FleetMap::insert`] or
//! [`FleetMap::remove`], so no change can leave a view stale without its knowing.

use super::fleet::AgentRecord;
use crate::admission::AgentId;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct FleetMap {
    records: BTreeMap<AgentId, AgentRecord>,
    version: u64,
}

impl FleetMap {
    /// Moves on every mutable access (not only on real changes: a view is rebuilt at worst
    /// once more than needed, never used stale).
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn get(&self, agent: &AgentId) -> Option<&AgentRecord> {
        self.records.get(agent)
    }

    pub(crate) fn get_mut(&mut self, agent: &AgentId) -> Option<&mut AgentRecord> {
        self.version += 1;
        self.records.get_mut(agent)
    }

    pub(crate) fn insert(&mut self, agent: AgentId, record: AgentRecord) {
        self.version += 1;
        self.records.insert(agent, record);
    }

    pub(crate) fn remove(&mut self, agent: &AgentId) {
        self.version += 1;
        self.records.remove(agent);
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&AgentId, &mut AgentRecord)> {
        self.version += 1;
        self.records.iter_mut()
    }

    pub(crate) fn contains_key(&self, agent: &AgentId) -> bool {
        self.records.contains_key(agent)
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &AgentId> {
        self.records.keys()
    }

    /// In agent id order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &AgentRecord> {
        self.records.values()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&AgentId, &AgentRecord)> {
        self.records.iter()
    }
}

impl FromIterator<(AgentId, AgentRecord)> for FleetMap {
    fn from_iter<I: IntoIterator<Item = (AgentId, AgentRecord)>>(iter: I) -> Self {
        FleetMap {
            records: iter.into_iter().collect(),
            version: 0,
        }
    }
}

impl std::ops::Index<&AgentId> for FleetMap {
    type Output = AgentRecord;

    /// The record of an agent that must be in the fleet.
    fn index(&self, agent: &AgentId) -> &AgentRecord {
        &self.records[agent]
    }
}
