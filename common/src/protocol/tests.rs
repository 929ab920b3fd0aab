use super::*;
use crate::amount::StakeUnits;
use crate::ids::{AgentName, KeyId, OperatorId, TaskId};
use crate::telemetry::{
    Calibration, HostTelemetry, NvmlStatus, ProofShape, ProverBackend, Telemetry,
};
use crate::time::UnixMillis;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use tokio::io::duplex;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn calibration() -> Calibration {
    crate::testkit::cpu_calibration()
}

/// A hello that declares a cached key, so its vector round-trips too.
fn hello() -> AgentHello {
    let mut hello = crate::testkit::hello(&calibration(), 2);
    hello.capabilities.cached_keys = vec![KeyId([3; 32])];
    hello
}

fn agent_ref() -> AgentRef {
    AgentRef {
        operator: OperatorId::new("op-a").unwrap(),
        name: AgentName::new("gpu-1").unwrap(),
    }
}

async fn round_trip<T>(msg: &T) -> T
where
    T: Serialize + DeserializeOwned + Bounded,
{
    let (mut a, mut b) = duplex(framing::MAX_FRAME_BYTES * 2);
    write_message(&mut a, msg).await.unwrap();
    read_message(&mut b).await.unwrap()
}

#[test]
fn stream_opens_round_trip() {
    rt().block_on(async {
        let opens = [
            StreamOpen::Control(hello()),
            StreamOpen::FetchKey(FetchKey {
                key: KeyId([1; 32]),
            }),
            StreamOpen::DeliverProof(DeliverProof {
                task: TaskId(4),
                proof: vec![7; 128],
                public_inputs: vec![[9; 32]; 3],
                proving_ms: 1234,
            }),
            StreamOpen::Client(ClientRequest::Submit(SubmitRequest {
                circuit: "multiplier".into(),
                inputs: vec![1, 2, 3],
                collateral: StakeUnits(100),
                deadline_ms: 30_000,
                request_id: 42,
            })),
            StreamOpen::Client(ClientRequest::Watch { task: TaskId(1) }),
            StreamOpen::Client(ClientRequest::UnregisterCircuit {
                name: "poseidon".into(),
            }),
            StreamOpen::Client(ClientRequest::ResetBreaker {
                request_id: 9,
                agent: agent_ref(),
            }),
            StreamOpen::Client(ClientRequest::Audit {
                before: Some(40),
                operator: Some(OperatorId::new("op-a").unwrap()),
                limit: 128,
            }),
            StreamOpen::Client(ClientRequest::RegisterCircuit(RegisterCircuit {
                name: "poseidon".into(),
            })),
            StreamOpen::Client(ClientRequest::SubmitWitness(SubmitWitness {
                circuit: "poseidon".into(),
                collateral: StakeUnits(10),
                deadline_ms: 60_000,
                request_id: 7,
            })),
            StreamOpen::FetchInput(FetchInput {
                task: TaskId(3),
                sha256: [5; 32],
            }),
        ];
        for open in opens {
            let kind = match open.kind() {
                StreamKind::ClientRequest => IdentityKind::Client,
                _ => IdentityKind::Agent,
            };
            let (mut a, mut b) = duplex(1 << 16);
            write_stream_open(&mut a, open.clone()).await.unwrap();
            assert_eq!(read_stream_open(&mut b, kind).await.unwrap(), open);
        }
    });
}

#[test]
fn other_version_gets_a_mismatch_naming_both_versions() {
    rt().block_on(async {
        // A future agent whose open frame we cannot otherwise decode: the next version, then
        // junk.
        let future = PROTOCOL_VERSION + 1;
        let mut body = postcard::to_stdvec(&future).unwrap();
        body.extend_from_slice(&[0xff; 40]);
        let (mut a, mut b) = duplex(1 << 12);
        framing::write_frame_bytes(&mut a, &body).await.unwrap();
        let err = match read_stream_open(&mut b, IdentityKind::Agent).await {
            Err(OpenError::Refused(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(err, ProtocolError::VersionMismatch { coordinator: PROTOCOL_VERSION, peer: future, peer_kind: IdentityKind::Agent });
        assert_eq!(
            err.to_string(),
            format!("protocol version mismatch: coordinator speaks {PROTOCOL_VERSION}, agent speaks {future}; upgrade the coordinator")
        );
        let old = ProtocolError::VersionMismatch { coordinator: 3, peer: 1, peer_kind: IdentityKind::Client };
        assert!(old.to_string().ends_with("client speaks 1; upgrade the client"), "{old}");
    });
}

#[test]
fn hello_version_must_match_the_frame() {
    let mut h = hello();
    h.protocol_version = 7;
    let body = postcard::to_stdvec(&OpenFrame {
        protocol_version: PROTOCOL_VERSION,
        open: StreamOpen::Control(h),
    })
    .unwrap();
    let err = decode_stream_open(&body, IdentityKind::Agent).unwrap_err();
    assert!(
        err.to_string().contains("AgentHello says protocol 7"),
        "{err}"
    );
}

#[test]
fn malformed_first_frame_is_a_refusal_not_a_stream_error() {
    rt().block_on(async {
        let mut body = postcard::to_stdvec(&PROTOCOL_VERSION).unwrap();
        body.push(200); // no StreamOpen variant 200
        let (mut a, mut b) = duplex(1 << 12);
        framing::write_frame_bytes(&mut a, &body).await.unwrap();
        match read_stream_open(&mut b, IdentityKind::Client).await {
            Err(OpenError::Refused(ProtocolError::Malformed { detail })) => {
                assert!(detail.contains("OpenFrame"), "{detail}")
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        // An oversized first frame is refused too (the stream is still there to reply on).
        a.write_all(&(u32::MAX).to_le_bytes()).await.unwrap();
        assert!(matches!(
            read_stream_open(&mut b, IdentityKind::Client).await,
            Err(OpenError::Refused(ProtocolError::Malformed { .. }))
        ));
        drop(a);
        assert!(matches!(
            read_stream_open(&mut b, IdentityKind::Client).await,
            Err(OpenError::Stream(FrameError::Closed))
        ));
    });
}

use tokio::io::AsyncWriteExt;

#[test]
fn out_of_bounds_messages_are_refused_on_write_and_read() {
    rt().block_on(async {
        let big = DeliverProof {
            task: TaskId(1),
            proof: vec![0; MAX_PROOF_BYTES + 1],
            public_inputs: vec![],
            proving_ms: 1,
        };
        let (mut a, mut b) = duplex(1 << 16);
        let err = write_stream_open(&mut a, StreamOpen::DeliverProof(big.clone()))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("proof: 1025 exceeds the limit of 1024"),
            "{err}"
        );

        // A peer that skips the check is refused by the reader.
        let frame = OpenFrame {
            protocol_version: PROTOCOL_VERSION,
            open: StreamOpen::DeliverProof(big),
        };
        framing::write_frame(&mut a, &frame).await.unwrap();
        assert!(matches!(
            read_stream_open(&mut b, IdentityKind::Agent).await,
            Err(OpenError::Refused(ProtocolError::Malformed { .. }))
        ));

        let bad_name = ClientRequest::Submit(SubmitRequest {
            circuit: "Bad/Name".into(),
            inputs: vec![],
            collateral: StakeUnits(1),
            deadline_ms: 1,
            request_id: 1,
        });
        assert!(bad_name.check_bounds().is_err());
    });
}

#[test]
fn control_and_client_replies_round_trip() {
    rt().block_on(async {
        let offer = CoordinatorToAgent::Offer(TaskOffer {
            task: TaskId(9),
            key: KeyId([5; 32]),
            circuit: "multiplier".into(),
            shape: ProofShape {
                domain_size: 1 << 10,
                num_variables: 900,
            },
            inputs: vec![0; MAX_TASK_INPUTS_BYTES],
            collateral: StakeUnits(u128::MAX),
            deadline: UnixMillis(10),
            offer_expires: UnixMillis(5),
        });
        assert_eq!(round_trip(&offer).await, offer);

        let tele = AgentToCoordinator::Telemetry(Telemetry {
            seq: 3,
            nvml: NvmlStatus::Missing {
                reason: "no driver".into(),
            },
            gpus: vec![],
            host: HostTelemetry {
                hostname: "box".into(),
                cpu_cores: 2,
                ..Default::default()
            },
            calibration: calibration(),
        });
        assert_eq!(round_trip(&tele).await, tele);

        let status = ClientResponse::Status(TaskStatusView {
            task: TaskId(9),
            client: "client/alice".into(),
            request_id: 3,
            circuit: "multiplier".into(),
            key: KeyId([8; 32]),
            state: TaskState::Verified {
                agent: agent_ref(),
                proving_ms: 80,
                proof: vec![1; 128],
                public_outputs: vec![[2; 32]],
            },
            collateral: StakeUnits(100),
            deadline: UnixMillis(1_000),
            submitted: UnixMillis(1),
            history: vec![HistoryLine {
                at: UnixMillis(1),
                what: "submitted".into(),
            }],
        });
        assert_eq!(round_trip(&status).await, status);

        let err = ClientResponse::Error(ProtocolError::UnknownTask { task: TaskId(77) });
        assert_eq!(round_trip(&err).await, err);
        for e in [
            ProtocolError::Forbidden {
                identity: "client/alice".into(),
                action: "drain the agents of op-a".into(),
                needs: "that needs an operator admin of op-a (operator/op-a/admin/NAME)".into(),
            },
            ProtocolError::DuplicateAgent {
                agent: "op-a/gpu-1".into(),
                retry_after_ms: 6_000,
            },
        ] {
            let err = ClientResponse::Error(e);
            assert_eq!(round_trip(&err).await, err);
        }
        assert_eq!(
            ProtocolError::Forbidden {
                identity: "client/alice".into(),
                action: "drain the agents of op-a".into(),
                needs: "that needs an operator admin of op-a (operator/op-a/admin/NAME)".into(),
            }
            .to_string(),
            "client/alice may not drain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
        );
        assert_eq!(agent_ref().to_string(), "op-a/gpu-1");
    });
}

#[test]
fn long_error_details_are_truncated_to_fit() {
    let e = ProtocolError::Internal {
        detail: "é".repeat(MAX_TEXT_BYTES),
    }
    .truncated();
    assert!(e.check_bounds().is_ok());
    let ProtocolError::Internal { detail } = e else {
        unreachable!()
    };
    assert!(detail.len() <= MAX_TEXT_BYTES && detail.len() >= MAX_TEXT_BYTES - 1);
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9 ]{0,40}"
}
fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}"
}
fn agent_ref_s() -> impl Strategy<Value = AgentRef> {
    (name(), name()).prop_map(|(o, n)| AgentRef {
        operator: OperatorId::new(o).unwrap(),
        name: AgentName::new(n).unwrap(),
    })
}
fn task_state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        text().prop_map(|reason| TaskState::Queued { reason }),
        (agent_ref_s(), any::<u64>()).prop_map(|(agent, t)| TaskState::Offered {
            agent,
            offer_expires: UnixMillis(t)
        }),
        (agent_ref_s(), any::<u64>()).prop_map(|(agent, t)| TaskState::Proving {
            agent,
            predicted_done_at: UnixMillis(t / 2),
            due_at: UnixMillis(t)
        }),
        agent_ref_s().prop_map(|agent| TaskState::Verifying { agent }),
        (
            agent_ref_s(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..256),
            proptest::collection::vec(any::<[u8; 32]>(), 0..8)
        )
            .prop_map(
                |(agent, proving_ms, proof, public_outputs)| TaskState::Verified {
                    agent,
                    proving_ms,
                    proof,
                    public_outputs
                }
            ),
        (text(), proptest::option::of((name(), any::<u128>()))).prop_map(|(reason, s)| {
            TaskState::Failed {
                reason,
                slashed: s.map(|(o, a)| SlashRecord {
                    operator: OperatorId::new(o).unwrap(),
                    amount: StakeUnits(a),
                }),
            }
        }),
    ]
}
fn client_response() -> impl Strategy<Value = ClientResponse> {
    prop_oneof![
        any::<u64>().prop_map(|t| ClientResponse::Submitted { task: TaskId(t) }),
        text().prop_map(|reason| ClientResponse::Rejected { reason }),
        (
            any::<u64>(),
            name(),
            task_state(),
            any::<u128>(),
            proptest::collection::vec((any::<u64>(), text()), 0..10)
        )
            .prop_map(
                |(t, circuit, state, c, h)| ClientResponse::Status(TaskStatusView {
                    task: TaskId(t),
                    client: "client/c".into(),
                    request_id: t / 5,
                    circuit,
                    key: KeyId([t as u8; 32]),
                    state,
                    collateral: StakeUnits(c),
                    deadline: UnixMillis(t / 2),
                    submitted: UnixMillis(t / 3),
                    history: h
                        .into_iter()
                        .map(|(at, what)| HistoryLine {
                            at: UnixMillis(at),
                            what
                        })
                        .collect(),
                })
            ),
        proptest::collection::vec((name(), any::<[u128; 7]>()), 0..10).prop_map(|rows| {
            ClientResponse::Ledger(LedgerView {
                as_of: UnixMillis(1),
                operators: rows
                    .into_iter()
                    .map(|(o, v)| OperatorLedgerRow {
                        operator: OperatorId::new(o).unwrap(),
                        delegated: StakeUnits(v[0]),
                        active: StakeUnits(v[1]),
                        withdrawing: StakeUnits(v[2]),
                        free: StakeUnits(v[3]),
                        promised_to_offers: StakeUnits(v[4]),
                        withdrawn: StakeUnits(v[5]),
                        slashed: StakeUnits(v[6]),
                        bound_tasks: v[0] as u64,
                    })
                    .collect(),
            })
        }),
        (
            agent_ref_s(),
            text(),
            proptest::collection::vec(any::<u64>(), 0..8),
            any::<(bool, Option<u64>, Option<u64>, Option<u64>)>(),
            proptest::collection::vec(text(), 0..4)
        )
            .prop_map(
                |(agent, hardware, tasks, (connected, age, msm, ntt), health)| {
                    ClientResponse::Agents(AgentsView {
                        as_of: UnixMillis(2),
                        agents_known: 1,
                        agents_reporting: u64::from(connected),
                        rows: vec![AgentRow {
                            agent,
                            backend: connected.then_some(ProverBackend::Cuda),
                            hardware,
                            connected,
                            drained: !connected,
                            leaving: false,
                            operator_standing: OperatorStanding::Staked,
                            telemetry_age_ms: age,
                            health,
                            in_flight: tasks.into_iter().map(TaskId).collect(),
                            max_concurrent_tasks: 4,
                            msm_g1_points_per_sec: msm,
                            ntt_elements_per_sec: ntt,
                            compute_memory_free_bytes: age.map(|a| a / 3),
                            reserved_memory_bytes: 12,
                        }],
                    })
                }
            ),
        (any::<u64>(), text()).prop_map(|(t, detail)| ClientResponse::Error(if t % 2 == 0 {
            ProtocolError::UnknownTask { task: TaskId(t) }
        } else {
            ProtocolError::Internal { detail }
        })),
    ]
}
fn agent_message() -> impl Strategy<Value = AgentToCoordinator> {
    prop_oneof![
        (any::<u64>(), proptest::option::of(text())).prop_map(|(t, r)| {
            AgentToCoordinator::OfferReply(OfferReply {
                task: TaskId(t),
                decision: r.map_or(OfferDecision::Accept, |reason| OfferDecision::Decline {
                    reason,
                }),
            })
        }),
        (any::<u64>(), text()).prop_map(|(t, reason)| AgentToCoordinator::TaskFailed {
            task: TaskId(t),
            reason
        }),
        text().prop_map(|reason| AgentToCoordinator::Draining { reason }),
        (any::<u64>(), text(), 0u32..16).prop_map(|(seq, host, cores)| {
            AgentToCoordinator::Telemetry(Telemetry {
                seq,
                nvml: NvmlStatus::Available {
                    driver_version: "580.1".into(),
                },
                gpus: vec![],
                host: HostTelemetry {
                    hostname: host,
                    cpu_cores: cores,
                    ..Default::default()
                },
                calibration: calibration(),
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, rng_seed: proptest::test_runner::RngSeed::Fixed(0x0007_0c01), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_client_responses_round_trip(msg in client_response()) {
        let got = rt().block_on(round_trip(&msg));
        prop_assert_eq!(got, msg);
    }

    #[test]
    fn arbitrary_agent_messages_round_trip(msg in agent_message()) {
        let got = rt().block_on(round_trip(&msg));
        prop_assert_eq!(got, msg);
    }

    #[test]
    fn arbitrary_first_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_stream_open(&bytes, IdentityKind::Agent);
    }

    #[test]
    fn truncated_encodings_are_errors_not_panics(msg in client_response(), cut in any::<prop::sample::Index>()) {
        let body = postcard::to_stdvec(&msg).unwrap();
        let at = cut.index(body.len().max(1)).min(body.len().saturating_sub(1));
        prop_assert!(framing::decode::<ClientResponse>(&body[..at]).is_err());
    }
}

#[test]
fn a_full_agents_table_at_every_bound_fits_one_frame() {
    let row = AgentRow {
        agent: AgentRef {
            operator: OperatorId::new("o".repeat(crate::ids::MAX_NAME_LEN)).unwrap(),
            name: AgentName::new("n".repeat(crate::ids::MAX_NAME_LEN)).unwrap(),
        },
        connected: true,
        drained: true,
        leaving: true,
        operator_standing: OperatorStanding::NoStake,
        backend: Some(ProverBackend::Cuda),
        hardware: "h".repeat(MAX_HARDWARE_SUMMARY_BYTES),
        telemetry_age_ms: Some(u64::MAX),
        health: vec!["x".repeat(MAX_HEALTH_ENTRY_BYTES); MAX_HEALTH_ENTRIES],
        in_flight: vec![TaskId(u64::MAX); MAX_IN_FLIGHT_PER_AGENT],
        max_concurrent_tasks: u32::MAX,
        msm_g1_points_per_sec: Some(u64::MAX),
        ntt_elements_per_sec: Some(u64::MAX),
        compute_memory_free_bytes: Some(u64::MAX),
        reserved_memory_bytes: u64::MAX,
    };
    let view = ClientResponse::Agents(AgentsView {
        as_of: UnixMillis(u64::MAX),
        rows: vec![row; MAX_VIEW_ROWS],
        agents_known: u64::MAX,
        agents_reporting: u64::MAX,
    });
    assert!(view.check_bounds().is_ok());
    let len = postcard::to_stdvec(&view).unwrap().len();
    assert!(len <= framing::MAX_FRAME_BYTES, "{len} bytes");
    // One more health line is out of bounds.
    let ClientResponse::Agents(mut v) = view else {
        unreachable!()
    };
    v.rows[0].health.push(String::new());
    assert!(ClientResponse::Agents(v)
        .check_bounds()
        .unwrap_err()
        .contains("agents.health"));
}

#[test]
fn a_full_audit_page_at_every_bound_fits_one_frame() {
    let line = AuditLine {
        seq: u64::MAX,
        at: UnixMillis(u64::MAX),
        who: "w".repeat(MAX_TEXT_BYTES),
        action: "a".repeat(MAX_TEXT_BYTES),
        operator: Some(OperatorId::new("o".repeat(crate::ids::MAX_NAME_LEN)).unwrap()),
        outcome: AuditOutcome::Refused,
        message: "m".repeat(MAX_TEXT_BYTES),
    };
    let view = ClientResponse::Audit(AuditView {
        lines: vec![line; MAX_AUDIT_VIEW_ROWS],
        kept: u64::MAX,
        cap: u64::MAX,
    });
    assert!(view.check_bounds().is_ok());
    let len = postcard::to_stdvec(&view).unwrap().len();
    assert!(len <= framing::MAX_FRAME_BYTES, "{len} bytes");
    let ClientResponse::Audit(mut v) = view else {
        unreachable!()
    };
    v.lines[0].message.push('x');
    assert!(ClientResponse::Audit(v).check_bounds().is_err());
}

#[test]
fn a_task_listing_names_a_real_state_or_none() {
    let ask = |state: Option<&str>| ClientRequest::Tasks {
        state: state.map(str::to_string),
        before: None,
        limit: 10,
    };
    assert_eq!(ask(None).check_bounds(), Ok(()));
    for name in TASK_STATE_NAMES {
        assert_eq!(ask(Some(name)).check_bounds(), Ok(()));
    }
    let e = ask(Some("bogus")).check_bounds().unwrap_err();
    assert_eq!(
        e,
        "tasks.state \"bogus\" is not a task state; use one of queued, offered, proving, verifying, verified, failed, reassigning"
    );
    // every state a task can be in is listable by its name
    let verifying = TaskState::Verifying {
        agent: "op-a/gpu-1".parse().unwrap(),
    };
    assert!(TASK_STATE_NAMES.contains(&verifying.name()));
}
