//! Deploying the contracts and setting up stake: what `proofrack devnet --chain` and the chain
//! tests do on a local node. Every call waits for its receipt.

use super::bindings::{StakeRegistry, StakeToken};
use super::ChainError;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use std::time::Duration;

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
    Ok(super::source::signing_provider(url, key))
}

fn failed(what: &str) -> impl FnOnce(alloy::contract::Error) -> ChainError + '_ {
    move |e| ChainError::Contract(format!("{what}: {e}"))
}

/// Longest wait for a sent transaction's receipt.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the node is asked for a receipt: a local node mines a transaction at once.
const RECEIPT_POLL: Duration = Duration::from_millis(20);

/// Waits for transaction `tx` to be mined and checks it succeeded, asking the node for the
/// receipt, at most [`RECEIPT_TIMEOUT`]: a transaction that is never mined is an error that
/// says so, not a hang.
pub async fn mined(
    provider: &DynProvider,
    tx: B256,
    what: &str,
) -> Result<TransactionReceipt, ChainError> {
    let deadline = tokio::time::Instant::now() + RECEIPT_TIMEOUT;
    loop {
        let receipt = provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| ChainError::Rpc(format!("{what}: eth_getTransactionReceipt {tx}: {e}")))?;
        if let Some(r) = receipt {
            if !r.status() {
                return Err(ChainError::Contract(format!(
                    "{what}: transaction {tx} reverted"
                )));
            }
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ChainError::Rpc(format!(
                "{what}: no receipt for {tx} after {RECEIPT_TIMEOUT:?}; is the node mining?"
            )));
        }
        tokio::time::sleep(RECEIPT_POLL).await;
    }
}

/// Deploys the stake token (minted by `deployer`) and the registry with `slasher` and the
/// unbonding delay.
pub async fn deploy(
    deployer: &DynProvider,
    slasher: Address,
    unbonding_delay_s: u64,
) -> Result<Deployment, ChainError> {
    let sent = StakeToken::deploy_builder(deployer.clone(), "proofrack stake".into(), "PRS".into())
        .send()
        .await
        .map_err(failed("deploying StakeToken"))?;
    let token = created(mined(deployer, *sent.tx_hash(), "deploying StakeToken").await?)?;
    let sent = StakeRegistry::deploy_builder(deployer.clone(), token, slasher, unbonding_delay_s)
        .send()
        .await
        .map_err(failed("deploying StakeRegistry"))?;
    let registry = created(mined(deployer, *sent.tx_hash(), "deploying StakeRegistry").await?)?;
    let block = deployer
        .get_block_number()
        .await
        .map_err(|e| ChainError::Rpc(format!("eth_blockNumber: {e}")))?;
    Ok(Deployment {
        token,
        registry,
        block,
    })
}

fn created(receipt: TransactionReceipt) -> Result<Address, ChainError> {
    receipt.contract_address.ok_or_else(|| {
        ChainError::Contract(format!(
            "deployment {} created no contract",
            receipt.transaction_hash
        ))
    })
}

/// `operator` registers itself under `name` (the coordinator's operator id).
pub async fn register_operator(
    operator: &DynProvider,
    registry: Address,
    name: &str,
) -> Result<(), ChainError> {
    let sent = StakeRegistry::new(registry, operator.clone())
        .registerOperator(name.to_string())
        .send()
        .await
        .map_err(failed("registerOperator"))?;
    mined(operator, *sent.tx_hash(), "registerOperator").await?;
    Ok(())
}

/// The token's minter gives `to` some tokens.
pub async fn mint(
    minter: &DynProvider,
    deployment: &Deployment,
    to: Address,
    amount: u128,
) -> Result<(), ChainError> {
    let sent = StakeToken::new(deployment.token, minter.clone())
        .mint(to, U256::from(amount))
        .send()
        .await
        .map_err(failed("mint"))?;
    mined(minter, *sent.tx_hash(), "mint").await?;
    Ok(())
}

/// `delegator` approves and delegates `amount` of its tokens to `operator`.
pub async fn delegate(
    delegator: &DynProvider,
    deployment: &Deployment,
    operator: Address,
    amount: u128,
) -> Result<(), ChainError> {
    let sent = StakeToken::new(deployment.token, delegator.clone())
        .approve(deployment.registry, U256::from(amount))
        .send()
        .await
        .map_err(failed("approve"))?;
    mined(delegator, *sent.tx_hash(), "approve").await?;
    let sent = StakeRegistry::new(deployment.registry, delegator.clone())
        .delegate(operator, U256::from(amount))
        .send()
        .await
        .map_err(failed("delegate"))?;
    mined(delegator, *sent.tx_hash(), "delegate").await?;
    Ok(())
}
