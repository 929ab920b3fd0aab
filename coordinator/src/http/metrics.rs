//! `/metrics` of the coordinator: stake per operator, tasks by state, admission decisions by
//! reason, assignment latency, proof verification time, connected agents. Read from the core
//! in one short lock at scrape time; nothing is sampled in between.

use crate::server::Shared;
use proofrack_common::metrics::{Exposition, Kind};

/// Reads one stake figure of an operator's row.
type StakeField = fn(&crate::tasks::OperatorRow) -> u128;

/// Renders the exposition.
pub fn render(shared: &Shared) -> String {
    let (ledger, states, stats, agents_known) = shared.read(|core, _| {
        (
            core.ledger_rows(),
            core.task_state_counts(),
            core.admission_stats().clone(),
            core.agents_tracked(),
        )
    });
    let verification = shared.verification_time();
    let mut e = Exposition::new();

    let stake: [(&str, &str, StakeField); 6] = [
        (
            "delegated",
            "Stake delegated to the operator, in base units.",
            |r| r.delegated.get(),
        ),
        (
            "active",
            "Stake bound to accepted tasks, in base units.",
            |r| r.active.get(),
        ),
        (
            "free",
            "Stake free to back new tasks (delegated - active - withdrawing), in base units.",
            |r| r.free.get(),
        ),
        (
            "promised",
            "Free stake promised to outstanding offers, in base units.",
            |r| r.promised_to_offers.get(),
        ),
        (
            "withdrawing",
            "Stake being withdrawn, in base units.",
            |r| r.withdrawing.get(),
        ),
        ("slashed", "Stake slashed so far, in base units.", |r| {
            r.slashed.get()
        }),
    ];
    for (what, help, get) in stake {
        let name = format!("proofrack_operator_stake_{what}_units");
        let kind = if what == "slashed" {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        let name = if kind == Kind::Counter {
            format!("{name}_total")
        } else {
            name
        };
        e.family(&name, help, kind);
        for r in &ledger {
            e.sample(&name, &[("operator", r.operator.as_str())], get(r));
        }
    }
    e.family(
        "proofrack_operator_bound_tasks",
        "Tasks whose collateral the operator has bound.",
        Kind::Gauge,
    );
    for r in &ledger {
        e.sample(
            "proofrack_operator_bound_tasks",
            &[("operator", r.operator.as_str())],
            r.bound_tasks,
        );
    }

    e.family(
        "proofrack_tasks",
        "Tasks the coordinator keeps, by state (finished ones until they are forgotten).",
        Kind::Gauge,
    );
    for (state, n) in &states {
        e.sample("proofrack_tasks", &[("state", state)], n);
    }

    e.family(
        "proofrack_admission_decisions_total",
        "Admission decisions: offered (reason fit) or no fit (leading reason), counted when a waiting task's reason changes.",
        Kind::Counter,
    );
    for ((outcome, reason), n) in &stats.decisions {
        e.sample(
            "proofrack_admission_decisions_total",
            &[("outcome", outcome), ("reason", reason)],
            n,
        );
    }
    e.family(
        "proofrack_assignment_latency_seconds",
        "Time from a task's submission to its first offer.",
        Kind::Histogram,
    );
    e.histogram(
        "proofrack_assignment_latency_seconds",
        &[],
        &stats.assignment_latency,
    );
    e.family(
        "proofrack_proof_verification_seconds",
        "Time to verify a delivered proof.",
        Kind::Histogram,
    );
    e.histogram("proofrack_proof_verification_seconds", &[], &verification);

    e.single(
        "proofrack_agents_connected",
        "Agents with a control stream open now.",
        Kind::Gauge,
        shared.connected_agents(),
    );
    e.single(
        "proofrack_agents_known",
        "Agents the core tracks (connected, or gone with tasks still bound).",
        Kind::Gauge,
        agents_known,
    );
    e.finish()
}
