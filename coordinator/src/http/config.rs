//! The `[http]` section of `coordinator.toml`: where `/metrics` and the fleet page listen,
//! and the file holding the fleet page's bearer token.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Shortest accepted token, in characters: 32 hex digits are 128 bits, beyond guessing.
pub const MIN_TOKEN_LEN: usize = 32;
/// Longest accepted token file; a token is one line.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// `[http]`. On by default on loopback only: `/metrics` shows operators' stake and the
/// fleet, which a rack's Prometheus reaches through an explicit `listen` on the control
/// network. The fleet page and its API always need the token; without `token_file` they
/// answer 403.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve HTTP at all.
    pub enabled: bool,
    /// TCP address for `/metrics`, the fleet page (`/`) and its API (`/api/...`).
    pub listen: SocketAddr,
    /// File whose first line is the bearer token for the fleet page and its API (at least
    /// 32 characters; e.g. `openssl rand -hex 32 > fleet.token`). Empty: page disabled.
    pub token_file: PathBuf,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token_file: PathBuf::new(),
        }
    }
}

impl HttpConfig {
    /// The token file, when one is configured.
    pub fn token_path(&self) -> Option<&Path> {
        (!self.token_file.as_os_str().is_empty()).then_some(self.token_file.as_path())
    }
}

/// Why the fleet page's token could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading the fleet page token {path}: {source}; write one with `openssl rand -hex 32 > {path}`")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the fleet page token in {path} has {len} characters; use at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)")]
    TooShort { path: String, len: usize },
    #[error("the fleet page token file {path} is larger than {MAX_TOKEN_FILE_BYTES} bytes; it should hold one line")]
    TooLarge { path: String },
}

/// Reads the token: the file's first line, trimmed.
pub fn load_token(path: &Path) -> Result<String, TokenError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| TokenError::Read {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        return Err(TokenError::TooLarge { path: shown });
    }
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: shown.clone(),
        source,
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.chars().count() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort {
            path: shown,
            len: token.chars().count(),
        });
    }
    Ok(token)
}
