//! Models named by their Hugging Face Hub id, found in the local cache and never downloaded.
//!
//! `ORG/NAME[@REVISION]` resolves the way `huggingface_hub` lays its cache out: the cache is
//! `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub`; the model is `models--ORG--NAME/`, whose `refs/REVISION` (default
//! `main`) holds a commit hash naming `snapshots/<hash>/`, the model directory. A revision that
//! is itself a commit hash names its snapshot directly. A path that exists on disk is always
//! that path: a directory called `org/name` wins over the hub id.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The model directory `spec` names: `spec` itself when it exists or is not shaped like a hub
/// id (a later step reports what is wrong with it), else the cached snapshot of the hub id, or
/// an error naming the cache path searched and the command that would fetch the model.
pub fn locate(spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return Ok(spec.to_path_buf());
    }
    let Some(id) = spec.to_str().and_then(HubId::parse) else {
        return Ok(spec.to_path_buf());
    };
    let cache = cache_dir().ok_or_else(|| {
        Error::checkpoint(
            spec,
            "not a directory, and no Hugging Face cache to look the id up in (set HF_HUB_CACHE, \
             HF_HOME or HOME)",
        )
    })?;
    id.snapshot(&cache)
}

/// `ORG/NAME` with an optional `@REVISION`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HubId<'a> {
    repo: &'a str,
    revision: &'a str,
}

impl<'a> HubId<'a> {
    /// A hub id as `huggingface_hub` validates them: `ORG/NAME`, each part letters, digits,
    /// `-`, `_` and `.`, not starting or ending with `-` or `.`, no `--` or `..`, at most 96
    /// characters; `@REVISION` (a branch, tag or commit) optional.
    fn parse(spec: &'a str) -> Option<Self> {
        let (repo, revision) = match spec.split_once('@') {
            Some((repo, rev)) if !rev.is_empty() && !rev.contains("..") => (repo, rev),
            Some(_) => return None,
            None => (spec, "main"),
        };
        let (org, name) = repo.split_once('/')?;
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !p.starts_with(['-', '.'])
                && !p.ends_with(['-', '.'])
                && !p.contains("--")
                && !p.contains("..")
        };
        (repo.len() <= 96 && part_ok(org) && part_ok(name)).then_some(Self { repo, revision })
    }

    /// The repository's folder in the cache (`models--ORG--NAME`).
    fn folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    /// The snapshot directory of this revision in `cache`.
    fn snapshot(&self, cache: &Path) -> Result<PathBuf> {
        let repo_dir = cache.join(self.folder());
        let fetch = format!("hf download {}", self.repo);
        if !repo_dir.is_dir() {
            return Err(Error::checkpoint(
                &repo_dir,
                format!(
                    "`{}` is not a directory and not in the Hugging Face cache; nothing is \
                     downloaded: fetch it with `{fetch}` (or `huggingface-cli download {}`), or \
                     set HF_HUB_CACHE to the cache that holds it",
                    self.repo, self.repo
                ),
            ));
        }
        let ref_file = repo_dir.join("refs").join(self.revision);
        let commit = if ref_file.is_file() {
            let text = std::fs::read_to_string(&ref_file).map_err(|e| Error::io(&ref_file, e))?;
            text.trim().to_string()
        } else {
            self.revision.to_string()
        };
        let snapshot = repo_dir.join("snapshots").join(&commit);
        let safe = !commit.is_empty() && !commit.contains(['/', '\\']) && commit != "..";
        if safe && snapshot.is_dir() {
            return Ok(snapshot);
        }
        let known = known_refs(&repo_dir);
        Err(Error::checkpoint(
            &repo_dir,
            format!(
                "revision `{}` of `{}` is not in the cache (cached refs: {}); fetch it with \
                 `{fetch} --revision {}`",
                self.revision,
                self.repo,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
                self.revision
            ),
        ))
    }
}

/// The refs a cached repository has (`refs/main`, `refs/pr/1`, …), sorted.
fn known_refs(repo_dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{name}/"), out);
            } else {
                out.push(format!("{prefix}{name}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_dir.join("refs"), "", &mut out);
    out.sort();
    out
}

/// The hub cache directory, as `huggingface_hub` finds it.
fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("HF_HUB_CACHE")
        .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|x| x.join("huggingface/hub")))
        .or_else(|| var("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_are_validated_as_huggingface_hub_does() {
        let id = HubId::parse("Qwen/Qwen2.5-Math-1.5B").unwrap();
        assert_eq!((id.repo, id.revision), ("Qwen/Qwen2.5-Math-1.5B", "main"));
        assert_eq!(id.folder(), "models--Qwen--Qwen2.5-Math-1.5B");
        let id = HubId::parse("meta-llama/Llama-3.2-1B@v1.0").unwrap();
        assert_eq!(id.revision, "v1.0");
        for bad in [
            "model",
            "runs/a/model",
            "./model",
            "/abs/path",
            "org/",
            "org/na me",
            "org/-name",
            "org/name.",
            "org/na--me",
            "org/na..me",
            "org/name@",
            "org/name@../x",
        ] {
            assert_eq!(HubId::parse(bad), None, "{bad}");
        }
    }

    /// A path that is not shaped like a hub id, or that exists, is returned as given.
    #[test]
    fn paths_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(locate(dir.path()).unwrap(), dir.path());
        assert_eq!(
            locate(Path::new("no-such-dir")).unwrap(),
            Path::new("no-such-dir")
        );
    }
}
