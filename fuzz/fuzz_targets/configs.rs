//! coordinator.toml and agent.toml.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = proofrack_coordinator::CoordinatorConfig::from_toml_str(text) {
            c.validate().expect("an accepted configuration is valid");
        }
        let _ = proofrack_agent::config::AgentConfig::from_toml_str(text);
    }
});
