//! JSONL input files: one JSON object per line, blank lines skipped, every error naming the
//! file and line.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The longest line a JSONL input may have: parsing and tokenizing a row costs a hundred
/// times its bytes (a 100 MB line reached 10 GB), and no problem is 16 MiB of text.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The JSON objects of `path` with their 1-based line numbers.
pub fn read_objects(path: &Path) -> Result<Vec<(usize, Map<String, Value>)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(line_error(
                path,
                n,
                format!(
                    "{} bytes on one line, beyond the {} MiB a row may hold (a row is one \
                     problem, prompt or example)",
                    line.len(),
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| line_error(path, n, format!("invalid JSON: {e}")))?;
        match v {
            Value::Object(obj) => rows.push((n, obj)),
            _ => return Err(line_error(path, n, "expected a JSON object".into())),
        }
    }
    Ok(rows)
}

/// An error about line `line` of `path`.
pub fn line_error(path: &Path, line: usize, msg: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        line,
        msg,
    }
}

/// A list of token ids (non-negative integers that fit in `u32`); `None` for anything else.
pub fn token_ids(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
        .collect()
}

/// A number written as `null` (serde_json writes NaN so) read back as NaN: a metric with no
/// value that step (a reward no row had), so that a run whose line has one can be resumed.
pub(crate) fn nan_from_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<f32, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}
