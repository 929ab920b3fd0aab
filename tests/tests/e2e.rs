//! End-to-end tests of the Foundation issue: a coordinator, agents and clients in one process,
//! talking real QUIC on loopback with real certificates from `proofrack_certs`.
//!
//! Run with `RUST_LOG=info` to see the coordinator's and agents' logs.

mod support;

use proofrack_certs::{CertsDir, InitOptions, IssueOptions, RevokeTarget};
use proofrack_common::framing::MAX_FRAME_BYTES;
use proofrack_common::identity::{Identity, TrustDomain, DEFAULT_TRUST_DOMAIN};
use proofrack_common::protocol::{
    ClientResponse, CoordinatorToAgent, DeliveryOutcome, OperatorLedgerRow, ProtocolError,
    TaskState, TaskStatusView,
};
use proofrack_common::tls::{self, TlsMaterial, ALPN_PROOFRACK};
use proofrack_common::{Clock, StakeUnits, SystemClock, TaskId};
use proofrack_kernels::curve::Fr;
use proofrack_kernels::field_bytes::fr_to_le_bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::cluster::{Client, Cluster, ClusterSpec, TASK_DEADLINE_MS};
use support::real_agent::{cpu_prover, RealAgent};
use support::scripted::{
    attempt_hello, tamper_output, ScriptOptions, ScriptedAgent, AMPLE_MEMORY_BYTES,
};
use support::wait::{history, poll_until, within, TaskWatch};
use support::{TempDir, STEP_TIMEOUT, TASK_TIMEOUT};

fn agent_is(state: &TaskState, operator: &str, name: &str) -> bool {
    let agent = match state {
        TaskState::Offered { agent, .. }
        | TaskState::Proving { agent, .. }
        | TaskState::Verifying { agent }
        | TaskState::Verified { agent, .. } => agent,
        TaskState::Queued { .. } | TaskState::Failed { .. } => return false,
    };
    agent.operator.as_str() == operator && agent.name.as_str() == name
}

fn queued_reason(v: &TaskStatusView) -> Option<&str> {
    match &v.state {
        TaskState::Queued { reason } => Some(reason),
        _ => None,
    }
}

fn has_history_line(v: &TaskStatusView, needle: &str) -> bool {
    v.history.iter().any(|h| h.what.contains(needle))
}

fn assert_row(row: &OperatorLedgerRow, delegated: u128, active: u128, slashed: u128) {
    assert_eq!(
        (row.delegated, row.active, row.slashed),
        (
            StakeUnits(delegated),
            StakeUnits(active),
            StakeUnits(slashed)
        ),
        "operator {} (delegated, active, slashed): {row:?}",
        row.operator
    );
}

/// A rustls client config that trusts our CA and presents no certificate.
fn config_without_certificate(certs: &CertsDir) -> quinn::ClientConfig {
    let ca = tls::load_certs(&certs.ca_cert_path(), "CA certificate").expect("CA certificate");
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c).expect("CA into the root store");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_PROOFRACK.to_vec()];
    quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(config).expect("QUIC client config"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_without_a_valid_agent_certificate_are_refused() {
    let cluster = Cluster::start("refused", ClusterSpec::default()).await;

    // No certificate at all: refused in the TLS handshake.
    let err = attempt_hello(cluster.addr, config_without_certificate(&cluster.certs))
        .await
        .expect_err("an agent without a certificate is refused");
    eprintln!("no certificate: {err}");
    assert!(
        err.contains("refused the TLS handshake"),
        "no certificate: {err}"
    );

    // A well-formed agent identity in our trust domain, signed by another CA.
    let rogue = CertsDir::new(cluster.dir.path().join("rogue-ca"));
    let td = TrustDomain::new(DEFAULT_TRUST_DOMAIN).expect("trust domain");
    rogue
        .init(&InitOptions::new(td.clone()), SystemClock.now())
        .expect("rogue CA");
    let impostor = Identity::agent("op-a", "box-1").expect("identity");
    rogue
        .issue(&impostor, &IssueOptions::default(), SystemClock.now())
        .expect("rogue leaf");
    let theirs = rogue.tls_material(&impostor).expect("rogue material");
    let material = TlsMaterial {
        ca_roots: tls::load_certs(&cluster.certs.ca_cert_path(), "CA certificate").expect("our CA"),
        chain: theirs.chain,
        key: theirs.key,
        trust_domain: td,
    };
    let err = attempt_hello(cluster.addr, tls::client_config(&material).expect("config"))
        .await
        .expect_err("a certificate from another CA is refused");
    eprintln!("other CA: {err}");
    assert!(err.contains("refused the TLS handshake"), "other CA: {err}");

    // A valid client certificate opening an agent control stream.
    let mallory = Identity::client("mallory").expect("identity");
    let config = tls::client_config(&cluster.material(&mallory)).expect("config");
    let err = attempt_hello(cluster.addr, config)
        .await
        .expect_err("a client certificate cannot act as an agent");
    eprintln!("client certificate as an agent: {err}");
    assert!(
        err.contains("client/mallory may not open an agent control stream"),
        "client certificate as an agent: {err}"
    );

    // None of them became an agent; a properly certified agent is welcomed.
    let client = cluster.client("observer").await;
    assert!(
        client.agents().await.rows.is_empty(),
        "refused peers are not in the fleet"
    );
    let agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    assert_eq!(
        agent.welcome.agent,
        "spiffe://proofrack.local/operator/op-a/agent/box-1"
    );
    let row = client.wait_agent_ready("op-a", "box-1").await;
    assert!(row.connected);
    assert_eq!(client.agents().await.rows.len(), 1);
    agent.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_deliver_a_proof_for_another_operators_task() {
    let cluster = Cluster::start("cross-operator", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let mut owner =
        ScriptedAgent::connect(&cluster, "op-b", "box-1", ScriptOptions::default()).await;
    // Connected but reporting no telemetry: never offered anything.
    let no_telemetry = ScriptOptions {
        memory_free_bytes: None,
        ..ScriptOptions::default()
    };
    let mut thief = ScriptedAgent::connect(&cluster, "op-a", "box-1", no_telemetry).await;
    client.wait_agent_ready("op-b", "box-1").await;

    let task = client.submit("mimc-6", 5, 40).await;
    let mut watch = TaskWatch::start(&client, task);
    let offer = owner.next_offer().await;
    assert_eq!(offer.task, task);
    owner.accept(task).await;
    watch
        .until("proving by op-b/box-1", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. }) && agent_is(&v.state, "op-b", "box-1")
        })
        .await;

    // The thief makes a perfectly valid proof of the task's inputs and delivers it.
    let key = client.circuit("mimc-6").await.key;
    let stolen = thief.prove_task(task, "mimc-6", key, br#"{"x":"5"}"#).await;
    match thief.deliver(&stolen).await.expect("a verdict") {
        DeliveryOutcome::Rejected { reason } => assert!(
            reason.contains(&format!("{task} is not bound to op-a/box-1"))
                && reason.contains("bound to op-b/box-1"),
            "the rejection says whom the task is bound to: {reason}"
        ),
        DeliveryOutcome::Accepted => panic!("a proof from another operator's agent was accepted"),
    }
    // Refused before any verification: nobody is slashed, nothing moved.
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    assert_row(&client.operator("op-b").await, 100, 40, 0);
    let status = client.status(task).await;
    assert!(
        matches!(status.state, TaskState::Proving { .. })
            && agent_is(&status.state, "op-b", "box-1"),
        "the task stays with its owner: {:?}",
        status.state
    );

    let proof = owner.prove(&offer).await;
    assert_eq!(
        owner.deliver(&proof).await.expect("a verdict"),
        DeliveryOutcome::Accepted
    );
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-b", "box-1"), "{:?}", last.state);
    assert_row(&client.operator("op-b").await, 100, 0, 0);
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    assert!(
        thief.pending_messages().is_empty(),
        "the thief was offered nothing"
    );
    owner.close().await;
    thief.close().await;
    cluster.shutdown().await;
}

/// A frame header announcing `len` body bytes, then `body`.
fn frame(len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_a_clear_error_and_other_agents_are_still_served() {
    let cluster = Cluster::start("bad-frames", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let honest = RealAgent::start(&cluster, "op-a", "honest", cpu_prover());
    client.wait_agent_ready("op-a", "honest").await;
    let quiet = || ScriptOptions {
        memory_free_bytes: None,
        ..ScriptOptions::default()
    };

    // A control-stream frame announcing more than the frame limit.
    let mut oversized = ScriptedAgent::connect(&cluster, "op-b", "oversized", quiet()).await;
    oversized
        .send_raw(&((MAX_FRAME_BYTES + 1) as u32).to_le_bytes())
        .await;
    let said = oversized.refusal().await;
    eprintln!("{}: {said}", oversized.identity);
    assert!(
        said.contains(&format!(
            "frame of {} bytes exceeds the {MAX_FRAME_BYTES}-byte limit",
            MAX_FRAME_BYTES + 1
        )),
        "oversized frame: {said}"
    );

    // A control-stream frame whose body is not a message.
    let mut garbage = ScriptedAgent::connect(&cluster, "op-b", "garbage", quiet()).await;
    garbage.send_raw(&frame(8, &[0xff; 8])).await;
    let said = garbage.refusal().await;
    eprintln!("{}: {said}", garbage.identity);
    assert!(
        said.contains("malformed message") && said.contains("cannot decode AgentToCoordinator"),
        "malformed message: {said}"
    );

    // A new stream whose first frame is not a stream opening.
    let mut opener = ScriptedAgent::connect(&cluster, "op-b", "opener", quiet()).await;
    opener
        .open_raw_stream(&frame(6, &[0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]))
        .await;
    let said = opener.refusal().await;
    eprintln!("{}: {said}", opener.identity);
    assert!(
        said.contains("malformed message") && said.contains("OpenFrame"),
        "malformed stream opening: {said}"
    );

    // A stream opened with a protocol version this coordinator does not speak.
    let mut future = ScriptedAgent::connect(&cluster, "op-b", "future", quiet()).await;
    future.open_raw_stream(&frame(2, &[0x02, 0x00])).await;
    let said = future.refusal().await;
    eprintln!("{}: {said}", future.identity);
    assert!(
        said.contains("protocol version mismatch: coordinator speaks 1, agent speaks 2; upgrade the coordinator"),
        "version mismatch: {said}"
    );

    for name in ["oversized", "garbage", "opener", "future"] {
        client.wait_agent_gone("op-b", name).await;
    }
    // The agent that behaved was never disturbed and proves a task to verification.
    let task = client.submit("mimc-6", 9, 40).await;
    let mut watch = TaskWatch::start(&client, task);
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-a", "honest"), "{:?}", last.state);
    assert_row(&client.operator("op-a").await, 100, 0, 0);
    for a in [oversized, garbage, opener, future] {
        a.close().await;
    }
    honest.stop().await;
    cluster.shutdown().await;
}

/// Reads the ledger and checks that no operator has more stake active than delegated and
/// that its free stake adds up; returns the largest active stake in it.
async fn observe_ledger(client: &Client) -> u128 {
    let mut max_active = 0;
    for row in client.ledger().await.operators {
        assert!(
            row.active <= row.delegated,
            "over-committed: {} has {} active of {} delegated",
            row.operator,
            row.active,
            row.delegated
        );
        assert_eq!(
            row.active.0 + row.withdrawing.0 + row.free.0,
            row.delegated.0,
            "free stake does not add up: {row:?}"
        );
        max_active = max_active.max(row.active.0);
    }
    max_active
}

/// Observes the ledger back to back until told to stop, besides the test's own observations
/// at each step; returns (observations, largest active stake seen).
fn keep_observing_ledger(
    client: Client,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, u128)> {
    tokio::spawn(async move {
        let (mut observations, mut max_active) = (0usize, 0u128);
        while !stop.load(Ordering::SeqCst) {
            max_active = max_active.max(observe_ledger(&client).await);
            observations += 1;
        }
        (observations, max_active)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stake_is_never_over_committed_and_a_waiting_task_runs_when_stake_frees() {
    let spec = ClusterSpec {
        operators: vec![("op-a", 100)],
        ..ClusterSpec::default()
    };
    let cluster = Cluster::start("over-commit", spec).await;
    let client = cluster.client("alice").await;
    // Room for four tasks at once: only stake can hold the third back.
    let opts = ScriptOptions {
        max_concurrent_tasks: 4,
        ..ScriptOptions::default()
    };
    let mut agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", opts).await;
    client.wait_agent_ready("op-a", "box-1").await;
    let stop = Arc::new(AtomicBool::new(false));
    let observer = keep_observing_ledger(client.clone(), stop.clone());

    let first = client.submit("mimc-4", 1, 40).await;
    let second = client.submit("mimc-4", 2, 40).await;
    let third = client.submit("mimc-4", 3, 40).await;
    let offers = [agent.next_offer().await, agent.next_offer().await];
    let mut offered: Vec<TaskId> = offers.iter().map(|o| o.task).collect();
    offered.sort();
    assert_eq!(offered, vec![first, second]);
    for o in &offers {
        agent.accept(o.task).await;
        observe_ledger(&client).await;
    }

    let mut watch = TaskWatch::start(&client, third);
    let waiting = watch
        .until(
            "the third task queued for lack of stake",
            STEP_TIMEOUT,
            |v| {
                queued_reason(v).is_some_and(|r| {
                    r.contains("no operator with 40 free stake; best has 20 (op-a)")
                })
            },
        )
        .await;
    let row = poll_until(STEP_TIMEOUT, "two tasks' stake bound", || async {
        observe_ledger(&client).await;
        let row = client.operator("op-a").await;
        (row.bound_tasks == 2).then_some(row)
    })
    .await;
    assert_row(&row, 100, 80, 0);
    assert_eq!(row.free, StakeUnits(20));
    let status = client.status(third).await;
    assert!(
        queued_reason(&status).is_some(),
        "still waiting: {:?}",
        status.state
    );
    assert!(
        !has_history_line(&status, "offered to"),
        "never offered:\n{}",
        history(&status)
    );
    assert!(
        agent.pending_messages().is_empty(),
        "no third offer while two are active"
    );

    // One finishes: its stake is released and the waiting task is offered.
    let proof = agent.prove(&offers[0]).await;
    assert_eq!(
        agent.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let offer = agent.next_offer().await;
    assert_eq!(offer.task, third, "the waiting task runs when stake frees");
    agent.accept(third).await;
    observe_ledger(&client).await;
    watch
        .until("the third task proving", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. })
        })
        .await;
    for o in [&offers[1], &offer] {
        let proof = agent.prove(o).await;
        assert_eq!(
            agent.deliver(&proof).await.expect("verdict"),
            DeliveryOutcome::Accepted
        );
        assert!(observe_ledger(&client).await <= 80);
    }
    watch.verified().await;
    assert_row(&client.operator("op-a").await, 100, 0, 0);

    stop.store(true, Ordering::SeqCst);
    let (observations, max_active) = within(STEP_TIMEOUT, "the ledger observer", observer)
        .await
        .expect("ledger observer");
    assert!(observations > 0);
    assert!(
        max_active <= 80,
        "never three tasks active at once: {max_active} active"
    );
    eprintln!(
        "ledger observed {observations} times; waiting reason was {:?}",
        queued_reason(&waiting)
    );
    agent.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_needing_more_memory_than_any_agent_reports_is_offered_to_none() {
    let cluster = Cluster::start("memory", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let need = client.circuit("mimc-8").await.shape.estimate_memory_bytes();
    let small = ScriptOptions {
        memory_free_bytes: Some(need / 2),
        ..ScriptOptions::default()
    };
    let mut a = ScriptedAgent::connect(&cluster, "op-a", "small-1", small.clone()).await;
    let mut b = ScriptedAgent::connect(&cluster, "op-b", "small-2", small).await;
    client.wait_agent_ready("op-a", "small-1").await;
    client.wait_agent_ready("op-b", "small-2").await;

    let task = client.submit("mimc-8", 3, 40).await;
    let mut watch = TaskWatch::start(&client, task);
    let waiting = watch
        .until("the task queued for lack of memory", STEP_TIMEOUT, |v| {
            queued_reason(v).is_some_and(|r| r.contains("largest free memory is"))
        })
        .await;
    let reason = queued_reason(&waiting).expect("queued");
    assert!(
        reason.starts_with("needs "),
        "the reason names the need first: {reason}"
    );
    let status = client.status(task).await;
    assert!(
        !has_history_line(&status, "offered to"),
        "never offered:\n{}",
        history(&status)
    );
    for (agent, name) in [(&mut a, "small-1"), (&mut b, "small-2")] {
        let got = agent.pending_messages();
        assert!(got.is_empty(), "{name} was sent {got:?}");
    }
    for row in client.agents().await.rows {
        assert!(
            row.in_flight.is_empty(),
            "{} holds {:?}",
            row.agent,
            row.in_flight
        );
    }

    // Memory was the only obstacle: once one agent reports enough, the task is offered to it.
    b.report_memory(need * 2).await;
    let offer = b.next_offer().await;
    assert_eq!(offer.task, task);
    b.accept(task).await;
    let proof = b.prove(&offer).await;
    assert_eq!(
        b.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let last = watch.verified().await;
    assert!(agent_is(&last.state, "op-b", "small-2"), "{:?}", last.state);
    assert!(
        a.pending_messages().is_empty(),
        "the small agent was never offered the task"
    );
    a.close().await;
    b.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_proof_slashes_the_operator_and_the_task_is_reassigned() {
    let cluster = Cluster::start("slash", ClusterSpec::default()).await;
    let bps = ClusterSpec::default().policy.invalid_proof_slash_bps as u128;
    let client = cluster.client("alice").await;
    let mut liar = ScriptedAgent::connect(&cluster, "op-a", "liar", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "liar").await;

    let collateral = 40u128;
    let task = client.submit("mimc-6", 11, collateral).await;
    let mut watch = TaskWatch::start(&client, task);
    let offer = liar.next_offer().await;
    liar.accept(task).await;
    watch
        .until("proving by the liar", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. }) && agent_is(&v.state, "op-a", "liar")
        })
        .await;
    assert_row(&client.operator("op-a").await, 100, collateral, 0);

    // An honest agent of another operator is ready to take the task over.
    let honest = RealAgent::start(&cluster, "op-b", "honest", cpu_prover());
    client.wait_agent_ready("op-b", "honest").await;

    let mut bad = liar.prove(&offer).await;
    tamper_output(&mut bad);
    match liar.deliver(&bad).await.expect("a verdict") {
        DeliveryOutcome::Rejected { reason } => assert!(
            reason.contains("does not verify") && reason.contains("slashed"),
            "the rejection says why and what it cost: {reason}"
        ),
        DeliveryOutcome::Accepted => panic!("a proof that does not verify was accepted"),
    }
    let slashed = collateral * bps / 10_000;
    assert_eq!(slashed, 20);
    // Slashed stake leaves the delegation; the rest of the collateral is released.
    assert_row(&client.operator("op-a").await, 100 - slashed, 0, slashed);

    let last = watch.verified().await;
    assert!(
        agent_is(&last.state, "op-b", "honest"),
        "reassigned to the honest agent: {:?}",
        last.state
    );
    assert!(
        has_history_line(
            &last,
            &format!(
                "proof from op-a/liar is invalid: {slashed} slashed, {} released",
                collateral - slashed
            )
        ),
        "{}",
        history(&last)
    );
    assert!(
        has_history_line(&last, "accepted by op-b/honest; 40 of op-b's stake bound"),
        "{}",
        history(&last)
    );
    // The valid proof released the honest operator's stake in full.
    assert_row(&client.operator("op-b").await, 100, 0, 0);
    assert_row(&client.operator("op-a").await, 100 - slashed, 0, slashed);
    let offers: Vec<_> = liar
        .pending_messages()
        .into_iter()
        .filter(|m| matches!(m, CoordinatorToAgent::Offer(_)))
        .collect();
    assert!(
        offers.is_empty(),
        "the task did not go back to the liar: {offers:?}"
    );
    liar.close().await;
    honest.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_run_verifies_every_proof_and_frees_all_stake() {
    use proofrack::devnet::{run, DevnetOptions};
    use proofrack_agent::config::BackendChoice;
    support::init_logging();
    let dir = TempDir::new("devnet");
    let tasks = 20;
    let opts = DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        tasks: Some(tasks),
        circuits: vec!["mimc-4".into(), "mimc-6".into(), "mimc-8".into()],
        agents_per_operator: 2,
        in_flight: 6,
        seed: 7,
        backend: BackendChoice::Cpu,
        verbose: false,
    };
    let report = within(
        Duration::from_secs(100),
        "the devnet run",
        run(opts, std::future::pending()),
    )
    .await
    .expect("the devnet runs");
    assert_eq!(report.submitted, tasks);
    assert!(
        report.failed.is_empty(),
        "failed tasks: {:?}",
        report.failed
    );
    assert_eq!(report.verified, tasks);
    assert!(!report.ledger.operators.is_empty());
    for row in &report.ledger.operators {
        assert_eq!(
            row.active,
            StakeUnits::ZERO,
            "{} still has stake bound: {row:?}",
            row.operator
        );
        assert_eq!(row.bound_tasks, 0, "{row:?}");
    }
    eprintln!(
        "devnet: {tasks} tasks verified in {:.1} s",
        report.elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_is_cut_off_without_a_restart() {
    let cluster = Cluster::start("revoked", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let mut agent =
        ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "box-1").await;

    cluster
        .certs
        .revoke(
            &RevokeTarget::Identity(agent.identity.clone()),
            "key stolen",
            SystemClock.now(),
        )
        .expect("revoke");
    let said = agent.refusal().await;
    eprintln!("{}: {said}", agent.identity);
    assert!(said.contains("certificate revoked"), "{said}");
    client.wait_agent_gone("op-a", "box-1").await;

    // Reconnecting with the revoked certificate is refused in the handshake.
    let config = tls::client_config(&cluster.material(&agent.identity)).expect("config");
    let err = attempt_hello(cluster.addr, config)
        .await
        .expect_err("revoked certificate refused");
    assert!(err.contains("Revoked"), "{err}");
    // Other agents are unaffected.
    let other = ScriptedAgent::connect(&cluster, "op-a", "box-2", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "box-2").await;
    agent.close().await;
    other.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_get_clear_errors_for_bad_submissions() {
    let cluster = Cluster::start("client-errors", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let json = r#"{"x":"1"}"#;

    let expect_error = |reply: ClientResponse, needle: &str| match reply {
        ClientResponse::Error(e) => assert!(e.to_string().contains(needle), "{e}"),
        ClientResponse::Rejected { reason } => assert!(reason.contains(needle), "{reason}"),
        other => panic!("expected a refusal containing {needle:?}, got {other:?}"),
    };
    match client
        .submit_raw("mimc-99", json, 10, TASK_DEADLINE_MS)
        .await
    {
        ClientResponse::Error(ProtocolError::UnknownCircuit { circuit }) => {
            assert_eq!(circuit, "mimc-99")
        }
        other => panic!("unknown circuit: {other:?}"),
    }
    // A built-in circuit this coordinator does not serve.
    expect_error(
        client
            .submit_raw("mimc-12", json, 10, TASK_DEADLINE_MS)
            .await,
        "unknown circuit \"mimc-12\"",
    );
    expect_error(
        client
            .submit_raw("mimc-6", "not json", 10, TASK_DEADLINE_MS)
            .await,
        "inputs for mimc-6: circuit input is not valid JSON",
    );
    expect_error(
        client
            .submit_raw("mimc-6", r#"{"x":"abc"}"#, 10, TASK_DEADLINE_MS)
            .await,
        "input \"x\"",
    );
    expect_error(
        client
            .submit_raw("mimc-6", r#"{"y":"1"}"#, 10, TASK_DEADLINE_MS)
            .await,
        "not valid JSON",
    );
    expect_error(
        client.submit_raw("mimc-6", json, 0, TASK_DEADLINE_MS).await,
        "collateral is 0",
    );
    expect_error(
        client.submit_raw("mimc-6", json, 10, 0).await,
        "deadline of 0 ms is outside",
    );
    expect_error(
        client
            .submit_raw("mimc-6", json, 1_000, TASK_DEADLINE_MS)
            .await,
        "exceeds every operator's delegated stake (largest 100)",
    );
    match client
        .request(proofrack_common::protocol::ClientRequest::Status { task: TaskId(999) })
        .await
    {
        ClientResponse::Error(e) => assert!(e.to_string().contains("unknown task task-999"), "{e}"),
        other => panic!("unknown task: {other:?}"),
    }
    // Nothing was created by the refused submissions.
    for row in client.ledger().await.operators {
        assert_eq!(row.bound_tasks, 0);
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_follows_a_task_from_queued_to_verified() {
    let cluster = Cluster::start("watch", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let opts = ScriptOptions {
        memory_free_bytes: None,
        ..ScriptOptions::default()
    };
    let mut agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", opts).await;

    let task = client.submit("mimc-4", 21, 10).await;
    let mut watch = TaskWatch::start(&client, task);
    let queued = watch
        .until("queued", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Queued { .. })
        })
        .await;
    assert!(
        queued_reason(&queued).is_some_and(|r| r.contains("telemetry")),
        "waiting for an agent's telemetry: {:?}",
        queued.state
    );
    agent.report_memory(AMPLE_MEMORY_BYTES).await;
    let offer = agent.next_offer().await;
    watch
        .until("offered", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Offered { .. })
        })
        .await;
    agent.accept(task).await;
    watch
        .until("proving", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. })
        })
        .await;
    let proof = agent.prove(&offer).await;
    assert_eq!(
        agent.deliver(&proof).await.expect("verdict"),
        DeliveryOutcome::Accepted
    );
    let last = within(TASK_TIMEOUT, "verified", watch.verified()).await;

    let mut names = watch.state_names();
    names.dedup();
    // Verification takes a few milliseconds; the watcher may see the verified state first.
    let with_verifying = ["queued", "offered", "proving", "verifying", "verified"];
    let without = ["queued", "offered", "proving", "verified"];
    assert!(
        names == with_verifying || names == without,
        "states seen: {names:?}"
    );
    eprintln!("watch saw {names:?}");
    match &last.state {
        TaskState::Verified {
            agent: a,
            proof,
            public_outputs,
            ..
        } => {
            assert_eq!(a.to_string(), "op-a/box-1");
            assert!(!proof.is_empty());
            assert_eq!(
                public_outputs.get(1),
                Some(&fr_to_le_bytes(&Fr::from(21u64))),
                "x is the task's input"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        has_history_line(&last, "proof delivered by op-a/box-1; verifying"),
        "{}",
        history(&last)
    );
    watch
        .ended()
        .await
        .expect("the watch stream ends cleanly after the terminal state");
    agent.close().await;
    cluster.shutdown().await;
}
