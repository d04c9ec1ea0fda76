//! Files and directories written so that a crash never leaves a half-written one: a temporary
//! sibling, then a rename.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A hidden sibling of `path` to write into before renaming.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether a file name is a [`temp_sibling`]'s (`.NAME.tmp-PID`).
pub fn is_temp_sibling(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Replace the directory `dest` by `tmp` (a complete directory written beside it).
pub fn replace_dir(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    }
    std::fs::rename(tmp, dest).map_err(|e| Error::io(dest, e))
}
