//! What a run reports: one JSON line per step in `metrics.jsonl` under TRL's names, a progress
//! bar that hides itself when stdout is not a terminal, and PNG plots at the end.

pub(crate) mod plot;
mod step;
pub(crate) mod tensorboard;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::run::jsonl::{line_error, read_objects};

pub use step::{RewardFuncStats, StepMetrics, TIMING_KEYS};
pub use tensorboard::ReportTo;

/// Append-only `metrics.jsonl` (or any JSONL keyed by `step`).
#[derive(Debug, Clone)]
pub struct JsonlLog {
    path: PathBuf,
}

impl JsonlLog {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line.
    pub fn append<T: Serialize>(&self, row: &T) -> Result<()> {
        let mut line = serde_json::to_string(row).map_err(|e| Error::serialize("a log line", e))?;
        line.push('\n');
        let mut f = crate::run::fsutil::open_append(&self.path)?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Drop the lines whose `step` is above `step` (a resumed run rewrites them), atomically.
    /// Returns the steps of the lines kept (none when the file is missing; unreadable lines
    /// are dropped).
    pub fn truncate_after(&self, step: usize) -> Result<Vec<usize>> {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Ok(Vec::new());
        };
        let mut steps = Vec::new();
        let mut kept = String::new();
        for line in text.lines() {
            let s = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .map(|s| s as usize);
            if let Some(s) = s.filter(|&s| s <= step) {
                steps.push(s);
                kept.push_str(line);
                kept.push('\n');
            }
        }
        crate::run::fsutil::write_atomic(&self.path, kept.as_bytes())?;
        Ok(steps)
    }

    /// Every line parsed as `T` (a bad line names the file and line).
    pub fn read<T: for<'de> Deserialize<'de>>(&self) -> Result<Vec<T>> {
        read_objects(&self.path)?
            .into_iter()
            .map(|(line, obj)| {
                serde_json::from_value(serde_json::Value::Object(obj))
                    .map_err(|e| line_error(&self.path, line, e.to_string()))
            })
            .collect()
    }
}

/// The training progress bar: steps done, reward, accuracy and tokens/s. Hidden when stdout is
/// not a terminal (logs and CI stay clean).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(total: usize, done: usize) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            if std::io::stdout().is_terminal() {
                ProgressDrawTarget::stdout()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps (eta {eta}) {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_position(done as u64);
        Self { bar }
    }

    /// Move one step on and show its figures.
    pub fn step(&self, m: &StepMetrics) {
        self.bar.set_message(format!(
            "reward {:.3} acc {:.3} kl {:.4} {:.0} tok/s",
            m.reward, m.accuracy, m.kl, m.tokens_per_second
        ));
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish();
    }
}
