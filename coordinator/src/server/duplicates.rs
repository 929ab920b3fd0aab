//! Two live processes with one agent certificate. The process holding the control stream
//! keeps it while it is alive; a newer connection is refused with
//! [`ProtocolError::DuplicateAgent`] (how long to wait) and closed with
//! [`close_code::DUPLICATE_AGENT`], which the agent recognises and backs off on, logging
//! why. Each refusal is a WARN here and counted in `/metrics`
//! (`proofrack_duplicate_agent_connections_total`).
//!
//! Alive means the core heard from it (a telemetry report, or its hello) within
//! [`LIVE_TELEMETRY_INTERVALS`] telemetry intervals: an agent reports every interval, so a
//! holder silent for three has died, restarted or lost its connection, and the newer
//! connection replaces it at once (a restarted agent waits at most that long).

use super::shared::Shared;
use crate::admission::AgentId;
use proofrack_common::protocol::{write_message, CoordinatorToAgent, ProtocolError};
use proofrack_common::tls::close_code;

/// Telemetry intervals of silence after which a session's holder counts as gone.
pub const LIVE_TELEMETRY_INTERVALS: u64 = 3;
/// The least a held-off agent is told to wait: below this two processes would still take
/// turns at the rate of handshakes.
pub const MIN_HOLD_OFF_MS: u64 = 1_000;

/// Refuses this connection if another live one holds `agent`'s session; `true` if refused.
pub(super) async fn hold_off(
    shared: &Shared,
    conn: &quinn::Connection,
    agent: &AgentId,
    send: &mut quinn::SendStream,
) -> bool {
    let window_ms = shared
        .telemetry_interval_ms()
        .saturating_mul(LIVE_TELEMETRY_INTERVALS)
        .max(MIN_HOLD_OFF_MS);
    let heard_ms_ago = shared.read(|core, now| {
        core.agent_last_heard(agent)
            .map(|at| now.0.saturating_sub(at.0))
    });
    let Some(ago) = heard_ms_ago.filter(|ago| *ago < window_ms) else {
        return false;
    };
    if !shared.has_live_link(agent) {
        // The core still counts it connected, but its control stream is gone: not a holder.
        return false;
    }
    let retry_after_ms = window_ms;
    shared.trust().count_duplicate(&agent.operator);
    tracing::warn!(
        %agent,
        remote = %conn.remote_address(),
        holder_heard_ms_ago = ago,
        retry_after_ms,
        "a second process connected with this agent's certificate while the first is alive; the first keeps its session and this one is held off. Two processes must not share one agent certificate"
    );
    let err = ProtocolError::DuplicateAgent {
        agent: agent.to_string(),
        retry_after_ms,
    };
    // The close code and reason carry the same, should the close overtake this message.
    let _ = write_message(send, &CoordinatorToAgent::Error(err.clone())).await;
    let _ = send.finish();
    let text = err.to_string();
    conn.close(
        close_code::DUPLICATE_AGENT.into(),
        &text.as_bytes()[..text.len().min(1000)],
    );
    true
}
