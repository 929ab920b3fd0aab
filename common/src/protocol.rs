//! Versioned messages between agents, clients and the coordinator (postcard in
//! [`crate::framing`] frames over QUIC bidirectional streams).
//!
//! # Streams
//! The agent or client always opens the stream; its first frame is an [`OpenFrame`]
//! (`protocol_version` + [`StreamOpen`]) saying what the stream is. A first frame the
//! coordinator refuses (another protocol version, malformed, or a stream this peer's
//! certificate kind may not open) closes that peer's connection with the error's text as the
//! close reason (read it with `tls::close_reason_text`): the coordinator cannot know
//! which reply type a peer expects from a frame it could not decode. Other peers are not
//! affected.
//!
//! | opener | first frame | then |
//! |---|---|---|
//! | agent, once per connection | `Control(AgentHello)` | coordinator → agent: [`CoordinatorToAgent`] (`Welcome` first, or `Error` and finish); agent → coordinator: [`AgentToCoordinator`] |
//! | agent | `FetchKey(FetchKey)` | coordinator → agent: [`KeyReply`], and after `Found` the key as a payload ([`crate::framing::send_payload`]) |
//! | agent | `DeliverProof(DeliverProof)` | coordinator → agent: one [`DeliveryReply`] |
//! | agent | `FetchInput(FetchInput)` | coordinator → agent: [`InputReply`], and after `Found` a circom task's witness as a payload |
//! | client, one per request | `Client(ClientRequest)` | coordinator → client: one [`ClientResponse`]; for `Watch`, a `Status` per change until a terminal state, then finish; `RegisterCircuit` and `SubmitWitness` send their files as payloads after the first frame |
//!
//! Architecture invariant: the first frame of every stream begins with the protocol version
//! as a postcard varint u32, in this and every future version, so a peer of another version
//! gets [`ProtocolError::VersionMismatch`] and not a decode error.
//!
//! Every message is checked against the `MAX_*` bounds below on write and on read
//! ([`Bounded`]); postcard itself only bounds by frame size.

mod admin;
mod agent;
mod circom;
mod client;
mod error;
#[cfg(feature = "net")]
mod io;

pub use admin::*;
pub use agent::*;
pub use circom::*;
pub use client::*;
pub use error::*;
#[cfg(feature = "net")]
pub use io::*;

use crate::framing::{self, FrameError};
use crate::identity::IdentityKind;
use crate::telemetry::Telemetry;
use serde::{Deserialize, Serialize};

/// The protocol this build speaks. Bump on any incompatible message change.
/// Version 2: `Welcome.notices`; agents' rows carry drained, leaving and the operator's
/// standing; `ClientRequest::VerificationKey`. Version 3: `TaskListView.next_before`.
pub const PROTOCOL_VERSION: u32 = 3;

/// Task inputs travel inside one frame (an offer or a submission); half a frame leaves room
/// for the rest of the message. Bigger witnesses belong in a payload, not an offer.
pub const MAX_TASK_INPUTS_BYTES: usize = framing::MAX_FRAME_BYTES / 2;
/// A compressed BN254 Groth16 proof is 128 B (uncompressed 256 B); 1 KiB allows another
/// encoding but nothing that is not a proof.
pub const MAX_PROOF_BYTES: usize = 1024;
/// Public inputs (32-byte field elements) of one proof: 128 KiB at most. Circuits with more
/// should commit to their inputs with a hash.
pub const MAX_PUBLIC_INPUTS: usize = 4096;
/// Free text: reasons, build strings, hardware summaries, NVML names.
pub const MAX_TEXT_BYTES: usize = 1024;
/// A hardware summary line in the agents table (a few GPUs' names, memory, temperature).
pub const MAX_HARDWARE_SUMMARY_BYTES: usize = 512;
/// Health problems listed per agent, and the length of each.
pub const MAX_HEALTH_ENTRIES: usize = 8;
pub const MAX_HEALTH_ENTRY_BYTES: usize = 128;
/// History lines kept in a task's status view (the coordinator keeps the latest).
pub const MAX_HISTORY_ENTRIES: usize = 64;
/// Rows in a ledger, agents or circuits table. With every field of every row at its bound an
/// agents table still fits in a frame (checked below); a larger fleet needs paging.
pub const MAX_VIEW_ROWS: usize = 256;
/// Tasks one agent holds at once, as listed in views and allowed by capabilities (the
/// coordinator's `MAX_TASKS_PER_AGENT`).
pub const MAX_IN_FLIGHT_PER_AGENT: usize = 128;
/// GPUs reported by one agent (the largest boxes have 8 to 16).
pub const MAX_GPUS_PER_AGENT: usize = 64;
/// Proving keys an agent says it already holds.
pub const MAX_CACHED_KEYS: usize = 256;
/// Ceiling on one proving key payload. A 2^24-domain BN254 key is ~6 GiB; 64 GiB is far above
/// any key a box could prove with, and the agent may pass a lower one for its disk.
pub const MAX_PROVING_KEY_BYTES: u64 = 64 << 30;
/// Shortest telemetry interval: a coordinator refuses a configuration asking for less (more
/// often only loads it for no better data), and an agent never reports more often whatever a
/// `Welcome` says (protects the box).
pub const MIN_TELEMETRY_INTERVAL_MS: u64 = 200;

const _: () = assert!(MAX_PUBLIC_INPUTS * 32 + MAX_PROOF_BYTES < framing::MAX_FRAME_BYTES / 2);
const _: () = assert!(MAX_TASK_INPUTS_BYTES + 64 * MAX_TEXT_BYTES < framing::MAX_FRAME_BYTES);
/// Worst-case agents row: names (2 × 65), hardware, health, in-flight ids (10-byte varints)
/// and ~120 bytes of numbers and tags.
const MAX_AGENT_ROW_BYTES: usize = 130
    + MAX_HARDWARE_SUMMARY_BYTES
    + MAX_HEALTH_ENTRIES * (MAX_HEALTH_ENTRY_BYTES + 2)
    + MAX_IN_FLIGHT_PER_AGENT * 10
    + 120;
const _: () = assert!(MAX_VIEW_ROWS * MAX_AGENT_ROW_BYTES < framing::MAX_FRAME_BYTES);

/// What a stream is, as its opener says in the first frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StreamOpen {
    Control(AgentHello),
    FetchKey(FetchKey),
    DeliverProof(DeliverProof),
    Client(ClientRequest),
    /// An agent fetches a circom task's witness.
    FetchInput(FetchInput),
}

impl StreamOpen {
    /// What the stream is, without its contents: what the coordinator's authorization table
    /// decides on before anything else of the stream is read.
    pub fn kind(&self) -> StreamKind {
        match self {
            StreamOpen::Control(_) => StreamKind::Control,
            StreamOpen::FetchKey(_) => StreamKind::FetchKey,
            StreamOpen::DeliverProof(_) => StreamKind::DeliverProof,
            StreamOpen::Client(_) => StreamKind::ClientRequest,
            StreamOpen::FetchInput(_) => StreamKind::FetchInput,
        }
    }
    pub fn describe(&self) -> &'static str {
        self.kind().describe()
    }
}

/// The kinds of stream a peer may open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Control,
    FetchKey,
    DeliverProof,
    ClientRequest,
    FetchInput,
}

impl StreamKind {
    pub fn describe(self) -> &'static str {
        match self {
            StreamKind::Control => "an agent control stream",
            StreamKind::FetchKey => "a key fetch",
            StreamKind::DeliverProof => "a proof delivery",
            StreamKind::ClientRequest => "a client request",
            StreamKind::FetchInput => "a witness fetch",
        }
    }
}

/// The first frame of every stream. `protocol_version` must stay the first field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenFrame {
    pub protocol_version: u32,
    pub open: StreamOpen,
}

/// Messages checked against the protocol's bounds.
pub trait Bounded {
    /// `Err` names the field, its size and the limit.
    fn check_bounds(&self) -> Result<(), String>;
}

/// Appends a message to `buf` as one frame after checking its bounds (see
/// [`framing::encode_frame_into`]).
pub fn encode_message_into<T: Serialize + Bounded>(
    buf: &mut Vec<u8>,
    msg: &T,
) -> Result<(), FrameError> {
    msg.check_bounds().map_err(FrameError::OutOfBounds)?;
    framing::encode_frame_into(buf, msg)
}

/// Decodes an [`OpenFrame`] body: the version first, then the rest.
pub fn decode_stream_open(
    body: &[u8],
    peer_kind: IdentityKind,
) -> Result<StreamOpen, ProtocolError> {
    let (version, _) =
        postcard::take_from_bytes::<u32>(body).map_err(|e| ProtocolError::Malformed {
            detail: format!("the first frame does not start with a protocol version: {e}"),
        })?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::VersionMismatch {
            coordinator: PROTOCOL_VERSION,
            peer: version,
            peer_kind,
        });
    }
    let frame: OpenFrame = framing::decode(body).map_err(|e| ProtocolError::Malformed {
        detail: e.to_string(),
    })?;
    frame
        .check_bounds()
        .map_err(|detail| ProtocolError::Malformed { detail })?;
    if let StreamOpen::Control(hello) = &frame.open {
        if hello.protocol_version != frame.protocol_version {
            return Err(ProtocolError::Malformed {
                detail: format!(
                    "AgentHello says protocol {} inside a frame opened with protocol {}",
                    hello.protocol_version, frame.protocol_version
                ),
            });
        }
    }
    Ok(frame.open)
}

// ---- bound-checking helpers shared by the message modules ----

pub(crate) fn check_len(what: &str, len: usize, max: usize) -> Result<(), String> {
    if len > max {
        return Err(format!("{what}: {len} exceeds the limit of {max}"));
    }
    Ok(())
}

pub(crate) fn check_text(what: &str, s: &str) -> Result<(), String> {
    check_len(what, s.len(), MAX_TEXT_BYTES)
}

pub(crate) fn check_circuit_name(name: &str) -> Result<(), String> {
    crate::ids::validate_name("circuit", name)
}

impl Bounded for OpenFrame {
    fn check_bounds(&self) -> Result<(), String> {
        match &self.open {
            StreamOpen::Control(h) => h.check_bounds(),
            StreamOpen::FetchKey(f) => f.check_bounds(),
            StreamOpen::DeliverProof(d) => d.check_bounds(),
            StreamOpen::Client(c) => c.check_bounds(),
            StreamOpen::FetchInput(f) => f.check_bounds(),
        }
    }
}

impl Bounded for Telemetry {
    fn check_bounds(&self) -> Result<(), String> {
        check_len("telemetry.gpus", self.gpus.len(), MAX_GPUS_PER_AGENT)?;
        for g in &self.gpus {
            check_text("gpu.uuid", &g.uuid)?;
            check_text("gpu.name", &g.name)?;
        }
        check_text("host.hostname", &self.host.hostname)?;
        check_text("calibration.backend_name", &self.calibration.backend_name)?;
        let (crate::telemetry::NvmlStatus::Available { driver_version: s }
        | crate::telemetry::NvmlStatus::Missing { reason: s }) = &self.nvml;
        check_text("nvml", s)
    }
}

// The round trips go through tokio streams.
#[cfg(all(test, feature = "net"))]
mod tests;
