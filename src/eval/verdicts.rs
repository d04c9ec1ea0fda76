//! One evaluation's verdicts, read from the per-problem JSONL that `mgrpo eval` and the in-run
//! evaluation write: for each problem its id, its labels (string fields such as the task's
//! `family`) and, for each of its samples, right at turn 1 and right at turn 2 (and, where the
//! file has them, whether each turn stated an answer and what the turn-2 check did). The
//! Table-2 metrics are per-sample values whose per-problem mean is the problem's value.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::data::check_anatomy::CheckAnatomy;
use crate::error::{Error, Result};
use crate::run::fsutil::write_atomic;
use crate::run::jsonl::{line_error, read_objects};

/// A Table-2 metric as a per-sample value whose mean is the metric.
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

    /// The value of one sample that was right at turn 1 (`t1`) and at turn 2 (`t2`) or not.
    pub fn value(self, (t1, t2): (bool, bool)) -> f64 {
        match self {
            Metric::AccT1 => f64::from(t1),
            Metric::AccT2 => f64::from(t2),
            Metric::Delta => f64::from(t2) - f64::from(t1),
            Metric::IToC => f64::from(!t1 && t2),
            Metric::CToI => f64::from(t1 && !t2),
        }
    }

    /// The values the metric can take (an interval is clipped to them: the truth lies inside).
    pub fn range(self) -> (f64, f64) {
        match self {
            Metric::Delta => (-1.0, 1.0),
            _ => (0.0, 1.0),
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

/// One sampled pair of answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub t1: bool,
    pub t2: bool,
    /// Whether turn 1 / turn 2 stated an answer (`None`: the file does not say).
    pub answered: (Option<bool>, Option<bool>),
    /// What the turn-2 check did (`None`: no check found, or the file keeps no text).
    pub check: Option<CheckAnatomy>,
}

impl Sample {
    pub fn pair(&self) -> (bool, bool) {
        (self.t1, self.t2)
    }
}

/// Keys of an evaluation line that are not labels (answers, texts, verdicts).
const NOT_LABELS: &[&str] = &[
    "id",
    "gold",
    "turn1",
    "turn2",
    "turn1_answer",
    "turn2_answer",
];

/// One evaluation's verdicts: each problem's id, labels and samples (the same number for every
/// problem).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub path: PathBuf,
    pub ids: Vec<String>,
    pub labels: Vec<BTreeMap<String, String>>,
    pub samples: Vec<Vec<Sample>>,
}

/// `key` of `obj` as a bool, or an error naming the line.
fn flag(obj: &Map<String, Value>, key: &str, path: &Path, line: usize) -> Result<bool> {
    match obj.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(line_error(
            path,
            line,
            format!("`{key}` must be true or false"),
        )),
    }
}

/// Whether a turn stated an answer: `<turn>_answered` in a compact file, else whether
/// `<turn>_answer` is a string in a full one.
fn answered(obj: &Map<String, Value>, turn: &str) -> Option<bool> {
    match (
        obj.get(&format!("{turn}_answered")),
        obj.get(&format!("{turn}_answer")),
    ) {
        (Some(Value::Bool(b)), _) => Some(*b),
        (_, answer) => answer.map(Value::is_string),
    }
}

fn sample_of(obj: &Map<String, Value>, path: &Path, line: usize) -> Result<Sample> {
    let check = match (obj.get("check"), obj.get("turn2")) {
        (Some(v), _) => Some(CheckAnatomy::from_json(v).ok_or_else(|| {
            line_error(
                path,
                line,
                "`check` must be [columns right, columns, steps right, steps, flagged]".into(),
            )
        })?),
        (None, Some(Value::String(text))) => CheckAnatomy::of_text(text),
        _ => None,
    };
    Ok(Sample {
        t1: flag(obj, "turn1_correct", path, line)?,
        t2: flag(obj, "turn2_correct", path, line)?,
        answered: (answered(obj, "turn1"), answered(obj, "turn2")),
        check,
    })
}

impl Verdicts {
    /// Read every line of an evaluation JSONL: `id`, `turn1_correct`, `turn2_correct`, and
    /// `sample` (0, 1, … for several samples of a problem; absent for one).
    pub fn read(path: &Path) -> Result<Self> {
        let mut index: HashMap<String, (usize, usize)> = HashMap::new();
        let mut ids = Vec::new();
        let mut labels = Vec::new();
        let mut samples: Vec<BTreeMap<u64, Sample>> = Vec::new();
        for (line, obj) in read_objects(path)? {
            let id = match obj.get("id") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(line_error(path, line, "`id` must be a string".into())),
            };
            let k = match obj.get("sample") {
                None => 0,
                Some(v) => v.as_u64().ok_or_else(|| {
                    line_error(path, line, "`sample` must be a whole number ≥ 0".into())
                })?,
            };
            let sample = sample_of(&obj, path, line)?;
            let (slot, first) = *index.entry(id.clone()).or_insert_with(|| {
                ids.push(id.clone());
                let own: BTreeMap<String, String> = obj
                    .iter()
                    .filter(|(key, _)| !NOT_LABELS.contains(&key.as_str()))
                    .filter_map(|(key, v)| v.as_str().map(|s| (key.clone(), s.to_string())))
                    .collect();
                labels.push(own);
                samples.push(BTreeMap::new());
                (samples.len() - 1, line)
            });
            if samples[slot].insert(k, sample).is_some() {
                let msg = format!("problem `{id}` sample {k} again (first on line {first})");
                return Err(line_error(path, line, msg));
            }
        }
        if ids.is_empty() {
            return Err(Error::Invalid(format!("{}: no problems", path.display())));
        }
        let n = samples[0].len();
        let mut out = Vec::with_capacity(samples.len());
        for (id, s) in ids.iter().zip(samples) {
            let numbered = s.keys().copied().eq(0..s.len() as u64);
            if s.len() != n || !numbered {
                return Err(Error::Invalid(format!(
                    "{}: problem `{id}` has samples {:?}, problem `{}` {n} (every problem needs \
                     samples 0, 1, … in equal number)",
                    path.display(),
                    s.keys().collect::<Vec<_>>(),
                    ids[0]
                )));
            }
            out.push(s.into_values().collect());
        }
        Ok(Self {
            path: path.to_path_buf(),
            ids,
            labels,
            samples: out,
        })
    }

    /// Samples per problem.
    pub fn sample_count(&self) -> usize {
        self.samples[0].len()
    }

    /// The samples in the problem order `ids`; an error if the two sets of problems differ.
    pub fn aligned(&self, ids: &[String], reference: &Path) -> Result<Vec<Vec<Sample>>> {
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
                Some(&i) => Ok(self.samples[i].clone()),
                None => Err(differ(format!("`{id}` is missing"))),
            })
            .collect()
    }

    /// The same file with only what the published figures need (the verdicts, the labels,
    /// whether each turn answered, the check's counts), one line per sample, written
    /// atomically.
    pub fn write_compact(&self, path: &Path) -> Result<()> {
        let several = self.sample_count() > 1;
        let mut text = String::new();
        for ((id, labels), samples) in self.ids.iter().zip(&self.labels).zip(&self.samples) {
            for (k, s) in samples.iter().enumerate() {
                let mut line = Map::new();
                line.insert("id".into(), id.clone().into());
                if several {
                    line.insert("sample".into(), k.into());
                }
                for (key, v) in labels {
                    line.insert(key.clone(), v.clone().into());
                }
                line.insert("turn1_correct".into(), s.t1.into());
                line.insert("turn2_correct".into(), s.t2.into());
                if let Some(a) = s.answered.0 {
                    line.insert("turn1_answered".into(), a.into());
                }
                if let Some(a) = s.answered.1 {
                    line.insert("turn2_answered".into(), a.into());
                }
                if let Some(c) = &s.check {
                    line.insert("check".into(), c.to_json());
                }
                text.push_str(&Value::Object(line).to_string());
                text.push('\n');
            }
        }
        write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn samples_are_grouped_by_problem_and_checked() {
        let (_d, path) = write(
            "{\"id\":\"a\",\"sample\":1,\"family\":\"sum\",\"turn1_correct\":true,\"turn2_correct\":false,\"turn1_answer\":\"3\",\"turn2_answer\":null}\n\
             {\"id\":\"b\",\"sample\":0,\"turn1_correct\":false,\"turn2_correct\":false}\n\
             {\"id\":\"a\",\"sample\":0,\"family\":\"sum\",\"turn1_correct\":false,\"turn2_correct\":true}\n\
             {\"id\":\"b\",\"sample\":1,\"turn1_correct\":true,\"turn2_correct\":true}\n",
        );
        let v = Verdicts::read(&path).unwrap();
        assert_eq!(v.ids, ["a", "b"]);
        assert_eq!(v.sample_count(), 2);
        assert_eq!(v.labels[0].get("family").map(String::as_str), Some("sum"));
        assert_eq!(v.samples[0][0].pair(), (false, true));
        assert_eq!(v.samples[0][1].pair(), (true, false));
        assert_eq!(v.samples[0][1].answered, (Some(true), Some(false)));
        assert_eq!(v.samples[0][0].answered, (None, None));
        // compact and back: the same verdicts
        let out = path.with_file_name("c.jsonl");
        v.write_compact(&out).unwrap();
        let back = Verdicts::read(&out).unwrap();
        assert_eq!(
            (back.ids.clone(), back.samples.clone()),
            (v.ids.clone(), v.samples.clone())
        );
        assert_eq!(back.labels, v.labels);
    }

    #[test]
    fn unbalanced_or_repeated_samples_are_refused() {
        let line = |id: &str, k: usize| {
            format!("{{\"id\":\"{id}\",\"sample\":{k},\"turn1_correct\":true,\"turn2_correct\":true}}\n")
        };
        let (_d, path) = write(&(line("a", 0) + &line("a", 1) + &line("b", 0)));
        let err = Verdicts::read(&path).unwrap_err().to_string();
        assert!(err.contains("problem `b` has samples [0]"), "{err}");
        let (_d, path) = write(&(line("a", 0) + &line("a", 0)));
        let err = Verdicts::read(&path).unwrap_err().to_string();
        assert!(
            err.contains(":2:") && err.contains("sample 0 again"),
            "{err}"
        );
        let (_d, path) = write(&(line("a", 1)));
        assert!(Verdicts::read(&path).is_err());
    }
}
