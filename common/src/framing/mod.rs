//! Frames on a byte stream: a u32 little-endian length, then that many bytes of body
//! (postcard for messages, raw bytes for payload chunks).
//!
//! Large payloads (proving keys up to GiBs, proofs, inputs) never travel as one frame: they
//! go as a [`PayloadHeader`] frame then raw chunk frames of at most [`PAYLOAD_CHUNK_BYTES`],
//! bounded in total by a maximum the receiver chooses and checked against the header's
//! SHA-256 at the end.
//!
//! This module is the format: limits, errors, encoding into a buffer and decoding a body,
//! with no I/O, so the pure crates (the coordinator's core) can use it. Reading and writing
//! frames over tokio streams (quinn's `RecvStream`/`SendStream` among them), the per-peer
//! budgets and the payload streaming are in `io`, behind the `net` feature, re-exported
//! here so their paths do not depend on the split.
//!
//! Architecture invariant: no length read from the wire is allocated before it is checked
//! against a limit, and no frame buffer grows ahead of the bytes that arrived for it: a
//! length prefix alone costs nothing. A receiver that serves many peers reads through a
//! [`FrameReader`] with a [`FrameBudget`] (bytes of partial frames it may hold for one peer,
//! and in total) and a deadline for a frame to arrive whole once it has begun.

#[cfg(feature = "net")]
mod io;
#[cfg(feature = "net")]
pub use io::*;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest frame body. Every control message (offers with their bounded inputs, telemetry,
/// status views, tables) fits well under this; anything bigger is a payload and is chunked.
/// 1 MiB keeps the memory a malicious or broken peer can make us allocate per stream small.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Size of one payload chunk: large enough that the 4-byte header and per-frame overhead
/// vanish (~0.002 %), small enough to keep per-stream buffers modest and let flow control
/// interleave several streams on one connection.
pub const PAYLOAD_CHUNK_BYTES: usize = 256 << 10;

/// Length prefix size.
const LEN_BYTES: usize = 4;

/// A frame's buffer grows by at most this much ahead of the bytes that arrived for it: a
/// peer that announces 1 MiB and sends nothing costs a few bytes, not 1 MiB. Small enough
/// that 128 half-sent frames on one connection stay cheap, large enough that a 1 MiB frame
/// takes 16 reads.
pub const FRAME_READ_STEP_BYTES: usize = 64 << 10;

const _: () = assert!(PAYLOAD_CHUNK_BYTES <= MAX_FRAME_BYTES);
const _: () = assert!(MAX_FRAME_BYTES <= u32::MAX as usize);

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit; large data must be sent as a chunked payload")]
    TooLarge { len: u64, max: u64 },
    #[error("malformed frame: {0}; the peer may run an incompatible build")]
    Malformed(String),
    #[error("message out of protocol bounds: {0}")]
    OutOfBounds(String),
    #[error("the peer closed the stream")]
    Closed,
    #[error("the stream ended inside a frame: expected {expected} bytes, got {got}; the peer or the connection went away")]
    Truncated { expected: u64, got: u64 },
    #[error("payload of {total_len} bytes exceeds the {max}-byte limit the receiver accepts")]
    PayloadTooLarge { total_len: u64, max: u64 },
    #[error("payload is corrupt: SHA-256 {actual} does not match the announced {expected}; fetch it again")]
    HashMismatch { expected: String, actual: String },
    #[error("the frame did not arrive whole within {within_ms} ms of its first byte ({got} of {expected} bytes came); a peer must send each message at once, not trickle it")]
    TimedOut {
        within_ms: u64,
        expected: u64,
        got: u64,
    },
    #[error("stream I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends `msg` to `buf` as one frame (several frames in one buffer go out in one write).
/// On error `buf` is left as it was.
pub fn encode_frame_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    msg: &T,
) -> Result<(), FrameError> {
    let start = buf.len();
    // Reserve the length prefix in the same buffer so the frame goes out in one write.
    buf.extend_from_slice(&[0u8; LEN_BYTES]);
    let encoded = postcard::to_extend(msg, std::mem::take(buf));
    let mut out = match encoded {
        Ok(out) => out,
        Err(e) => return Err(FrameError::Malformed(format!("cannot encode message: {e}"))),
    };
    let len = out.len() - start - LEN_BYTES;
    if let Err(e) = check_len(len as u64) {
        out.truncate(start);
        *buf = out;
        return Err(e);
    }
    out[start..start + LEN_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    *buf = out;
    Ok(())
}

/// Decodes one frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| {
        FrameError::Malformed(format!(
            "cannot decode {} ({} bytes): {e}",
            short_type_name::<T>(),
            body.len()
        ))
    })?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after a {}",
            rest.len(),
            short_type_name::<T>()
        )));
    }
    Ok(msg)
}

fn check_len(len: u64) -> Result<(), FrameError> {
    if len > MAX_FRAME_BYTES as u64 {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES as u64,
        });
    }
    Ok(())
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// The first frame of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadHeader {
    pub total_len: u64,
    pub sha256: [u8; 32],
}
