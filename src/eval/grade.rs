//! Grading files with the verifier (`mgrpo verify`): `{gold, pred}` pairs, a model's
//! predictions against a dataset, or a dataset's own reference solutions (self-consistency),
//! with per-call timings.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::data::Dataset;
use crate::error::Result;
use crate::run::jsonl::{line_error, read_objects};
use crate::verify::{verify, Extraction, Policy, Verdict};

/// One graded row.
#[derive(Clone, Debug, Serialize)]
pub struct Graded {
    /// The problem's id (dataset modes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The sample number of a prediction (from `mgrpo generate`'s `sample`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<u64>,
    pub correct: bool,
    pub pred_answer: Option<String>,
    pub gold_answer: String,
    #[serde(skip)]
    pub secs: f64,
}

/// Totals and timings of a grading run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub rows: usize,
    pub correct: usize,
    pub no_answer: usize,
    pub accuracy: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Summary {
    pub fn of(rows: &[Graded]) -> Self {
        let mut t: Vec<f64> = rows.iter().map(|r| r.secs * 1e6).collect();
        t.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if t.is_empty() {
                0.0
            } else {
                t[((t.len() as f64 * p).ceil() as usize).clamp(1, t.len()) - 1]
            }
        };
        let correct = rows.iter().filter(|r| r.correct).count();
        Self {
            rows: rows.len(),
            correct,
            no_answer: rows.iter().filter(|r| r.pred_answer.is_none()).count(),
            accuracy: if rows.is_empty() {
                0.0
            } else {
                correct as f64 / rows.len() as f64
            },
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            max_us: t.last().copied().unwrap_or(0.0),
        }
    }

    /// One line for stderr.
    pub fn line(&self) -> String {
        format!(
            "{} rows: {} correct ({:.2}%), {} without an answer; per call p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            self.rows,
            self.correct,
            100.0 * self.accuracy,
            self.no_answer,
            self.p50_us,
            self.p99_us,
            self.max_us
        )
    }
}

fn timed(gold: &str, pred: &str, policy: &Policy, extraction: Extraction) -> (Verdict, f64) {
    let t = Instant::now();
    let v = verify(gold, pred, policy, extraction);
    (v, t.elapsed().as_secs_f64())
}

fn graded(v: Verdict, secs: f64, id: Option<String>, sample: Option<u64>) -> Graded {
    Graded {
        id,
        sample,
        correct: v.correct,
        pred_answer: v.pred_answer,
        gold_answer: v.gold_answer,
        secs,
    }
}

fn field<'a>(
    path: &Path,
    line: usize,
    row: &'a serde_json::Map<String, Value>,
    keys: &[&str],
) -> Result<&'a str> {
    for k in keys {
        if let Some(v) = row.get(*k) {
            return v
                .as_str()
                .ok_or_else(|| line_error(path, line, format!("field `{k}` must be a string")));
        }
    }
    Err(line_error(
        path,
        line,
        format!("missing field `{}`", keys.join("` or `")),
    ))
}

/// Grade `{"gold": …, "pred": …}` rows (`gold` may be a bare answer or a full solution).
pub fn grade_pairs(path: &Path, policy: &Policy) -> Result<Vec<Graded>> {
    read_objects(path)?
        .iter()
        .map(|(line, row)| {
            let gold = field(path, *line, row, &["gold"])?;
            let pred = field(path, *line, row, &["pred"])?;
            // free-form pairs: the lenient default, unless the policy names one
            let extraction = policy.extraction.unwrap_or(Extraction::LastMath);
            let (v, secs) = timed(gold, pred, policy, extraction);
            Ok(graded(v, secs, None, None))
        })
        .collect()
}

/// Grade a model's predictions against `dataset`. Each prediction row has its completion in
/// `completion`, `text` or `pred`, and names its problem by `id`, else by `index` (0-based
/// row, as `mgrpo generate` writes), else by its own position.
pub fn grade_predictions(dataset: &Dataset, path: &Path, policy: &Policy) -> Result<Vec<Graded>> {
    let by_id: HashMap<&str, usize> = dataset
        .problems
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let rows = read_objects(path)?;
    rows.iter()
        .enumerate()
        .map(|(pos, (line, row))| {
            let text = field(path, *line, row, &["completion", "text", "pred"])?;
            let index = if let Some(id) = row.get("id") {
                let id = match id {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                *by_id.get(id.as_str()).ok_or_else(|| {
                    line_error(
                        path,
                        *line,
                        format!("id `{id}` is not in {}", dataset.path.display()),
                    )
                })?
            } else if let Some(i) = row.get("index") {
                i.as_u64()
                    .map(|i| i as usize)
                    .filter(|&i| i < dataset.len())
                    .ok_or_else(|| {
                        line_error(
                            path,
                            *line,
                            format!(
                                "`index` must be a row of the dataset (0..{})",
                                dataset.len()
                            ),
                        )
                    })?
            } else if pos < dataset.len() {
                pos
            } else {
                return Err(line_error(
                    path,
                    *line,
                    format!(
                        "more predictions than the dataset's {} problems",
                        dataset.len()
                    ),
                ));
            };
            let p = &dataset.problems[index];
            let (v, secs) = timed(&p.gold_answer, text, policy, p.format.extraction(policy));
            let sample = row.get("sample").and_then(Value::as_u64);
            Ok(graded(v, secs, Some(p.id.clone()), sample))
        })
        .collect()
}

/// Grade every problem's reference solution against its own gold answer (problems without a
/// solution are skipped).
pub fn self_check(dataset: &Dataset, policy: &Policy) -> Vec<Graded> {
    dataset
        .problems
        .iter()
        .filter_map(|p| {
            let s = p.solution.as_deref()?;
            let (v, secs) = timed(&p.gold_answer, s, policy, p.format.extraction(policy));
            Some(graded(v, secs, Some(p.id.clone()), None))
        })
        .collect()
}
