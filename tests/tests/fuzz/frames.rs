//! Frames and protocol messages: the coordinator's stream opener (every peer's first frame),
//! every message type a peer decodes, the frame reader fed in arbitrary pieces, and payloads.

use super::mutate::{apply, config, mutations};
use proofrack_common::framing::{self, BudgetStats, FrameBudget, FrameReader, MAX_FRAME_BYTES};
use proofrack_common::identity::IdentityKind;
use proofrack_common::protocol::{
    self, AgentToCoordinator, Bounded, ClientRequest, ClientResponse, CoordinatorToAgent,
    DeliveryReply, InputReply, KeyReply, OpenFrame, StreamOpen, SubmitRequest,
};
use proofrack_common::StakeUnits;
use proptest::prelude::*;
use serde::de::DeserializeOwned;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Decodes and bound-checks a body as `T`; must not panic.
fn decode_all<T: DeserializeOwned + Bounded>(body: &[u8]) {
    if let Ok(m) = framing::decode::<T>(body) {
        let _ = m.check_bounds();
    }
}

fn every_message(body: &[u8]) {
    for kind in [
        IdentityKind::Agent,
        IdentityKind::Client,
        IdentityKind::Coordinator,
    ] {
        let _ = protocol::decode_stream_open(body, kind);
    }
    decode_all::<AgentToCoordinator>(body);
    decode_all::<CoordinatorToAgent>(body);
    decode_all::<ClientRequest>(body);
    decode_all::<ClientResponse>(body);
    decode_all::<KeyReply>(body);
    decode_all::<DeliveryReply>(body);
    decode_all::<InputReply>(body);
    let _ = framing::decode::<framing::PayloadHeader>(body);
}

/// Valid first frames to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let submit = StreamOpen::Client(ClientRequest::SubmitBatch(
        (0..3)
            .map(|i| SubmitRequest {
                circuit: "mimc-4".into(),
                inputs: format!(r#"{{"x":"{i}"}}"#).into_bytes(),
                collateral: StakeUnits(5),
                deadline_ms: 60_000,
                request_id: i,
            })
            .collect(),
    ));
    let drain = StreamOpen::Client(ClientRequest::Drain {
        request_id: 9,
        agent: "op-a/gpu-1".parse().expect("agent"),
        drain: true,
    });
    [submit, drain, StreamOpen::Client(ClientRequest::Ledger)]
        .into_iter()
        .map(|open| {
            let mut buf = Vec::new();
            framing::encode_frame_into(
                &mut buf,
                &OpenFrame {
                    protocol_version: protocol::PROTOCOL_VERSION,
                    open,
                },
            )
            .expect("encodes");
            buf[4..].to_vec()
        })
        .collect()
}

proptest! {
    #![proptest_config(config(3_000, 0xf4a3_0001))]

    #[test]
    fn arbitrary_bodies_never_panic_a_decoder(body in prop::collection::vec(any::<u8>(), 0..512)) {
        every_message(&body);
    }

    #[test]
    fn mutated_first_frames_never_panic_a_decoder(seed in 0usize..3, ms in mutations()) {
        let body = apply(&seeds()[seed], &ms);
        every_message(&body);
    }
}

proptest! {
    #![proptest_config(config(400, 0xf4a3_0002))]

    /// The frame reader, fed arbitrary bytes in arbitrary pieces, sees the same frames a
    /// whole read does, never panics, and never allocates ahead of what arrived.
    #[test]
    fn the_frame_reader_agrees_with_itself_however_the_bytes_are_split(
        stream in prop::collection::vec(any::<u8>(), 0..2048),
        pieces in prop::collection::vec(1usize..97, 1..64),
        max in prop_oneof![Just(16usize), Just(256), Just(MAX_FRAME_BYTES)],
    ) {
        let whole = rt().block_on(read_all(&stream, &[stream.len().max(1)], max));
        let split = rt().block_on(read_all(&stream, &pieces, max));
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn payload_readers_never_panic(stream in prop::collection::vec(any::<u8>(), 0..1024)) {
        rt().block_on(async {
            let mut r = stream.as_slice();
            let _ = framing::recv_payload(&mut r, 1 << 20).await;
            let mut r = stream.as_slice();
            let mut sink = Vec::new();
            let _ = framing::recv_payload_to(&mut r, &mut sink, 1 << 20).await;
            assert!(sink.len() <= stream.len(), "wrote more than it read");
        });
    }
}

proptest! {
    #![proptest_config(config(48, 0xf4a3_0003))]

    /// Whole frames of up to 300 KiB (several read steps each), arriving in pieces of any
    /// size, through a reader whose budget holds exactly one frame, as the coordinator reads
    /// a connection's streams: every frame comes through, the reader never waits on its own
    /// charges, and the budget is whole again afterwards. (It fails on a bug found in review: a
    /// buffer charged a whole read step per read instead of what it grew by.)
    #[test]
    fn whole_frames_fit_a_one_frame_budget_however_split(
        sizes in prop::collection::vec(0usize..300_000, 1..4),
        pieces in prop::collection::vec(1usize..5_000, 1..32),
    ) {
        let (got, waits, held) = rt().block_on(read_budgeted(&sizes, &pieces));
        prop_assert_eq!(got, sizes);
        prop_assert_eq!(waits, 0);
        prop_assert_eq!(held, 0);
    }
}

/// Frames of `sizes` written in `pieces` (cycled) and read through a one-frame budget: the
/// sizes read, the times the reader waited for budget, and the bytes still held.
async fn read_budgeted(sizes: &[usize], pieces: &[usize]) -> (Vec<usize>, u64, u64) {
    let mut data = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        data.extend_from_slice(&(*size as u32).to_le_bytes());
        data.extend((0..*size).map(|j| (i + j) as u8));
    }
    let (mut a, mut b) = tokio::io::duplex(1 << 16);
    let pieces = pieces.to_vec();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut at = 0;
        for p in pieces.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + p).min(data.len());
            let _ = a.write_all(&data[at..end]).await;
            at = end;
        }
    });
    let stats = std::sync::Arc::new(BudgetStats::default());
    let total = FrameBudget::total(MAX_FRAME_BYTES + 4);
    let mut reader = FrameReader::new(MAX_FRAME_BYTES).with_budget(FrameBudget::new(
        MAX_FRAME_BYTES + 4,
        &total,
        &stats,
    ));
    let mut got = Vec::new();
    for _ in sizes {
        // A reader stuck on its own charges would wait forever.
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            reader.read_bytes(&mut b),
        )
        .await
        .expect("a whole frame within its budget is read")
        .expect("a valid frame");
        got.push(body.len());
    }
    writer.await.expect("writer");
    (got, stats.waits(), stats.held_bytes())
}

/// Frames read from `stream` delivered in `pieces` (cycled): bodies, then the error's text.
async fn read_all(stream: &[u8], pieces: &[usize], max: usize) -> (Vec<Vec<u8>>, String) {
    let (mut a, mut b) = tokio::io::duplex(1 << 16);
    let data = stream.to_vec();
    let pieces = pieces.to_vec();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut at = 0;
        for p in pieces.iter().cycle() {
            if at >= data.len() {
                break;
            }
            let end = (at + p).min(data.len());
            let _ = a.write_all(&data[at..end]).await;
            at = end;
            tokio::task::yield_now().await;
        }
    });
    let mut reader = FrameReader::new(max);
    let mut frames = Vec::new();
    let err = loop {
        match reader.read_bytes(&mut b).await {
            Ok(body) => {
                assert!(body.len() <= max);
                frames.push(body);
            }
            Err(e) => break e.to_string(),
        }
    };
    writer.await.expect("writer");
    (frames, err)
}
