//! The client side of a fleet load: submitters sharing one client connection take the next
//! batch of task numbers until all are submitted, either as fast as their requests are
//! answered (throughput) or each batch at its scheduled time (a fixed offered rate, its
//! latency counted from the schedule, so a late send counts against the coordinator).

use anyhow::bail;
use proofrack_common::client::CoordinatorClient;
use proofrack_common::protocol::{ClientRequest, ClientResponse, SubmitRequest};
use proofrack_common::{StakeUnits, TaskId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// When each task's submission was sent (or scheduled).
pub(super) type SentAt = Arc<Mutex<HashMap<TaskId, Instant>>>;

/// What the submitters send.
#[derive(Clone)]
pub(super) struct Submissions {
    pub circuit: &'static str,
    pub tasks: usize,
    /// Tasks per request (1: `Submit`; more: `SubmitBatch`).
    pub batch: usize,
    pub deadline_ms: u64,
    /// Tasks per second offered on a fixed schedule from `t0`; `None`: as fast as answered.
    pub rate: Option<f64>,
    pub t0: Instant,
}

/// Starts `count` submitters; each returns when every task number is taken, or on the first
/// refusal.
pub(super) fn spawn(
    count: usize,
    client: &Arc<CoordinatorClient>,
    what: &Submissions,
    sent_at: &SentAt,
) -> JoinSet<anyhow::Result<()>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut submitters = JoinSet::new();
    for _ in 0..count.max(1) {
        let (client, next, sent_at, what) =
            (client.clone(), next.clone(), sent_at.clone(), what.clone());
        submitters.spawn(async move {
            loop {
                let first = next.fetch_add(what.batch, Ordering::Relaxed);
                if first >= what.tasks {
                    return Ok(());
                }
                let sent = what.send_time(first).await;
                let tasks = submit(&client, &what, first).await?;
                let mut sent_at = sent_at.lock().expect("submission times");
                for task in tasks {
                    sent_at.insert(task, sent);
                }
            }
        });
    }
    submitters
}

impl Submissions {
    /// When the batch from task number `first` counts as sent: its scheduled time (waited
    /// for), or now.
    async fn send_time(&self, first: usize) -> Instant {
        match self.rate {
            Some(rate) => {
                let at = self.t0 + Duration::from_secs_f64(first as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => Instant::now(),
        }
    }

    fn request(&self, i: usize) -> SubmitRequest {
        SubmitRequest {
            circuit: self.circuit.into(),
            inputs: format!(r#"{{"x":"{i}"}}"#).into_bytes(),
            collateral: StakeUnits(1),
            deadline_ms: self.deadline_ms,
            request_id: i as u64 + 1,
        }
    }
}

/// Submits the batch of task numbers from `first`; the tasks, in order.
async fn submit(
    client: &CoordinatorClient,
    what: &Submissions,
    first: usize,
) -> anyhow::Result<Vec<TaskId>> {
    let numbers = first..what.tasks.min(first + what.batch);
    let answers = if what.batch == 1 {
        vec![
            client
                .request(ClientRequest::Submit(what.request(first)))
                .await?,
        ]
    } else {
        let requests = numbers.map(|i| what.request(i)).collect();
        match client.request(ClientRequest::SubmitBatch(requests)).await? {
            ClientResponse::Batch(answers) => answers,
            other => bail!("batch from task {first} refused: {other:?}"),
        }
    };
    answers
        .into_iter()
        .enumerate()
        .map(|(n, answer)| match answer {
            ClientResponse::Submitted { task } => Ok(task),
            other => bail!("task {} refused: {other:?}", first + n),
        })
        .collect()
}
