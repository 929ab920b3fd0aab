//! `proofrack certs …`: the CLI over the library. The `proofrack` binary embeds
//! [`CertsArgs`] as its `certs` subcommand and calls [`run`].
//!
//! ```text
//! proofrack certs [--dir DIR] init [--trust-domain TD] [--days N] [--force]
//! proofrack certs [--dir DIR] issue coordinator --host H [--days N] [--force]
//! proofrack certs [--dir DIR] issue agent --operator OP --name NAME [--days N] [--force]
//! proofrack certs [--dir DIR] issue client --name NAME [--days N] [--force]
//! proofrack certs [--dir DIR] issue operator-admin --operator OP --name NAME [--days N] [--force]
//! proofrack certs [--dir DIR] issue admin --name NAME [--days N] [--force]
//! proofrack certs [--dir DIR] renew (coordinator --host H | agent --operator OP --name NAME | client --name NAME
//!                                   | operator-admin --operator OP --name NAME | admin --name NAME) [--days N]
//! proofrack certs [--dir DIR] revoke (coordinator … | agent … | client … | operator-admin … | admin … | serial HEX) [--reason TEXT]
//! proofrack certs [--dir DIR] list [--all]
//! ```

use crate::{
    format_utc, CertsDir, InitOptions, IssueOptions, IssuedCert, RevokeTarget, DEFAULT_CA_DAYS,
    DEFAULT_LEAF_DAYS,
};
use anyhow::Context;
use clap::{Args, Subcommand};
use proofrack_common::identity::{Identity, TrustDomain, DEFAULT_TRUST_DOMAIN};
use proofrack_common::{timefmt, Clock, SystemClock, UnixMillis};
use std::io::Write;
use std::path::PathBuf;

/// Default certs directory, relative to where the command runs.
pub const DEFAULT_CERTS_DIR: &str = "certs";

/// Manage the deployment's CA and certificates.
#[derive(Args, Clone, Debug)]
pub struct CertsArgs {
    /// Directory holding ca.pem, ca.key, trust-domain, revoked.json and issued certificates.
    #[arg(long, default_value = DEFAULT_CERTS_DIR, global = true)]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Subcommand, Clone, Debug)]
pub enum CertsCommand {
    /// Create the CA (ca.pem, ca.key 0600, trust-domain, empty revoked.json).
    Init {
        /// SPIFFE trust domain of this deployment.
        #[arg(long, default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// CA lifetime in days.
        #[arg(long, default_value_t = DEFAULT_CA_DAYS)]
        days: u32,
        /// Replace an existing CA; every certificate it issued stops being trusted.
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate and a fresh key.
    Issue {
        #[command(subcommand)]
        subject: IssueSubject,
    },
    /// Re-issue a certificate with the same identity, a fresh key and a fresh serial.
    Renew {
        #[command(subcommand)]
        subject: RenewSubject,
    },
    /// Add a certificate's serial to revoked.json; a running coordinator refuses it within
    /// its reload interval.
    Revoke {
        #[command(subcommand)]
        target: RevokeSubject,
    },
    /// List issued certificates with serial, expiry and revocation.
    List {
        /// Also list revoked certificates whose files are gone (replaced by `renew` or
        /// reissued with --force): every serial in revoked.json.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Args, Clone, Debug)]
pub struct IssueFlags {
    /// Lifetime in days.
    #[arg(long, default_value_t = DEFAULT_LEAF_DAYS)]
    pub days: u32,
    /// Overwrite existing certificate and key files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Clone, Debug)]
pub struct RenewFlags {
    /// Lifetime in days of the new certificate.
    #[arg(long, default_value_t = DEFAULT_LEAF_DAYS)]
    pub days: u32,
}

#[derive(Args, Clone, Debug)]
pub struct RevokeFlags {
    /// Why, recorded in revoked.json.
    #[arg(long, default_value = "revoked by operator")]
    pub reason: String,
}

/// Who a certificate is for.
#[derive(Args, Clone, Debug)]
pub struct CoordinatorSubject {
    /// Host name or IP clients dial; also the certificate's DNS/IP SAN.
    #[arg(long)]
    pub host: String,
}
#[derive(Args, Clone, Debug)]
pub struct AgentSubject {
    #[arg(long)]
    pub operator: String,
    /// Agent name, unique within the operator.
    #[arg(long)]
    pub name: String,
}
#[derive(Args, Clone, Debug)]
pub struct ClientSubject {
    #[arg(long)]
    pub name: String,
}
#[derive(Args, Clone, Debug)]
pub struct OperatorAdminSubject {
    /// The operator whose agents and stake this admin manages.
    #[arg(long)]
    pub operator: String,
    /// The admin's name (a person or a tool), unique within the operator.
    #[arg(long)]
    pub name: String,
}
#[derive(Args, Clone, Debug)]
pub struct AdminSubject {
    /// The admin's name (a person or a tool).
    #[arg(long)]
    pub name: String,
}

#[derive(Subcommand, Clone, Debug)]
pub enum IssueSubject {
    /// The coordinator (EKU ServerAuth).
    Coordinator {
        #[command(flatten)]
        who: CoordinatorSubject,
        #[command(flatten)]
        flags: IssueFlags,
    },
    /// An agent of an operator (EKU ClientAuth).
    Agent {
        #[command(flatten)]
        who: AgentSubject,
        #[command(flatten)]
        flags: IssueFlags,
    },
    /// A client that submits tasks and reads their status (EKU ClientAuth).
    Client {
        #[command(flatten)]
        who: ClientSubject,
        #[command(flatten)]
        flags: IssueFlags,
    },
    /// An operator's admin: drains its agents, withdraws its stake, resets their circuit
    /// breakers, reads its audit log (EKU ClientAuth).
    OperatorAdmin {
        #[command(flatten)]
        who: OperatorAdminSubject,
        #[command(flatten)]
        flags: IssueFlags,
    },
    /// A deployment admin: registers and unregisters circuits, sees every task, agent and
    /// audit line (EKU ClientAuth).
    Admin {
        #[command(flatten)]
        who: AdminSubject,
        #[command(flatten)]
        flags: IssueFlags,
    },
}

#[derive(Subcommand, Clone, Debug)]
pub enum RenewSubject {
    Coordinator {
        #[command(flatten)]
        who: CoordinatorSubject,
        #[command(flatten)]
        flags: RenewFlags,
    },
    Agent {
        #[command(flatten)]
        who: AgentSubject,
        #[command(flatten)]
        flags: RenewFlags,
    },
    Client {
        #[command(flatten)]
        who: ClientSubject,
        #[command(flatten)]
        flags: RenewFlags,
    },
    OperatorAdmin {
        #[command(flatten)]
        who: OperatorAdminSubject,
        #[command(flatten)]
        flags: RenewFlags,
    },
    Admin {
        #[command(flatten)]
        who: AdminSubject,
        #[command(flatten)]
        flags: RenewFlags,
    },
}

#[derive(Subcommand, Clone, Debug)]
pub enum RevokeSubject {
    /// The coordinator certificate currently in the directory.
    Coordinator {
        #[command(flatten)]
        who: CoordinatorSubject,
        #[command(flatten)]
        flags: RevokeFlags,
    },
    /// The agent certificate currently in the directory.
    Agent {
        #[command(flatten)]
        who: AgentSubject,
        #[command(flatten)]
        flags: RevokeFlags,
    },
    /// The client certificate currently in the directory.
    Client {
        #[command(flatten)]
        who: ClientSubject,
        #[command(flatten)]
        flags: RevokeFlags,
    },
    /// The operator admin certificate currently in the directory.
    OperatorAdmin {
        #[command(flatten)]
        who: OperatorAdminSubject,
        #[command(flatten)]
        flags: RevokeFlags,
    },
    /// The deployment admin certificate currently in the directory.
    Admin {
        #[command(flatten)]
        who: AdminSubject,
        #[command(flatten)]
        flags: RevokeFlags,
    },
    /// Any serial, e.g. of a certificate already replaced by `renew` (hex, colons allowed).
    Serial {
        serial: String,
        #[command(flatten)]
        flags: RevokeFlags,
    },
}

impl CoordinatorSubject {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::coordinator(&self.host)?)
    }
}
impl AgentSubject {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::agent(&self.operator, &self.name)?)
    }
}
impl ClientSubject {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::client(&self.name)?)
    }
}
impl OperatorAdminSubject {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::operator_admin(&self.operator, &self.name)?)
    }
}
impl AdminSubject {
    fn identity(&self) -> anyhow::Result<Identity> {
        Ok(Identity::admin(&self.name)?)
    }
}

/// Runs a `certs` command, printing to stdout.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    run_with(args, SystemClock.now(), &mut stdout.lock())
}

/// Runs a `certs` command at `now`, printing to `out`.
pub fn run_with(args: CertsArgs, now: UnixMillis, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = CertsDir::new(&args.dir);
    match args.command {
        CertsCommand::Init {
            trust_domain,
            days,
            force,
        } => {
            let td = TrustDomain::new(trust_domain)?;
            let info = dir.init(
                &InitOptions {
                    trust_domain: td,
                    days,
                    force,
                },
                now,
            )?;
            writeln!(
                out,
                "created CA for trust domain {} in {} (serial {}, expires {})",
                info.trust_domain,
                dir.root().display(),
                info.serial_hex,
                format_utc(info.not_after)
            )?;
            writeln!(
                out,
                "keep {} on this machine; boxes need only {}",
                dir.ca_key_path().display(),
                dir.ca_cert_path().display()
            )?;
        }
        CertsCommand::Issue { subject } => {
            let (identity, flags) = match subject {
                IssueSubject::Coordinator { who, flags } => (who.identity()?, flags),
                IssueSubject::Agent { who, flags } => (who.identity()?, flags),
                IssueSubject::Client { who, flags } => (who.identity()?, flags),
                IssueSubject::OperatorAdmin { who, flags } => (who.identity()?, flags),
                IssueSubject::Admin { who, flags } => (who.identity()?, flags),
            };
            let issued = dir.issue(
                &identity,
                &IssueOptions {
                    days: flags.days,
                    force: flags.force,
                },
                now,
            )?;
            print_issued(out, "issued", &issued)?;
        }
        CertsCommand::Renew { subject } => {
            let (identity, flags) = match subject {
                RenewSubject::Coordinator { who, flags } => (who.identity()?, flags),
                RenewSubject::Agent { who, flags } => (who.identity()?, flags),
                RenewSubject::Client { who, flags } => (who.identity()?, flags),
                RenewSubject::OperatorAdmin { who, flags } => (who.identity()?, flags),
                RenewSubject::Admin { who, flags } => (who.identity()?, flags),
            };
            let old = dir.read_cert(&identity)?;
            let old_revoked = dir.revocation_list()?.get(&old.serial_hex).cloned();
            let issued = dir.renew(&identity, flags.days, now)?;
            print_issued(out, "renewed", &issued)?;
            match old_revoked {
                Some(entry) => writeln!(
                    out,
                    "the previous certificate (serial {}) was revoked {} ({}); it stays refused",
                    old.serial_hex,
                    timefmt::when(entry.revoked_at, now),
                    entry.reason
                )?,
                None if old.not_after <= now => writeln!(
                    out,
                    "the previous certificate (serial {}) had expired {}",
                    old.serial_hex,
                    timefmt::when(old.not_after, now)
                )?,
                None => writeln!(
                    out,
                    "the previous certificate (serial {}) is not revoked and stays valid until it expires {}; revoke it with `proofrack certs revoke serial {}` if its key may have leaked",
                    old.serial_hex,
                    timefmt::when(old.not_after, now),
                    old.serial_hex
                )?,
            }
        }
        CertsCommand::Revoke { target } => {
            let (target, flags) = match target {
                RevokeSubject::Coordinator { who, flags } => {
                    (RevokeTarget::Identity(who.identity()?), flags)
                }
                RevokeSubject::Agent { who, flags } => {
                    (RevokeTarget::Identity(who.identity()?), flags)
                }
                RevokeSubject::Client { who, flags } => {
                    (RevokeTarget::Identity(who.identity()?), flags)
                }
                RevokeSubject::OperatorAdmin { who, flags } => {
                    (RevokeTarget::Identity(who.identity()?), flags)
                }
                RevokeSubject::Admin { who, flags } => {
                    (RevokeTarget::Identity(who.identity()?), flags)
                }
                RevokeSubject::Serial { serial, flags } => (RevokeTarget::Serial(serial), flags),
            };
            let outcome = dir.revoke(&target, &flags.reason, now)?;
            let who = outcome
                .identity
                .as_ref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default();
            if outcome.newly_revoked {
                writeln!(
                    out,
                    "revoked serial {}{who}; a running coordinator refuses it from its next reload of {}",
                    outcome.serial_hex,
                    dir.revoked_path().display()
                )?;
            } else {
                writeln!(
                    out,
                    "serial {}{who} was already revoked; nothing changed",
                    outcome.serial_hex
                )?;
            }
        }
        CertsCommand::List { all } => {
            let rows = dir
                .list()
                .with_context(|| format!("listing {}", dir.root().display()))?;
            writeln!(
                out,
                "{:<40} {:<42} {:<22} STATUS",
                "IDENTITY", "SERIAL", "EXPIRES"
            )?;
            for r in &rows {
                let status = if r.revoked {
                    "revoked"
                } else if r.not_after <= now {
                    "expired"
                } else {
                    "valid"
                };
                writeln!(
                    out,
                    "{:<40} {:<42} {:<22} {status}",
                    r.identity.to_string(),
                    r.serial_hex,
                    format_utc(r.not_after)
                )?;
            }
            // Revoked serials with no file left (renewed or reissued since): they are
            // still refused, and an operator auditing the CA must see them.
            let revoked = dir.revocation_list()?;
            let gone: Vec<_> = revoked
                .entries()
                .filter(|e| !rows.iter().any(|r| r.serial_hex == e.serial_hex))
                .collect();
            if all {
                for e in &gone {
                    writeln!(
                        out,
                        "{:<40} {:<42} {:<22} revoked {} ({}); file replaced",
                        e.identity.as_deref().unwrap_or("(identity not recorded)"),
                        e.serial_hex,
                        "-",
                        timefmt::utc(e.revoked_at),
                        e.reason
                    )?;
                }
            } else if !gone.is_empty() {
                writeln!(
                    out,
                    "{} more revoked certificate(s) whose files were replaced; `proofrack certs list --all` shows them",
                    gone.len()
                )?;
            }
        }
    }
    Ok(())
}

fn print_issued(out: &mut dyn Write, verb: &str, c: &IssuedCert) -> std::io::Result<()> {
    writeln!(out, "{verb} {} ({})", c.identity, c.spiffe_id)?;
    writeln!(out, "  certificate {}", c.cert_path.display())?;
    writeln!(out, "  key         {} (mode 0600)", c.key_path.display())?;
    writeln!(
        out,
        "  serial {}, expires {}",
        c.serial_hex,
        format_utc(c.not_after)
    )
}
