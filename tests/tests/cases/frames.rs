//! Peers that break the framing or the protocol are told why and cut off; everyone else is
//! served on.

use crate::support::checks::{agent_is, assert_row};
use crate::support::cluster::{Cluster, ClusterSpec};
use crate::support::real_agent::{cpu_prover, RealAgent};
use crate::support::scripted::{ScriptOptions, ScriptedAgent};
use crate::support::wait::TaskWatch;
use crate::support::wire::{attempt_raw_stream, REFUSAL_ATTEMPTS};
use proofrack_common::framing::MAX_FRAME_BYTES;
use proofrack_common::identity::Identity;
use proofrack_common::tls;
use proofrack_common::KeyId;

/// This build's protocol version as the one-byte varint a stream opening starts with.
const VERSION: u8 = proofrack_common::protocol::PROTOCOL_VERSION as u8;
const _: () = assert!(
    proofrack_common::protocol::PROTOCOL_VERSION < 127,
    "one varint byte"
);

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
        .open_raw_stream(&frame(6, &[VERSION, 0xff, 0xff, 0xff, 0xff, 0x0f]))
        .await;
    let said = opener.refusal().await;
    eprintln!("{}: {said}", opener.identity);
    assert!(
        said.contains("malformed message") && said.contains("OpenFrame"),
        "malformed stream opening: {said}"
    );

    // A stream opened with a protocol version this coordinator does not speak.
    let mut future = ScriptedAgent::connect(&cluster, "op-b", "future", quiet()).await;
    future
        .open_raw_stream(&frame(2, &[VERSION + 1, 0x00]))
        .await;
    let said = future.refusal().await;
    eprintln!("{}: {said}", future.identity);
    assert!(
        said.contains(&format!("protocol version mismatch: coordinator speaks {VERSION}, agent speaks {}; upgrade the coordinator", VERSION + 1)),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_fetch_gets_a_clear_error_and_the_connection_stays_up() {
    let cluster = Cluster::start("unknown-key", ClusterSpec::default()).await;
    let client = cluster.client("alice").await;
    let agent = ScriptedAgent::connect(&cluster, "op-a", "box-1", ScriptOptions::default()).await;
    let unknown = KeyId([7; 32]);
    let err = agent.fetch_key(unknown).await.expect_err("no such key");
    assert!(
        err.contains(&format!("unknown proving key {unknown}")),
        "unknown key: {err}"
    );
    // Same connection, a key the coordinator has: it arrives intact (its bytes hash to its id).
    let row = client.circuit("mimc-6").await;
    let bytes = agent.fetch_key(row.key).await.expect("a registered key");
    assert_eq!(bytes.len() as u64, row.key_bytes);
    assert_eq!(proofrack_kernels::groth16::key_id(&bytes), row.key.0);
    assert!(
        agent.conn.close_reason().is_none(),
        "the connection stayed up"
    );
    agent.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_speaking_another_protocol_version_is_told_to_upgrade() {
    let cluster = Cluster::start("client-version", ClusterSpec::default()).await;
    let config = tls::client_config(&cluster.material(&Identity::client("old").expect("identity")))
        .expect("config");
    // The reason must reach the client every time, not only when the close wins a race with
    // the stream's end.
    for _ in 0..REFUSAL_ATTEMPTS {
        let said = attempt_raw_stream(
            cluster.addr,
            config.clone(),
            &frame(2, &[VERSION + 1, 0x00]),
        )
        .await;
        assert!(
            said.contains(&format!(
                "protocol version mismatch: coordinator speaks {VERSION}, client speaks {}",
                VERSION + 1
            )),
            "version mismatch: {said}"
        );
    }
    // The coordinator serves clients of its own version on.
    let client = cluster.client("alice").await;
    assert_eq!(client.circuits().await.circuits.len(), 3);
    cluster.shutdown().await;
}
