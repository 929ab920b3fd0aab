//! circom circuits through the network: a real coordinator and a real agent over QUIC with
//! real certificates; the circuit registered from its zkey and `.r1cs` with the `proofrack
//! circuits register` code, tasks submitted as a witness and as inputs (witness computed by
//! the client from the circuit's wasm), proved by the agent, verified by the coordinator
//! and written back as snarkjs files that `snarkjs groth16 verify` accepts. A witness is
//! served only to the agent its task is offered to (a scripted agent checks both sides). Bad
//! witnesses and inputs are refused with the reason before any stake is bound.

use super::tools::{self, snarkjs_verifies, Built};
use crate::support::cluster::{Cluster, ClusterSpec, COORDINATOR_HOST};
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::{poll_until, within};
use crate::support::{STEP_TIMEOUT, TASK_TIMEOUT};
use proofrack::circom_cmds::{self, RegisterArgs};
use proofrack::client_cmds::{self, ClientArgs, StatusArgs, SubmitArgs};
use proofrack_common::framing::recv_payload;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    read_message, write_stream_open, ClientResponse, FetchInput, InputReply, StreamOpen,
    TaskInputs, MAX_WITNESS_BYTES,
};
use proofrack_common::StakeUnits;
use proofrack_common::TaskId;
use proofrack_coordinator::registry::{CircuitRegistry, CircuitSource};
use proofrack_kernels::curve::Fr;
use proofrack_snarkjs as snarkjs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CLIENT: &str = "circom-user";

fn client_args(cluster: &Cluster) -> ClientArgs {
    cluster.material(&Identity::client(CLIENT).unwrap());
    ClientArgs {
        coordinator: format!("{COORDINATOR_HOST}:{}", cluster.addr.port()),
        certs: cluster.dir.path().join("certs"),
        client: CLIENT.to_string(),
        json: false,
        connect_timeout: Duration::from_secs(3),
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

fn snarkjs_accepts(b: &Built, dir: &Path) -> bool {
    snarkjs_verifies(&b.vk, &dir.join("public.json"), &dir.join("proof.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circom_tasks_are_proved_by_agents_and_verify_in_snarkjs() {
    let (poseidon, merkle) = circuits().await;
    let cluster = Cluster::start(
        "circom-network",
        ClusterSpec {
            circuits: vec!["mimc-4"],
            ..ClusterSpec::default()
        },
    )
    .await;
    let client = cluster.client(CLIENT).await;
    let args = client_args(&cluster);
    // register; a second registration of the same zkey is the same circuit
    let register = RegisterArgs {
        name: "poseidon".into(),
        zkey: poseidon.zkey.clone(),
        r1cs: poseidon.r1cs.clone(),
    };
    let row = circom_cmds::register(&args, &register).await.unwrap();
    assert_eq!(row.num_public_inputs, 2);
    assert_eq!(circom_cmds::register(&args, &register).await.unwrap(), row);
    // another circuit's .r1cs, another zkey under a taken name, a built-in name: refused
    let e = message(
        circom_cmds::register(
            &args,
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
            &args,
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
            &args,
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
    let mut s = submit_args("poseidon", None);
    s.wtns = Some(poseidon.wtns.clone());
    let wtns = circom_cmds::witness_for(&s).unwrap().unwrap();
    let reply = client
        .inner
        .request_with_payloads(circom_cmds::submit_request(&s, 7), &[&wtns])
        .await
        .unwrap();
    let ClientResponse::Submitted { task } = reply else {
        panic!("submission refused: {reply:?}")
    };
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
    let status = StatusArgs {
        wait: true,
        out_dir: Some(out.clone()),
    };
    within(
        TASK_TIMEOUT,
        "the witness task",
        client_cmds::status(&args, task, &status),
    )
    .await
    .unwrap();
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
    assert!(
        e.contains(&format!(
            "has {got_len} values but poseidon has {expected_len} signals"
        )),
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
    let witnesses = cluster.dir.path().join("keys/circom/witnesses");
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
    let keys_dir = cluster.dir.path().join("keys");
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
