//! `proofrack-bench store`: what durability costs the coordinator.
//!
//! 1. Durable bind+release: the real core and the real store (redb, group-committing
//!    committer thread) on this machine's disk. Each task goes submit → offer → accept (binds
//!    the collateral) → delivered (proof bytes stored) → verified (releases it); every event's
//!    changed rows are handed to the store as the server does. `window 1` waits for each event
//!    to be durable before the next (one client, one agent); `window W` lets W tasks' events be
//!    in flight before waiting (a busy rack: many connections, so commits group). The reference
//!    in the same run is redb alone committing one tiny row per durable transaction: the cost
//!    of naive per-operation durability on the same disk.
//! 2. Restart: a store filled to what the coordinator can hold (queued tasks up to
//!    `policy.queue_capacity`, bound tasks, finished tasks up to the retention), then the
//!    restart path the server runs before it binds its socket: open, load, rebuild the core
//!    (bindings, ledger invariants). Figures for several sizes show how it scales.

use proofrack_common::telemetry::ProofShape;
use proofrack_common::testkit::{agent_id, cuda_telemetry};
use proofrack_common::{KeyId, StakeUnits, UnixMillis};
use proofrack_coordinator::ledger::source::StakeEvent;
use proofrack_coordinator::{
    AgentId, CoordinatorCore, Effect, ExtraWrite, OfferReply, Policy, Store, StoredDelivery,
    StoredProof, TaskSpec, MAX_QUEUE_CAPACITY,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct StoreArgs {
    /// Tasks bound and released per window size.
    #[arg(long, default_value_t = 4_000)]
    tasks: u64,
    /// Tasks whose events may be in flight before waiting for durability.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    windows: Vec<u64>,
    /// Queued tasks in the restart measurements (each at most the queue capacity cap).
    #[arg(long, value_delimiter = ',', default_value = "4096,16384,65536,131072")]
    restart_sizes: Vec<usize>,
    /// Reference: one-row durable commits to plain redb.
    #[arg(long, default_value_t = 2_000)]
    reference_commits: u64,
}

const START: UnixMillis = UnixMillis(1_700_000_000_000);
const OPERATORS: usize = 10;
const AGENTS: usize = 100;
const SLOTS: u32 = 4;
/// The circuit the benchmarks that drive the core directly register (`store`, `core`).
pub(crate) const CIRCUIT: &str = "bench";
/// A Groth16 proof over BN254, compressed points (what agents deliver).
const PROOF_BYTES: usize = 128;

pub fn run(a: &StoreArgs) -> anyhow::Result<()> {
    let dir = crate::setup::scratch_dir("store");
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let reference = reference_commits_per_sec(&dir.join("reference.redb"), a.reference_commits)?;
    println!(
        "{}",
        serde_json::json!({"bench": "store", "what": "reference: plain redb, one row per durable commit", "commits_per_sec": reference})
    );
    for &window in &a.windows {
        let path = dir.join(format!("bind-release-{window}.redb"));
        let (per_sec, events) = rt.block_on(bind_release(&path, a.tasks, window))?;
        println!(
            "{}",
            serde_json::json!({
                "bench": "store", "what": "durable bind+release", "window": window,
                "tasks": a.tasks, "events": events, "bind_release_per_sec": per_sec,
                "events_per_sec": per_sec * events as f64,
                "ratio_to_reference": per_sec / reference,
            })
        );
        let _ = std::fs::remove_file(&path);
    }
    for &queued in &a.restart_sizes {
        // Unfinished tasks (bound ones too) share the queue capacity.
        let queued = queued.min(MAX_QUEUE_CAPACITY - AGENTS * SLOTS as usize);
        let path = dir.join(format!("restart-{queued}.redb"));
        let r = restart(&path, queued)?;
        println!(
            "{}",
            serde_json::json!({
                "bench": "store", "what": "restart", "tasks_in_store": r.tasks,
                "queued": queued, "bound": r.bound, "finished": r.finished,
                "file_mib": r.file_bytes as f64 / (1 << 20) as f64,
                "open_ms": r.open_ms, "load_ms": r.load_ms, "restore_ms": r.restore_ms,
                "restart_ms": r.open_ms + r.load_ms + r.restore_ms,
            })
        );
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn reference_commits_per_sec(path: &Path, commits: u64) -> anyhow::Result<f64> {
    const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("reference");
    let _ = std::fs::remove_file(path);
    let db = redb::Database::create(path)?;
    let row = [7u8; 256];
    let started = Instant::now();
    for i in 0..commits {
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            t.insert(i, row.as_slice())?;
        }
        tx.commit()?;
    }
    let per_sec = commits as f64 / started.elapsed().as_secs_f64();
    drop(db);
    let _ = std::fs::remove_file(path);
    Ok(per_sec)
}

fn policy(queue_capacity: usize) -> Policy {
    Policy {
        queue_capacity,
        // One client fills the queue: its share is all of it.
        max_unfinished_per_client: queue_capacity,
        ..Policy::default()
    }
}

/// A core with the benchmark's operators (ample stake), circuit and agents.
fn fleet(policy: Policy) -> anyhow::Result<(CoordinatorCore, Vec<AgentId>)> {
    let mut core = CoordinatorCore::new(policy)?;
    core.register_circuit(
        CIRCUIT.into(),
        KeyId([9; 32]),
        ProofShape {
            domain_size: 1 << 10,
            num_variables: 1 << 10,
        },
    )?;
    for op in 0..OPERATORS {
        let operator: proofrack_common::OperatorId =
            format!("op-{op}").parse().map_err(anyhow::Error::msg)?;
        core.handle_stake_event(START, StakeEvent::OperatorRegistered { operator })?;
        let operator: proofrack_common::OperatorId =
            format!("op-{op}").parse().map_err(anyhow::Error::msg)?;
        core.handle_stake_event(
            START,
            StakeEvent::Delegated {
                operator,
                amount: StakeUnits(1 << 100),
            },
        )?;
    }
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let id = agent_id(&format!("op-{}", i % OPERATORS), &format!("gpu-{i}"));
        core.handle_agent_connected(START, id.clone(), SLOTS)?;
        core.handle_telemetry(
            START,
            &id,
            cuda_telemetry(1, 80 << 30, 50_000_000, 1_000_000_000),
        )?;
        agents.push(id);
    }
    Ok((core, agents))
}

/// Task `n` of one benchmark client, due a minute after `now`.
pub(crate) fn spec(n: u64, now: UnixMillis) -> TaskSpec {
    TaskSpec {
        circuit: CIRCUIT.into(),
        inputs: Arc::from(format!(r#"{{"x":"{n}"}}"#).into_bytes()),
        collateral: StakeUnits(1_000),
        deadline: UnixMillis(now.0 + 60_000),
        client: "client/bench".into(),
        request_id: n,
    }
}

fn offers(core: &mut CoordinatorCore) -> Vec<(AgentId, proofrack_common::TaskId)> {
    let mut out = Vec::new();
    while let Some(e) = core.poll_effect() {
        if let Effect::SendOffer(o) = e {
            out.push((o.agent, o.task));
        }
    }
    out
}

/// Tasks per second through bind and release, and events per task.
async fn bind_release(path: &Path, tasks: u64, window: u64) -> anyhow::Result<(f64, u64)> {
    let _ = std::fs::remove_file(path);
    let store = Store::open(path)?;
    let (mut core, _) = fleet(policy(MAX_QUEUE_CAPACITY))?;
    store.commit_now(core.full_changes())?;
    let proof = StoredProof {
        proof: vec![3; PROOF_BYTES],
        public_inputs: vec![[5u8; 32]],
    };
    // Virtual time stands still: telemetry stays fresh and no offer lapses, so only the core
    // and the disk are measured.
    let now = START;
    let strict = window == 1;
    let mut events = 0u64;
    let mut last_seq = 0;
    let started = Instant::now();
    let mut done = 0u64;
    while done < tasks {
        let batch = window.min(tasks - done);
        for n in done..done + batch {
            core.handle_submit(now, spec(n, now))?;
            last_seq = store.submit(core.take_changes(), Vec::new());
            if strict {
                store.durable(last_seq).await?;
            }
            let placed = offers(&mut core);
            let [(agent, task)] = placed.as_slice() else {
                anyhow::bail!("task {n} got {} offers, not one", placed.len());
            };
            core.handle_offer_reply(now, agent, *task, OfferReply::Accept)?;
            last_seq = store.submit(core.take_changes(), Vec::new());
            if strict {
                store.durable(last_seq).await?;
            }
            core.handle_proof_delivered(now, agent, *task)?;
            let delivery = StoredDelivery {
                proof: proof.proof.clone(),
                public_inputs: proof.public_inputs.clone(),
                proving_ms: 1,
            };
            last_seq = store.submit(
                core.take_changes(),
                vec![ExtraWrite::Delivery(*task, delivery)],
            );
            if strict {
                store.durable(last_seq).await?;
            }
            core.handle_proof_verified(now, agent, *task, true, 1)?;
            last_seq = store.submit(
                core.take_changes(),
                vec![
                    ExtraWrite::Proof(*task, proof.clone()),
                    ExtraWrite::DeliveryDone(*task),
                ],
            );
            while core.poll_effect().is_some() {}
            events += 4;
        }
        store.durable(last_seq).await?;
        done += batch;
    }
    let per_sec = tasks as f64 / started.elapsed().as_secs_f64();
    store.close();
    Ok((per_sec, events / tasks.max(1)))
}

struct Restart {
    tasks: usize,
    bound: usize,
    finished: usize,
    file_bytes: u64,
    open_ms: f64,
    load_ms: f64,
    restore_ms: f64,
}

/// Fills a store with `queued` waiting tasks, the fleet's slots of bound tasks and the
/// retention's worth of finished ones, then times the restart path.
fn restart(path: &Path, queued: usize) -> anyhow::Result<Restart> {
    let _ = std::fs::remove_file(path);
    let capacity = MAX_QUEUE_CAPACITY;
    let (finished, bound, restart_at);
    {
        let store = Store::open(path)?;
        let (mut core, _) = fleet(policy(capacity))?;
        let now = START;
        let mut n = 0u64;
        // Finished tasks first (bound, delivered, verified), up to the retention.
        let retained = proofrack_coordinator::tasks::MAX_FINISHED_TASKS;
        while (n as usize) < retained {
            core.handle_submit(now, spec(n, now))?;
            for (agent, task) in offers(&mut core) {
                core.handle_offer_reply(now, &agent, task, OfferReply::Accept)?;
                core.handle_proof_delivered(now, &agent, task)?;
                core.handle_proof_verified(now, &agent, task, true, 1)?;
            }
            while core.poll_effect().is_some() {}
            n += 1;
            if n.is_multiple_of(4096) {
                store.commit_now(core.take_changes())?;
            }
        }
        finished = retained;
        // Every slot bound.
        let slots = AGENTS * SLOTS as usize;
        for _ in 0..slots {
            core.handle_submit(now, spec(n, now))?;
            for (agent, task) in offers(&mut core) {
                core.handle_offer_reply(now, &agent, task, OfferReply::Accept)?;
            }
            while core.poll_effect().is_some() {}
            n += 1;
        }
        bound = slots;
        // Then the queue: no agent has a free slot, so these wait.
        // All at one moment: with time moving, the first would expire before the last arrive.
        for _ in 0..queued {
            core.handle_submit(now, spec(n, now))?;
            while core.poll_effect().is_some() {}
            n += 1;
            if n.is_multiple_of(4096) {
                store.commit_now(core.take_changes())?;
            }
        }
        store.commit_now(core.take_changes())?;
        store.close();
        restart_at = UnixMillis(now.0 + 1_000);
    }
    let file_bytes = std::fs::metadata(path)?.len();
    let t0 = Instant::now();
    let store = Store::open(path)?;
    let t1 = Instant::now();
    let loaded = store.load()?;
    let t2 = Instant::now();
    let state = loaded
        .core
        .ok_or_else(|| anyhow::anyhow!("the filled store read back empty"))?;
    let tasks = state.tasks.len();
    let core = CoordinatorCore::restore(policy(capacity), state, restart_at)?;
    let t3 = Instant::now();
    drop(core);
    store.close();
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    Ok(Restart {
        tasks,
        bound,
        finished,
        file_bytes,
        open_ms: ms(t0, t1),
        load_ms: ms(t1, t2),
        restore_ms: ms(t2, t3),
    })
}
