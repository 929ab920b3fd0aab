//! The chain as the stake source, against a real anvil started per test (npm
//! `@foundry-rs/anvil`, installed by `scripts/setup-tools.sh --node`): delegations and unbonding,
//! slashes sent once, catching up after a restart, reorgs, a stale chain, the contract build
//! matching its source, and `devnet --chain`.
//!
//! anvil mines one block per transaction; tests mine more with `anvil_mine` to confirm, move
//! its clock with `evm_increaseTime` and reorg with `evm_snapshot`/`evm_revert`. Each test
//! syncs the coordinator explicitly (`sync_now`) after setting up what it checks.
//!
//! # Layout
//! - `chain/rig.rs`: anvil + contracts + a coordinator following them.
//! - `chain/cases.rs`: the tests.

#[allow(dead_code, unused_imports)]
#[path = "support/mod.rs"]
mod support;

#[path = "chain/rig.rs"]
mod rig;

#[path = "chain/cases.rs"]
mod cases;
