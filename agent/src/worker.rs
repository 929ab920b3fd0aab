//! One accepted task: get its key (cache or coordinator), compute the witness (a built-in
//! circuit's, from JSON) or fetch it (a circom task's `.wtns`), prove, check the proof,
//! deliver it (on whatever connection is up, until its due time).

use crate::client::{AgentContext, HeldTasks};
use crate::key_cache::KeyLookup;
use proofrack_common::framing::{recv_payload, recv_payload_to};
use proofrack_common::protocol::{
    read_message, write_stream_open, DeliverProof, DeliveryOutcome, DeliveryReply, FetchInput,
    FetchKey, InputReply, KeyReply, StreamOpen, TaskInputs, TaskOffer, WitnessRef,
};
use proofrack_common::{KeyId, TaskId, UnixMillis};
use proofrack_kernels::circuits::circuit_by_name;
use proofrack_kernels::field_bytes::fr_to_le_bytes;
use proofrack_kernels::groth16::{prepare_verifying_key, proof_to_bytes, verify, ProvingKey};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

/// Longest one delivery attempt may take (open, send, verdict) before it is retried on the
/// next connection; verification is milliseconds, so this only trips on a dead link.
pub const DELIVERY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// When a new worker may start proving, as the book decided.
pub(crate) enum Start {
    /// A slot is free.
    Now,
    /// When [`crate::intake::TaskBook::handle_finished`] gives it a slot.
    WhenSlotFrees,
}

/// What a waiting worker is told when the book releases it.
enum Slot {
    /// Prove now.
    Free,
    /// Its due time passed while it waited: end without proving.
    Expired,
}

/// The control loop's handle on a task's worker.
pub(crate) struct TaskHandle {
    /// Tells this worker apart from a later one for the same task (a task dropped while it
    /// waited can be offered again before its first worker has ended).
    worker: u64,
    cancelled: Arc<AtomicBool>,
    /// Set while the worker waits for a slot; dropping it ends the wait as cancelled.
    slot: Option<oneshot::Sender<Slot>>,
    join: tokio::task::JoinHandle<()>,
}

impl TaskHandle {
    fn release(&mut self, slot: Slot) {
        if let Some(tx) = self.slot.take() {
            let _ = tx.send(slot);
        }
    }
}

pub(crate) struct Worker;

#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error("cancelled by the coordinator")]
    Cancelled,
    #[error("its due time passed")]
    PastDue,
    #[error("proving key: {0}")]
    Key(String),
    #[error("witness: {0}")]
    Witness(String),
    #[error("prover: {0}")]
    Prove(String),
    #[error("the proof this agent made does not verify; not delivering it (check the backend: `proofrack-bench check`)")]
    SelfCheck,
}

impl Worker {
    pub(crate) fn spawn(ctx: Arc<AgentContext>, offer: TaskOffer, start: Start) -> TaskHandle {
        static NEXT_WORKER: AtomicU64 = AtomicU64::new(0);
        let worker = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let (slot, waiting) = match start {
            Start::Now => (None, None),
            Start::WhenSlotFrees => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
        };
        let task = offer.task;
        let join = tokio::spawn(async move {
            let outcome = match wait_for_slot(waiting).await {
                Ok(()) => run(&ctx, &offer, &flag).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {}
                Err(TaskError::Cancelled) => tracing::info!(%task, "task dropped: cancelled"),
                Err(e) => tracing::warn!(%task, error = %e, "task not delivered"),
            }
            finished(&ctx, task, worker);
        });
        TaskHandle {
            worker,
            cancelled,
            slot,
            join,
        }
    }
}

/// Waits until the book gives this worker a slot (`None`: it has one).
async fn wait_for_slot(waiting: Option<oneshot::Receiver<Slot>>) -> Result<(), TaskError> {
    let Some(rx) = waiting else {
        return Ok(());
    };
    match rx.await {
        Ok(Slot::Free) => Ok(()),
        Ok(Slot::Expired) => Err(TaskError::PastDue),
        // Dropped from the book while waiting (cancelled), or the agent is exiting.
        Err(_) => Err(TaskError::Cancelled),
    }
}

/// Worker `worker` of `task` ended: the book frees its slot, and the workers it releases are
/// told.
fn finished(ctx: &AgentContext, task: TaskId, worker: u64) {
    {
        let mut guard = ctx.tasks.lock().expect("tasks poisoned");
        let tasks: &mut HeldTasks = &mut guard;
        if tasks.workers.get(&task).is_none_or(|h| h.worker != worker) {
            // A newer worker has this task: the book dropped it while this one waited
            // (cancelled), then took it again.
            return;
        }
        tasks.workers.remove(&task);
        let released = tasks.book.handle_finished(ctx.clock.now(), task);
        for (next, slot) in released
            .run
            .into_iter()
            .map(|t| (t, Slot::Free))
            .chain(released.expired.into_iter().map(|t| (t, Slot::Expired)))
        {
            if let Some(h) = tasks.workers.get_mut(&next) {
                h.release(slot);
            }
        }
        ctx.metrics.set_tasks_in_flight(tasks.workers.len());
    }
    ctx.idle.notify_waiters();
}

/// The coordinator cancelled `task`: its worker stops at its next check, or at once while it
/// waits for a slot (the book drops it then).
pub(crate) fn cancel(ctx: &AgentContext, task: TaskId) {
    let mut guard = ctx.tasks.lock().expect("tasks poisoned");
    let tasks: &mut HeldTasks = &mut guard;
    let dropped = tasks.book.handle_cancelled(task);
    if let Some(h) = tasks.workers.get_mut(&task) {
        h.cancelled.store(true, Ordering::SeqCst);
        if dropped {
            h.slot = None;
        }
    }
}

/// Stops every task still running (the agent is exiting).
pub(crate) fn abort_all(ctx: &AgentContext) {
    for (_, h) in ctx.tasks.lock().expect("tasks poisoned").workers.drain() {
        h.join.abort();
    }
}

async fn run(
    ctx: &Arc<AgentContext>,
    offer: &TaskOffer,
    cancelled: &AtomicBool,
) -> Result<(), TaskError> {
    let task = offer.task;
    let check = || {
        if cancelled.load(Ordering::SeqCst) {
            Err(TaskError::Cancelled)
        } else if ctx.clock.now() >= offer.deadline {
            Err(TaskError::PastDue)
        } else {
            Ok(())
        }
    };
    check()?;
    let started = Instant::now();
    let key_id = offer.key;
    if !ctx.prover.has_prepared(&key_id) {
        let key = load_key(ctx, key_id, offer.deadline).await?;
        check()?;
        let prover = ctx.prover.clone();
        tokio::task::spawn_blocking(move || prover.prepare(key_id, &key))
            .await
            .map_err(|e| TaskError::Prove(e.to_string()))?
            .map_err(|e| TaskError::Prove(e.to_string()))?;
    }
    check()?;
    let source = match TaskInputs::decode(&offer.inputs).map_err(TaskError::Witness)? {
        TaskInputs::Json(json) => {
            let circuit =
                circuit_by_name(&offer.circuit).map_err(|e| TaskError::Witness(e.to_string()))?;
            let inputs =
                String::from_utf8(json.to_vec()).map_err(|e| TaskError::Witness(e.to_string()))?;
            WitnessSource::BuiltIn(circuit, inputs)
        }
        TaskInputs::Witness(r) => {
            let bytes = fetch_witness(ctx, task, &r, offer.deadline).await?;
            check()?;
            WitnessSource::Circom(bytes, r.public.len(), offer.shape.num_variables as usize)
        }
    };
    let prover = ctx.prover.clone();
    let pvk = ctx.verifying_key(&key_id);
    let (proof, public) = tokio::task::spawn_blocking(move || {
        let witness = source.witness()?;
        let proof = prover
            .prove(&key_id, &witness.full)
            .ok_or_else(|| {
                TaskError::Prove(
                    "key was evicted while waiting; retrying is the coordinator's call".into(),
                )
            })?
            .map_err(|e| TaskError::Prove(e.to_string()))?;
        // A wrong proof is slashed far harder than a late one: check before delivering.
        if let Some(pvk) = pvk {
            if !matches!(verify(&pvk, &witness.public, &proof), Ok(true)) {
                return Err(TaskError::SelfCheck);
            }
        }
        Ok::<_, TaskError>((proof, witness.public))
    })
    .await
    .map_err(|e| TaskError::Prove(e.to_string()))??;
    let proving_ms = started.elapsed().as_millis() as u64;
    check()?;
    ctx.metrics.record_proof(proving_ms);
    tracing::info!(%task, proving_ms, "proof ready");
    let delivery = DeliverProof {
        task,
        proof: proof_to_bytes(&proof).to_vec(),
        public_inputs: public.iter().map(fr_to_le_bytes).collect(),
        proving_ms,
    };
    deliver(ctx, delivery, offer.deadline, cancelled).await
}

/// Where a task's witness comes from.
enum WitnessSource {
    /// A built-in circuit and its JSON inputs: computed here.
    BuiltIn(proofrack_kernels::circuits::Circuit, String),
    /// A circom task: the client's `.wtns` (checked against the constraints by the
    /// coordinator), its public signal count and the key's signal count.
    Circom(Vec<u8>, usize, usize),
}

impl WitnessSource {
    fn witness(self) -> Result<proofrack_kernels::circuits::Witness, TaskError> {
        match self {
            WitnessSource::BuiltIn(circuit, inputs) => circuit
                .witness_from_json(&inputs)
                .map_err(|e| TaskError::Witness(e.to_string())),
            WitnessSource::Circom(bytes, num_public, num_variables) => {
                let full = proofrack_snarkjs::read_wtns(&bytes)
                    .map_err(|e| TaskError::Witness(e.to_string()))?;
                proofrack_snarkjs::check_witness_length(&full, num_variables)
                    .map_err(|e| TaskError::Witness(e.to_string()))?;
                let public = full[1..=num_public].to_vec();
                Ok(proofrack_kernels::circuits::Witness { full, public })
            }
        }
    }
}

/// A circom task's witness from the coordinator (hash-checked), held in memory: it is
/// needed whole by the prover, and is 32 B per signal.
async fn fetch_witness(
    ctx: &Arc<AgentContext>,
    task: proofrack_common::TaskId,
    r: &WitnessRef,
    due: UnixMillis,
) -> Result<Vec<u8>, TaskError> {
    let conn = current_connection(ctx, due).await?;
    let err = |e: String| TaskError::Witness(format!("fetching {}: {e}", r.hex()));
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| err(e.to_string()))?;
    write_stream_open(
        &mut send,
        StreamOpen::FetchInput(FetchInput {
            task,
            sha256: r.sha256,
        }),
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    let _ = send.finish();
    match read_message::<_, InputReply>(&mut recv)
        .await
        .map_err(|e| err(e.to_string()))?
    {
        InputReply::Found { total_len } if total_len == r.len => {}
        InputReply::Found { total_len } => {
            return Err(err(format!(
                "the coordinator offers {total_len} bytes, the task says {}",
                r.len
            )))
        }
        InputReply::Error(e) => return Err(err(e.to_string())),
    }
    let bytes = recv_payload(&mut recv, r.len)
        .await
        .map_err(|e| err(e.to_string()))?;
    if Sha256::digest(&bytes).as_slice() != r.sha256 {
        return Err(err(
            "its bytes do not hash to the task's witness".to_string()
        ));
    }
    Ok(bytes)
}

/// The key from the cache, or fetched from the coordinator into the cache.
async fn load_key(
    ctx: &Arc<AgentContext>,
    id: KeyId,
    due: UnixMillis,
) -> Result<ProvingKey, TaskError> {
    // The cache hashes the whole file on read: seconds for a large key, so off the async
    // threads.
    let lookup_ctx = ctx.clone();
    let cached = tokio::task::spawn_blocking(move || {
        let now = lookup_ctx.clock.now();
        lookup_ctx
            .key_cache
            .lock()
            .expect("key cache poisoned")
            .get(&id, now)
    })
    .await
    .map_err(|e| TaskError::Key(e.to_string()))?
    .map_err(|e| TaskError::Key(e.to_string()))?;
    let bytes = match cached {
        KeyLookup::Hit(bytes) => bytes,
        KeyLookup::Miss | KeyLookup::Corrupt { .. } => fetch_key(ctx, id, due).await?,
    };
    let key = tokio::task::spawn_blocking(move || ProvingKey::from_bytes_with_id(&bytes, &id.0))
        .await
        .map_err(|e| TaskError::Key(e.to_string()))?
        .map_err(|e| TaskError::Key(e.to_string()))?;
    ctx.remember_verifying_key(id, prepare_verifying_key(&key.verifying_key()));
    Ok(key)
}

async fn fetch_key(
    ctx: &Arc<AgentContext>,
    id: KeyId,
    due: UnixMillis,
) -> Result<Vec<u8>, TaskError> {
    let conn = current_connection(ctx, due).await?;
    let started = Instant::now();
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| TaskError::Key(e.to_string()))?;
    write_stream_open(&mut send, StreamOpen::FetchKey(FetchKey { key: id }))
        .await
        .map_err(|e| TaskError::Key(e.to_string()))?;
    let _ = send.finish();
    let total = match read_message::<_, KeyReply>(&mut recv)
        .await
        .map_err(|e| TaskError::Key(e.to_string()))?
    {
        KeyReply::Found { total_len, .. } => total_len,
        KeyReply::Error(e) => return Err(TaskError::Key(e.to_string())),
    };
    let max = ctx
        .key_cache
        .lock()
        .expect("key cache poisoned")
        .limits()
        .max_key_bytes;
    if total > max {
        return Err(TaskError::Key(format!(
            "the key is {total} bytes, over this agent's limit of {max}"
        )));
    }
    let writer = ctx
        .key_cache
        .lock()
        .expect("key cache poisoned")
        .insert_streaming(id)
        .map_err(|e| TaskError::Key(e.to_string()))?;
    let mut sink = SyncSink(writer);
    recv_payload_to(&mut recv, &mut sink, max)
        .await
        .map_err(|e| TaskError::Key(e.to_string()))?;
    let commit_ctx = ctx.clone();
    let writer = sink.0;
    let path = tokio::task::spawn_blocking(move || {
        let now = commit_ctx.clock.now();
        commit_ctx
            .key_cache
            .lock()
            .expect("key cache poisoned")
            .commit(writer, now)
    })
    .await
    .map_err(|e| TaskError::Key(e.to_string()))?
    .map_err(|e| TaskError::Key(e.to_string()))?;
    tracing::info!(key = %id.short(), bytes = total, ms = started.elapsed().as_millis() as u64, "proving key fetched and cached");
    tokio::fs::read(&path)
        .await
        .map_err(|e| TaskError::Key(format!("{}: {e}", path.display())))
}

/// Waits for a live connection (the agent may be reconnecting), until `due`.
async fn current_connection(
    ctx: &AgentContext,
    due: UnixMillis,
) -> Result<quinn::Connection, TaskError> {
    let mut rx = ctx.conn.clone();
    let left = due.saturating_since(ctx.clock.now());
    let wait = async {
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                if c.close_reason().is_none() {
                    return Ok(c);
                }
            }
            if rx.changed().await.is_err() {
                return Err(TaskError::Cancelled);
            }
        }
    };
    tokio::time::timeout(left, wait)
        .await
        .map_err(|_| TaskError::PastDue)?
}

/// Delivers, retrying on the next connection if this one breaks, until the due time.
async fn deliver(
    ctx: &Arc<AgentContext>,
    delivery: DeliverProof,
    due: UnixMillis,
    cancelled: &AtomicBool,
) -> Result<(), TaskError> {
    let task = delivery.task;
    loop {
        if cancelled.load(Ordering::SeqCst) {
            return Err(TaskError::Cancelled);
        }
        let conn = current_connection(ctx, due).await?;
        match tokio::time::timeout(DELIVERY_ATTEMPT_TIMEOUT, deliver_once(&conn, &delivery)).await {
            Ok(Ok(DeliveryOutcome::Accepted)) => {
                tracing::info!(%task, proving_ms = delivery.proving_ms, "proof accepted");
                return Ok(());
            }
            Ok(Ok(DeliveryOutcome::Rejected { reason })) => {
                tracing::warn!(%task, %reason, "proof rejected by the coordinator");
                return Ok(());
            }
            Ok(Err(e)) => {
                tracing::info!(%task, error = %e, "delivery attempt failed; retrying on the next connection")
            }
            Err(_) => tracing::info!(%task, "delivery attempt timed out; retrying"),
        }
        // Wait for the connection to change before retrying.
        let mut rx = ctx.conn.clone();
        let left = due.saturating_since(ctx.clock.now());
        if tokio::time::timeout(left, rx.changed()).await.is_err() {
            return Err(TaskError::PastDue);
        }
    }
}

async fn deliver_once(
    conn: &quinn::Connection,
    delivery: &DeliverProof,
) -> Result<DeliveryOutcome, String> {
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
        DeliveryReply::Verdict(v) => Err(format!(
            "verdict for {} instead of {}",
            v.task, delivery.task
        )),
        DeliveryReply::Error(e) => Err(e.to_string()),
    }
}

/// Adapts the key cache's buffered file writer (local disk, short writes) to the async
/// payload reader.
struct SyncSink(crate::key_cache::KeyWriter);

impl AsyncWrite for SyncSink {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(std::io::Write::write(&mut self.0, buf))
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(std::io::Write::flush(&mut self.0))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}
