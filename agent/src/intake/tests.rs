use super::*;
use proofrack_common::protocol::WitnessRef;
use proofrack_common::testkit::shape;
use proofrack_common::{KeyId, StakeUnits};
use proptest::prelude::*;

/// The agent's clock in these tests: milliseconds since an arbitrary start.
const T0: UnixMillis = UnixMillis(1_000_000);

fn at(ms: u64) -> UnixMillis {
    UnixMillis(T0.0 + ms)
}

/// An offer of built-in `circuit` due `due_ms` after T0.
fn offer(task: u64, circuit: &str, due_ms: u64) -> TaskOffer {
    TaskOffer {
        task: TaskId(task),
        key: KeyId([7; 32]),
        circuit: circuit.into(),
        shape: shape(4),
        inputs: br#"{"x":"3"}"#.to_vec(),
        collateral: StakeUnits(10),
        deadline: at(due_ms),
        offer_expires: at(due_ms / 2),
    }
}

/// A circom task: a registered circuit this build has never heard of, its witness to fetch.
fn circom_offer(task: u64, due_ms: u64) -> TaskOffer {
    let witness = WitnessRef {
        sha256: [9; 32],
        len: 96,
        public: vec![[1; 32]],
    };
    TaskOffer {
        inputs: witness.encode(),
        ..offer(task, "poseidon", due_ms)
    }
}

fn refusal(intake: Intake) -> Refusal {
    match intake {
        Intake::Refuse(r) => r,
        other => panic!("taken: {other:?}"),
    }
}

#[test]
fn a_circom_task_is_taken_new_and_resumed_and_an_unknown_built_in_is_refused_both_ways() {
    let circom = circom_offer(1, 60_000);
    assert_eq!(can_prove(&circom), Ok(()));
    assert_eq!(TaskBook::new(1).handle_offer(T0, &circom), Intake::Run);
    // The restarted agent's view: the coordinator resumes the bound circom task.
    assert_eq!(TaskBook::new(1).handle_resume(T0, &circom), Intake::Run);

    let unknown = offer(2, "sha-9000", 60_000);
    for intake in [
        TaskBook::new(1).handle_offer(T0, &unknown),
        TaskBook::new(1).handle_resume(T0, &unknown),
    ] {
        let r = refusal(intake);
        assert!(
            r.to_string().starts_with("this agent cannot prove it: ")
                && r.to_string().contains("sha-9000"),
            "{r}"
        );
    }
}

#[test]
fn new_offers_and_resumes_agree_on_what_this_build_can_prove() {
    let mut bad_witness = circom_offer(4, 60_000);
    bad_witness.inputs.truncate(bad_witness.inputs.len() - 3);
    for o in [
        offer(1, "mimc-4", 60_000),
        offer(2, "nonexistent", 60_000),
        circom_offer(3, 60_000),
        bad_witness,
    ] {
        let new = TaskBook::new(2).handle_offer(T0, &o);
        let resumed = TaskBook::new(2).handle_resume(T0, &o);
        assert_eq!(new, resumed, "{}: offer and resume disagree", o.circuit);
        assert_eq!(
            matches!(new, Intake::Run),
            can_prove(&o).is_ok(),
            "{}: {new:?}",
            o.circuit
        );
    }
}

#[test]
fn tasks_past_their_due_time_are_not_taken() {
    let o = offer(1, "mimc-4", 5_000);
    let mut book = TaskBook::new(1);
    assert_eq!(
        refusal(book.handle_offer(at(5_000), &o)),
        Refusal::PastDue { due: at(5_000) }
    );
    assert_eq!(
        refusal(book.handle_resume(at(9_000), &o)),
        Refusal::PastDue { due: at(5_000) }
    );
    assert!(book.is_empty());
    assert_eq!(book.handle_offer(at(4_999), &o), Intake::Run);
}

/// Offers each (task, due in ms after T0) of the built-in test circuit at T0; the intakes.
fn offer_all(book: &mut TaskBook, tasks: &[(u64, u64)]) -> Vec<Intake> {
    tasks
        .iter()
        .map(|&(task, due_ms)| book.handle_offer(T0, &offer(task, "mimc-4", due_ms)))
        .collect()
}

#[test]
fn slots_fill_first_then_tasks_wait_and_run_in_the_order_taken() {
    use Intake::{Held, Run, Wait};
    let mut book = TaskBook::new(2);
    let taken = offer_all(&mut book, &[(1, 60_000), (2, 60_000), (3, 60_000)]);
    assert_eq!(taken, [Run, Run, Wait]);
    assert_eq!(book.handle_resume(T0, &offer(4, "mimc-4", 60_000)), Wait);
    // A re-sent offer or a resume of a held task starts nothing.
    assert_eq!(offer_all(&mut book, &[(3, 60_000)]), [Held]);
    assert_eq!(book.handle_resume(T0, &offer(1, "mimc-4", 60_000)), Held);
    assert_eq!((book.len(), book.running()), (4, 2));

    let run = |ids: &[u64]| Released {
        run: ids.iter().map(|t| TaskId(*t)).collect(),
        expired: vec![],
    };
    assert_eq!(book.handle_finished(at(10), TaskId(2)), run(&[3]));
    // A task the book does not hold (already ended) changes nothing.
    assert_eq!(book.handle_finished(at(11), TaskId(2)), run(&[]));
    assert_eq!(book.handle_finished(at(12), TaskId(1)), run(&[4]));
    assert_eq!(book.handle_finished(at(13), TaskId(3)), run(&[]));
    assert_eq!(book.handle_finished(at(14), TaskId(4)), run(&[]));
    assert!(book.is_empty());
}

#[test]
fn a_waiting_task_whose_due_time_passed_is_dropped_when_a_slot_frees() {
    use Intake::{Run, Wait};
    let mut book = TaskBook::new(1);
    let taken = offer_all(
        &mut book,
        &[(1, 60_000), (2, 1_500), (3, 1_800), (4, 5_000)],
    );
    assert_eq!(taken, [Run, Wait, Wait, Wait]);
    // Task 1 takes until 1.8 s: tasks 2 and 3 are due by then, 4 runs.
    assert_eq!(
        book.handle_finished(at(1_800), TaskId(1)),
        Released {
            run: vec![TaskId(4)],
            expired: vec![TaskId(2), TaskId(3)],
        }
    );
    assert_eq!((book.len(), book.running()), (1, 1));
    // Their workers end later: nothing changes then.
    assert_eq!(
        book.handle_finished(at(1_900), TaskId(2)),
        Released::default()
    );
}

#[test]
fn the_queue_is_bounded_for_offers_but_not_for_resumed_tasks() {
    let mut book = TaskBook::new(1);
    for t in 0..=MAX_QUEUED_TASKS as u64 {
        assert!(matches!(
            book.handle_offer(T0, &offer(t, "mimc-4", 60_000)),
            Intake::Run | Intake::Wait
        ));
    }
    let full = refusal(book.handle_offer(T0, &offer(1_000, "mimc-4", 60_000)));
    assert_eq!(full.to_string(), "64 tasks already queued here");
    // A resumed task is bound to this agent already: refusing it helps nobody.
    assert_eq!(
        book.handle_resume(T0, &offer(1_001, "mimc-4", 60_000)),
        Intake::Wait
    );
    assert_eq!(book.len(), MAX_QUEUED_TASKS + 2);
}

#[test]
fn a_cancelled_task_leaves_the_queue_at_once_and_a_running_one_when_it_ends() {
    let mut book = TaskBook::new(1);
    offer_all(&mut book, &[(1, 60_000), (2, 60_000), (3, 60_000)]);
    assert!(
        book.handle_cancelled(TaskId(2)),
        "a waiting task is dropped"
    );
    assert!(
        !book.handle_cancelled(TaskId(1)),
        "a running task keeps its slot"
    );
    assert!(!book.holds(TaskId(2)) && book.holds(TaskId(1)));
    assert_eq!(
        book.handle_finished(at(5), TaskId(1)),
        Released {
            run: vec![TaskId(3)],
            expired: vec![],
        }
    );
}

#[derive(Clone, Debug)]
enum Op {
    Offer { task: u64, due_ms: u64 },
    Resume { task: u64, due_ms: u64 },
    Finish { task: u64 },
    Cancel { task: u64 },
    Tick { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..24, 1u64..4_000).prop_map(|(task, due_ms)| Op::Offer { task, due_ms }),
        (0u64..24, 1u64..4_000).prop_map(|(task, due_ms)| Op::Resume { task, due_ms }),
        (0u64..24).prop_map(|task| Op::Finish { task }),
        (0u64..24).prop_map(|task| Op::Cancel { task }),
        (1u64..500).prop_map(|ms| Op::Tick { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x001a_7a4e),
        ..ProptestConfig::default()
    })]

    /// Whatever happens, the book holds exactly the tasks taken and not yet ended, runs at
    /// most `slots` of them, and starts every task at most once (the book asserts the rest
    /// on every change).
    #[test]
    fn the_book_holds_what_was_taken_and_starts_each_task_once(
        slots in 1u32..4,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut book = TaskBook::new(slots);
        let mut now = T0;
        let mut held = std::collections::BTreeSet::new();
        let mut running = std::collections::BTreeSet::new();
        for op in ops {
            match op {
                Op::Offer { task, due_ms } | Op::Resume { task, due_ms } => {
                    let o = offer(task, "mimc-4", now.0 - T0.0 + due_ms);
                    let intake = if matches!(op, Op::Offer { .. }) {
                        book.handle_offer(now, &o)
                    } else {
                        book.handle_resume(now, &o)
                    };
                    match intake {
                        Intake::Run => {
                            prop_assert!(held.insert(task) && running.insert(task));
                        }
                        Intake::Wait => prop_assert!(held.insert(task)),
                        Intake::Held => prop_assert!(held.contains(&task)),
                        Intake::Refuse(r) => prop_assert!(!held.contains(&task), "{r}"),
                    }
                }
                Op::Finish { task } => {
                    let released = book.handle_finished(now, TaskId(task));
                    held.remove(&task);
                    running.remove(&task);
                    for t in released.run {
                        prop_assert!(running.insert(t.0), "{t} started twice");
                    }
                    for t in released.expired {
                        prop_assert!(held.remove(&t.0) && !running.contains(&t.0));
                    }
                }
                Op::Cancel { task } => {
                    if book.handle_cancelled(TaskId(task)) {
                        prop_assert!(held.remove(&task) && !running.contains(&task));
                    }
                }
                Op::Tick { ms } => now = UnixMillis(now.0 + ms),
            }
            prop_assert_eq!(book.len(), held.len());
            prop_assert_eq!(book.running(), running.len());
            prop_assert!(running.len() <= slots as usize);
        }
    }
}
