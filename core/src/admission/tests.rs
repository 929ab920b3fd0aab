use super::testkit::{agent_id, cpu_telemetry, cuda_telemetry, shape};
use super::*;
use proofrack_common::telemetry::Telemetry;

const GIB: u64 = 1 << 30;
const NOW: UnixMillis = UnixMillis(1_000_000);

struct Agent {
    id: AgentId,
    connected: bool,
    telemetry: Option<AgentTelemetry>,
    slots: u32,
    assignments: Vec<Assignment>,
}

fn agent(op: &str, name: &str, report: Telemetry) -> Agent {
    Agent {
        id: agent_id(op, name),
        connected: true,
        telemetry: Some(AgentTelemetry::update(None, report, NOW)),
        slots: 1,
        assignments: Vec::new(),
    }
}

fn gpu(op: &str, name: &str, free_gib: u64, msm: u64) -> Agent {
    agent(
        op,
        name,
        cuda_telemetry(1, free_gib * GIB, msm, 1_000_000_000),
    )
}

fn stake(entries: &[(&str, u128)]) -> BTreeMap<OperatorId, StakeUnits> {
    entries
        .iter()
        .map(|(o, s)| (OperatorId::new(*o).unwrap(), StakeUnits(*s)))
        .collect()
}

struct Case {
    agents: Vec<Agent>,
    stake: BTreeMap<OperatorId, StakeUnits>,
    collateral: u128,
    shape: ProofShape,
    deadline: UnixMillis,
    declined: BTreeMap<AgentId, UnixMillis>,
    failed_on: BTreeSet<AgentId>,
    policy: Policy,
}

impl Case {
    fn new(agents: Vec<Agent>) -> Case {
        Case {
            agents,
            stake: stake(&[("op-a", 100), ("op-b", 100)]),
            collateral: 40,
            shape: shape(16),
            deadline: UnixMillis(NOW.0 + 600_000),
            declined: BTreeMap::new(),
            failed_on: BTreeSet::new(),
            policy: Policy::default(),
        }
    }

    fn run(&self) -> AdmissionDecision {
        let fleet: Vec<AgentSnapshot<'_>> = self
            .agents
            .iter()
            .map(|a| AgentSnapshot {
                draining: false,
                id: &a.id,
                connected: a.connected,
                telemetry: a.telemetry.as_ref(),
                max_concurrent_tasks: a.slots,
                assignments: &a.assignments,
                assignments_memory_bytes: AgentSnapshot::sum_memory(&a.assignments),
                speed_factor_permille: 1_000,
                breaker_open_until: None,
            })
            .collect();
        let demand = TaskDemand {
            task: TaskId(7),
            shape: self.shape,
            collateral: StakeUnits(self.collateral),
            deadline: self.deadline,
            declined_until: &self.declined,
            failed_on: &self.failed_on,
        };
        let decision = admit(&demand, &fleet, &self.stake, NOW, &self.policy);
        // The ranked walk (the dispatcher's path) agrees with `admit` on every case.
        let mut sorted = fleet.clone();
        sorted.sort_by(|a, b| a.id.cmp(b.id));
        let ranked = RankedFleet::build(sorted.iter().copied(), NOW, &self.policy);
        let snapshot_of = |id: &AgentId| *sorted.iter().find(|a| a.id == id).expect("in fleet");
        for keep in [1, 2, 8] {
            let choice = ranked.choose(&demand, &self.stake, &self.policy, keep, snapshot_of);
            match &decision.outcome {
                Outcome::Offer(p) => {
                    let c = choice.expect("the ranked walk offers when admit does");
                    assert_eq!(&c.placement, p);
                    assert_eq!(c.agents_considered, decision.verdicts.len());
                    let misfits = decision.verdicts.iter().filter(|v| v.fit.is_err()).count();
                    assert!(
                        c.agents_rejected <= misfits,
                        "{} > {misfits}",
                        c.agents_rejected
                    );
                    assert!(!c.verdicts.is_empty() && c.verdicts.len() <= keep);
                    assert_eq!(
                        c.verdicts[0].agent, p.agent,
                        "the chosen agent's verdict first"
                    );
                    // Every kept verdict is the full decision's verdict on that agent.
                    for v in &c.verdicts {
                        let full = decision.verdicts.iter().find(|f| f.agent == v.agent);
                        assert_eq!(Some(v), full);
                    }
                }
                Outcome::NoFit(_) => assert!(
                    choice.is_none(),
                    "the ranked walk offers when admit does not"
                ),
            }
        }
        decision
    }

    fn offered_to(&self) -> AgentId {
        match self.run().outcome {
            Outcome::Offer(p) => p.agent,
            Outcome::NoFit(n) => panic!("expected an offer, got no fit: {n}"),
        }
    }

    fn no_fit(&self) -> String {
        match self.run().outcome {
            Outcome::Offer(p) => panic!("expected no fit, offered to {}", p.agent),
            Outcome::NoFit(n) => n.to_string(),
        }
    }
}

#[test]
fn picks_the_earliest_finish_and_breaks_ties_by_agent_id() {
    let case = Case::new(vec![
        gpu("op-b", "slow", 8, 1_000_000),
        gpu("op-a", "fast", 8, 10_000_000),
    ]);
    assert_eq!(case.offered_to(), agent_id("op-a", "fast"));
    let tie = Case::new(vec![
        gpu("op-b", "x", 8, 1_000_000),
        gpu("op-a", "y", 8, 1_000_000),
    ]);
    assert_eq!(tie.offered_to(), agent_id("op-a", "y"));
    let d = tie.run();
    assert_eq!(
        d.verdicts
            .iter()
            .map(|v| v.agent.to_string())
            .collect::<Vec<_>>(),
        ["op-a/y", "op-b/x"]
    );
}

#[test]
fn placement_predicts_finish_and_due_time_from_calibration_and_margin() {
    let case = Case::new(vec![gpu("op-a", "g", 8, 1_000_000)]);
    let Outcome::Offer(p) = case.run().outcome else {
        panic!("no offer")
    };
    let proving = shape(16)
        .estimate_proving_ms(&cuda_telemetry(1, 8 * GIB, 1_000_000, 1_000_000_000).calibration);
    assert_eq!(p.predicted_proving_ms, proving);
    assert_eq!(p.start_at, NOW);
    assert_eq!(p.predicted_done_at, UnixMillis(NOW.0 + proving));
    assert_eq!(
        p.due_at,
        UnixMillis(NOW.0 + proving + Policy::default().deadline_margin_for(proving))
    );
    assert_eq!(p.memory_bytes, shape(16).estimate_memory_bytes());
}

#[test]
fn insufficient_stake_is_reported_with_the_best_operator() {
    let mut case = Case::new(vec![
        gpu("op-a", "g", 8, 1_000_000),
        gpu("op-b", "h", 8, 1_000_000),
    ]);
    case.stake = stake(&[("op-a", 25), ("op-b", 10)]);
    assert_eq!(
        case.no_fit(),
        "no operator with 40 free stake; best has 25 (op-a)"
    );
    case.stake = stake(&[]);
    assert_eq!(
        case.no_fit(),
        "no operator with 40 free stake; their operators have no stake in the ledger"
    );
    case.stake = stake(&[("op-a", 40)]);
    assert_eq!(case.offered_to(), agent_id("op-a", "g"));
}

#[test]
fn a_task_bigger_than_every_agents_memory_is_offered_to_none() {
    let mut case = Case::new(vec![
        gpu("op-a", "gpu-1", 1, 1_000_000),
        gpu("op-b", "box-2", 2, 1_000_000),
    ]);
    case.shape = shape(22);
    let needed = format::bytes(shape(22).estimate_memory_bytes());
    assert_eq!(
        case.no_fit(),
        format!("needs {needed}; largest free memory is 2.0 GiB (agent op-b/box-2)")
    );
    let d = case.run();
    for v in &d.verdicts {
        assert!(
            matches!(
                v.fit.as_ref().unwrap_err()[..],
                [Misfit::InsufficientMemory { .. }]
            ),
            "{v:?}"
        );
    }
}

#[test]
fn memory_reserved_by_assigned_tasks_is_not_free() {
    let mut a = gpu("op-a", "g", 1, 1_000_000);
    a.slots = 4;
    a.assignments.push(Assignment {
        task: TaskId(1),
        memory_bytes: GIB - 1024,
        predicted_done_at: NOW,
    });
    let case = Case::new(vec![a]);
    let reason = case.no_fit();
    assert!(
        reason.starts_with("needs 41.0 MiB") && reason.contains("largest free memory is 1.0 KiB"),
        "{reason}"
    );
}

#[test]
fn cpu_agents_fit_by_host_memory() {
    let case = Case::new(vec![agent(
        "op-a",
        "cpu",
        cpu_telemetry(1, 4 * GIB, 1_000_000, 100_000_000),
    )]);
    assert_eq!(case.offered_to(), agent_id("op-a", "cpu"));
    let mut small = Case::new(vec![agent(
        "op-a",
        "cpu",
        cpu_telemetry(1, 1 << 20, 1_000_000, 100_000_000),
    )]);
    small.shape = shape(16);
    assert!(small
        .no_fit()
        .contains("largest free memory is 1.0 MiB (agent op-a/cpu)"));
}

#[test]
fn too_slow_for_the_deadline_names_the_fastest_agent() {
    // shape 2^20 at 1e6 points/s: about 7.4 s of MSM; deadline in 5 s.
    let mut case = Case::new(vec![
        gpu("op-a", "slow", 8, 1_000_000),
        gpu("op-b", "box-2", 8, 2_000_000),
    ]);
    case.shape = shape(20);
    case.deadline = UnixMillis(NOW.0 + 5_000);
    let reason = case.no_fit();
    assert!(
        reason.starts_with(
            "would finish in 3.6 s, deadline in 5 s (fastest: op-b/box-2; safety margin 1.7 s)"
        ),
        "{reason}"
    );
}

#[test]
fn queue_wait_on_a_busy_agent_delays_its_finish() {
    let mut busy = gpu("op-a", "busy", 8, 10_000_000);
    busy.assignments.push(Assignment {
        task: TaskId(1),
        memory_bytes: 0,
        predicted_done_at: UnixMillis(NOW.0 + 60_000),
    });
    let idle = gpu("op-b", "idle", 8, 1_000_000);
    let case = Case::new(vec![busy, idle]);
    assert_eq!(case.offered_to(), agent_id("op-b", "idle"));
}

#[test]
fn per_agent_task_limit_excludes() {
    let mut a = gpu("op-a", "g", 8, 1_000_000);
    a.slots = 8;
    for t in 0..4 {
        a.assignments.push(Assignment {
            task: TaskId(t),
            memory_bytes: 0,
            predicted_done_at: NOW,
        });
    }
    let case = Case::new(vec![a]);
    assert_eq!(case.no_fit(), "at the limit of 4 tasks per agent");
}

#[test]
fn stale_or_missing_telemetry_excludes() {
    let mut a = gpu("op-a", "g", 8, 1_000_000);
    a.telemetry.as_mut().unwrap().received_at = UnixMillis(NOW.0 - 12_000);
    let mut b = gpu("op-b", "h", 8, 1_000_000);
    b.telemetry.as_mut().unwrap().received_at = UnixMillis(NOW.0 - 30_000);
    assert_eq!(
        Case::new(vec![a, b]).no_fit(),
        "no agent has fresh telemetry (newest is 12 s old, limit 10 s)"
    );

    let mut silent = gpu("op-a", "g", 8, 1_000_000);
    silent.telemetry = None;
    assert_eq!(
        Case::new(vec![silent]).no_fit(),
        "no agent has sent telemetry yet"
    );

    let mut fresh_limit = gpu("op-a", "g", 8, 1_000_000);
    fresh_limit.telemetry.as_mut().unwrap().received_at = UnixMillis(NOW.0 - 10_000);
    assert_eq!(
        Case::new(vec![fresh_limit]).offered_to(),
        agent_id("op-a", "g")
    );
}

#[test]
fn no_connected_agents() {
    assert_eq!(Case::new(vec![]).no_fit(), "no agents connected");
    let mut gone = gpu("op-a", "g", 8, 1_000_000);
    gone.connected = false;
    let case = Case::new(vec![gone]);
    assert_eq!(case.no_fit(), "no agents connected");
    assert_eq!(case.run().verdicts[0].fit, Err(vec![Misfit::Disconnected]));
}

#[test]
fn overheating_at_slowdown_or_policy_limit_excludes() {
    let mut hot = gpu("op-a", "g", 8, 1_000_000);
    hot.telemetry.as_mut().unwrap().report.gpus[0].temperature_c = 90; // slowdown threshold is 90
    assert_eq!(
        Case::new(vec![hot]).no_fit(),
        "unhealthy, e.g. op-a/g: GPU 0 at 90 °C (limit 85 °C)"
    );

    let mut warm = gpu("op-a", "g", 8, 1_000_000);
    let t = warm.telemetry.as_mut().unwrap();
    t.report.gpus[0].temperature_c = 80;
    t.report.gpus[0].temperature_slowdown_c = Some(80);
    assert_eq!(
        Case::new(vec![warm]).no_fit(),
        "unhealthy, e.g. op-a/g: GPU 0 at 80 °C (limit 80 °C)"
    );

    let mut ok = gpu("op-a", "g", 8, 1_000_000);
    ok.telemetry.as_mut().unwrap().report.gpus[0].temperature_c = 84;
    assert_eq!(Case::new(vec![ok]).offered_to(), agent_id("op-a", "g"));
}

#[test]
fn new_uncorrectable_ecc_errors_exclude_until_reconnect() {
    let first = cuda_telemetry(1, 8 * GIB, 1_000_000, 1_000_000_000);
    let mut second = first.clone();
    second.seq = 2;
    second.gpus[0].ecc_uncorrectable_total = Some(2);
    let t1 = AgentTelemetry::update(None, first, NOW);
    let t2 = AgentTelemetry::update(Some(t1), second.clone(), NOW);
    let mut a = gpu("op-a", "g", 8, 1_000_000);
    a.telemetry = Some(t2);
    assert!(Case::new(vec![a])
        .no_fit()
        .contains("GPU 0 has 2 new uncorrectable ECC errors"));

    // A reconnect (no previous report) takes the current count as the new baseline.
    let mut b = gpu("op-a", "g", 8, 1_000_000);
    b.telemetry = Some(AgentTelemetry::update(None, second, NOW));
    assert_eq!(Case::new(vec![b]).offered_to(), agent_id("op-a", "g"));
}

#[test]
fn thermal_or_power_brake_throttling_excludes_but_power_cap_does_not() {
    let mut a = gpu("op-a", "g", 8, 1_000_000);
    let throttle = &mut a.telemetry.as_mut().unwrap().report.gpus[0].throttle;
    throttle.hw_power_brake_slowdown = true;
    throttle.raw = 0x80;
    assert!(Case::new(vec![a]).no_fit().contains("GPU 0 is throttling"));
    let mut b = gpu("op-a", "g", 8, 1_000_000);
    b.telemetry.as_mut().unwrap().report.gpus[0]
        .throttle
        .sw_power_cap = true;
    assert_eq!(Case::new(vec![b]).offered_to(), agent_id("op-a", "g"));
}

#[test]
fn cpu_agents_ignore_gpu_health() {
    let mut report = cpu_telemetry(1, 4 * GIB, 1_000_000, 100_000_000);
    let mut gpu_report = cuda_telemetry(1, GIB, 1, 1).gpus;
    gpu_report[0].temperature_c = 100;
    report.gpus = gpu_report;
    assert_eq!(
        Case::new(vec![agent("op-a", "cpu", report)]).offered_to(),
        agent_id("op-a", "cpu")
    );
}

#[test]
fn agents_that_failed_the_task_are_a_last_resort() {
    let mut case = Case::new(vec![
        gpu("op-a", "fast", 8, 10_000_000),
        gpu("op-b", "slow", 8, 1_000_000),
    ]);
    case.failed_on.insert(agent_id("op-a", "fast"));
    assert_eq!(case.offered_to(), agent_id("op-b", "slow"));
    case.stake = stake(&[("op-a", 100)]);
    assert_eq!(case.offered_to(), agent_id("op-a", "fast"));
}

#[test]
fn declined_agents_are_skipped_until_the_backoff_ends() {
    let mut case = Case::new(vec![gpu("op-a", "g", 8, 1_000_000)]);
    case.declined
        .insert(agent_id("op-a", "g"), UnixMillis(NOW.0 + 1));
    assert_eq!(case.no_fit(), "declined this task recently");
    case.declined.insert(agent_id("op-a", "g"), NOW);
    assert_eq!(case.offered_to(), agent_id("op-a", "g"));
}

#[test]
fn partial_reasons_say_how_many_agents_each_excluded() {
    let mut hot = gpu("op-a", "hot", 8, 1_000_000);
    hot.telemetry.as_mut().unwrap().report.gpus[0].temperature_c = 95;
    let small = gpu("op-b", "small", 0, 1_000_000);
    let mut case = Case::new(vec![hot, small]);
    case.stake = stake(&[("op-a", 100), ("op-b", 30)]);
    let reason = case.no_fit();
    assert!(
        reason
            .starts_with("1 of 2 agents: unhealthy, e.g. op-a/hot: GPU 0 at 95 °C (limit 85 °C); "),
        "{reason}"
    );
    assert!(
        reason.contains("1 of 2 agents: operator has under 40 free stake (best 30, op-b); "),
        "{reason}"
    );
    assert!(reason.contains("1 of 2 agents: needs "), "{reason}");
    let d = case.run();
    assert_eq!(d.verdicts.len(), 2);
    let small_misfits = d.verdicts[1].fit.as_ref().unwrap_err();
    assert_eq!(small_misfits.len(), 2, "{small_misfits:?}");
}
