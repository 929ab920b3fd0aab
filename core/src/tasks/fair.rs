//! Fair admission across clients: the order in which one admission pass tries waiting tasks.
//!
//! Within a client, earliest deadline first (ties by task id), as before. Across clients, the
//! next task tried is the head of the client that holds the fewest tasks in service (offered,
//! proving, orphaned or being verified) at that moment; between clients holding as many, the
//! one served least recently (its last offer earliest, never first), then the head's deadline
//! and id. Each offer in the pass counts for its client at once, so clients with tasks waiting
//! take turns (round robin when the fleet frees one slot at a time), and a client that
//! already holds much of the fleet waits behind one that holds little: the fleet is shared
//! max-min fairly by tasks in service, whatever order or rate the tasks came in. A flood from
//! one client cannot push another's tasks back: they are tried before the flood's next task.
//!
//! Durable by derivation: the loads come from the tasks' states and the order of the last
//! offers from their histories (both stored), so a restart rebuilds the same order. With one client
//! waiting it is exactly the old earliest-deadline-first order, at the old cost.

use super::index::ClientLoad;

/// The sequence number of a client's last offer (the core counts offers); `None`, never (or
/// not since its tasks were all finished), sorts first.
pub(crate) type LastServed = Option<u64>;
use proofrack_common::{TaskId, UnixMillis};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// A client's place in the pass: (tasks in service, last served, its head's deadline, its
/// head's id, the client's index); the smallest goes next.
type Head = (usize, LastServed, UnixMillis, TaskId, usize);

/// The waiting tasks of one pass, handed out in fair order. See the module documentation.
pub(crate) struct FairQueue {
    /// Per client (by index): its waiting tasks in EDF order.
    queues: Vec<VecDeque<(UnixMillis, TaskId)>>,
    /// Per client: tasks in service, counting offers made in this pass.
    in_service: Vec<usize>,
    /// Per client: its last offer, counting this pass's.
    last: Vec<LastServed>,
    /// Each client with tasks left, least served first.
    heads: BinaryHeap<Reverse<Head>>,
    /// The client of the task last handed out, until [`FairQueue::served`].
    pending: Option<usize>,
}

impl FairQueue {
    /// `waiting`: (deadline, task, client) in EDF order; `loads`: each client's load now;
    /// `served`: each client's last offer.
    pub(crate) fn new<'a>(
        waiting: impl IntoIterator<Item = (UnixMillis, TaskId, &'a str)>,
        loads: &BTreeMap<String, ClientLoad>,
        served: &BTreeMap<String, u64>,
    ) -> FairQueue {
        let mut index: BTreeMap<&'a str, usize> = BTreeMap::new();
        let mut queues: Vec<VecDeque<(UnixMillis, TaskId)>> = Vec::new();
        let mut in_service = Vec::new();
        let mut last = Vec::new();
        // Consecutive tasks of one client skip the map (a flood is one long run).
        let mut run: Option<(&'a str, usize)> = None;
        for (deadline, task, client) in waiting {
            let i = match run {
                Some((c, i)) if c == client => i,
                _ => *index.entry(client).or_insert_with(|| {
                    queues.push(VecDeque::new());
                    in_service.push(loads.get(client).map_or(0, |l| l.in_service));
                    last.push(served.get(client).copied());
                    queues.len() - 1
                }),
            };
            run = Some((client, i));
            queues[i].push_back((deadline, task));
        }
        let heads = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                q.front()
                    .map(|(d, t)| Reverse((in_service[i], last[i], *d, *t, i)))
            })
            .collect();
        FairQueue {
            queues,
            in_service,
            last,
            heads,
            pending: None,
        }
    }

    /// The next task to try. Call [`FairQueue::served`] with the result before the next one.
    pub(crate) fn next(&mut self) -> Option<TaskId> {
        assert!(self.pending.is_none(), "next() before served()");
        let Reverse((_, _, _, task, client)) = self.heads.pop()?;
        let popped = self.queues[client].pop_front();
        debug_assert_eq!(
            popped.map(|(_, t)| t),
            Some(task),
            "a head is its queue's front"
        );
        self.pending = Some(client);
        Some(task)
    }

    /// Whether the task from [`FairQueue::next`] was offered, with the offer's sequence
    /// number (its client then holds one more, and was served last).
    pub(crate) fn served(&mut self, offered: Option<u64>) {
        let client = self.pending.take().expect("served() after next()");
        if let Some(at) = offered {
            self.in_service[client] += 1;
            self.last[client] = Some(at);
        }
        if let Some((deadline, task)) = self.queues[client].front() {
            self.heads.push(Reverse((
                self.in_service[client],
                self.last[client],
                *deadline,
                *task,
                client,
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(in_service: usize) -> ClientLoad {
        ClientLoad {
            unfinished: in_service + 10,
            in_service,
        }
    }

    /// Runs a pass where every task tried is offered while `slots` last.
    fn pass(
        waiting: &[(u64, u64, &str)],
        loads: &BTreeMap<String, ClientLoad>,
        slots: usize,
    ) -> Vec<u64> {
        pass_served(waiting, loads, &BTreeMap::new(), slots)
    }

    fn pass_served(
        waiting: &[(u64, u64, &str)],
        loads: &BTreeMap<String, ClientLoad>,
        served: &BTreeMap<String, u64>,
        mut slots: usize,
    ) -> Vec<u64> {
        let mut q = FairQueue::new(
            waiting
                .iter()
                .map(|(d, t, c)| (UnixMillis(*d), TaskId(*t), *c)),
            loads,
            served,
        );
        let mut order = Vec::new();
        let mut seq = 100;
        while let Some(t) = q.next() {
            order.push(t.0);
            seq += 1;
            let offered = (slots > 0).then_some(seq);
            slots = slots.saturating_sub(1);
            q.served(offered);
        }
        order
    }

    #[test]
    fn one_client_is_earliest_deadline_first() {
        let w = [(1, 3, "a"), (2, 1, "a"), (2, 2, "a"), (9, 4, "a")];
        assert_eq!(pass(&w, &BTreeMap::new(), 10), vec![3, 1, 2, 4]);
    }

    #[test]
    fn two_clients_take_turns_whatever_the_arrival_order() {
        // a flooded first (earlier deadlines); b's tasks still alternate with a's.
        let w = [
            (1, 1, "a"),
            (2, 2, "a"),
            (3, 3, "a"),
            (4, 4, "a"),
            (50, 5, "b"),
            (51, 6, "b"),
        ];
        assert_eq!(pass(&w, &BTreeMap::new(), 10), vec![1, 5, 2, 6, 3, 4]);
    }

    #[test]
    fn the_client_holding_less_of_the_fleet_goes_first() {
        let w = [
            (1, 1, "a"),
            (2, 2, "a"),
            (50, 3, "b"),
            (51, 4, "b"),
            (52, 5, "b"),
        ];
        let loads = [("a".to_string(), load(2))].into_iter().collect();
        // b holds nothing: it is served until it holds as much as a (2), then they alternate
        // (ties by deadline: a's are earlier).
        assert_eq!(pass(&w, &loads, 10), vec![3, 4, 1, 5, 2]);
    }

    #[test]
    fn between_equal_loads_the_client_served_least_recently_goes_first() {
        // One slot frees at a time: a's flood has the earlier deadlines, but b was never
        // served and a was, so b goes first; then a (served before b's offer).
        let w = [(1, 1, "a"), (2, 2, "a"), (50, 3, "b")];
        let served = [("a".to_string(), 5)].into_iter().collect();
        assert_eq!(pass_served(&w, &BTreeMap::new(), &served, 1)[0], 3);
        let served = [("a".to_string(), 5), ("b".to_string(), 7)]
            .into_iter()
            .collect();
        assert_eq!(pass_served(&w, &BTreeMap::new(), &served, 1)[0], 1);
    }

    #[test]
    fn a_task_not_offered_does_not_count_for_its_client() {
        let w = [(1, 1, "a"), (2, 2, "a"), (50, 3, "b")];
        // No slots: nothing is offered, so the order is by deadline within equal loads.
        assert_eq!(pass(&w, &BTreeMap::new(), 0), vec![1, 2, 3]);
    }
}
