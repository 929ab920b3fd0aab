//! Unregistering a circom circuit: its manifest goes first (so a crash half-way leaves it
//! unregistered, not half-registered), then its key and `.r1cs` unless another manifest
//! still names the same file (they are content-addressed and may be shared).

use super::{io, manifest_path, CircomError, Manifest, MANIFEST_EXT};
use std::collections::BTreeSet;
use std::path::Path;

/// Removes `name`'s manifest and the files only it used. A missing manifest is not an
/// error (nothing left to remove).
pub fn remove(dir: &Path, name: &str) -> Result<(), CircomError> {
    let path = manifest_path(dir, name);
    let manifest = match std::fs::read(&path) {
        Ok(text) => Some(serde_json::from_slice::<Manifest>(&text).map_err(|e| {
            CircomError::BadManifest {
                path: path.clone(),
                detail: e.to_string(),
            }
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&path)(e)),
    };
    let Some(manifest) = manifest else {
        return Ok(());
    };
    std::fs::remove_file(&path).map_err(io(&path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // The removal is durable once the directory is.
        let _ = d.sync_all();
    }
    let (mut keys, mut r1cs) = (BTreeSet::new(), BTreeSet::new());
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|x| x == MANIFEST_EXT) {
            if let Ok(m) = std::fs::read(&p)
                .ok()
                .and_then(|t| serde_json::from_slice::<Manifest>(&t).ok())
                .ok_or(())
            {
                keys.insert(m.key);
                r1cs.insert(m.r1cs);
            }
        }
    }
    if !keys.contains(&manifest.key) {
        let _ = std::fs::remove_file(dir.join(format!("{}.key", manifest.key)));
    }
    if !r1cs.contains(&manifest.r1cs) {
        let _ = std::fs::remove_file(dir.join(format!("{}.r1cs", manifest.r1cs)));
    }
    Ok(())
}
