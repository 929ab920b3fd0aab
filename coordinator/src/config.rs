//! `coordinator.toml`: where the coordinator listens, its certificates, the operators' stake
//! (until the chain is the stake source) and the admission and slashing policy.
//!
//! Parsing a string and validating it is pure; the shell reads the file. Every field has a
//! default that works on one machine, unknown keys are refused (a typo must not silently fall
//! back to a default), and validation names the bad key and the values allowed.
//!
//! ```toml
//! listen = "0.0.0.0:4433"
//! data_dir = "proofrack-data"
//! circuits = ["mimc-10", "mimc-12", "mimc-14"]
//! telemetry_interval_ms = 2000
//!
//! [tls]
//! ca_cert = "certs/ca.pem"
//! cert = "certs/coordinator.pem"
//! key = "certs/coordinator.key"
//!
//! [[operators]]
//! id = "op-a"
//! delegated = 100          # base units; a string such as "1_000_000_000_000_000_000" for big ones
//!
//! [policy]
//! invalid_proof_slash_bps = 5000
//! deadline_miss_slash_bps = 1000
//! offer_timeout_ms = 5000
//! ```

use proofrack_common::protocol::MIN_TELEMETRY_INTERVAL_MS;
use proofrack_common::{OperatorId, StakeUnits};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use proofrack_core::policy::*;

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// UDP address the QUIC server binds, e.g. `"0.0.0.0:4433"`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The coordinator's mutual-TLS material.
    #[serde(default)]
    pub tls: TlsPaths,
    /// Operators and their delegated stake (the static stake source).
    #[serde(default)]
    pub operators: Vec<OperatorStake>,
    /// Admission, offer and slashing policy.
    #[serde(default)]
    pub policy: Policy,
    /// Where the coordinator keeps its proving keys (`<data_dir>/keys/`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Built-in circuits served (`mimc-4` .. `mimc-20`); their keys are generated on first
    /// start and reused after.
    #[serde(default = "default_circuits")]
    pub circuits: Vec<String>,
    /// How often agents report telemetry, sent to them at connect. Must leave room for at
    /// least two reports within `policy.telemetry_max_age_ms`.
    #[serde(default = "default_telemetry_interval_ms")]
    pub telemetry_interval_ms: u64,
    /// The chain as the stake source instead of `operators` (see `crate::chain`). Each
    /// section's type lives with its shell; neither `chain` nor `http` imports the server
    /// (they take `crate::handle`'s traits), so naming them here closes no cycle.
    #[serde(default)]
    pub chain: Option<crate::chain::ChainConfig>,
    /// `/metrics` and the fleet page.
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// What peers may make the coordinator hold (connections, partial frames, uploads).
    #[serde(default)]
    pub limits: crate::limits::Limits,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("proofrack-data")
}

fn default_circuits() -> Vec<String> {
    vec!["mimc-10".into(), "mimc-12".into(), "mimc-14".into()]
}

fn default_telemetry_interval_ms() -> u64 {
    2_000
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 4433))
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            listen: default_listen(),
            tls: TlsPaths::default(),
            operators: Vec::new(),
            policy: Policy::default(),
            data_dir: default_data_dir(),
            circuits: default_circuits(),
            telemetry_interval_ms: default_telemetry_interval_ms(),
            chain: None,
            http: crate::http::HttpConfig::default(),
            limits: crate::limits::Limits::default(),
        }
    }
}

/// Paths of the coordinator's certificates (PEM), relative to the working directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsPaths {
    /// The CA that signed every agent's and client's certificate; peers must chain to it.
    pub ca_cert: PathBuf,
    /// The coordinator's own certificate chain.
    pub cert: PathBuf,
    /// The coordinator's private key.
    pub key: PathBuf,
}

impl Default for TlsPaths {
    fn default() -> Self {
        TlsPaths {
            ca_cert: PathBuf::from("certs/ca.pem"),
            cert: PathBuf::from("certs/coordinator.pem"),
            key: PathBuf::from("certs/coordinator.key"),
        }
    }
}

/// One `[[operators]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorStake {
    /// The operator's id as in its agents' certificates, e.g. `"op-a"`.
    pub id: OperatorId,
    /// Delegated stake in base units: a TOML integer, or a string for amounts above 2^63
    /// (underscores allowed). Zero registers the operator with no stake.
    #[serde(deserialize_with = "stake_amount")]
    pub delegated: StakeUnits,
}

/// Accepts a non-negative TOML integer or a decimal string (TOML integers are i64).
fn stake_amount<'de, D: Deserializer<'de>>(d: D) -> Result<StakeUnits, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(i) => u128::try_from(i).map(StakeUnits).map_err(|_| {
            serde::de::Error::custom(format!("stake {i} is negative; use base units >= 0"))
        }),
        Raw::Text(s) => s.parse::<StakeUnits>().map_err(serde::de::Error::custom),
    }
}

impl CoordinatorConfig {
    /// Parses and validates the text of a `coordinator.toml`.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: CoordinatorConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the policy, the limits and that each operator appears once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate()?;
        self.limits.validate()?;
        check_range(
            "telemetry_interval_ms",
            self.telemetry_interval_ms,
            MIN_TELEMETRY_INTERVAL_MS,
            (self.policy.telemetry_max_age_ms / 2).max(MIN_TELEMETRY_INTERVAL_MS),
        )?;
        for (i, name) in self.circuits.iter().enumerate() {
            if let Err(e) = proofrack_kernels::circuits::circuit_by_name(name) {
                return Err(ConfigError::Invalid {
                    key: format!("circuits[{i}]"),
                    value: format!("{name:?}"),
                    allowed: e.to_string(),
                });
            }
        }
        if self.chain.is_some() && !self.operators.is_empty() {
            return Err(ConfigError::Invalid {
                key: "operators".into(),
                value: format!("{} entries", self.operators.len()),
                allowed: "none when [chain] is set: the chain is then the only stake source; \
                          remove [[operators]] or [chain]"
                    .into(),
            });
        }
        let mut seen: BTreeMap<&OperatorId, usize> = BTreeMap::new();
        for (i, op) in self.operators.iter().enumerate() {
            if let Some(first) = seen.insert(&op.id, i) {
                return Err(ConfigError::Invalid {
                    key: format!("operators[{i}].id"),
                    value: format!("{:?}", op.id.as_str()),
                    allowed: format!(
                        "each operator once; it already appears as operators[{first}]"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The operators' stake as (operator, delegated) pairs, for a
    /// [`StaticStakeSource`](crate::ledger::source::StaticStakeSource).
    pub fn delegations(&self) -> Vec<(OperatorId, StakeUnits)> {
        self.operators
            .iter()
            .map(|o| (o.id.clone(), o.delegated))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_working_defaults() {
        let c = CoordinatorConfig::from_toml_str("").unwrap();
        assert_eq!(c, CoordinatorConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn full_file_parses() {
        let c = CoordinatorConfig::from_toml_str(
            r#"
            listen = "127.0.0.1:5000"
            [tls]
            ca_cert = "a.pem"
            cert = "b.pem"
            key = "c.key"
            [[operators]]
            id = "op-a"
            delegated = 100
            [[operators]]
            id = "op-b"
            delegated = "340_282_366_920_938_463_463_374_607_431_768_211_455"
            [policy]
            invalid_proof_slash_bps = 10000
            deadline_miss_slash_bps = 0
            offer_timeout_ms = 2000
            queue_capacity = 8
            "#,
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.tls.key, PathBuf::from("c.key"));
        assert_eq!(c.operators[0].delegated, StakeUnits(100));
        assert_eq!(c.operators[1].delegated, StakeUnits(u128::MAX));
        assert_eq!(c.policy.invalid_proof_slash_bps, 10_000);
        assert_eq!(c.policy.queue_capacity, 8);
        assert_eq!(
            c.policy.telemetry_max_age_ms,
            Policy::default().telemetry_max_age_ms
        );
        assert_eq!(c.delegations().len(), 2);
    }

    #[test]
    fn out_of_range_values_name_the_key_and_the_allowed_range() {
        let err = CoordinatorConfig::from_toml_str("[policy]\ninvalid_proof_slash_bps = 12000")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "coordinator.toml: policy.invalid_proof_slash_bps = 12000 is not allowed (allowed: 0 to 10000)"
        );
        let err = CoordinatorConfig::from_toml_str("[policy]\nqueue_capacity = 0").unwrap_err();
        assert!(
            err.to_string().contains("policy.queue_capacity = 0"),
            "{err}"
        );
        let err =
            CoordinatorConfig::from_toml_str("[policy]\nmax_temperature_c = 200").unwrap_err();
        assert!(err.to_string().contains("allowed: 30 to 120"), "{err}");
        for (key, bad, allowed) in [
            ("breaker_failures", "0", "allowed: 1 to 100"),
            ("breaker_cooldown_ms", "10", "allowed: 1000 to 3600000"),
            (
                "breaker_slow_factor_permille",
                "9000",
                "allowed: 1500 to 7000",
            ),
        ] {
            let err = CoordinatorConfig::from_toml_str(&format!("[policy]\n{key} = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("policy.{key} = {bad}")) && err.contains(allowed),
                "{err}"
            );
        }
    }

    #[test]
    fn typos_bad_names_negative_stake_and_duplicates_are_refused() {
        let err = CoordinatorConfig::from_toml_str("[policy]\noffer_timeout = 5").unwrap_err();
        assert!(err.to_string().contains("offer_timeout"), "{err}");
        let err = CoordinatorConfig::from_toml_str("[[operators]]\nid = \"Op A\"\ndelegated = 1")
            .unwrap_err();
        assert!(err.to_string().contains("operator name"), "{err}");
        let err = CoordinatorConfig::from_toml_str("[[operators]]\nid = \"op-a\"\ndelegated = -1")
            .unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        let err =
            CoordinatorConfig::from_toml_str("[[operators]]\nid = \"op-a\"\ndelegated = \"1.5\"")
                .unwrap_err();
        assert!(
            err.to_string().contains("not a non-negative integer"),
            "{err}"
        );
        let err = CoordinatorConfig::from_toml_str(
            "[[operators]]\nid = \"op-a\"\ndelegated = 1\n[[operators]]\nid = \"op-a\"\ndelegated = 2",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "coordinator.toml: operators[1].id = \"op-a\" is not allowed (each operator once; it already appears as operators[0])"
        );
    }

    #[test]
    fn margin_combines_percentage_and_constant() {
        let p = Policy {
            deadline_margin_pct: 50,
            deadline_margin_ms: 100,
            ..Policy::default()
        };
        assert_eq!(p.deadline_margin_for(1_000), 600);
        assert_eq!(p.deadline_margin_for(u64::MAX), u64::MAX / 2 + 100);
        let wide = Policy {
            deadline_margin_pct: 200,
            ..p
        };
        assert_eq!(
            wide.deadline_margin_for(u64::MAX),
            u64::MAX,
            "saturates instead of overflowing"
        );
    }
}
