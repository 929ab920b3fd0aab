//! A deployment admin unregisters a circom circuit: refused while an unfinished task uses it
//! (the core decides, and records the attempt in the audit log in the same commit), then
//! taken out of the registry and its files removed, so a restart does not bring it back.
//! Built-in circuits come from `coordinator.toml` and are removed there.

use super::circom_session::REGISTERING;
use super::shared::Shared;
use crate::circom;
use crate::tasks::AdminReply;
use proofrack_common::identity::Identity;
use proofrack_common::protocol::AuditOutcome;
use proofrack_kernels::circuits::circuit_by_name;

pub(super) async fn unregister(shared: &Shared, who: &Identity, name: &str) -> AdminReply {
    let _one_at_a_time = REGISTERING.lock().await;
    let action = format!("unregister circuit {name}");
    let builtin = circuit_by_name(name).is_ok();
    let result = shared
        .apply(|core, now| {
            let result = if builtin {
                Err(format!(
                    "{name} is a built-in circuit from coordinator.toml's `circuits`; remove it there and restart the coordinator"
                ))
            } else {
                core.unregister_circuit(name)
                    .map(|()| {
                        format!("circuit {name} unregistered; submissions for it are refused from now on")
                    })
                    .map_err(|e| e.to_string())
            };
            let (outcome, message) = match &result {
                Ok(m) => (AuditOutcome::Done, m.clone()),
                Err(m) => (AuditOutcome::Failed, m.clone()),
            };
            core.record_audit(now, who, action, None, outcome, message);
            result
        })
        .await;
    let message = match result {
        Ok(m) => m,
        Err(m) => {
            return AdminReply {
                ok: false,
                message: m,
            }
        }
    };
    shared.registry().remove(name);
    let dir = shared.registry().circom_dir();
    let file_name = name.to_string();
    match tokio::task::spawn_blocking(move || circom::removal::remove(&dir, &file_name)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(circuit = %name, error = %e, "circuit unregistered but its files were not removed; it comes back at the next start unless its manifest is deleted")
        }
        Err(e) => {
            tracing::error!(circuit = %name, error = %e, "removing the circuit's files crashed")
        }
    }
    tracing::info!(circuit = %name, %who, "circom circuit unregistered");
    AdminReply { ok: true, message }
}
