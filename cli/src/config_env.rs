//! `coordinator.toml` and `agent.toml` with environment overrides: the file, then every
//! `PROOFRACK_COORDINATOR_<SECTION>_<KEY>` / `PROOFRACK_AGENT_<SECTION>_<KEY>` variable
//! (rule and examples in [`proofrack_common::config_env`]), then the typed parse and
//! validation of the result.

use anyhow::Context;
use serde::Serialize;

pub const COORDINATOR_PREFIX: &str = "PROOFRACK_COORDINATOR_";
pub const AGENT_PREFIX: &str = "PROOFRACK_AGENT_";

/// The file's text with the overrides applied (to be parsed and validated by the config's
/// own `from_toml_str`), and the dotted keys overridden.
pub fn merge<T: Serialize + Default>(
    text: &str,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<(String, Vec<String>)> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("the configuration does not parse: {e}"))?;
    let defaults = toml::Table::try_from(T::default())
        .context("the default configuration does not serialise (a bug)")?;
    let applied = proofrack_common::config_env::apply_overrides(&mut doc, &defaults, prefix, vars)?;
    if applied.is_empty() {
        // Keep the file's own text so parse errors point at its lines.
        return Ok((text.to_string(), applied));
    }
    Ok((toml::to_string(&doc)?, applied))
}

/// Every overridable setting's variable name (the tests check the documented ones).
#[cfg(test)]
fn variables<T: Serialize + Default>(prefix: &str) -> Vec<String> {
    let defaults = toml::Table::try_from(T::default()).expect("defaults serialise");
    proofrack_common::config_env::overridable_keys(&defaults, prefix)
        .into_iter()
        .map(|(k, _)| k.variable)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofrack_agent::AgentConfig;
    use proofrack_coordinator::CoordinatorConfig;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file_and_is_validated() {
        let file =
            "[policy]\noffer_timeout_ms = 2000\n[[operators]]\nid = \"op-a\"\ndelegated = 5\n";
        let (merged, applied) = merge::<CoordinatorConfig>(
            file,
            COORDINATOR_PREFIX,
            vars(&[
                ("PROOFRACK_COORDINATOR_POLICY_OFFER_TIMEOUT_MS", "3000"),
                ("PROOFRACK_COORDINATOR_HTTP_LISTEN", "0.0.0.0:9999"),
                ("PROOFRACK_AGENT_BACKEND", "cpu"),
            ]),
        )
        .unwrap();
        assert_eq!(applied, vec!["http.listen", "policy.offer_timeout_ms"]);
        let c = CoordinatorConfig::from_toml_str(&merged).unwrap();
        assert_eq!(c.policy.offer_timeout_ms, 3000);
        assert_eq!(c.http.listen.port(), 9999);
        assert_eq!(c.operators.len(), 1, "the file's operators stay");

        let (merged, _) = merge::<CoordinatorConfig>(
            "",
            COORDINATOR_PREFIX,
            vars(&[(
                "PROOFRACK_COORDINATOR_POLICY_INVALID_PROOF_SLASH_BPS",
                "20000",
            )]),
        )
        .unwrap();
        let e = CoordinatorConfig::from_toml_str(&merged).unwrap_err();
        assert!(
            e.to_string()
                .contains("policy.invalid_proof_slash_bps = 20000"),
            "{e}"
        );

        let e = merge::<AgentConfig>("", AGENT_PREFIX, vars(&[("PROOFRACK_AGENT_BACKEN", "cpu")]))
            .unwrap_err();
        assert!(e.to_string().contains("PROOFRACK_AGENT_BACKEND"), "{e}");
        let (merged, _) = merge::<AgentConfig>(
            "",
            AGENT_PREFIX,
            vars(&[("PROOFRACK_AGENT_BACKEND", "cuda")]),
        )
        .unwrap();
        assert_eq!(
            AgentConfig::from_toml_str(&merged).unwrap().backend,
            proofrack_agent::BackendChoice::Cuda
        );
    }

    #[test]
    fn every_setting_has_a_variable() {
        let v = variables::<CoordinatorConfig>(COORDINATOR_PREFIX);
        for name in [
            "PROOFRACK_COORDINATOR_LISTEN",
            "PROOFRACK_COORDINATOR_TLS_CA_CERT",
            "PROOFRACK_COORDINATOR_POLICY_QUEUE_CAPACITY",
            "PROOFRACK_COORDINATOR_HTTP_TOKEN_FILE",
            "PROOFRACK_COORDINATOR_CIRCUITS",
        ] {
            assert!(v.iter().any(|x| x == name), "{name} missing from {v:?}");
        }
        let a = variables::<AgentConfig>(AGENT_PREFIX);
        assert!(
            a.iter().any(|x| x == "PROOFRACK_AGENT_METRICS_LISTEN"),
            "{a:?}"
        );
    }
}

/// The documented examples in `deploy/` parse, validate and show every setting.
#[cfg(test)]
mod examples {
    use proofrack_agent::AgentConfig;
    use proofrack_coordinator::CoordinatorConfig;
    use std::collections::BTreeSet;

    const COORDINATOR_EXAMPLE: &str = include_str!("../../deploy/coordinator.toml");
    const AGENT_EXAMPLE: &str = include_str!("../../deploy/agent.toml");

    /// Dotted paths of every key, descending into tables and arrays of tables.
    fn keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (k, v) in table {
            let path = format!("{prefix}{k}");
            match v {
                toml::Value::Table(t) => keys(t, &format!("{path}."), out),
                toml::Value::Array(a) if a.iter().any(|x| x.is_table()) => {
                    for t in a.iter().filter_map(|x| x.as_table()) {
                        keys(t, &format!("{path}[]."), out);
                    }
                }
                _ => {
                    out.insert(path);
                }
            }
        }
    }

    fn key_set(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        keys(&text.parse().expect("parses as TOML"), "", &mut out);
        out
    }

    #[test]
    fn the_coordinator_example_parses_and_covers_every_key() {
        let c = CoordinatorConfig::from_toml_str(COORDINATOR_EXAMPLE).unwrap();
        assert_eq!(c.operators.len(), 2);
        let full = CoordinatorConfig {
            operators: c.operators.clone(),
            ..CoordinatorConfig::default()
        };
        let every = key_set(&toml::to_string(&full).expect("prints"));
        let shown = key_set(COORDINATOR_EXAMPLE);
        let missing: Vec<_> = every.difference(&shown).collect();
        assert!(
            missing.is_empty(),
            "deploy/coordinator.toml does not document {missing:?}"
        );
    }

    #[test]
    fn the_agent_example_parses_and_covers_every_key() {
        AgentConfig::from_toml_str(AGENT_EXAMPLE).unwrap();
        let every = key_set(&toml::to_string(&AgentConfig::default()).expect("prints"));
        let shown = key_set(AGENT_EXAMPLE);
        let missing: Vec<_> = every.difference(&shown).collect();
        assert!(
            missing.is_empty(),
            "deploy/agent.toml does not document {missing:?}"
        );
    }

    /// Each key of an example with whether its comment says "Not the default". A key right
    /// after another with no comment of its own shares that one's comment (`cert` and `key`).
    fn marked_keys(text: &str) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut section = String::new();
        let mut comment = String::new();
        let mut last_comment = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(c) = line.strip_prefix('#') {
                comment.push_str(c);
                comment.push('\n');
            } else if line.starts_with('[') {
                section = line.trim_matches(['[', ']']).to_string();
                comment.clear();
                last_comment.clear();
            } else if let Some((key, _)) = line.split_once('=') {
                if comment.is_empty() {
                    comment = last_comment.clone();
                }
                let path = if section.is_empty() {
                    key.trim().to_string()
                } else {
                    format!("{section}.{}", key.trim())
                };
                out.push((path, comment.contains("Not the default")));
                last_comment = std::mem::take(&mut comment);
            } else if line.is_empty() {
                comment.clear();
            }
        }
        out
    }

    fn value_at<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
        let (section, key) = match path.split_once('.') {
            Some((s, k)) => (Some(s), k),
            None => (None, path),
        };
        match section {
            Some(s) => table.get(s)?.as_table()?.get(key),
            None => table.get(key),
        }
    }

    /// "Every setting is shown with its default unless its comment says Not the default":
    /// the examples say so, so the defaults shown must be the defaults.
    fn check_defaults_shown(text: &str, defaults: &toml::Table, file: &str) {
        let shown: toml::Table = text.parse().expect("parses as TOML");
        let mut wrong = Vec::new();
        for (path, not_default) in marked_keys(text) {
            if path.starts_with("operators") {
                continue; // [[operators]] says it is not a default
            }
            let value = value_at(&shown, &path);
            let default = value_at(defaults, &path);
            let same = match (value, default) {
                // Stake and big integers may be written as strings; compare as text.
                (Some(v), Some(d)) => v == d || v.to_string().trim_matches('"') == d.to_string(),
                _ => false,
            };
            if same == not_default {
                wrong.push(format!(
                    "{path} = {} (default {}){}",
                    value.map_or("?".into(), ToString::to_string),
                    default.map_or("none".into(), ToString::to_string),
                    if not_default {
                        ": marked \"Not the default\" but it is the default"
                    } else {
                        ": shown as the default but it is not; mark it \"Not the default\""
                    }
                ));
            }
        }
        assert!(wrong.is_empty(), "{file}:\n{}", wrong.join("\n"));
    }

    #[test]
    fn the_defaults_shown_are_the_defaults() {
        let defaults = toml::Table::try_from(CoordinatorConfig::default()).unwrap();
        check_defaults_shown(COORDINATOR_EXAMPLE, &defaults, "deploy/coordinator.toml");
        let defaults = toml::Table::try_from(AgentConfig::default()).unwrap();
        check_defaults_shown(AGENT_EXAMPLE, &defaults, "deploy/agent.toml");
        // and the check can fail
        let wrong = "data_dir = \"elsewhere\"\n";
        let defaults = toml::Table::try_from(AgentConfig::default()).unwrap();
        assert!(std::panic::catch_unwind(|| check_defaults_shown(wrong, &defaults, "x")).is_err());
    }

    /// The certificate files the examples name are the files `proofrack certs issue` writes
    /// for the identities they stand for: the coordinator's for the host agents dial, an
    /// agent's as `agent-NAME@OPERATOR`.
    #[test]
    fn the_examples_name_the_certificate_files_certs_issue_writes() {
        use proofrack_certs::CertsDir;
        use proofrack_common::identity::Identity;
        let coordinator = CoordinatorConfig::from_toml_str(COORDINATOR_EXAMPLE).unwrap();
        let agent = AgentConfig::from_toml_str(AGENT_EXAMPLE).unwrap();
        let dir = CertsDir::new(coordinator.tls.cert.parent().unwrap());
        let host = agent.coordinator_host().unwrap();
        let issued = dir.cert_path(&Identity::coordinator(&host).unwrap());
        assert_eq!(
            coordinator.tls.cert, issued,
            "the coordinator's certificate"
        );
        assert_eq!(
            coordinator.tls.key,
            dir.key_path(&Identity::coordinator(&host).unwrap()),
            "the coordinator's key"
        );
        let file = agent.tls.cert.file_stem().unwrap().to_str().unwrap();
        let (name, operator) = file
            .strip_prefix("agent-")
            .and_then(|f| f.split_once('@'))
            .expect("agent-NAME@OPERATOR.pem");
        let identity = Identity::agent(operator, name).unwrap();
        assert_eq!(agent.tls.cert, dir.cert_path(&identity));
        assert_eq!(agent.tls.key, dir.key_path(&identity));
        assert_eq!(agent.tls.ca_cert, coordinator.tls.ca_cert);
    }

    #[test]
    fn print_config_round_trips() {
        let c = CoordinatorConfig::from_toml_str(COORDINATOR_EXAMPLE).unwrap();
        let printed = toml::to_string(&c).expect("the effective configuration prints");
        assert_eq!(CoordinatorConfig::from_toml_str(&printed).unwrap(), c);
        let a = AgentConfig::from_toml_str(AGENT_EXAMPLE).unwrap();
        assert_eq!(
            AgentConfig::from_toml_str(&toml::to_string(&a).unwrap()).unwrap(),
            a
        );
    }
}
