//! The chain stake source: the follower and the slasher driven against a running server
//! (through the [`CoreDriver`] the server passes in, not the server itself).
//!
//! `attach` connects to the node, checks the registry, loads the chain store, brings the
//! ledger to the chain's figures at the confirmed block (a restart catches up here), hooks
//! the core's slashes into the outbox and spawns two loops: the follower polls every
//! `poll_interval` and applies what it saw; the slasher sends and finalises slashes.
//!
//! Chain unreachable: the ledger keeps its last known figures and offers go on for
//! `stale_after_ms` after the last successful poll; past that the core makes no new offers
//! (`handle_stake_frozen`, an error is logged), bound tasks go on, and offering resumes at the
//! first successful poll.

use super::bindings::StakeRegistry;
use super::config::ChainSettings;
use super::follower::{Follower, Observation};
use super::slasher::{Outbox, Slasher};
use super::store::{ChainStore, SlashRecord};
use super::ChainError;
use crate::handle::CoreDriver;
use crate::tasks::Effect;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use proofrack_common::{OperatorId, StakeUnits, UnixMillis};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};

/// What one sync did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The confirmed block the ledger now follows.
    pub block: Option<u64>,
    /// Operators whose figures were applied.
    pub operators: Vec<OperatorId>,
    pub reorged_blocks: u64,
}

struct Health {
    last_ok: UnixMillis,
    frozen: bool,
    /// Operators whose last sync left a shortfall or unmet withdrawal: re-read every poll
    /// until their bound tasks end and the ledger equals the chain.
    behind: BTreeSet<OperatorId>,
}

struct Inner {
    core: Arc<dyn CoreDriver>,
    settings: ChainSettings,
    follower: tokio::sync::Mutex<Follower>,
    slasher: Slasher,
    slasher_turn: tokio::sync::Mutex<()>,
    outbox: Mutex<Outbox>,
    store: ChainStore,
    /// Operator → its address on chain (the follower's registrations), read by the slash
    /// hook under the core's lock, so it cannot wait for the follower.
    addresses: Mutex<BTreeMap<OperatorId, Address>>,
    health: Mutex<Health>,
    slash_wake: tokio::sync::Notify,
}

/// A running chain stake source. Dropping it stops its loops.
pub struct ChainStakeSource {
    inner: Arc<Inner>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ChainStakeSource {
    fn drop(&mut self) {
        for l in &self.loops {
            l.abort();
        }
    }
}

/// A provider that signs with the slasher key (see [`signing_provider`]).
pub fn connect(settings: &ChainSettings) -> DynProvider {
    signing_provider(settings.rpc_url.clone(), &settings.slasher)
}

/// A provider that signs with `key` and fills gas, fees, chain id and the nonce. The nonce is
/// asked of the node for every transaction: alloy's default (cached) nonce manager counts a
/// nonce as used even when the send fails before leaving (a refused gas estimate, e.g. for a
/// slash that already landed), and every later transaction then waits forever behind the gap.
pub fn signing_provider(
    url: alloy::transports::http::reqwest::Url,
    key: &alloy::signers::local::PrivateKeySigner,
) -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url)
        .erased()
}

impl ChainStakeSource {
    /// Connects, checks the registry, catches the ledger up and starts following. Fails if
    /// the node cannot be reached now: a coordinator with no known chain state has nothing to
    /// serve from.
    pub async fn attach(
        core: Arc<dyn CoreDriver>,
        settings: ChainSettings,
    ) -> Result<ChainStakeSource, ChainError> {
        let provider = connect(&settings);
        let registry = StakeRegistry::new(settings.registry, provider.clone());
        let code = provider
            .get_code_at(settings.registry)
            .await
            .map_err(|e| ChainError::Rpc(format!("eth_getCode at {}: {e}", settings.rpc_url)))?;
        if code.is_empty() {
            return Err(ChainError::Config(format!(
                "no contract at chain.registry {} on {}; deploy the StakeRegistry or fix the address",
                settings.registry, settings.rpc_url
            )));
        }
        let slasher_on_chain = registry
            .slasher()
            .call()
            .await
            .map_err(|e| ChainError::Rpc(format!("StakeRegistry.slasher: {e}")))?;
        let ours = settings.slasher.address();
        if slasher_on_chain != ours {
            return Err(ChainError::Config(format!(
                "the registry's slasher is {slasher_on_chain}, the configured key is {ours}: \
                 point chain.slasher_key_file at the slasher's key"
            )));
        }
        let delay =
            registry.unbondingDelaySeconds().call().await.map_err(|e| {
                ChainError::Rpc(format!("StakeRegistry.unbondingDelaySeconds: {e}"))
            })?;
        tracing::info!(registry = %settings.registry, unbonding_delay_s = delay, slasher = %ours, "chain stake source");
        let store = ChainStore::open(&settings.store_path)?;
        let outbox = Outbox::load(&store)?;
        let operators = store.operators()?;
        let addresses = operators.iter().map(|(a, id)| (id.clone(), *a)).collect();
        let follower = Follower::new(
            provider.clone(),
            settings.registry,
            settings.start_block,
            settings.confirmations,
            store.cursor()?,
            operators,
        );
        let slasher = Slasher::new(registry, provider, settings.confirmations);
        let inner = Arc::new(Inner {
            health: Mutex::new(Health {
                last_ok: core.now(),
                frozen: false,
                behind: BTreeSet::new(),
            }),
            core,
            settings,
            follower: tokio::sync::Mutex::new(follower),
            slasher,
            slasher_turn: tokio::sync::Mutex::new(()),
            outbox: Mutex::new(outbox),
            store,
            addresses: Mutex::new(addresses),
            slash_wake: tokio::sync::Notify::new(),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let hooked = inner.core.set_stake_hook(Box::new(move |effect| {
            if let Some(inner) = weak.upgrade() {
                inner.note_effect(effect);
            }
        }));
        if !hooked {
            return Err(ChainError::Config(
                "a chain stake source is already attached to this coordinator".into(),
            ));
        }
        // Withdrawals are the contract's from now on: the authorization table refuses them.
        inner
            .core
            .set_chain_registry(inner.settings.registry.to_string());
        inner.sync().await?;
        let mut source = ChainStakeSource {
            inner: inner.clone(),
            loops: Vec::new(),
        };
        source.loops.push(tokio::spawn(follow_loop(inner.clone())));
        source.loops.push(tokio::spawn(slash_loop(inner)));
        Ok(source)
    }

    /// Lets the loops run for the rest of the process (a service's coordinator).
    pub fn keep_running(mut self) {
        self.loops.clear();
    }

    /// One follower poll now, applied to the ledger (the loop does the same every interval).
    pub async fn sync_now(&self) -> Result<SyncReport, ChainError> {
        self.inner.sync_and_track().await
    }

    /// One slasher pass now: sends what is unsent, finalises what is confirmed.
    pub async fn flush_slashes(&self) -> Result<(), ChainError> {
        self.inner.slash_pass().await
    }

    /// Every slash recorded, sent or not, from the store.
    pub fn slash_records(&self) -> Result<Vec<SlashRecord>, ChainError> {
        self.inner.store.slashes()
    }

    /// The on-chain address of a registered operator.
    pub fn operator_address(&self, operator: &OperatorId) -> Option<Address> {
        self.inner
            .addresses
            .lock()
            .expect("addresses poisoned")
            .get(operator)
            .copied()
    }

    /// The confirmed block the ledger follows.
    pub async fn followed_block(&self) -> Option<(u64, B256)> {
        self.inner.follower.lock().await.cursor().last()
    }
}

impl Inner {
    /// Called by the server under the core's lock for every effect: records the core's
    /// slashes in the outbox before anything else can touch the ledger.
    fn note_effect(&self, effect: &Effect) {
        let Effect::StakeSlashed {
            task,
            attempt,
            operator,
            amount,
            reason,
        } = effect
        else {
            return;
        };
        let address = self
            .addresses
            .lock()
            .expect("addresses poisoned")
            .get(operator)
            .copied();
        let Some(address) = address else {
            tracing::error!(%task, %operator, %amount, "slashed operator is not registered on chain; the slash stays in the ledger only");
            return;
        };
        let record = SlashRecord {
            slash_id: super::slash_id(address, *task, *attempt),
            task: *task,
            attempt: *attempt,
            operator: operator.clone(),
            operator_address: address,
            amount: *amount,
            reason: *reason,
            state: super::SlashState::Intent,
        };
        let noted = self
            .outbox
            .lock()
            .expect("outbox poisoned")
            .note(&self.store, record);
        if noted {
            self.slash_wake.notify_one();
        }
    }

    async fn sync(&self) -> Result<SyncReport, ChainError> {
        let mut follower = self.follower.lock().await;
        let ids: Vec<B256> = self
            .outbox
            .lock()
            .expect("outbox poisoned")
            .unsettled()
            .iter()
            .map(|r| r.slash_id)
            .collect();
        let behind = self.health.lock().expect("health poisoned").behind.clone();
        let obs = follower.poll(&ids, &behind).await?;
        self.addresses
            .lock()
            .expect("addresses poisoned")
            .extend(obs.new_operators.iter().map(|(a, id)| (id.clone(), *a)));
        let report = self.apply(&obs).await;
        self.store
            .save_progress(follower.cursor(), &obs.new_operators)?;
        Ok(report)
    }

    /// Brings the ledger to the observation's figures, less the core's own slashes the chain
    /// does not show yet, under the core's lock (so no slash can come in between).
    async fn apply(&self, obs: &Observation) -> SyncReport {
        let mut report = SyncReport {
            block: obs.block.map(|(n, _)| n),
            operators: Vec::new(),
            reorged_blocks: obs.reorged_blocks,
        };
        let Some((block, _)) = obs.block else {
            return report;
        };
        let mut behind = BTreeSet::new();
        self.core.apply(|core, now| {
            let pending = self
                .outbox
                .lock()
                .expect("outbox poisoned")
                .not_yet_at(block, &obs.executed);
            for (operator, chain) in &obs.stakes {
                let ours = pending.get(operator).copied().unwrap_or_default();
                let stake = chain.less_slash(ours);
                match core.handle_outside_stake(now, operator, stake) {
                    Ok(sync) => {
                        if sync.shortfall > StakeUnits::ZERO
                            || sync.withdrawing_unmet > StakeUnits::ZERO
                        {
                            behind.insert(operator.clone());
                        }
                        report.operators.push(operator.clone());
                    }
                    Err(e) => {
                        tracing::error!(%operator, block, error = %e, "chain figures refused by the ledger")
                    }
                }
            }
        })
        .await;
        let mut health = self.health.lock().expect("health poisoned");
        for op in &report.operators {
            health.behind.remove(op);
        }
        health.behind.extend(behind);
        report
    }

    /// A poll that also keeps the chain's health: the stale timer and the core's freeze.
    async fn sync_and_track(&self) -> Result<SyncReport, ChainError> {
        let result = self.sync().await;
        match &result {
            Ok(_) => self.poll_succeeded().await,
            Err(e) => self.poll_failed(e).await,
        }
        result
    }

    async fn slash_pass(&self) -> Result<(), ChainError> {
        let _turn = self.slasher_turn.lock().await;
        self.slasher.pass(&self.outbox, &self.store).await
    }

    /// After a failed poll: past `stale_after_ms` since the last good one, no new offers.
    async fn poll_failed(&self, error: &ChainError) {
        let now = self.core.now();
        let since_ms = {
            let mut health = self.health.lock().expect("health poisoned");
            let since_ms = now.0.saturating_sub(health.last_ok.0);
            if since_ms < self.settings.stale_after_ms || health.frozen {
                None
            } else {
                health.frozen = true;
                Some(since_ms)
            }
        };
        tracing::warn!(error = %error, "chain poll failed; serving from the last known chain state");
        if let Some(since_ms) = since_ms {
            let reason = format!(
                "chain node {} unreachable for {} (last error: {error}); the ledger may \
                 miss withdrawals or slashes: restore the node or chain.rpc_url",
                self.settings.rpc_url,
                proofrack_common::timefmt::span_ms(since_ms)
            );
            self.core
                .apply(|core, now| core.handle_stake_frozen(now, Some(reason)))
                .await;
        }
    }

    async fn poll_succeeded(&self) {
        let now = self.core.now();
        let was_frozen = {
            let mut health = self.health.lock().expect("health poisoned");
            health.last_ok = now;
            std::mem::replace(&mut health.frozen, false)
        };
        if was_frozen {
            self.core
                .apply(|core, now| core.handle_stake_frozen(now, None))
                .await;
        }
    }
}

async fn follow_loop(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(inner.settings.poll_interval).await;
        let _ = inner.sync_and_track().await;
    }
}

async fn slash_loop(inner: Arc<Inner>) {
    loop {
        if let Err(e) = inner.slash_pass().await {
            tracing::warn!(error = %e, "slasher pass failed; retrying");
        }
        // Woken by a new slash, else retried every poll interval until everything is final.
        let _ =
            tokio::time::timeout(inner.settings.poll_interval, inner.slash_wake.notified()).await;
    }
}
