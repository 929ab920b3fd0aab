//! The wire as a scripted agent speaks it: the hello and telemetry it sends, connections
//! with any client configuration (including ones the coordinator must refuse).

use super::cluster::COORDINATOR_HOST;
use super::wait::within;
use super::STEP_TIMEOUT;
use proofrack_common::protocol::{
    read_message, write_message, write_stream_open, AgentHello, AgentToCoordinator, ClientResponse,
    CoordinatorToAgent, StreamOpen,
};
use proofrack_common::telemetry::Calibration;
use proofrack_common::testkit;
use proofrack_common::tls::close_reason_text;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex as StdMutex;
use tokio::sync::Mutex;

/// Fresh connections tried for a refusal whose reason must reach the peer every time: a reason
/// that races the end of the stream is lost only now and then (about 1 in 10 here).
pub const REFUSAL_ATTEMPTS: usize = 30;

/// Memory a scripted agent reports unless told otherwise: ample for every test circuit.
pub const AMPLE_MEMORY_BYTES: u64 = 8 << 30;

/// How a scripted agent presents itself.
#[derive(Clone, Debug)]
pub struct ScriptOptions {
    pub max_concurrent_tasks: u32,
    /// Compute memory reported in telemetry; `None` sends no telemetry until
    /// [`ScriptedAgent::report_memory`] (the coordinator then offers it nothing).
    pub memory_free_bytes: Option<u64>,
    pub calibration: Calibration,
    /// Dial this address instead of the coordinator's (a proxy the test controls).
    pub via: Option<std::net::SocketAddr>,
    /// The connection's liveness (a partition test shortens the idle timeout).
    pub liveness: proofrack_common::tls::Liveness,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        ScriptOptions {
            max_concurrent_tasks: 1,
            memory_free_bytes: Some(AMPLE_MEMORY_BYTES),
            calibration: testkit::cpu_calibration(),
            via: None,
            liveness: Default::default(),
        }
    }
}

/// The hello a scripted agent sends: its slots and calibration, no GPUs, no cached keys.
pub fn hello(opts: &ScriptOptions) -> AgentHello {
    testkit::hello(&opts.calibration, opts.max_concurrent_tasks)
}

/// Opens a QUIC connection with `config` (whatever certificate it carries).
pub async fn dial(
    addr: SocketAddr,
    config: quinn::ClientConfig,
) -> (quinn::Endpoint, quinn::Connection) {
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal address"))
        .expect("UDP socket");
    endpoint.set_default_client_config(config);
    let connecting = endpoint
        .connect(addr, COORDINATOR_HOST)
        .expect("connect parameters");
    // TLS 1.3 completes the client side first: a refused certificate still connects here and
    // fails at the first stream operation.
    let conn = within(STEP_TIMEOUT, "QUIC handshake", connecting)
        .await
        .unwrap_or_else(|e| panic!("handshake with the coordinator failed: {e}"));
    (endpoint, conn)
}

/// Connects with `config`, sends an agent hello on a control stream and returns the
/// coordinator's first reply, or what went wrong with the connection's close reason (the
/// text the coordinator gave, or the TLS alert).
pub async fn attempt_hello(
    addr: SocketAddr,
    config: quinn::ClientConfig,
) -> Result<CoordinatorToAgent, String> {
    let (endpoint, conn) = dial(addr, config).await;
    let attempt = async {
        let why = |step: &str, e: &dyn std::fmt::Display| {
            format!(
                "{step}: {e}; close reason: {}",
                close_reason_text(&conn).unwrap_or_default()
            )
        };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| why("open_bi", &e))?;
        write_stream_open(
            &mut send,
            StreamOpen::Control(hello(&ScriptOptions::default())),
        )
        .await
        .map_err(|e| why("write hello", &e))?;
        read_message::<_, CoordinatorToAgent>(&mut recv)
            .await
            .map_err(|e| why("read reply", &e))
    };
    let out = within(STEP_TIMEOUT, "the coordinator's answer to a hello", attempt).await;
    conn.close(0u32.into(), b"done");
    endpoint.close(0u32.into(), b"done");
    out
}

/// Sends one telemetry report with the next sequence number and the memory currently set
/// (nothing while it is `None`). Both are read under the stream's lock, so reports go out in
/// sequence order and none carries a value older than one already sent.
pub async fn send_telemetry(
    control: &Mutex<quinn::SendStream>,
    seq: &AtomicU64,
    memory: &StdMutex<Option<u64>>,
    calibration: &Calibration,
) -> Result<(), String> {
    let mut control = control.lock().await;
    let Some(memory_bytes) = *memory.lock().expect("memory setting") else {
        return Ok(());
    };
    let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
    let msg = AgentToCoordinator::Telemetry(testkit::cpu_report(n, memory_bytes, calibration));
    write_message(&mut *control, &msg)
        .await
        .map_err(|e| e.to_string())
}

/// Connects with `config`, opens a stream, writes `bytes` as they are and reads the reply
/// as a client would; returns what the peer learns: the reply, or the read error with the
/// connection's close reason as `CoordinatorClient` reports it.
pub async fn attempt_raw_stream(
    addr: SocketAddr,
    config: quinn::ClientConfig,
    bytes: &[u8],
) -> String {
    let (endpoint, conn) = dial(addr, config).await;
    let attempt = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(bytes).await.map_err(|e| e.to_string())?;
        let _ = send.finish();
        read_message::<_, ClientResponse>(&mut recv)
            .await
            .map(|reply| format!("reply: {reply:?}"))
            .map_err(|e| e.to_string())
    };
    let out = within(
        STEP_TIMEOUT,
        "the coordinator's answer to a raw stream",
        attempt,
    )
    .await;
    let said = match out {
        Ok(reply) => reply,
        Err(e) => close_reason_text(&conn).unwrap_or(e),
    };
    conn.close(0u32.into(), b"done");
    endpoint.close(0u32.into(), b"done");
    said
}
