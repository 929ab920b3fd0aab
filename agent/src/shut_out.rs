//! When the coordinator shuts this agent out, the agent says so plainly and waits as it
//! must: a revoked certificate (cut while connected, or refused in the handshake) is an
//! ERROR naming the certificate and what to do, then the agent keeps retrying with backoff,
//! re-reading its certificate files each time (see `identity_files`); another live process
//! holding this agent's session is a WARN, and the agent waits at least as long as the
//! coordinator asked before trying again, so the two do not take turns.

use crate::identity_files::AgentIdentity;
use proofrack_common::tls::{self, CoordinatorClose};
use std::time::Duration;

/// The least a held-off agent waits when the coordinator's own figure did not arrive (the
/// close overtook it): three default telemetry intervals, the coordinator's default window.
pub const DUPLICATE_DEFAULT_WAIT: Duration = Duration::from_secs(6);

/// Why the coordinator shut this agent out, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutOut {
    Revoked,
    HeldOff { wait: Duration },
}

impl ShutOut {
    /// From how the connection ended and, if it came, the coordinator's hold-off figure.
    pub fn of(conn: &quinn::Connection, held_off_ms: Option<u64>) -> Option<ShutOut> {
        match (tls::coordinator_close(conn), held_off_ms) {
            (Some(CoordinatorClose::Revoked), _) => Some(ShutOut::Revoked),
            (_, Some(ms)) => Some(ShutOut::HeldOff {
                wait: Duration::from_millis(ms),
            }),
            (Some(CoordinatorClose::DuplicateAgent), None) => Some(ShutOut::HeldOff {
                wait: DUPLICATE_DEFAULT_WAIT,
            }),
            _ => None,
        }
    }

    /// The least to wait before the next attempt.
    pub fn min_wait(self) -> Duration {
        match self {
            ShutOut::Revoked => Duration::ZERO,
            ShutOut::HeldOff { wait } => wait,
        }
    }

    /// What happened and what to do, in words.
    pub fn message(self, identity: &AgentIdentity) -> String {
        match self {
            ShutOut::Revoked => {
                let files = identity.files().map_or_else(
                    || "this agent's certificate and key files".to_string(),
                    |f| format!("{} and {}", f.cert.display(), f.key.display()),
                );
                format!(
                    "the coordinator revoked this agent's certificate (serial {}): it will not be let back \
                     in with it. On the CA host run `proofrack certs renew agent --operator OP --name NAME` \
                     for this agent and put the new certificate and key at {files}; this agent uses them \
                     from its next attempt, no restart needed",
                    identity.serial_hex()
                )
            }
            ShutOut::HeldOff { wait } => format!(
                "another process is connected to the coordinator with this agent's certificate and keeps \
                 the session; this one waits {} ms and tries again. Stop the duplicate process, or give \
                 each box its own certificate (`proofrack certs issue agent`)",
                wait.as_millis()
            ),
        }
    }

    /// Says it in the log: revocation is an error (the agent cannot work until someone acts),
    /// a hold-off a warning.
    pub fn log(self, agent: &str, identity: &AgentIdentity) {
        let message = self.message(identity);
        match self {
            ShutOut::Revoked => {
                tracing::error!(%agent, serial = identity.serial_hex(), "{message}")
            }
            ShutOut::HeldOff { wait } => {
                tracing::warn!(%agent, wait_ms = wait.as_millis() as u64, "{message}")
            }
        }
    }
}
