//! `coordinator.toml` and `agent.toml`, and their environment overrides: arbitrary text and
//! mutations of the shipped examples (deploy/*.toml) are refused with an error or accepted
//! as valid configurations, never a panic.

use super::mutate::{apply, config, mutations};
use proofrack::config_env::{merge, AGENT_PREFIX, COORDINATOR_PREFIX};
use proofrack_agent::AgentConfig;
use proofrack_coordinator::CoordinatorConfig;
use proptest::prelude::*;

const COORDINATOR_EXAMPLE: &str = include_str!("../../../deploy/coordinator.toml");
const AGENT_EXAMPLE: &str = include_str!("../../../deploy/agent.toml");

fn both(text: &str) {
    if let Ok(c) = CoordinatorConfig::from_toml_str(text) {
        c.validate().expect("an accepted configuration is valid");
    }
    let _ = AgentConfig::from_toml_str(text);
}

proptest! {
    #![proptest_config(config(1_500, 0xf4a3_0030))]

    #[test]
    fn arbitrary_text_never_panics_a_config_parser(text in "[\\[\\]a-z_.=\"0-9 \n#-]{0,200}") {
        both(&text);
    }

    #[test]
    fn mutated_examples_never_panic_a_config_parser(which in any::<bool>(), ms in mutations()) {
        let seed = if which { COORDINATOR_EXAMPLE } else { AGENT_EXAMPLE };
        let bytes = apply(seed.as_bytes(), &ms);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            both(text);
        }
    }

    #[test]
    fn arbitrary_environment_overrides_never_panic(
        section in prop_oneof![Just(""), Just("POLICY_"), Just("LIMITS_"), Just("HTTP_"), Just("TLS_")],
        key in "[A-Z_]{1,30}",
        value in ".{0,30}",
    ) {
        let name = format!("{COORDINATOR_PREFIX}{section}{key}");
        if let Ok((text, _)) = merge::<CoordinatorConfig>(COORDINATOR_EXAMPLE, COORDINATOR_PREFIX, [(name, value.clone())]) {
            let _ = CoordinatorConfig::from_toml_str(&text);
        }
        let name = format!("{AGENT_PREFIX}{key}");
        if let Ok((text, _)) = merge::<AgentConfig>(AGENT_EXAMPLE, AGENT_PREFIX, [(name, value)]) {
            let _ = AgentConfig::from_toml_str(&text);
        }
    }
}
