//! `proofrack devnet --chain`: a local anvil (npm `@foundry-rs/anvil`, pinned in package.json
//! and installed by `scripts/setup-tools.sh --node`), the contracts deployed from the checked-in
//! build, the devnet's operators registered and their stake delegated on chain, and the
//! `[chain]` section that points the coordinator at it. The chain tests use the same pieces.

use anyhow::{bail, Context};
use proofrack_coordinator::chain::alloy::primitives::Address;
use proofrack_coordinator::chain::alloy::providers::Provider;
use proofrack_coordinator::chain::alloy::signers::local::PrivateKeySigner;
use proofrack_coordinator::chain::deploy::{self, Deployment};
use proofrack_coordinator::chain::ChainConfig;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longest wait for anvil to listen; it starts in well under a second.
pub const ANVIL_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Development accounts anvil creates (deployer, slasher, two operators, a delegator, spare).
pub const ANVIL_ACCOUNTS: usize = 6;
/// The devnet's unbonding delay: well above its task deadline (`DEVNET_DEADLINE`, 120 s), so
/// stake bound to a task stays slashable until the task is over.
pub const DEVNET_UNBONDING_DELAY_S: u64 = 600;
const _: () = assert!(DEVNET_UNBONDING_DELAY_S > crate::devnet::DEVNET_DEADLINE.as_secs());

/// A running anvil, killed on drop.
pub struct Anvil {
    child: Child,
    pub url: String,
    /// The development accounts' keys, in anvil's order.
    pub keys: Vec<PrivateKeySigner>,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The anvil binary from npm `@foundry-rs/anvil` in `node_modules` of the working directory
/// or one above it (`PROOFRACK_ANVIL` overrides). The binary itself, from the platform
/// package (`@foundry-rs/anvil-<os>-<arch>/bin/anvil`), not the `.bin/anvil` node shim: the
/// shim runs anvil as its child, so killing the shim would leave anvil running.
pub fn find_anvil() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("PROOFRACK_ANVIL") {
        return Ok(PathBuf::from(p));
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        let scope = dir.join("node_modules/@foundry-rs");
        let Ok(entries) = std::fs::read_dir(&scope) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let candidate = entry.path().join("bin/anvil");
            if name.to_string_lossy().starts_with("anvil-") && candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "anvil not found in node_modules/.bin of {} or above; run scripts/setup-tools.sh in the \
         repository (it installs the pinned @foundry-rs/anvil), or set PROOFRACK_ANVIL",
        cwd.display()
    )
}

impl Anvil {
    /// Starts anvil on a free loopback port. `block_time_s`: `None` mines a block per
    /// transaction (tests mine more with `anvil_mine`); `Some(s)` mines every `s` seconds.
    pub fn start(block_time_s: Option<u64>) -> anyhow::Result<Anvil> {
        let bin = find_anvil()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(&bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--accounts", &ANVIL_ACCOUNTS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(s) = block_time_s {
            cmd.args(["--block-time", &s.to_string()]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        // Read the startup banner on a thread: the keys, then "Listening on".
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut keys = Vec::new();
            let mut in_keys = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("Private Keys") {
                    in_keys = true;
                } else if in_keys {
                    if let Some(hex) = line.split_whitespace().nth(1) {
                        if let Ok(k) = hex.parse::<PrivateKeySigner>() {
                            keys.push(k);
                        }
                    }
                    if keys.len() == ANVIL_ACCOUNTS {
                        in_keys = false;
                    }
                }
                if line.contains("Listening on") {
                    let _ = tx.send(std::mem::take(&mut keys));
                }
            }
        });
        let mut anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
            keys: Vec::new(),
        };
        anvil.keys = rx.recv_timeout(ANVIL_START_TIMEOUT).with_context(|| {
            format!(
                "anvil ({}) did not start listening within {ANVIL_START_TIMEOUT:?}",
                bin.display()
            )
        })?;
        if anvil.keys.len() != ANVIL_ACCOUNTS {
            bail!(
                "anvil printed {} development keys, expected {ANVIL_ACCOUNTS}",
                anvil.keys.len()
            );
        }
        Ok(anvil)
    }

    pub fn key(&self, i: usize) -> &PrivateKeySigner {
        &self.keys[i]
    }

    /// One JSON-RPC call (e.g. `anvil_mine`, `evm_setIntervalMining`).
    pub async fn rpc(
        &self,
        method: &'static str,
        params: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let provider = deploy::wallet_provider(&self.url, self.key(roles::DEPLOYER))?;
        provider
            .raw_request::<_, serde_json::Value>(method.into(), params)
            .await
            .with_context(|| format!("anvil {method}"))
    }
}

/// Which development account plays which part.
pub mod roles {
    pub const DEPLOYER: usize = 0;
    pub const SLASHER: usize = 1;
    /// Operators take accounts from here on, in order.
    pub const FIRST_OPERATOR: usize = 2;
    pub const DELEGATOR: usize = 5;
}

/// Deploys the contracts, registers `operators` (each with its own account) and delegates
/// their stake from one delegator. Returns the deployment and each operator's address.
pub async fn deploy_with_stake(
    anvil: &Anvil,
    unbonding_delay_s: u64,
    operators: &[(&str, u128)],
) -> anyhow::Result<(Deployment, Vec<Address>)> {
    if roles::FIRST_OPERATOR + operators.len() > roles::DELEGATOR {
        bail!(
            "at most {} operators on the devnet chain",
            roles::DELEGATOR - roles::FIRST_OPERATOR
        );
    }
    let deployer = deploy::wallet_provider(&anvil.url, anvil.key(roles::DEPLOYER))?;
    let deployment = deploy::deploy(
        &deployer,
        anvil.key(roles::SLASHER).address(),
        unbonding_delay_s,
    )
    .await?;
    let delegator_key = anvil.key(roles::DELEGATOR);
    let delegator = deploy::wallet_provider(&anvil.url, delegator_key)?;
    let total: u128 = operators.iter().map(|(_, s)| s).sum();
    deploy::mint(&deployer, &deployment, delegator_key.address(), total).await?;
    let mut addresses = Vec::new();
    for (i, (name, stake)) in operators.iter().enumerate() {
        let key = anvil.key(roles::FIRST_OPERATOR + i);
        let operator = deploy::wallet_provider(&anvil.url, key)?;
        deploy::register_operator(&operator, deployment.registry, name).await?;
        if *stake > 0 {
            deploy::delegate(&delegator, &deployment, key.address(), *stake).await?;
        }
        addresses.push(key.address());
    }
    Ok((deployment, addresses))
}

/// Confirmations the devnet's coordinator waits for.
pub const DEVNET_CONFIRMATIONS: u64 = 1;

/// The devnet's chain: anvil, the contracts, the operators' stake (confirmed before the
/// coordinator starts, so it starts with it), then a block every second; and the coordinator's
/// `[chain]` section (slasher key written under `data_dir`).
pub async fn start_devnet_chain(
    data_dir: &Path,
    coordinator_data_dir: &Path,
    operators: &[(&str, u128)],
) -> anyhow::Result<(Anvil, ChainConfig)> {
    // A fresh chain each run: the last run's cursor and slash outbox belong to another chain.
    let store = coordinator_data_dir.join(proofrack_coordinator::chain::STORE_FILE);
    if store.exists() {
        std::fs::remove_file(&store).with_context(|| format!("removing {}", store.display()))?;
    }
    // Set up with a block per transaction (fast), then confirm it and mine every second.
    let anvil = Anvil::start(None)?;
    let (deployment, _) = deploy_with_stake(&anvil, DEVNET_UNBONDING_DELAY_S, operators).await?;
    anvil
        .rpc("anvil_mine", serde_json::json!([DEVNET_CONFIRMATIONS]))
        .await?;
    anvil
        .rpc("evm_setIntervalMining", serde_json::json!([1]))
        .await?;
    let key_file = data_dir.join("chain").join("slasher.key");
    std::fs::create_dir_all(key_file.parent().expect("has a parent"))?;
    let key_hex = format!("0x{}", hex::encode(anvil.key(roles::SLASHER).to_bytes()));
    std::fs::write(&key_file, key_hex)
        .with_context(|| format!("writing {}", key_file.display()))?;
    let config = ChainConfig {
        rpc_url: anvil.url.clone(),
        registry: deployment.registry,
        start_block: deployment.block,
        confirmations: DEVNET_CONFIRMATIONS,
        poll_interval_ms: 500,
        stale_after_ms: 30_000,
        slasher_key_file: key_file,
    };
    Ok((anvil, config))
}
