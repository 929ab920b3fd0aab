//! Waiting with a timeout and a message: on an event, on a polled view, on a task's watch
//! stream.

use super::cluster::Client;
use super::TASK_TIMEOUT;
use proofrack_common::protocol::{TaskState, TaskStatusView};
use proofrack_common::TaskId;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a view with no event behind it is re-read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// `fut`'s output, or a panic naming `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Re-runs `probe` until it returns `Some`, for state no event announces.
pub async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(limit, what, async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    })
    .await
}

/// A task's watch stream (`ClientRequest::Watch`), each status as the coordinator sent it.
pub struct TaskWatch {
    pub task: TaskId,
    updates: mpsc::UnboundedReceiver<TaskStatusView>,
    /// Every status received so far, oldest first.
    pub seen: Vec<TaskStatusView>,
    ended: tokio::task::JoinHandle<Result<(), String>>,
}

impl TaskWatch {
    pub fn start(client: &Client, task: TaskId) -> TaskWatch {
        let (tx, updates) = mpsc::unbounded_channel();
        let inner = client.inner.clone();
        let ended = tokio::spawn(async move {
            inner
                .watch(task, |v| {
                    let _ = tx.send(v.clone());
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        TaskWatch {
            task,
            updates,
            seen: Vec::new(),
            ended,
        }
    }

    /// The first status (from now on) satisfying `pred`; panics on timeout or if the stream
    /// ends (a terminal state) without one.
    pub async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&TaskStatusView) -> bool,
    ) -> TaskStatusView {
        let task = self.task;
        let seen = &mut self.seen;
        let updates = &mut self.updates;
        let found = tokio::time::timeout(limit, async {
            while let Some(v) = updates.recv().await {
                seen.push(v.clone());
                if pred(&v) {
                    return Some(v);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(v)) => v,
            Ok(None) => panic!(
                "{task}: the watch ended before {what}; states seen: {}",
                describe(&self.seen)
            ),
            Err(_) => panic!(
                "{task}: timed out after {limit:?} waiting for {what}; states seen: {}",
                describe(&self.seen)
            ),
        }
    }

    /// Waits for the task's terminal state (verified or failed).
    pub async fn finished(&mut self) -> TaskStatusView {
        self.until("a terminal state", TASK_TIMEOUT, |v| v.state.is_terminal())
            .await
    }

    /// Waits for a verified proof; panics with the reason if the task failed instead.
    pub async fn verified(&mut self) -> TaskStatusView {
        let last = self.finished().await;
        if let TaskState::Failed { reason, .. } = &last.state {
            panic!(
                "{}: failed instead of verified: {reason}\n{}",
                self.task,
                history(&last)
            );
        }
        last
    }

    /// The watch stream's own result once it ended.
    pub async fn ended(self) -> Result<(), String> {
        super::wait::within(super::STEP_TIMEOUT, "the watch stream to end", self.ended)
            .await
            .expect("watch task")
    }

    /// State names seen so far, e.g. `queued, offered, proving, verified`.
    pub fn state_names(&self) -> Vec<&'static str> {
        self.seen.iter().map(|v| v.state.name()).collect()
    }
}

/// `queued (reason) → offered → ...` for failure messages.
pub fn describe(seen: &[TaskStatusView]) -> String {
    if seen.is_empty() {
        return "none".into();
    }
    seen.iter()
        .map(|v| match &v.state {
            TaskState::Queued { reason } => format!("queued ({reason})"),
            TaskState::Failed { reason, .. } => format!("failed ({reason})"),
            s => s.name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// A task's history, one line per entry, for failure messages.
pub fn history(v: &TaskStatusView) -> String {
    v.history
        .iter()
        .map(|h| format!("  {} {}", h.at, h.what))
        .collect::<Vec<_>>()
        .join("\n")
}
