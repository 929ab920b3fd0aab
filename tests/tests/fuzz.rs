//! Fuzzing of every parser that takes untrusted bytes, on the stable toolchain: proptest
//! drives arbitrary and mutated inputs (fixed seeds, so a failure replays; a few seconds
//! each) into frames and protocol messages, the snarkjs `.zkey`/`.r1cs`/`.wtns` readers, the
//! built-in circuits' input JSON, and `coordinator.toml`/`agent.toml` with their environment
//! overrides. A parser may refuse anything; it may never panic, hang or allocate ahead of
//! the bytes it was given. Every crash found becomes a regression test in `regressions`.
//!
//! The same targets run under libFuzzer with a nightly toolchain from `fuzz/` (see its
//! README).
//!
//! # Layout
//! - `fuzz/mutate.rs`: byte-level mutations of valid inputs (flip, cut, splice, patch
//!   lengths), shared by the targets.
//! - `fuzz/frames.rs`, `fuzz/snarkjs_files.rs`, `fuzz/inputs.rs`, `fuzz/configs.rs`: the
//!   targets.
//! - `fuzz/regressions.rs`: inputs that once failed.

mod fuzz {
    pub mod configs;
    pub mod frames;
    pub mod inputs;
    pub mod mutate;
    pub mod regressions;
    pub mod snarkjs_files;
}
