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
use thiserror::Error;

/// Most tasks the coordinator holds unfinished at once; bounds memory (each task keeps its
/// inputs and record, a few KB; a 1,000-agent rack holding 100,000 tasks is the benchmark's
/// case, see docs/benchmarks.md) and the cost of an admission pass (queued tasks × agents).
pub const MAX_QUEUE_CAPACITY: usize = 131_072;
/// Most tasks offered to or bound to one agent at once; bounds per-agent bookkeeping and keeps
/// an agent's local queue short enough that its predictions stay meaningful (a rack of 1,000
/// agents holding 100,000 tasks needs 100 each).
pub const MAX_TASKS_PER_AGENT: u32 = 128;
/// Longest allowed duration setting (one hour): anything longer is a unit mistake (s vs ms).
pub const MAX_DURATION_SETTING_MS: u64 = 3_600_000;
/// Longest deadline a policy may allow (one day): proofs are for minutes, not weeks.
pub const MAX_DEADLINE_SETTING_MS: u64 = 86_400_000;
/// Longest withdrawal delay (30 days), the usual unbonding periods' order of magnitude.
pub const MAX_WITHDRAWAL_DELAY_MS: u64 = 30 * 86_400_000;
/// Shortest offer timeout: an agent needs at least a network round trip to answer.
pub const MIN_OFFER_TIMEOUT_MS: u64 = 100;
/// Shortest telemetry age bound: agents report about once a second.
pub const MIN_TELEMETRY_MAX_AGE_MS: u64 = 100;
/// Largest relative safety margin: 10× the predicted proving time.
pub const MAX_DEADLINE_MARGIN_PCT: u32 = 1_000;
/// Most failures in a row a breaker may tolerate: beyond that it never opens in practice.
pub const MAX_BREAKER_FAILURES: u32 = 100;
/// Shortest breaker cool-down: a second, so a tripped agent is not offered the next task at
/// once.
pub const MIN_BREAKER_COOLDOWN_MS: u64 = 1_000;
/// Range of the slow-factor limit (permille of calibrated time): 1.5× is the least a proof can
/// be off without being noise; 7× stays under the learned factor's own cap (8×), which an
/// average can only approach.
pub const BREAKER_SLOW_FACTOR_RANGE_PERMILLE: std::ops::RangeInclusive<u32> = 1_500..=7_000;
const _: () =
    assert!(*BREAKER_SLOW_FACTOR_RANGE_PERMILLE.end() < crate::tasks::MAX_SPEED_FACTOR_PERMILLE);
/// Shortest retention of request ids: a client retries a lost reply within seconds.
pub const MIN_REQUEST_RETENTION_MS: u64 = 60_000;
/// Longest retention of request ids (30 days).
pub const MAX_REQUEST_RETENTION_MS: u64 = 30 * 86_400_000;

/// Sensible range for a temperature limit in °C: below 30 nothing runs, above 120 a GPU is
/// already shutting down.
pub const TEMPERATURE_LIMIT_RANGE_C: std::ops::RangeInclusive<u32> = 30..=120;

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
    /// The chain as the stake source instead of `operators` (see `crate::chain`).
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

/// How the coordinator admits tasks, waits for agents and punishes failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Share of a task's collateral slashed when its agent delivers a proof that does not
    /// verify, in basis points (0..=10000). The rest is released.
    pub invalid_proof_slash_bps: u16,
    /// Share of a task's collateral slashed when its agent misses the due time it accepted,
    /// in basis points (0..=10000). The rest is released.
    pub deadline_miss_slash_bps: u16,
    /// How long an agent has to accept or decline an offer before it goes to the next fit,
    /// with no penalty.
    pub offer_timeout_ms: u64,
    /// Telemetry older than this excludes an agent from admission.
    pub telemetry_max_age_ms: u64,
    /// Safety margin added to a predicted finish before comparing with the deadline, as a
    /// percentage of the predicted proving time ...
    pub deadline_margin_pct: u32,
    /// ... plus this constant (network, key loading, verification).
    pub deadline_margin_ms: u64,
    /// Most unfinished tasks (waiting, offered, proving or being verified) held at once; a
    /// submission beyond it is refused with "queue full".
    pub queue_capacity: usize,
    /// A GPU at or above this temperature (°C), or at its own slowdown threshold, excludes
    /// its agent.
    pub max_temperature_c: u32,
    /// After an agent declines a task or lets its offer expire, the task is not offered to
    /// that agent again for this long (other agents may take it meanwhile).
    pub decline_backoff_ms: u64,
    /// Most tasks offered to or bound to one agent at once (its own concurrency limit
    /// applies too).
    pub max_tasks_per_agent: u32,
    /// An agent that disconnects, or whose telemetry goes stale, keeps its bound tasks this
    /// long (it may come back and deliver); after it, its tasks are handed to another agent
    /// of the same operator with the stake still bound. An unhealthy report hands them over
    /// at once.
    pub agent_grace_ms: u64,
    /// Latest deadline a submission may ask for, from the time it is submitted.
    pub max_deadline_ms: u64,
    /// A withdrawal requested with `proofrack operator withdraw` is paid out after this
    /// delay. Must exceed `max_deadline_ms`, so stake that backs a task never leaves before
    /// the task ends.
    pub withdrawal_delay_ms: u64,
    /// An agent's circuit breaker opens after this many failures in a row (missed due times,
    /// invalid proofs, tasks given up; a verified proof ends the streak): no new offers for
    /// `breaker_cooldown_ms`.
    pub breaker_failures: u32,
    /// How long an open circuit breaker keeps its agent from new offers. After it the breaker
    /// closes on probation (one more failure opens it again); an operator admin can close it
    /// earlier with `proofrack breaker reset`.
    pub breaker_cooldown_ms: u64,
    /// A verified proof that leaves the agent's learned speed factor (actual over calibrated
    /// proving time, permille, a moving average) at or above this opens its breaker: its
    /// calibration cannot be trusted.
    pub breaker_slow_factor_permille: u32,
    /// Most unfinished tasks (waiting, offered, proving or being verified) one client may
    /// hold at once: one client cannot take more than this share of `queue_capacity`. A
    /// submission beyond it is refused with the client's count and this limit.
    pub max_unfinished_per_client: usize,
    /// Per-client exceptions to `max_unfinished_per_client`, by the name in the client's
    /// certificate (`client/NAME`), e.g. a batch service trusted with more of the queue.
    pub client_unfinished_caps: BTreeMap<String, usize>,
    /// How long the coordinator remembers a request id, so that a retried submission or
    /// operator command gets its first answer instead of acting twice: replies to operator
    /// commands, and finished tasks (with their results and request ids), are forgotten this
    /// long after they were answered or finished (or earlier, past their count limits).
    pub request_retention_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            invalid_proof_slash_bps: 5_000,
            deadline_miss_slash_bps: 1_000,
            offer_timeout_ms: 5_000,
            telemetry_max_age_ms: 10_000,
            deadline_margin_pct: 20,
            deadline_margin_ms: 1_000,
            queue_capacity: 1_024,
            max_temperature_c: 85,
            decline_backoff_ms: 30_000,
            max_tasks_per_agent: 4,
            agent_grace_ms: 15_000,
            max_deadline_ms: 600_000,
            withdrawal_delay_ms: 900_000,
            breaker_failures: 3,
            breaker_cooldown_ms: 600_000,
            breaker_slow_factor_permille: 4_000,
            max_unfinished_per_client: 256,
            client_unfinished_caps: BTreeMap::new(),
            request_retention_ms: 86_400_000,
        }
    }
}

impl Policy {
    /// The safety margin for a task predicted to take `proving_ms`.
    pub fn deadline_margin_for(&self, proving_ms: u64) -> u64 {
        let relative = (proving_ms as u128 * self.deadline_margin_pct as u128 / 100)
            .min(u64::MAX as u128) as u64;
        relative.saturating_add(self.deadline_margin_ms)
    }

    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "policy.invalid_proof_slash_bps",
            self.invalid_proof_slash_bps as u64,
            0,
            10_000,
        )?;
        check_range(
            "policy.deadline_miss_slash_bps",
            self.deadline_miss_slash_bps as u64,
            0,
            10_000,
        )?;
        check_range(
            "policy.offer_timeout_ms",
            self.offer_timeout_ms,
            MIN_OFFER_TIMEOUT_MS,
            MAX_DURATION_SETTING_MS,
        )?;
        check_range(
            "policy.telemetry_max_age_ms",
            self.telemetry_max_age_ms,
            MIN_TELEMETRY_MAX_AGE_MS,
            MAX_DURATION_SETTING_MS,
        )?;
        check_range(
            "policy.deadline_margin_pct",
            self.deadline_margin_pct as u64,
            0,
            MAX_DEADLINE_MARGIN_PCT as u64,
        )?;
        check_range(
            "policy.deadline_margin_ms",
            self.deadline_margin_ms,
            0,
            MAX_DURATION_SETTING_MS,
        )?;
        check_range(
            "policy.queue_capacity",
            self.queue_capacity as u64,
            1,
            MAX_QUEUE_CAPACITY as u64,
        )?;
        check_range(
            "policy.max_temperature_c",
            self.max_temperature_c as u64,
            *TEMPERATURE_LIMIT_RANGE_C.start() as u64,
            *TEMPERATURE_LIMIT_RANGE_C.end() as u64,
        )?;
        check_range(
            "policy.decline_backoff_ms",
            self.decline_backoff_ms,
            0,
            MAX_DURATION_SETTING_MS,
        )?;
        check_range(
            "policy.max_tasks_per_agent",
            self.max_tasks_per_agent as u64,
            1,
            MAX_TASKS_PER_AGENT as u64,
        )?;
        check_range(
            "policy.agent_grace_ms",
            self.agent_grace_ms,
            0,
            MAX_DURATION_SETTING_MS,
        )?;
        check_range(
            "policy.max_deadline_ms",
            self.max_deadline_ms,
            1_000,
            MAX_DEADLINE_SETTING_MS,
        )?;
        check_range(
            "policy.withdrawal_delay_ms",
            self.withdrawal_delay_ms,
            self.max_deadline_ms.saturating_add(1),
            MAX_WITHDRAWAL_DELAY_MS.max(self.max_deadline_ms.saturating_add(1)),
        )?;
        check_range(
            "policy.breaker_failures",
            self.breaker_failures as u64,
            1,
            MAX_BREAKER_FAILURES as u64,
        )?;
        check_range(
            "policy.breaker_cooldown_ms",
            self.breaker_cooldown_ms,
            MIN_BREAKER_COOLDOWN_MS,
            MAX_DURATION_SETTING_MS,
        )?;
        check_range(
            "policy.breaker_slow_factor_permille",
            self.breaker_slow_factor_permille as u64,
            *BREAKER_SLOW_FACTOR_RANGE_PERMILLE.start() as u64,
            *BREAKER_SLOW_FACTOR_RANGE_PERMILLE.end() as u64,
        )?;
        check_range(
            "policy.max_unfinished_per_client",
            self.max_unfinished_per_client as u64,
            1,
            MAX_QUEUE_CAPACITY as u64,
        )?;
        for (client, cap) in &self.client_unfinished_caps {
            if let Err(e) = proofrack_common::validate_name("client", client) {
                return Err(ConfigError::Invalid {
                    key: format!("policy.client_unfinished_caps.{client:?}"),
                    value: cap.to_string(),
                    allowed: e,
                });
            }
            check_range(
                &format!("policy.client_unfinished_caps.{client}"),
                *cap as u64,
                1,
                MAX_QUEUE_CAPACITY as u64,
            )?;
        }
        check_range(
            "policy.request_retention_ms",
            self.request_retention_ms,
            MIN_REQUEST_RETENTION_MS,
            MAX_REQUEST_RETENTION_MS,
        )?;
        Ok(())
    }

    /// Most unfinished tasks `client` may hold (its exception, or the default share).
    pub fn unfinished_cap_of(&self, client: &str) -> usize {
        self.client_unfinished_caps
            .get(client)
            .copied()
            .unwrap_or(self.max_unfinished_per_client)
    }
}

pub(crate) fn check_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            allowed: format!("allowed: {min} to {max}"),
        })
    }
}

/// Why `coordinator.toml` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("coordinator.toml does not parse: {0}")]
    Parse(String),
    #[error("coordinator.toml: {key} = {value} is not allowed ({allowed})")]
    Invalid {
        key: String,
        value: String,
        allowed: String,
    },
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
