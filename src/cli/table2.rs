//! `mgrpo table2`: the MGRPO paper's Table 2 over seeds, with 95 % intervals and the paper's
//! claims as paired tests, from the per-problem results of `mgrpo eval`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use mgrpo::table2;

use super::emit;

#[derive(Args)]
pub struct Table2Args {
    /// The results directory: <row>/seed<N>/eval/<data>.jsonl as `mgrpo eval --out` writes it
    /// (rows: start, intrinsic, star, star-external, ppo, grpo, mgrpo, igrpo), with the run's
    /// wall time in <row>/seed<N>/wall_s (scripts/laptop_table2.sh's layout).
    #[arg(default_value = "runs/table2")]
    pub dir: PathBuf,
    /// Also copy every seed's verdicts (id, turn1_correct, turn2_correct only), summary.json
    /// and wall_s here, in the same layout, so that the table can be rebuilt without the runs.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Bootstrap replicates per interval.
    #[arg(long, default_value_t = mgrpo::stats::RESAMPLES)]
    pub resamples: usize,
    /// Write the Markdown here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn table2(a: Table2Args) -> Result<()> {
    let results = table2::load(&a.dir)?;
    if results.rows.is_empty() {
        anyhow::bail!(
            "{}: no <row>/seed<N>/eval/*.jsonl to summarise",
            a.dir.display()
        );
    }
    let mut out = format!(
        "Mean over seeds and the {} problems, in percent, with its 95 % interval (a bootstrap \
         that resamples problems and seeds); wall time: mean ± sd over seeds.\n\n",
        results.problems
    );
    out.push_str(&table2::table(&results, a.resamples)?);
    out.push_str(
        "\nPaired differences (the same problems, the same seeds) in points, 95 % interval:\n\n",
    );
    out.push_str(&table2::claims(&results, a.resamples)?);
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
