//! A coordinator (the e2e cluster: real QUIC, real certificates) whose stake source is a real
//! anvil started for the test, with the contracts deployed from the checked-in build.

use crate::support::cluster::{test_policy, Cluster, ClusterSpec};
use proofrack::devnet_chain::{deploy_with_stake, roles, Anvil};
use proofrack_common::{OperatorId, StakeUnits};
use proofrack_coordinator::chain::alloy::primitives::{Address, U256};
use proofrack_coordinator::chain::alloy::providers::{DynProvider, Provider};
use proofrack_coordinator::chain::bindings::StakeRegistry;
use proofrack_coordinator::chain::deploy::{self, Deployment};
use proofrack_coordinator::chain::{ChainSettings, ChainStakeSource};
use proofrack_coordinator::ledger::OutsideStake;
use proofrack_coordinator::Policy;
use std::path::PathBuf;

/// The contract's unbonding delay in tests: above `TASK_DEADLINE_MS` (120 s) as the contract's
/// purpose requires; tests move anvil's clock past it with `evm_increaseTime`.
pub const UNBONDING_DELAY_S: u64 = 300;
/// Confirmations in tests where they matter.
pub const CONFIRMATIONS: u64 = 2;
/// The background poll never fires during a test: each test syncs explicitly, so it checks
/// exactly the state it set up (the loop runs the same code).
pub const IDLE_POLL_MS: u64 = 600_000;

pub struct Rig {
    pub anvil: Option<Anvil>,
    pub url: String,
    pub deployment: Deployment,
    pub operators: Vec<(OperatorId, Address)>,
    pub confirmations: u64,
    /// A read-only view of the node (the deployer's provider).
    pub provider: DynProvider,
}

impl Rig {
    /// anvil, the contracts, `operators` registered with their stake delegated.
    pub async fn start(operators: &[(&str, u128)], confirmations: u64) -> Rig {
        crate::support::init_logging();
        let anvil = Anvil::start(None).expect("anvil starts (run scripts/setup-tools.sh --node)");
        let (deployment, addresses) = deploy_with_stake(&anvil, UNBONDING_DELAY_S, operators)
            .await
            .expect("contracts deployed and stake delegated");
        let provider = deploy::wallet_provider(&anvil.url, anvil.key(roles::DEPLOYER)).unwrap();
        Rig {
            url: anvil.url.clone(),
            operators: operators
                .iter()
                .zip(addresses)
                .map(|((name, _), a)| (OperatorId::new(*name).unwrap(), a))
                .collect(),
            anvil: Some(anvil),
            deployment,
            confirmations,
            provider,
        }
    }

    pub fn anvil(&self) -> &Anvil {
        self.anvil.as_ref().expect("anvil running")
    }

    pub fn address(&self, operator: &str) -> Address {
        self.operators
            .iter()
            .find(|(id, _)| id.as_str() == operator)
            .map(|(_, a)| *a)
            .expect("operator of this rig")
    }

    pub fn settings(&self, store: PathBuf, poll_ms: u64, stale_ms: u64) -> ChainSettings {
        ChainSettings::new(
            &self.url,
            self.deployment.registry,
            self.deployment.block,
            self.confirmations,
            poll_ms,
            stale_ms,
            self.anvil().key(roles::SLASHER).clone(),
            store,
        )
        .expect("valid chain settings")
    }

    /// A coordinator with no config-file stake, following this chain (store in its dir).
    pub async fn coordinator(&self, name: &str, policy: Policy) -> (Cluster, ChainStakeSource) {
        let cluster = Cluster::start(
            name,
            ClusterSpec {
                policy,
                operators: vec![],
                ..ClusterSpec::default()
            },
        )
        .await;
        let source = self.attach(&cluster, IDLE_POLL_MS, 3_600_000).await;
        (cluster, source)
    }

    pub async fn attach(&self, cluster: &Cluster, poll_ms: u64, stale_ms: u64) -> ChainStakeSource {
        let store = cluster.dir.path().join("data").join("chain.redb");
        ChainStakeSource::attach(cluster.shared(), self.settings(store, poll_ms, stale_ms))
            .await
            .expect("chain stake source attaches")
    }

    pub async fn rpc(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.provider
            .raw_request::<_, serde_json::Value>(method.into(), params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Mines `n` empty blocks.
    pub async fn mine(&self, n: u64) {
        self.rpc("anvil_mine", serde_json::json!([n])).await;
    }

    /// Mines enough blocks that everything sent so far is confirmed.
    pub async fn confirm(&self) {
        if self.confirmations > 0 {
            self.mine(self.confirmations).await;
        }
    }

    pub async fn snapshot(&self) -> String {
        let id = self.rpc("evm_snapshot", serde_json::json!([])).await;
        id.as_str().expect("snapshot id").to_string()
    }

    pub async fn revert(&self, id: &str) {
        let ok = self.rpc("evm_revert", serde_json::json!([id])).await;
        assert_eq!(ok, serde_json::Value::Bool(true), "evm_revert to {id}");
    }

    pub async fn increase_time(&self, seconds: u64) {
        self.rpc("evm_increaseTime", serde_json::json!([seconds]))
            .await;
    }

    pub fn delegator(&self) -> DynProvider {
        deploy::wallet_provider(&self.url, self.anvil().key(roles::DELEGATOR)).unwrap()
    }

    pub fn slasher(&self) -> DynProvider {
        deploy::wallet_provider(&self.url, self.anvil().key(roles::SLASHER)).unwrap()
    }

    pub fn registry(
        &self,
        provider: DynProvider,
    ) -> StakeRegistry::StakeRegistryInstance<DynProvider> {
        StakeRegistry::new(self.deployment.registry, provider)
    }

    /// Mints and delegates `amount` from the delegator to `operator`.
    pub async fn delegate(&self, operator: &str, amount: u128) {
        let deployer =
            deploy::wallet_provider(&self.url, self.anvil().key(roles::DEPLOYER)).unwrap();
        let delegator = self.anvil().key(roles::DELEGATOR).address();
        deploy::mint(&deployer, &self.deployment, delegator, amount)
            .await
            .unwrap();
        deploy::delegate(
            &self.delegator(),
            &self.deployment,
            self.address(operator),
            amount,
        )
        .await
        .unwrap();
    }

    /// The delegator queues a withdrawal; returns its id.
    pub async fn request_withdrawal(&self, operator: &str, amount: u128) -> U256 {
        let registry = self.registry(self.delegator());
        let sent = registry
            .requestWithdrawal(self.address(operator), U256::from(amount))
            .send()
            .await
            .expect("requestWithdrawal sent");
        let receipt = deploy::mined(&self.provider, *sent.tx_hash(), "requestWithdrawal")
            .await
            .expect("requestWithdrawal mined");
        let log = receipt
            .decoded_log::<StakeRegistry::WithdrawalQueued>()
            .expect("WithdrawalQueued event");
        log.data.id
    }

    /// The contract's figures for `operator` at the latest block.
    pub async fn chain_stake(&self, operator: &str) -> OutsideStake {
        let s = self
            .registry(self.provider.clone())
            .operatorStake(self.address(operator))
            .call()
            .await
            .expect("operatorStake");
        let u = |v: U256| StakeUnits(u128::try_from(v).unwrap());
        OutsideStake {
            delegated: u(s.delegated),
            withdrawing: u(s.withdrawing),
            delegated_ever: u(s.delegatedEver),
            withdrawn: u(s.withdrawn),
            slashed: u(s.slashedTotal),
        }
    }
}

/// The ledger's figures for `operator`, in the contract's terms.
pub fn ledger_stake(cluster: &Cluster, operator: &str) -> Option<OutsideStake> {
    let id = OperatorId::new(operator).unwrap();
    cluster.shared().read(|core, _| {
        core.ledger().account(&id).map(|a| OutsideStake {
            delegated: a.delegated(),
            withdrawing: a.withdrawing(),
            delegated_ever: a.delegated_ever(),
            withdrawn: a.withdrawn(),
            slashed: a.slashed(),
        })
    })
}

pub fn free(cluster: &Cluster, operator: &str) -> StakeUnits {
    let id = OperatorId::new(operator).unwrap();
    cluster
        .shared()
        .read(|core, _| core.ledger().free(&id))
        .expect("operator in the ledger")
}

/// The default test policy.
pub fn policy() -> Policy {
    test_policy()
}
