//! Deploying the contracts and setting up stake: what `proofrack devnet --chain` and the chain
//! tests do on a local node. Every call waits for its receipt.

use super::bindings::{StakeRegistry, StakeToken};
use super::ChainError;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

/// Where the contracts were deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub token: Address,
    pub registry: Address,
    /// The block the registry was deployed in (the follower's start block).
    pub block: u64,
}

/// A provider that signs with `key`.
pub fn wallet_provider(rpc_url: &str, key: &PrivateKeySigner) -> Result<DynProvider, ChainError> {
    let url = rpc_url
        .parse()
        .map_err(|e| ChainError::Config(format!("{rpc_url:?} is not a URL: {e}")))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url)
        .erased())
}

fn failed(what: &str) -> impl FnOnce(alloy::contract::Error) -> ChainError + '_ {
    move |e| ChainError::Contract(format!("{what}: {e}"))
}

fn pending(what: &str) -> impl FnOnce(alloy::providers::PendingTransactionError) -> ChainError + '_ {
    move |e| ChainError::Rpc(format!("{what}: waiting for the receipt: {e}"))
}

/// Deploys the stake token (minted by `deployer`) and the registry with `slasher` and the
/// unbonding delay.
pub async fn deploy(
    deployer: &DynProvider,
    slasher: Address,
    unbonding_delay_s: u64,
) -> Result<Deployment, ChainError> {
    let token = StakeToken::deploy(deployer.clone(), "proofrack stake".into(), "PRS".into())
        .await
        .map_err(failed("deploying StakeToken"))?;
    let registry = StakeRegistry::deploy(
        deployer.clone(),
        *token.address(),
        slasher,
        unbonding_delay_s,
    )
    .await
    .map_err(failed("deploying StakeRegistry"))?;
    let block = deployer
        .get_block_number()
        .await
        .map_err(|e| ChainError::Rpc(format!("eth_blockNumber: {e}")))?;
    Ok(Deployment {
        token: *token.address(),
        registry: *registry.address(),
        block,
    })
}

/// `operator` registers itself under `name` (the coordinator's operator id).
pub async fn register_operator(
    operator: &DynProvider,
    registry: Address,
    name: &str,
) -> Result<(), ChainError> {
    StakeRegistry::new(registry, operator.clone())
        .registerOperator(name.to_string())
        .send()
        .await
        .map_err(failed("registerOperator"))?
        .get_receipt()
        .await
        .map_err(pending("registerOperator"))?;
    Ok(())
}

/// The token's minter gives `to` some tokens.
pub async fn mint(
    minter: &DynProvider,
    deployment: &Deployment,
    to: Address,
    amount: u128,
) -> Result<(), ChainError> {
    StakeToken::new(deployment.token, minter.clone())
        .mint(to, U256::from(amount))
        .send()
        .await
        .map_err(failed("mint"))?
        .get_receipt()
        .await
        .map_err(pending("mint"))?;
    Ok(())
}

/// `delegator` approves and delegates `amount` of its tokens to `operator`.
pub async fn delegate(
    delegator: &DynProvider,
    deployment: &Deployment,
    operator: Address,
    amount: u128,
) -> Result<(), ChainError> {
    StakeToken::new(deployment.token, delegator.clone())
        .approve(deployment.registry, U256::from(amount))
        .send()
        .await
        .map_err(failed("approve"))?
        .get_receipt()
        .await
        .map_err(pending("approve"))?;
    StakeRegistry::new(deployment.registry, delegator.clone())
        .delegate(operator, U256::from(amount))
        .send()
        .await
        .map_err(failed("delegate"))?
        .get_receipt()
        .await
        .map_err(pending("delegate"))?;
    Ok(())
}
