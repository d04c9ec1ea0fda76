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

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename). On
/// failure (a full disk, a file-size limit) the temporary file is removed and the error names
/// `path`; temporary siblings that killed processes left are removed first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    remove_dead_siblings(path)?;
    let tmp = temp_sibling(path);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
}

/// Remove the temporary siblings of `path` (`.NAME.tmp-PID`, and `.NAME.old-PID` from a
/// directory being replaced) whose process is gone: what a killed writer of `path` left.
/// Those of live processes (another writer at work) are kept.
pub fn remove_dead_siblings(path: &Path) -> Result<Vec<PathBuf>> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new()); // nothing written there yet
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file
            .strip_prefix('.')
            .and_then(|f| f.strip_prefix(name.as_str()))
        else {
            continue;
        };
        let pid = rest
            .strip_prefix(".tmp-")
            .or_else(|| rest.strip_prefix(".old-"))
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_none_or(process_alive) {
            continue;
        }
        let p = e.path();
        let r = match p.is_dir() {
            true => std::fs::remove_dir_all(&p),
            false => std::fs::remove_file(&p),
        };
        r.map_err(|err| Error::io(&p, err))?;
        tracing::info!(removed = %p.display(), "left by a killed process");
        removed.push(p);
    }
    Ok(removed)
}

/// Whether process `pid` exists (signal 0 probes without sending anything).
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a way to ask, every writer counts as alive (nothing is removed).
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Replace the directory `dest` by `tmp` (a complete directory written beside it).
pub fn replace_dir(tmp: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    }
    std::fs::rename(tmp, dest).map_err(|e| Error::io(dest, e))
}
