//! `proofrack coordinator` and `proofrack agent`: the two long-running services, configured
//! by their TOML files.

use anyhow::Context;
use proofrack_agent::{
    AgentConfig, AgentSettings, KeyCache, KeyCacheLimits, Prover, ProverBackendImpl,
    TelemetryCollector,
};
use proofrack_common::tls::TlsMaterial;
use proofrack_common::{Clock, SystemClock};
use proofrack_coordinator::{start_server, CoordinatorConfig, ServerSettings};
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

/// `proofrack coordinator --print-config`: the configuration in effect as TOML. With no file
/// at `path`, the defaults (with any environment overrides), so that they can be seen
/// before a file exists; stderr says which it is.
pub fn print_coordinator_config(path: &Path) -> anyhow::Result<String> {
    let c = if path.exists() {
        load_coordinator_config(path)?
    } else {
        let (merged, applied) = crate::config_env::merge::<CoordinatorConfig>(
            "",
            crate::config_env::COORDINATOR_PREFIX,
            std::env::vars(),
        )?;
        log_overrides(&applied);
        eprintln!("{} does not exist: these are the defaults", path.display());
        CoordinatorConfig::from_toml_str(&merged)?
    };
    toml::to_string(&c).context("printing the configuration")
}

/// `proofrack agent --print-config`, as [`print_coordinator_config`].
pub fn print_agent_config(path: &Path) -> anyhow::Result<String> {
    let c = if path.exists() {
        load_agent_config(path)?
    } else {
        let (merged, applied) = crate::config_env::merge::<AgentConfig>(
            "",
            crate::config_env::AGENT_PREFIX,
            std::env::vars(),
        )?;
        log_overrides(&applied);
        eprintln!("{} does not exist: these are the defaults", path.display());
        AgentConfig::from_toml_str(&merged)?
    };
    toml::to_string(&c).context("printing the configuration")
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
    let running = start_coordinator(&config).await?;
    let http =
        proofrack_coordinator::start_http_from_config(&config.http, running.shared.clone()).await?;
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

/// Loads the keys (generating missing ones), binds, and follows the chain when the
/// configuration names one: `proofrack coordinator` without its signal handling and HTTP.
pub async fn start_coordinator(
    config: &CoordinatorConfig,
) -> anyhow::Result<proofrack_coordinator::RunningServer> {
    let running = start_server(ServerSettings::from_config(config).await?).await?;
    if let Some(chain) = &config.chain {
        let attached = match chain.resolve(&config.data_dir) {
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

/// Checks the certificates, picks the backend, calibrates it, and runs the agent until
/// Ctrl-C or SIGTERM (then drains: no new offers, accepted tasks finish and are delivered).
pub async fn agent(config: AgentConfig) -> anyhow::Result<()> {
    // Certificates first: a wrong path or an expired certificate should not wait for a
    // calibration of several seconds to be reported.
    check_agent_certificate(&config, SystemClock.now())?;
    let prover = prepare_prover(&config).await?;
    let settings = agent_settings(&config, prover.0, prover.1)?;
    let metrics = if config.metrics.enabled {
        Some(
            proofrack_agent::serve_metrics(config.metrics.listen, settings.metrics.clone())
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
    proofrack_agent::run(settings, async {
        crate::signals::shutdown_requested().await;
        tracing::info!("stopping: finishing accepted tasks, then exiting");
    })
    .await?;
    if let Some(m) = metrics {
        m.shutdown().await;
    }
    Ok(())
}

/// The agent's certificate, key and CA load, the certificate is an agent's, and it has not
/// expired. (Whether it is revoked only the coordinator knows: it refuses the handshake.)
pub fn check_agent_certificate(
    config: &AgentConfig,
    now: proofrack_common::UnixMillis,
) -> anyhow::Result<proofrack_common::identity::PeerCertInfo> {
    let tls = TlsMaterial::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)
        .context("the agent's certificates ([tls] in agent.toml)")?;
    let me = tls
        .own_identity()
        .with_context(|| format!("reading {}", config.tls.cert.display()))?;
    if !matches!(
        me.identity,
        proofrack_common::identity::Identity::Agent { .. }
    ) {
        anyhow::bail!(
            "{} is the certificate of {}, not of an agent; issue one with `proofrack certs issue agent --operator OP --name NAME`",
            config.tls.cert.display(),
            me.identity
        );
    }
    if me.not_after <= now {
        anyhow::bail!(
            "{} ({}) expired {}; renew it with `proofrack certs renew agent ...` on the CA host",
            config.tls.cert.display(),
            me.identity,
            proofrack_common::timefmt::when(me.not_after, now)
        );
    }
    tracing::info!(identity = %me.identity, serial = %me.serial_hex, expires = %proofrack_common::timefmt::when(me.not_after, now), "agent certificate");
    Ok(me)
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
    let metrics = proofrack_agent::AgentMetrics::new(identity, calibration.clone());
    Ok(AgentSettings {
        coordinator,
        server_name: config.coordinator_host()?,
        tls,
        identity_files: Some(proofrack_agent::IdentityFiles {
            ca_cert: config.tls.ca_cert.clone(),
            cert: config.tls.cert.clone(),
            key: config.tls.key.clone(),
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_config_without_a_file_prints_the_defaults() {
        let missing = Path::new("/nonexistent/proofrack/coordinator.toml");
        let text = print_coordinator_config(missing).unwrap();
        let c = CoordinatorConfig::from_toml_str(&text).unwrap();
        assert_eq!(c, CoordinatorConfig::default());
        let text = print_agent_config(Path::new("/nonexistent/proofrack/agent.toml")).unwrap();
        assert_eq!(
            AgentConfig::from_toml_str(&text).unwrap(),
            AgentConfig::default()
        );
        // A file that exists but does not parse is still an error, not the defaults.
        let dir = std::env::temp_dir().join(format!("proofrack-print-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("coordinator.toml");
        std::fs::write(&bad, "listen = 5\n").unwrap();
        assert!(print_coordinator_config(&bad).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The agent's certificate is checked before it calibrates: another identity's or an
    /// expired one is refused at once, with what to do.
    #[test]
    fn the_agent_certificate_is_checked_first() {
        use proofrack_certs::{CertsDir, InitOptions, IssueOptions};
        use proofrack_common::identity::{Identity, TrustDomain};
        use proofrack_common::UnixMillis;
        let dir = std::env::temp_dir().join(format!("proofrack-agent-cert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let certs = CertsDir::new(&dir);
        let now = UnixMillis(1_796_292_845_337);
        let day = 86_400_000;
        certs
            .init(
                &InitOptions {
                    trust_domain: TrustDomain::new("rack1.example").unwrap(),
                    days: 365,
                    force: false,
                },
                UnixMillis(now.0 - 10 * day),
            )
            .unwrap();
        let issue = |identity: &Identity, at: UnixMillis| {
            certs
                .issue(
                    identity,
                    &IssueOptions {
                        days: 1,
                        force: true,
                    },
                    at,
                )
                .unwrap();
        };
        let config = |identity: &Identity| {
            let mut c = AgentConfig::default();
            c.tls.ca_cert = certs.ca_cert_path();
            c.tls.cert = certs.cert_path(identity);
            c.tls.key = certs.key_path(identity);
            c
        };
        let agent = Identity::agent("op-a", "gpu-01").unwrap();
        issue(&agent, now);
        assert!(check_agent_certificate(&config(&agent), now).is_ok());
        let client = Identity::client("cli").unwrap();
        issue(&client, now);
        let e = check_agent_certificate(&config(&client), now).unwrap_err();
        assert!(e.to_string().contains("not of an agent"), "{e:#}");
        issue(&agent, UnixMillis(now.0 - 5 * day));
        let e = check_agent_certificate(&config(&agent), now).unwrap_err();
        assert!(
            e.to_string().contains("expired") && e.to_string().contains("certs renew agent"),
            "{e:#}"
        );
        let mut missing = config(&agent);
        missing.tls.cert = dir.join("nope.pem");
        let e = check_agent_certificate(&missing, now).unwrap_err();
        assert!(format!("{e:#}").contains("nope.pem"), "{e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
