//! Errors the coordinator sends to a peer. Each says what is wrong and what to do.

use crate::framing::FrameError;
use crate::identity::IdentityKind;
use crate::ids::{KeyId, TaskId};
use serde::{Deserialize, Serialize};

/// An error on the wire. Sent as the reply to a refused stream (then the stream is finished),
/// or on the control stream as `CoordinatorToAgent::Error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProtocolError {
    /// Fields are named from the coordinator's side so the message reads the same on both
    /// ends: the coordinator speaks `coordinator`, the peer (an agent or client) `peer`.
    #[error("protocol version mismatch: coordinator speaks {coordinator}, {peer_kind} speaks {peer}; upgrade the {}", if peer < coordinator { peer_kind.to_string() } else { "coordinator".to_string() })]
    VersionMismatch {
        coordinator: u32,
        peer: u32,
        peer_kind: IdentityKind,
    },
    #[error("malformed message: {detail}")]
    Malformed { detail: String },
    #[error("{identity} may not open {action}; use a certificate of the right kind (`proofrack certs issue`)")]
    NotAllowed { identity: String, action: String },
    #[error("unknown task {task}: the coordinator holds no such task; `proofrack tasks` lists yours (a finished task is forgotten after policy.request_retention_ms, a day by default, or once thousands of newer ones have finished)")]
    UnknownTask { task: TaskId },
    #[error("unknown proving key {key}; the circuit may have been re-registered, wait for a fresh offer")]
    UnknownKey { key: KeyId },
    #[error("unknown circuit {circuit:?}; list registered circuits with `proofrack circuits`")]
    UnknownCircuit { circuit: String },
    #[error("agent {agent} already has a control stream on another connection; stop the duplicate agent process")]
    AlreadyConnected { agent: String },
    #[error("coordinator unavailable: {detail}; retry later")]
    Unavailable { detail: String },
    #[error("coordinator internal error: {detail}")]
    Internal { detail: String },
    /// The identity's role may not do this (the coordinator's authorization table); nothing
    /// changed.
    #[error("{identity} may not {action}: {needs}")]
    Forbidden {
        identity: String,
        action: String,
        needs: String,
    },
    /// Another process with the same agent certificate holds a live control stream: it keeps
    /// it, and this connection is held off.
    #[error("agent {agent} is already connected from another process, which keeps its session; this one is held off for {retry_after_ms} ms. Two processes must not share one agent certificate: stop the duplicate, or issue each box its own (`proofrack certs issue agent`)")]
    DuplicateAgent { agent: String, retry_after_ms: u64 },
}

impl ProtocolError {
    /// The reply for a frame that could not be read, if there is anyone to reply to (a closed
    /// or broken stream has nobody).
    pub fn for_frame_error(e: &FrameError) -> Option<ProtocolError> {
        match e {
            FrameError::Closed | FrameError::Truncated { .. } | FrameError::Io(_) => None,
            other => Some(ProtocolError::Malformed {
                detail: other.to_string(),
            }),
        }
    }

    /// Bounded form for the wire: free-text details are cut to [`super::MAX_TEXT_BYTES`].
    pub fn truncated(mut self) -> ProtocolError {
        let cut = |s: &mut String| truncate_utf8(s, super::MAX_TEXT_BYTES);
        match &mut self {
            ProtocolError::Malformed { detail }
            | ProtocolError::Unavailable { detail }
            | ProtocolError::Internal { detail } => cut(detail),
            ProtocolError::NotAllowed { identity, action } => {
                cut(identity);
                cut(action)
            }
            ProtocolError::Forbidden {
                identity,
                action,
                needs,
            } => {
                cut(identity);
                cut(action);
                cut(needs)
            }
            ProtocolError::UnknownCircuit { circuit: s }
            | ProtocolError::AlreadyConnected { agent: s }
            | ProtocolError::DuplicateAgent { agent: s, .. } => cut(s),
            ProtocolError::VersionMismatch { .. }
            | ProtocolError::UnknownTask { .. }
            | ProtocolError::UnknownKey { .. } => {}
        }
        self
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

impl super::Bounded for ProtocolError {
    fn check_bounds(&self) -> Result<(), String> {
        let t = super::check_text;
        match self {
            ProtocolError::Malformed { detail }
            | ProtocolError::Unavailable { detail }
            | ProtocolError::Internal { detail } => t("error.detail", detail),
            ProtocolError::NotAllowed { identity, action } => {
                t("error.identity", identity)?;
                t("error.action", action)
            }
            ProtocolError::Forbidden {
                identity,
                action,
                needs,
            } => {
                t("error.identity", identity)?;
                t("error.action", action)?;
                t("error.needs", needs)
            }
            ProtocolError::UnknownCircuit { circuit: s }
            | ProtocolError::AlreadyConnected { agent: s }
            | ProtocolError::DuplicateAgent { agent: s, .. } => t("error.name", s),
            ProtocolError::VersionMismatch { .. }
            | ProtocolError::UnknownTask { .. }
            | ProtocolError::UnknownKey { .. } => Ok(()),
        }
    }
}
