//! The MGRPO paper's Table 2 over seeds, with confidence intervals and the paper's claims as
//! paired tests (`mgrpo table2`), from the per-problem results that `mgrpo eval` writes.
//!
//! A results directory holds `<row>/seed<N>/eval/<data>.jsonl` (one line per problem with `id`,
//! `turn1_correct` and `turn2_correct`; `mgrpo eval --out` writes it, `--export` keeps only
//! those keys) and optionally `<row>/seed<N>/wall_s` (the run's wall time in seconds), as
//! `scripts/laptop_table2.sh` leaves them. Every cell is a mean over seeds and problems with its
//! 95 % crossed-bootstrap interval (`stats`); every claim is a paired difference, problems paired
//! by id and seeds by number.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::stats::{crossed_bootstrap, Interval};
pub use crate::verdicts::{Metric, Verdicts};

/// The rows of the table, in the paper's order: (directory name, label).
pub const ROWS: &[(&str, &str)] = &[
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
    ("ppo", "PPO (one round)"),
    ("grpo", "GRPO (one round)"),
    ("mgrpo", "MGRPO"),
    ("igrpo", "iGRPO"),
];

/// One seed of a row: its evaluation and the run's wall time.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub seed: u64,
    pub dir: PathBuf,
    pub verdicts: Verdicts,
    /// Aligned with the first evaluation read (every row and seed in one problem order).
    pub aligned: Vec<(bool, bool)>,
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
    pub problems: usize,
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
    let mut reference: Option<(Vec<String>, PathBuf)> = None;
    for &(key, label) in ROWS {
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
            let (ids, ref_path) =
                reference.get_or_insert_with(|| (verdicts.ids.clone(), file.clone()));
            let aligned = verdicts.aligned(ids, ref_path)?;
            let wall = path.join("wall_s");
            let wall_s = if wall.is_file() {
                let text = std::fs::read_to_string(&wall).map_err(|e| Error::io(&wall, e))?;
                let secs = text.trim().parse::<f64>().map_err(|_| {
                    Error::Invalid(format!("{}: not a number of seconds", wall.display()))
                })?;
                Some(secs)
            } else {
                None
            };
            seeds.push(SeedRun {
                seed,
                dir: path,
                verdicts,
                aligned,
                wall_s,
            });
        }
        seeds.sort_by_key(|s| s.seed);
        if !seeds.is_empty() {
            rows.push(Row { key, label, seeds });
        }
    }
    skipped.sort();
    let problems = reference.map_or(0, |(ids, _)| ids.len());
    Ok(Results {
        rows,
        skipped,
        problems,
    })
}

impl Results {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    /// Write each seed's verdicts (only the keys the statistics read), `summary.json` and
    /// `wall_s` under `out`, laid out as under the results directory.
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
            }
        }
        Ok(())
    }
}

/// `metric` of `row`'s seeds `seeds` (in that order) as a seeds × problems matrix.
fn matrix(row: &Row, metric: Metric, seeds: &[u64]) -> Vec<Vec<f64>> {
    seeds
        .iter()
        .filter_map(|s| row.seeds.iter().find(|r| r.seed == *s))
        .map(|r| r.aligned.iter().map(|&v| metric.value(v)).collect())
        .collect()
}

fn cell(ci: Interval) -> String {
    let ci = ci.scaled(100.0);
    format!("{:.1} [{:.1}, {:.1}]", ci.mean, ci.lo, ci.hi)
}

/// The table: one row per method, each cell the mean over seeds and problems in percent with
/// its 95 % interval, and the mean ± standard deviation of the wall time.
pub fn table(results: &Results, resamples: usize) -> Result<String> {
    let mut out = String::from(
        "| Method | seeds | Acc@t1 | Acc@t2 | Δ(t1,t2) | Δi→c | Δc→i | wall time (s) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &results.rows {
        let seeds: Vec<u64> = row.seeds.iter().map(|s| s.seed).collect();
        let mut cells = Vec::new();
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            let ci = crossed_bootstrap(&matrix(row, m, &seeds), resamples, 0.95, i as u64)?;
            cells.push(cell(ci));
        }
        let walls: Vec<f64> = row.seeds.iter().filter_map(|s| s.wall_s).collect();
        let wall = match walls.len() {
            0 => "–".to_string(),
            1 => format!("{:.0}", walls[0]),
            n => {
                let mean = walls.iter().sum::<f64>() / n as f64;
                let var = walls.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                format!("{mean:.0} ± {:.0}", var.sqrt())
            }
        };
        out.push_str(&format!(
            "| {} | {} | {} | {wall} |\n",
            row.label,
            seeds.len(),
            cells.join(" | ")
        ));
    }
    Ok(out)
}

/// Which side of `threshold` a claim puts its quantity on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sense {
    Above(f64),
    Below(f64),
}

/// A claim of the paper as a paired quantity: `a`, or `a − b`, against a threshold.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub text: &'static str,
    pub a: (&'static str, Metric),
    pub b: Option<(&'static str, Metric)>,
    pub sense: Sense,
}

/// The claims the laptop experiment tests (the MGRPO paper's, and the baselines' premises).
pub const CLAIMS: &[Claim] = &[
    Claim {
        text: "MGRPO corrects: Δi→c(MGRPO) − Δi→c(start) > 0",
        a: ("mgrpo", Metric::IToC),
        b: Some(("start", Metric::IToC)),
        sense: Sense::Above(0.0),
    },
    Claim {
        text: "MGRPO corrects: Δ(t1,t2)(MGRPO) > 0",
        a: ("mgrpo", Metric::Delta),
        b: None,
        sense: Sense::Above(0.0),
    },
    Claim {
        text: "MGRPO corrects: Δc→i(MGRPO) < 1 %",
        a: ("mgrpo", Metric::CToI),
        b: None,
        sense: Sense::Below(0.01),
    },
    Claim {
        text: "MGRPO beats GRPO: Acc@t2(MGRPO) − Acc@t1(GRPO) > 0",
        a: ("mgrpo", Metric::AccT2),
        b: Some(("grpo", Metric::AccT1)),
        sense: Sense::Above(0.0),
    },
    Claim {
        text: "Correction generalises to turn 1: Acc@t1(MGRPO) − Acc@t1(GRPO) > 0",
        a: ("mgrpo", Metric::AccT1),
        b: Some(("grpo", Metric::AccT1)),
        sense: Sense::Above(0.0),
    },
    Claim {
        text: "Intrinsic self-correction hurts: Δ(t1,t2)(intrinsic) < 0",
        a: ("intrinsic", Metric::Delta),
        b: None,
        sense: Sense::Below(0.0),
    },
    Claim {
        text: "… and with the instruction inside the assistant turn: Δ(t1,t2) < 0",
        a: ("intrinsic-in-turn", Metric::Delta),
        b: None,
        sense: Sense::Below(0.0),
    },
    Claim {
        text: "MGRPO raises Acc@t2: Acc@t2(MGRPO) − Acc@t2(start) > 0",
        a: ("mgrpo", Metric::AccT2),
        b: Some(("start", Metric::AccT2)),
        sense: Sense::Above(0.0),
    },
    Claim {
        text: "GRPO raises Acc@t1: Acc@t1(GRPO) − Acc@t1(start) > 0",
        a: ("grpo", Metric::AccT1),
        b: Some(("start", Metric::AccT1)),
        sense: Sense::Above(0.0),
    },
];

/// Whether an interval establishes a claim: it excludes the threshold on the claimed side
/// ("holds"), on the other side ("the opposite holds"), or contains it.
pub fn verdict(ci: Interval, sense: Sense) -> &'static str {
    let (above, below) = match sense {
        Sense::Above(t) => (ci.lo > t, ci.hi < t),
        Sense::Below(t) => (ci.hi < t, ci.lo > t),
    };
    match (above, below) {
        (true, _) => "holds",
        (_, true) => "the opposite holds",
        _ => "not established",
    }
}

/// The claims whose rows are present, as a Markdown table: the paired quantity in points with
/// its 95 % interval over the seeds both rows have.
pub fn claims(results: &Results, resamples: usize) -> Result<String> {
    let mut out = String::from(
        "| Claim | seeds | estimate (points) | 95 % CI | verdict |\n|---|---:|---:|---:|---|\n",
    );
    for (i, c) in CLAIMS.iter().enumerate() {
        let Some(ra) = results.row(c.a.0) else {
            continue;
        };
        let rb = match c.b {
            Some((key, _)) => match results.row(key) {
                Some(r) => Some(r),
                None => continue,
            },
            None => None,
        };
        let seeds: Vec<u64> = ra
            .seeds
            .iter()
            .map(|s| s.seed)
            .filter(|s| rb.is_none_or(|rb| rb.seeds.iter().any(|r| r.seed == *s)))
            .collect();
        if seeds.is_empty() {
            continue;
        }
        let mut x = matrix(ra, c.a.1, &seeds);
        if let (Some(rb), Some((_, mb))) = (rb, c.b) {
            for (xa, xb) in x.iter_mut().zip(matrix(rb, mb, &seeds)) {
                xa.iter_mut().zip(xb).for_each(|(a, b)| *a -= b);
            }
        }
        let ci = crossed_bootstrap(&x, resamples, 0.95, 100 + i as u64)?;
        let p = ci.scaled(100.0);
        out.push_str(&format!(
            "| {} | {} | {:+.1} | [{:+.1}, {:+.1}] | {} |\n",
            c.text,
            seeds.len(),
            p.mean,
            p.lo,
            p.hi,
            verdict(ci, c.sense)
        ));
    }
    Ok(out)
}

/// Two evaluations of the same problems (a run's start and end) compared problem by problem:
/// each metric before and after with its interval, and the paired change with its interval
/// (bootstrap over problems), as a Markdown table in percent.
pub fn paired_changes(before: &Verdicts, after: &Verdicts, resamples: usize) -> Result<String> {
    let b = &before.verdicts;
    let a = after.aligned(&before.ids, &before.path)?;
    let mut out = String::from(
        "| metric | before | after | after − before (points) |\n|---|---:|---:|---:|\n",
    );
    for (i, m) in Metric::ALL.into_iter().enumerate() {
        let xb: Vec<f64> = b.iter().map(|&v| m.value(v)).collect();
        let xa: Vec<f64> = a.iter().map(|&v| m.value(v)).collect();
        let diff: Vec<f64> = xa.iter().zip(&xb).map(|(a, b)| a - b).collect();
        let seed = 200 + 3 * i as u64;
        let cb = crossed_bootstrap(&[xb], resamples, 0.95, seed)?;
        let ca = crossed_bootstrap(&[xa], resamples, 0.95, seed + 1)?;
        let d = crossed_bootstrap(&[diff], resamples, 0.95, seed + 2)?.scaled(100.0);
        out.push_str(&format!(
            "| {} | {} | {} | {:+.1} [{:+.1}, {:+.1}] |\n",
            m.label(),
            cell(cb),
            cell(ca),
            d.mean,
            d.lo,
            d.hi
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "table2_tests.rs"]
mod tests;
