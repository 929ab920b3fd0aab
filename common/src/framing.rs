//! Frames on a byte stream: a u32 little-endian length, then that many bytes of body
//! (postcard for messages, raw bytes for payload chunks). Works over any tokio
//! `AsyncRead`/`AsyncWrite`; quinn's `RecvStream`/`SendStream` implement both.
//!
//! Large payloads (proving keys up to GiBs, proofs, inputs) never travel as one frame: they
//! go as a [`PayloadHeader`] frame then raw chunk frames of at most [`PAYLOAD_CHUNK_BYTES`],
//! bounded in total by a maximum the receiver chooses and checked against the header's
//! SHA-256 at the end.
//!
//! Architecture invariant: no length read from the wire is allocated before it is checked
//! against a limit.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame body. Every control message (offers with their bounded inputs, telemetry,
/// status views, tables) fits well under this; anything bigger is a payload and is chunked.
/// 1 MiB keeps the memory a malicious or broken peer can make us allocate per stream small.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Size of one payload chunk: large enough that the 4-byte header and per-frame overhead
/// vanish (~0.002 %), small enough to keep per-stream buffers modest and let flow control
/// interleave several streams on one connection.
pub const PAYLOAD_CHUNK_BYTES: usize = 256 << 10;

/// Length prefix size.
const LEN_BYTES: usize = 4;

/// Initial buffer reserved for an in-memory payload, so a header claiming a huge total does
/// not allocate it all before the bytes arrive.
const PAYLOAD_INITIAL_RESERVE_BYTES: u64 = 16 << 20;

const _: () = assert!(PAYLOAD_CHUNK_BYTES <= MAX_FRAME_BYTES);
const _: () = assert!(MAX_FRAME_BYTES <= u32::MAX as usize);

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit; large data must be sent as a chunked payload")]
    TooLarge { len: u64, max: u64 },
    #[error("malformed frame: {0}; the peer may run an incompatible build")]
    Malformed(String),
    #[error("message out of protocol bounds: {0}")]
    OutOfBounds(String),
    #[error("the peer closed the stream")]
    Closed,
    #[error("the stream ended inside a frame: expected {expected} bytes, got {got}; the peer or the connection went away")]
    Truncated { expected: u64, got: u64 },
    #[error("payload of {total_len} bytes exceeds the {max}-byte limit the receiver accepts")]
    PayloadTooLarge { total_len: u64, max: u64 },
    #[error("payload is corrupt: SHA-256 {actual} does not match the announced {expected}; fetch it again")]
    HashMismatch { expected: String, actual: String },
    #[error("stream I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

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

/// Appends `msg` to `buf` as one frame (several frames in one buffer go out in one write).
/// On error `buf` is left as it was.
pub fn encode_frame_into<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    msg: &T,
) -> Result<(), FrameError> {
    let start = buf.len();
    // Reserve the length prefix in the same buffer so the frame goes out in one write.
    buf.extend_from_slice(&[0u8; LEN_BYTES]);
    let encoded = postcard::to_extend(msg, std::mem::take(buf));
    let mut out = match encoded {
        Ok(out) => out,
        Err(e) => return Err(FrameError::Malformed(format!("cannot encode message: {e}"))),
    };
    let len = out.len() - start - LEN_BYTES;
    if let Err(e) = check_len(len as u64) {
        out.truncate(start);
        *buf = out;
        return Err(e);
    }
    out[start..start + LEN_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    *buf = out;
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

/// Decodes one frame body.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes::<T>(body).map_err(|e| {
        FrameError::Malformed(format!(
            "cannot decode {} ({} bytes): {e}",
            short_type_name::<T>(),
            body.len()
        ))
    })?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after a {}",
            rest.len(),
            short_type_name::<T>()
        )));
    }
    Ok(msg)
}

/// Reads one raw frame of at most `max` bytes. The length is checked before allocating.
/// A stream that ends cleanly before the first length byte gives [`FrameError::Closed`].
pub async fn read_frame_bytes<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut len_buf = [0u8; LEN_BYTES];
    let got = read_full(r, &mut len_buf).await?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < LEN_BYTES {
        return Err(FrameError::Truncated {
            expected: LEN_BYTES as u64,
            got: got as u64,
        });
    }
    let len = u32::from_le_bytes(len_buf) as usize;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max: max as u64,
        });
    }
    let mut body = vec![0u8; len];
    let got = read_full(r, &mut body).await?;
    if got < len {
        return Err(FrameError::Truncated {
            expected: len as u64,
            got: got as u64,
        });
    }
    Ok(body)
}

fn check_len(len: u64) -> Result<(), FrameError> {
    if len > MAX_FRAME_BYTES as u64 {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES as u64,
        });
    }
    Ok(())
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

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// The first frame of a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadHeader {
    pub total_len: u64,
    pub sha256: [u8; 32],
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
    let header: PayloadHeader = read_frame(r).await?;
    check_total(&header, max_total)?;
    // Chunks are read into one reused buffer and written out before the next is read.
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut buf = Vec::with_capacity(PAYLOAD_CHUNK_BYTES);
    while received < header.total_len {
        let remaining = header.total_len - received;
        read_chunk_into(r, &mut buf, remaining, &header, received).await?;
        hasher.update(&buf);
        sink.write_all(&buf).await?;
        received += buf.len() as u64;
    }
    sink.flush().await?;
    check_hash(&header, hasher.finalize().into())?;
    Ok(header)
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
