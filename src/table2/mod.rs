//! The MGRPO paper's Table 2 over seeds (`mgrpo table2`), from the per-problem results that
//! `mgrpo eval` writes: every cell a mean with its 95 % interval, the paper's claims as paired
//! tests with a Holm correction over the primary family, the power of each, tables per
//! problem family, and what the turn-2 checks did.
//!
//! A results directory holds `<row>/seed<N>/eval/<data>.jsonl` (one line per problem and
//! sample with `id`, `turn1_correct`, `turn2_correct`, `sample` when there are several; `mgrpo
//! eval --out` writes it, `--export` keeps only what the figures need) and optionally
//! `<row>/seed<N>/wall_s` (the run's wall time in seconds) and `<row>/seed<N>/run/metrics.jsonl`
//! (a training run's log, exported as `run_summary.json`), as `scripts/laptop_table2.sh`
//! leaves them. Problems are paired by id, seeds by number; the statistics are `stats::anova`.

mod checks;
mod report;

use crate::algo::Algorithm;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use crate::eval::verdicts::{Metric, Sample, Verdicts};
use crate::run::fsutil::write_atomic;
use crate::stats::Panel;
pub use checks::checks_table;
pub use report::{claims, components_table, learning_verdict, paired_changes, table, ClaimOptions};

/// The rows of the table before the RL methods, in the paper's order: (directory name,
/// label).
const BASELINES: &[(&str, &str)] = &[
    ("start", "Start model (warm-started SFT)"),
    (
        "intrinsic",
        "Intrinsic self-correction (instruction as a new user turn)",
    ),
    (
        "intrinsic-in-turn",
        "Intrinsic self-correction (instruction inside the assistant turn)",
    ),
    ("star", "STaR"),
    ("star-external", "STaR with external prompts"),
];

/// The rows after the methods: a negative control (a method run without its signal) and a
/// method at another budget.
const VARIANTS: &[(&str, &str)] = &[
    (
        "grpo-random",
        "GRPO with a random reward (control: a coin of the true reward's mean)",
    ),
    (
        "grpo-8q",
        "GRPO at MGRPO's 8 questions per step (rollout tokens matched by steps)",
    ),
];

/// The rows of the table: the baselines, every RL method (`algo::Algorithm::ALL`), then the
/// variants.
pub fn row_names() -> Vec<(&'static str, &'static str)> {
    let methods = Algorithm::ALL.iter().map(|a| (a.key(), a.row_label()));
    BASELINES
        .iter()
        .copied()
        .chain(methods)
        .chain(VARIANTS.iter().copied())
        .collect()
}

/// One seed of a row: its evaluation and the run's wall time.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub seed: u64,
    pub dir: PathBuf,
    pub verdicts: Verdicts,
    /// Aligned with the first evaluation read (every row and seed in one problem order).
    pub aligned: Vec<Vec<Sample>>,
    pub wall_s: Option<f64>,
}

/// The seeds of one row, sorted by seed.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: &'static str,
    pub label: &'static str,
    pub seeds: Vec<SeedRun>,
}

/// Everything under a results directory, and what was left out (a seed directory without
/// per-problem results, e.g. an earlier table that kept only `summary.json`).
#[derive(Debug, Clone)]
pub struct Results {
    pub rows: Vec<Row>,
    pub skipped: Vec<String>,
    /// The problem ids in the order every row is aligned to, and their labels (string fields
    /// of the first evaluation read, such as `family`).
    pub ids: Vec<String>,
    pub labels: Vec<BTreeMap<String, String>>,
}

/// Which problems a table covers: all, or one group of a label (`--by family`).
#[derive(Debug, Clone)]
pub struct Scope {
    pub name: Option<String>,
    pub problems: Vec<usize>,
}

/// The one `*.jsonl` in `eval_dir`, if any.
fn eval_file(eval_dir: &Path) -> Result<Option<PathBuf>> {
    if !eval_dir.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(eval_dir).map_err(|e| Error::io(eval_dir, e))? {
        let path = entry.map_err(|e| Error::io(eval_dir, e))?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            files.push(path);
        }
    }
    match files.len() {
        0 => Ok(None),
        1 => Ok(files.pop()),
        _ => Err(Error::Invalid(format!(
            "{}: {} per-problem files; a Table-2 seed evaluates one dataset",
            eval_dir.display(),
            files.len()
        ))),
    }
}

fn read_wall(path: &Path) -> Result<Option<f64>> {
    let wall = path.join("wall_s");
    if !wall.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&wall).map_err(|e| Error::io(&wall, e))?;
    let secs = text
        .trim()
        .parse::<f64>()
        .map_err(|_| Error::Invalid(format!("{}: not a number of seconds", wall.display())))?;
    Ok(Some(secs))
}

/// Read every `<row>/seed<N>` under `root`.
pub fn load(root: &Path) -> Result<Results> {
    if !root.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: not a directory of Table-2 runs",
            root.display()
        )));
    }
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut reference: Option<(Verdicts, PathBuf)> = None;
    for (key, label) in row_names() {
        let dir = root.join(key);
        if !dir.is_dir() {
            continue;
        }
        let mut seeds = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(seed) = name.strip_prefix("seed").and_then(|s| s.parse().ok()) else {
                continue;
            };
            let Some(file) = eval_file(&path.join("eval"))? else {
                skipped.push(format!("{key} seed {seed}"));
                continue;
            };
            let verdicts = Verdicts::read(&file)?;
            let (first, ref_path) =
                reference.get_or_insert_with(|| (verdicts.clone(), file.clone()));
            let aligned = verdicts.aligned(&first.ids, ref_path)?;
            let wall_s = read_wall(&path)?;
            seeds.push(SeedRun {
                seed,
                dir: path,
                verdicts,
                aligned,
                wall_s,
            });
        }
        seeds.sort_by_key(|s| s.seed);
        if let Some(s) = seeds
            .iter()
            .find(|s| s.aligned[0].len() != seeds[0].aligned[0].len())
        {
            return Err(Error::Invalid(format!(
                "{}: {} samples per problem, seed {} of `{key}` has {} (a row's seeds are \
                 evaluated alike)",
                s.verdicts.path.display(),
                s.aligned[0].len(),
                seeds[0].seed,
                seeds[0].aligned[0].len()
            )));
        }
        if !seeds.is_empty() {
            rows.push(Row { key, label, seeds });
        }
    }
    skipped.sort();
    let (ids, labels) = reference.map_or((vec![], vec![]), |(v, _)| (v.ids, v.labels));
    Ok(Results {
        rows,
        skipped,
        ids,
        labels,
    })
}

/// Numeric keys of a training log (`metrics.jsonl`): the mean of each over all steps, the
/// first 25 and the last 25, and its standard deviation from step to step, so that the rollout budgets, reward windows and layer-2 counts a
/// report quotes survive without the run.
pub fn summarise_log(path: &Path) -> Result<serde_json::Value> {
    let rows = crate::run::jsonl::read_objects(path)?;
    let mut series: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (_, obj) in &rows {
        for (k, v) in obj {
            if let Some(x) = v.as_f64() {
                series.entry(k.clone()).or_default().push(x);
            }
        }
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let summary: serde_json::Map<String, serde_json::Value> = series
        .into_iter()
        .map(|(k, xs)| {
            let w = xs.len().min(25);
            let m = mean(&xs);
            let var =
                xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len().max(2) - 1) as f64;
            let v = serde_json::json!({
                "steps": xs.len(),
                "mean": m,
                "sd": var.sqrt(),
                "first25": mean(&xs[..w]),
                "last25": mean(&xs[xs.len() - w..]),
            });
            (k, v)
        })
        .collect();
    Ok(serde_json::Value::Object(summary))
}

/// A training run's evaluations kept for its report (`mgrpo table2 --compare A B --export`):
/// the two per-problem files compacted, and, when they sit in a run directory
/// (`RUN/eval/step-N.jsonl`), the run's `eval/metrics.jsonl` and the summary of its training
/// log.
pub fn export_run_evals(before: &Verdicts, after: &Verdicts, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    for v in [before, after] {
        let name = v.path.file_name().unwrap_or_default();
        v.write_compact(&out.join(name))?;
    }
    let Some(eval_dir) = before.path.parent() else {
        return Ok(());
    };
    let steps = eval_dir.join("metrics.jsonl");
    if steps.is_file() {
        let bytes = std::fs::read(&steps).map_err(|e| Error::io(&steps, e))?;
        write_atomic(&out.join("metrics.jsonl"), &bytes)?;
    }
    if let Some(run) = eval_dir.parent() {
        let log = run.join("metrics.jsonl");
        if log.is_file() {
            let text = format!("{:#}\n", summarise_log(&log)?);
            write_atomic(&out.join("run_summary.json"), text.as_bytes())?;
        }
    }
    Ok(())
}

impl Results {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    /// Every problem.
    pub fn all(&self) -> Scope {
        Scope {
            name: None,
            problems: (0..self.ids.len()).collect(),
        }
    }

    /// Label every problem with `field` from the dataset `data` (its rows joined by `id`), in
    /// the results and in every seed's verdicts, so that `groups` and `export` see it.
    pub fn join_labels(&mut self, field: &str, data: &Path) -> Result<()> {
        let mut by_id = std::collections::HashMap::new();
        for (line, obj) in crate::run::jsonl::read_objects(data)? {
            if let Some(serde_json::Value::String(id)) = obj.get("id") {
                let v = match obj.get(field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) if !v.is_null() => v.to_string(),
                    _ => {
                        let msg = format!("no `{field}` to group by");
                        return Err(crate::run::jsonl::line_error(data, line, msg));
                    }
                };
                by_id.insert(id.clone(), v);
            }
        }
        let value = |id: &String| {
            by_id.get(id).cloned().ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: no problem `{id}` (the evaluations' problems must be in it)",
                    data.display()
                ))
            })
        };
        for (id, labels) in self.ids.iter().zip(&mut self.labels) {
            labels.insert(field.to_string(), value(id)?);
        }
        for run in self.rows.iter_mut().flat_map(|r| r.seeds.iter_mut()) {
            let v = &mut run.verdicts;
            for (id, labels) in v.ids.iter().zip(&mut v.labels) {
                labels.insert(field.to_string(), value(id)?);
            }
        }
        Ok(())
    }

    /// Whether every problem carries the label `field`.
    pub fn labelled(&self, field: &str) -> bool {
        !self.labels.is_empty() && self.labels.iter().all(|l| l.contains_key(field))
    }

    /// The problems grouped by the label `field` (from the evaluation files, or joined with
    /// `join_labels`); groups in name order.
    pub fn groups(&self, field: &str) -> Result<Vec<Scope>> {
        let values: Vec<String> = self
            .ids
            .iter()
            .zip(&self.labels)
            .map(|(id, l)| {
                l.get(field).cloned().ok_or_else(|| {
                    Error::Invalid(format!(
                        "problem `{id}` has no `{field}` in its evaluation file; name the \
                         dataset that has it with --data"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, v) in values.into_iter().enumerate() {
            groups.entry(v).or_default().push(i);
        }
        Ok(groups
            .into_iter()
            .map(|(name, problems)| Scope {
                name: Some(format!("{field} = {name}")),
                problems,
            })
            .collect())
    }

    /// Write each seed's verdicts (only what the figures need), `summary.json`, `wall_s` and a
    /// summary of the run's training log under `out`, laid out as under the results directory.
    pub fn export(&self, out: &Path) -> Result<()> {
        for row in &self.rows {
            for s in &row.seeds {
                let dir = out.join(row.key).join(format!("seed{}", s.seed));
                let eval = dir.join("eval");
                std::fs::create_dir_all(&eval).map_err(|e| Error::io(&eval, e))?;
                let name = s.verdicts.path.file_name().unwrap_or_default();
                s.verdicts.write_compact(&eval.join(name))?;
                let summary = s.dir.join("eval").join("summary.json");
                if summary.is_file() {
                    let bytes = std::fs::read(&summary).map_err(|e| Error::io(&summary, e))?;
                    write_atomic(&eval.join("summary.json"), &bytes)?;
                }
                if let Some(w) = s.wall_s {
                    write_atomic(&dir.join("wall_s"), format!("{w}\n").as_bytes())?;
                }
                let log = s.dir.join("run").join("metrics.jsonl");
                let kept = s.dir.join("run_summary.json");
                let text = if log.is_file() {
                    Some(format!("{:#}\n", summarise_log(&log)?))
                } else if kept.is_file() {
                    Some(std::fs::read_to_string(&kept).map_err(|e| Error::io(&kept, e))?)
                } else {
                    None
                };
                if let Some(text) = text {
                    write_atomic(&dir.join("run_summary.json"), text.as_bytes())?;
                }
            }
        }
        Ok(())
    }
}

/// `metric` of `row`'s seeds `seeds` (in that order) over the problems of `scope`, as a panel.
pub fn panel(row: &Row, metric: Metric, seeds: &[u64], scope: &Scope) -> Result<Panel> {
    let runs: Vec<&SeedRun> = seeds
        .iter()
        .filter_map(|s| row.seeds.iter().find(|r| r.seed == *s))
        .collect();
    let samples = runs.first().map_or(1, |r| r.aligned[0].len());
    let mut values = Vec::with_capacity(runs.len() * scope.problems.len() * samples);
    for r in &runs {
        for &p in &scope.problems {
            values.extend(r.aligned[p].iter().map(|s| metric.value(s.pair())));
        }
    }
    Panel::new(runs.len(), scope.problems.len(), samples, values)
}

#[cfg(test)]
mod tests;
