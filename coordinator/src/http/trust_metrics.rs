//! `/metrics` families about trust: refusals by the authorization table, agents held off as
//! duplicates, and circuit breakers.

use crate::handle::CoreView;
use proofrack_common::metrics::{Exposition, Kind};

pub(super) fn families(e: &mut Exposition, view: &dyn CoreView) {
    let trust = view.trust_counters();
    e.family(
        "proofrack_authz_refusals_total",
        "Requests and streams refused by the authorization table, by action.",
        Kind::Counter,
    );
    for (action, n) in trust.refusals {
        e.sample("proofrack_authz_refusals_total", &[("action", action)], n);
    }
    e.family(
        "proofrack_duplicate_agent_connections_total",
        "Connections held off because another live process held the same agent certificate's session, by operator.",
        Kind::Counter,
    );
    for (operator, n) in trust.duplicates {
        e.sample(
            "proofrack_duplicate_agent_connections_total",
            &[("operator", operator.as_str())],
            n,
        );
    }
    let (open, trips) = view.read(|core, now| {
        (
            core.open_breakers(now),
            core.admission_stats().breaker_trips,
        )
    });
    e.family(
        "proofrack_agent_breaker_open",
        "1 for each agent whose circuit breaker is open (no new offers until its cool-down ends).",
        Kind::Gauge,
    );
    for (agent, _) in &open {
        e.sample(
            "proofrack_agent_breaker_open",
            &[
                ("operator", agent.operator.as_str()),
                ("agent", agent.name.as_str()),
            ],
            1,
        );
    }
    e.single(
        "proofrack_revoked_handshakes_refused_total",
        "TLS handshakes refused because the peer's certificate is revoked.",
        Kind::Counter,
        view.revoked_handshakes_refused(),
    );
    e.single(
        "proofrack_agent_breaker_trips_total",
        "Circuit breakers opened since the coordinator started.",
        Kind::Counter,
        trips,
    );
}
