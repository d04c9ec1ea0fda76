//! One writer per run directory: an exclusive OS lock on `RUN/.lock`, taken by `mgrpo train`
//! (new or `--resume`), `mgrpo sft` and `mgrpo eval --out`, held until the process ends. The
//! OS releases it when the holder exits or is killed, so a stale lock file never blocks a run;
//! the file holds the holder's pid, which a refused second writer names.

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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
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
}
