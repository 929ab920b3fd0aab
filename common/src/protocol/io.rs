//! Messages over tokio streams (feature `net`): writing and reading bounded messages and a
//! stream's first frame. Encoding and decoding without I/O are in the parent module.

use super::*;
use crate::framing::FrameError;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

/// Writes a message after checking its bounds (an out-of-bounds message is refused here
/// rather than by the peer).
pub async fn write_message<W, T>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize + Bounded,
{
    msg.check_bounds().map_err(FrameError::OutOfBounds)?;
    framing::write_frame(w, msg).await
}

/// Reads a message and checks its bounds.
pub async fn read_message<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned + Bounded,
{
    let msg: T = framing::read_frame(r).await?;
    msg.check_bounds().map_err(FrameError::OutOfBounds)?;
    Ok(msg)
}

/// [`read_message`] through a [`framing::FrameReader`] (its budget and deadline); cancel-safe.
pub async fn read_message_with<R, T>(
    reader: &mut framing::FrameReader,
    r: &mut R,
) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned + Bounded,
{
    let body = reader.read_bytes(r).await?;
    let msg: T = framing::decode(&body)?;
    msg.check_bounds().map_err(FrameError::OutOfBounds)?;
    Ok(msg)
}

/// Opens a stream: writes the [`OpenFrame`] with this build's version.
pub async fn write_stream_open<W: AsyncWrite + Unpin>(
    w: &mut W,
    open: StreamOpen,
) -> Result<(), FrameError> {
    write_message(
        w,
        &OpenFrame {
            protocol_version: PROTOCOL_VERSION,
            open,
        },
    )
    .await
}

/// Why a stream's first frame was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The first frame was refused: the coordinator closes the peer's connection with this
    /// error's text as the reason.
    #[error("{0}")]
    Refused(ProtocolError),
    /// The stream broke or closed; there is nobody to reply to.
    #[error("{0}")]
    Stream(FrameError),
}

/// Reads a stream's first frame (coordinator side). `peer_kind` comes from the peer's
/// certificate and words a version mismatch ("agent speaks 2").
pub async fn read_stream_open<R: AsyncRead + Unpin>(
    r: &mut R,
    peer_kind: IdentityKind,
) -> Result<StreamOpen, OpenError> {
    let mut reader = framing::FrameReader::new(framing::MAX_FRAME_BYTES);
    read_stream_open_with(&mut reader, r, peer_kind).await
}

/// [`read_stream_open`] through a [`framing::FrameReader`] (its budget and deadline). A frame
/// cut off by the deadline is refused with the reason, like an oversized one.
pub async fn read_stream_open_with<R: AsyncRead + Unpin>(
    reader: &mut framing::FrameReader,
    r: &mut R,
    peer_kind: IdentityKind,
) -> Result<StreamOpen, OpenError> {
    let body = reader.read_bytes(r).await.map_err(|e| match e {
        FrameError::TooLarge { .. } | FrameError::TimedOut { .. } => {
            OpenError::Refused(ProtocolError::Malformed {
                detail: e.to_string(),
            })
        }
        e => OpenError::Stream(e),
    })?;
    decode_stream_open(&body, peer_kind).map_err(OpenError::Refused)
}
