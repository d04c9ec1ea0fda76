//! `mgrpo generate`: batched sampling with the KV cache.

use crate::fused::FusedBackend;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::generate::input::{prepare_prompts, read_prompts, PromptRow, PromptSource};
use crate::generate::{
    GenerateConfig, SampleOn, SamplingParams, StopStrings, MAX_RETURN_SEQUENCES,
};
use crate::model::dir::ModelDir;
use crate::text::template::PromptTemplate;

use super::args::{emit, DeviceArg, DtypeArg};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("prompts").required(true).args(["prompt", "input"])))]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    /// HF model directory (config.json, safetensors, tokenizer.json for text prompts), or a hub
    /// id `ORG/NAME[@REVISION]` in the local Hugging Face cache.
    #[arg(long)]
    pub model: PathBuf,
    /// One text prompt (through --template if given).
    #[arg(long)]
    pub prompt: Option<String>,
    /// JSONL of prompts: {"prompt": "..."} or {"input_ids": [...]} per line.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Apply this prompt template (qwen-math, r1, plain, chatml, or checkpoint: the model's
    /// chat template) to text prompts.
    #[arg(long)]
    pub template: Option<String>,
    /// Token budget per completion (also capped by max_position_embeddings).
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Nucleus sampling: keep the most likely tokens up to this much probability (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Drop tokens less likely than min_p × the most likely one (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// transformers' repetition penalty: logits of tokens already in the prompt or the
    /// completion are divided by it (multiplied when negative); 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Completions per prompt (they share the prompt's prefill).
    #[arg(long, default_value_t = 1)]
    pub num_return_sequences: usize,
    /// Seed of the sampler (each completion has its own stream; batch size does not matter).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sequences decoded together (prompts × num-return-sequences).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Stop a completion when its text contains this string (repeatable; the string is kept).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Where tokens are drawn: auto (on the device for GPUs, on the host for CPU backends),
    /// host (logits read back) or device (only the chosen ids and log-probs read back).
    #[arg(long, default_value = "auto", value_parser = parse_sample_on)]
    pub sample_on: SampleOn,
    /// Attention over the KV cache in length buckets, a bounded set of shapes for GPU kernel
    /// caches: auto (on for GPU backends), on, off.
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_buckets: Switch,
    /// Do not stop at end-of-sequence ids (generation_config.json / config.json, and the
    /// tokenizer's <|im_end|> / <|endoftext|>).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Write the JSONL here instead of stdout (written whole, then renamed into place).
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub dtype: DtypeArg,
}

/// `auto`, `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    Auto,
    On,
    Off,
}

impl Switch {
    /// `None` for auto.
    pub fn on(self) -> Option<bool> {
        match self {
            Switch::Auto => None,
            Switch::On => Some(true),
            Switch::Off => Some(false),
        }
    }
}

fn parse_sample_on(s: &str) -> std::result::Result<SampleOn, String> {
    s.parse()
}

pub fn generate<B: FusedBackend>(mut a: GenerateArgs, device: &B::Device) -> Result<()> {
    a.model = crate::model::hub::locate(&a.model)?;
    let sampling = SamplingParams {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repetition_penalty: a.repetition_penalty,
        sample_on: a.sample_on,
    };
    sampling
        .validate()
        .map_err(|e| anyhow::anyhow!("--{} {}", e.key.replace('_', "-"), e.msg))?;
    if a.batch_size == 0 || a.num_return_sequences == 0 || a.max_new_tokens == 0 {
        bail!("--batch-size, --num-return-sequences and --max-new-tokens must be at least 1");
    }
    // named by its flag, before the model is loaded (the library checks it too)
    if a.num_return_sequences > MAX_RETURN_SEQUENCES {
        bail!(
            "--num-return-sequences: at most {MAX_RETURN_SEQUENCES} (got {})",
            a.num_return_sequences
        );
    }
    let template = a
        .template
        .as_deref()
        .map(|t| PromptTemplate::load(t, &a.model, None))
        .transpose()?;
    if let Some(input) = &a.input {
        super::args::output_not_an_input(a.output.as_deref(), &[("--input", input)])?;
    }
    let (rows, source) = match (&a.prompt, &a.input) {
        (Some(p), _) => (vec![(1, PromptRow::Text(p.clone()))], PromptSource::Arg),
        (None, Some(path)) => (read_prompts(path)?, PromptSource::File(path.clone())),
        (None, None) => bail!("give --prompt or --input"),
    };
    let dir = ModelDir::open(&a.model)?;
    let (config, tokenizer) = (&dir.config, dir.tokenizer.as_ref());
    let prompts = prepare_prompts(&rows, &source, tokenizer, template.as_ref(), config)?;
    let gen = GenerateConfig {
        max_new_tokens: a.max_new_tokens,
        sampling,
        num_return_sequences: a.num_return_sequences,
        seed: a.seed,
        batch_size: a.batch_size,
        eos_ids: if a.ignore_eos {
            Vec::new()
        } else {
            dir.eos_ids.clone()
        },
        stop: StopStrings::new(a.stop, tokenizer)
            .map_err(|e| crate::Error::arg("--stop", e.to_string()))?,
        first_prompt: 0,
        kv_buckets: a.kv_buckets.on(),
    };
    let model = dir.load::<B>(a.dtype.precision()?, device)?;
    let out = crate::generate::generate(&model, config, &prompts, &gen, tokenizer, device)?;
    let mut text = String::new();
    for c in &out.completions {
        let line = serde_json::json!({
            "index": c.prompt_index,
            "sample": c.sample_index,
            "completion_ids": c.ids,
            "text": c.text,
            "truncated": c.truncated(),
            "finish_reason": c.finish_reason,
            "logprobs": c.logprobs,
            "model_logprobs": c.model_logprobs,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    emit(a.output.as_deref(), &text)?;
    let s = &out.stats;
    eprintln!(
        "{} completions, {} tokens generated from {} prompt tokens in {:.2} s \
         (prefill {:.2} s, decode {:.2} s, {:.0} tokens/s)",
        out.completions.len(),
        s.generated_tokens,
        s.prompt_tokens,
        s.prefill_secs + s.decode_secs,
        s.prefill_secs,
        s.decode_secs,
        s.generated_tokens as f64 / (s.prefill_secs + s.decode_secs).max(1e-9),
    );
    Ok(())
}
