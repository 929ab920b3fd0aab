//! Writing certificate and key files: private keys 0600, nothing overwritten without
//! `--force`, replacements atomic.

use crate::CertsError;
use std::io::Write;
use std::path::Path;

/// Mode of private key files: owner read/write only.
pub const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of certificates and other public files.
pub const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode of a certs directory this crate creates: it holds `ca.key`.
pub const CERTS_DIR_MODE: u32 = 0o700;

/// Refuses if any of `paths` exists and `force` is not set, before anything is written, so
/// an `issue` never leaves a new key beside an old certificate.
pub fn check_absent(paths: &[&Path], force: bool) -> Result<(), CertsError> {
    if force {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(CertsError::Exists {
            path: p.to_path_buf(),
        }),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` with `mode`. Without `replace` the file must not exist (checked
/// by the create itself, so a racing writer cannot be clobbered); with it the new file is
/// written beside the old one and renamed over it.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<(), CertsError> {
    let io = |e: std::io::Error| CertsError::Io {
        path: path.to_path_buf(),
        source: e,
        hint: None,
    };
    if !replace {
        let mut f = open_new(path, mode).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CertsError::Exists {
                path: path.to_path_buf(),
            },
            _ => io(e),
        })?;
        f.write_all(bytes).map_err(io)?;
        return f.sync_all().map_err(io);
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut f = open_new(&tmp, mode).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

fn open_new(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let f = o.open(path)?;
    // The umask may have removed bits but never adds any; set the mode exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(f)
}

/// Creates the certs directory (mode 0700) if it does not exist.
pub fn ensure_dir(path: &Path) -> Result<(), CertsError> {
    if path.is_dir() {
        return Ok(());
    }
    let io = |e: std::io::Error| CertsError::Io {
        path: path.to_path_buf(),
        source: e,
        hint: None,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(CERTS_DIR_MODE))
            .map_err(io)?;
    }
    Ok(())
}

pub fn read_to_string(path: &Path) -> Result<String, CertsError> {
    std::fs::read_to_string(path).map_err(|e| CertsError::Io {
        path: path.to_path_buf(),
        source: e,
        hint: None,
    })
}
