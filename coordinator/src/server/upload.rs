//! Receiving an upload (a zkey, a `.r1cs`, a witness) from a client: never held in memory
//! while it arrives. Its header is read first and checked against the limits (size for its
//! kind, `max_concurrent_uploads`, `upload_bytes_in_flight`) before any payload byte is
//! read; then its chunks go one 256 KiB buffer at a time to a temporary file under
//! `<circom dir>/uploads/`, each chunk within `request_timeout_ms`, and its SHA-256 is checked
//! against the header at the end. The file is removed when the handler is done with it (or
//! at the next start, after a crash).
//!
//! Whoever may upload is decided before the handler is called; the handler reads the first
//! payload byte here, so a refusal before it reads nothing.

use super::limits::{Limit, UploadPermit};
use super::shared::Shared;
use proofrack_common::framing::{read_payload_header, recv_payload_body_to, FrameError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;

/// The directory under the circom directory where uploads are received.
pub const UPLOADS_DIR: &str = "uploads";
/// Buffered bytes between the stream and the temporary file.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// A received, hash-checked upload in a temporary file, removed when dropped.
pub(super) struct Received {
    pub path: PathBuf,
    pub len: u64,
}

impl Drop for Received {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove an upload's temporary file");
            }
        }
    }
}

impl Received {
    /// The whole file, once its layout was checked (CPU and disk: off the async threads).
    pub fn read(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.path).map_err(|e| format!("reading back {}: {e}", self.path.display()))
    }
}

pub(super) fn uploads_dir(shared: &Shared) -> PathBuf {
    shared.registry().circom_dir().join(UPLOADS_DIR)
}

/// Receives one payload into a temporary file. The first file of a request starts the
/// upload (`permit` is `None`); a later one is added to it.
pub(super) async fn receive(
    shared: &Shared,
    recv: &mut quinn::RecvStream,
    what: &str,
    max_len: u64,
    permit: &mut Option<UploadPermit>,
) -> Result<Received, String> {
    let timeout = shared.limits().settings().request_timeout();
    let timed_out = |what: &str| {
        shared.limits().hit(Limit::RequestTimeout, what);
        format!(
            "{what} did not arrive in time: each part must arrive whole within {} ms (limits.request_timeout_ms)",
            timeout.as_millis()
        )
    };
    let header = match tokio::time::timeout(timeout, read_payload_header(recv, u64::MAX)).await {
        Err(_) => return Err(timed_out(what)),
        Ok(Err(e)) => return Err(format!("receiving {what}: {e}")),
        Ok(Ok(h)) => h,
    };
    match permit {
        None => {
            *permit = Some(
                shared
                    .limits()
                    .begin_upload(what, header.total_len, max_len)?,
            )
        }
        Some(p) => p.add(shared.limits(), what, header.total_len, max_len)?,
    }
    let dir = uploads_dir(shared);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        format!(
            "the coordinator cannot receive uploads ({}: {e}); retry later",
            dir.display()
        )
    })?;
    let path = dir.join(temp_name());
    let file = tokio::fs::File::create(&path).await.map_err(|e| {
        format!(
            "the coordinator cannot receive uploads ({}: {e}); retry later",
            path.display()
        )
    })?;
    let received = Received {
        path,
        len: header.total_len,
    };
    let mut sink = tokio::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
    match recv_payload_body_to(recv, &header, &mut sink, Some(timeout)).await {
        Ok(()) => {}
        Err(FrameError::TimedOut { .. }) => return Err(timed_out(what)),
        Err(e) => return Err(format!("receiving {what}: {e}")),
    }
    sink.shutdown()
        .await
        .map_err(|e| format!("the coordinator cannot store {what} ({e}); retry later"))?;
    Ok(received)
}

fn temp_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}.part",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// At start: removes uploads a crash left half received.
pub(super) fn sweep(circom_dir: &Path) {
    let dir = circom_dir.join(UPLOADS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let removed = entries
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count();
    if removed > 0 {
        tracing::info!(removed, dir = %dir.display(), "removed uploads left by an earlier run");
    }
}
