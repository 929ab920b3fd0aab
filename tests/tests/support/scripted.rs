//! An agent the test drives step by step over the real wire protocol: hello, telemetry with
//! chosen memory and calibration, offers received and answered, the key fetched with
//! `FetchKey`, proofs made with the kernels (or bytes chosen by the test) and delivered. It
//! can also misbehave: raw frames, oversized frames, proofs for other agents' tasks.

pub use super::wire::{attempt_hello, ScriptOptions, AMPLE_MEMORY_BYTES};

use super::cluster::Cluster;
use super::wait::within;
use super::wire::{dial, hello, send_telemetry};
use super::STEP_TIMEOUT;
use proofrack_common::framing::recv_payload;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::{
    read_message, write_message, write_stream_open, AgentRef, AgentToCoordinator,
    CoordinatorToAgent, DeliverProof, DeliveryOutcome, DeliveryReply, FetchKey, KeyReply,
    OfferDecision, OfferReply, StreamOpen, TaskOffer, Welcome, MAX_PROVING_KEY_BYTES,
};
use proofrack_common::telemetry::Calibration;
use proofrack_common::tls::{self, close_reason_text};
use proofrack_common::{KeyId, TaskId};
use proofrack_kernels::circuits::circuit_by_name;
use proofrack_kernels::cpu::CpuBackend;
use proofrack_kernels::curve::Fr;
use proofrack_kernels::field_bytes::{fr_from_le_bytes, fr_to_le_bytes};
use proofrack_kernels::groth16::{proof_to_bytes, prove, PreparedKey, ProvingKey};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

/// A connected agent whose every step the test takes.
pub struct ScriptedAgent {
    pub identity: Identity,
    pub welcome: Welcome,
    pub conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    control: Arc<Mutex<quinn::SendStream>>,
    inbox: mpsc::UnboundedReceiver<CoordinatorToAgent>,
    /// Why the control stream's reader stopped, once it did.
    reader_end: Arc<StdMutex<Option<String>>>,
    memory: Arc<StdMutex<Option<u64>>>,
    calibration: Calibration,
    seq: Arc<AtomicU64>,
    ticker: tokio::task::JoinHandle<()>,
    /// Cancellations received while waiting for offers.
    pub cancelled: Vec<(TaskId, String)>,
    keys: HashMap<KeyId, Arc<PreparedKey<CpuBackend>>>,
}

impl ScriptedAgent {
    /// Connects as `operator/name` with a certificate from the cluster's CA and completes
    /// the hello; panics if the coordinator refuses.
    pub async fn connect(
        cluster: &Cluster,
        operator: &str,
        name: &str,
        opts: ScriptOptions,
    ) -> ScriptedAgent {
        let identity = Identity::agent(operator, name).expect("agent identity");
        let config = tls::client_config_with(&cluster.material(&identity), opts.liveness)
            .expect("client config");
        let (endpoint, conn) = dial(opts.via.unwrap_or(cluster.addr), config).await;
        let (mut send, mut recv) = within(STEP_TIMEOUT, "control stream", conn.open_bi())
            .await
            .expect("open the control stream");
        write_stream_open(&mut send, StreamOpen::Control(hello(&opts)))
            .await
            .expect("send hello");
        let first = within(
            STEP_TIMEOUT,
            "Welcome",
            read_message::<_, CoordinatorToAgent>(&mut recv),
        )
        .await;
        let welcome = match first {
            Ok(CoordinatorToAgent::Welcome(w)) => w,
            other => panic!(
                "{identity}: expected Welcome, got {other:?}; close reason: {:?}",
                close_reason_text(&conn)
            ),
        };

        let (tx, inbox) = mpsc::unbounded_channel();
        let reader_end = Arc::new(StdMutex::new(None));
        let end = reader_end.clone();
        tokio::spawn(async move {
            loop {
                match read_message::<_, CoordinatorToAgent>(&mut recv).await {
                    Ok(m) => {
                        if tx.send(m).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        *end.lock().expect("reader end") = Some(e.to_string());
                        return;
                    }
                }
            }
        });

        let control = Arc::new(Mutex::new(send));
        let memory = Arc::new(StdMutex::new(opts.memory_free_bytes));
        let seq = Arc::new(AtomicU64::new(0));
        // Keeps the telemetry fresh (admission ignores agents with stale reports).
        let ticker = {
            let (control, memory, seq, cal) = (
                control.clone(),
                memory.clone(),
                seq.clone(),
                opts.calibration.clone(),
            );
            let interval = Duration::from_millis(welcome.telemetry_interval_ms.max(100));
            tokio::spawn(async move {
                loop {
                    if send_telemetry(&control, &seq, &memory, &cal).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(interval).await;
                }
            })
        };
        ScriptedAgent {
            identity,
            welcome,
            conn,
            endpoint,
            control,
            inbox,
            reader_end,
            memory,
            calibration: opts.calibration,
            seq,
            ticker,
            cancelled: Vec::new(),
            keys: HashMap::new(),
        }
    }

    /// `operator/name`, as the coordinator's views and messages name this agent.
    pub fn name(&self) -> String {
        AgentRef::from_identity(&self.identity)
            .expect("an agent identity")
            .to_string()
    }

    /// Stops reporting telemetry while the connection stays up (QUIC keep-alives go on): an
    /// agent process that hung or died with its connection still looking alive.
    pub fn stop_telemetry(&self) {
        self.ticker.abort();
    }

    /// Reports `bytes` of free compute memory now and in every later report.
    pub async fn report_memory(&self, bytes: u64) {
        *self.memory.lock().expect("memory") = Some(bytes);
        send_telemetry(&self.control, &self.seq, &self.memory, &self.calibration)
            .await
            .expect("send telemetry");
    }

    pub async fn send(&self, msg: AgentToCoordinator) {
        let mut control = self.control.lock().await;
        within(
            STEP_TIMEOUT,
            "control stream write",
            write_message(&mut *control, &msg),
        )
        .await
        .expect("write on the control stream");
    }

    /// Writes `bytes` as they are on the control stream (frames of the test's making).
    pub async fn send_raw(&self, bytes: &[u8]) {
        let mut control = self.control.lock().await;
        within(
            STEP_TIMEOUT,
            "raw control stream write",
            control.write_all(bytes),
        )
        .await
        .expect("raw write on the control stream");
    }

    pub async fn accept(&self, task: TaskId) {
        self.send(AgentToCoordinator::OfferReply(OfferReply {
            task,
            decision: OfferDecision::Accept,
        }))
        .await;
    }

    pub async fn decline(&self, task: TaskId, reason: &str) {
        self.send(AgentToCoordinator::OfferReply(OfferReply {
            task,
            decision: OfferDecision::Decline {
                reason: reason.into(),
            },
        }))
        .await;
    }

    /// The next message from the coordinator.
    pub async fn next_message(&mut self) -> CoordinatorToAgent {
        let who = self.identity.to_string();
        match within(
            STEP_TIMEOUT,
            &format!("a message to {who}"),
            self.inbox.recv(),
        )
        .await
        {
            Some(m) => m,
            None => panic!(
                "{who}: control stream ended ({:?}); close reason: {:?}",
                self.reader_end.lock().expect("reader end").clone(),
                close_reason_text(&self.conn)
            ),
        }
    }

    /// The next offer; cancellations on the way are kept in `cancelled`.
    pub async fn next_offer(&mut self) -> TaskOffer {
        loop {
            match self.next_message().await {
                CoordinatorToAgent::Offer(o) => return o,
                CoordinatorToAgent::Cancelled { task, reason } => {
                    self.cancelled.push((task, reason))
                }
                other => panic!("{}: expected an offer, got {other:?}", self.identity),
            }
        }
    }

    /// Messages already received and not yet read, without waiting.
    pub fn pending_messages(&mut self) -> Vec<CoordinatorToAgent> {
        let mut out = Vec::new();
        while let Ok(m) = self.inbox.try_recv() {
            out.push(m);
        }
        out
    }

    /// Fetches a proving key over a `FetchKey` stream.
    pub async fn fetch_key(&self, key: KeyId) -> Result<Vec<u8>, String> {
        let conn = self.conn.clone();
        within(STEP_TIMEOUT, "a proving key", async move {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            write_stream_open(&mut send, StreamOpen::FetchKey(FetchKey { key }))
                .await
                .map_err(|e| e.to_string())?;
            let _ = send.finish();
            match read_message::<_, KeyReply>(&mut recv)
                .await
                .map_err(|e| e.to_string())?
            {
                KeyReply::Found { .. } => {}
                KeyReply::Error(e) => return Err(e.to_string()),
            }
            recv_payload(&mut recv, MAX_PROVING_KEY_BYTES)
                .await
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// A valid proof of `circuit` on `inputs` (JSON) for `task`, with the key fetched from
    /// the coordinator on first use.
    pub async fn prove_task(
        &mut self,
        task: TaskId,
        circuit: &str,
        key: KeyId,
        inputs: &[u8],
    ) -> DeliverProof {
        let prepared = match self.keys.get(&key) {
            Some(p) => p.clone(),
            None => {
                let bytes = self.fetch_key(key).await.expect("fetch the proving key");
                let p = tokio::task::spawn_blocking(move || {
                    let pk = ProvingKey::from_bytes_with_id(&bytes, &key.0)
                        .expect("key bytes hash to the key id");
                    PreparedKey::new(&CpuBackend::new(), &pk).expect("prepare the key on the CPU")
                })
                .await
                .expect("prepare thread");
                let p = Arc::new(p);
                self.keys.insert(key, p.clone());
                p
            }
        };
        let circuit = circuit_by_name(circuit).expect("known circuit");
        let inputs = String::from_utf8(inputs.to_vec()).expect("UTF-8 inputs");
        tokio::task::spawn_blocking(move || {
            let witness = circuit.witness_from_json(&inputs).expect("inputs parse");
            let started = std::time::Instant::now();
            let proof = prove(
                &CpuBackend::new(),
                &prepared,
                &witness.full,
                Fr::from(7u64),
                Fr::from(11u64),
            )
            .expect("prove");
            DeliverProof {
                task,
                proof: proof_to_bytes(&proof).to_vec(),
                public_inputs: witness.public.iter().map(fr_to_le_bytes).collect(),
                proving_ms: started.elapsed().as_millis() as u64,
            }
        })
        .await
        .expect("prove thread")
    }

    /// A valid proof for an offer.
    pub async fn prove(&mut self, offer: &TaskOffer) -> DeliverProof {
        self.prove_task(offer.task, &offer.circuit, offer.key, &offer.inputs)
            .await
    }

    /// Delivers a proof and returns the coordinator's verdict.
    pub async fn deliver(&self, delivery: &DeliverProof) -> Result<DeliveryOutcome, String> {
        let conn = self.conn.clone();
        let delivery = delivery.clone();
        within(STEP_TIMEOUT, "a delivery verdict", async move {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            write_stream_open(&mut send, StreamOpen::DeliverProof(delivery.clone()))
                .await
                .map_err(|e| e.to_string())?;
            let _ = send.finish();
            match read_message::<_, DeliveryReply>(&mut recv)
                .await
                .map_err(|e| e.to_string())?
            {
                DeliveryReply::Verdict(v) if v.task == delivery.task => Ok(v.outcome),
                other => Err(format!("unexpected reply {other:?}")),
            }
        })
        .await
    }

    /// Opens a stream and writes `bytes` as its first bytes (a malformed stream opening).
    pub async fn open_raw_stream(&self, bytes: &[u8]) {
        let (mut send, _recv) = within(STEP_TIMEOUT, "open a stream", self.conn.open_bi())
            .await
            .expect("open a stream");
        send.write_all(bytes).await.expect("raw write");
        let _ = send.finish();
    }

    /// Waits for the coordinator to cut this agent off; returns what it said: any `Error`
    /// on the control stream, then the connection's close reason.
    pub async fn refusal(&mut self) -> String {
        let who = self.identity.to_string();
        within(
            STEP_TIMEOUT,
            &format!("the coordinator to close {who}'s connection"),
            self.conn.closed(),
        )
        .await;
        let mut said = Vec::new();
        // The reader stops at the close; whatever it queued before is in the inbox.
        while let Some(m) = self.inbox.recv().await {
            if let CoordinatorToAgent::Error(e) = m {
                said.push(format!("error message: {e}"));
            }
        }
        said.push(format!(
            "close reason: {}",
            close_reason_text(&self.conn).unwrap_or_default()
        ));
        said.join("; ")
    }

    pub async fn close(self) {
        self.ticker.abort();
        self.conn.close(0u32.into(), b"scripted agent done");
        self.endpoint.close(0u32.into(), b"scripted agent done");
    }
}

/// Makes a proof fail verification while keeping its encoding valid: the circuit's output
/// (public input 0) is changed, so the pairing check fails.
pub fn tamper_output(delivery: &mut DeliverProof) {
    let y = fr_from_le_bytes(&delivery.public_inputs[0]).expect("canonical output");
    delivery.public_inputs[0] = fr_to_le_bytes(&(y + Fr::from(1u64)));
}
