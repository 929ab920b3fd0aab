//! The store file on disk: damaged files are refused with a clear error at start, nothing
//! is silently dropped, and a second opener is refused while the first holds the lock.

use super::{Store, StoreError, STORE_FILE};
use crate::ledger::source::StakeEvent;
use crate::tasks::{CoordinatorCore, TaskSpec};
use crate::testkit::{agent_id, cuda_telemetry, shape};
use crate::Policy;
use proofrack_common::{KeyId, StakeUnits, UnixMillis};
use std::path::PathBuf;
use std::sync::Arc;

const NOW: UnixMillis = UnixMillis(1_700_000_000_000);
/// Enough tasks that their rows fill many pages, so damage in the middle of the file hits
/// stored data rather than free space.
const TASKS: u64 = 400;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "proofrack-store-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        Dir(path)
    }

    fn file(&self) -> PathBuf {
        self.0.join(STORE_FILE)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store holding a core's state: an operator, an agent, tasks (some bound, most queued).
fn filled_store(dir: &Dir) -> usize {
    let policy = Policy {
        // One client fills the store: its share is the whole queue.
        max_unfinished_per_client: Policy::default().queue_capacity,
        ..Policy::default()
    };
    let mut core = CoordinatorCore::new(policy).expect("valid policy");
    core.register_circuit("c".into(), KeyId([1; 32]), shape(12))
        .expect("circuit");
    let operator = "op-a".parse().expect("operator id");
    core.handle_stake_event(NOW, StakeEvent::OperatorRegistered { operator })
        .expect("register");
    let operator = "op-a".parse().expect("operator id");
    core.handle_stake_event(
        NOW,
        StakeEvent::Delegated {
            operator,
            amount: StakeUnits(1_000_000),
        },
    )
    .expect("delegate");
    let agent = agent_id("op-a", "gpu-1");
    core.handle_agent_connected(NOW, agent.clone(), 4)
        .expect("connect");
    core.handle_telemetry(NOW, &agent, cuda_telemetry(1, 8 << 30, 10_000_000, 1 << 30))
        .expect("telemetry");
    for n in 0..TASKS {
        core.handle_submit(
            NOW,
            TaskSpec {
                circuit: "c".into(),
                inputs: Arc::from(vec![7u8; 64]),
                collateral: StakeUnits(10),
                deadline: UnixMillis(NOW.0 + 60_000),
                client: "client/test".into(),
                request_id: n,
            },
        )
        .expect("submit");
    }
    while core.poll_effect().is_some() {}
    let store = Store::open(&dir.file()).expect("open a new store");
    store.commit_now(core.full_changes()).expect("commit");
    let loaded = store.load().expect("load what was just written");
    let tasks = loaded.core.expect("state").tasks.len();
    store.close();
    assert_eq!(tasks as u64, TASKS);
    tasks
}

/// The store opened and read back, as the server does at start.
fn reopen(dir: &Dir) -> Result<usize, StoreError> {
    let store = Store::open(&dir.file())?;
    let loaded = store.load();
    store.close();
    Ok(loaded?.core.map_or(0, |s| s.tasks.len()))
}

fn assert_refused_clearly(result: Result<usize, StoreError>, what: &str) {
    match result {
        Ok(tasks) => panic!("{what}: the store opened with {tasks} of {TASKS} tasks"),
        Err(e) => {
            let text = e.to_string();
            eprintln!("{what}: {text}");
            assert!(
                text.contains("state store") && text.contains("backup"),
                "{what}: the error does not say what is wrong and what to do: {text}"
            );
        }
    }
}

#[test]
fn a_store_reopens_with_everything_it_held() {
    let dir = Dir::new("reopen");
    let tasks = filled_store(&dir);
    assert_eq!(reopen(&dir).expect("reopen"), tasks);
}

#[test]
fn a_truncated_store_is_refused_with_a_clear_error() {
    let dir = Dir::new("truncated");
    filled_store(&dir);
    let len = std::fs::metadata(dir.file()).expect("stat").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.file())
        .expect("open for truncation");
    file.set_len(len / 2).expect("truncate");
    drop(file);
    assert_refused_clearly(reopen(&dir), "truncated to half");
}

#[test]
fn a_tampered_store_is_refused_with_a_clear_error() {
    let dir = Dir::new("tampered");
    filled_store(&dir);
    let mut bytes = std::fs::read(dir.file()).expect("read");
    // Flip every byte of a stretch in the middle of the file: where the task rows are.
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4096] {
        *b ^= 0x5a;
    }
    std::fs::write(dir.file(), bytes).expect("write back");
    assert_refused_clearly(reopen(&dir), "4 KiB flipped in the middle");
}

#[test]
fn a_second_coordinator_on_the_same_store_is_refused() {
    let dir = Dir::new("locked");
    let first = Store::open(&dir.file()).expect("first opener");
    match Store::open(&dir.file()) {
        Err(StoreError::Locked { path }) => assert_eq!(path, dir.file()),
        Err(other) => panic!("second opener: {other}"),
        Ok(_) => panic!("two coordinators opened the same store"),
    }
    first.close();
}

#[test]
fn breakers_and_the_audit_log_survive_a_restart_and_pruned_lines_are_removed() {
    use proofrack_common::identity::Identity;
    use proofrack_common::protocol::AuditOutcome;
    let dir = Dir::new("trust");
    let policy = Policy {
        breaker_failures: 1,
        ..Policy::default()
    };
    let mut core = CoordinatorCore::new(policy.clone()).expect("policy");
    let agent = agent_id("op-a", "gpu-1");
    let operator = "op-a".parse().expect("operator id");
    core.handle_stake_event(NOW, StakeEvent::OperatorRegistered { operator })
        .expect("register");
    core.handle_agent_connected(NOW, agent.clone(), 1)
        .expect("connect");
    let store = Store::open(&dir.file()).expect("open a new store");
    store.commit_now(core.full_changes()).expect("commit");
    // A line per event, committed the way the server does: only what changed.
    let mut last = 0;
    let admin = Identity::admin("root").expect("identity");
    for n in 0..crate::tasks::MAX_AUDIT_ENTRIES as u64 + 2 {
        core.record_audit(
            NOW,
            &admin,
            format!("action {n}"),
            None,
            AuditOutcome::Refused,
            "no".into(),
        );
        // Through the committer thread, several events per group commit.
        if n % 1_000 == 0 || n > crate::tasks::MAX_AUDIT_ENTRIES as u64 - 2 {
            last = store.submit(core.take_changes(), Vec::new());
        }
    }
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(store.durable(last))
        .expect("durable");
    let reply = core.handle_breaker_reset(NOW, "operator/op-a/admin/ops", 1, &agent);
    assert!(reply.ok);
    store.commit_now(core.take_changes()).expect("commit");
    store.close();
    drop(store);

    let store = Store::open(&dir.file()).expect("reopen");
    let state = store.load().expect("load").core.expect("state");
    store.close();
    assert_eq!(state.audit.len(), crate::tasks::MAX_AUDIT_ENTRIES);
    assert_eq!(
        state.audit[0].action, "action 2",
        "the two oldest were pruned on disk too"
    );
    assert_eq!(state.agents.len(), 1);
    assert_eq!(state.agents[0].0, agent);
    let restored = CoordinatorCore::restore(policy, state, NOW).expect("restore");
    assert!(restored.knows_agent(&agent));
    let (lines, kept) = restored.audit_lines(None, None, 3);
    assert_eq!(kept, crate::tasks::MAX_AUDIT_ENTRIES);
    assert_eq!(
        lines.iter().map(|l| l.action.as_str()).collect::<Vec<_>>(),
        [
            format!("action {}", crate::tasks::MAX_AUDIT_ENTRIES - 1),
            format!("action {}", crate::tasks::MAX_AUDIT_ENTRIES),
            format!("action {}", crate::tasks::MAX_AUDIT_ENTRIES + 1),
        ]
    );
}
