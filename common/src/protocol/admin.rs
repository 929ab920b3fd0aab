//! The audit log of administrators' actions as clients read it (`ClientRequest::Audit`): who
//! did what, when, and how it ended, including refused attempts.

use super::{check_len, check_text, Bounded, MAX_TEXT_BYTES};
use crate::framing::MAX_FRAME_BYTES;
use crate::ids::OperatorId;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Most audit entries in one reply (the newest ones asked for): with every text at its bound
/// the reply still fits one frame (checked below); older ones are paged with the request's `before`.
pub const MAX_AUDIT_VIEW_ROWS: usize = 128;

/// Worst case of one line: three texts and ~64 bytes of numbers, tags and the operator name.
const MAX_AUDIT_LINE_BYTES: usize = 3 * (MAX_TEXT_BYTES + 2) + 64 + 2 * 65;
const _: () = assert!(MAX_AUDIT_VIEW_ROWS * MAX_AUDIT_LINE_BYTES < MAX_FRAME_BYTES);

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// Authorized and carried out.
    Done,
    /// Authorized, but the coordinator could not do it (e.g. not enough free stake).
    Failed,
    /// The identity may not do it; nothing changed.
    Refused,
}

impl AuditOutcome {
    pub fn name(self) -> &'static str {
        match self {
            AuditOutcome::Done => "done",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Refused => "refused",
        }
    }
}

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// Increases by one per entry, never reused (after a restart too).
    pub seq: u64,
    pub at: UnixMillis,
    /// The identity that asked (`operator/op-a/admin/ops`, `client/mallory`).
    pub who: String,
    /// What it asked, e.g. `drain op-a/gpu-1` or `withdraw 10 from op-b`.
    pub action: String,
    /// The operator the action concerns, if any: operator admins read their operator's lines.
    pub operator: Option<OperatorId>,
    pub outcome: AuditOutcome,
    /// The reply the identity got.
    pub message: String,
}

/// Audit lines, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub lines: Vec<AuditLine>,
    /// Lines the coordinator keeps (the oldest are pruned past its cap), of which the asker
    /// may read these.
    pub kept: u64,
    /// The coordinator's cap on kept lines.
    pub cap: u64,
}

impl Bounded for AuditView {
    fn check_bounds(&self) -> Result<(), String> {
        check_len("audit.lines", self.lines.len(), MAX_AUDIT_VIEW_ROWS)?;
        for l in &self.lines {
            check_text("audit.who", &l.who)?;
            check_text("audit.action", &l.action)?;
            check_text("audit.message", &l.message)?;
        }
        Ok(())
    }
}
