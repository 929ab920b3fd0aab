//! One lightweight protocol agent of a load fleet: a real QUIC connection with its own
//! certificate, the hello and telemetry of the protocol test kit, and an accept for every
//! offer (it never proves: each holds at most its slots).

use super::LOOPBACK_HOST;
use anyhow::bail;
use proofrack_common::protocol::{
    read_message, write_message, write_stream_open, AgentToCoordinator, CoordinatorToAgent,
    OfferDecision, OfferReply, StreamOpen, MAX_OFFER_REPLIES,
};
use proofrack_common::telemetry::Calibration;
use proofrack_common::{testkit, TaskId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

/// Host memory a load agent reports: ample for the load's circuit.
const AGENT_MEMORY_BYTES: u64 = 8 << 30;

/// An agent of the fleet, before it connects.
pub(super) struct FleetAgent {
    pub endpoint: quinn::Endpoint,
    pub config: quinn::ClientConfig,
    pub addr: SocketAddr,
    pub interval: Duration,
    /// (task, when its offer arrived); matched with submission times at the end, since an
    /// offer can arrive before its submission's reply does.
    pub offers: mpsc::UnboundedSender<(TaskId, Instant)>,
    /// Tasks it takes at once, as its hello declares.
    pub slots: u32,
    pub stop: watch::Receiver<bool>,
}

/// A connected agent's session: the connection and its control stream.
type Session = (quinn::Connection, quinn::SendStream, quinn::RecvStream);

impl FleetAgent {
    /// Connects (holding a permit of `gate` for the handshake), says on `ready` whether it
    /// could, then reports telemetry and accepts offers until told to stop.
    pub async fn run(
        mut self,
        gate: Arc<Semaphore>,
        ready: mpsc::UnboundedSender<anyhow::Result<()>>,
    ) {
        let calibration = testkit::cpu_calibration();
        let permit = gate.acquire_owned().await.expect("gate never closed");
        let session = self.connect(&calibration).await;
        drop(permit);
        let (conn, send, recv) = match session {
            Ok(s) => {
                let _ = ready.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        // Offers are read on their own task, so every offer that arrived while the agent was
        // writing is answered in one message.
        let (offer_tx, offers) = mpsc::unbounded_channel::<TaskId>();
        let reader = tokio::spawn(read_offers(recv, offer_tx));
        self.serve(&conn, send, offers, &calibration).await;
        reader.abort();
    }

    async fn connect(&mut self, calibration: &Calibration) -> anyhow::Result<Session> {
        let conn = self
            .endpoint
            .connect_with(self.config.clone(), self.addr, LOOPBACK_HOST)?
            .await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        let hello = testkit::hello(calibration, self.slots);
        write_stream_open(&mut send, StreamOpen::Control(hello)).await?;
        match read_message::<_, CoordinatorToAgent>(&mut recv).await? {
            CoordinatorToAgent::Welcome(_) => Ok((conn, send, recv)),
            other => bail!("expected Welcome, got {other:?}"),
        }
    }

    /// Telemetry every interval; every batch of offers accepted in one reply.
    async fn serve(
        &mut self,
        conn: &quinn::Connection,
        mut send: quinn::SendStream,
        mut offers: mpsc::UnboundedReceiver<TaskId>,
        calibration: &Calibration,
    ) {
        let mut tick = tokio::time::interval(self.interval);
        let mut seq = 0;
        loop {
            let msg = tokio::select! {
                _ = tick.tick() => {
                    seq += 1;
                    AgentToCoordinator::Telemetry(testkit::cpu_report(seq, AGENT_MEMORY_BYTES, calibration))
                }
                offer = offers.recv() => {
                    let Some(first) = offer else { return };
                    self.accept_all(first, &mut offers)
                }
                _ = self.stop.changed() => {
                    conn.close(0u32.into(), b"done");
                    return;
                }
            };
            if write_message(&mut send, &msg).await.is_err() {
                return;
            }
        }
    }

    /// The accept of `first` and of every offer already waiting behind it, noting when each
    /// arrived.
    fn accept_all(
        &self,
        first: TaskId,
        offers: &mut mpsc::UnboundedReceiver<TaskId>,
    ) -> AgentToCoordinator {
        let mut tasks = vec![first];
        while tasks.len() < MAX_OFFER_REPLIES {
            match offers.try_recv() {
                Ok(t) => tasks.push(t),
                Err(_) => break,
            }
        }
        let at = Instant::now();
        for t in &tasks {
            let _ = self.offers.send((*t, at));
        }
        let mut replies: Vec<OfferReply> = tasks
            .into_iter()
            .map(|task| OfferReply {
                task,
                decision: OfferDecision::Accept,
            })
            .collect();
        if replies.len() == 1 {
            AgentToCoordinator::OfferReply(replies.remove(0))
        } else {
            AgentToCoordinator::OfferReplies(replies)
        }
    }
}

/// Forwards the task of every offer on the control stream until it ends.
async fn read_offers(mut recv: quinn::RecvStream, offers: mpsc::UnboundedSender<TaskId>) {
    while let Ok(msg) = read_message::<_, CoordinatorToAgent>(&mut recv).await {
        if let CoordinatorToAgent::Offer(offer) = msg {
            if offers.send(offer.task).is_err() {
                return;
            }
        }
    }
}
