//! `/metrics` of the coordinator: stake per operator, tasks by state, admission decisions by
//! reason, assignment latency, proof verification time, connected agents. Read from the core
//! in one short lock at scrape time; nothing is sampled in between.

use crate::handle::CoreView;
use proofrack_common::metrics::{Exposition, Kind};

/// One per-operator family: name, help, kind, and the figure it reads from an operator's row.
type OperatorFamily = (
    &'static str,
    &'static str,
    Kind,
    fn(&crate::tasks::OperatorRow) -> u128,
);

/// Every per-operator family, each with one sample per operator (label `operator`).
const OPERATOR_FAMILIES: [OperatorFamily; 7] = [
    (
        "proofrack_operator_stake_delegated_units",
        "Stake delegated to the operator, in base units.",
        Kind::Gauge,
        |r| r.delegated.get(),
    ),
    (
        "proofrack_operator_stake_active_units",
        "Stake bound to accepted tasks, in base units.",
        Kind::Gauge,
        |r| r.active.get(),
    ),
    (
        "proofrack_operator_stake_free_units",
        "Stake free to back new tasks (delegated - active - withdrawing), in base units.",
        Kind::Gauge,
        |r| r.free.get(),
    ),
    (
        "proofrack_operator_stake_promised_units",
        "Free stake promised to outstanding offers, in base units.",
        Kind::Gauge,
        |r| r.promised_to_offers.get(),
    ),
    (
        "proofrack_operator_stake_withdrawing_units",
        "Stake being withdrawn, in base units.",
        Kind::Gauge,
        |r| r.withdrawing.get(),
    ),
    (
        "proofrack_operator_stake_slashed_units_total",
        "Stake slashed so far, in base units.",
        Kind::Counter,
        |r| r.slashed.get(),
    ),
    (
        "proofrack_operator_bound_tasks",
        "Tasks whose collateral the operator has bound.",
        Kind::Gauge,
        |r| r.bound_tasks as u128,
    ),
];

fn operator_families(e: &mut Exposition, ledger: &[crate::tasks::OperatorRow]) {
    for (name, help, kind, get) in OPERATOR_FAMILIES {
        e.family(name, help, kind);
        for r in ledger {
            e.sample(name, &[("operator", r.operator.as_str())], get(r));
        }
    }
}

/// Renders the exposition.
pub fn render(view: &dyn CoreView) -> String {
    let (ledger, states, stats, agents_known) = view.read(|core, _| {
        (
            core.ledger_rows(),
            core.task_state_counts(),
            core.admission_stats().clone(),
            core.agents_tracked(),
        )
    });
    let verification = view.verification_time();
    let mut e = Exposition::new();

    operator_families(&mut e, &ledger);

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
        view.connected_agents(),
    );
    e.single(
        "proofrack_agents_known",
        "Agents the core tracks (connected, or gone with tasks still bound).",
        Kind::Gauge,
        agents_known,
    );
    super::trust_metrics::families(&mut e, view);
    super::limit_metrics::limit_families(&mut e, view, &stats.refusals);
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::OperatorRow;
    use proofrack_common::{OperatorId, StakeUnits};

    #[test]
    fn every_operator_family_has_one_sample_per_operator_with_its_own_figure() {
        let row = |id: &str, base: u128| OperatorRow {
            operator: OperatorId::new(id).expect("operator id"),
            delegated: StakeUnits::new(base + 1),
            active: StakeUnits::new(base + 2),
            withdrawing: StakeUnits::new(base + 3),
            free: StakeUnits::new(base + 4),
            promised_to_offers: StakeUnits::new(base + 5),
            withdrawn: StakeUnits::new(base + 6),
            slashed: StakeUnits::new(base + 7),
            bound_tasks: base as usize + 8,
        };
        let mut e = Exposition::new();
        operator_families(&mut e, &[row("op-a", 100), row("op-b", 200)]);
        let text = e.finish();
        for (op, base) in [("op-a", 100), ("op-b", 200)] {
            for (name, offset) in [
                ("proofrack_operator_stake_delegated_units", 1),
                ("proofrack_operator_stake_active_units", 2),
                ("proofrack_operator_stake_withdrawing_units", 3),
                ("proofrack_operator_stake_free_units", 4),
                ("proofrack_operator_stake_promised_units", 5),
                ("proofrack_operator_stake_slashed_units_total", 7),
                ("proofrack_operator_bound_tasks", 8),
            ] {
                let line = format!("{name}{{operator=\"{op}\"}} {}", base + offset);
                assert!(
                    text.lines().any(|l| l == line),
                    "missing {line:?} in\n{text}"
                );
            }
        }
        assert!(text
            .lines()
            .any(|l| l == "# TYPE proofrack_operator_stake_slashed_units_total counter"));
        assert_eq!(text.matches("# TYPE").count(), OPERATOR_FAMILIES.len());
    }
}
