//! End-to-end tests of proofrack live in `tests/e2e.rs` (one test binary): a coordinator,
//! real and scripted agents and clients in one process, over real QUIC on loopback with real
//! certificates. The harness is in `tests/support/`, the tests by area in `tests/cases/`.
//! This library is empty on purpose; run the tests with `cargo test -p proofrack-tests`.
