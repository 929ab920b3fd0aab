//! `agent.toml`: where the coordinator is, this agent's certificate, where keys are cached,
//! which backend proves.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Most tasks one agent proves at once; each holds its witness and intermediate vectors in
/// memory, and on one GPU or a few CPU cores running more at once only adds memory pressure.
pub const MAX_CONCURRENT_TASKS: u32 = 16;

/// Which prover backend to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// CUDA where a driver and a GPU are found, else the CPU (one build for every box).
    #[default]
    Auto,
    Cpu,
    /// CUDA or refuse to start.
    Cuda,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "cuda" => Ok(BackendChoice::Cuda),
            other => Err(format!(
                "backend {other:?}: allowed values are auto, cpu, cuda"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentTls {
    /// The CA certificate that signed the coordinator's certificate (and this agent's).
    pub ca_cert: PathBuf,
    /// This agent's certificate: its identity is the SPIFFE URI
    /// `spiffe://<trust domain>/operator/<operator>/agent/<name>`.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for AgentTls {
    fn default() -> Self {
        AgentTls {
            ca_cert: PathBuf::from("certs/ca.pem"),
            cert: PathBuf::from("certs/agent.pem"),
            key: PathBuf::from("certs/agent.key"),
        }
    }
}

/// Every field has a default that works with a coordinator on the same machine; a rack sets
/// at least `coordinator` and the `[tls]` paths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The coordinator's address, `host:port`. The host is also the name its certificate
    /// must carry.
    pub coordinator: String,
    pub tls: AgentTls,
    /// Proving keys are cached here (content-addressed).
    pub data_dir: PathBuf,
    pub backend: BackendChoice,
    /// CUDA device ordinal when the backend is CUDA.
    pub cuda_device: usize,
    /// Tasks proven at once, 1 ..= MAX_CONCURRENT_TASKS.
    pub max_concurrent_tasks: u32,
    /// `/metrics` (GPU telemetry under DCGM exporter names).
    pub metrics: crate::metrics::MetricsConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            coordinator: "127.0.0.1:4433".into(),
            tls: AgentTls::default(),
            data_dir: PathBuf::from("proofrack-agent-data"),
            backend: BackendChoice::Auto,
            cuda_device: 0,
            max_concurrent_tasks: 1,
            metrics: crate::metrics::MetricsConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgentConfigError {
    #[error("agent.toml does not parse: {0}")]
    Parse(String),
    #[error("agent.toml: {key} = {value} is not allowed ({allowed})")]
    Invalid {
        key: &'static str,
        value: String,
        allowed: String,
    },
}

impl AgentConfig {
    pub fn from_toml_str(text: &str) -> Result<Self, AgentConfigError> {
        let c: AgentConfig =
            toml::from_str(text).map_err(|e| AgentConfigError::Parse(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), AgentConfigError> {
        if !(1..=MAX_CONCURRENT_TASKS).contains(&self.max_concurrent_tasks) {
            return Err(AgentConfigError::Invalid {
                key: "max_concurrent_tasks",
                value: self.max_concurrent_tasks.to_string(),
                allowed: format!("1 to {MAX_CONCURRENT_TASKS}"),
            });
        }
        self.coordinator_host()?;
        Ok(())
    }

    /// The host part of `coordinator`, which the coordinator's certificate must name.
    pub fn coordinator_host(&self) -> Result<String, AgentConfigError> {
        let bad = || AgentConfigError::Invalid {
            key: "coordinator",
            value: format!("{:?}", self.coordinator),
            allowed: "host:port, e.g. 10.0.0.5:4433 or coordinator.rack1:4433".into(),
        };
        let (host, port) = self.coordinator.rsplit_once(':').ok_or_else(bad)?;
        port.parse::<u16>().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(host.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> String {
        r#"
coordinator = "127.0.0.1:4433"
data_dir = "/var/lib/proofrack"
[tls]
ca_cert = "certs/ca.pem"
cert = "certs/agent.pem"
key = "certs/agent.key"
"#
        .to_string()
    }

    #[test]
    fn parses_defaults() {
        let c = AgentConfig::from_toml_str(&base()).unwrap();
        assert_eq!(c.backend, BackendChoice::Auto);
        assert_eq!(c.max_concurrent_tasks, 1);
        assert_eq!(c.coordinator_host().unwrap(), "127.0.0.1");
    }

    #[test]
    fn names_the_bad_key() {
        let e = AgentConfig::from_toml_str(&(base() + "max_concurrent_tasks = 0\n")).unwrap_err();
        assert!(e.to_string().contains("max_concurrent_tasks = 0"), "{e}");
        let e =
            AgentConfig::from_toml_str(&base().replace("127.0.0.1:4433", "nowhere")).unwrap_err();
        assert!(e.to_string().contains("coordinator"), "{e}");
        let e = AgentConfig::from_toml_str(&(base() + "backend = \"tpu\"\n")).unwrap_err();
        assert!(e.to_string().contains("tpu"), "{e}");
        let e = AgentConfig::from_toml_str(&(base() + "colour = 1\n")).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
