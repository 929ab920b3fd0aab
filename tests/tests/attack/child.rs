//! The coordinator process the attacks run against: this test binary, started with only this
//! ignored test selected (see `support::process`).

/// Not a test of its own: the attacked coordinator's process.
#[test]
#[ignore = "the attacked coordinator's process; the attack suite starts it"]
fn coordinator_child_process() {
    crate::support::process::run_child();
}

/// This test's path, for `CoordinatorProcess::start_as`.
pub const CHILD_TEST: &str = "attack::child::coordinator_child_process";
