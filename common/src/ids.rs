//! Identifiers. Operator and agent names are restricted to a safe alphabet because they are
//! embedded in SPIFFE URIs, file names and log fields.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest operator or agent name; keeps URIs and log lines bounded.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a name used in an identity: 1..=64 of `[a-z0-9-_.]`, not starting with `.` or `-`.
pub fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{kind} name {name:?} must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!(
            "{kind} name {name:?} must not start with '.' or '-'"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{kind} name {name:?} has {c:?}; use lowercase letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$m:meta])* $name:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(Clone, Debug, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        // Shared, not owned: ids are cloned into every offer, placement, effect and history
        // entry; at thousands of assignments a second a clone must not allocate.
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(name: impl Into<String>) -> Result<Self, String> {
                let name = name.into();
                validate_name($kind, &name)?;
                Ok($name(Arc::from(name)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        // By content; two clones of one id compare without reading their bytes (the core
        // compares an agent's operator with its neighbours' for every admission).
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
            }
        }
        // By content, as equality is.
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                if Arc::ptr_eq(&self.0, &other.0) {
                    std::cmp::Ordering::Equal
                } else {
                    self.0.cmp(&other.0)
                }
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                $name::new(s)
            }
        }
        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0.to_string()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::new(s)
            }
        }
    };
}

name_type!(
    /// An operator: the party that stakes and runs a fleet of agents.
    OperatorId,
    "operator"
);
name_type!(
    /// An agent's name, unique within its operator.
    AgentName,
    "agent"
);

/// An agent's identity: its operator (who stakes for it) and its name within that operator.
/// Shown as `op-a/gpu-1`. The coordinator's core and the wire both use it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentId {
    pub operator: OperatorId,
    pub name: AgentName,
}

impl AgentId {
    pub fn new(operator: OperatorId, name: AgentName) -> Self {
        AgentId { operator, name }
    }
}

impl std::str::FromStr for AgentId {
    type Err = String;
    /// `OPERATOR/NAME`, as `Display` writes it.
    fn from_str(s: &str) -> Result<Self, String> {
        let (operator, name) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not an agent; expected OPERATOR/NAME, e.g. op-a/gpu-01")
        })?;
        Ok(AgentId::new(
            OperatorId::new(operator)?,
            AgentName::new(name)?,
        ))
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.operator, self.name)
    }
}

/// A task, numbered by the coordinator in submission order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task-{}", self.0)
    }
}

impl std::str::FromStr for TaskId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("task-").unwrap_or(s);
        digits
            .parse::<u64>()
            .map(TaskId)
            .map_err(|_| format!("{s:?} is not a task id; expected e.g. task-12 or 12"))
    }
}

/// A proving key, named by the SHA-256 of its canonical serialisation (content-addressed).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// First 12 hex digits, for logs and tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.short())
    }
}
impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_uri_breaking_characters() {
        assert!(OperatorId::new("op-a").is_ok());
        assert!(OperatorId::new("Op").is_err());
        assert!(OperatorId::new("a/b").is_err());
        assert!(AgentName::new("").is_err());
        assert!(AgentName::new("-x").is_err());
        assert!(AgentName::new("x".repeat(65)).is_err());
    }

    #[test]
    fn task_ids_parse_with_or_without_prefix() {
        assert_eq!("task-7".parse::<TaskId>().unwrap(), TaskId(7));
        assert_eq!("7".parse::<TaskId>().unwrap(), TaskId(7));
        assert!("t7".parse::<TaskId>().is_err());
    }
}
