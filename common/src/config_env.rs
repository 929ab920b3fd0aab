//! Environment-variable overrides of a TOML configuration file.
//!
//! The rule: every setting `key` at the top level, or `key` in section `[section]`, can be
//! overridden by `<PREFIX><SECTION>_<KEY>` in upper case, where the prefix names the file
//! (`PROOFRACK_COORDINATOR_`, `PROOFRACK_AGENT_`). Examples:
//! `PROOFRACK_COORDINATOR_POLICY_OFFER_TIMEOUT_MS=2000`, `PROOFRACK_AGENT_TLS_CERT=/etc/x.pem`,
//! `PROOFRACK_COORDINATOR_CIRCUITS=mimc-10,mimc-12` (a list: comma-separated).
//! Arrays of tables (`[[operators]]`) and lists empty by default are not overridable. A variable with the prefix that
//! names no setting is an error that lists the allowed names, so a typo never goes unnoticed.
//!
//! Pure: the caller passes the variables (`std::env::vars()` in a binary).

use toml::{Table, Value};

/// Why an override was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvOverrideError {
    #[error("environment variable {name} names no setting; allowed: {}", allowed.join(", "))]
    Unknown { name: String, allowed: Vec<String> },
    #[error("environment variable {name}={value:?} (setting {key}): expected {expected}")]
    BadValue {
        name: String,
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// One overridable setting: its dotted path and the variable that overrides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverridableKey {
    pub path: Vec<String>,
    pub variable: String,
}

/// Every overridable setting of a configuration whose full default form is `defaults`.
pub fn overridable_keys(defaults: &Table, prefix: &str) -> Vec<(OverridableKey, Value)> {
    let mut out = Vec::new();
    collect(defaults, &mut Vec::new(), prefix, &mut out);
    out
}

fn collect(
    table: &Table,
    path: &mut Vec<String>,
    prefix: &str,
    out: &mut Vec<(OverridableKey, Value)>,
) {
    for (k, v) in table {
        path.push(k.clone());
        match v {
            Value::Table(t) => collect(t, path, prefix, out),
            // Arrays of tables, and lists with no default to type them, are file-only.
            Value::Array(a) if a.is_empty() || a.iter().any(|x| x.is_table()) => {}
            _ => out.push((
                OverridableKey {
                    path: path.clone(),
                    variable: format!("{prefix}{}", path.join("_").to_ascii_uppercase()),
                },
                v.clone(),
            )),
        }
        path.pop();
    }
}

/// Applies every variable in `vars` that starts with `prefix` to `doc`; returns the dotted
/// paths of the settings overridden. `defaults` is the configuration's default form (every
/// key present), which gives the names and the value types.
pub fn apply_overrides(
    doc: &mut Table,
    defaults: &Table,
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, EnvOverrideError> {
    let keys = overridable_keys(defaults, prefix);
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let Some((key, default)) = keys.iter().find(|(k, _)| k.variable == name) else {
            return Err(EnvOverrideError::Unknown {
                name,
                allowed: keys.iter().map(|(k, _)| k.variable.clone()).collect(),
            });
        };
        let dotted = key.path.join(".");
        let bad = |expected| EnvOverrideError::BadValue {
            name: name.clone(),
            key: dotted.clone(),
            value: raw.clone(),
            expected,
        };
        let value = match default {
            Value::String(_) => Value::String(raw.clone()),
            Value::Integer(_) => Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?),
            Value::Boolean(_) => Value::Boolean(match raw.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(bad("true or false")),
            }),
            Value::Float(_) => Value::Float(raw.trim().parse().map_err(|_| bad("a number"))?),
            Value::Array(_) => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            Value::Datetime(_) | Value::Table(_) => return Err(bad("a plain value")),
        };
        set(doc, &key.path, value);
        applied.push(dotted);
    }
    Ok(applied)
}

fn set(doc: &mut Table, path: &[String], value: Value) {
    let (last, sections) = path.split_last().expect("keys have a name");
    let mut table = doc;
    for s in sections {
        let entry = table
            .entry(s.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            // The file has a non-table where a section belongs; replacing it lets the typed
            // parse report the file's own error for the rest.
            *entry = Value::Table(Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Table {
        toml::from_str(
            r#"
            listen = "0.0.0.0:1"
            circuits = ["a"]
            [policy]
            offer_timeout_ms = 5
            strict = false
            [[operators]]
            id = "x"
            "#,
        )
        .unwrap()
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn overrides_by_section_and_key() {
        let mut doc: Table = toml::from_str("[policy]\noffer_timeout_ms = 7").unwrap();
        let applied = apply_overrides(
            &mut doc,
            &defaults(),
            "P_",
            vars(&[
                ("P_POLICY_OFFER_TIMEOUT_MS", "9"),
                ("P_LISTEN", "127.0.0.1:2"),
                ("P_CIRCUITS", "b, c"),
                ("P_POLICY_STRICT", "true"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(
            applied,
            vec![
                "circuits",
                "listen",
                "policy.offer_timeout_ms",
                "policy.strict"
            ]
        );
        assert_eq!(doc["policy"]["offer_timeout_ms"].as_integer(), Some(9));
        assert_eq!(doc["listen"].as_str(), Some("127.0.0.1:2"));
        assert_eq!(doc["circuits"].as_array().unwrap().len(), 2);
        assert_eq!(doc["policy"]["strict"].as_bool(), Some(true));
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused_with_the_allowed_ones() {
        let mut doc = Table::new();
        let e = apply_overrides(&mut doc, &defaults(), "P_", vars(&[("P_POLICY_OFER", "1")]))
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("P_POLICY_OFER names no setting"), "{text}");
        assert!(text.contains("P_POLICY_OFFER_TIMEOUT_MS"), "{text}");
        assert!(
            !text.contains("OPERATORS"),
            "arrays of tables are not overridable: {text}"
        );
        let e = apply_overrides(
            &mut doc,
            &defaults(),
            "P_",
            vars(&[("P_POLICY_OFFER_TIMEOUT_MS", "soon")]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable P_POLICY_OFFER_TIMEOUT_MS=\"soon\" (setting policy.offer_timeout_ms): expected an integer"
        );
    }
}
