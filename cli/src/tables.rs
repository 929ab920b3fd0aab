//! Human-readable output: aligned tables and one-line task statuses.

use proofrack_common::protocol::{
    AgentsView, CircuitsView, LedgerView, OperatorStanding, TaskState, TaskStatusView,
};
use proofrack_common::{timefmt, UnixMillis};

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
                a.state(),
                a.backend.map_or("-".into(), |b| b.to_string()),
                a.telemetry_age_ms.map_or("-".into(), timefmt::span_ms),
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
            "STATE",
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
    // A state that keeps an agent from every task is explained once under the table.
    let notes: Vec<String> = v
        .rows
        .iter()
        .filter_map(|a| {
            let why = match a.operator_standing {
                OperatorStanding::Unknown => "its operator is not in the coordinator's ledger; add it ([[operators]] in coordinator.toml, or register it on the chain)",
                OperatorStanding::NoStake => "its operator has no stake delegated; no task can bind collateral for it",
                OperatorStanding::Staked if a.drained => "drained by its operator (`proofrack drain --undo` lets it take tasks again)",
                OperatorStanding::Staked if a.leaving => "shutting down: finishing the tasks it holds",
                OperatorStanding::Staked => return None,
            };
            Some(format!("{}: gets no new tasks: {why}\n", a.agent))
        })
        .collect();
    for n in notes {
        table.push_str(&n);
    }
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

/// `proofrack tasks`: one row per task, times relative and absolute; a last line says how to
/// see the next page when there is one.
pub fn tasks(v: &proofrack_common::protocol::TaskListView, now: UnixMillis) -> String {
    if v.rows.is_empty() {
        return match (v.more, v.next_before) {
            (true, Some(next)) => format!(
                "no tasks you may read among those looked at\nmore tasks: proofrack tasks --before {next}\n"
            ),
            _ => "no tasks\n".to_string(),
        };
    }
    let rows: Vec<Vec<String>> = v
        .rows
        .iter()
        .map(|r| {
            vec![
                r.task.to_string(),
                r.circuit.clone(),
                r.state.clone(),
                r.client.clone(),
                timefmt::when(r.submitted_at, now),
                timefmt::when(r.deadline, now),
            ]
        })
        .collect();
    let mut table = render(
        &[
            "TASK",
            "CIRCUIT",
            "STATE",
            "CLIENT",
            "SUBMITTED",
            "DEADLINE",
        ],
        &rows,
    );
    if let (true, Some(next)) = (v.more, v.next_before) {
        table.push_str(&format!("more tasks: proofrack tasks --before {next}\n"));
    }
    table
}

/// One line: `task-3 [mimc-12 collateral 40] proving on op-a/box-1 (due in 4.2 s)`.
pub fn status_line(v: &TaskStatusView, now: UnixMillis) -> String {
    let state = match &v.state {
        TaskState::Queued { reason } => format!("queued: {reason}"),
        TaskState::Offered { agent, .. } => format!("offered to {agent}"),
        TaskState::Proving { agent, due_at, .. } => {
            format!(
                "proving on {agent} (due {})",
                timefmt::relative(*due_at, now)
            )
        }
        TaskState::Verifying { agent } => format!("verifying the proof from {agent}"),
        TaskState::Reassigning {
            lost_agent,
            due_at,
            reason,
        } => format!(
            "reassigning from {lost_agent} (stake stays bound; due {}): {reason}",
            timefmt::relative(*due_at, now)
        ),
        TaskState::Verified {
            agent, proving_ms, ..
        } => {
            format!(
                "verified: proven by {agent} in {}",
                timefmt::span_ms(*proving_ms)
            )
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

/// The full record for `proofrack status`: the state, the task's times (the due time the
/// proving agent committed to beside the client's deadline, and what each means), the proof
/// once verified, and the history.
pub fn status(v: &TaskStatusView, now: UnixMillis) -> String {
    let mut out = status_line(v, now);
    out.push('\n');
    let due = match &v.state {
        TaskState::Proving { due_at, .. } | TaskState::Reassigning { due_at, .. } => Some(*due_at),
        _ => None,
    };
    if let Some(due_at) = due {
        out.push_str(&format!(
            "  due       {}\n            the time the proving agent committed to: its predicted proving time plus\n            the safety margin, never after the deadline. Missing it slashes part of\n            the collateral and the task goes to another agent while the deadline allows.\n",
            timefmt::when(due_at, now)
        ));
    }
    out.push_str(&format!(
        "  deadline  {}{}\n",
        timefmt::when(v.deadline, now),
        if due.is_some() {
            "\n            the client's limit for a verified proof; the time between the due time and\n            the deadline is kept for a second attempt."
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "  submitted {} by {}\n",
        timefmt::when(v.submitted, now),
        v.client
    ));
    if let TaskState::Verified {
        proof,
        public_outputs,
        ..
    } = &v.state
    {
        out.push_str(&format!("proof: {}\n", hex::encode(proof)));
        for (i, p) in public_outputs.iter().enumerate() {
            out.push_str(&format!(
                "public[{i}]: {}\n",
                crate::json_out::field_decimal(p)
            ));
        }
    }
    out.push_str("history:\n");
    for h in &v.history {
        out.push_str(&format!(
            "  {:>12}  {}\n",
            timefmt::relative(h.at, now),
            h.what
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_list_shows_times_for_people_and_the_next_page() {
        use proofrack_common::protocol::{TaskListRow, TaskListView};
        let now = UnixMillis(1_796_281_054_337);
        let row = |id: u64, state: &str| TaskListRow {
            task: proofrack_common::TaskId(id),
            circuit: "mimc-12".into(),
            client: "cli".into(),
            state: state.into(),
            submitted_at: UnixMillis(now.0 - 4_000),
            deadline: UnixMillis(now.0 + 26_000),
        };
        let v = TaskListView {
            rows: vec![row(9, "proving"), row(8, "verified")],
            more: true,
            next_before: Some(proofrack_common::TaskId(8)),
        };
        let t = tasks(&v, now);
        assert!(t.contains("task-9") && t.contains("proving"), "{t}");
        assert!(
            t.contains("4 s ago, at ") && t.contains("in 26 s, at "),
            "{t}"
        );
        assert!(!t.contains("1796281"), "raw epoch milliseconds: {t}");
        assert!(
            t.ends_with("more tasks: proofrack tasks --before task-8\n"),
            "{t}"
        );
        let none = TaskListView {
            rows: vec![],
            more: false,
            next_before: None,
        };
        assert_eq!(tasks(&none, now), "no tasks\n");
        // The coordinator stopped looking before it found a row: the next page is named.
        let empty_page = TaskListView {
            rows: vec![],
            more: true,
            next_before: Some(proofrack_common::TaskId(4_000)),
        };
        assert!(
            tasks(&empty_page, now).ends_with("more tasks: proofrack tasks --before task-4000\n"),
            "{}",
            tasks(&empty_page, now)
        );
    }

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
    fn status_explains_the_due_time_beside_the_deadline() {
        use proofrack_common::protocol::HistoryLine;
        use proofrack_common::{KeyId, StakeUnits, TaskId};
        let now = UnixMillis(1_796_292_815_337);
        let v = TaskStatusView {
            task: TaskId(3),
            client: "client/cli".into(),
            request_id: 1,
            circuit: "mimc-12".into(),
            key: KeyId([1; 32]),
            state: TaskState::Proving {
                agent: "op-a/box-1".parse().unwrap(),
                predicted_done_at: UnixMillis(now.0 + 300),
                due_at: UnixMillis(now.0 + 1_300),
            },
            collateral: StakeUnits(40),
            deadline: UnixMillis(now.0 + 30_000),
            submitted: UnixMillis(now.0 - 200),
            history: vec![HistoryLine {
                at: UnixMillis(now.0 - 200),
                what: "submitted".into(),
            }],
        };
        let text = status(&v, now);
        assert!(
            text.starts_with(
                "task-3 [mimc-12 collateral 40] proving on op-a/box-1 (due in 1.3 s)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  due       in 1.3 s, at 2026-12-03 10:13:36 UTC\n"),
            "{text}"
        );
        assert!(
            text.contains("the time the proving agent committed to"),
            "{text}"
        );
        assert!(
            text.contains("  deadline  in 30 s, at 2026-12-03 10:14:05 UTC\n"),
            "{text}"
        );
        assert!(text.contains("200 ms ago  submitted"), "{text}");
        assert!(
            !text.contains("1796292"),
            "no raw epoch milliseconds: {text}"
        );
    }

    #[test]
    fn units_read_well() {
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(rate(2_500_000), "2.5M/s");
        assert_eq!(rate(999), "999/s");
    }
}
