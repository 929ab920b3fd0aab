use crate::rig::{free, ledger_stake, policy, Rig, CONFIRMATIONS, UNBONDING_DELAY_S};
use crate::support::cluster::test_policy;
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{poll_until, TaskWatch};
use crate::support::{TempDir, STEP_TIMEOUT};
use proofrack::devnet_chain::roles;
use proofrack_common::protocol::CoordinatorToAgent;
use proofrack_common::{StakeUnits, TaskId};
use proofrack_coordinator::chain::alloy::primitives::U256;
use proofrack_coordinator::chain::alloy::providers::Provider;
use proofrack_coordinator::chain::alloy::rpc::types::Filter;
use proofrack_coordinator::chain::alloy::sol_types::SolEvent;
use proofrack_coordinator::chain::bindings::StakeRegistry;
use proofrack_coordinator::chain::deploy;
use proofrack_coordinator::chain::{slash_id, SlashState};
use proofrack_coordinator::Policy;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_shows_in_the_ledger_and_unbonding_lowers_free_then_delegated() {
    let rig = Rig::start(&[("op-a", 100)], CONFIRMATIONS).await;
    rig.confirm().await;
    let (cluster, source) = rig.coordinator("chain-delegate", policy()).await;
    assert_eq!(
        ledger_stake(&cluster, "op-a"),
        Some(rig.chain_stake("op-a").await)
    );
    assert_eq!(free(&cluster, "op-a"), StakeUnits(100));

    // Not confirmed yet: the ledger waits.
    rig.delegate("op-a", 50).await;
    source.sync_now().await.unwrap();
    assert_eq!(free(&cluster, "op-a"), StakeUnits(100));
    rig.confirm().await;
    source.sync_now().await.unwrap();
    assert_eq!(free(&cluster, "op-a"), StakeUnits(150));

    // An unbonding request takes free stake at once; delegated stays until it is paid out.
    let id = rig.request_withdrawal("op-a", 30).await;
    rig.confirm().await;
    source.sync_now().await.unwrap();
    let s = ledger_stake(&cluster, "op-a").unwrap();
    assert_eq!(
        (s.delegated, s.withdrawing),
        (StakeUnits(150), StakeUnits(30))
    );
    assert_eq!(free(&cluster, "op-a"), StakeUnits(120));

    // The contract enforces the delay.
    let registry = rig.registry(rig.delegator());
    let early = registry.completeWithdrawal(id).send().await;
    let text = match early {
        Ok(_) => panic!("completing a withdrawal before its delay must be refused"),
        Err(e) => format!("{e:?}"),
    };
    assert!(text.contains("unbonding delay not over"), "{text}");
    rig.increase_time(UNBONDING_DELAY_S + 1).await;
    let sent = registry.completeWithdrawal(id).send().await.unwrap();
    deploy::mined(&rig.provider, *sent.tx_hash(), "completeWithdrawal")
        .await
        .unwrap();
    rig.confirm().await;
    source.sync_now().await.unwrap();
    let s = ledger_stake(&cluster, "op-a").unwrap();
    assert_eq!(
        (s.delegated, s.withdrawing, s.withdrawn),
        (StakeUnits(120), StakeUnits(0), StakeUnits(30))
    );
    assert_eq!(
        Some(rig.chain_stake("op-a").await),
        ledger_stake(&cluster, "op-a")
    );
    drop(source);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_sends_exactly_one_slash_with_the_task_id() {
    let rig = Rig::start(&[("op-a", 100), ("op-b", 100)], CONFIRMATIONS).await;
    rig.confirm().await;
    // A short margin, so the due time of a few-millisecond proof comes within the test.
    let policy = Policy {
        deadline_margin_ms: 2_000,
        ..test_policy()
    };
    let bps = policy.deadline_miss_slash_bps as u128;
    let (cluster, source) = rig.coordinator("chain-slash", policy).await;
    let client = cluster.client("alice").await;
    let mut sleeper =
        ScriptedAgent::connect(&cluster, "op-a", "sleeper", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "sleeper").await;
    let collateral = 40u128;
    let task = client.submit("mimc-4", 13, collateral).await;
    assert_eq!(sleeper.next_offer().await.task, task);
    sleeper.accept(task).await;
    // The sleeper never delivers: at its due time the coordinator slashes and cancels.
    match sleeper.next_message().await {
        CoordinatorToAgent::Cancelled { task: t, .. } => assert_eq!(t, task),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    sleeper.close().await;
    let slashed = collateral * bps / 10_000;

    // The outbox recorded the slash before sending; passes send it once and finalise it.
    let slasher = rig.anvil().key(roles::SLASHER).address();
    let nonce_before = rig.provider.get_transaction_count(slasher).await.unwrap();
    for _ in 0..3 {
        source.flush_slashes().await.unwrap();
    }
    // The outbox as a crash right after sending would leave it: sent, not yet final.
    let crashed = TempDir::new("chain-slash-crashed");
    let crashed_store = crashed.path().join("chain.redb");
    std::fs::copy(
        cluster.dir.path().join("data").join("chain.redb"),
        &crashed_store,
    )
    .unwrap();
    rig.confirm().await;
    source.flush_slashes().await.unwrap();
    source.flush_slashes().await.unwrap();
    let nonce_after = rig.provider.get_transaction_count(slasher).await.unwrap();
    assert_eq!(
        nonce_after - nonce_before,
        1,
        "exactly one transaction sent"
    );

    let records = source.slash_records().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    let tx = match record.state {
        SlashState::Final { tx: Some(tx), .. } => tx,
        ref other => panic!("slash not final with a transaction: {other:?}"),
    };
    assert_eq!((record.task, record.attempt), (task, 0));
    assert_eq!(record.amount, StakeUnits(slashed));
    let on_chain_id = rig
        .registry(rig.provider.clone())
        .slashIdOf(rig.address("op-a"), task.0, 0)
        .call()
        .await
        .unwrap();
    assert_eq!(record.slash_id, on_chain_id);
    assert_eq!(slash_id(rig.address("op-a"), task, 0), on_chain_id);

    // Exactly one Slashed event, in that transaction, naming the task.
    let logs = rig
        .provider
        .get_logs(
            &Filter::new()
                .address(rig.deployment.registry)
                .event_signature(StakeRegistry::Slashed::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].transaction_hash, Some(tx));
    let event = StakeRegistry::Slashed::decode_log_data(logs[0].data()).unwrap();
    assert_eq!(event.taskId, task.0);
    assert_eq!(event.reason, 1);
    assert_eq!(event.amount, U256::from(slashed));

    // The contract and the ledger agree.
    source.sync_now().await.unwrap();
    for op in ["op-a", "op-b"] {
        assert_eq!(
            Some(rig.chain_stake(op).await),
            ledger_stake(&cluster, op),
            "{op}"
        );
    }
    assert_eq!(rig.chain_stake("op-a").await.slashed, StakeUnits(slashed));
    drop(source);
    cluster.shutdown().await;

    // Restarted from that outbox: the contract says the slash landed, so nothing is resent.
    let restarted = crate::support::cluster::Cluster::start(
        "chain-slash-restarted",
        crate::support::cluster::ClusterSpec {
            policy: crate::rig::policy(),
            operators: vec![],
            ..Default::default()
        },
    )
    .await;
    let settings = rig.settings(crashed_store, crate::rig::IDLE_POLL_MS, 3_600_000);
    let source =
        proofrack_coordinator::chain::ChainStakeSource::attach(restarted.shared(), settings)
            .await
            .unwrap();
    let unsettled = source.slash_records().unwrap();
    assert!(
        matches!(unsettled[0].state, SlashState::Sent { .. }),
        "{unsettled:?}"
    );
    source.flush_slashes().await.unwrap();
    source.flush_slashes().await.unwrap();
    let nonce_end = rig.provider.get_transaction_count(slasher).await.unwrap();
    assert_eq!(nonce_end, nonce_after, "nothing resent after the restart");
    let records = source.slash_records().unwrap();
    assert!(
        matches!(records[0].state, SlashState::Final { tx: Some(t), .. } if t == tx),
        "{records:?}"
    );
    assert_eq!(
        Some(rig.chain_stake("op-a").await),
        ledger_stake(&restarted, "op-a")
    );
    drop(source);
    restarted.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_catches_up_with_missed_events() {
    let rig = Rig::start(&[("op-a", 100), ("op-b", 60)], CONFIRMATIONS).await;
    rig.confirm().await;
    // One coordinator follows everything live; the other is down while things happen.
    let (live, live_source) = rig.coordinator("chain-live", policy()).await;
    let (restarted, source) = rig.coordinator("chain-restarted", policy()).await;
    let before = source.followed_block().await.expect("followed a block");
    let store_dir = TempDir::new("chain-restart-store");
    let store = store_dir.path().join("chain.redb");
    std::fs::copy(restarted.dir.path().join("data").join("chain.redb"), &store).unwrap();
    drop(source);
    restarted.shutdown().await;

    rig.delegate("op-a", 25).await;
    rig.request_withdrawal("op-b", 10).await;
    // A slash from elsewhere (the slasher key, a task this coordinator never saw).
    let sent = rig
        .registry(rig.slasher())
        .slash(rig.address("op-a"), 9_999, 0, 2, U256::from(7u64))
        .send()
        .await
        .unwrap();
    deploy::mined(&rig.provider, *sent.tx_hash(), "slash from elsewhere")
        .await
        .unwrap();
    rig.confirm().await;
    live_source.sync_now().await.unwrap();

    // Restart: a fresh coordinator with the stored cursor catches up on attach.
    let cluster = crate::support::cluster::Cluster::start(
        "chain-restarted-2",
        crate::support::cluster::ClusterSpec {
            policy: policy(),
            operators: vec![],
            ..Default::default()
        },
    )
    .await;
    let settings = rig.settings(store, crate::rig::IDLE_POLL_MS, 3_600_000);
    let source = proofrack_coordinator::chain::ChainStakeSource::attach(cluster.shared(), settings)
        .await
        .unwrap();
    let after = source.followed_block().await.unwrap();
    assert!(
        after.0 > before.0,
        "resumed past the stored block {before:?}: {after:?}"
    );
    for op in ["op-a", "op-b"] {
        let chain = rig.chain_stake(op).await;
        assert_eq!(
            ledger_stake(&cluster, op),
            Some(chain),
            "{op} restarted vs chain"
        );
        assert_eq!(ledger_stake(&live, op), Some(chain), "{op} live vs chain");
    }
    let a = ledger_stake(&cluster, "op-a").unwrap();
    assert_eq!((a.delegated, a.slashed), (StakeUnits(118), StakeUnits(7)));
    assert_eq!(free(&cluster, "op-b"), StakeUnits(50));
    drop((source, live_source));
    cluster.shutdown().await;
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_of_the_last_blocks_is_followed() {
    // No confirmations: the reorged blocks were already applied to the ledger.
    let rig = Rig::start(&[("op-a", 100), ("op-b", 50)], 0).await;
    let (cluster, source) = rig.coordinator("chain-reorg", policy()).await;
    let snapshot = rig.snapshot().await;
    rig.delegate("op-a", 40).await;
    rig.request_withdrawal("op-b", 20).await;
    source.sync_now().await.unwrap();
    assert_eq!(free(&cluster, "op-a"), StakeUnits(140));
    assert_eq!(free(&cluster, "op-b"), StakeUnits(30));

    // Those blocks vanish; another branch delegates to op-b instead and grows longer.
    rig.revert(&snapshot).await;
    rig.delegate("op-b", 7).await;
    rig.mine(3).await;
    let report = source.sync_now().await.unwrap();
    assert!(report.reorged_blocks > 0, "{report:?}");
    for op in ["op-a", "op-b"] {
        assert_eq!(
            Some(rig.chain_stake(op).await),
            ledger_stake(&cluster, op),
            "{op}"
        );
    }
    assert_eq!(free(&cluster, "op-a"), StakeUnits(100));
    assert_eq!(free(&cluster, "op-b"), StakeUnits(57));
    drop(source);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_chain_stops_new_offers_after_the_grace_period() {
    let mut rig = Rig::start(&[("op-a", 100)], 0).await;
    let cluster = crate::support::cluster::Cluster::start(
        "chain-stale",
        crate::support::cluster::ClusterSpec {
            policy: policy(),
            operators: vec![],
            ..Default::default()
        },
    )
    .await;
    let _source = rig.attach(&cluster, 100, 1_000).await;
    assert_eq!(free(&cluster, "op-a"), StakeUnits(100));
    rig.anvil = None; // kills anvil
    let client = cluster.client("alice").await;
    poll_until(STEP_TIMEOUT, "the stake source turns stale", || async {
        let frozen = cluster
            .shared()
            .read(|core, _| core.stake_frozen().is_some());
        frozen.then_some(())
    })
    .await;
    // The last known stake stays; new work waits with the reason.
    assert_eq!(free(&cluster, "op-a"), StakeUnits(100));
    let _agent = ScriptedAgent::connect(&cluster, "op-a", "a1", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "a1").await;
    let task: TaskId = client.submit("mimc-4", 1, 10).await;
    let mut watch = TaskWatch::start(&client, task);
    watch
        .until("queued with the stale reason", STEP_TIMEOUT, |v| {
            crate::support::checks::queued_reason(v)
                .is_some_and(|r| r.contains("stake source is stale"))
        })
        .await;
    cluster.shutdown().await;
}

#[test]
fn the_checked_in_contract_build_matches_the_source() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = TempDir::new("contracts-build");
    let status = std::process::Command::new(root.join("scripts/build-contracts.sh"))
        .arg(out.path())
        .status()
        .expect("run scripts/build-contracts.sh (needs node and scripts/setup-tools.sh --node)");
    assert!(status.success(), "build-contracts.sh failed");
    for name in ["StakeRegistry.json", "StakeToken.json"] {
        let built = std::fs::read_to_string(out.path().join(name)).unwrap();
        let checked_in = std::fs::read_to_string(root.join("contracts/build").join(name)).unwrap();
        assert!(
            built == checked_in,
            "contracts/build/{name} does not match contracts/*.sol: run scripts/build-contracts.sh and commit"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_runs_on_chain() {
    use proofrack::devnet::{run, DevnetOptions};
    use proofrack_agent::BackendChoice;
    crate::support::init_logging();
    let dir = TempDir::new("devnet-chain");
    let tasks = 4;
    let opts = DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        tasks: Some(tasks),
        circuits: vec!["mimc-4".into()],
        agents_per_operator: 1,
        in_flight: 2,
        seed: 3,
        backend: BackendChoice::Cpu,
        verbose: false,
        chain: true,
    };
    let report = crate::support::wait::within(
        Duration::from_secs(100),
        "the devnet run on chain",
        run(opts, std::future::pending()),
    )
    .await
    .expect("the devnet runs");
    assert_eq!(
        (report.submitted, report.verified),
        (tasks, tasks),
        "{:?}",
        report.failed
    );
    let delegated: Vec<(String, u128)> = report
        .ledger
        .operators
        .iter()
        .map(|r| (r.operator.to_string(), r.delegated.0 + r.slashed.0))
        .collect();
    // Delegated on chain (plus any slash of a task that missed its due time on a slow box).
    assert_eq!(delegated, vec![("op-a".into(), 100), ("op-b".into(), 80)]);
}
