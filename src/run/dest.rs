//! Where a command may write its output directory (`convert --out`, `eval --out`, `task
//! --out`): never into a training run, never over files another command wrote, and over an
//! earlier output of its own kind only when told so (`--overwrite`), under that directory's
//! lock. A directory inside a run (`RUN/model`) is written under the run's lock, so a live
//! run is never written under.

use std::path::{Path, PathBuf};

use super::lock::RunLock;
use crate::error::{Error, Result};

/// What a command writes, and how to recognise an earlier output of that kind.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// The command, for messages (`mgrpo eval`).
    pub command: &'static str,
    /// What it writes (`an evaluation`).
    pub what: &'static str,
    /// A file every output of this kind holds (`summary.json`).
    pub marker: &'static str,
    /// The only names an output of this kind holds (besides `.lock`).
    pub owns: fn(&str) -> bool,
}

/// Whether `dir` holds a training or SFT run (its config, history or checkpoints).
pub fn is_run(dir: &Path) -> bool {
    ["config.resolved.toml", "metrics.jsonl", "checkpoints"]
        .iter()
        .any(|n| dir.join(n).exists())
}

/// The locks a claimed output holds (released when dropped).
pub struct Claim {
    _locks: Vec<RunLock>,
    /// Whether an earlier output of the same kind is being replaced.
    pub replacing: bool,
}

/// Claim `out` for a command of `kind` (see the module's header). With `lock_out`, `out`'s
/// own lock is taken too (it is created when missing); a command that renames a finished
/// directory into place (a model) leaves that to its rename.
pub fn claim(out: &Path, kind: Kind, overwrite: bool, lock_out: bool) -> Result<Claim> {
    let refuse = |msg: String| Error::Invalid(format!("--out {}: {msg}", out.display()));
    let mut locks = Vec::new();
    // a directory inside a run (its final model) is written only while the run is not
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.is_dir() && is_run(parent) {
            locks.push(RunLock::acquire(parent)?);
        }
    }
    let meta = std::fs::symlink_metadata(out);
    let replacing = match meta {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io(out, e)),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refuse(
                "is a symbolic link; give the directory it points to, if that is meant".into(),
            ))
        }
        Ok(m) if !m.is_dir() => return Err(refuse("exists and is not a directory".into())),
        Ok(_) => {
            if is_run(out) {
                return Err(refuse(format!(
                    "holds a training run; {} never writes into one (choose another --out)",
                    kind.command
                )));
            }
            let names = entries(out)?;
            let foreign: Vec<&String> = names
                .iter()
                .filter(|n| *n != ".lock" && !(kind.owns)(n))
                .collect();
            if !foreign.is_empty() {
                return Err(refuse(format!(
                    "holds files {} did not write ({}); choose another --out",
                    kind.command,
                    first_names(&foreign)
                )));
            }
            let earlier = names.iter().any(|n| n == kind.marker);
            if earlier && !overwrite {
                return Err(refuse(format!(
                    "already holds {}; pass --overwrite to replace it",
                    kind.what
                )));
            }
            earlier
        }
    };
    if lock_out {
        locks.push(RunLock::acquire(out)?);
    }
    Ok(Claim {
        _locks: locks,
        replacing,
    })
}

/// A new run (`train`, `sft`) starts in a missing or empty directory, or one a start that was
/// killed left (its lock, config, identity, logs and plots before the first step, temporary
/// files):
/// any other file would be mixed into the run, and a `model` there replaced by its final
/// model (`train --out .` in the repository would have replaced the shipped model).
pub fn check_new_run(run: &Path) -> Result<()> {
    const LEFT_BY_A_START: [&str; 7] = [
        ".lock",
        "identity.json",
        "config.resolved.toml",
        "completions.jsonl",
        "results.md",
        "eval",
        "runs",
    ];
    if !run.exists() {
        return Ok(());
    }
    if !run.is_dir() {
        return Err(Error::Invalid(format!(
            "--out {}: exists and is not a directory",
            run.display()
        )));
    }
    let foreign: Vec<String> = entries(run)?
        .into_iter()
        .filter(|n| {
            !LEFT_BY_A_START.contains(&n.as_str()) && !n.contains(".tmp-") && !n.ends_with(".png")
        })
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "--out {}: holds files a run did not write ({}); a new run starts in a new or empty \
         directory (choose another --out)",
        run.display(),
        first_names(&foreign)
    )))
}

/// The first three of `names`, and `…` when there are more.
fn first_names<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(AsRef::as_ref).collect();
    let more = if names.len() > 3 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// The names in `dir`.
fn entries(dir: &Path) -> Result<Vec<String>> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for e in read {
        let e = e.map_err(|e| Error::io(dir, e))?;
        out.push(e.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}

/// The files of `dir` that `kind` owns (to remove before an `--overwrite` writes anew).
pub fn owned_files(dir: &Path, kind: Kind) -> Result<Vec<PathBuf>> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|n| n != ".lock" && (kind.owns)(n))
        .map(|n| dir.join(n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVAL: Kind = Kind {
        command: "mgrpo eval",
        what: "an evaluation",
        marker: "summary.json",
        owns: |n| n.ends_with(".jsonl") || n == "table.md" || n == "summary.json",
    };

    #[test]
    fn runs_foreign_files_and_earlier_outputs() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        // a new directory, an empty one
        assert!(!claim(&d.join("new"), EVAL, false, true).unwrap().replacing);
        assert!(d.join("new").is_dir());
        // a run
        let run = d.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("config.resolved.toml"), "").unwrap();
        let e = claim(&run, EVAL, true, true).err().unwrap().to_string();
        assert!(e.contains("holds a training run"), "{e}");
        // someone else's files, even with --overwrite
        let docs = d.join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(docs.join("thesis.tex"), "x").unwrap();
        let e = claim(&docs, EVAL, true, true).err().unwrap().to_string();
        assert!(e.contains("thesis.tex"), "{e}");
        // an earlier evaluation: only with --overwrite
        let ev = d.join("ev");
        std::fs::create_dir(&ev).unwrap();
        std::fs::write(ev.join("summary.json"), "{}").unwrap();
        std::fs::write(ev.join("gsm8k.jsonl"), "").unwrap();
        let e = claim(&ev, EVAL, false, true).err().unwrap().to_string();
        assert!(e.contains("--overwrite"), "{e}");
        let c = claim(&ev, EVAL, true, true).unwrap();
        assert!(c.replacing);
        assert_eq!(owned_files(&ev, EVAL).unwrap().len(), 2);
        // a link and a file
        std::os::unix::fs::symlink(&ev, d.join("link")).unwrap();
        assert!(claim(&d.join("link"), EVAL, true, true).is_err());
        std::fs::write(d.join("file"), "x").unwrap();
        assert!(claim(&d.join("file"), EVAL, true, true).is_err());
    }
}
