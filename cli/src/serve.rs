//! `proofrack coordinator` and `proofrack agent`: the two long-running services, configured
//! by their TOML files.

use anyhow::Context;
use proofrack_agent::client::AgentSettings;
use proofrack_agent::config::AgentConfig;
use proofrack_agent::key_cache::{KeyCache, KeyCacheLimits};
use proofrack_agent::prover::{Prover, ProverBackendImpl};
use proofrack_agent::TelemetryCollector;
use proofrack_common::revocation::RevocationHandle;
use proofrack_common::tls::TlsMaterial;
use proofrack_common::SystemClock;
use proofrack_coordinator::registry::CircuitRegistry;
use proofrack_coordinator::server::{self, ServerSettings};
use proofrack_coordinator::CoordinatorConfig;
use std::path::Path;
use std::sync::Arc;

/// Reads `coordinator.toml`, applies `PROOFRACK_COORDINATOR_*` environment overrides and
/// validates the result.
pub fn load_coordinator_config(path: &Path) -> anyhow::Result<CoordinatorConfig> {
    let text = read_config(path)?;
    let (merged, applied) = crate::config_env::merge::<CoordinatorConfig>(
        &text,
        crate::config_env::COORDINATOR_PREFIX,
        std::env::vars(),
    )?;
    log_overrides(&applied);
    Ok(CoordinatorConfig::from_toml_str(&merged)?)
}

fn read_config(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {}; start from the documented example in deploy/",
            path.display()
        )
    })
}

fn log_overrides(applied: &[String]) {
    for key in applied {
        tracing::info!(%key, "setting overridden by the environment");
    }
}

/// Loads keys (generating missing ones), binds and serves until Ctrl-C or SIGTERM.
pub async fn coordinator(config: CoordinatorConfig) -> anyhow::Result<()> {
    let running = start_coordinator(&config, &config.data_dir).await?;
    let http = proofrack_coordinator::http::start_from_config(&config.http, running.shared.clone())
        .await?;
    tracing::info!(addr = %running.local_addr, "coordinator ready; Ctrl-C or SIGTERM stops it");
    tokio::select! {
        _ = crate::signals::shutdown_requested() => {}
        why = running.store_failed() => {
            anyhow::bail!("stopping: the state store failed ({why}); nothing further can be acknowledged");
        }
    }
    tracing::info!("shutting down");
    if let Some(http) = http {
        http.shutdown().await;
    }
    running.shutdown().await;
    Ok(())
}

/// The revocation list lives beside the CA certificate (`certs revoke` writes it there).
pub async fn start_coordinator(
    config: &CoordinatorConfig,
    data_dir: &Path,
) -> anyhow::Result<server::RunningServer> {
    let tls = TlsMaterial::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)?;
    let revoked = config
        .tls
        .ca_cert
        .parent()
        .unwrap_or(Path::new("."))
        .join("revoked.json");
    let revocation = RevocationHandle::load(&revoked)
        .with_context(|| format!("loading the revocation list {}", revoked.display()))?;
    let keys_dir = data_dir.join("keys");
    let names = config.circuits.clone();
    let registry =
        tokio::task::spawn_blocking(move || CircuitRegistry::load_or_generate(&keys_dir, &names))
            .await??;
    let running = server::start(ServerSettings {
        listen: config.listen,
        tls,
        revocation,
        policy: config.policy.clone(),
        delegations: config.delegations(),
        registry,
        clock: Arc::new(SystemClock),
        telemetry_interval_ms: config.telemetry_interval_ms,
        state: server::StateLocation::Dir(data_dir.to_path_buf()),
        limits: config.limits.clone(),
    })
    .await?;
    if let Some(chain) = &config.chain {
        let attached = match chain.resolve(data_dir) {
            Ok(settings) => {
                proofrack_coordinator::chain::ChainStakeSource::attach(
                    running.shared.clone(),
                    settings,
                )
                .await
            }
            Err(e) => Err(e),
        };
        match attached {
            // Follows the chain for as long as the process serves.
            Ok(source) => source.keep_running(),
            Err(e) => {
                running.shutdown().await;
                return Err(e.into());
            }
        }
    }
    Ok(running)
}

/// Reads `agent.toml`, applies `PROOFRACK_AGENT_*` environment overrides and validates.
pub fn load_agent_config(path: &Path) -> anyhow::Result<AgentConfig> {
    let text = read_config(path)?;
    let (merged, applied) = crate::config_env::merge::<AgentConfig>(
        &text,
        crate::config_env::AGENT_PREFIX,
        std::env::vars(),
    )?;
    log_overrides(&applied);
    Ok(AgentConfig::from_toml_str(&merged)?)
}

/// Picks the backend, calibrates it, and runs the agent until Ctrl-C or SIGTERM (then
/// drains: no new offers, accepted tasks finish and are delivered).
pub async fn agent(config: AgentConfig) -> anyhow::Result<()> {
    let prover = prepare_prover(&config).await?;
    let settings = agent_settings(&config, prover.0, prover.1)?;
    let metrics = if config.metrics.enabled {
        Some(
            proofrack_agent::metrics::serve(config.metrics.listen, settings.metrics.clone())
                .await
                .with_context(|| {
                    format!(
                        "cannot serve metrics on {}; change [metrics] listen or set enabled = false",
                        config.metrics.listen
                    )
                })?,
        )
    } else {
        None
    };
    proofrack_agent::client::run(settings, async {
        crate::signals::shutdown_requested().await;
        tracing::info!("stopping: finishing accepted tasks, then exiting");
    })
    .await?;
    if let Some(m) = metrics {
        m.shutdown().await;
    }
    Ok(())
}

/// The chosen backend and its calibration.
pub async fn prepare_prover(
    config: &AgentConfig,
) -> anyhow::Result<(Arc<Prover>, proofrack_common::telemetry::Calibration)> {
    let backend = ProverBackendImpl::select(config.backend, config.cuda_device)?;
    let info = backend.info();
    tracing::info!(backend = %info.name, "prover backend selected; calibrating");
    let host_total = TelemetryCollector::new().host_memory_bytes().0;
    let (backend, calibration) = tokio::task::spawn_blocking(move || {
        let c = backend.calibrate(host_total);
        (backend, c)
    })
    .await?;
    let calibration = calibration?;
    tracing::info!(
        msm_points_per_s = calibration.msm_g1_points_per_sec,
        ntt_elements_per_s = calibration.ntt_elements_per_sec,
        "calibrated"
    );
    Ok((Arc::new(Prover::new(backend)), calibration))
}

pub fn agent_settings(
    config: &AgentConfig,
    prover: Arc<Prover>,
    calibration: proofrack_common::telemetry::Calibration,
) -> anyhow::Result<AgentSettings> {
    let tls = TlsMaterial::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)?;
    let (coordinator, _) = crate::client_cmds::resolve(&config.coordinator)?;
    let key_cache = KeyCache::open(config.data_dir.join("keys"), KeyCacheLimits::default())?;
    let identity = tls
        .own_identity()
        .map(|i| i.identity.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let metrics = proofrack_agent::metrics::AgentMetrics::new(identity, calibration.clone());
    Ok(AgentSettings {
        coordinator,
        server_name: config.coordinator_host()?,
        tls,
        prover,
        calibration,
        key_cache,
        max_concurrent_tasks: config.max_concurrent_tasks,
        clock: Arc::new(SystemClock),
        agent_build: format!("proofrack-agent {}", env!("CARGO_PKG_VERSION")),
        metrics,
        connection: Default::default(),
    })
}
