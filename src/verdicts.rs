//! One evaluation's verdicts (each problem's id, right at turn 1, right at turn 2), read from
//! the per-problem JSONL that `mgrpo eval` and the in-run evaluation write, and the Table-2
//! metrics as per-problem values whose means are the metrics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::jsonl::{line_error, read_objects};

/// A Table-2 metric as a per-problem value whose mean over problems is the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    AccT1,
    AccT2,
    /// Δ(t1,t2) = Acc@t2 − Acc@t1.
    Delta,
    IToC,
    CToI,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::AccT1,
        Metric::AccT2,
        Metric::Delta,
        Metric::IToC,
        Metric::CToI,
    ];

    /// The value of one problem that was right at turn 1 (`t1`) and at turn 2 (`t2`) or not.
    pub fn value(self, (t1, t2): (bool, bool)) -> f64 {
        match self {
            Metric::AccT1 => f64::from(t1),
            Metric::AccT2 => f64::from(t2),
            Metric::Delta => f64::from(t2) - f64::from(t1),
            Metric::IToC => f64::from(!t1 && t2),
            Metric::CToI => f64::from(t1 && !t2),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Metric::AccT1 => "Acc@t1",
            Metric::AccT2 => "Acc@t2",
            Metric::Delta => "Δ(t1,t2)",
            Metric::IToC => "Δi→c",
            Metric::CToI => "Δc→i",
        }
    }
}

/// One evaluation's verdicts: each problem's id and (right at t1, right at t2).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub path: PathBuf,
    pub ids: Vec<String>,
    pub verdicts: Vec<(bool, bool)>,
}

impl Verdicts {
    /// Read the `id`, `turn1_correct` and `turn2_correct` of every line of an evaluation JSONL.
    pub fn read(path: &Path) -> Result<Self> {
        let (mut ids, mut verdicts) = (Vec::new(), Vec::new());
        let mut seen = HashMap::new();
        for (line, obj) in read_objects(path)? {
            let id = match obj.get("id") {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => return Err(line_error(path, line, "`id` must be a string".into())),
            };
            let flag = |key: &str| match obj.get(key) {
                Some(serde_json::Value::Bool(b)) => Ok(*b),
                _ => Err(line_error(
                    path,
                    line,
                    format!("`{key}` must be true or false"),
                )),
            };
            let v = (flag("turn1_correct")?, flag("turn2_correct")?);
            if let Some(first) = seen.insert(id.clone(), line) {
                let msg = format!("problem `{id}` again (first on line {first})");
                return Err(line_error(path, line, msg));
            }
            ids.push(id);
            verdicts.push(v);
        }
        if ids.is_empty() {
            return Err(Error::Invalid(format!("{}: no problems", path.display())));
        }
        Ok(Self {
            path: path.to_path_buf(),
            ids,
            verdicts,
        })
    }

    /// The verdicts in the problem order `ids`; an error if the two sets of problems differ.
    pub fn aligned(&self, ids: &[String], reference: &Path) -> Result<Vec<(bool, bool)>> {
        let index: HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let differ = |what: String| {
            Error::Invalid(format!(
                "{}: not the problems of {} ({what}); rows and seeds are paired by problem",
                self.path.display(),
                reference.display()
            ))
        };
        if self.ids.len() != ids.len() {
            return Err(differ(format!("{} against {}", self.ids.len(), ids.len())));
        }
        ids.iter()
            .map(|id| match index.get(id.as_str()) {
                Some(&i) => Ok(self.verdicts[i]),
                None => Err(differ(format!("`{id}` is missing"))),
            })
            .collect()
    }

    /// The same file with only the keys the statistics need, written atomically.
    pub fn write_compact(&self, path: &Path) -> Result<()> {
        let mut text = String::new();
        for (id, (t1, t2)) in self.ids.iter().zip(&self.verdicts) {
            let line = serde_json::json!({"id": id, "turn1_correct": t1, "turn2_correct": t2});
            text.push_str(&line.to_string());
            text.push('\n');
        }
        write_atomic(path, text.as_bytes())
    }
}
