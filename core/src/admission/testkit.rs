//! Builders of agent telemetry and identities for the core's own tests, the scenario tests
//! and the simulations: the protocol test kit of `proofrack_common`, under the name these
//! tests have always used. Behind the `testkit` feature; the coordinator never uses it.

pub use proofrack_common::testkit::{agent_id, cpu_telemetry, cuda_telemetry, shape};
