//! The authorization table over QUIC, row by row, with real certificates of every kind and
//! the refusals' exact words. A refusal changes nothing; administrators' actions, allowed or
//! not, land in the audit log.

use super::roles::{admin, circom_files, forbidden, id, request_and_stall, Roles};
use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::poll_until;
use crate::support::wire::{attempt_hello, attempt_raw_stream, REFUSAL_ATTEMPTS};
use crate::support::STEP_TIMEOUT;
use proofrack_common::protocol::{
    encode_message_into, AgentRef, AuditOutcome, AuditView, ClientRequest, ClientResponse,
    OpenFrame, ProtocolError, RegisterCircuit, StreamOpen, SubmitWitness, PROTOCOL_VERSION,
};
use proofrack_common::tls;
use proofrack_common::{OperatorId, StakeUnits, TaskId};

fn spec() -> ClusterSpec {
    ClusterSpec {
        circuits: vec!["mimc-4"],
        ..ClusterSpec::default()
    }
}

fn agent(s: &str) -> AgentRef {
    s.parse().expect("OPERATOR/NAME")
}

fn op(s: &str) -> OperatorId {
    OperatorId::new(s).expect("operator id")
}

async fn audit(c: &crate::support::cluster::Client, operator: Option<&str>) -> ClientResponse {
    c.request(ClientRequest::Audit {
        before: None,
        operator: operator.map(op),
        limit: 128,
    })
    .await
}

fn lines(reply: ClientResponse) -> AuditView {
    match reply {
        ClientResponse::Audit(v) => v,
        other => panic!("expected the audit log, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requesters_submit_and_see_only_their_own_tasks() {
    let cluster = Cluster::start("authz-tasks", spec()).await;
    let r = Roles::connect(&cluster).await;
    let mut box1 =
        ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    r.alice.wait_agent_ready("op-a", "box-1").await;

    // Only requesters submit.
    let task = r.alice.submit("mimc-4", 3, 10).await;
    for (who, c) in [
        ("admin/root", &r.root),
        ("operator/op-a/admin/ops", &r.ops_a),
    ] {
        assert_eq!(
            forbidden(c.submit_raw("mimc-4", r#"{"x":"3"}"#, 10, 60_000).await),
            format!("{who} may not submit tasks: that needs a requester client certificate (client/NAME)")
        );
    }
    let offer = box1.next_offer().await;
    assert_eq!(offer.task, task);

    // Someone else's task answers exactly like a task that does not exist.
    let unknown = TaskId(task.0 + 1_000);
    let as_unknown = |t: TaskId| ClientResponse::Error(ProtocolError::UnknownTask { task: t });
    assert_eq!(
        r.bob.request(ClientRequest::Status { task }).await,
        as_unknown(task)
    );
    assert_eq!(
        r.bob.request(ClientRequest::Status { task: unknown }).await,
        as_unknown(unknown)
    );
    for t in [task, unknown] {
        let watched = r.bob.inner.watch(t, |_| {}).await.unwrap_err().to_string();
        assert_eq!(
            watched,
            format!("the coordinator closed the request: unknown task {t}: the coordinator holds no such task; `proofrack tasks` lists yours (a finished task is forgotten after policy.request_retention_ms, a day by default, or once thousands of newer ones have finished)")
        );
    }
    assert_eq!(
        r.ops_b.request(ClientRequest::Status { task }).await,
        as_unknown(task),
        "op-b's agents never saw it"
    );
    // Its submitter, the admin of the operator whose agent it was offered to, and the
    // deployment admin see it.
    for c in [&r.alice, &r.ops_a, &r.root] {
        assert_eq!(c.status(task).await.task, task);
    }

    // The agents table is public; hardware details only for the agent's operator's admins
    // and deployment admins; in-flight tasks only those the reader may see.
    for (c, sees_hardware, sees_task) in [
        (&r.alice, false, true),
        (&r.bob, false, false),
        (&r.ops_a, true, true),
        (&r.ops_b, false, false),
        (&r.root, true, true),
    ] {
        let row = c
            .agent_row("op-a", "box-1")
            .await
            .expect("the agent is listed");
        assert!(row.connected);
        assert_eq!(row.backend.is_some(), sees_hardware, "{row:?}");
        assert_eq!(row.msm_g1_points_per_sec.is_some(), sees_hardware);
        if !sees_hardware {
            assert_eq!(
                row.hardware,
                "(hidden: op-a's admins and deployment admins see it)"
            );
        }
        assert_eq!(row.in_flight == vec![task], sees_task, "{row:?}");
    }
    // The ledger and the circuits list stay public.
    for c in [&r.alice, &r.ops_b, &r.root] {
        assert_eq!(c.ledger().await.operators.len(), 2);
        assert_eq!(c.circuits().await.circuits.len(), 1);
    }

    // `tasks` lists exactly what `status` may read; `explain` reads like `status`.
    let listed = |reply: ClientResponse| match reply {
        ClientResponse::Tasks(v) => v.rows.iter().map(|r| r.task).collect::<Vec<_>>(),
        other => panic!("expected a task list, got {other:?}"),
    };
    let list = |state: Option<&str>| ClientRequest::Tasks {
        state: state.map(str::to_string),
        before: None,
        limit: 50,
    };
    for (c, sees) in [
        (&r.alice, true),
        (&r.bob, false),
        (&r.ops_a, true),
        (&r.ops_b, false),
        (&r.root, true),
    ] {
        let want = if sees { vec![task] } else { vec![] };
        assert_eq!(listed(c.request(list(None)).await), want);
        assert_eq!(listed(c.request(list(Some("offered"))).await), want);
        assert_eq!(listed(c.request(list(Some("verified"))).await), vec![]);
        match c.request(ClientRequest::Explain { task }).await {
            ClientResponse::Explanation { text, json } if sees => {
                assert!(text.contains(&task.to_string()), "{text}");
                let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
                assert_eq!(v["circuit"], "mimc-4", "{v}");
            }
            other if !sees => assert_eq!(other, as_unknown(task)),
            other => panic!("expected the explanation, got {other:?}"),
        }
    }
    box1.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_admins_drain_withdraw_and_reset_only_their_own_and_it_is_audited() {
    let cluster = Cluster::start("authz-operators", spec()).await;
    let r = Roles::connect(&cluster).await;
    let a1 = ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    let b1 = ScriptedAgent::connect(&cluster, "op-b", "box-1", ScriptOptions::default()).await;
    r.alice.wait_agent_ready("op-a", "box-1").await;
    r.alice.wait_agent_ready("op-b", "box-1").await;
    let drain = |agent_s: &str, id: u64| ClientRequest::Drain {
        request_id: id,
        agent: agent(agent_s),
        drain: true,
    };
    let withdraw = |operator: &str, id: u64| ClientRequest::Withdraw {
        request_id: id,
        operator: op(operator),
        amount: StakeUnits(10),
    };

    // Drains: only the agent's own operator's admins.
    assert_eq!(
        forbidden(r.ops_b.request(drain("op-a/box-1", 1)).await),
        "operator/op-b/admin/ops may not drain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(
        forbidden(r.alice.request(drain("op-a/box-1", 1)).await),
        "client/alice may not drain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(
        forbidden(r.root.request(drain("op-a/box-1", 1)).await),
        "admin/root may not drain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(
        forbidden(
            r.ops_b
                .request(ClientRequest::Drain {
                    request_id: 2,
                    agent: agent("op-a/box-1"),
                    drain: false,
                })
                .await
        ),
        "operator/op-b/admin/ops may not undrain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(
        admin(r.ops_a.request(drain("op-a/box-1", 1)).await),
        (
            true,
            "op-a/box-1 drained: no new tasks; it finishes the 0 it holds".to_string()
        )
    );
    // An agent the coordinator never saw: refused with op-a's known agents, nothing stored.
    assert_eq!(
        admin(r.ops_a.request(drain("op-a/ghost", 2)).await),
        (
            false,
            "op-a/ghost is not an agent this coordinator knows (it has never connected); nothing was changed. op-a's known agents: box-1".to_string()
        )
    );

    // Withdrawals: only the operator's own admins; the other operator's stake is untouched.
    for (c, who) in [
        (&r.ops_a, "operator/op-a/admin/ops"),
        (&r.alice, "client/alice"),
        (&r.root, "admin/root"),
    ] {
        assert_eq!(
            forbidden(c.request(withdraw("op-b", 3)).await),
            format!("{who} may not withdraw the stake of op-b: that needs an operator admin of op-b (operator/op-b/admin/NAME)")
        );
    }
    let b = r.alice.operator("op-b").await;
    assert_eq!(
        (b.delegated, b.withdrawing),
        (StakeUnits(100), StakeUnits(0))
    );
    let (ok, message) = admin(r.ops_a.request(withdraw("op-a", 3)).await);
    assert!(
        ok && message.starts_with("withdrawal of 10 from op-a requested"),
        "{message}"
    );
    assert_eq!(r.alice.operator("op-a").await.withdrawing, StakeUnits(10));

    // Breaker resets: the operator's admins only.
    let reset = |agent_s: &str, id: u64| ClientRequest::ResetBreaker {
        request_id: id,
        agent: agent(agent_s),
    };
    assert_eq!(
        forbidden(r.ops_a.request(reset("op-b/box-1", 4)).await),
        "operator/op-a/admin/ops may not reset the circuit breakers of the agents of op-b: that needs an operator admin of op-b (operator/op-b/admin/NAME)"
    );
    let (ok, message) = admin(r.ops_b.request(reset("op-b/box-1", 4)).await);
    assert!(ok && message.contains("was not open"), "{message}");

    // The audit log: the deployment admin reads every line, refusals included...
    let all = lines(audit(&r.root, None).await);
    let has = |v: &AuditView, who: &str, action: &str, outcome: AuditOutcome| {
        v.lines
            .iter()
            .any(|l| l.who == who && l.action == action && l.outcome == outcome)
    };
    assert!(has(
        &all,
        "operator/op-b/admin/ops",
        "drain op-a/box-1",
        AuditOutcome::Refused
    ));
    assert!(has(
        &all,
        "client/alice",
        "drain op-a/box-1",
        AuditOutcome::Refused
    ));
    assert!(has(
        &all,
        "operator/op-a/admin/ops",
        "drain op-a/box-1",
        AuditOutcome::Done
    ));
    assert!(has(
        &all,
        "operator/op-a/admin/ops",
        "drain op-a/ghost",
        AuditOutcome::Failed
    ));
    assert!(has(
        &all,
        "operator/op-a/admin/ops",
        "withdraw 10 from op-b",
        AuditOutcome::Refused
    ));
    assert!(has(
        &all,
        "operator/op-a/admin/ops",
        "withdraw 10 from op-a",
        AuditOutcome::Done
    ));
    assert!(has(
        &all,
        "operator/op-b/admin/ops",
        "reset the circuit breaker of op-b/box-1",
        AuditOutcome::Done
    ));
    let refused = all
        .lines
        .iter()
        .find(|l| l.who == "client/alice" && l.action == "drain op-a/box-1")
        .unwrap();
    assert_eq!(
        refused.message,
        "client/alice may not drain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(all.cap, 10_000);
    // ...an operator admin its own operator's lines (who tried what on them included)...
    let mine = lines(audit(&r.ops_a, None).await);
    assert!(mine
        .lines
        .iter()
        .all(|l| l.operator.as_ref().map(|o| o.as_str()) == Some("op-a")));
    assert!(has(
        &mine,
        "operator/op-b/admin/ops",
        "drain op-a/box-1",
        AuditOutcome::Refused
    ));
    assert!(!has(
        &mine,
        "operator/op-a/admin/ops",
        "withdraw 10 from op-b",
        AuditOutcome::Refused
    ));
    // ...and nobody else.
    assert_eq!(
        forbidden(audit(&r.ops_b, Some("op-a")).await),
        "operator/op-b/admin/ops may not read the audit log of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(
        forbidden(audit(&r.alice, None).await),
        "client/alice may not read the whole audit log: that needs a deployment admin (admin/NAME)"
    );
    a1.close().await;
    b1.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_admins_register_and_unregister_circuits_authorized_before_any_upload() {
    let cluster = Cluster::start(
        "authz-circuits",
        ClusterSpec {
            // A short deadline is admissible: the task below must end soon, unproven.
            policy: proofrack_coordinator::Policy {
                deadline_margin_ms: 100,
                ..crate::support::cluster::test_policy()
            },
            ..spec()
        },
    )
    .await;
    let r = Roles::connect(&cluster).await;
    let (zkey, r1cs, wtns) = circom_files(&cluster);
    let register = || {
        ClientRequest::RegisterCircuit(RegisterCircuit {
            name: "attack-mimc".into(),
        })
    };

    // Refused before a byte of the upload is read: the reply comes while the zkey is still
    // to be sent (the stream stays open and nothing follows the request).
    for (who, text) in [
        ("client/mallory", "client/mallory may not register circuits: that needs a deployment admin (admin/NAME)"),
        ("operator/op-a/admin/ops", "operator/op-a/admin/ops may not register circuits: that needs a deployment admin (admin/NAME)"),
    ] {
        let reply = request_and_stall(&cluster, &id(who), register()).await;
        assert_eq!(forbidden(reply), text);
    }
    assert_eq!(
        r.root.circuits().await.circuits.len(),
        1,
        "nothing registered"
    );

    // The deployment admin registers it; a requester submits a witness task for it.
    let row = match r
        .root
        .inner
        .request_with_payloads(register(), &[&zkey, &r1cs])
        .await
        .expect("registration answered")
    {
        ClientResponse::Registered(row) => row,
        other => panic!("registration refused: {other:?}"),
    };
    assert_eq!(row.name, "attack-mimc");
    let submitted = r
        .alice
        .inner
        .request_with_payloads(
            ClientRequest::SubmitWitness(SubmitWitness {
                circuit: "attack-mimc".into(),
                collateral: StakeUnits(10),
                // No agent runs it: it fails at this deadline, then the circuit is unused.
                deadline_ms: 2_000,
                request_id: 1,
            }),
            &[&wtns],
        )
        .await
        .expect("submission answered");
    let ClientResponse::Submitted { task } = submitted else {
        panic!("witness submission refused: {submitted:?}")
    };

    // Unregistering: the deployment admin only, not while a task uses it, not a built-in.
    let unregister = |name: &str| ClientRequest::UnregisterCircuit { name: name.into() };
    assert_eq!(
        forbidden(r.ops_a.request(unregister("attack-mimc")).await),
        "operator/op-a/admin/ops may not unregister circuits: that needs a deployment admin (admin/NAME)"
    );
    assert_eq!(
        forbidden(r.alice.request(unregister("attack-mimc")).await),
        "client/alice may not unregister circuits: that needs a deployment admin (admin/NAME)"
    );
    assert_eq!(
        admin(r.root.request(unregister("attack-mimc")).await),
        (
            false,
            "circuit attack-mimc is still used by 1 unfinished tasks; unregister it once they are verified or failed".to_string()
        )
    );
    assert_eq!(
        admin(r.root.request(unregister("mimc-4")).await),
        (
            false,
            "mimc-4 is a built-in circuit from coordinator.toml's `circuits`; remove it there and restart the coordinator".to_string()
        )
    );
    // Once the task is over (its deadline passes unproven: no agents), it goes.
    let _ = r.alice.inner.watch(task, |_| {}).await;
    let manifest = cluster.keys_dir().join("circom/attack-mimc.circuit");
    assert!(manifest.exists());
    poll_until(STEP_TIMEOUT, "the circuit to be unused", || async {
        admin(r.root.request(unregister("attack-mimc")).await)
            .0
            .then_some(())
    })
    .await;
    assert!(!manifest.exists(), "a restart must not bring it back");
    let names: Vec<String> = r
        .root
        .circuits()
        .await
        .circuits
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["mimc-4"]);
    assert_eq!(
        admin(r.root.request(unregister("attack-mimc")).await),
        (
            false,
            "unknown circuit \"attack-mimc\"; list registered circuits with `proofrack circuits`"
                .to_string()
        )
    );
    // The built-in circuit with the same key is still served.
    assert_eq!(r.root.circuit("mimc-4").await.key, row.key);
    let log = lines(audit(&r.root, None).await);
    for (who, action, outcome) in [
        (
            "client/mallory",
            "register circuit attack-mimc",
            AuditOutcome::Refused,
        ),
        (
            "admin/root",
            "register circuit attack-mimc",
            AuditOutcome::Done,
        ),
        (
            "operator/op-a/admin/ops",
            "unregister circuit attack-mimc",
            AuditOutcome::Refused,
        ),
        (
            "admin/root",
            "unregister circuit mimc-4",
            AuditOutcome::Failed,
        ),
        (
            "admin/root",
            "unregister circuit attack-mimc",
            AuditOutcome::Done,
        ),
    ] {
        assert!(
            log.lines
                .iter()
                .any(|l| l.who == who && l.action == action && l.outcome == outcome),
            "no {who} {action} {outcome:?} in {:#?}",
            log.lines
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chain_mode_a_withdrawal_is_refused_saying_where_to_go() {
    let cluster = Cluster::start("authz-chain", spec()).await;
    // What `ChainStakeSource::attach` sets: stake comes from this registry contract.
    let registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    assert!(cluster.shared().trust().set_chain_registry(registry.into()));
    let ops_a = cluster.connect_as(&id("operator/op-a/admin/ops")).await;
    let text = forbidden(
        ops_a
            .request(ClientRequest::Withdraw {
                request_id: 1,
                operator: op("op-a"),
                amount: StakeUnits(10),
            })
            .await,
    );
    assert_eq!(
        text,
        format!(
            "operator/op-a/admin/ops may not withdraw the stake of op-a: stake comes from the chain, so \
             withdrawals are the StakeRegistry contract's business: call requestWithdrawal(operator, amount) \
             on {registry} from the operator's address, then completeWithdrawal after the unbonding delay; \
             the coordinator follows the chain"
        )
    );
    assert_eq!(ops_a.operator("op-a").await.withdrawing, StakeUnits(0));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_make_no_client_requests_and_admins_open_no_agent_streams() {
    let cluster = Cluster::start("authz-streams", spec()).await;
    let mut ledger = Vec::new();
    encode_message_into(
        &mut ledger,
        &OpenFrame {
            protocol_version: PROTOCOL_VERSION,
            open: StreamOpen::Client(ClientRequest::Ledger),
        },
    )
    .unwrap();
    let config = |who: &str| tls::client_config(&cluster.material(&id(who))).unwrap();
    // Every refusal reaches the peer whenever it looks (the e2e identity test tries it
    // `REFUSAL_ATTEMPTS` times; a few suffice here).
    for _ in 0..REFUSAL_ATTEMPTS.min(3) {
        let said =
            attempt_raw_stream(cluster.addr, config("operator/op-a/agent/box-1"), &ledger).await;
        assert!(
            said.contains("operator/op-a/agent/box-1 may not open a client request"),
            "{said}"
        );
        for who in ["admin/root", "operator/op-a/admin/ops"] {
            let said = attempt_hello(cluster.addr, config(who))
                .await
                .expect_err("an admin is no agent");
            assert!(
                said.contains(&format!("{who} may not open an agent control stream")),
                "{said}"
            );
        }
    }
    for who in ["admin/root", "operator/op-a/admin/ops", "client/alice"] {
        let said = attempt_raw_stream(cluster.addr, config(who), &ledger).await;
        assert!(said.starts_with("reply: Ledger("), "{who}: {said}");
    }
    cluster.shutdown().await;
}
