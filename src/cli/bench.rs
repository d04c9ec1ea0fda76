//! `mgrpo bench`: throughput figures on random models of named shapes.

use anyhow::{bail, Result};
use clap::Args;

use crate::bench::Timing;
use crate::model::Precision;

use super::args::{DeviceArg, DtypeArg};

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// What to measure: score, generate, train (forward + backward + AdamW on --batch rows of
    /// --seq tokens; tokens/s and MFU), or grpo (one whole GRPO step: sampling, log-probs,
    /// backward, AdamW; --batch prompts × --generations completions of --new-tokens tokens),
    /// or nodes (the multi-node sum of --mib MiB over --nodes nodes on loopback TCP).
    #[arg(default_value = "score")]
    pub what: String,
    /// nodes: how many nodes sum.
    #[arg(long, default_value_t = 2)]
    pub nodes: usize,
    /// nodes: MiB each node sums.
    #[arg(long, default_value_t = 64)]
    pub mib: usize,
    /// Model shape: tiny (the shipped model's: vocab 512, hidden 128, 4 layers, 4/2 heads),
    /// bench-small (vocab 4096, hidden 256, 4 layers, 8/2 heads), qwen2.5-0.5b, qwen2.5-1.5b,
    /// qwen2.5-3b or qwen2.5-7b (random weights).
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
    /// generate: memory bandwidth for the roofline, TB/s (H100 SXM: ~3.35 nominal, ~3.0 measured).
    #[arg(long, default_value_t = 3.0)]
    pub hbm_tbps: f64,
    /// generate: attention over the KV cache in length buckets (auto: on for GPU backends).
    #[arg(long, value_enum, default_value = "auto")]
    pub kv_buckets: super::generate::Switch,
    /// train: the device's peak FLOP/s for MFU, in TFLOP/s (H100 SXM dense bf16: 989).
    #[arg(long, default_value_t = 989.0)]
    pub peak_tflops: f64,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub dtype: DtypeArg,
}

pub fn bench<B: super::args::Trainable>(a: BenchArgs, device: &B::Device) -> Result<()> {
    let config = crate::bench::shape(&a.shape)?;
    let precision: Precision = a.dtype.precision()?;
    let timing = Timing {
        warmup: a.warmup,
        iters: a.iters,
        precision,
    };
    if a.iters == 0 {
        bail!("--iters: must be ≥ 1");
    }
    // checked before the timings and tensors they size are allocated
    for (flag, v, max) in [
        ("--iters", a.iters, 1usize << 20),
        ("--warmup", a.warmup, 1 << 20),
        ("--batch", a.batch, 1 << 16),
        ("--generations", a.generations, 1 << 12),
    ] {
        if v > max {
            bail!(
                "--{}: at most {max} (got {v})",
                flag.trim_start_matches('-')
            );
        }
    }
    for (flag, v) in [("--hbm-tbps", a.hbm_tbps), ("--peak-tflops", a.peak_tflops)] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{flag}: must be > 0, got {v}");
        }
    }
    if a.what == "nodes" {
        if !(2..=64).contains(&a.nodes) || !(1..=4096).contains(&a.mib) {
            bail!(
                "--nodes: 2 to 64; --mib: 1 to 4096 (got {} and {})",
                a.nodes,
                a.mib
            );
        }
        let r = crate::bench::nodes::bench_nodes(a.nodes, a.mib << 20, a.warmup, a.iters)?;
        let mut line = serde_json::to_value(&r)?;
        line["bench"] = "nodes".into();
        println!("{line}");
        return Ok(());
    }
    let context = config.max_position_embeddings;
    let tokens = match a.what.as_str() {
        "score" | "train" => a.seq,
        _ => a.prompt + a.new_tokens,
    };
    if tokens > context {
        bail!(
            "{}: {tokens} tokens per row exceed the {} shape's context of {context}",
            match a.what.as_str() {
                "score" | "train" => "--seq",
                _ => "--prompt + --new-tokens",
            },
            a.shape
        );
    }
    let mut line = match a.what.as_str() {
        "score" => {
            if a.batch == 0 || a.seq < 2 {
                bail!("--batch must be ≥ 1 and --seq ≥ 2");
            }
            let r = crate::bench::bench_score::<B>(&config, a.batch, a.seq, timing, device);
            serde_json::to_value(&r)?
        }
        "generate" => {
            if a.batch == 0 || a.prompt == 0 || a.new_tokens == 0 {
                bail!("--batch, --prompt and --new-tokens must be at least 1");
            }
            let workload = crate::bench::GenerateWorkload {
                batch: a.batch,
                prompt: a.prompt,
                new: a.new_tokens,
                kv_buckets: a.kv_buckets.on(),
            };
            let r = crate::bench::bench_generate::<B>(
                &config,
                workload,
                timing,
                a.hbm_tbps * 1e12,
                device,
            )?;
            serde_json::to_value(&r)?
        }
        "train" => {
            if a.batch == 0 || a.seq < 2 {
                bail!("--batch must be ≥ 1 and --seq ≥ 2");
            }
            let r = crate::bench::step::bench_train_step::<burn::backend::Autodiff<B>>(
                &config,
                a.batch,
                a.seq,
                timing,
                a.peak_tflops * 1e12,
                device,
            )?;
            serde_json::to_value(&r)?
        }
        "grpo" => {
            if a.batch == 0 || a.prompt == 0 || a.new_tokens == 0 || a.generations < 2 {
                bail!(
                    "--batch, --prompt and --new-tokens must be at least 1, --generations at least 2"
                );
            }
            let w = crate::bench::step::GrpoWorkload {
                prompts: a.batch,
                generations: a.generations,
                prompt_len: a.prompt,
                new_tokens: a.new_tokens,
            };
            let r = crate::bench::step::bench_grpo_step::<burn::backend::Autodiff<B>>(
                &config, w, timing, device,
            )?;
            serde_json::to_value(&r)?
        }
        other => bail!("unknown benchmark `{other}` (known: score, generate, train, grpo, nodes)"),
    };
    line["bench"] = a.what.clone().into();
    line["shape"] = a.shape.clone().into();
    line["device"] = a.device.device.clone().into();
    line["dtype"] = precision.to_string().into();
    println!("{line}");
    Ok(())
}
