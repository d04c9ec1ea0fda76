//! Dataset rows from the files people keep them in: JSONL (one object per line) or Parquet
//! (one row per record, nested lists and structs as JSON arrays and objects: the Hugging Face
//! Hub's layout), given as one file, a directory of shards, or a glob of shards
//! (`data/train-*.parquet`). Every row keeps the file and the position it came from — the line
//! of a JSONL file, the row (from 1, across row groups) of a Parquet file — for the errors.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::run::jsonl::{line_error, read_objects};

/// One row: its file, its line or row number, its fields.
pub type SourceRow = (PathBuf, usize, Map<String, Value>);

/// Every row of `spec`, shards in name order.
pub fn read_rows(spec: &Path) -> Result<Vec<SourceRow>> {
    let mut rows = Vec::new();
    for file in shards(spec)? {
        let read = match is_parquet(&file) {
            true => read_parquet(&file)?,
            false => read_objects(&file)?,
        };
        rows.extend(read.into_iter().map(|(n, row)| (file.clone(), n, row)));
    }
    Ok(rows)
}

pub(crate) fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "parquet")
}

fn is_rows_file(path: &Path) -> bool {
    is_parquet(path)
        || path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "json")
}

/// The files `spec` names: itself; a directory's `.parquet`, `.jsonl` and `.json` files; or
/// the files a `*` / `?` pattern in the last component matches.
pub(crate) fn shards(spec: &Path) -> Result<Vec<PathBuf>> {
    let pattern = spec.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let is_dir = spec.is_dir();
    let (dir, missing) = if is_dir {
        (spec, "no .parquet, .jsonl or .json files in this directory")
    } else if spec.exists() || !pattern.contains(['*', '?']) {
        return Ok(vec![spec.to_path_buf()]); // read_objects names a missing file
    } else {
        let parent = spec.parent().filter(|p| !p.as_os_str().is_empty());
        (
            parent.unwrap_or(Path::new(".")),
            "no file matches this pattern",
        )
    };
    let keep = |p: &Path| match is_dir {
        true => is_rows_file(p),
        false => {
            let name = p.file_name().and_then(|n| n.to_str());
            p.is_file() && name.is_some_and(|n| wildcard(pattern, n))
        }
    };
    let mut files: Vec<PathBuf> = list(dir)?.into_iter().filter(|p| keep(p)).collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!("{}: {missing}", spec.display())));
    }
    Ok(files)
}

/// `spec` as an absolute path (a run's config records it so, for `--resume` from anywhere):
/// a glob keeps its last component and has its directory made absolute.
pub fn absolute(spec: &Path) -> Result<PathBuf> {
    if spec.exists() {
        return std::fs::canonicalize(spec).map_err(|e| Error::io(spec, e));
    }
    let name = spec.file_name().unwrap_or_default();
    let parent = spec.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(parent).map_err(|e| Error::io(spec, e))?;
    Ok(dir.join(name))
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    entries
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect()
}

/// `*` (any run of characters) and `?` (one character) against a whole file name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // the classic two-pointer match with backtracking to the last `*`
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            (i, j) = (i + 1, j + 1);
        } else if i < p.len() && p[i] == '*' {
            (star, mark, i) = (Some(i), j, i + 1);
        } else if let Some(s) = star {
            (i, mark) = (s + 1, mark + 1);
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The rows of a Parquet file as JSON objects, numbered from 1.
fn read_parquet(path: &Path) -> Result<Vec<(usize, Map<String, Value>)>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: parquet::errors::ParquetError| {
        Error::Invalid(format!(
            "{}: not a readable Parquet file: {e}",
            path.display()
        ))
    };
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let expected = usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut rows = Vec::with_capacity(expected.min(1 << 20));
    for (i, row) in reader.into_iter().enumerate() {
        let n = i + 1;
        let row = row.map_err(|e| line_error(path, n, format!("unreadable Parquet row: {e}")))?;
        match row.to_json_value() {
            Value::Object(map) => rows.push((n, map)),
            other => {
                return Err(line_error(
                    path,
                    n,
                    format!("expected a record, got {other}"),
                ));
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        for (p, n, want) in [
            ("train-*.parquet", "train-00000-of-00002.parquet", true),
            ("train-*.parquet", "test-00000-of-00001.parquet", false),
            ("*.jsonl", "a.jsonl", true),
            ("*.jsonl", "a.jsonl.tmp", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("**x*", "yyxyy", true),
        ] {
            assert_eq!(wildcard(p, n), want, "{p} {n}");
        }
    }
}
