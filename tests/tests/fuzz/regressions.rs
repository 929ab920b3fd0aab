//! Inputs the fuzz targets (here or under cargo-fuzz in `fuzz/`) once found failing, kept so
//! they never come back. Each names what broke.

use proofrack_common::framing::{self, FrameReader, MAX_FRAME_BYTES};

/// A length prefix announcing a whole frame, then nothing: the reader used to allocate the
/// announced 1 MiB at once (4 connections × 128 streams of these pinned 512 MiB).
#[test]
fn a_bare_length_prefix_allocates_nothing_ahead() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let bytes = (MAX_FRAME_BYTES as u32).to_le_bytes();
            let mut r = &bytes[..];
            let mut reader = FrameReader::new(MAX_FRAME_BYTES);
            let err = reader.read_bytes(&mut r).await.unwrap_err();
            assert!(
                matches!(err, framing::FrameError::Truncated { got: 0, .. }),
                "{err}"
            );
        });
}
