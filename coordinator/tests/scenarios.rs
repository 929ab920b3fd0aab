//! Scenario tests of the coordinator's core with a simulated clock: the behaviours the issue
//! requires, end to end through `CoordinatorCore`'s events and effects.

#[path = "scenarios/breaker.rs"]
mod breaker;
mod sim_clock;

use proofrack_common::{StakeUnits, TaskId, UnixMillis};
use proofrack_coordinator::ledger::source::StakeEvent;
use proofrack_coordinator::ledger::BindRejected;
use proofrack_coordinator::tasks::{
    DeliveryRejected, OfferReplyRejected, SubmitRejected, TaskEvent,
};
use proofrack_coordinator::testkit::{agent_id, cuda_telemetry};
use proofrack_coordinator::{Effect, OfferReply, Policy, TaskStatus};
use sim_clock::{Sim, GIB};

const MINUTE_MS: u64 = 60_000;
const FAST: u64 = 10_000_000;
const SLOW: u64 = 1_000_000;

fn policy() -> Policy {
    Policy {
        max_tasks_per_agent: 8,
        ..Policy::default()
    }
}

#[test]
fn over_commitment_is_impossible_and_the_third_task_runs_when_one_finishes() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t1 = sim.submit(40, MINUTE_MS).unwrap();
    let t2 = sim.submit(40, MINUTE_MS).unwrap();
    let t3 = sim.submit(40, MINUTE_MS).unwrap();
    // Two offers outstanding promise 80 of 100: the third is not offered even before any accept.
    let offers = sim.take_offers();
    assert_eq!(offers.iter().map(|o| o.task).collect::<Vec<_>>(), [t1, t2]);
    assert_eq!(sim.row("op-a").promised_to_offers, StakeUnits(80));
    match sim.status(t3) {
        TaskStatus::Queued { reason } => {
            assert_eq!(reason, "no operator with 40 free stake; best has 20 (op-a)")
        }
        other => panic!("t3 should wait, is {other:?}"),
    }
    sim.accept(&a, t1);
    sim.accept(&a, t2);
    let row = sim.row("op-a");
    assert_eq!(
        (row.active, row.free, row.bound_tasks),
        (StakeUnits(80), StakeUnits(20), 2)
    );
    assert!(sim.take_offers().is_empty());

    sim.advance(20);
    sim.prove(&a, t1, true);
    let offers = sim.take_offers();
    assert_eq!(
        offers.iter().map(|o| o.task).collect::<Vec<_>>(),
        [t3],
        "t3 runs when t1 finishes"
    );
    sim.accept(&a, t3);
    assert_eq!(sim.row("op-a").active, StakeUnits(80));
    assert!(matches!(sim.status(t1), TaskStatus::Verified { .. }));
}

#[test]
fn two_agents_of_one_operator_cannot_both_be_promised_the_same_stake() {
    let mut sim = Sim::new(policy(), &[("op-a", 50)]);
    let a1 = sim.gpu_agent("op-a", "gpu-1", FAST);
    let a2 = sim.gpu_agent("op-a", "gpu-2", FAST);
    let t1 = sim.submit(40, MINUTE_MS).unwrap();
    let t2 = sim.submit(40, MINUTE_MS).unwrap();
    let offers = sim.take_offers();
    assert_eq!(
        offers.len(),
        1,
        "only one offer may promise the 50: {offers:?}"
    );
    assert!(matches!(sim.status(t2), TaskStatus::Queued { .. }));
    // The agent not offered anything cannot take t1 either.
    let other = if offers[0].agent == a1 { &a2 } else { &a1 };
    let err = sim
        .core
        .handle_offer_reply(sim.now, other, t1, OfferReply::Accept)
        .unwrap_err();
    assert!(
        matches!(err, OfferReplyRejected::NoOutstandingOffer { .. }),
        "{err}"
    );
    sim.accept(&offers[0].agent.clone(), t1);
    assert_eq!(sim.row("op-a").active, StakeUnits(40));
}

#[test]
fn a_task_larger_than_every_agents_memory_is_offered_to_none_with_that_reason() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    sim.agent_with(
        "op-a",
        "gpu-1",
        cuda_telemetry(1, 8 << 20, FAST, 1_000_000_000),
        1,
    );
    sim.agent_with(
        "op-b",
        "box-2",
        cuda_telemetry(1, 16 << 20, FAST, 1_000_000_000),
        1,
    );
    let t = sim.submit(10, MINUTE_MS).unwrap();
    assert!(sim.take_offers().is_empty());
    let TaskStatus::Queued { reason } = sim.status(t) else {
        panic!("should wait")
    };
    assert_eq!(
        reason,
        "needs 41.0 MiB; largest free memory is 16.0 MiB (agent op-b/box-2)"
    );
    let view = sim.core.task(t).unwrap();
    let Some(TaskEvent::NoFit { verdicts, .. }) = view
        .history
        .iter()
        .map(|h| &h.event)
        .find(|e| matches!(e, TaskEvent::NoFit { .. }))
    else {
        panic!("history records the admission decision: {:?}", view.history)
    };
    assert_eq!(verdicts.len(), 2, "every agent's misfit is recorded");
    // Watching clients were told why.
    assert!(sim.effects.iter().any(|e| matches!(e,
        Effect::TaskUpdate { task, status: TaskStatus::Queued { reason }, .. } if *task == t && reason.starts_with("needs"))));
}

#[test]
fn a_valid_proof_releases_the_stake_and_records_predicted_and_actual_time() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    sim.accept(&a, t);
    assert_eq!(sim.row("op-a").active, StakeUnits(40));
    sim.advance(30);
    sim.prove(&a, t, true);
    let row = sim.row("op-a");
    assert_eq!(
        (row.active, row.free, row.slashed),
        (StakeUnits(0), StakeUnits(100), StakeUnits(0))
    );
    assert_eq!(
        sim.status(t),
        TaskStatus::Verified {
            agent: a.clone(),
            proving_ms: 40
        }
    );
    let history = sim.core.task(t).unwrap().history;
    let verified = history.iter().find_map(|h| match &h.event {
        TaskEvent::Verified {
            predicted_proving_ms,
            actual_proving_ms,
            ..
        } => Some((*predicted_proving_ms, *actual_proving_ms)),
        _ => None,
    });
    assert_eq!(verified, Some((45, 40)));
    let lines: Vec<String> = history
        .iter()
        .map(|h| format!("{} {}", h.at, h.event))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("40 of op-a's stake bound")),
        "{lines:#?}"
    );
}

#[test]
fn an_invalid_proof_slashes_the_operator_and_the_task_is_reassigned() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let fast = sim.gpu_agent("op-a", "fast", FAST);
    let slow = sim.gpu_agent("op-b", "slow", SLOW);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    let offers = sim.take_offers();
    assert_eq!(offers[0].agent, fast, "the earliest finish wins");
    sim.accept(&fast, t);
    sim.prove(&fast, t, false);
    let row = sim.row("op-a");
    // default invalid_proof_slash_bps = 5000: half of 40 leaves the delegation, the rest is free
    assert_eq!(
        (row.delegated, row.active, row.slashed, row.free),
        (
            StakeUnits(80),
            StakeUnits(0),
            StakeUnits(20),
            StakeUnits(80)
        )
    );
    let offers = sim.take_offers();
    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0].agent, slow,
        "reassigned to another agent although the slashed one is faster"
    );
    sim.accept(&slow, t);
    sim.advance(1_000);
    sim.prove(&slow, t, true);
    assert_eq!(
        sim.status(t),
        TaskStatus::Verified {
            agent: slow,
            proving_ms: 40
        }
    );
    assert_eq!(sim.row("op-b").slashed, StakeUnits(0));
}

#[test]
fn an_agent_of_one_operator_cannot_deliver_for_a_task_bound_to_another() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", SLOW);
    let b = sim.gpu_agent("op-b", "gpu-1", FAST);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    sim.accept(&b, t);
    let err = sim.core.handle_proof_delivered(sim.now, &a, t).unwrap_err();
    assert_eq!(
        err,
        DeliveryRejected::NotYourTask {
            task: t,
            agent: a.clone(),
            bound_to: Some(b.clone())
        }
    );
    assert_eq!(
        err.to_string(),
        "task-1 is not bound to op-a/gpu-1; it is bound to op-b/gpu-1"
    );
    let err = sim
        .core
        .handle_proof_verified(sim.now, &a, t, true, 1)
        .unwrap_err();
    assert!(matches!(err, DeliveryRejected::NotYourTask { .. }));
    // Nothing moved: still proving on b with b's stake bound.
    assert!(matches!(sim.status(t), TaskStatus::Proving { ref agent, .. } if *agent == b));
    assert_eq!(
        (sim.row("op-a").active, sim.row("op-b").active),
        (StakeUnits(0), StakeUnits(40))
    );
    // Unknown and unbound tasks are refused too.
    assert!(matches!(
        sim.core.handle_proof_delivered(sim.now, &b, TaskId(99)),
        Err(DeliveryRejected::UnknownTask { .. })
    ));
    let queued = sim.submit(80, MINUTE_MS).unwrap();
    sim.take_offers();
    assert!(matches!(
        sim.core.handle_proof_delivered(sim.now, &b, queued),
        Err(DeliveryRejected::NotYourTask { bound_to: None, .. })
    ));
    sim.core.handle_proof_delivered(sim.now, &b, t).unwrap();
    assert!(matches!(
        sim.core.handle_proof_delivered(sim.now, &b, t),
        Err(DeliveryRejected::AlreadyDelivered { .. })
    ));
}

#[test]
fn a_decline_frees_the_promise_with_no_penalty_and_goes_to_the_next_fit() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let fast = sim.gpu_agent("op-a", "fast", FAST);
    let slow = sim.gpu_agent("op-b", "slow", SLOW);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    assert_eq!(sim.take_offers()[0].agent, fast);
    sim.decline(&fast, t);
    assert_eq!(sim.row("op-a").promised_to_offers, StakeUnits(0));
    assert_eq!(sim.row("op-a").slashed, StakeUnits(0));
    let offers = sim.take_offers();
    assert_eq!(
        offers
            .iter()
            .map(|o| (&o.agent, o.task))
            .collect::<Vec<_>>(),
        [(&slow, t)]
    );
    assert_eq!(sim.row("op-b").promised_to_offers, StakeUnits(40));
}

#[test]
fn an_unanswered_offer_expires_with_no_penalty_and_goes_to_the_next_fit() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let fast = sim.gpu_agent("op-a", "fast", FAST);
    let slow = sim.gpu_agent("op-b", "slow", SLOW);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    let first = sim.take_offers();
    assert_eq!(first[0].agent, fast);
    assert_eq!(
        first[0].offer_expires,
        UnixMillis(sim.now.0 + Policy::default().offer_timeout_ms).min(first[0].due_at)
    );
    sim.advance(first[0].offer_expires.0 - sim.now.0 - 1);
    assert!(
        sim.take_offers().is_empty(),
        "not expired a millisecond early"
    );
    sim.advance(1);
    assert_eq!(
        sim.take_cancels(),
        [(fast.clone(), t)],
        "the late agent is told the offer is gone"
    );
    assert_eq!(
        sim.take_offers()
            .iter()
            .map(|o| o.agent.clone())
            .collect::<Vec<_>>(),
        [slow]
    );
    assert_eq!(sim.row("op-a").slashed, StakeUnits(0));
    // The expired agent's late accept is refused.
    let err = sim
        .core
        .handle_offer_reply(sim.now, &fast, t, OfferReply::Accept)
        .unwrap_err();
    assert!(
        matches!(err, OfferReplyRejected::NoOutstandingOffer { .. }),
        "{err}"
    );
}

#[test]
fn with_one_agent_a_declined_task_is_offered_again_after_the_backoff() {
    let p = Policy {
        decline_backoff_ms: 5_000,
        ..policy()
    };
    let mut sim = Sim::new(p, &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    sim.take_offers();
    sim.decline(&a, t);
    assert!(sim.take_offers().is_empty());
    assert_eq!(
        sim.status(t),
        TaskStatus::Queued {
            reason: "declined this task recently".into()
        }
    );
    sim.advance(4_999);
    assert!(sim.take_offers().is_empty());
    sim.advance(1);
    assert_eq!(
        sim.take_offers().len(),
        1,
        "offered again when the backoff ends"
    );
}

#[test]
fn a_missed_due_time_slashes_cancels_and_reassigns_while_time_remains() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let fast = sim.gpu_agent("op-a", "fast", FAST);
    let slow = sim.gpu_agent("op-b", "slow", SLOW);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    let offer = sim.take_offers().remove(0);
    sim.accept(&fast, t);
    sim.advance(offer.due_at.0 - sim.now.0 - 1);
    assert_eq!(
        sim.row("op-a").slashed,
        StakeUnits(0),
        "not slashed before the due time"
    );
    sim.advance(1);
    // default deadline_miss_slash_bps = 1000: 4 of 40
    let row = sim.row("op-a");
    assert_eq!(
        (row.slashed, row.active, row.delegated),
        (StakeUnits(4), StakeUnits(0), StakeUnits(96))
    );
    assert_eq!(sim.take_cancels(), [(fast.clone(), t)]);
    assert_eq!(
        sim.take_offers()
            .iter()
            .map(|o| o.agent.clone())
            .collect::<Vec<_>>(),
        [slow]
    );
    // The late agent can no longer deliver.
    assert!(sim.core.handle_proof_delivered(sim.now, &fast, t).is_err());
    let history = sim.core.task(t).unwrap().history;
    assert!(history.iter().any(|h| matches!(
        h.event,
        TaskEvent::DueTimeMissed {
            slashed: StakeUnits(4),
            ..
        }
    )));
}

#[test]
fn a_missed_due_time_with_no_time_left_fails_the_task() {
    let p = Policy {
        deadline_margin_pct: 0,
        deadline_margin_ms: 0,
        ..policy()
    };
    let mut sim = Sim::new(p, &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(40, 46).unwrap(); // proving predicted 45 ms: due at the deadline
    let offer = sim.take_offers().remove(0);
    assert_eq!(offer.due_at, offer.deadline.min(UnixMillis(sim.now.0 + 45)));
    sim.accept(&a, t);
    sim.advance(100);
    let TaskStatus::Failed { cause } = sim.status(t) else {
        panic!("{:?}", sim.status(t))
    };
    assert!(
        cause.contains("missed its due time")
            && cause.contains(
                "no time left to reassign it: 1 ms to the deadline, the fastest proof needs 45 ms"
            ),
        "{cause}"
    );
    assert_eq!(sim.row("op-a").slashed, StakeUnits(4));
}

#[test]
fn a_queued_task_fails_at_its_deadline_with_the_reason_it_waited() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    sim.gpu_agent("op-a", "gpu-1", FAST);
    sim.core
        .handle_stake_event(
            sim.now,
            StakeEvent::WithdrawalRequested {
                operator: "op-a".parse().unwrap(),
                amount: StakeUnits(90),
            },
        )
        .unwrap();
    let t = sim.submit(40, 5_000).unwrap();
    sim.advance(5_000);
    let TaskStatus::Failed { cause } = sim.status(t) else {
        panic!()
    };
    assert!(
        cause.contains("passed while waiting: no operator with 40 free stake; best has 10 (op-a)"),
        "{cause}"
    );
}

#[test]
fn unhealthy_or_silent_agents_are_excluded_until_they_recover() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let healthy = cuda_telemetry(0, 8 * GIB, FAST, 1_000_000_000);

    let mut hot = healthy.clone();
    hot.gpus[0].temperature_c = 88;
    sim.report(&a, hot);
    let t = sim.submit(10, MINUTE_MS).unwrap();
    assert!(sim.take_offers().is_empty());
    assert_eq!(
        sim.status(t),
        TaskStatus::Queued {
            reason: "unhealthy, e.g. op-a/gpu-1: GPU 0 at 88 °C (limit 85 °C)".into()
        }
    );
    sim.report(&a, healthy.clone());
    assert_eq!(sim.take_offers().len(), 1, "offered once it cools down");
    sim.decline(&a, t);

    let mut throttled = healthy.clone();
    throttled.gpus[0].throttle.hw_thermal_slowdown = true;
    sim.report(&a, throttled);
    let t2 = sim.submit(10, MINUTE_MS).unwrap();
    assert!(sim.take_offers().is_empty());
    assert!(
        matches!(sim.status(t2), TaskStatus::Queued { reason } if reason.contains("throttling"))
    );

    let mut ecc = healthy.clone();
    ecc.gpus[0].ecc_uncorrectable_total = Some(1);
    sim.report(&a, ecc);
    assert!(sim.take_offers().is_empty());
    // Between full admission passes (at most FULL_PASS_MIN_INTERVAL_MS apart) a waiting
    // task's reason may lag; the next report after the interval refreshes it.
    sim.advance(proofrack_coordinator::tasks::FULL_PASS_MIN_INTERVAL_MS);
    assert!(sim.take_offers().is_empty());
    assert!(
        matches!(sim.status(t2), TaskStatus::Queued { reason } if reason.contains("new uncorrectable ECC errors"))
    );
    // ECC errors stick until the agent reconnects with a new baseline.
    sim.report(&a, {
        let mut h = healthy.clone();
        h.gpus[0].ecc_uncorrectable_total = Some(1);
        h
    });
    assert!(sim.take_offers().is_empty());
    sim.disconnect(&a);
    let mut after = healthy.clone();
    after.gpus[0].ecc_uncorrectable_total = Some(1);
    sim.agent_with("op-a", "gpu-1", after, 4);
    assert_eq!(
        sim.take_offers().iter().map(|o| o.task).collect::<Vec<_>>(),
        [t2]
    );
    sim.accept(&a, t2);
    sim.prove(&a, t2, true);

    sim.silence(&a);
    sim.advance(10_001);
    let t3 = sim.submit(10, MINUTE_MS).unwrap();
    assert!(sim.take_offers().is_empty());
    assert_eq!(
        sim.status(t3),
        TaskStatus::Queued {
            reason: "no agent has fresh telemetry (newest is 10 s old, limit 10 s)".into()
        }
    );
}

#[test]
fn submissions_are_validated_with_clear_errors() {
    let p = Policy {
        queue_capacity: 2,
        ..policy()
    };
    let mut sim = Sim::new(p, &[("op-a", 100)]);
    let spec = |circuit: &str, collateral, deadline| proofrack_coordinator::TaskSpec {
        circuit: circuit.into(),
        inputs: std::sync::Arc::from(&b""[..]),
        collateral: StakeUnits(collateral),
        deadline,
        client: "c".into(),
        request_id: collateral as u64 + deadline.0,
    };
    let now = sim.now;
    let later = UnixMillis(now.0 + MINUTE_MS);
    let err = sim
        .core
        .handle_submit(now, spec("cube", 1, later))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown circuit \"cube\"; registered circuits: square"
    );
    assert_eq!(
        sim.core.handle_submit(now, spec("square", 0, later)),
        Err(SubmitRejected::ZeroCollateral)
    );
    assert!(matches!(
        sim.core.handle_submit(now, spec("square", 1, now)),
        Err(SubmitRejected::DeadlinePassed { .. })
    ));
    let err = sim
        .core
        .handle_submit(now, spec("square", 1, UnixMillis(now.0 + 500)))
        .unwrap_err();
    assert!(
        matches!(err, SubmitRejected::DeadlineTooShort { fastest: None, .. }),
        "{err}"
    );
    let err = sim
        .core
        .handle_submit(now, spec("square", 101, later))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "collateral 101 exceeds every operator's delegated stake (largest 100); submit at most 100"
    );
    sim.gpu_agent("op-a", "gpu-1", SLOW);
    let err = sim
        .core
        .handle_submit(now, spec("square", 1, UnixMillis(now.0 + 1_500)))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SubmitRejected::DeadlineTooShort {
                fastest: Some(_),
                ..
            }
        ),
        "{err}"
    );
    let first = sim
        .core
        .handle_submit(now, spec("square", 1, later))
        .unwrap();
    assert_eq!(
        sim.core.handle_submit(now, spec("square", 1, later)),
        Ok(first),
        "a repeated request is the same task"
    );
    sim.core
        .handle_submit(now, spec("square", 2, later))
        .unwrap();
    assert_eq!(
        sim.core.handle_submit(now, spec("square", 3, later)),
        Err(SubmitRejected::QueueFull { capacity: 2 })
    );
}

#[test]
fn a_disconnect_withdraws_outstanding_offers_but_keeps_accepted_tasks_bound() {
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let a = sim.gpu_agent("op-a", "fast", FAST);
    let b = sim.gpu_agent("op-b", "slow", SLOW);
    let t1 = sim.submit(40, MINUTE_MS).unwrap();
    sim.accept(&a, t1);
    let t2 = sim.submit(40, MINUTE_MS).unwrap();
    assert_eq!(sim.take_offers().last().unwrap().agent, a);
    sim.disconnect(&a);
    assert!(
        matches!(sim.status(t1), TaskStatus::Proving { .. }),
        "accepted work stays bound"
    );
    assert_eq!(
        sim.take_offers()
            .iter()
            .map(|o| (o.agent.clone(), o.task))
            .collect::<Vec<_>>(),
        [(b, t2)]
    );
    // The agent comes back and delivers in time.
    sim.agent_with(
        "op-a",
        "fast",
        cuda_telemetry(1, 8 * GIB, FAST, 1_000_000_000),
        4,
    );
    sim.prove(&a, t1, true);
    assert!(matches!(sim.status(t1), TaskStatus::Verified { .. }));
    assert_eq!(sim.row("op-a").active, StakeUnits(0));
}

#[test]
fn an_accept_after_the_stake_was_withdrawn_is_refused_and_the_task_requeued() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    assert_eq!(sim.take_offers().len(), 1);
    sim.core
        .handle_stake_event(
            sim.now,
            StakeEvent::WithdrawalRequested {
                operator: "op-a".parse().unwrap(),
                amount: StakeUnits(70),
            },
        )
        .unwrap();
    let err = sim
        .core
        .handle_offer_reply(sim.now, &a, t, OfferReply::Accept)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            OfferReplyRejected::BindFailed {
                source: BindRejected::InsufficientFreeStake { .. },
                ..
            }
        ),
        "{err}"
    );
    sim.collect();
    assert!(matches!(sim.status(t), TaskStatus::Queued { .. }));
    assert_eq!(sim.row("op-a").active, StakeUnits(0));
    assert!(sim.take_offers().is_empty(), "30 free cannot cover 40");
    sim.core
        .handle_stake_event(
            sim.now,
            StakeEvent::Delegated {
                operator: "op-a".parse().unwrap(),
                amount: StakeUnits(10),
            },
        )
        .unwrap();
    sim.collect();
    assert_eq!(
        sim.take_offers().len(),
        1,
        "offered again as soon as stake frees"
    );
}

#[test]
fn the_shell_is_told_when_to_wake_up() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    assert_eq!(sim.core.poll_timeout(), None);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    let offer = sim.take_offers().remove(0);
    assert_eq!(sim.core.poll_timeout(), Some(offer.offer_expires));
    sim.accept(&a, t);
    assert_eq!(sim.core.poll_timeout(), Some(offer.due_at));
    sim.core.handle_proof_delivered(sim.now, &a, t).unwrap();
    assert_eq!(sim.core.poll_timeout(), None, "no due time while verifying");
}

#[test]
fn queries_show_stake_agents_and_history() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    sim.accept(&a, t);
    let rows = sim.core.agent_rows(sim.now);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].tasks, [t]);
    assert_eq!(rows[0].telemetry_age_ms, Some(0));
    assert!(
        rows[0]
            .hardware
            .contains("GPU 0 Test GPU 8.0 GiB free of 16.0 GiB"),
        "{}",
        rows[0].hardware
    );
    assert!(rows[0].health.is_empty());
    assert_eq!(rows[0].msm_g1_points_per_sec, Some(FAST));
    let ledger = sim.core.ledger_rows();
    assert_eq!(ledger[0].active, StakeUnits(40));
    let view = sim.core.task(t).unwrap();
    assert_eq!(
        (view.client.as_str(), view.collateral),
        ("client-1", StakeUnits(40))
    );
    // History lines show their times from the moment of the event, relative and absolute.
    let kinds: Vec<String> = view.history.iter().map(|h| h.to_string()).collect();
    assert!(
        kinds[0].starts_with(
            "submitted by client-1: circuit square, collateral 40, deadline in 1 m, at "
        ),
        "{kinds:?}"
    );
    assert!(
        kinds[1].starts_with("offered to op-a/gpu-1 (predicted proving time 45 ms; due in "),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .all(|k| !k.contains(&sim.now.0.to_string()[..6])),
        "no raw epoch milliseconds: {kinds:?}"
    );
    assert!(
        kinds[2].starts_with("accepted by op-a/gpu-1; 40 of op-a's stake bound"),
        "{kinds:?}"
    );
    assert!(sim.effects.iter().any(|e| matches!(
        e,
        Effect::TaskUpdate {
            status: TaskStatus::Proving { .. },
            ..
        }
    )));
    let _ = agent_id("op-a", "gpu-1");
}

/// Cost of admission at the bounds: a full default queue (1024 tasks) that fits nowhere,
/// while a 64-agent fleet reports telemetry once a second each. Prints the CPU time the core
/// spends per second of fleet time. Run with
/// `cargo test -p proofrack-coordinator --test scenarios -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn measure_admission_cost_at_the_bounds() {
    let mut sim = Sim::new(Policy::default(), &[("op-a", 1_000_000)]);
    let agents: Vec<_> = (0..64)
        .map(|i| {
            sim.agent_with(
                "op-a",
                &format!("gpu-{i}"),
                cuda_telemetry(1, 16 << 20, FAST, 1_000_000_000),
                1,
            )
        })
        .collect();
    for _ in 0..1024 {
        sim.submit(1, 10 * MINUTE_MS).unwrap();
    }
    assert!(
        sim.take_offers().is_empty(),
        "16 MiB agents fit no 41 MiB task"
    );
    let seconds = 10u64;
    let started = std::time::Instant::now();
    for i in 0..seconds * 64 {
        sim.now = UnixMillis(sim.now.0 + 1_000 / 64);
        let a = &agents[(i % 64) as usize];
        sim.core
            .handle_telemetry(
                sim.now,
                a,
                cuda_telemetry(2 + i, 16 << 20, FAST, 1_000_000_000),
            )
            .unwrap();
        while sim.core.poll_effect().is_some() {}
    }
    let per_second = started.elapsed() / seconds as u32;
    eprintln!("1024 waiting tasks, 64 agents reporting every second: {per_second:?} of core time per second");
}

#[test]
fn each_slash_is_announced_to_the_shell_with_its_attempt() {
    use proofrack_coordinator::tasks::SlashReason;
    let mut sim = Sim::new(policy(), &[("op-a", 100), ("op-b", 100)]);
    let fast = sim.gpu_agent("op-a", "fast", FAST);
    let slow = sim.gpu_agent("op-b", "slow", SLOW);
    let t = sim.submit(40, MINUTE_MS).unwrap();
    let offer = sim.take_offers().remove(0);
    sim.accept(&fast, t);
    sim.advance(offer.due_at.0 - sim.now.0);
    sim.take_offers();
    sim.accept(&slow, t);
    sim.prove(&slow, t, false);
    let slashes: Vec<Effect> = sim
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::StakeSlashed { .. }))
        .cloned()
        .collect();
    assert_eq!(
        slashes,
        [
            Effect::StakeSlashed {
                task: t,
                attempt: 0,
                operator: "op-a".parse().unwrap(),
                amount: StakeUnits(4),
                reason: SlashReason::MissedDueTime,
            },
            Effect::StakeSlashed {
                task: t,
                attempt: 1,
                operator: "op-b".parse().unwrap(),
                amount: StakeUnits(20),
                reason: SlashReason::InvalidProof,
            },
        ]
    );
}

#[test]
fn stake_falling_at_the_source_stops_new_offers_and_bound_tasks_go_on() {
    use proofrack_coordinator::ledger::OutsideStake;
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let a = sim.gpu_agent("op-a", "gpu-1", FAST);
    let t1 = sim.submit(40, MINUTE_MS).unwrap();
    sim.take_offers();
    sim.accept(&a, t1);
    // 80 slashed elsewhere: the chain has 20, 40 is bound here.
    let chain = OutsideStake {
        delegated: StakeUnits(20),
        withdrawing: StakeUnits(0),
        delegated_ever: StakeUnits(100),
        withdrawn: StakeUnits(0),
        slashed: StakeUnits(80),
    };
    let op = "op-a".parse().unwrap();
    let sync = sim.core.handle_outside_stake(sim.now, &op, chain).unwrap();
    assert_eq!(
        (sync.shortfall, sync.free_after),
        (StakeUnits(20), StakeUnits(0))
    );
    let t2 = sim.submit(10, MINUTE_MS).unwrap();
    assert!(
        sim.take_offers().is_empty(),
        "no new offers while stake is short"
    );
    // The bound task goes on and settles; its release brings the ledger to the chain's
    // figures at once (none of the 40 becomes free), and t2 runs on the 20 that is there.
    sim.advance(20);
    sim.prove(&a, t1, true);
    let row = sim.row("op-a");
    assert_eq!(
        (row.delegated, row.slashed),
        (StakeUnits(20), StakeUnits(80))
    );
    assert_eq!(
        sim.take_offers().iter().map(|o| o.task).collect::<Vec<_>>(),
        [t2]
    );
}

#[test]
fn a_stale_stake_source_stops_new_offers_with_the_reason() {
    let mut sim = Sim::new(policy(), &[("op-a", 100)]);
    let _a = sim.gpu_agent("op-a", "gpu-1", FAST);
    sim.core
        .handle_stake_frozen(sim.now, Some("chain node unreachable".into()));
    let t = sim.submit(10, MINUTE_MS).unwrap();
    assert!(sim.take_offers().is_empty());
    match sim.status(t) {
        TaskStatus::Queued { reason } => assert_eq!(
            reason,
            "no new offers while the stake source is stale: chain node unreachable"
        ),
        other => panic!("should wait, is {other:?}"),
    }
    sim.core.handle_stake_frozen(sim.now, None);
    sim.collect();
    assert_eq!(
        sim.take_offers().iter().map(|o| o.task).collect::<Vec<_>>(),
        [t]
    );
}

#[test]
fn an_agent_slower_than_its_calibration_stops_getting_the_tasks_it_cannot_finish_first() {
    let mut sim = Sim::new(policy(), &[("op-a", 1_000), ("op-b", 1_000)]);
    // The optimist's calibration says 10M points/s; its real proofs take 2 s.
    let optimist = sim.gpu_agent("op-a", "optimist", FAST);
    let honest = sim.gpu_agent("op-b", "honest", FAST / 2);
    let first = sim.submit(40, MINUTE_MS).unwrap();
    let offers = sim.take_offers();
    assert_eq!(
        offers[0].agent, optimist,
        "calibrated, the optimist is fastest"
    );
    let calibrated_ms = offers[0].predicted_proving_ms;
    sim.accept(&optimist, first);
    sim.core
        .handle_proof_delivered(sim.now, &optimist, first)
        .unwrap();
    sim.core
        .handle_proof_verified(sim.now, &optimist, first, true, 2_000)
        .unwrap();
    sim.collect();
    let factor = sim.core.speed_factor_permille(&optimist);
    assert!(
        factor > 2_000,
        "learned from a proof 40x slower than calibrated: {factor}"
    );
    assert_eq!(sim.core.speed_factor_permille(&honest), 1_000);

    let second = sim.submit(40, MINUTE_MS).unwrap();
    let offers = sim.take_offers();
    assert_eq!(
        offers[0].agent, honest,
        "the optimist's learned speed now finishes later than the honest agent"
    );
    assert_eq!(offers[0].task, second);
    let verdicts = match &sim.core.task(second).unwrap().history[1].event {
        TaskEvent::Offered { verdicts, .. } => verdicts.clone(),
        other => panic!("expected an offer, got {other:?}"),
    };
    let optimist_fit = verdicts
        .iter()
        .find(|v| v.agent == optimist)
        .and_then(|v| v.fit.as_ref().ok())
        .expect("the optimist still fits, only later");
    assert_eq!(
        optimist_fit.predicted_proving_ms,
        proofrack_coordinator::tasks::apply_speed_factor(calibrated_ms, factor)
    );
}

/// A task listing looks at a bounded number of tasks per request (a reader who may see none of
/// them must not hold the core's lock for a walk over all of them), and its pages still cover
/// every task exactly once, newest first, whatever the reader may see.
#[test]
fn a_task_listing_stops_after_its_scan_bound_and_its_pages_cover_every_task_once() {
    let mut sim = Sim::new(policy(), &[("op-a", 1_000)]);
    let mut submitted: Vec<TaskId> = Vec::new();
    let mut client_2: Vec<TaskId> = Vec::new();
    for i in 0..8 {
        let client = if i % 2 == 0 { "client-1" } else { "client-2" };
        let task = sim.submit_as(client, 10, MINUTE_MS).unwrap();
        submitted.insert(0, task);
        if client == "client-2" {
            client_2.insert(0, task);
        }
    }
    // Reads everything, 3 tasks looked at per request: pages of at most 3 rows, in order.
    let (mut seen, mut before, mut pages) = (Vec::new(), None, 0);
    loop {
        let (rows, next) = sim
            .core
            .task_list_scanning(None, before, 50, 3, |_, _| true);
        assert!(
            rows.len() <= 3,
            "{} rows from 3 tasks looked at",
            rows.len()
        );
        seen.extend(rows.iter().map(|r| r.id));
        pages += 1;
        match next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, submitted, "every task once, newest first");
    assert_eq!(pages, 3);
    // A reader who may see only client-2's tasks: some pages are empty, yet every one of its
    // tasks is found, and nothing else.
    let (mut seen, mut before, mut empty_pages) = (Vec::new(), None, 0);
    loop {
        let (rows, next) = sim
            .core
            .task_list_scanning(None, before, 50, 1, |client, _| client == "client-2");
        empty_pages += usize::from(rows.is_empty());
        seen.extend(rows.iter().map(|r| r.id));
        match next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen, client_2,
        "client-2's tasks, newest first, and only those"
    );
    assert_eq!(
        empty_pages, 4,
        "one task looked at per page: client-1's pages are empty"
    );
    // The row limit still pages as before: 2 rows, and the next page starts below the last.
    let (rows, next) = sim.core.task_list(None, None, 2, |_, _| true);
    assert_eq!(rows.len(), 2);
    assert_eq!(next, Some(rows[1].id));
}
