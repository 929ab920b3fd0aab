//! The core stays pure: `cargo tree -p proofrack-core` (normal dependencies, every feature)
//! shows no runtime, network, database, chain or HTTP crate brought in by the core, nothing
//! pruned: `proofrack-common` comes without its `net` feature (the transport), so only its
//! pure half (messages, bounded encoding, identities, telemetry) is in the tree.

use std::process::Command;

/// Crates that do I/O or drive it; none may be in the core's tree.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "quinn",
    "quinn-proto",
    "rustls",
    "redb",
    "alloy",
    "hyper",
    "reqwest",
    "mio",
    "socket2",
];

#[test]
fn the_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "proofrack-core",
            "--edges",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"proofrack-core"),
        "unexpected cargo tree output:\n{tree}"
    );
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(f)).collect();
    assert!(
        found.is_empty(),
        "the core's dependencies include {found:?}; it must stay pure (move the I/O to the coordinator's shells). cargo tree -p proofrack-core -i CRATE shows who brings it in.\n{tree}"
    );
}
