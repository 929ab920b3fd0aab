//! Frames over tokio streams (feature `net`): reading and writing frames and messages, the
//! per-peer [`FrameBudget`] and deadline of a [`FrameReader`], and payload streaming. The
//! format itself (limits, encoding, decoding) is in the parent module.

use super::*;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Initial buffer reserved for an in-memory payload, so a header claiming a huge total does
/// not allocate it all before the bytes arrive.
const PAYLOAD_INITIAL_RESERVE_BYTES: u64 = 16 << 20;

/// Encodes `msg` and writes it as one frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize + ?Sized,
{
    let mut buf = Vec::new();
    encode_frame_into(&mut buf, msg)?;
    w.write_all(&buf).await?;
    Ok(())
}

/// Writes `body` as one raw frame.
pub async fn write_frame_bytes<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
) -> Result<(), FrameError> {
    check_len(body.len() as u64)?;
    w.write_all(&(body.len() as u32).to_le_bytes()).await?;
    w.write_all(body).await?;
    Ok(())
}

/// Reads one frame and decodes it. Trailing bytes after the message are malformed.
pub async fn read_frame<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let body = read_frame_bytes(r, MAX_FRAME_BYTES).await?;
    decode(&body)
}

/// Reads one raw frame of at most `max` bytes. The length is checked before anything is
/// allocated, and the buffer grows only as bytes arrive. A stream that ends cleanly before the
/// first length byte gives [`FrameError::Closed`].
pub async fn read_frame_bytes<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    FrameReader::new(max).read_bytes(r).await
}

/// What every [`FrameBudget`] of a receiver adds to: bytes held in partial frames now, and how
/// often a reader had to wait for budget (for metrics).
#[derive(Debug, Default)]
pub struct BudgetStats {
    held_bytes: AtomicU64,
    waits: AtomicU64,
    /// When the last "budget spent" line was logged (at most one per [`BUDGET_LOG_EVERY`]).
    last_logged: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Readers waiting for budget log at most this often (a flood is one line, not thousands).
pub const BUDGET_LOG_EVERY: Duration = Duration::from_secs(5);

impl BudgetStats {
    /// Bytes of partial frames held now, over every budget sharing these stats.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes.load(Ordering::Relaxed)
    }

    /// Times a reader found its budget spent and waited.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    fn note_wait(&self, which: &str) {
        let waits = self.waits.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= BUDGET_LOG_EVERY) {
            *last = Some(now);
            tracing::warn!(
                limit = "frame_bytes",
                budget = which,
                waits_total = waits,
                held_bytes = self.held_bytes(),
                "limit reached: partial frames hold their budget; the stream waits (flow control slows the peer) until frames complete or time out"
            );
        }
    }
}

/// Bytes of partial frames one peer (a connection, all its streams together) may hold, inside
/// a total shared by every peer. A reader that would go over waits until other frames of the
/// same peer (or of anyone, for the total) complete: the peer is slowed by QUIC flow control,
/// never refused for a burst, and the [`FrameReader`] deadline cuts off one that never
/// completes what it started. Cloning shares the budget.
#[derive(Clone, Debug)]
pub struct FrameBudget {
    peer: Arc<Semaphore>,
    total: Arc<Semaphore>,
    stats: Arc<BudgetStats>,
}

/// Bytes charged to a budget; dropping it gives them back. The reader that holds it keeps
/// [`BudgetStats::held_bytes`] in step.
#[derive(Debug)]
struct Charge {
    peer: OwnedSemaphorePermit,
    total: OwnedSemaphorePermit,
}

impl Charge {
    fn bytes(&self) -> usize {
        self.peer.num_permits()
    }

    fn merge(&mut self, other: Charge) {
        self.peer.merge(other.peer);
        self.total.merge(other.total);
    }
}

impl FrameBudget {
    /// A peer's budget of `peer_bytes` inside `total` (shared by every peer of a receiver,
    /// made with [`FrameBudget::total`]). Both must hold at least one whole frame.
    pub fn new(peer_bytes: usize, total: &Arc<Semaphore>, stats: &Arc<BudgetStats>) -> Self {
        assert!(
            peer_bytes >= MAX_FRAME_BYTES + LEN_BYTES,
            "a frame budget must hold one whole frame"
        );
        FrameBudget {
            peer: Arc::new(Semaphore::new(peer_bytes)),
            total: total.clone(),
            stats: stats.clone(),
        }
    }

    /// The total every peer's budget draws from.
    pub fn total(bytes: usize) -> Arc<Semaphore> {
        assert!(
            bytes >= MAX_FRAME_BYTES + LEN_BYTES,
            "a frame budget must hold one whole frame"
        );
        Arc::new(Semaphore::new(bytes))
    }

    /// Charges `n` bytes, waiting while the peer's or the total budget is spent.
    async fn charge(&self, n: usize) -> Charge {
        let n32 = u32::try_from(n).expect("a read step fits in u32");
        let peer = match self.peer.clone().try_acquire_many_owned(n32) {
            Ok(p) => p,
            Err(_) => {
                self.stats
                    .note_wait("the connection's (limits.frame_bytes_per_connection)");
                self.peer
                    .clone()
                    .acquire_many_owned(n32)
                    .await
                    .expect("frame budgets are never closed")
            }
        };
        let total = match self.total.clone().try_acquire_many_owned(n32) {
            Ok(p) => p,
            Err(_) => {
                self.stats
                    .note_wait("all connections' (limits.frame_bytes_total)");
                self.total
                    .clone()
                    .acquire_many_owned(n32)
                    .await
                    .expect("frame budgets are never closed")
            }
        };
        Charge { peer, total }
    }
}

/// Reads frames from one stream, growing each frame's buffer only as its bytes arrive,
/// charging them to an optional [`FrameBudget`] while the frame is partial, and cutting off a
/// frame that does not arrive whole within a deadline from its first byte.
///
/// Cancel-safe: a frame's progress lives in the reader, so dropping a
/// [`FrameReader::read_bytes`] future (a `select!` taking another branch) loses nothing; the
/// next call goes on where it stopped.
#[derive(Debug)]
pub struct FrameReader {
    max: usize,
    budget: Option<FrameBudget>,
    whole_within: Option<Duration>,
    len_buf: [u8; LEN_BYTES],
    len_got: usize,
    /// The announced length, once the prefix is in.
    len: Option<usize>,
    body: Vec<u8>,
    charged: Option<Charge>,
    started: Option<tokio::time::Instant>,
}

enum Step {
    More,
    Frame(Vec<u8>),
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.release();
    }
}

impl FrameReader {
    /// Frames of at most `max` bytes, no budget, no deadline.
    pub fn new(max: usize) -> Self {
        FrameReader {
            max,
            budget: None,
            whole_within: None,
            len_buf: [0; LEN_BYTES],
            len_got: 0,
            len: None,
            body: Vec::new(),
            charged: None,
            started: None,
        }
    }

    /// Charges partial frames to `budget`.
    pub fn with_budget(mut self, budget: FrameBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Each frame must be whole within `limit` of its first byte.
    pub fn whole_within(mut self, limit: Duration) -> Self {
        self.whole_within = Some(limit);
        self
    }

    /// Whether a frame has begun and is not yet whole.
    pub fn in_frame(&self) -> bool {
        self.started.is_some()
    }

    /// The next frame's body. See the type's documentation.
    pub async fn read_bytes<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> Result<Vec<u8>, FrameError> {
        loop {
            let deadline = self.started.zip(self.whole_within).map(|(s, w)| s + w);
            let step = match deadline {
                None => self.step(r).await,
                Some(at) => match tokio::time::timeout_at(at, self.step(r)).await {
                    Ok(step) => step,
                    Err(_) => {
                        let err = FrameError::TimedOut {
                            within_ms: self.whole_within.map_or(0, |w| w.as_millis() as u64),
                            expected: self.len.map_or(LEN_BYTES, |l| l + LEN_BYTES) as u64,
                            got: (self.len_got + self.body.len()) as u64,
                        };
                        self.reset();
                        return Err(err);
                    }
                },
            };
            match step {
                Ok(Step::More) => {}
                Ok(Step::Frame(body)) => return Ok(body),
                Err(e) => {
                    self.reset();
                    return Err(e);
                }
            }
        }
    }

    fn reset(&mut self) {
        self.len_got = 0;
        self.len = None;
        self.body = Vec::new();
        self.release();
        self.started = None;
    }

    fn release(&mut self) {
        if let (Some(charge), Some(budget)) = (self.charged.take(), &self.budget) {
            budget
                .stats
                .held_bytes
                .fetch_sub(charge.bytes() as u64, Ordering::Relaxed);
        }
    }

    /// One read. Its state changes happen only after an await completed, with no await
    /// between them, so a dropped future leaves the reader consistent.
    async fn step<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Step, FrameError> {
        let Some(len) = self.len else {
            let n = r.read(&mut self.len_buf[self.len_got..]).await?;
            if n == 0 {
                return Err(if self.len_got == 0 {
                    FrameError::Closed
                } else {
                    FrameError::Truncated {
                        expected: LEN_BYTES as u64,
                        got: self.len_got as u64,
                    }
                });
            }
            if self.started.is_none() {
                self.started = Some(tokio::time::Instant::now());
            }
            self.len_got += n;
            if self.len_got < LEN_BYTES {
                return Ok(Step::More);
            }
            let len = u32::from_le_bytes(self.len_buf) as usize;
            if len > self.max {
                return Err(FrameError::TooLarge {
                    len: len as u64,
                    max: self.max as u64,
                });
            }
            self.len = Some(len);
            return Ok(self.finish_if_whole(len));
        };
        let want = (len - self.body.len()).min(FRAME_READ_STEP_BYTES);
        let spare = self.body.capacity() - self.body.len();
        if spare < want {
            // `reserve_exact(want)` grows the buffer to `len + want`: by `want - spare`, which
            // is what is charged (not `want`: a read that filled part of the last step leaves
            // spare room, and charging the whole step again would count bytes never
            // allocated, until a frame arriving in small reads waited on its own charges).
            // Charged before the buffer grows, and kept with it: the budget counts what is
            // allocated. A future dropped while waiting for budget holds nothing.
            let grow = want - spare;
            if let Some(budget) = &self.budget {
                let charge = budget.charge(grow).await;
                budget
                    .stats
                    .held_bytes
                    .fetch_add(grow as u64, Ordering::Relaxed);
                match &mut self.charged {
                    Some(held) => held.merge(charge),
                    None => self.charged = Some(charge),
                }
            }
            self.body.reserve_exact(want);
            debug_assert!(
                self.charged
                    .as_ref()
                    .is_none_or(|c| c.bytes() >= self.body.capacity()),
                "a frame buffer grew past its charge"
            );
        }
        // `read_buf` fills spare capacity and only then moves the length: cancel-safe.
        let n = (&mut *r).take(want as u64).read_buf(&mut self.body).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                expected: len as u64,
                got: self.body.len() as u64,
            });
        }
        Ok(self.finish_if_whole(len))
    }

    fn finish_if_whole(&mut self, len: usize) -> Step {
        debug_assert!(self.body.len() <= len, "read past the frame's end");
        if self.body.len() < len {
            return Step::More;
        }
        let body = std::mem::take(&mut self.body);
        self.reset();
        Step::Frame(body)
    }
}

/// Fills `buf` unless the stream ends first; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Sends `bytes` as a payload: header, then chunks.
pub async fn send_payload<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), FrameError> {
    let header = PayloadHeader {
        total_len: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
    };
    write_frame(w, &header).await?;
    for chunk in bytes.chunks(PAYLOAD_CHUNK_BYTES) {
        write_frame_bytes(w, chunk).await?;
    }
    Ok(())
}

/// Sends `total_len` bytes read from `src` (a file, say) as a payload whose SHA-256 the
/// caller already knows (a proving key's id is its hash). If `src` ends early the payload is
/// cut short and the receiver sees [`FrameError::Truncated`].
pub async fn send_payload_from<W, S>(
    w: &mut W,
    src: &mut S,
    total_len: u64,
    sha256: [u8; 32],
) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    S: AsyncRead + Unpin,
{
    write_frame(w, &PayloadHeader { total_len, sha256 }).await?;
    let mut buf = vec![0u8; PAYLOAD_CHUNK_BYTES];
    let mut sent = 0u64;
    while sent < total_len {
        let want = (total_len - sent).min(PAYLOAD_CHUNK_BYTES as u64) as usize;
        let got = read_full(src, &mut buf[..want]).await?;
        if got == 0 {
            return Err(FrameError::Truncated {
                expected: total_len,
                got: sent,
            });
        }
        write_frame_bytes(w, &buf[..got]).await?;
        sent += got as u64;
    }
    Ok(())
}

/// Receives a payload into memory, refusing a total above `max_total` before reading it.
pub async fn recv_payload<R: AsyncRead + Unpin>(
    r: &mut R,
    max_total: u64,
) -> Result<Vec<u8>, FrameError> {
    let header: PayloadHeader = read_frame(r).await?;
    check_total(&header, max_total)?;
    let mut out = Vec::with_capacity(header.total_len.min(PAYLOAD_INITIAL_RESERVE_BYTES) as usize);
    let mut buf = Vec::with_capacity(PAYLOAD_CHUNK_BYTES.min(header.total_len as usize));
    while (out.len() as u64) < header.total_len {
        read_chunk_into(
            r,
            &mut buf,
            header.total_len - out.len() as u64,
            &header,
            out.len() as u64,
        )
        .await?;
        out.extend_from_slice(&buf);
    }
    check_hash(&header, Sha256::digest(&out).into())?;
    Ok(out)
}

/// Receives a payload into `sink` (e.g. a temporary file), refusing a total above
/// `max_total`. The hash is checked only at the end: write to a temporary path and move it
/// into place only when this returns `Ok`.
pub async fn recv_payload_to<R, S>(
    r: &mut R,
    sink: &mut S,
    max_total: u64,
) -> Result<PayloadHeader, FrameError>
where
    R: AsyncRead + Unpin,
    S: AsyncWrite + Unpin,
{
    let header = read_payload_header(r, max_total).await?;
    recv_payload_body_to(r, &header, sink, None).await?;
    Ok(header)
}

/// Reads a payload's header and refuses a total above `max_total` before any chunk is read:
/// a receiver that reserves room (a quota, a disk) for the payload does it between this and
/// [`recv_payload_body_to`].
pub async fn read_payload_header<R: AsyncRead + Unpin>(
    r: &mut R,
    max_total: u64,
) -> Result<PayloadHeader, FrameError> {
    let header: PayloadHeader = read_frame(r).await?;
    check_total(&header, max_total)?;
    Ok(header)
}

/// Receives the chunks of a payload whose `header` was read, into `sink`, one reused
/// chunk-sized buffer at a time, and checks the hash at the end. With `chunk_within`, each
/// chunk must arrive whole within that time (a sender trickling bytes is cut off).
pub async fn recv_payload_body_to<R, S>(
    r: &mut R,
    header: &PayloadHeader,
    sink: &mut S,
    chunk_within: Option<Duration>,
) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin,
    S: AsyncWrite + Unpin,
{
    // Chunks are read into one reused buffer and written out before the next is read.
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut buf = Vec::with_capacity(PAYLOAD_CHUNK_BYTES.min(header.total_len as usize));
    while received < header.total_len {
        let remaining = header.total_len - received;
        let chunk = read_chunk_into(r, &mut buf, remaining, header, received);
        match chunk_within {
            None => chunk.await?,
            Some(limit) => match tokio::time::timeout(limit, chunk).await {
                Ok(done) => done?,
                Err(_) => {
                    return Err(FrameError::TimedOut {
                        within_ms: limit.as_millis() as u64,
                        expected: header.total_len,
                        got: received,
                    })
                }
            },
        }
        hasher.update(&buf);
        sink.write_all(&buf).await?;
        received += buf.len() as u64;
    }
    sink.flush().await?;
    check_hash(header, hasher.finalize().into())
}

fn check_total(header: &PayloadHeader, max_total: u64) -> Result<(), FrameError> {
    if header.total_len > max_total {
        return Err(FrameError::PayloadTooLarge {
            total_len: header.total_len,
            max: max_total,
        });
    }
    Ok(())
}

/// Reads one chunk frame into `buf`; its length must be 1..=min(chunk size, remaining).
async fn read_chunk_into<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    remaining: u64,
    header: &PayloadHeader,
    received: u64,
) -> Result<(), FrameError> {
    let mut len_buf = [0u8; LEN_BYTES];
    let got = read_full(r, &mut len_buf).await?;
    if got < LEN_BYTES {
        return Err(FrameError::Truncated {
            expected: header.total_len,
            got: received,
        });
    }
    let len = u32::from_le_bytes(len_buf) as u64;
    let allowed = remaining.min(PAYLOAD_CHUNK_BYTES as u64);
    if len == 0 || len > allowed {
        return Err(FrameError::Malformed(format!(
            "payload chunk of {len} bytes; chunks must be 1 to {allowed} bytes ({remaining} of {} left)",
            header.total_len
        )));
    }
    buf.clear();
    buf.resize(len as usize, 0);
    let got = read_full(r, buf).await?;
    if (got as u64) < len {
        return Err(FrameError::Truncated {
            expected: header.total_len,
            got: received + got as u64,
        });
    }
    Ok(())
}

fn check_hash(header: &PayloadHeader, actual: [u8; 32]) -> Result<(), FrameError> {
    if actual != header.sha256 {
        return Err(FrameError::HashMismatch {
            expected: hex::encode(header.sha256),
            actual: hex::encode(actual),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::duplex;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        a: u64,
        b: String,
        c: Vec<u8>,
    }

    #[test]
    fn frames_round_trip_and_clean_close_is_closed() {
        rt().block_on(async {
            let (mut a, mut b) = duplex(1 << 16);
            let m = Msg {
                a: 7,
                b: "x".into(),
                c: vec![1, 2, 3],
            };
            write_frame(&mut a, &m).await.unwrap();
            drop(a);
            assert_eq!(read_frame::<_, Msg>(&mut b).await.unwrap(), m);
            assert!(matches!(
                read_frame::<_, Msg>(&mut b).await,
                Err(FrameError::Closed)
            ));
        });
    }

    /// A reader that fails the test if more than `allowed` bytes are ever requested, proving
    /// an oversized length is refused before the body is allocated or read.
    struct StingyReader {
        data: Vec<u8>,
        pos: usize,
    }
    impl AsyncRead for StingyReader {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            assert!(
                buf.remaining() <= LEN_BYTES,
                "asked for a body of {} bytes",
                buf.remaining()
            );
            let n = (self.data.len() - self.pos).min(buf.remaining());
            let pos = self.pos;
            buf.put_slice(&self.data[pos..pos + n]);
            self.pos += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        rt().block_on(async {
            let mut r = StingyReader {
                data: u32::MAX.to_le_bytes().to_vec(),
                pos: 0,
            };
            match read_frame::<_, Msg>(&mut r).await {
                Err(FrameError::TooLarge { len, max }) => {
                    assert_eq!(len, u32::MAX as u64);
                    assert_eq!(max, MAX_FRAME_BYTES as u64);
                }
                other => panic!("expected TooLarge, got {other:?}"),
            }
        });
    }

    #[test]
    fn oversized_message_is_refused_on_write() {
        rt().block_on(async {
            let (mut a, _b) = duplex(64);
            let m = Msg {
                a: 0,
                b: String::new(),
                c: vec![0; MAX_FRAME_BYTES + 1],
            };
            assert!(matches!(
                write_frame(&mut a, &m).await,
                Err(FrameError::TooLarge { .. })
            ));
        });
    }

    #[test]
    fn malformed_and_trailing_and_truncated_bodies() {
        rt().block_on(async {
            // A string field with invalid UTF-8.
            let (mut a, mut b) = duplex(1 << 12);
            write_frame_bytes(&mut a, &[1, 1, 0xff, 0]).await.unwrap();
            let err = read_frame::<_, Msg>(&mut b).await.unwrap_err();
            assert!(matches!(err, FrameError::Malformed(_)), "{err}");
            assert!(err.to_string().contains("Msg"), "{err}");

            let mut body = postcard::to_stdvec(&Msg {
                a: 1,
                b: "b".into(),
                c: vec![],
            })
            .unwrap();
            body.push(9);
            write_frame_bytes(&mut a, &body).await.unwrap();
            let err = read_frame::<_, Msg>(&mut b).await.unwrap_err();
            assert!(err.to_string().contains("1 trailing bytes"), "{err}");

            a.write_all(&100u32.to_le_bytes()).await.unwrap();
            a.write_all(&[0; 10]).await.unwrap();
            drop(a);
            assert!(matches!(
                read_frame::<_, Msg>(&mut b).await,
                Err(FrameError::Truncated {
                    expected: 100,
                    got: 10
                })
            ));
        });
    }

    /// A reader that hands out `data` in pieces of `piece` bytes, then pends forever (a peer
    /// that stopped sending): what a half-sent frame looks like.
    struct Pieces {
        data: Vec<u8>,
        pos: usize,
        piece: usize,
    }
    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.pos == self.data.len() {
                return std::task::Poll::Pending;
            }
            let n = (self.data.len() - self.pos)
                .min(buf.remaining())
                .min(self.piece);
            let pos = self.pos;
            buf.put_slice(&self.data[pos..pos + n]);
            self.pos += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_frame_buffer_grows_with_the_bytes_not_the_announced_length() {
        rt().block_on(async {
            // 1 MiB announced, 10 bytes sent: the reader holds a few bytes, not 1 MiB.
            let mut data = (MAX_FRAME_BYTES as u32).to_le_bytes().to_vec();
            data.extend_from_slice(&[7; 10]);
            let mut r = Pieces {
                data,
                pos: 0,
                piece: 3,
            };
            let mut reader = FrameReader::new(MAX_FRAME_BYTES);
            let pending =
                tokio::time::timeout(Duration::from_millis(50), reader.read_bytes(&mut r)).await;
            assert!(pending.is_err(), "the frame is not whole");
            assert!(reader.in_frame());
            assert_eq!(reader.body.len(), 10);
            assert!(
                reader.body.capacity() <= 10 + FRAME_READ_STEP_BYTES,
                "capacity {} for 10 bytes",
                reader.body.capacity()
            );
        });
    }

    #[test]
    fn reads_are_cancel_safe_and_split_frames_reassemble() {
        rt().block_on(async {
            let (mut a, mut b) = duplex(1 << 20);
            let msgs: Vec<Msg> = (0..20)
                .map(|i| Msg {
                    a: i,
                    b: "x".repeat(i as usize * 1000),
                    c: vec![i as u8; (i as usize * 7919) % 200_000],
                })
                .collect();
            let mut bytes = Vec::new();
            for m in &msgs {
                encode_frame_into(&mut bytes, m).unwrap();
            }
            let writer = tokio::spawn(async move {
                // Dribbled in odd-sized writes so frames straddle reads.
                for piece in bytes.chunks(4093) {
                    a.write_all(piece).await.unwrap();
                    tokio::task::yield_now().await;
                }
            });
            let mut reader = FrameReader::new(MAX_FRAME_BYTES);
            let mut got = Vec::new();
            while got.len() < msgs.len() {
                // A competing branch that often wins: the read is dropped mid-frame and
                // resumed; nothing may be lost.
                tokio::select! {
                    body = reader.read_bytes(&mut b) => got.push(decode::<Msg>(&body.unwrap()).unwrap()),
                    _ = tokio::task::yield_now() => {}
                }
            }
            assert_eq!(got, msgs);
            writer.await.unwrap();
        });
    }

    #[test]
    fn a_budget_bounds_partial_frames_and_is_given_back() {
        rt().block_on(async {
            let stats = Arc::new(BudgetStats::default());
            let total = FrameBudget::total(4 << 20);
            let budget = FrameBudget::new(MAX_FRAME_BYTES + 4, &total, &stats);
            // Two streams each send half of a 1 MiB frame: together they hold 1 MiB, so the
            // second has to wait for budget once the first holds its half.
            let half = MAX_FRAME_BYTES / 2 + FRAME_READ_STEP_BYTES;
            let frame = |fill: u8| {
                let mut d = (MAX_FRAME_BYTES as u32).to_le_bytes().to_vec();
                d.extend(std::iter::repeat_n(fill, half));
                d
            };
            let mut r1 = Pieces {
                data: frame(1),
                pos: 0,
                piece: 1 << 20,
            };
            let mut r2 = Pieces {
                data: frame(2),
                pos: 0,
                piece: 1 << 20,
            };
            let mut f1 = FrameReader::new(MAX_FRAME_BYTES).with_budget(budget.clone());
            let mut f2 = FrameReader::new(MAX_FRAME_BYTES).with_budget(budget.clone());
            let wait = Duration::from_millis(50);
            assert!(tokio::time::timeout(wait, f1.read_bytes(&mut r1))
                .await
                .is_err());
            assert!(tokio::time::timeout(wait, f2.read_bytes(&mut r2))
                .await
                .is_err());
            let held = stats.held_bytes() as usize;
            assert!(held <= MAX_FRAME_BYTES + 4, "held {held} over the budget");
            assert!(held >= half, "the first frame's half is held");
            let allocated = f1.body.capacity() + f2.body.capacity();
            assert_eq!(
                allocated, held,
                "the budget counts what the buffers allocated"
            );
            assert!(stats.waits() >= 1, "the second reader waited");
            drop(f1);
            drop(f2);
            assert_eq!(
                stats.held_bytes(),
                0,
                "dropped readers give their bytes back"
            );
            assert_eq!(total.available_permits(), 4 << 20);
        });
    }

    /// A whole frame arriving in packet-sized reads fits a budget of exactly one frame: each
    /// read charges what the buffer grew by, not a whole read step again.
    #[test]
    fn a_frame_in_small_reads_completes_within_a_one_frame_budget() {
        rt().block_on(async {
            let stats = Arc::new(BudgetStats::default());
            let total = FrameBudget::total(MAX_FRAME_BYTES + 4);
            let budget = FrameBudget::new(MAX_FRAME_BYTES + 4, &total, &stats);
            let body = payload(MAX_FRAME_BYTES);
            let mut data = (MAX_FRAME_BYTES as u32).to_le_bytes().to_vec();
            data.extend_from_slice(&body);
            // About one QUIC packet's payload per read.
            let mut r = Pieces {
                data,
                pos: 0,
                piece: 1_200,
            };
            let mut reader = FrameReader::new(MAX_FRAME_BYTES).with_budget(budget);
            let got = tokio::time::timeout(Duration::from_secs(10), reader.read_bytes(&mut r))
                .await
                .expect("the frame completes within its budget");
            assert_eq!(got.unwrap(), body);
            assert_eq!(stats.waits(), 0, "never waited on its own charges");
            assert_eq!(stats.held_bytes(), 0, "a whole frame holds no budget");
            assert_eq!(total.available_permits(), MAX_FRAME_BYTES + 4);
        });
    }

    #[test]
    fn a_frame_that_does_not_arrive_whole_in_time_is_cut_off() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(async {
                let (mut a, mut b) = duplex(1 << 16);
                let mut reader = FrameReader::new(MAX_FRAME_BYTES).whole_within(Duration::from_secs(10));
                // Idle before the first byte is fine: no deadline runs yet.
                let idle = tokio::time::timeout(Duration::from_secs(60), reader.read_bytes(&mut b)).await;
                assert!(idle.is_err());
                assert!(!reader.in_frame());
                // A byte a second: cut off 10 s after the first.
                let trickle = tokio::spawn(async move {
                    a.write_all(&100u32.to_le_bytes()).await.unwrap();
                    for _ in 0..100 {
                        a.write_all(&[1]).await.unwrap();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
                let err = reader.read_bytes(&mut b).await.unwrap_err();
                assert!(
                    matches!(err, FrameError::TimedOut { within_ms: 10_000, expected: 104, got } if (10..=15).contains(&got)),
                    "{err}"
                );
                assert!(err.to_string().contains("not trickle"), "{err}");
                trickle.abort();
            });
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn payload_round_trips_in_memory_and_to_a_sink() {
        rt().block_on(async {
            for len in [0, 1, PAYLOAD_CHUNK_BYTES, PAYLOAD_CHUNK_BYTES * 2 + 17] {
                let data = payload(len);
                let (mut a, mut b) = duplex(1 << 20);
                let sender = {
                    let data = data.clone();
                    tokio::spawn(async move {
                        send_payload(&mut a, &data).await.unwrap();
                        send_payload(&mut a, &data).await.unwrap();
                    })
                };
                assert_eq!(recv_payload(&mut b, len as u64).await.unwrap(), data);
                let mut sink = Vec::new();
                let h = recv_payload_to(&mut b, &mut sink, len as u64)
                    .await
                    .unwrap();
                assert_eq!(sink, data);
                assert_eq!(h.total_len, len as u64);
                sender.await.unwrap();
            }
        });
    }

    #[test]
    fn payload_from_reader_with_known_hash() {
        rt().block_on(async {
            let data = payload(PAYLOAD_CHUNK_BYTES + 5);
            let hash: [u8; 32] = Sha256::digest(&data).into();
            let (mut a, mut b) = duplex(1 << 20);
            let d = data.clone();
            let sender = tokio::spawn(async move {
                send_payload_from(&mut a, &mut d.as_slice(), d.len() as u64, hash)
                    .await
                    .unwrap();
            });
            assert_eq!(recv_payload(&mut b, u64::MAX).await.unwrap(), data);
            sender.await.unwrap();

            // A source shorter than announced: sender errors, receiver sees truncation.
            let (mut a, mut b) = duplex(1 << 20);
            let short = payload(10);
            let err = send_payload_from(&mut a, &mut short.as_slice(), 20, hash)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    FrameError::Truncated {
                        expected: 20,
                        got: 10
                    }
                ),
                "{err}"
            );
            drop(a);
            assert!(matches!(
                recv_payload(&mut b, 100).await,
                Err(FrameError::Truncated {
                    expected: 20,
                    got: 10
                })
            ));
        });
    }

    #[test]
    fn payload_over_max_is_refused_from_the_header() {
        rt().block_on(async {
            let (mut a, mut b) = duplex(1 << 12);
            write_frame(&mut a, &PayloadHeader { total_len: 1 << 40, sha256: [0; 32] }).await.unwrap();
            let err = recv_payload(&mut b, 1 << 20).await.unwrap_err();
            assert!(matches!(err, FrameError::PayloadTooLarge { total_len, max } if total_len == 1 << 40 && max == 1 << 20));
        });
    }

    #[test]
    fn payload_hash_mismatch_and_bad_chunks() {
        rt().block_on(async {
            let (mut a, mut b) = duplex(1 << 16);
            write_frame(
                &mut a,
                &PayloadHeader {
                    total_len: 3,
                    sha256: [7; 32],
                },
            )
            .await
            .unwrap();
            write_frame_bytes(&mut a, b"abc").await.unwrap();
            let err = recv_payload(&mut b, 10).await.unwrap_err();
            assert!(matches!(err, FrameError::HashMismatch { .. }), "{err}");

            // A chunk longer than what is left is refused before reading it.
            write_frame(
                &mut a,
                &PayloadHeader {
                    total_len: 3,
                    sha256: [7; 32],
                },
            )
            .await
            .unwrap();
            write_frame_bytes(&mut a, b"abcd").await.unwrap();
            let err = recv_payload(&mut b, 10).await.unwrap_err();
            assert!(
                err.to_string().contains("chunks must be 1 to 3 bytes"),
                "{err}"
            );

            // An empty chunk would loop forever; it is malformed.
            let (mut a, mut b) = duplex(1 << 16);
            write_frame(
                &mut a,
                &PayloadHeader {
                    total_len: 3,
                    sha256: [7; 32],
                },
            )
            .await
            .unwrap();
            write_frame_bytes(&mut a, b"").await.unwrap();
            assert!(matches!(
                recv_payload(&mut b, 10).await,
                Err(FrameError::Malformed(_))
            ));
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_f4a3), ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_payloads_round_trip(len in 0usize..(3 * PAYLOAD_CHUNK_BYTES), seed in any::<u8>()) {
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
            let got = rt().block_on(async {
                let (mut a, mut b) = duplex(1 << 20);
                let d = data.clone();
                let s = tokio::spawn(async move { send_payload(&mut a, &d).await.unwrap() });
                let got = recv_payload(&mut b, len as u64).await.unwrap();
                s.await.unwrap();
                got
            });
            prop_assert_eq!(got, data);
        }

        #[test]
        fn random_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            rt().block_on(async {
                let mut r = bytes.as_slice();
                let _ = read_frame::<_, Msg>(&mut r).await;
                let mut r = bytes.as_slice();
                let _ = recv_payload(&mut r, 1 << 20).await;
            });
        }
    }
}
