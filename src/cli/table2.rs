//! `mgrpo table2`: the MGRPO paper's Table 2 over seeds, with 95 % intervals, the paper's
//! claims as paired tests (Holm over the primary family) with their power, per-group tables
//! and the turn-2 checks, from the per-problem results of `mgrpo eval`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::stats::{coverage, Design};
use crate::table2::{self, ClaimOptions};

use super::args::emit;

#[derive(Args)]
pub struct Table2Args {
    /// The results directory: <row>/seed<N>/eval/<data>.jsonl as `mgrpo eval --out` writes it
    /// (rows: start, intrinsic, intrinsic-in-turn, star, star-external, ppo, grpo, mgrpo,
    /// igrpo), with the run's wall time in <row>/seed<N>/wall_s (scripts/laptop_table2.sh's
    /// layout).
    #[arg(default_value = "runs/table2")]
    pub dir: PathBuf,
    /// Also copy what every figure needs here, in the same layout: each seed's verdicts per
    /// problem and sample (with the labels, whether each turn answered and the turn-2 check's
    /// counts), summary.json, wall_s, and a summary of the training log (run_summary.json).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Also report every cell and claim per group of this label: a string field of the
    /// evaluation files, or of --data [default: `family`, when every problem has one].
    #[arg(long, value_name = "FIELD")]
    pub by: Option<String>,
    /// The dataset whose rows give --by's field, joined by `id` (e.g. model/task/test.jsonl);
    /// --export then keeps the field in the exported files.
    #[arg(long, requires = "by")]
    pub data: Option<PathBuf>,
    /// The effect size of interest in points, for the power columns (the MGRPO paper's gain
    /// of MGRPO's Acc@t2 over GRPO's Acc@t1 is about 3).
    #[arg(long, default_value_t = 3.0)]
    pub effect: f64,
    /// For the power columns of claims measured with one sample per problem: the share of
    /// their residual that is sampling noise (one sample cannot tell it from the problem ×
    /// seed interaction; --components on a multi-sample evaluation measures it).
    #[arg(long, value_name = "SHARE")]
    pub within_share: Option<f64>,
    /// Also size every claim for this design, SEEDSxPROBLEMSxSAMPLES (e.g. 5x2000x4): the
    /// effect it would detect, from the variance components measured here (repeatable).
    #[arg(long, value_name = "SxPxR", value_parser = parse_design)]
    pub plan: Vec<Design>,
    /// Also print every cell's variance components (problems, seeds, interaction, samples).
    #[arg(long)]
    pub components: bool,
    /// Instead of a table: two evaluations of the same problems (a run's eval/step-0.jsonl and
    /// its last), each metric before and after and the paired change, problem by problem.
    /// With --export DIR: the two files compacted into DIR, with the run's eval/metrics.jsonl
    /// and a summary of its training log when they sit in a run directory.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"], conflicts_with_all = ["by", "coverage"])]
    pub compare: Option<Vec<PathBuf>>,
    /// Instead of a table: measure how often the 95 % intervals cover the truth on simulated
    /// verdicts with known effects (this estimator and the crossed bootstrap it replaced).
    #[arg(long, conflicts_with_all = ["export", "by"])]
    pub coverage: bool,
    /// Simulations per design for --coverage (the bootstrap gets a fifth of them).
    #[arg(long, default_value_t = 2000, requires = "coverage")]
    pub simulations: usize,
    /// Write the Markdown here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn table2(a: Table2Args) -> Result<()> {
    if !(a.effect.is_finite() && a.effect > 0.0 && a.effect < 100.0) {
        anyhow::bail!(
            "--effect: must be between 0 and 100 points (got {})",
            a.effect
        );
    }
    if a.coverage {
        if a.simulations == 0 {
            anyhow::bail!("--simulations: must be at least 1");
        }
        let boot = (a.simulations / 5).max(1);
        let out = coverage::report(a.simulations, boot, 1000)?;
        return emit(a.output.as_deref(), &out);
    }
    if let Some(files) = &a.compare {
        let before = table2::Verdicts::read(&files[0])?;
        let after = table2::Verdicts::read(&files[1])?;
        // two-turn files judge the run by Acc@t2, as the run's own results.md does
        let two_turns = before
            .samples
            .iter()
            .flatten()
            .any(|s| s.answered.1.is_some());
        let out = format!(
            "{} against {}, problem by problem ({} problems × {} samples): each value with its \
             95 % interval, and the paired change (a paired t interval over problems):\n\n{}\n{}\n",
            files[1].display(),
            files[0].display(),
            before.ids.len(),
            before.sample_count(),
            table2::paired_changes(&before, &after)?,
            table2::learning_verdict(&before, &after, two_turns)?
        );
        if let Some(dir) = &a.export {
            table2::export_run_evals(&before, &after, dir)
                .with_context(|| format!("exporting to {}", dir.display()))?;
        }
        return emit(a.output.as_deref(), &out);
    }
    let mut results = table2::load(&a.dir)?;
    if let (Some(field), Some(data)) = (&a.by, &a.data) {
        results.join_labels(field, data)?;
    }
    let by =
        a.by.clone()
            .or_else(|| results.labelled("family").then(|| "family".to_string()));
    if results.rows.is_empty() {
        anyhow::bail!(
            "{}: no <row>/seed<N>/eval/*.jsonl to summarise",
            a.dir.display()
        );
    }
    if let Some(s) = a.within_share {
        if !(0.0..=1.0).contains(&s) {
            anyhow::bail!("--within-share: must be in [0, 1] (got {s})");
        }
    }
    let opt = ClaimOptions {
        effect: a.effect / 100.0,
        within_share: a.within_share,
        plans: a.plan.clone(),
        ..ClaimOptions::default()
    };
    let all = results.all();
    let mut out = format!(
        "Mean over seeds, the {} problems and their samples, in percent, with its 95 % interval \
         (two-way random-effects ANOVA: problems × seeds with their interaction, samples \
         nested; t with Satterthwaite's degrees of freedom); wall time: mean ± sd over seeds.\n\n",
        results.ids.len()
    );
    out.push_str(&table2::table(&results, &all)?);
    out.push_str(
        "\nPaired differences (the same problems, the same seeds) in points, 95 % interval:\n\n",
    );
    out.push_str(&table2::claims(&results, &all, &opt)?);
    if a.components {
        out.push_str("\nVariance components (standard deviations in points):\n\n");
        out.push_str(&table2::components_table(&results, &all)?);
    }
    if let Some(checks) = table2::checks_table(&results, &all) {
        out.push_str("\nAnswers and turn-2 checks (shares pooled per seed, mean over seeds):\n\n");
        out.push_str(&checks);
    }
    if let Some(field) = &by {
        let exploratory = ClaimOptions {
            correct: false,
            ..opt.clone()
        };
        for scope in results.groups(field)? {
            let name = scope.name.clone().unwrap_or_default();
            out.push_str(&format!(
                "\n### {name} ({} problems; exploratory)\n\n",
                scope.problems.len()
            ));
            out.push_str(&table2::table(&results, &scope)?);
            out.push('\n');
            out.push_str(&table2::claims(&results, &scope, &exploratory)?);
            if let Some(checks) = table2::checks_table(&results, &scope) {
                out.push('\n');
                out.push_str(&checks);
            }
        }
    }
    if !results.skipped.is_empty() {
        out.push_str(&format!(
            "\nLeft out (no per-problem results): {}.\n",
            results.skipped.join(", ")
        ));
    }
    if let Some(dir) = &a.export {
        results
            .export(dir)
            .with_context(|| format!("exporting to {}", dir.display()))?;
    }
    emit(a.output.as_deref(), &out)
}

/// `SxPxR` (seeds, problems, samples per problem), each at least 1 (2 seeds).
fn parse_design(text: &str) -> std::result::Result<Design, String> {
    let parts: Vec<&str> = text.split(['x', 'X', '×']).collect();
    let bad = || format!("`{text}`: want SEEDSxPROBLEMSxSAMPLES, e.g. 5x2000x4");
    let [s, p, r] = parts.as_slice() else {
        return Err(bad());
    };
    let n = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
    let d = Design {
        seeds: n(s)?,
        problems: n(p)?,
        samples: n(r)?,
    };
    if d.seeds < 2 || d.problems < 2 || d.samples < 1 {
        return Err(format!(
            "`{text}`: needs at least 2 seeds, 2 problems and 1 sample"
        ));
    }
    Ok(d)
}
