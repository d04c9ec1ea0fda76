//! One writer per run directory: an exclusive OS lock on `RUN/.lock`, taken by `mgrpo train`
//! (new or `--resume`), `mgrpo sft` and `mgrpo eval --out`, held until the process ends. The
//! OS releases it when the holder exits or is killed, so a stale lock file never blocks a run;
//! the file holds the holder's pid, which a refused second writer names. The file is opened
//! without following a symbolic link (`O_NOFOLLOW`) and must be a regular file: a `.lock` planted
//! as a link to another file (in a shared runs directory) is refused, never written through.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::fsutil::is_temp_sibling;

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// A held run lock (released when dropped or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Lock `dir` (created if missing), or fail at once naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let not_ours = |what: &str| {
            Error::Invalid(format!(
                "{}: {what}, not the run's lock file; mgrpo will not write through it (remove it \
                 if the directory is yours)",
                path.display()
            ))
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // no symlink followed; a FIFO must not block the open
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let mut file = match options.open(&path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(not_ours("a symbolic link"))
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(not_ours("not a regular file"));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    pid => format!("process {pid}"),
                };
                return Err(Error::Invalid(format!(
                    "{} is in use by {holder} (a running mgrpo train, sft or eval); wait for it \
                     to finish or choose another directory",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        // the holder's pid, for the message a second writer gets
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        written.map_err(|e| Error::io(&path, e))?;
        Ok(Self { _file: file, path })
    }

    /// Remove what killed writers left in the locked directory: temporary files
    /// ([`is_temp_sibling`]: `.NAME.tmp-PID`, never renamed into place) and half-written checkpoints
    /// (`checkpoints/.tmp-step-N`). Holding the lock proves no live process owns them.
    pub fn clean_stale(&self) -> Result<Vec<PathBuf>> {
        let Some(dir) = self.path.parent() else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for (sub, is_stale) in [
            (dir.to_path_buf(), is_temp_sibling as fn(&str) -> bool),
            (dir.join("eval"), is_temp_sibling),
            (dir.join("checkpoints"), |n: &str| {
                n.starts_with(".tmp-step-")
            }),
        ] {
            let Ok(entries) = std::fs::read_dir(&sub) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !is_stale(&name) {
                    continue;
                }
                let p = e.path();
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                r.map_err(|err| Error::io(&p, err))?;
                removed.push(p);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second lock on the same directory fails naming this process; dropping the first frees
    /// it (the OS lock is per open file description, so this works within one process too).
    #[test]
    fn one_holder_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let first = RunLock::acquire(&run).unwrap();
        let e = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(
            e.contains(&format!("in use by process {}", std::process::id())),
            "{e}"
        );
        drop(first);
        let again = RunLock::acquire(&run).unwrap();
        // the pid went into the lock file, not anywhere else
        let pid = std::fs::read_to_string(run.join(".lock")).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        assert!(run.join(".lock").is_file());
        // what killed writers leave behind goes; everything else stays
        std::fs::create_dir_all(run.join("checkpoints/.tmp-step-000003/model")).unwrap();
        std::fs::create_dir_all(run.join("checkpoints/step-000002")).unwrap();
        std::fs::write(run.join(".metrics.jsonl.tmp-4242"), "x").unwrap();
        std::fs::create_dir_all(run.join("eval")).unwrap();
        std::fs::write(run.join("eval/.step-0.jsonl.tmp-77"), "x").unwrap();
        std::fs::write(run.join("metrics.jsonl"), "x").unwrap();
        std::fs::write(run.join(".hidden.tmp-notapid"), "x").unwrap();
        let mut removed = again.clean_stale().unwrap();
        removed.sort();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(run.join("checkpoints/step-000002").is_dir());
        assert!(run.join("metrics.jsonl").is_file() && run.join(".hidden.tmp-notapid").is_file());
        assert!(!run.join("checkpoints/.tmp-step-000003").exists());
    }

    /// A `.lock` planted as a symbolic link (to a file of the user's, or dangling) or as a FIFO
    /// is refused by name; the link's target is left untouched.
    #[cfg(unix)]
    #[test]
    fn a_planted_lock_file_is_refused_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("somefile");
        std::fs::write(&victim, "precious\n").unwrap();
        for (name, plant) in [
            ("link", Some(victim.clone())),
            ("dangling", Some(tmp.path().join("nothing-here"))),
            ("fifo", None),
        ] {
            let run = tmp.path().join(name);
            std::fs::create_dir_all(&run).unwrap();
            match plant {
                Some(target) => std::os::unix::fs::symlink(target, run.join(".lock")).unwrap(),
                None => {
                    let c = std::ffi::CString::new(run.join(".lock").to_str().unwrap()).unwrap();
                    // SAFETY: a valid NUL-terminated path
                    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
                }
            }
            let e = RunLock::acquire(&run).unwrap_err().to_string();
            assert!(
                e.contains(".lock") && e.contains("not the run's lock file"),
                "{name}: {e}"
            );
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!tmp.path().join("nothing-here").exists());
    }
}
