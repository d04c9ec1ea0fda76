//! `mgrpo curves`: several runs' held-out evaluations against the step on one chart (e.g.
//! GRPO's and MGRPO's Acc@t1 and Acc@t2), from each run's `eval/metrics.jsonl`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use crate::eval::TwoTurnMetrics;
use crate::metrics::plot::{line_chart, Series};
use crate::train::evaluate::read_eval_log;

#[derive(Clone, Copy, ValueEnum)]
pub enum Which {
    /// Acc@t1 and Acc@t2.
    Accuracy,
    /// Δi→c and Δc→i.
    Corrections,
}

#[derive(Args)]
pub struct CurvesArgs {
    /// A run directory, or NAME=DIR to name its curves (default: the directory's name);
    /// repeat for each run.
    #[arg(long = "run", required = true, value_name = "[NAME=]DIR")]
    pub runs: Vec<String>,
    /// What to draw.
    #[arg(long, value_enum, default_value = "accuracy")]
    pub metric: Which,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
}

const COLORS: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

pub fn curves(a: CurvesArgs) -> Result<()> {
    if a.out.extension().is_none_or(|e| e != "png") {
        bail!("--out {}: must name a .png file", a.out.display());
    }
    let (first, second): (&str, &str) = match a.metric {
        Which::Accuracy => ("Acc@t1", "Acc@t2"),
        Which::Corrections => ("Δi→c", "Δc→i"),
    };
    let pick = |m: &TwoTurnMetrics| match a.metric {
        Which::Accuracy => (m.acc_t1, m.acc_t2),
        Which::Corrections => (m.delta_i_to_c, m.delta_c_to_i),
    };
    let mut names = Vec::new();
    let mut points = Vec::new();
    for spec in &a.runs {
        let (name, dir) = match spec.split_once('=') {
            Some((n, d)) if !n.is_empty() => (n.to_string(), PathBuf::from(d)),
            _ => {
                let dir = PathBuf::from(spec);
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| spec.clone());
                (name, dir)
            }
        };
        let rows = read_eval_log(&dir)?;
        let curve = |f: &dyn Fn(&TwoTurnMetrics) -> f64| -> Vec<(f64, f64)> {
            rows.iter().map(|r| (r.step as f64, f(&r.m))).collect()
        };
        names.push(format!("{name} {first}"));
        points.push(curve(&|m| pick(m).0));
        names.push(format!("{name} {second}"));
        points.push(curve(&|m| pick(m).1));
    }
    let series: Vec<Series<'_>> = names
        .iter()
        .zip(points)
        .enumerate()
        .map(|(i, (name, points))| Series {
            name,
            color: COLORS[i % COLORS.len()],
            points,
        })
        .collect();
    let (title, y) = match a.metric {
        Which::Accuracy => ("Held-out accuracy", "fraction right"),
        Which::Corrections => (
            "Held-out turn 2: fixed and broken answers",
            "fraction of problems",
        ),
    };
    line_chart(&a.out, title, y, &series)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
