//! What a run was started with (`RUN/identity.json`), so that `--resume` continues that run
//! and no other: the resolved config as written (its seed included) and the sha256 of every
//! file of the dataset and the evaluation set. Written before `config.resolved.toml` at the
//! start; on resume an edited config (a changed seed) or a changed dataset file is refused,
//! naming the keys or the file, instead of training on silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::sha256;
use super::TrainConfig;
use crate::error::{Error, Result};
use crate::run::fsutil::write_atomic;

/// The file's name in a run directory.
pub const IDENTITY: &str = "identity.json";

/// One input file as it was when the run started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHash {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// What a run was started with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// `config.resolved.toml` as first written.
    pub config: String,
    /// The seed (also in `config`; here for a reader of this file).
    pub seed: u64,
    /// The files of `dataset` and `eval_dataset`, by key.
    pub inputs: BTreeMap<String, Vec<FileHash>>,
}

fn hashes(spec: &Path) -> Result<Vec<FileHash>> {
    crate::data::rows::shards(spec)?
        .into_iter()
        .map(|path| {
            let bytes = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            Ok(FileHash {
                sha256: sha256(&path)?,
                bytes,
                path,
            })
        })
        .collect()
}

fn inputs(cfg: &TrainConfig) -> Result<BTreeMap<String, Vec<FileHash>>> {
    let mut out = BTreeMap::new();
    out.insert("dataset".to_string(), hashes(&cfg.dataset)?);
    if let Some(eval) = &cfg.eval_dataset {
        out.insert("eval_dataset".to_string(), hashes(eval)?);
    }
    Ok(out)
}

/// Record what the run in `run` starts with: `resolved` and its text `toml`.
pub fn record(run: &Path, resolved: &TrainConfig, toml: &str) -> Result<()> {
    let id = Identity {
        config: toml.to_string(),
        seed: resolved.seed,
        inputs: inputs(resolved)?,
    };
    let text = serde_json::to_string_pretty(&id).map_err(|e| Error::serialize(IDENTITY, e))?;
    write_atomic(&run.join(IDENTITY), text.as_bytes())
}

/// A TOML document's values by dotted key (`reward.funcs`); nothing for text that is not TOML.
fn flatten(text: &str) -> BTreeMap<String, String> {
    fn flat(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flat(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(t) = text.parse::<toml::Table>() {
        flat("", &toml::Value::Table(t), &mut out);
    }
    out
}

/// Keys a restart may change (`train --resume` takes them from the command line,
/// [`take_launch`]): how a node reaches the others.
pub const LAUNCH: &[&str] = &["rendezvous", "node_secret_file", "node_timeout_s"];

/// `resumed` (a run's stored config) with the [`LAUNCH`] keys of `given` (the command line's).
pub fn take_launch(resumed: &mut TrainConfig, given: &TrainConfig) {
    resumed.rendezvous.clone_from(&given.rendezvous);
    resumed.node_secret_file.clone_from(&given.node_secret_file);
    resumed.node_timeout_s = given.node_timeout_s;
}

/// Keys that may differ between the nodes of a run besides [`LAUNCH`]: where each node keeps
/// its files (their contents are compared instead, [`node_identity`]), and its rank.
const NODE_LOCAL: &[&str] = &[
    "model",
    "dataset",
    "eval_dataset",
    "output_dir",
    "node_rank",
];

/// What must be the same on every node of a multi-node run, by name: every key of the
/// resolved config but the node-local ones, and the sha256 of the model's files (its config
/// and weights), the dataset's and the evaluation set's.
pub fn node_identity(cfg: &TrainConfig) -> Result<BTreeMap<String, String>> {
    let mut out = flatten(&cfg.to_toml()?);
    out.retain(|k, _| !NODE_LOCAL.contains(&k.as_str()) && !LAUNCH.contains(&k.as_str()));
    let digest = |f: &FileHash| format!("{} bytes, sha256 {}…", f.bytes, &f.sha256[..16]);
    for (key, files) in inputs(cfg)? {
        let all: Vec<String> = files.iter().map(digest).collect();
        out.insert(format!("{key} (contents)"), all.join("; "));
    }
    let mut weights: Vec<PathBuf> = std::fs::read_dir(&cfg.model)
        .map_err(|e| Error::io(&cfg.model, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name == "config.json" || name.ends_with(".safetensors")
        })
        .collect();
    weights.sort();
    for path in weights {
        let hash = FileHash {
            bytes: std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len(),
            sha256: sha256(&path)?,
            path,
        };
        let name = hash.path.file_name().unwrap_or_default().to_string_lossy();
        out.insert(format!("model/{name} (contents)"), digest(&hash));
    }
    Ok(out)
}

/// The keys (dotted) whose values differ between two TOML documents, with both values; the
/// keys in `skip` left out.
pub fn differences(was: &str, now: &str, skip: &[&str]) -> Vec<String> {
    let parse = |text: &str| {
        let mut keys = flatten(text);
        keys.retain(|k, _| !skip.contains(&k.as_str()));
        keys
    };
    let (a, b) = (parse(was), parse(now));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let none = "(unset)".to_string();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                a.get(k).unwrap_or(&none),
                b.get(k).unwrap_or(&none)
            )
        })
        .collect()
}

/// Check that the run in `run` is continued with what it started with: its
/// `config.resolved.toml` unedited, `given` (the config a start-or-continue command line
/// resolves to) the same, its dataset files unchanged. A run from before this file existed is
/// not checked (a warning says so).
pub fn check(run: &Path, cfg: &TrainConfig, given: Option<&str>) -> Result<()> {
    let path = run.join(IDENTITY);
    if !path.exists() {
        tracing::warn!(
            run = %run.display(),
            "no {IDENTITY} (a run started by an older mgrpo): its config and dataset are not \
             checked against what it started with"
        );
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let id: Identity = serde_json::from_str(&text)
        .map_err(|e| Error::checkpoint(&path, format!("not a run identity: {e}")))?;
    let config_path = run.join("config.resolved.toml");
    let now = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let edited = differences(&id.config, &now, &[]);
    if !edited.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: edited since the run started ({}); a run continues only with the config it \
             started with: undo the edit, or start a new run with another --out",
            config_path.display(),
            edited.join("; ")
        )));
    }
    if let Some(given) = given {
        // a node of a multi-node run may reach the others otherwise after a restart
        let changed = differences(&id.config, given, LAUNCH);
        if !changed.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: this run was started with another config ({}); --resume continues a run \
                 only with the config it started with: drop the changes, or choose another --out",
                run.display(),
                changed.join("; ")
            )));
        }
    }
    for (key, files) in &id.inputs {
        let spec = match key.as_str() {
            "dataset" => Some(&cfg.dataset),
            _ => cfg.eval_dataset.as_ref(),
        };
        let Some(spec) = spec else { continue };
        let current = hashes(spec)?;
        let names = |v: &[FileHash]| v.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        if names(&current) != names(files) {
            return Err(Error::Invalid(format!(
                "{key} {}: its files are not those the run started with ({} then, {} now); a \
                 run continues only on the data it started with",
                spec.display(),
                files.len(),
                current.len()
            )));
        }
        for (was, now) in files.iter().zip(&current) {
            if was != now {
                return Err(Error::Invalid(format!(
                    "{key} {}: changed since the run started ({} bytes, sha256 {}… then; {} \
                     bytes, sha256 {}… now); a run continues only on the data it started with: \
                     restore the file, or start a new run",
                    now.path.display(),
                    was.bytes,
                    &was.sha256[..12],
                    now.bytes,
                    &now.sha256[..12]
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_dotted_keys() {
        let was = "seed = 1\nmodel = \"m\"\n[reward]\nfuncs = [\"accuracy\"]\n";
        let now = "seed = 2\nmodel = \"m\"\n[reward]\nfuncs = [\"format\"]\nx = 1\n";
        assert_eq!(
            differences(was, now, &[]),
            vec![
                "reward.funcs: [\"accuracy\"] → [\"format\"]".to_string(),
                "reward.x: (unset) → 1".into(),
                "seed: 1 → 2".into(),
            ]
        );
        assert!(differences(was, was, &[]).is_empty());
    }
}
