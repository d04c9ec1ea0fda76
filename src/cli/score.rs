//! `mgrpo score`: per-token log-probs of given sequences.

use crate::fused::FusedBackend;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::model::dir::ModelDir;
use crate::score::{prepare_rows, read_score_input, score_rows};
use crate::text::template::PromptTemplate;

use super::args::{emit, DeviceArg, DtypeArg};

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct ScoreArgs {
    /// HF model directory (config.json, safetensors, optional tokenizer.json), or a hub id
    /// `ORG/NAME[@REVISION]` in the local Hugging Face cache.
    #[arg(long)]
    pub model: PathBuf,
    /// JSONL: {"input_ids": [...]} or {"prompt": "...", "completion": "..."} per line.
    #[arg(long)]
    pub input: PathBuf,
    /// Rows per forward pass (rows are grouped by length; output keeps input order).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Apply this prompt template (qwen-math, r1, plain, chatml, or checkpoint: the model's
    /// chat template) to the `prompt` of text rows.
    #[arg(long)]
    pub template: Option<String>,
    /// Write the JSONL here instead of stdout (written whole, then renamed into place).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub dtype: DtypeArg,
}

pub fn score<B: FusedBackend>(mut a: ScoreArgs, device: &B::Device) -> Result<()> {
    a.model = crate::model::hub::locate(&a.model)?;
    if a.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let template = a
        .template
        .as_deref()
        .map(|t| PromptTemplate::load(t, &a.model, None))
        .transpose()?;
    super::args::output_not_an_input(a.output.as_deref(), &[("--input", &a.input)])?;
    let rows = read_score_input(&a.input)?;
    let dir = ModelDir::open(&a.model)?;
    let prepared = prepare_rows(
        &rows,
        &a.input,
        dir.tokenizer.as_ref(),
        template.as_ref(),
        dir.config.vocab_size,
        dir.config.max_position_embeddings,
    )?;
    let model = dir.load::<B>(a.dtype.precision()?, device)?;
    let ids: Vec<Vec<u32>> = prepared.iter().map(|p| p.ids.clone()).collect();
    let logprobs = score_rows(&model, &ids, a.batch_size, device)?;
    let mut out = String::new();
    for ((lp, p), (line, _)) in logprobs.iter().zip(&prepared).zip(&rows) {
        let tail = &lp[lp.len() - p.n_report.min(lp.len())..];
        if tail.iter().any(|x| x.is_nan()) {
            bail!(
                "{}:{}: the log-probs are NaN: the forward pass overflowed (in bf16, try f32) or \
                 the weights are not finite",
                a.input.display(),
                line
            );
        }
        out.push_str(&serde_json::json!({ "logprobs": tail }).to_string());
        out.push('\n');
    }
    emit(a.output.as_deref(), &out)
}
