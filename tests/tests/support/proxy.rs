//! A UDP proxy on loopback that a test can cut: while cut, every datagram in either direction
//! is dropped, as in a network partition (no ICMP, no close, just silence).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::task::{JoinHandle, JoinSet};

/// Largest datagram relayed: QUIC never sends more than the path MTU, 64 KiB covers any.
const MAX_DATAGRAM_BYTES: usize = 65_536;

pub struct UdpProxy {
    /// Where clients dial instead of the upstream.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    relay: JoinHandle<()>,
}

impl UdpProxy {
    /// Relays between clients dialling [`UdpProxy::addr`] and `upstream`, one upstream socket
    /// per client address (so the upstream sees each client as its own peer).
    pub async fn start(upstream: SocketAddr) -> UdpProxy {
        let front = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("bind the proxy"),
        );
        let addr = front.local_addr().expect("proxy address");
        let cut = Arc::new(AtomicBool::new(false));
        let relay = tokio::spawn(relay(front, upstream, cut.clone()));
        UdpProxy { addr, cut, relay }
    }

    /// From now on, nothing passes.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// From now on, everything passes again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

async fn relay(front: Arc<UdpSocket>, upstream: SocketAddr, cut: Arc<AtomicBool>) {
    let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    // Dropped (and every answering task with it) when the relay is aborted.
    let mut answers = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    while let Ok((n, client)) = front.recv_from(&mut buf).await {
        if cut.load(Ordering::SeqCst) {
            continue;
        }
        let back = match backs.get(&client) {
            Some(back) => back.clone(),
            None => {
                let back = Arc::new(
                    UdpSocket::bind("127.0.0.1:0")
                        .await
                        .expect("bind an upstream socket"),
                );
                back.connect(upstream).await.expect("connect upstream");
                answers.spawn(answer(back.clone(), front.clone(), client, cut.clone()));
                backs.insert(client, back.clone());
                back
            }
        };
        // A send error (upstream gone for a moment) is a lost datagram, as on a real network.
        let _ = back.send(&buf[..n]).await;
    }
}

/// Upstream → client for one client.
async fn answer(
    back: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    cut: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        let n = match back.recv(&mut buf).await {
            Ok(n) => n,
            // ICMP "port unreachable" from a restarting upstream surfaces as an error on a
            // connected socket; the relay keeps going.
            Err(_) => continue,
        };
        if !cut.load(Ordering::SeqCst) {
            let _ = front.send_to(&buf[..n], client).await;
        }
    }
}
