//! circom circuits through the network: a real coordinator and a real agent over QUIC with
//! real certificates; the circuit registered from its zkey and `.r1cs` with the `proofrack
//! circuits register` code, tasks submitted as a witness and as inputs (witness computed by
//! the client from the circuit's wasm), proved by the agent, verified by the coordinator
//! and written back as snarkjs files that `snarkjs groth16 verify` accepts. A witness is
//! served only to the agent its task is offered to (a scripted agent checks both sides). Bad
//! witnesses and inputs are refused with the reason before any stake is bound. An agent that
//! restarts with a circom task bound to it resumes and proves it.

use super::tools::{self, snarkjs_verifies, Built};
use crate::support::checks::agent_is;
use crate::support::cluster::{Client, Cluster, ClusterSpec, COORDINATOR_HOST};
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{history, poll_until, within, TaskWatch};
use crate::support::{STEP_TIMEOUT, TASK_TIMEOUT};
use proofrack::circom_cmds::{self, RegisterArgs};
use proofrack::client_cmds::{self, ClientArgs, StatusArgs, SubmitArgs};
use proofrack_common::framing::recv_payload;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    read_message, write_stream_open, ClientResponse, FetchInput, InputReply, StreamOpen,
    TaskInputs, TaskState, MAX_WITNESS_BYTES,
};
use proofrack_common::StakeUnits;
use proofrack_common::TaskId;
use proofrack_coordinator::{CircuitRegistry, CircuitSource};
use proofrack_kernels::curve::Fr;
use proofrack_snarkjs as snarkjs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CLIENT: &str = "circom-user";
/// The deployment admin who registers circuits.
const ADMIN: &str = "admin/deploy";

fn client_args(cluster: &Cluster) -> ClientArgs {
    cluster.material(&Identity::client(CLIENT).unwrap());
    ClientArgs {
        coordinator: format!("{COORDINATOR_HOST}:{}", cluster.addr.port()),
        certs: cluster.dir.path().join("certs"),
        client: CLIENT.to_string(),
        identity: None,
        cert: None,
        key: None,
        json: false,
        connect_timeout: Duration::from_secs(3),
    }
}

/// The same coordinator, as the deployment admin (`--identity admin/deploy`).
fn admin_args(cluster: &Cluster) -> ClientArgs {
    cluster.material(&ADMIN.parse::<Identity>().unwrap());
    ClientArgs {
        identity: Some(ADMIN.to_string()),
        ..client_args(cluster)
    }
}

fn submit_args(circuit: &str, out_dir: Option<PathBuf>) -> SubmitArgs {
    SubmitArgs {
        circuit: circuit.to_string(),
        input: None,
        wtns: None,
        wasm: None,
        snarkjs: tools::repo_root().join("node_modules/.bin/snarkjs"),
        deadline: Duration::from_secs(120),
        collateral: StakeUnits(10),
        wait: out_dir.is_some(),
        request_id: None,
        out_dir,
    }
}

fn message(e: anyhow::Error) -> String {
    format!("{e:#}")
}

/// Both circuits built (shared with the other tests of this binary), off the async threads.
async fn circuits() -> (&'static Built, &'static Built) {
    tokio::task::spawn_blocking(|| (tools::poseidon(), tools::merkle()))
        .await
        .expect("building the circuits")
}

/// A `FetchInput` stream as an agent opens it.
async fn fetch_input(
    agent: &ScriptedAgent,
    task: TaskId,
    sha256: [u8; 32],
) -> Result<Vec<u8>, String> {
    within(STEP_TIMEOUT, "a witness fetch", async {
        let (mut send, mut recv) = agent.conn.open_bi().await.map_err(|e| e.to_string())?;
        write_stream_open(
            &mut send,
            StreamOpen::FetchInput(FetchInput { task, sha256 }),
        )
        .await
        .map_err(|e| e.to_string())?;
        let _ = send.finish();
        match read_message::<_, InputReply>(&mut recv)
            .await
            .map_err(|e| e.to_string())?
        {
            InputReply::Found { .. } => {}
            InputReply::Error(e) => return Err(e.to_string()),
        }
        recv_payload(&mut recv, MAX_WITNESS_BYTES)
            .await
            .map_err(|e| e.to_string())
    })
    .await
}

/// A coordinator of `spec` with one small built-in circuit (circom circuits are registered).
async fn circom_cluster(name: &str, spec: ClusterSpec) -> Cluster {
    let spec = ClusterSpec {
        circuits: vec!["mimc-4"],
        ..spec
    };
    Cluster::start(name, spec).await
}

/// `circuits register poseidon` with `b`'s zkey and `.r1cs`.
fn poseidon_registration(b: &Built) -> RegisterArgs {
    RegisterArgs {
        name: "poseidon".into(),
        zkey: b.zkey.clone(),
        r1cs: b.r1cs.clone(),
    }
}

/// Submits `b`'s witness as a `poseidon` task with `request_id`; the task and the witness.
async fn submit_witness(client: &Client, b: &Built, request_id: u64) -> (TaskId, Vec<u8>) {
    let mut s = submit_args("poseidon", None);
    s.wtns = Some(b.wtns.clone());
    let wtns = circom_cmds::witness_for(&s).unwrap().unwrap();
    let reply = client
        .inner
        .request_with_payloads(circom_cmds::submit_request(&s, request_id), &[&wtns])
        .await
        .unwrap();
    let ClientResponse::Submitted { task } = reply else {
        panic!("submission refused: {reply:?}")
    };
    (task, wtns)
}

/// `status --wait --out-dir out`: waits for `task`'s proof and writes its snarkjs files.
async fn wait_for_proof(args: &ClientArgs, task: TaskId, out: &Path, limit: Duration) {
    let status = StatusArgs {
        wait: true,
        out_dir: Some(out.to_path_buf()),
    };
    within(
        limit,
        "the task's proof",
        client_cmds::status(args, task, &status),
    )
    .await
    .unwrap();
}

fn snarkjs_accepts(b: &Built, dir: &Path) -> bool {
    snarkjs_verifies(&b.vk, &dir.join("public.json"), &dir.join("proof.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circom_tasks_are_proved_by_agents_and_verify_in_snarkjs() {
    let (poseidon, merkle) = circuits().await;
    let cluster = circom_cluster("circom-network", ClusterSpec::default()).await;
    let client = cluster.client(CLIENT).await;
    let args = client_args(&cluster);
    let admin = admin_args(&cluster);
    // only a deployment admin registers; a second registration of the same zkey is the same
    // circuit
    let register = poseidon_registration(poseidon);
    let e = message(circom_cmds::register(&args, &register).await.unwrap_err());
    assert_eq!(
        e,
        "client/circom-user may not register circuits: that needs a deployment admin (admin/NAME)"
    );
    let row = circom_cmds::register(&admin, &register).await.unwrap();
    assert_eq!(row.num_public_inputs, 2);
    assert_eq!(circom_cmds::register(&admin, &register).await.unwrap(), row);
    // another circuit's .r1cs, another zkey under a taken name, a built-in name: refused
    let e = message(
        circom_cmds::register(
            &admin,
            &RegisterArgs {
                name: "mixed".into(),
                r1cs: merkle.r1cs.clone(),
                ..register.clone()
            },
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("not the same circuit"), "{e}");
    let e = message(
        circom_cmds::register(
            &admin,
            &RegisterArgs {
                zkey: merkle.zkey.clone(),
                r1cs: merkle.r1cs.clone(),
                ..register.clone()
            },
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("registered already with another key"), "{e}");
    let e = message(
        circom_cmds::register(
            &admin,
            &RegisterArgs {
                name: "mimc-4".into(),
                ..register.clone()
            },
        )
        .await
        .unwrap_err(),
    );
    assert!(e.contains("built-in circuit"), "{e}");

    // a witness task offered to a scripted agent: that agent can fetch the witness, another
    // cannot; it declines and leaves
    let mut offered =
        ScriptedAgent::connect(&cluster, "op-b", "script-1", ScriptOptions::default()).await;
    let silent = ScriptOptions {
        memory_free_bytes: None,
        ..ScriptOptions::default()
    };
    let other = ScriptedAgent::connect(&cluster, "op-a", "script-2", silent).await;
    let (task, wtns) = submit_witness(&client, poseidon, 7).await;
    let offer = offered.next_offer().await;
    assert_eq!(offer.task, task);
    let Ok(TaskInputs::Witness(witness_ref)) = TaskInputs::decode(&offer.inputs) else {
        panic!("a circom offer carries a witness reference")
    };
    let e = fetch_input(&other, task, witness_ref.sha256)
        .await
        .unwrap_err();
    assert!(e.contains("not offered or bound to op-a/script-2"), "{e}");
    assert_eq!(
        fetch_input(&offered, task, witness_ref.sha256)
            .await
            .unwrap(),
        wtns
    );
    offered.decline(task, "leaving").await;
    offered.close().await;
    other.close().await;

    // a real agent proves it; the client fetches the proof with `status --wait --out-dir`
    let agent = RealAgent::start(&cluster, "op-a", "gpu-1", cpu_prover());
    let out = cluster.dir.path().join("proof-wtns");
    wait_for_proof(&args, task, &out, TASK_TIMEOUT).await;
    assert!(
        snarkjs_accepts(poseidon, &out),
        "snarkjs rejects the network's proof"
    );
    let expected_public = snarkjs::read_wtns(&wtns).unwrap();
    let public =
        snarkjs::public_from_json(&std::fs::read_to_string(out.join("public.json")).unwrap())
            .unwrap();
    assert_eq!(public, expected_public[1..=2].to_vec());

    // inputs: `submit --wait --out-dir` computes the witness from the wasm, then waits
    let input = cluster.dir.path().join("input.json");
    std::fs::write(&input, r#"{"a": "4", "b": "6"}"#).unwrap();
    let out = cluster.dir.path().join("proof-input");
    let mut s = submit_args("poseidon", Some(out.clone()));
    s.input = Some(input);
    s.wasm = Some(poseidon.wasm.clone());
    within(
        TASK_TIMEOUT,
        "the inputs task",
        client_cmds::submit(&args, &s),
    )
    .await
    .unwrap();
    assert!(
        snarkjs_accepts(poseidon, &out),
        "snarkjs rejects the inputs task's proof"
    );
    let public: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(out.join("public.json")).unwrap()).unwrap();
    assert_eq!(public[1], "6", "the public input b");

    // `proofrack circuits vk`: the coordinator's verification key, as snarkjs reads it,
    // checks the network's proof of a registered circuit (built-in ones: the next test)
    let vk = cluster.dir.path().join("poseidon-vk.json");
    client_cmds::verification_key(&args, "poseidon", &vk)
        .await
        .unwrap();
    assert!(
        snarkjs_verifies(&vk, &out.join("public.json"), &out.join("proof.json")),
        "snarkjs rejects the poseidon proof with `circuits vk`'s key"
    );

    // refused before any stake is bound: another circuit's witness (wrong length), a witness
    // that breaks a constraint, inputs the circuit's own generator refuses
    let mut s = submit_args("poseidon", None);
    s.wtns = Some(merkle.wtns.clone());
    let e = message(client_cmds::submit(&args, &s).await.unwrap_err());
    let expected_len = snarkjs::read_wtns(&std::fs::read(&poseidon.wtns).unwrap())
        .unwrap()
        .len();
    let got_len = snarkjs::read_wtns(&std::fs::read(&merkle.wtns).unwrap())
        .unwrap()
        .len();
    // A longer witness is refused from its announced size before a byte is stored (the
    // upload limit for poseidon's witness); a shorter one by its signal count.
    assert!(
        e.contains(&format!(
            "has {got_len} values but poseidon has {expected_len} signals"
        )) || (got_len > expected_len
            && e.contains(&format!(
                "the witness of {} bytes is above the",
                std::fs::metadata(&merkle.wtns).unwrap().len()
            ))),
        "{e}"
    );
    let mut tampered = expected_public.clone();
    let last = tampered.len() - 1;
    tampered[last] += Fr::from(1u64);
    let bad = cluster.dir.path().join("tampered.wtns");
    std::fs::write(&bad, snarkjs::write_wtns(&tampered)).unwrap();
    s.wtns = Some(bad);
    let e = message(client_cmds::submit(&args, &s).await.unwrap_err());
    assert!(e.contains("does not satisfy constraint"), "{e}");
    let bad_input = cluster.dir.path().join("bad-input.json");
    std::fs::write(
        &bad_input,
        r#"{"leaf": "42", "siblings": ["17", "99"], "index_bits": ["2", "0"]}"#,
    )
    .unwrap();
    let mut s = submit_args("poseidon", None);
    s.input = Some(bad_input);
    s.wasm = Some(merkle.wasm.clone());
    let e = message(client_cmds::submit(&args, &s).await.unwrap_err());
    assert!(e.contains("do not satisfy the circuit"), "{e}");
    let op = client.operator("op-a").await;
    assert_eq!(
        (op.active, op.slashed),
        (StakeUnits::ZERO, StakeUnits::ZERO)
    );

    // verified tasks' witnesses are removed from the coordinator's disk
    let witnesses = cluster.keys_dir().join("circom/witnesses");
    poll_until(
        STEP_TIMEOUT,
        "the verified tasks' witnesses to be removed",
        || {
            let left = std::fs::read_dir(&witnesses).map_or(0, |d| d.count());
            async move { (left == 0).then_some(()) }
        },
    )
    .await;

    // the registration is on disk: a restarted coordinator loads it with the same key
    let keys_dir = cluster.keys_dir();
    let reloaded =
        tokio::task::spawn_blocking(move || CircuitRegistry::load_or_generate(&keys_dir, &[]))
            .await
            .unwrap()
            .unwrap();
    let again = reloaded.by_name("poseidon").expect("poseidon reloaded");
    assert_eq!(again.key_id, row.key);
    assert!(matches!(again.source, CircuitSource::Circom(_)));

    agent.stop().await;
    cluster.shutdown().await;
}

/// An agent that accepted a circom task and restarted (its process gone, nothing of the task
/// remembered) is told to resume it when it connects again, and proves it: a circom task is
/// judged by the same `can_prove` whether it is offered or resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_resumes_its_circom_task() {
    let poseidon = tokio::task::spawn_blocking(tools::poseidon)
        .await
        .expect("building the circuit");
    let spec = ClusterSpec {
        operators: vec![("op-a", 100)],
        ..ClusterSpec::default()
    };
    let cluster = circom_cluster("circom-resume", spec).await;
    let client = cluster.client(CLIENT).await;
    circom_cmds::register(&admin_args(&cluster), &poseidon_registration(poseidon))
        .await
        .unwrap();

    // Before the restart: the agent takes the witness task, then its process dies.
    let mut before =
        ScriptedAgent::connect(&cluster, "op-a", "gpu-1", ScriptOptions::default()).await;
    client.wait_agent_ready("op-a", "gpu-1").await;
    let (task, _) = submit_witness(&client, poseidon, 11).await;
    let mut watch = TaskWatch::start(&client, task);
    assert_eq!(before.next_offer().await.task, task);
    before.accept(task).await;
    watch
        .until("proving by op-a/gpu-1", STEP_TIMEOUT, |v| {
            matches!(v.state, TaskState::Proving { .. }) && agent_is(&v.state, "op-a", "gpu-1")
        })
        .await;
    before.close().await;
    client.wait_agent_gone("op-a", "gpu-1").await;
    let op = client.operator("op-a").await;
    assert_eq!(
        op.active,
        StakeUnits(10),
        "the task's collateral stays bound"
    );

    // After: the same agent, started afresh, is told to resume the task, and proves it.
    let agent = RealAgent::start(&cluster, "op-a", "gpu-1", cpu_prover());
    let done = watch.verified().await;
    assert!(agent_is(&done.state, "op-a", "gpu-1"), "{:?}", done.state);
    let op = client.operator("op-a").await;
    assert_eq!(
        (op.active, op.slashed),
        (StakeUnits::ZERO, StakeUnits::ZERO),
        "the restarted agent did not resume the task: it missed its due time\n{}",
        history(&done)
    );
    assert!(
        !watch.state_names().contains(&"reassigning"),
        "the task was handed over instead of resumed: {:?}",
        watch.state_names()
    );
    let out = cluster.dir.path().join("proof-resumed");
    wait_for_proof(&client_args(&cluster), task, &out, STEP_TIMEOUT).await;
    assert!(
        snarkjs_accepts(poseidon, &out),
        "snarkjs rejects the resumed task's proof"
    );
    agent.stop().await;
    cluster.shutdown().await;
}

/// `proofrack circuits vk` for a built-in circuit, whose key only the coordinator has (it
/// generated it at its first start): snarkjs verifies a proof an agent made on the network
/// with the verification key the command writes. The task's input is a JSON number, as
/// snarkjs users write inputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_circuit_proofs_verify_in_snarkjs_with_the_key_circuits_vk_writes() {
    let cluster = Cluster::start(
        "builtin-vk",
        ClusterSpec {
            circuits: vec!["mimc-4"],
            ..ClusterSpec::default()
        },
    )
    .await;
    let args = client_args(&cluster);
    let agent = RealAgent::start(&cluster, "op-a", "gpu-1", cpu_prover());
    let builtin_input = cluster.dir.path().join("mimc-input.json");
    // a JSON number, as snarkjs users write inputs
    std::fs::write(&builtin_input, r#"{"x": 7, "key": "11"}"#).unwrap();
    let builtin_out = cluster.dir.path().join("proof-mimc");
    let mut s = submit_args("mimc-4", Some(builtin_out.clone()));
    s.input = Some(builtin_input);
    within(
        TASK_TIMEOUT,
        "the built-in task",
        client_cmds::submit(&args, &s),
    )
    .await
    .unwrap();
    let mimc_vk = cluster.dir.path().join("mimc-4-vk.json");
    client_cmds::verification_key(&args, "mimc-4", &mimc_vk)
        .await
        .unwrap();
    assert!(
        snarkjs_verifies(
            &mimc_vk,
            &builtin_out.join("public.json"),
            &builtin_out.join("proof.json")
        ),
        "snarkjs rejects the built-in circuit's network proof with `circuits vk`'s key"
    );
    let public: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(builtin_out.join("public.json")).unwrap())
            .unwrap();
    assert_eq!(
        public[1..],
        ["7".to_string(), "11".to_string()],
        "x and key"
    );
    let e = message(
        client_cmds::verification_key(&args, "nope", &cluster.dir.path().join("x.json"))
            .await
            .unwrap_err(),
    );
    assert!(e.contains("unknown circuit \"nope\""), "{e}");
    agent.stop().await;
    cluster.shutdown().await;
}
