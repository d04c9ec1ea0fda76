//! Files and directories written so that a crash never leaves a half-written one: a temporary
//! sibling, then a rename. The temporary file is created exclusively (`O_EXCL`: never through a
//! symbolic link planted under its name) and synced, and so is its directory after the rename,
//! so that a published file survives a power loss, not only a kill.

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
    use std::io::Write;
    remove_dead_siblings(path)?;
    let tmp = temp_sibling(path);
    // whatever sits under our own temporary name (a link someone planted) goes, unfollowed
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // only a file this call created (create_new) is removed
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(&tmp);
        }
        return Err(Error::io(path, e));
    }
    sync_dir(path)
}

/// Sync the directory holding `path`, so that a rename into it is durable.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Open `path` for appending, creating it if missing, without following a symbolic link (a
/// log planted as a link to another file is refused, not appended to).
pub fn open_append(path: &Path) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => Error::Invalid(format!(
            "{}: a symbolic link; mgrpo appends only to a file of its own",
            path.display()
        )),
        _ => Error::io(path, e),
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

/// Replace the directory `dest` by `tmp` (a complete directory written beside it), its files
/// synced first and the rename made durable.
pub fn replace_dir(tmp: &Path, dest: &Path) -> Result<()> {
    sync_tree(tmp)?;
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    }
    std::fs::rename(tmp, dest).map_err(|e| Error::io(dest, e))?;
    sync_dir(dest)
}

/// Sync every file and directory under `root` (a directory about to be published by a rename).
pub fn sync_tree(root: &Path) -> Result<()> {
    let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    for e in entries {
        let p = e.map_err(|e| Error::io(root, e))?.path();
        let meta = std::fs::symlink_metadata(&p).map_err(|e| Error::io(&p, e))?;
        if meta.is_dir() {
            sync_tree(&p)?;
        } else if meta.is_file() {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&p, e))?;
        }
    }
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(root, e))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A link planted under `write_atomic`'s temporary name, or as the log `open_append`
    /// appends to, is never written through.
    #[test]
    fn planted_links_are_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dest = tmp.path().join("config.toml");
        std::os::unix::fs::symlink(&victim, temp_sibling(&dest)).unwrap();
        write_atomic(&dest, b"x = 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "x = 1\n");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let log = tmp.path().join("metrics.jsonl");
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        let e = open_append(&log).unwrap_err().to_string();
        assert!(
            e.contains("metrics.jsonl") && e.contains("symbolic link"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
