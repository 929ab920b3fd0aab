//! The identities of the authorization table, connected to one coordinator, and helpers the
//! attack files share.

use crate::support::cluster::{Client, Cluster, COORDINATOR_HOST};
use crate::support::wait::within;
use crate::support::STEP_TIMEOUT;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    read_message, write_stream_open, ClientRequest, ClientResponse, ProtocolError, StreamOpen,
};
use proofrack_common::tls;
use proofrack_kernels::circuits::circuit_by_name;
use proofrack_kernels::groth16::{PointCheck, ProvingKey};
use proofrack_snarkjs as snarkjs;

/// Requesters alice and bob, the admins of op-a and op-b, and the deployment admin root.
pub struct Roles {
    pub alice: Client,
    pub bob: Client,
    pub ops_a: Client,
    pub ops_b: Client,
    pub root: Client,
}

pub fn id(path: &str) -> Identity {
    path.parse().expect("an identity path")
}

impl Roles {
    pub async fn connect(cluster: &Cluster) -> Roles {
        Roles {
            alice: cluster.connect_as(&id("client/alice")).await,
            bob: cluster.connect_as(&id("client/bob")).await,
            ops_a: cluster.connect_as(&id("operator/op-a/admin/ops")).await,
            ops_b: cluster.connect_as(&id("operator/op-b/admin/ops")).await,
            root: cluster.connect_as(&id("admin/root")).await,
        }
    }
}

/// The text of a refusal by the authorization table; panics on any other reply.
pub fn forbidden(reply: ClientResponse) -> String {
    match reply {
        ClientResponse::Error(e @ ProtocolError::Forbidden { .. }) => e.to_string(),
        other => panic!("expected a refusal by the authorization table, got {other:?}"),
    }
}

/// An operator or deployment command's answer: (ok, message).
pub fn admin(reply: ClientResponse) -> (bool, String) {
    match reply {
        ClientResponse::Admin { ok, message } => (ok, message),
        other => panic!("expected an Admin answer, got {other:?}"),
    }
}

/// Opens one client request stream as `identity` on a fresh connection and reads the first
/// reply without sending anything after the request frame and without finishing the stream:
/// a coordinator that read an upload before authorizing would wait here forever.
pub async fn request_and_stall(
    cluster: &Cluster,
    identity: &Identity,
    req: ClientRequest,
) -> ClientResponse {
    let config = tls::client_config(&cluster.material(identity)).expect("client config");
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal address"))
        .expect("UDP socket");
    endpoint.set_default_client_config(config);
    let conn = within(
        STEP_TIMEOUT,
        "QUIC handshake",
        endpoint
            .connect(cluster.addr, COORDINATOR_HOST)
            .expect("connect"),
    )
    .await
    .expect("handshake");
    let (mut send, mut recv) = conn.open_bi().await.expect("open a stream");
    write_stream_open(&mut send, StreamOpen::Client(req))
        .await
        .expect("send the request");
    let reply = within(
        STEP_TIMEOUT,
        "the reply before any upload",
        read_message::<_, ClientResponse>(&mut recv),
    )
    .await
    .expect("a reply");
    drop(send);
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    reply
}

/// A circom registration (zkey, `.r1cs`, one witness), written in snarkjs' formats by our
/// own writers from the cluster's built-in `mimc-4` key, so no node tools are needed.
pub fn circom_files(cluster: &Cluster) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let builtin = cluster
        .shared()
        .registry()
        .by_name("mimc-4")
        .expect("the cluster serves mimc-4");
    let bytes = std::fs::read(&builtin.key_path).expect("the built-in key file");
    let key = ProvingKey::from_bytes(&bytes, PointCheck::OnCurve).expect("the built-in key");
    let circuit = circuit_by_name("mimc-4").expect("mimc-4");
    let witness = circuit
        .witness_from_json(r#"{"x": "3", "key": "5"}"#)
        .expect("a witness");
    (
        snarkjs::write_zkey(&key),
        snarkjs::write_r1cs(&circuit.r1cs(), 1),
        snarkjs::write_wtns(&witness.full),
    )
}
