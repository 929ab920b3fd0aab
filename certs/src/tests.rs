use super::*;
use proofrack_common::identity::TrustDomain;
use std::path::Path;
use x509_parser::extensions::GeneralName;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub PathBuf);
impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "proofrack-certs-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const NOW: UnixMillis = UnixMillis(1_780_000_000_000);

fn td() -> TrustDomain {
    TrustDomain::new("rack.test").unwrap()
}

fn init(name: &str) -> (TempDir, CertsDir) {
    let t = TempDir::new(name);
    let dir = CertsDir::new(t.0.join("certs"));
    dir.init(&InitOptions::new(td()), NOW).unwrap();
    (t, dir)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn der_of(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    let der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    der.to_vec()
}

#[test]
fn init_writes_the_ca_files_with_private_key_0600() {
    let (_t, dir) = init("init");
    for p in [
        dir.ca_cert_path(),
        dir.ca_key_path(),
        dir.trust_domain_path(),
        dir.revoked_path(),
    ] {
        assert!(p.is_file(), "{}", p.display());
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.ca_key_path()), 0o600);
        assert_eq!(mode(&dir.ca_cert_path()), 0o644);
        assert_eq!(mode(dir.root()), 0o700);
    }
    assert_eq!(dir.trust_domain().unwrap(), td());
    let ca = der_of(&dir.ca_cert_path());
    assert_eq!(TrustDomain::from_ca_certificate_der(&ca).unwrap(), td());
    let (_, parsed) = x509_parser::parse_x509_certificate(&ca).unwrap();
    assert!(parsed.is_ca());
    let days = (parsed.validity().not_after.timestamp() * 1000 - NOW.0 as i64) / 86_400_000;
    assert_eq!(days, DEFAULT_CA_DAYS as i64);
    assert!(dir.revocation_handle().unwrap().read(|l| l.is_empty()));
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let (_t, dir) = init("force");
    let before = std::fs::read(dir.ca_key_path()).unwrap();
    let err = dir
        .init(&InitOptions::new(td()), NOW)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ca.pem") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(dir.ca_key_path()).unwrap(), before);

    let agent = Identity::agent("op-a", "gpu-1").unwrap();
    let first = dir.issue(&agent, &IssueOptions::default(), NOW).unwrap();
    let err = dir
        .issue(&agent, &IssueOptions::default(), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("agent-gpu-1@op-a.pem") && err.contains("--force"),
        "{err}"
    );
    let second = dir
        .issue(
            &agent,
            &IssueOptions {
                force: true,
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
    assert_ne!(first.serial_hex, second.serial_hex);
    #[cfg(unix)]
    assert_eq!(mode(&second.key_path), 0o600);
}

#[test]
fn leaves_carry_one_uri_san_the_right_eku_and_the_host() {
    let (_t, dir) = init("leaves");
    let coord = dir
        .issue(
            &Identity::coordinator("127.0.0.1").unwrap(),
            &IssueOptions::default(),
            NOW,
        )
        .unwrap();
    let agent = dir
        .issue(
            &Identity::agent("op-a", "gpu-1").unwrap(),
            &IssueOptions::default(),
            NOW,
        )
        .unwrap();
    let client = dir
        .issue(
            &Identity::client("alice").unwrap(),
            &IssueOptions {
                days: 2,
                force: false,
            },
            NOW,
        )
        .unwrap();

    assert_eq!(
        coord.cert_path.file_name().unwrap(),
        "coordinator-127.0.0.1.pem"
    );
    assert_eq!(agent.key_path.file_name().unwrap(), "agent-gpu-1@op-a.key");
    assert_eq!(client.cert_path.file_name().unwrap(), "client-alice.pem");
    assert_eq!(
        agent.spiffe_id,
        "spiffe://rack.test/operator/op-a/agent/gpu-1"
    );
    #[cfg(unix)]
    for c in [&coord, &agent, &client] {
        assert_eq!(mode(&c.key_path), 0o600);
    }
    assert_eq!((client.not_after.0 - NOW.0) / 86_400_000, 2);

    let der = der_of(&coord.cert_path);
    let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
    let names = c
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .clone();
    assert!(
        names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])),
        "{names:?}"
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| matches!(n, GeneralName::URI(_)))
            .count(),
        1
    );
    let eku = c.extended_key_usage().unwrap().unwrap().value.clone();
    assert!(eku.server_auth && !eku.client_auth);

    let der = der_of(&agent.cert_path);
    let (_, a) = x509_parser::parse_x509_certificate(&der).unwrap();
    let eku = a.extended_key_usage().unwrap().unwrap().value.clone();
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!a.is_ca());

    let host = dir
        .issue(
            &Identity::coordinator("coord.rack").unwrap(),
            &IssueOptions::default(),
            NOW,
        )
        .unwrap();
    let der = der_of(&host.cert_path);
    let (_, h) = x509_parser::parse_x509_certificate(&der).unwrap();
    let names = h
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .clone();
    assert!(
        names.contains(&GeneralName::DNSName("coord.rack")),
        "{names:?}"
    );
}

#[test]
fn renew_keeps_the_identity_with_a_fresh_key_and_serial() {
    let (_t, dir) = init("renew");
    let id = Identity::client("alice").unwrap();
    let old = dir.issue(&id, &IssueOptions::default(), NOW).unwrap();
    let old_key = std::fs::read(&old.key_path).unwrap();
    let later = NOW.saturating_add(std::time::Duration::from_secs(20 * 86_400));
    let new = dir.renew(&id, DEFAULT_LEAF_DAYS, later).unwrap();
    assert_eq!(new.identity, id);
    assert_ne!(new.serial_hex, old.serial_hex);
    assert_ne!(std::fs::read(&new.key_path).unwrap(), old_key);
    assert!(new.not_after > old.not_after);
    assert_eq!(dir.read_cert(&id).unwrap().serial_hex, new.serial_hex);
    #[cfg(unix)]
    assert_eq!(mode(&new.key_path), 0o600);

    let missing = Identity::client("bob").unwrap();
    let err = dir.renew(&missing, 30, NOW).unwrap_err().to_string();
    assert!(
        err.contains("client-bob.pem") && err.contains("certs issue client"),
        "{err}"
    );
}

#[test]
fn revoke_by_identity_and_serial_is_idempotent_and_listed() {
    let (_t, dir) = init("revoke");
    let id = Identity::agent("op-a", "gpu-1").unwrap();
    let old = dir.issue(&id, &IssueOptions::default(), NOW).unwrap();
    let handle = dir.revocation_handle().unwrap();

    let out = dir
        .revoke(&RevokeTarget::Identity(id.clone()), "key leaked", NOW)
        .unwrap();
    assert!(out.newly_revoked);
    assert_eq!(out.serial_hex, old.serial_hex);
    assert!(
        !dir.revoke(&RevokeTarget::Identity(id.clone()), "again", NOW)
            .unwrap()
            .newly_revoked
    );
    handle.reload_if_changed().unwrap();
    assert!(handle.is_revoked(&old.serial_hex));
    let entry = handle.read(|l| l.get(&old.serial_hex).cloned()).unwrap();
    assert_eq!(
        entry.identity.as_deref(),
        Some("spiffe://rack.test/operator/op-a/agent/gpu-1")
    );
    assert_eq!(entry.reason, "key leaked");

    let new = dir.renew(&id, 30, NOW).unwrap();
    let listed = dir.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].revoked && listed[0].serial_hex == new.serial_hex);

    let upper = new.serial_hex.to_uppercase();
    assert!(
        dir.revoke(&RevokeTarget::Serial(upper), "renewed", NOW)
            .unwrap()
            .newly_revoked
    );
    assert!(dir.list().unwrap()[0].revoked);
    assert!(dir
        .revoke(&RevokeTarget::Serial("xyz".into()), "", NOW)
        .is_err());
}

#[test]
fn lifetimes_are_bounded_and_never_outlive_the_ca() {
    let t = TempDir::new("days");
    let dir = CertsDir::new(&t.0);
    let err = dir
        .init(
            &InitOptions {
                trust_domain: td(),
                days: 0,
                force: false,
            },
            NOW,
        )
        .unwrap_err();
    assert!(err.to_string().contains("--days 0"), "{err}");
    dir.init(
        &InitOptions {
            trust_domain: td(),
            days: 10,
            force: false,
        },
        NOW,
    )
    .unwrap();
    let id = Identity::client("alice").unwrap();
    let err = dir
        .issue(&id, &IssueOptions::default(), NOW)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outlive the CA"), "{err}");
    assert!(dir
        .issue(
            &id,
            &IssueOptions {
                days: 9,
                force: false
            },
            NOW
        )
        .is_ok());
    let err = dir
        .issue(
            &id,
            &IssueOptions {
                days: MAX_LEAF_DAYS + 1,
                force: true,
            },
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, CertsError::BadDays { .. }), "{err}");
}

#[test]
fn commands_without_a_ca_say_to_run_init() {
    let t = TempDir::new("noca");
    let dir = CertsDir::new(&t.0);
    let err = dir
        .issue(
            &Identity::client("a").unwrap(),
            &IssueOptions::default(),
            NOW,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trust-domain") && err.contains("certs init"),
        "{err}"
    );
}

#[test]
fn tls_material_loads_for_each_kind() {
    let (_t, dir) = init("material");
    for id in [
        Identity::coordinator("localhost").unwrap(),
        Identity::client("c").unwrap(),
        Identity::operator_admin("op-a", "ops").unwrap(),
        Identity::admin("root").unwrap(),
    ] {
        dir.issue(&id, &IssueOptions::default(), NOW).unwrap();
        let m = dir.tls_material(&id).unwrap();
        assert_eq!(m.trust_domain, td());
        assert_eq!(m.own_identity().unwrap().identity, id);
    }
}

mod cli_tests {
    use super::*;
    use crate::cli::{run_with, CertsArgs};
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }
    #[derive(clap::Subcommand, Debug)]
    enum Top {
        Certs(CertsArgs),
    }

    fn run(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["proofrack", "certs", "--dir", dir.to_str().unwrap()];
        argv.extend_from_slice(args);
        let Top::Certs(a) = Cli::try_parse_from(argv)?.cmd;
        let mut out = Vec::new();
        run_with(a, NOW, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_whole_life_cycle_through_the_cli() {
        let t = TempDir::new("cli");
        let d = t.0.as_path();
        let out = run(d, &["init", "--trust-domain", "lab.example"]).unwrap();
        assert!(out.contains("trust domain lab.example"), "{out}");
        let out = run(
            d,
            &[
                "issue",
                "agent",
                "--operator",
                "op-a",
                "--name",
                "gpu-1",
                "--days",
                "7",
            ],
        )
        .unwrap();
        assert!(
            out.contains("spiffe://lab.example/operator/op-a/agent/gpu-1"),
            "{out}"
        );
        let err = run(
            d,
            &["issue", "agent", "--operator", "op-a", "--name", "gpu-1"],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("agent-gpu-1@op-a.pem already exists; pass --force"),
            "{err}"
        );
        run(
            d,
            &[
                "issue",
                "agent",
                "--operator",
                "op-a",
                "--name",
                "gpu-1",
                "--force",
            ],
        )
        .unwrap();
        run(d, &["issue", "coordinator", "--host", "127.0.0.1"]).unwrap();
        run(d, &["issue", "client", "--name", "alice"]).unwrap();
        let out = run(d, &["renew", "client", "--name", "alice"]).unwrap();
        assert!(
            out.contains("renewed client/alice") && out.contains("certs revoke serial"),
            "{out}"
        );
        let out = run(
            d,
            &[
                "revoke",
                "agent",
                "--operator",
                "op-a",
                "--name",
                "gpu-1",
                "--reason",
                "lost box",
            ],
        )
        .unwrap();
        assert!(out.contains("revoked serial"), "{out}");
        let out = run(d, &["list"]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("operator/op-a/agent/gpu-1") && l.ends_with("revoked")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("client/alice") && l.ends_with("valid")),
            "{out}"
        );
        // Renewing a revoked certificate says so (it does not claim the old one "stays
        // valid"), and the revoked serial stays visible once its file is replaced.
        let out = run(
            d,
            &["renew", "agent", "--operator", "op-a", "--name", "gpu-1"],
        )
        .unwrap();
        assert!(
            out.contains("was revoked") && out.contains("lost box"),
            "{out}"
        );
        assert!(!out.contains("stays valid"), "{out}");
        let out = run(d, &["list"]).unwrap();
        assert!(
            out.lines()
                .any(|l| l.starts_with("operator/op-a/agent/gpu-1") && l.ends_with("valid")),
            "{out}"
        );
        assert!(
            out.contains("1 more revoked certificate(s) whose files were replaced; `proofrack certs list --all` shows them"),
            "{out}"
        );
        let out = run(d, &["list", "--all"]).unwrap();
        assert!(
            out.lines().any(
                |l| l.starts_with("spiffe://lab.example/operator/op-a/agent/gpu-1")
                    && l.contains("revoked")
                    && l.contains("lost box")
            ),
            "{out}"
        );
        let err = run(d, &["issue", "client", "--name", "Bad/Name"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("client name"), "{err}");
        assert!(
            run(d, &["issue", "agent", "--name", "x"]).is_err(),
            "--operator is required"
        );
    }

    #[test]
    fn admins_are_issued_renewed_revoked_and_listed() {
        let t = TempDir::new("cli-admins");
        let d = t.0.as_path();
        run(d, &["init"]).unwrap();
        let out = run(
            d,
            &[
                "issue",
                "operator-admin",
                "--operator",
                "op-a",
                "--name",
                "ops",
            ],
        )
        .unwrap();
        assert!(
            out.contains(
                "issued operator/op-a/admin/ops (spiffe://proofrack.local/operator/op-a/admin/ops)"
            ) && out.contains("operator-admin-ops@op-a.pem"),
            "{out}"
        );
        let out = run(d, &["issue", "admin", "--name", "root"]).unwrap();
        assert!(
            out.contains("issued admin/root (spiffe://proofrack.local/admin/root)")
                && out.contains("admin-root.pem"),
            "{out}"
        );
        // Both are client certificates (EKU ClientAuth) like agents' and clients'.
        let der = der_of(&d.join("admin-root.pem"));
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let out = run(d, &["renew", "admin", "--name", "root"]).unwrap();
        assert!(out.contains("renewed admin/root"), "{out}");
        let out = run(
            d,
            &[
                "revoke",
                "operator-admin",
                "--operator",
                "op-a",
                "--name",
                "ops",
            ],
        )
        .unwrap();
        assert!(out.contains("(operator/op-a/admin/ops)"), "{out}");
        let out = run(d, &["list"]).unwrap();
        assert!(
            out.lines()
                .any(|l| l.starts_with("operator/op-a/admin/ops") && l.ends_with("revoked")),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("admin/root") && l.ends_with("valid")),
            "{out}"
        );
        let err = run(d, &["issue", "admin", "--name", "Root"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin name"), "{err}");
        assert!(
            run(d, &["issue", "operator-admin", "--name", "x"]).is_err(),
            "--operator is required"
        );
    }
}
