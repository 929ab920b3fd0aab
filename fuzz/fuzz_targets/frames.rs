//! Frames and protocol messages: every decoder a peer's bytes reach, and the frame reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofrack_common::framing::{self, FrameReader};
use proofrack_common::identity::IdentityKind;
use proofrack_common::protocol::{
    self, AgentToCoordinator, Bounded, ClientRequest, ClientResponse, CoordinatorToAgent,
    DeliveryReply, InputReply, KeyReply,
};

fn decode_all<T: serde::de::DeserializeOwned + Bounded>(body: &[u8]) {
    if let Ok(m) = framing::decode::<T>(body) {
        let _ = m.check_bounds();
    }
}

fuzz_target!(|data: &[u8]| {
    for kind in [IdentityKind::Agent, IdentityKind::Client, IdentityKind::Coordinator] {
        let _ = protocol::decode_stream_open(data, kind);
    }
    decode_all::<AgentToCoordinator>(data);
    decode_all::<CoordinatorToAgent>(data);
    decode_all::<ClientRequest>(data);
    decode_all::<ClientResponse>(data);
    decode_all::<KeyReply>(data);
    decode_all::<DeliveryReply>(data);
    decode_all::<InputReply>(data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut r = data;
        let mut reader = FrameReader::new(framing::MAX_FRAME_BYTES);
        while reader.read_bytes(&mut r).await.is_ok() {}
        let mut r = data;
        let _ = framing::recv_payload(&mut r, 1 << 20).await;
    });
});
