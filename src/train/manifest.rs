//! A checkpoint proves itself: `manifest.json` holds the sha256 of every other file of the
//! checkpoint, written last (just before the directory is renamed into place) and checked before
//! anything is loaded on resume, so flipped bytes, a truncated file, a missing or an extra one is
//! refused by name instead of training on.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::run::fsutil::write_atomic;

/// The manifest's file name inside a checkpoint.
pub const MANIFEST: &str = "manifest.json";

/// The sha256 of a file's bytes, in hex.
pub(crate) fn sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Every file under `dir` (relative paths with `/`), the manifest excluded.
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        for e in std::fs::read_dir(&here).map_err(|e| Error::io(&here, e))? {
            let e = e.map_err(|e| Error::io(&here, e))?;
            let rel = rel.join(e.file_name());
            let kind = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            if kind.is_dir() {
                stack.push(rel);
            } else if rel != Path::new(MANIFEST) {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn key(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Write `dir/manifest.json` over every file now in `dir`.
pub fn write_manifest(dir: &Path) -> Result<()> {
    let mut sums = BTreeMap::new();
    for rel in files(dir)? {
        sums.insert(key(&rel), sha256(&dir.join(&rel))?);
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({ "sha256": sums }))
        .map_err(|e| Error::serialize("a checkpoint manifest", e))?;
    write_atomic(&dir.join(MANIFEST), json.as_bytes())
}

/// Check `dir` against its manifest. `Ok(false)`: the checkpoint has no manifest (written by
/// an older mgrpo), so it cannot be verified.
pub fn verify_manifest(dir: &Path) -> Result<bool> {
    let path = dir.join(MANIFEST);
    if !path.is_file() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let bad = |msg: String| Error::checkpoint(&path, msg);
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let sums = v["sha256"]
        .as_object()
        .ok_or_else(|| bad("no `sha256` table".into()))?;
    let present = files(dir)?;
    for rel in &present {
        let k = key(rel);
        let Some(want) = sums.get(&k).and_then(|s| s.as_str()) else {
            return Err(Error::checkpoint(
                dir.join(rel),
                "not in the checkpoint's manifest (a file added after it was written)",
            ));
        };
        if sha256(&dir.join(rel))? != want {
            return Err(Error::checkpoint(
                dir.join(rel),
                "corrupt: its sha256 differs from the checkpoint's manifest",
            ));
        }
    }
    if let Some(missing) = sums.keys().find(|k| !present.iter().any(|r| &key(r) == *k)) {
        return Err(Error::checkpoint(
            dir.join(missing),
            "missing: the checkpoint's manifest lists it",
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_missing_and_extra_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("model")).unwrap();
        std::fs::write(d.join("model/w.bin"), [1u8, 2, 3]).unwrap();
        std::fs::write(d.join("state.json"), "{}").unwrap();
        assert!(!verify_manifest(d).unwrap(), "no manifest yet");
        write_manifest(d).unwrap();
        assert!(verify_manifest(d).unwrap());
        std::fs::write(d.join("model/w.bin"), [1u8, 2, 4]).unwrap();
        let e = verify_manifest(d).unwrap_err().to_string();
        assert!(e.contains("model/w.bin: corrupt"), "{e}");
        std::fs::remove_file(d.join("model/w.bin")).unwrap();
        let e = verify_manifest(d).unwrap_err().to_string();
        assert!(e.contains("model/w.bin: missing"), "{e}");
        write_manifest(d).unwrap();
        std::fs::write(d.join("extra"), "x").unwrap();
        let e = verify_manifest(d).unwrap_err().to_string();
        assert!(e.contains("extra: not in the checkpoint's manifest"), "{e}");
    }
}
