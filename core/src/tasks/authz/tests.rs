//! The table row by row: every identity kind against every action, with the refusals' exact
//! words.

use super::*;

fn op(s: &str) -> OperatorId {
    OperatorId::new(s).unwrap()
}

struct Who {
    agent: Identity,
    alice: Identity,
    bob: Identity,
    ops_a: Identity,
    ops_b: Identity,
    root: Identity,
}

fn who() -> Who {
    Who {
        agent: Identity::agent("op-a", "gpu-1").unwrap(),
        alice: Identity::client("alice").unwrap(),
        bob: Identity::client("bob").unwrap(),
        ops_a: Identity::operator_admin("op-a", "ops").unwrap(),
        ops_b: Identity::operator_admin("op-b", "ops").unwrap(),
        root: Identity::admin("root").unwrap(),
    }
}

const COORD: StakeAuthority = StakeAuthority::Coordinator;

fn allowed(w: &Identity, a: Action, o: Owner<'_>) -> bool {
    authorize(&COORD, w, a, o).is_ok()
}

fn refusal(w: &Identity, a: Action, o: Owner<'_>) -> String {
    authorize(&COORD, w, a, o).expect_err("refused").to_string()
}

#[test]
fn only_agents_open_agent_streams_and_agents_open_no_client_requests() {
    let w = who();
    for kind in [
        StreamKind::Control,
        StreamKind::FetchKey,
        StreamKind::DeliverProof,
        StreamKind::FetchInput,
    ] {
        assert!(allowed(&w.agent, Action::OpenStream(kind), Owner::Nobody));
        for other in [&w.alice, &w.ops_a, &w.root] {
            assert!(!allowed(other, Action::OpenStream(kind), Owner::Nobody));
        }
    }
    assert_eq!(
        refusal(&w.alice, Action::OpenStream(StreamKind::Control), Owner::Nobody),
        "client/alice may not open an agent control stream: that needs an agent certificate (operator/OPERATOR/agent/NAME)"
    );
    for asker in [&w.alice, &w.ops_a, &w.root] {
        assert!(allowed(
            asker,
            Action::OpenStream(StreamKind::ClientRequest),
            Owner::Nobody
        ));
    }
    assert_eq!(
        refusal(
            &w.agent,
            Action::OpenStream(StreamKind::ClientRequest),
            Owner::Nobody
        ),
        "operator/op-a/agent/gpu-1 may not open a client request: that needs a requester client certificate (client/NAME)"
    );
}

#[test]
fn requesters_submit_and_read_only_their_own_tasks() {
    let w = who();
    assert!(allowed(&w.alice, Action::Submit, Owner::Nobody));
    for other in [&w.ops_a, &w.root, &w.agent] {
        assert_eq!(
            refusal(other, Action::Submit, Owner::Nobody),
            format!("{other} may not submit tasks: that needs a requester client certificate (client/NAME)")
        );
    }
    let ran_on: BTreeSet<OperatorId> = [op("op-a")].into();
    let alices = Owner::Task {
        client: "alice",
        operators: &ran_on,
    };
    assert!(allowed(&w.alice, Action::ReadTask, alices));
    assert!(!allowed(&w.bob, Action::ReadTask, alices));
    assert!(
        allowed(&w.ops_a, Action::ReadTask, alices),
        "op-a's agents ran it"
    );
    assert!(!allowed(&w.ops_b, Action::ReadTask, alices));
    assert!(allowed(&w.root, Action::ReadTask, alices));
    assert!(!allowed(&w.agent, Action::ReadTask, alices));
    assert_eq!(
        refusal(&w.bob, Action::ReadTask, alices),
        "client/bob may not read this task: that needs the client that submitted it, an operator admin whose agents ran it, or a deployment admin"
    );
    // An admin's key can never be a client's name.
    assert_eq!(requester_key(&w.alice), "alice");
    assert_eq!(requester_key(&w.ops_a), "operator/op-a/admin/ops");
}

#[test]
fn the_ledger_circuits_and_agents_tables_are_public_hardware_is_not() {
    let w = who();
    for asker in [&w.alice, &w.ops_a, &w.root] {
        for a in [
            Action::ReadLedger,
            Action::ListCircuits,
            Action::ListAgents,
            Action::ListTasks,
        ] {
            assert!(allowed(asker, a, Owner::Nobody), "{asker} {a:?}");
        }
    }
    // Agents list nothing: they are not clients.
    assert!(!allowed(&w.agent, Action::ListTasks, Owner::Nobody));
    let a = op("op-a");
    assert!(allowed(
        &w.ops_a,
        Action::ReadAgentHardware,
        Owner::Operator(&a)
    ));
    assert!(allowed(
        &w.root,
        Action::ReadAgentHardware,
        Owner::Operator(&a)
    ));
    assert!(!allowed(
        &w.ops_b,
        Action::ReadAgentHardware,
        Owner::Operator(&a)
    ));
    assert_eq!(
        refusal(&w.alice, Action::ReadAgentHardware, Owner::Operator(&a)),
        "client/alice may not read the hardware details of the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
}

#[test]
fn operator_admins_drain_withdraw_and_reset_only_their_own() {
    let w = who();
    let a = op("op-a");
    let b = op("op-b");
    for action in [
        Action::Drain,
        Action::Undrain,
        Action::Withdraw,
        Action::ResetBreaker,
    ] {
        assert!(allowed(&w.ops_a, action, Owner::Operator(&a)), "{action:?}");
        for other in [&w.ops_b, &w.alice, &w.root, &w.agent] {
            assert!(
                !allowed(other, action, Owner::Operator(&a)),
                "{other} {action:?}"
            );
        }
        assert!(action.is_audited());
    }
    assert_eq!(
        refusal(&w.ops_a, Action::Withdraw, Owner::Operator(&b)),
        "operator/op-a/admin/ops may not withdraw the stake of op-b: that needs an operator admin of op-b (operator/op-b/admin/NAME)"
    );
    assert_eq!(
        refusal(&w.alice, Action::Drain, Owner::Operator(&a)),
        "client/alice may not drain the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert_eq!(
        refusal(&w.root, Action::ResetBreaker, Owner::Operator(&a)),
        "admin/root may not reset the circuit breakers of the agents of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
}

#[test]
fn in_chain_mode_a_withdrawal_is_the_contracts_business() {
    let w = who();
    let a = op("op-a");
    let chain = StakeAuthority::Chain {
        registry: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
    };
    let r = authorize(&chain, &w.ops_a, Action::Withdraw, Owner::Operator(&a)).unwrap_err();
    assert_eq!(r.role_needed, Role::StakeSource);
    let text = r.to_string();
    assert!(
        text.starts_with("operator/op-a/admin/ops may not withdraw the stake of op-a: stake comes from the chain")
            && text.contains("requestWithdrawal(operator, amount) on 0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        "{text}"
    );
    // The role is still checked first: a stranger learns nothing about the stake source.
    let r = authorize(&chain, &w.alice, Action::Withdraw, Owner::Operator(&a)).unwrap_err();
    assert_eq!(r.role_needed, Role::OperatorAdmin(Some(a.clone())));
    // Drains are the coordinator's in either mode.
    assert!(authorize(&chain, &w.ops_a, Action::Drain, Owner::Operator(&a)).is_ok());
}

#[test]
fn deployment_admins_register_circuits_and_read_everything() {
    let w = who();
    for action in [Action::RegisterCircuit, Action::UnregisterCircuit] {
        assert!(allowed(&w.root, action, Owner::Deployment));
        assert!(action.is_audited());
        for other in [&w.alice, &w.ops_a, &w.agent] {
            assert!(!allowed(other, action, Owner::Deployment));
        }
    }
    assert_eq!(
        refusal(&w.alice, Action::RegisterCircuit, Owner::Deployment),
        "client/alice may not register circuits: that needs a deployment admin (admin/NAME)"
    );
    let a = op("op-a");
    assert!(allowed(&w.root, Action::ReadAudit, Owner::Deployment));
    assert!(allowed(&w.root, Action::ReadAudit, Owner::Operator(&a)));
    assert!(allowed(&w.ops_a, Action::ReadAudit, Owner::Operator(&a)));
    assert_eq!(
        refusal(&w.ops_a, Action::ReadAudit, Owner::Deployment),
        "operator/op-a/admin/ops may not read the whole audit log: that needs a deployment admin (admin/NAME)"
    );
    assert_eq!(
        refusal(&w.ops_b, Action::ReadAudit, Owner::Operator(&a)),
        "operator/op-b/admin/ops may not read the audit log of op-a: that needs an operator admin of op-a (operator/op-a/admin/NAME)"
    );
    assert!(!allowed(&w.alice, Action::ReadAudit, Owner::Operator(&a)));
    for read in [Action::ReadAudit, Action::ReadTask, Action::Submit] {
        assert!(!read.is_audited());
    }
}
