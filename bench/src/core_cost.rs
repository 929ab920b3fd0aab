//! `proofrack-bench core`: what one assignment and one telemetry report cost inside the
//! coordinator's pure core, with no network and no disk.
//!
//! The coordinator's throughput at rack scale (`proofrack-bench coordinator`) is bounded by the
//! core's lock: every event runs under it. This benchmark drives the core exactly as the server
//! does, in the same shape as the rack benchmark (1,000 agents of 100 operators, batches of 64
//! submissions, each agent's replies applied as one event, the changed rows taken after every
//! event), and splits the time:
//! - **submit**: `handle_submit` for a batch, with admission and the offers it makes;
//! - **accept**: `handle_offer_reply` (binds the stake);
//! - **rows**: `take_changes` after every event (the durable rows the store commits);
//! - **telemetry**: one report per agent, before any task (idle) and with every task bound.
//!
//! Memory per bound task is the process's RSS growth over the run divided by the tasks.
//!
//! The reference in the same run is the same driver over a 10-agent fleet: admission
//! proportional to the agents that fit costs about the same per assignment whatever the
//! fleet's size, so the ratio (1,000 agents against 10) shows what the fleet's size still costs.

use crate::store::{spec, CIRCUIT};
use proofrack_bench::load::proc_stats;
use proofrack_common::telemetry::ProofShape;
use proofrack_common::testkit::{agent_id, cuda_telemetry};
use proofrack_common::{KeyId, OperatorId, StakeUnits, TaskId, UnixMillis};
use proofrack_coordinator::ledger::source::StakeEvent;
use proofrack_coordinator::{AgentId, CoordinatorCore, Effect, OfferReply, Policy};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct CoreArgs {
    /// Agents in the measured fleet.
    #[arg(long, default_value_t = 1_000)]
    agents: usize,
    /// Operators the agents are spread over.
    #[arg(long, default_value_t = 100)]
    operators: usize,
    /// Task slots per agent; the run binds agents × slots tasks (at most 128 per agent, the
    /// policy's cap).
    #[arg(long, default_value_t = 100)]
    slots: u32,
    /// Submissions per batch (the rack benchmark's client sends 64).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Agents in the reference fleet (same slots and batch).
    #[arg(long, default_value_t = 10)]
    reference_agents: usize,
}

const START: UnixMillis = UnixMillis(1_700_000_000_000);
/// The rack benchmark's circuit size (2^16 constraints).
const SHAPE: ProofShape = ProofShape {
    domain_size: 1 << 16,
    num_variables: 1 << 16,
};

/// Time and memory of one run.
struct Cost {
    tasks: u64,
    submit: Duration,
    accept: Duration,
    rows: Duration,
    events: u64,
    idle_telemetry: Duration,
    loaded_telemetry: Duration,
    telemetry_events: u64,
    rss_growth_bytes: u64,
    /// One task listing by a client that may read none of the tasks.
    list_nothing_readable: Duration,
}

impl Cost {
    fn per_assignment_us(&self) -> f64 {
        (self.submit + self.accept + self.rows).as_secs_f64() * 1e6 / self.tasks.max(1) as f64
    }
}

pub fn run(a: &CoreArgs) -> anyhow::Result<()> {
    // The policy refuses more than its cap of slots per agent, with the setting's name.
    let slots = a.slots;
    // The small reference first: pages it freed are reused by the measured run, whose RSS
    // growth is then, if anything, understated by the reference's footprint (~1% of it).
    let reference = drive(
        a.reference_agents,
        a.operators.min(a.reference_agents),
        slots,
        a.batch,
    )?;
    let measured = drive(a.agents, a.operators, slots, a.batch)?;
    for (what, c) in [("reference", &reference), ("measured", &measured)] {
        let agents = if what == "reference" {
            a.reference_agents
        } else {
            a.agents
        };
        let us = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n.max(1) as f64;
        println!(
            "{}",
            serde_json::json!({
                "bench": "core", "what": what, "agents": agents, "tasks": c.tasks,
                "us_per_assignment": c.per_assignment_us(),
                "assignments_per_sec_one_core": 1e6 / c.per_assignment_us(),
                "submit_us_per_task": us(c.submit, c.tasks),
                "accept_us_per_task": us(c.accept, c.tasks),
                "rows_us_per_event": us(c.rows, c.events),
                "events": c.events,
                "telemetry_us_idle": us(c.idle_telemetry, c.telemetry_events),
                "telemetry_us_all_bound": us(c.loaded_telemetry, c.telemetry_events),
                "idle_cores_at_1s_telemetry": c.idle_telemetry.as_secs_f64(),
                "rss_bytes_per_bound_task": c.rss_growth_bytes as f64 / c.tasks.max(1) as f64,
                "task_list_ms_nothing_readable": c.list_nothing_readable.as_secs_f64() * 1e3,
            })
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "core", "what": "ratio",
            "us_per_assignment_measured_over_reference":
                measured.per_assignment_us() / reference.per_assignment_us(),
        })
    );
    Ok(())
}

fn policy(tasks: usize, slots: u32) -> Policy {
    Policy {
        queue_capacity: tasks.max(1),
        max_unfinished_per_client: tasks.max(1),
        max_tasks_per_agent: slots,
        ..Policy::default()
    }
}

fn operator(n: usize) -> anyhow::Result<OperatorId> {
    format!("op-{n}").parse().map_err(anyhow::Error::msg)
}

/// A core with `agents` agents over `operators` operators (ample stake each), all reporting.
fn fleet(
    agents: usize,
    operators: usize,
    slots: u32,
) -> anyhow::Result<(CoordinatorCore, Vec<AgentId>)> {
    let tasks = agents * slots as usize;
    let mut core = CoordinatorCore::new(policy(tasks, slots))?;
    core.register_circuit(CIRCUIT.into(), KeyId([9; 32]), SHAPE)?;
    for op in 0..operators {
        core.handle_stake_event(
            START,
            StakeEvent::OperatorRegistered {
                operator: operator(op)?,
            },
        )?;
        core.handle_stake_event(
            START,
            StakeEvent::Delegated {
                operator: operator(op)?,
                amount: StakeUnits(1 << 100),
            },
        )?;
    }
    let mut ids = Vec::with_capacity(agents);
    for i in 0..agents {
        let id = agent_id(&format!("op-{}", i % operators), &format!("gpu-{i}"));
        core.handle_agent_connected(START, id.clone(), slots)?;
        core.handle_telemetry(START, &id, telemetry(1))?;
        ids.push(id);
    }
    let _ = core.take_changes();
    while core.poll_effect().is_some() {}
    Ok((core, ids))
}

/// An 80 GiB GPU, calibrated slow enough (a few seconds per proof) that no bound task's due
/// time passes during the run's virtual time (1 ms per batch), so nothing is slashed or
/// offered again.
fn telemetry(seq: u64) -> proofrack_common::telemetry::Telemetry {
    cuda_telemetry(seq, 80 << 30, 200_000, 10_000_000)
}

/// One telemetry report per agent, each its own event with its rows taken, as the server
/// applies them; the time for all of them.
fn telemetry_round(
    core: &mut CoordinatorCore,
    agents: &[AgentId],
    now: UnixMillis,
    seq: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for id in agents {
        core.handle_telemetry(now, id, telemetry(seq))?;
        while core.poll_effect().is_some() {}
        std::hint::black_box(core.take_changes());
    }
    Ok(started.elapsed())
}

/// Takes one event's durable rows, as the server does after every event, adding the time to
/// `rows`.
fn take_rows(core: &mut CoordinatorCore, rows: &mut Duration, events: &mut u64) {
    let started = Instant::now();
    std::hint::black_box(core.take_changes());
    *rows += started.elapsed();
    *events += 1;
}

fn rss() -> anyhow::Result<u64> {
    Ok(proc_stats::memory(&proc_stats::status_path(std::process::id()))?.rss_bytes)
}

/// Binds agents × slots tasks in batches, then measures telemetry with all of them bound.
fn drive(agents: usize, operators: usize, slots: u32, batch: usize) -> anyhow::Result<Cost> {
    let operators = operators.max(1);
    let (mut core, ids) = fleet(agents, operators, slots)?;
    let tasks = (agents * slots as usize) as u64;
    // Time moves by 1 ms per batch: fresh enough for every agent's telemetry (the policy's
    // maximum age is seconds) and it keeps the core's time-keyed caches honest.
    let mut now = START;
    let idle_telemetry = telemetry_round(&mut core, &ids, now, 2)?;
    let rss_before = rss()?;
    let (mut submit, mut accept, mut rows) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut events = 0u64;
    let mut n = 0u64;
    while n < tasks {
        let end = (n + batch as u64).min(tasks);
        // One client request: the whole batch is one event.
        let t0 = Instant::now();
        for i in n..end {
            core.handle_submit(now, spec(i, now))?;
        }
        let mut offers: BTreeMap<AgentId, Vec<TaskId>> = BTreeMap::new();
        while let Some(e) = core.poll_effect() {
            if let Effect::SendOffer(o) = e {
                offers.entry(o.agent).or_default().push(o.task);
            }
        }
        submit += t0.elapsed();
        take_rows(&mut core, &mut rows, &mut events);
        let offered: usize = offers.values().map(Vec::len).sum();
        if offered != (end - n) as usize {
            anyhow::bail!(
                "tasks {n}..{end}: {offered} offers for {} submissions; every task should fit",
                end - n
            );
        }
        // Each agent answers the offers waiting for it in one message: one event each.
        for (agent, tasks) in offers {
            let t0 = Instant::now();
            for task in tasks {
                core.handle_offer_reply(now, &agent, task, OfferReply::Accept)?;
            }
            while core.poll_effect().is_some() {}
            accept += t0.elapsed();
            take_rows(&mut core, &mut rows, &mut events);
        }
        n = end;
        now = UnixMillis(now.0 + 1);
    }
    let rss_growth_bytes = rss()?.saturating_sub(rss_before);
    let loaded_telemetry = telemetry_round(&mut core, &ids, now, 3)?;
    // A client listing tasks it may read none of: the listing's worst case, a walk over every
    // kept task under the core's lock.
    let t0 = Instant::now();
    let (listed, _) = core.task_list(None, None, 50, |_, _| false);
    let list_nothing_readable = t0.elapsed();
    std::hint::black_box(listed);
    let bound = core.ledger().bindings().count() as u64;
    if bound != tasks {
        anyhow::bail!("{bound} tasks bound after the run, not {tasks}");
    }
    Ok(Cost {
        tasks,
        submit,
        accept,
        rows,
        events,
        idle_telemetry,
        loaded_telemetry,
        telemetry_events: agents as u64,
        rss_growth_bytes,
        list_nothing_readable,
    })
}
