//! Human-readable output: aligned tables and one-line task statuses.

use proofrack_common::protocol::{AgentsView, CircuitsView, LedgerView, TaskState, TaskStatusView};
use proofrack_common::UnixMillis;

/// Left-aligned columns separated by two spaces.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

pub fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let f = n as f64;
    if f >= GIB {
        format!("{:.1} GiB", f / GIB)
    } else {
        format!("{:.1} MiB", f / MIB)
    }
}

pub fn rate(per_sec: u64) -> String {
    let f = per_sec as f64;
    if f >= 1e9 {
        format!("{:.1}G/s", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}M/s", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1}k/s", f / 1e3)
    } else {
        format!("{per_sec}/s")
    }
}

pub fn ledger(v: &LedgerView) -> String {
    let rows: Vec<Vec<String>> = v
        .operators
        .iter()
        .map(|o| {
            vec![
                o.operator.to_string(),
                o.delegated.to_string(),
                o.active.to_string(),
                o.withdrawing.to_string(),
                o.free.to_string(),
                o.promised_to_offers.to_string(),
                o.slashed.to_string(),
                o.bound_tasks.to_string(),
            ]
        })
        .collect();
    render(
        &[
            "OPERATOR",
            "DELEGATED",
            "ACTIVE",
            "WITHDRAWING",
            "FREE",
            "OFFERED",
            "SLASHED",
            "TASKS",
        ],
        &rows,
    )
}

pub fn agents(v: &AgentsView) -> String {
    let rows: Vec<Vec<String>> = v
        .rows
        .iter()
        .map(|a| {
            vec![
                a.agent.name.to_string(),
                a.agent.operator.to_string(),
                if a.connected {
                    "up".into()
                } else {
                    "down".into()
                },
                a.backend.map_or("-".into(), |b| b.to_string()),
                a.telemetry_age_ms
                    .map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
                format!("{}/{}", a.in_flight.len(), a.max_concurrent_tasks),
                a.msm_g1_points_per_sec.map_or("-".into(), rate),
                a.ntt_elements_per_sec.map_or("-".into(), rate),
                a.compute_memory_free_bytes.map_or("-".into(), bytes),
                if a.health.is_empty() {
                    "ok".into()
                } else {
                    a.health.join("; ")
                },
                a.hardware.clone(),
            ]
        })
        .collect();
    let mut table = render(
        &[
            "AGENT",
            "OPERATOR",
            "LINK",
            "BACKEND",
            "TELEMETRY AGE",
            "TASKS",
            "MSM",
            "NTT",
            "MEM FREE",
            "HEALTH",
            "HARDWARE",
        ],
        &rows,
    );
    let known = v.agents_known.max(v.rows.len() as u64);
    if known > v.rows.len() as u64 {
        // A response lists at most MAX_VIEW_ROWS agents; say so rather than look complete.
        table.push_str(&format!(
            "{} of {known} agents listed ({} connected and reporting); the fleet page and /metrics show all\n",
            v.rows.len(),
            v.agents_reporting
        ));
    }
    table
}

pub fn circuits(v: &CircuitsView) -> String {
    let rows: Vec<Vec<String>> = v
        .circuits
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.shape.domain_size.to_string(),
                c.shape.num_variables.to_string(),
                c.num_public_inputs.to_string(),
                bytes(c.key_bytes),
                c.key.short(),
            ]
        })
        .collect();
    render(
        &[
            "CIRCUIT",
            "DOMAIN",
            "VARIABLES",
            "PUBLIC",
            "KEY SIZE",
            "KEY",
        ],
        &rows,
    )
}

/// One line: `task-3 proving on op-a/box-1 (due in 4.2 s)`.
pub fn status_line(v: &TaskStatusView, now: UnixMillis) -> String {
    let state = match &v.state {
        TaskState::Queued { reason } => format!("queued: {reason}"),
        TaskState::Offered { agent, .. } => format!("offered to {agent}"),
        TaskState::Proving { agent, due_at, .. } => {
            format!(
                "proving on {agent} (due in {:.1} s)",
                due_at.saturating_since(now).as_secs_f64()
            )
        }
        TaskState::Verifying { agent } => format!("verifying the proof from {agent}"),
        TaskState::Reassigning {
            lost_agent,
            due_at,
            reason,
        } => format!(
            "reassigning from {lost_agent} (stake stays bound; due in {:.1} s): {reason}",
            due_at.saturating_since(now).as_secs_f64()
        ),
        TaskState::Verified {
            agent, proving_ms, ..
        } => {
            format!("verified: proven by {agent} in {proving_ms} ms")
        }
        TaskState::Failed { reason, slashed } => match slashed {
            Some(s) => format!(
                "failed: {reason} ({} slashed from {})",
                s.amount, s.operator
            ),
            None => format!("failed: {reason}"),
        },
    };
    format!(
        "{} [{} collateral {}] {}",
        v.task, v.circuit, v.collateral, state
    )
}

/// The full record for `proofrack status`.
pub fn status(v: &TaskStatusView, now: UnixMillis) -> String {
    let mut out = status_line(v, now);
    out.push('\n');
    if let TaskState::Verified {
        proof,
        public_outputs,
        ..
    } = &v.state
    {
        out.push_str(&format!("proof: {}\n", hex::encode(proof)));
        for (i, p) in public_outputs.iter().enumerate() {
            let value = proofrack_kernels::field_bytes::fr_from_le_bytes(p)
                .map(|f| proofrack_kernels::circuits::fr_to_decimal(&f))
                .unwrap_or_else(|| format!("0x{} (not a field element)", hex::encode(p)));
            out.push_str(&format!("public[{i}]: {value}\n"));
        }
    }
    out.push_str("history:\n");
    for h in &v.history {
        let ago = now.saturating_since(h.at).as_secs_f64();
        out.push_str(&format!("  -{ago:>7.1}s  {}\n", h.what));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = render(
            &["A", "BB"],
            &[
                vec!["long value".into(), "x".into()],
                vec!["y".into(), "z".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A           BB");
        assert_eq!(lines[1], "long value  x");
        assert_eq!(lines[2], "y           z");
    }

    #[test]
    fn units_read_well() {
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(rate(2_500_000), "2.5M/s");
        assert_eq!(rate(999), "999/s");
    }
}
