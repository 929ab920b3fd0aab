//! The two circom client requests: registering a circuit (zkey + `.r1cs` payloads) and
//! submitting a witness (`.wtns` payload). The payloads are received to temporary files
//! within the upload limits (`upload.rs`), their layout checked from the file before they are
//! read into memory; parsing and checking run off the async threads; a refusal names what is
//! wrong and what to do, and never reaches the core.

use super::client_session::{deadline_refusal, submit_task};
use super::shared::Shared;
use super::upload::{self, Received};
use super::views::circuit_row;
use crate::circom::{self, witness, CircomCircuit, CircomError};
use crate::registry::CircuitSource;
use crate::tasks::{CoordinatorCore, TaskStatus};
use proofrack_common::protocol::TaskInputs;
use proofrack_common::protocol::{
    ClientResponse, RegisterCircuit, SubmitWitness, MAX_R1CS_BYTES, MAX_WITNESS_BYTES,
    MAX_ZKEY_BYTES,
};
use proofrack_common::telemetry::ProofShape;
use proofrack_common::{KeyId, TaskId};
use proofrack_kernels::circuits::circuit_by_name;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Registrations run one at a time: they are rare, and this keeps the manifest, the registry
/// and the core agreeing on which key a name has.
pub(super) static REGISTERING: Mutex<()> = Mutex::const_new(());
/// Held from storing a witness to its task's creation, and from checking that no unfinished
/// task needs a witness to removing it: a witness shared by two submissions is never removed
/// between the second one's store and its task.
static WITNESS_FILES: Mutex<()> = Mutex::const_new(());

fn rejected(reason: impl std::fmt::Display) -> ClientResponse {
    let mut reason = reason.to_string();
    proofrack_common::protocol::truncate_utf8(
        &mut reason,
        proofrack_common::protocol::MAX_TEXT_BYTES,
    );
    ClientResponse::Rejected { reason }
}

pub(super) async fn register(
    shared: &Arc<Shared>,
    client: &str,
    r: RegisterCircuit,
    recv: &mut quinn::RecvStream,
) -> ClientResponse {
    let name = r.name;
    if circuit_by_name(&name).is_ok() {
        return rejected(CircomError::BuiltInName { name });
    }
    let mut permit = None;
    let zkey = match upload::receive(shared, recv, "the zkey", MAX_ZKEY_BYTES, &mut permit).await {
        Ok(f) => f,
        Err(e) => return rejected(e),
    };
    let r1cs = match upload::receive(shared, recv, "the .r1cs", MAX_R1CS_BYTES, &mut permit).await {
        Ok(f) => f,
        Err(e) => return rejected(e),
    };
    // The upload's slot and quota stay held through the conversion: it bounds how many
    // conversions (each holding its files in memory) run at once.
    let _permit = permit;
    let _one_at_a_time = REGISTERING.lock().await;
    let converted = tokio::task::spawn_blocking(move || {
        check_layout(&zkey, snarkjs_layout::check_zkey_layout)?;
        check_layout(&r1cs, snarkjs_layout::check_r1cs_layout)?;
        let zkey = zkey.read()?;
        let r1cs = r1cs.read()?;
        circom::convert(&zkey, &r1cs)
            .map(|converted| (converted, r1cs))
            .map_err(|e| e.to_string())
    })
    .await;
    let (converted, r1cs) = match converted {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return rejected(e),
        Err(e) => return rejected(format!("the registration crashed: {e}")),
    };
    let key_id = KeyId(converted.key.id());
    if let Some(existing) = shared.registry().by_name(&name) {
        if existing.key_id == key_id {
            return ClientResponse::Registered(circuit_row(&existing));
        }
        tracing::warn!(circuit = %name, %client, "registration under a taken name refused");
        return rejected(CircomError::NameTaken {
            name,
            existing: existing.key_id.short(),
        });
    }
    let dir = shared.registry().circom_dir();
    let file_name = name.clone();
    let saved = tokio::task::spawn_blocking(move || {
        circom::save(&dir, &file_name, &converted, &r1cs).map(|path| (converted, path))
    })
    .await;
    let (converted, key_path) = match saved {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return rejected(e),
        Err(e) => return rejected(format!("the registration crashed: {e}")),
    };
    let shape = ProofShape {
        domain_size: converted.key.domain_size() as u64,
        num_variables: converted.key.num_variables() as u64,
    };
    let registered = shared
        .apply(|core, _| core.register_circuit(name.clone(), key_id, shape))
        .await;
    if let Err(e) = registered {
        return rejected(e);
    }
    let entry = shared.registry().insert(
        name.clone(),
        CircuitSource::Circom(CircomCircuit {
            r1cs: Arc::new(converted.r1cs),
        }),
        &converted.key,
        key_path,
    );
    tracing::info!(circuit = %name, %client, key = %key_id.short(), domain = shape.domain_size, public = entry.num_public, "circom circuit registered");
    ClientResponse::Registered(circuit_row(&entry))
}

pub(super) async fn submit(
    shared: &Arc<Shared>,
    client: &str,
    s: SubmitWitness,
    recv: &mut quinn::RecvStream,
) -> ClientResponse {
    let Some(circuit) = shared.registry().by_name(&s.circuit) else {
        return rejected(format!(
            "no circom circuit named {}: register it first with `proofrack circuits register`",
            s.circuit
        ));
    };
    if !matches!(circuit.source, CircuitSource::Circom(_)) {
        return rejected(format!(
            "{} is a built-in circuit: submit JSON inputs with `proofrack submit --input`",
            circuit.name
        ));
    }
    if let Some(refusal) = deadline_refusal(shared, s.deadline_ms) {
        return refusal;
    }
    // A witness is exactly as large as its circuit's signals make it: anything larger is
    // refused from its header.
    let CircuitSource::Circom(c) = &circuit.source else {
        unreachable!("checked above")
    };
    let max_len = witness::max_wtns_bytes(c.r1cs.num_variables()).min(MAX_WITNESS_BYTES);
    let mut permit = None;
    let wtns = match upload::receive(shared, recv, "the witness", max_len, &mut permit).await {
        Ok(f) => f,
        Err(e) => return rejected(e),
    };
    let checked = {
        let circuit = circuit.clone();
        tokio::task::spawn_blocking(move || {
            let CircuitSource::Circom(c) = &circuit.source else {
                unreachable!("checked above")
            };
            check_layout(&wtns, snarkjs_layout::check_wtns_layout)?;
            let wtns = wtns.read()?;
            witness::check(&circuit.name, c, &wtns)
                .map(|r| (r, wtns))
                .map_err(|e| e.to_string())
        })
        .await
    };
    drop(permit);
    let (witness_ref, wtns) = match checked {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return rejected(e),
        Err(e) => return rejected(format!("the witness check crashed: {e}")),
    };
    let _files = WITNESS_FILES.lock().await;
    let dir = shared.registry().circom_dir();
    let stored = {
        let r = witness_ref.clone();
        tokio::task::spawn_blocking(move || witness::store(&dir, &r, &wtns)).await
    };
    match stored {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot store a witness");
            return rejected(format!(
                "the coordinator cannot store the witness ({e}); retry later"
            ));
        }
        Err(e) => return rejected(format!("storing the witness crashed: {e}")),
    }
    submit_task(
        shared,
        client,
        &circuit.name,
        witness_ref.encode().into(),
        s.collateral,
        s.deadline_ms,
        s.request_id,
    )
    .await
}

/// The file-reader layout checks, by format.
mod snarkjs_layout {
    pub use proofrack_snarkjs::{check_r1cs_layout, check_wtns_layout, check_zkey_layout};
}

/// Checks a received file's container layout from disk, before it is read into memory.
fn check_layout(
    file: &Received,
    check: fn(&mut std::io::BufReader<std::fs::File>, u64) -> proofrack_snarkjs::Result<()>,
) -> Result<(), String> {
    let f = std::fs::File::open(&file.path)
        .map_err(|e| format!("reading back {}: {e}", file.path.display()))?;
    check(&mut std::io::BufReader::new(f), file.len).map_err(|e| e.to_string())
}

/// The witness hash of a circom task.
fn witness_of(core: &CoordinatorCore, task: TaskId) -> Option<[u8; 32]> {
    let (_, inputs) = core.task_inputs(task)?;
    match TaskInputs::decode(&inputs) {
        Ok(TaskInputs::Witness(w)) => Some(w.sha256),
        _ => None,
    }
}

/// The witnesses unfinished tasks still need.
fn witnesses_in_use(core: &CoordinatorCore) -> BTreeSet<[u8; 32]> {
    core.task_statuses()
        .into_iter()
        .filter(|(_, s)| !matches!(s, TaskStatus::Verified { .. } | TaskStatus::Failed { .. }))
        .filter_map(|(task, _)| witness_of(core, task))
        .collect()
}

/// After `task` is verified: removes its witness unless another unfinished task uses it.
pub(super) async fn forget_witness(shared: &Arc<Shared>, task: TaskId) {
    let _files = WITNESS_FILES.lock().await;
    let Some(path) = shared.read(|core, _| {
        let sha = witness_of(core, task)?;
        (!witnesses_in_use(core).contains(&sha))
            .then(|| witness::path_of(&shared.registry().circom_dir(), &sha))
    }) else {
        return;
    };
    if let Err(e) = tokio::fs::remove_file(&path).await {
        tracing::warn!(%task, path = %path.display(), error = %e, "cannot remove a used witness");
    }
}

/// At start: removes the witnesses no unfinished task needs (those of tasks that failed or
/// were verified before a crash).
pub(super) fn sweep_witnesses(core: &CoordinatorCore, circom_dir: &std::path::Path) {
    let removed = witness::sweep(circom_dir, &witnesses_in_use(core));
    if removed > 0 {
        tracing::info!(removed, "removed witnesses of finished tasks");
    }
}
