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

/// A 1 MiB frame arriving in packet-sized reads through a budget of one frame: the reader
/// charged a whole 64 KiB read step per read instead of what its buffer grew by, so it
/// waited on its own charges until the request deadline cut an honest peer off (found in
/// review; `frames::whole_frames_fit_a_one_frame_budget_however_split` covers it since).
#[test]
fn a_frame_in_small_reads_is_not_charged_per_read() {
    use proofrack_common::framing::{BudgetStats, FrameBudget};
    use std::sync::Arc;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let body: Vec<u8> = (0..MAX_FRAME_BYTES).map(|i| i as u8).collect();
            let mut data = (MAX_FRAME_BYTES as u32).to_le_bytes().to_vec();
            data.extend_from_slice(&body);
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            let writer = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                for piece in data.chunks(1_200) {
                    a.write_all(piece).await.expect("write");
                }
            });
            let stats = Arc::new(BudgetStats::default());
            let total = FrameBudget::total(MAX_FRAME_BYTES + 4);
            let mut reader = FrameReader::new(MAX_FRAME_BYTES).with_budget(FrameBudget::new(
                MAX_FRAME_BYTES + 4,
                &total,
                &stats,
            ));
            let got = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                reader.read_bytes(&mut b),
            )
            .await
            .expect("the frame is read within its budget")
            .expect("a valid frame");
            assert_eq!(got, body);
            assert_eq!(stats.waits(), 0);
            writer.await.expect("writer");
        });
}
