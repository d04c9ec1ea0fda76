//! `mgrpo bench`: throughput figures on random models of named shapes.

use anyhow::{bail, Result};
use burn::prelude::Backend;
use clap::Args;

use super::DeviceArg;

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure: score, generate, or grpo (one whole GRPO step: sampling, log-probs,
    /// backward, AdamW; --batch prompts × --generations completions of --new-tokens tokens).
    #[arg(default_value = "score")]
    pub what: String,
    /// Model shape: bench-small (vocab 4096, hidden 256, 4 layers, 8/2 heads) or qwen2.5-0.5b.
    #[arg(long, default_value = "bench-small")]
    pub shape: String,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// score: tokens per row.
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// generate: prompt tokens per row.
    #[arg(long, default_value_t = 32)]
    pub prompt: usize,
    /// generate, grpo: new tokens per row (no EOS).
    #[arg(long, default_value_t = 128)]
    pub new_tokens: usize,
    /// grpo: completions per prompt (G).
    #[arg(long, default_value_t = 8)]
    pub generations: usize,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn bench<B: Backend>(a: BenchArgs, device: &B::Device) -> Result<()> {
    let config = mgrpo::bench::shape(&a.shape)?;
    if a.what == "generate" {
        if a.batch == 0 || a.prompt == 0 || a.new_tokens == 0 {
            bail!("--batch, --prompt and --new-tokens must be at least 1");
        }
        let r = mgrpo::bench::bench_generate::<B>(
            &config,
            a.batch,
            a.prompt,
            a.new_tokens,
            a.warmup,
            a.iters,
            device,
        )?;
        let line = serde_json::json!({
            "bench": "generate", "shape": a.shape, "device": a.device.device,
            "batch": r.batch, "prompt": r.prompt, "new_tokens": r.new_tokens, "iters": r.iters,
            "tokens_per_s": r.tokens_per_s, "decode_tokens_per_s": r.decode_tokens_per_s,
            "median_ms": r.median_ms, "min_ms": r.min_ms,
        });
        println!("{line}");
        return Ok(());
    }
    if a.what == "grpo" {
        if a.batch == 0 || a.prompt == 0 || a.new_tokens == 0 || a.generations < 2 {
            bail!(
                "--batch, --prompt and --new-tokens must be at least 1, --generations at least 2"
            );
        }
        let w = mgrpo::rl::bench::GrpoWorkload {
            prompts: a.batch,
            generations: a.generations,
            prompt_len: a.prompt,
            new_tokens: a.new_tokens,
        };
        let r = mgrpo::rl::bench::bench_grpo_step::<burn::backend::Autodiff<B>>(
            &config, w, a.warmup, a.iters, device,
        )?;
        let mut line = serde_json::to_value(&r)?;
        line["bench"] = "grpo".into();
        line["shape"] = a.shape.clone().into();
        line["device"] = a.device.device.clone().into();
        println!("{line}");
        return Ok(());
    }
    if a.what != "score" {
        bail!(
            "unknown benchmark `{}` (known: score, generate, grpo)",
            a.what
        );
    }
    if a.batch == 0 || a.seq < 2 {
        bail!("--batch must be ≥ 1 and --seq ≥ 2");
    }
    let r = mgrpo::bench::bench_score::<B>(&config, a.batch, a.seq, a.warmup, a.iters, device);
    let line = serde_json::json!({
        "bench": "score", "shape": a.shape, "device": a.device.device,
        "batch": r.batch, "seq": r.seq, "iters": r.iters,
        "tokens_per_s": r.tokens_per_s, "median_ms": r.median_ms, "min_ms": r.min_ms,
    });
    println!("{line}");
    Ok(())
}
