//! The ranked walk against admission's full decision over random fleets: agents of a few
//! speeds and learned factors, busy slots, reserved memory, stale or missing telemetry,
//! drained agents, operators short of stake, declined and failed agents. Each sequence also
//! offers to the chosen agent and refreshes it, as a dispatcher's pass does, and checks the
//! next task again. Fixed seed: a failure replays.

use super::testkit::{agent_id, cuda_telemetry, shape};
use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const NOW: UnixMillis = UnixMillis(10_000_000);
const GIB: u64 = 1 << 30;

#[derive(Clone, Debug)]
struct AgentCase {
    operator: u8,
    speed: u8,
    factor: u8,
    free_gib: u64,
    slots: u32,
    busy_until: Vec<u64>,
    connected: bool,
    draining: bool,
    telemetry_age_ms: Option<u64>,
    declined: bool,
    failed: bool,
}

fn agent_case() -> impl Strategy<Value = AgentCase> {
    (
        (0u8..4, 0u8..3, 0u8..3, 1u64..16, 1u32..4),
        prop::collection::vec(0u64..120_000, 0..4),
        (prop::bool::weighted(0.9), prop::bool::weighted(0.1)),
        prop::option::weighted(0.9, 0u64..40_000),
        (prop::bool::weighted(0.1), prop::bool::weighted(0.1)),
    )
        .prop_map(
            |(
                (operator, speed, factor, free_gib, slots),
                busy_until,
                (connected, draining),
                telemetry_age_ms,
                (declined, failed),
            )| {
                AgentCase {
                    operator,
                    speed,
                    factor,
                    free_gib,
                    slots,
                    busy_until,
                    connected,
                    draining,
                    telemetry_age_ms,
                    declined,
                    failed,
                }
            },
        )
}

struct Agent {
    id: AgentId,
    case: AgentCase,
    telemetry: Option<AgentTelemetry>,
    assignments: Vec<Assignment>,
}

impl Agent {
    fn snapshot(&self) -> AgentSnapshot<'_> {
        AgentSnapshot {
            id: &self.id,
            connected: self.case.connected,
            draining: self.case.draining,
            telemetry: self.telemetry.as_ref(),
            max_concurrent_tasks: self.case.slots,
            assignments: &self.assignments,
            assignments_memory_bytes: AgentSnapshot::sum_memory(&self.assignments),
            speed_factor_permille: 700 + 300 * u32::from(self.case.factor),
            breaker_open_until: None,
        }
    }
}

fn agents(cases: Vec<AgentCase>) -> Vec<Agent> {
    let mut agents: Vec<Agent> = cases
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let msm = 2_000_000 * (1 + u64::from(case.speed));
            let telemetry = case.telemetry_age_ms.map(|age| {
                let report = cuda_telemetry(1, case.free_gib * GIB, msm, 500_000_000);
                AgentTelemetry::update(None, report, UnixMillis(NOW.0 - age))
            });
            let assignments = case
                .busy_until
                .iter()
                .enumerate()
                .map(|(j, done)| Assignment {
                    task: TaskId(1_000 + j as u64),
                    memory_bytes: GIB / 2,
                    predicted_done_at: UnixMillis(NOW.0 - 20_000 + done),
                })
                .collect();
            Agent {
                id: agent_id(&format!("op-{}", case.operator), &format!("gpu-{i:02}")),
                case,
                telemetry,
                assignments,
            }
        })
        .collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    agents
}

/// (tasks offered, tasks no agent fits) over the whole run.
type Tally = std::cell::Cell<(u32, u32)>;

fn check(
    cases: Vec<AgentCase>,
    stakes: [u128; 4],
    tasks: Vec<(u32, u64)>,
    tally: &Tally,
) -> Result<(), TestCaseError> {
    let mut agents = agents(cases);
    let policy = Policy::default();
    let mut free_stake: BTreeMap<OperatorId, StakeUnits> = (0..4)
        .map(|o| {
            (
                OperatorId::new(format!("op-{o}")).unwrap(),
                StakeUnits(stakes[o]),
            )
        })
        .collect();
    let declined: BTreeMap<AgentId, UnixMillis> = agents
        .iter()
        .filter(|a| a.case.declined)
        .map(|a| (a.id.clone(), UnixMillis(NOW.0 + 5_000)))
        .collect();
    let failed_on: BTreeSet<AgentId> = agents
        .iter()
        .filter(|a| a.case.failed)
        .map(|a| a.id.clone())
        .collect();
    let mut ranked = RankedFleet::build(agents.iter().map(Agent::snapshot), NOW, &policy);
    for (n, (log_size, deadline_s)) in tasks.into_iter().enumerate() {
        let demand = TaskDemand {
            task: TaskId(n as u64),
            shape: shape(log_size),
            collateral: StakeUnits(10),
            deadline: UnixMillis(NOW.0 + deadline_s * 1_000),
            declined_until: &declined,
            failed_on: &failed_on,
        };
        let fleet: Vec<AgentSnapshot<'_>> = agents.iter().map(Agent::snapshot).collect();
        let decision = admit(&demand, &fleet, &free_stake, NOW, &policy);
        let snapshot_of = |id: &AgentId| *fleet.iter().find(|a| a.id == id).unwrap();
        let choice = ranked.choose(&demand, &free_stake, &policy, 8, snapshot_of);
        match (&decision.outcome, &choice) {
            (Outcome::Offer(p), Some(c)) => {
                prop_assert_eq!(p, &c.placement);
                let (o, f) = tally.get();
                tally.set((o + 1, f));
            }
            (Outcome::NoFit(_), None) => {
                let (o, f) = tally.get();
                tally.set((o, f + 1));
            }
            (outcome, choice) => {
                return Err(TestCaseError::fail(format!(
                    "task {n}: admit {outcome:?}, ranked {:?}",
                    choice.as_ref().map(|c| &c.placement.agent)
                )))
            }
        }
        // Offer it, as the dispatcher does, and rank the agent again.
        if let Some(c) = choice {
            let i = agents
                .iter()
                .position(|a| a.id == c.placement.agent)
                .unwrap();
            agents[i].assignments.push(Assignment {
                task: demand.task,
                memory_bytes: c.placement.memory_bytes,
                predicted_done_at: c.placement.predicted_done_at,
            });
            let free = free_stake.get_mut(&c.placement.agent.operator).unwrap();
            *free = free.saturating_sub(StakeUnits(10));
            ranked.refresh(&agents[i].snapshot(), &policy);
        }
    }
    Ok(())
}

#[test]
fn the_ranked_walk_chooses_what_the_full_decision_chooses() {
    let config = Config {
        cases: 2_000,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (
        prop::collection::vec(agent_case(), 0..24),
        prop::array::uniform4(0u128..60),
        prop::collection::vec((10u32..22, 1u64..240), 1..12),
    );
    let tally = Tally::default();
    runner
        .run(&strategy, |(cases, stakes, tasks)| {
            check(cases, stakes, tasks, &tally)
        })
        .unwrap();
    // Both outcomes are exercised, not only one.
    let (offered, no_fit) = tally.get();
    assert!(
        offered > 2_000 && no_fit > 2_000,
        "offered {offered}, no fit {no_fit}"
    );
}
