//! A client of the coordinator, for the command line and tests: one connection, one stream
//! per request.

use crate::framing::FrameError;
use crate::protocol::{
    read_message, write_stream_open, ClientRequest, ClientResponse, StreamOpen, TaskStatusView,
};
use crate::tls::{self, TlsMaterial};
use crate::TaskId;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot reach the coordinator at {addr}: {detail}")]
    Connect { addr: SocketAddr, detail: String },
    /// Nothing answered the handshake in time: nobody listens there, or a firewall drops
    /// the packets (QUIC gets no refusal it could report).
    #[error("no answer from a coordinator at {addr} within {}", crate::timefmt::span(*waited))]
    NoAnswer {
        addr: SocketAddr,
        waited: std::time::Duration,
    },
    #[error("the coordinator closed the request: {0}")]
    Stream(String),
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// A connection to the coordinator with a client certificate.
pub struct CoordinatorClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

impl CoordinatorClient {
    /// Connects to `addr`, whose certificate must name `server_name`, giving up with
    /// [`ClientError::NoAnswer`] after `wait` (a handshake nobody answers would otherwise
    /// take the whole idle timeout).
    pub async fn connect_within(
        addr: SocketAddr,
        server_name: &str,
        material: &TlsMaterial,
        wait: std::time::Duration,
    ) -> Result<Self, ClientError> {
        tokio::time::timeout(wait, Self::connect(addr, server_name, material))
            .await
            .unwrap_or(Err(ClientError::NoAnswer { addr, waited: wait }))
    }

    /// Connects to `addr`, whose certificate must name `server_name`.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        material: &TlsMaterial,
    ) -> Result<Self, ClientError> {
        let config = tls::client_config(material)?;
        let bind: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("literal address")
        } else {
            "0.0.0.0:0".parse().expect("literal address")
        };
        let mut endpoint = quinn::Endpoint::client(bind).map_err(ClientError::Socket)?;
        endpoint.set_default_client_config(config);
        let connecting = endpoint
            .connect(addr, server_name)
            .map_err(|e| ClientError::Connect {
                addr,
                detail: e.to_string(),
            })?;
        let conn = connecting.await.map_err(|e| ClientError::Connect {
            addr,
            detail: e.to_string(),
        })?;
        Ok(CoordinatorClient { endpoint, conn })
    }

    /// The QUIC connection, for streams this type does not model (tests, load generators).
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    fn stream_error(&self, e: impl std::fmt::Display) -> ClientError {
        // A refused certificate or protocol error shows as the connection's close reason.
        ClientError::Stream(tls::close_reason_text(&self.conn).unwrap_or_else(|| e.to_string()))
    }

    /// Sends one request and reads its one reply.
    pub async fn request(&self, req: ClientRequest) -> Result<ClientResponse, ClientError> {
        self.request_with_payloads(req, &[]).await
    }

    /// Sends one request followed by `payloads` (hash-checked, chunked: files such as a
    /// zkey or a witness) and reads its one reply. The coordinator may answer before reading
    /// them all (a refusal), so a reply that arrives while sending wins over the send error.
    pub async fn request_with_payloads(
        &self,
        req: ClientRequest,
        payloads: &[&[u8]],
    ) -> Result<ClientResponse, ClientError> {
        let (mut send, mut recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| self.stream_error(e))?;
        write_stream_open(&mut send, StreamOpen::Client(req))
            .await
            .map_err(|e| self.stream_error(e))?;
        let sending = async {
            for p in payloads {
                crate::framing::send_payload(&mut send, p).await?;
            }
            let _ = send.finish();
            Ok::<_, FrameError>(())
        };
        let sent = sending.await;
        let reply = read_message::<_, ClientResponse>(&mut recv).await;
        if let (Err(e), Err(_)) = (&sent, &reply) {
            return Err(self.stream_error(e));
        }
        reply.map_err(|e| self.stream_error(e))
    }

    /// Follows a task: `on_update` gets every status until the task is verified or failed;
    /// returns the last one.
    pub async fn watch(
        &self,
        task: TaskId,
        mut on_update: impl FnMut(&TaskStatusView),
    ) -> Result<TaskStatusView, ClientError> {
        let (mut send, mut recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| self.stream_error(e))?;
        write_stream_open(&mut send, StreamOpen::Client(ClientRequest::Watch { task }))
            .await
            .map_err(|e| self.stream_error(e))?;
        let _ = send.finish();
        let mut last = None;
        loop {
            match read_message::<_, ClientResponse>(&mut recv).await {
                Ok(ClientResponse::Status(v)) => {
                    on_update(&v);
                    let done = v.state.is_terminal();
                    last = Some(v);
                    if done {
                        return Ok(last.expect("just set"));
                    }
                }
                Ok(ClientResponse::Error(e)) => return Err(ClientError::Stream(e.to_string())),
                Ok(other) => return Err(ClientError::Unexpected(format!("{other:?}"))),
                Err(FrameError::Closed) => {
                    return last
                        .ok_or_else(|| ClientError::Stream("watch ended with no status".into()))
                }
                Err(e) => return Err(self.stream_error(e)),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(self) {
        self.conn.close(0u32.into(), b"done");
        self.endpoint.wait_idle().await;
    }
}
