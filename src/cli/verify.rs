//! `mgrpo verify`: grade answers with the math verifier.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::data::{Dataset, DatasetFormat};
use crate::eval::grade::{grade_pairs, grade_predictions, self_check, Summary};
use crate::verify::Policy;

use super::args::emit;

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct VerifyArgs {
    /// JSONL of {"gold": "...", "pred": "..."} rows (pred: a full completion).
    #[arg(long, conflicts_with_all = ["dataset", "predictions", "self_check"])]
    pub input: Option<PathBuf>,
    /// A dataset (GSM8K, MATH, Minerva, OlympiadBench, AIME, AMC or question/answer JSONL).
    #[arg(long, required_unless_present = "input")]
    pub dataset: Option<PathBuf>,
    /// The dataset's format when it cannot be detected from the fields.
    #[arg(long, requires = "dataset", value_parser = parse_format)]
    pub format: Option<DatasetFormat>,
    /// JSONL of completions ({"completion"|"text"|"pred", and "id" or "index"}) to grade.
    #[arg(long, requires = "dataset", required_unless_present_any = ["input", "self_check"])]
    pub predictions: Option<PathBuf>,
    /// Grade the dataset's reference solutions against its gold answers.
    #[arg(long, requires = "dataset", conflicts_with = "predictions")]
    pub self_check: bool,
    /// Grader policy KEY=VALUE (repeatable): percent=either|ignore|fraction,
    /// decimal_approximations, require_reduced_fractions, strip_assignment, ordered_lists,
    /// decimal_comma,
    /// extraction=anchored|last_math|last_number (default: the dataset's; last_math for
    /// --input), time_budget_ms (default 1000; past it a verdict is wrong, with a reason).
    #[arg(long = "policy", value_name = "KEY=VALUE")]
    pub policy: Vec<String>,
    /// Print only the rows graded incorrect.
    #[arg(long)]
    pub only_wrong: bool,
    /// Write the verdicts here (atomically) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

pub fn parse_format(s: &str) -> crate::Result<DatasetFormat> {
    s.parse()
}

pub fn verify(a: VerifyArgs) -> Result<()> {
    let policy = Policy::default().with_settings(&a.policy)?;
    let inputs = [
        ("--input", a.input.as_deref()),
        ("--dataset", a.dataset.as_deref()),
        ("--predictions", a.predictions.as_deref()),
    ];
    let inputs: Vec<(&str, &std::path::Path)> = inputs
        .into_iter()
        .filter_map(|(flag, p)| p.map(|p| (flag, p)))
        .collect();
    super::args::output_not_an_input(a.output.as_deref(), &inputs)?;
    let rows = match (&a.input, &a.dataset) {
        (Some(input), _) => grade_pairs(input, &policy)?,
        (None, Some(data)) => {
            let dataset = Dataset::load(data, a.format)?;
            match &a.predictions {
                Some(p) => grade_predictions(&dataset, p, &policy)?,
                None => self_check(&dataset, &policy),
            }
        }
        (None, None) => bail!("give --input, or --dataset with --predictions or --self-check"),
    };
    let mut out = String::new();
    for r in rows.iter().filter(|r| !a.only_wrong || !r.correct) {
        out.push_str(&serde_json::to_string(r)?);
        out.push('\n');
    }
    emit(a.output.as_deref(), &out)?;
    eprintln!("{}", Summary::of(&rows).line());
    Ok(())
}
