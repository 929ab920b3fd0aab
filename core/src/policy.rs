//! The admission and slashing policy (`[policy]` of `coordinator.toml`): its settings, their
//! defaults, the limits each may take, and its validation. Pure: the coordinator's `config`
//! reads the file and keeps the file format; everything the core decides by lives here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
/// average can only approach (asserted beside that cap, in `tasks/learned.rs`: the policy
/// imports nothing from the task life cycle).
pub const BREAKER_SLOW_FACTOR_RANGE_PERMILLE: std::ops::RangeInclusive<u32> = 1_500..=7_000;
/// Shortest retention of request ids: a client retries a lost reply within seconds.
pub const MIN_REQUEST_RETENTION_MS: u64 = 60_000;
/// Longest retention of request ids (30 days).
pub const MAX_REQUEST_RETENTION_MS: u64 = 30 * 86_400_000;

/// Sensible range for a temperature limit in °C: below 30 nothing runs, above 120 a GPU is
/// already shutting down.
pub const TEMPERATURE_LIMIT_RANGE_C: std::ops::RangeInclusive<u32> = 30..=120;

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

pub fn check_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
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
