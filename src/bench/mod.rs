//! Throughput measurements (`mgrpo bench`, `benches/score.rs`).
//!
//! `score` throughput: full-sequence forward + log-softmax + gather of a batch of random token
//! rows, timed after warm-up, with the device synchronised (results read back) before the clock
//! is read. `generate` throughput: greedy decoding of `new` tokens after `prompt`-token prompts,
//! batch rows at once, with the KV cache, never stopping early (no EOS), end to end (prefill
//! included). `scripts/bench_torch.py` measures transformers on the same shapes and thread count.
//! `step`: whole GRPO steps and training steps (`mgrpo bench grpo`, `mgrpo bench train`).

pub(crate) mod nodes;
pub(crate) mod step;

use crate::fused::FusedBackend;
use std::time::Instant;

use crate::generate::{generate, GenerateConfig, SamplingParams};
use crate::model::batch::PaddedBatch;
use crate::model::{CausalLm, ModelConfig, Precision};
use crate::score::batch_logprobs;

/// The names [`shape`] knows.
pub const SHAPES: [&str; 6] = [
    "tiny",
    "bench-small",
    "qwen2.5-0.5b",
    "qwen2.5-1.5b",
    "qwen2.5-3b",
    "qwen2.5-7b",
];

/// Named model shapes for benchmarks.
pub fn shape(name: &str) -> crate::Result<ModelConfig> {
    match name {
        // the shipped model's (model/config.json): vocab 512, hidden 128, 4 layers, 4 heads,
        // 2 KV heads, intermediate 512, tied head, context 512, RoPE θ 10 000
        "tiny" => Ok(ModelConfig {
            max_position_embeddings: 512,
            rope_theta: 10_000.0,
            ..ModelConfig::new(512, 128, 512, 4, 4, 2, true)
        }),
        // vocab 4096, hidden 256, 4 layers, 8 heads, 2 KV heads, intermediate 704, tied head
        "bench-small" => Ok(ModelConfig::new(4096, 256, 704, 4, 8, 2, true)),
        // Qwen2.5-0.5B: vocab 151936, hidden 896, 24 layers, 14 heads, 2 KV heads, 4864, tied
        "qwen2.5-0.5b" => Ok(ModelConfig::new(151936, 896, 4864, 24, 14, 2, true)),
        // Qwen2.5-1.5B: hidden 1536, 28 layers, 12 heads, 2 KV heads, 8960, tied
        "qwen2.5-1.5b" => Ok(ModelConfig::new(151936, 1536, 8960, 28, 12, 2, true)),
        // Qwen2.5-3B: hidden 2048, 36 layers, 16 heads, 2 KV heads, 11008, tied
        "qwen2.5-3b" => Ok(ModelConfig::new(151936, 2048, 11008, 36, 16, 2, true)),
        // Qwen2.5-7B (and -Math-7B): vocab 152064, hidden 3584, 28 layers, 28 heads, 4 KV
        // heads, 18944, untied
        "qwen2.5-7b" => Ok(ModelConfig::new(152064, 3584, 18944, 28, 28, 4, false)),
        _ => Err(crate::Error::Invalid(format!(
            "unknown bench shape `{name}` (known: {})",
            SHAPES.join(", ")
        ))),
    }
}

/// How a benchmark runs: `warmup` untimed iterations, then `iters` timed ones, in `precision`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: usize,
    pub iters: usize,
    pub precision: Precision,
}

/// The result of a throughput run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub batch: usize,
    pub seq: usize,
    pub iters: usize,
    /// Tokens scored per second (batch · seq / median iteration time).
    pub tokens_per_s: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    /// The first (untimed) run: with a GPU backend it includes compiling and autotuning.
    pub first_run_ms: f64,
}

/// The `score` workload: a random model of shape `config` (seeded) and a full batch of
/// `batch` × `seq` deterministic token rows.
pub fn score_workload<B: FusedBackend>(
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    precision: Precision,
    device: &B::Device,
) -> (CausalLm<B>, PaddedBatch) {
    B::seed(device, 0);
    let model = CausalLm::<B>::random(config, device).to_precision(precision);
    let rows: Vec<Vec<u32>> = (0..batch)
        .map(|r| {
            (0..seq)
                .map(|t| ((r * 7919 + t * 104729) % config.vocab_size) as u32)
                .collect()
        })
        .collect();
    (model, PaddedBatch::left_padded(&rows, 0))
}

/// Time `score` on a random model of shape `config`: `warmup` untimed iterations (at least
/// one, the first timed apart), then `iters`.
pub fn bench_score<B: FusedBackend>(
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    t: Timing,
    device: &B::Device,
) -> BenchReport {
    let Timing {
        warmup,
        iters,
        precision,
    } = t;
    let (model, padded) = score_workload::<B>(config, batch, seq, precision, device);
    let run = || {
        let lp = batch_logprobs(&model, &padded, device);
        // Reading the values back synchronises the device.
        let _ = lp.into_data();
    };
    let first = Instant::now();
    run();
    let first_run_ms = first.elapsed().as_secs_f64() * 1e3;
    for _ in 1..warmup {
        run();
    }
    let mut times: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let median = sorted_median(&mut times);
    BenchReport {
        batch,
        seq,
        iters: times.len(),
        tokens_per_s: (batch * seq) as f64 / median,
        median_ms: median * 1e3,
        min_ms: times[0] * 1e3,
        first_run_ms,
    }
}

/// The result of a `generate` throughput run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerateBenchReport {
    pub batch: usize,
    pub prompt: usize,
    pub new_tokens: usize,
    pub iters: usize,
    /// Generated tokens per second, end to end (batch · new / median wall time).
    pub tokens_per_s: f64,
    /// Tokens per second of the decode loop alone: batch · (new − 1) decode steps over their
    /// time (the first token comes out of the prefill).
    pub decode_tokens_per_s: f64,
    pub median_ms: f64,
    pub min_ms: f64,
    /// Decode tokens per second if every decode step only read the weights and the KV cache
    /// once at `hbm_bytes_per_s` (see [`decode_roofline`]).
    pub roofline_tokens_per_s: f64,
    /// `decode_tokens_per_s / roofline_tokens_per_s`.
    pub roofline_fraction: f64,
    /// The first (untimed) run's wall time: with a GPU backend it includes compiling and
    /// autotuning kernels, which the timed runs reuse.
    pub first_run_ms: f64,
    /// Median decode-step time over the first and the last eighth of the steps of the median
    /// timed run: equal when a step's cost does not grow with the cache length or with new
    /// kernel shapes.
    pub step_ms_early: f64,
    pub step_ms_late: f64,
    /// Whether attention read the cache in length buckets (`--kv-buckets`).
    pub kv_buckets: bool,
}

/// The memory-bandwidth bound of decoding: each decode step reads every weight once
/// (`n_params · bytes`) and each row's KV cache (`layers · 2 · kv_heads · head_dim · len ·
/// bytes`, `len` the mean cache length over the `new` steps), so at best
/// `batch / (bytes_read / hbm_bytes_per_s)` tokens per second.
pub fn decode_roofline(
    config: &ModelConfig,
    batch: usize,
    prompt: usize,
    new: usize,
    bytes_per_value: usize,
    hbm_bytes_per_s: f64,
) -> f64 {
    let weights = (config.num_params() * bytes_per_value) as f64;
    let mean_len = prompt as f64 + new as f64 / 2.0;
    let kv_per_row = (config.num_hidden_layers
        * 2
        * config.num_key_value_heads
        * config.head_dim()
        * bytes_per_value) as f64
        * mean_len;
    let step_s = (weights + batch as f64 * kv_per_row) / hbm_bytes_per_s;
    batch as f64 / step_s
}

/// The `generate` workload: `batch` prompts of `prompt` tokens, `new` tokens each, attention
/// in length buckets as `kv_buckets` says ([`GenerateConfig::kv_buckets`]).
#[derive(Debug, Clone, Copy)]
pub struct GenerateWorkload {
    pub batch: usize,
    pub prompt: usize,
    pub new: usize,
    pub kv_buckets: Option<bool>,
}

/// Time greedy generation of `w` on a random model of shape `config`: `warmup` untimed runs
/// (at least one, timed apart as the first run) then `iters` timed ones.
pub fn bench_generate<B: FusedBackend>(
    config: &ModelConfig,
    w: GenerateWorkload,
    t: Timing,
    hbm_bytes_per_s: f64,
    device: &B::Device,
) -> crate::Result<GenerateBenchReport> {
    let GenerateWorkload {
        batch,
        prompt,
        new,
        kv_buckets,
    } = w;
    let Timing {
        warmup,
        iters,
        precision,
    } = t;
    let mut config = config.clone();
    config.max_position_embeddings = config.max_position_embeddings.max(prompt + new + 1);
    let (model, padded) = score_workload::<B>(&config, batch, prompt, precision, device);
    let prompts: Vec<Vec<u32>> = padded
        .ids
        .chunks(prompt)
        .map(|r| r.iter().map(|&t| t as u32).collect())
        .collect();
    let gen = GenerateConfig {
        max_new_tokens: new,
        sampling: SamplingParams::greedy(),
        batch_size: batch,
        kv_buckets,
        ..GenerateConfig::default()
    };
    let run = || generate(&model, &config, &prompts, &gen, None, device);
    let first = Instant::now();
    run()?;
    let first_run_ms = first.elapsed().as_secs_f64() * 1e3;
    for _ in 1..warmup {
        run()?;
    }
    let mut times = Vec::new();
    let mut decode = Vec::new();
    let mut steps = Vec::new();
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        let out = run()?;
        times.push(t.elapsed().as_secs_f64());
        decode.push(out.stats.decode_secs);
        steps.push((out.stats.decode_secs, out.stats.decode_step_secs));
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut step_secs = steps.swap_remove(steps.len() / 2).1;
    let eighth = (step_secs.len() / 8).max(1);
    let n_steps = step_secs.len();
    let late = sorted_median(&mut step_secs[n_steps.saturating_sub(eighth)..]) * 1e3;
    let early = sorted_median(&mut step_secs[..eighth.min(n_steps)]) * 1e3;
    let median = sorted_median(&mut times);
    let decode_median = sorted_median(&mut decode);
    let tokens = (batch * new) as f64;
    let decode_tokens_per_s = (batch * new.saturating_sub(1)) as f64 / decode_median;
    let roofline = decode_roofline(
        &config,
        batch,
        prompt,
        new,
        precision.bytes(),
        hbm_bytes_per_s,
    );
    Ok(GenerateBenchReport {
        batch,
        prompt,
        new_tokens: new,
        iters: times.len(),
        tokens_per_s: tokens / median,
        decode_tokens_per_s,
        median_ms: median * 1e3,
        min_ms: times[0] * 1e3,
        roofline_tokens_per_s: roofline,
        roofline_fraction: decode_tokens_per_s / roofline,
        first_run_ms,
        step_ms_early: early,
        step_ms_late: late,
        kv_buckets: kv_buckets.unwrap_or_else(|| !crate::fused::tensor::host_memory::<B>(device)),
    })
}

/// Sort `times` (so `times[0]` is the minimum) and return the median. `times` is not empty.
pub(crate) fn sorted_median(times: &mut [f64]) -> f64 {
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tiny` is the shipped model's shape, so that its benchmarks measure the main job's model.
    #[test]
    fn tiny_is_the_shipped_models_shape() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("model");
        let shipped = crate::model::load_config(&dir).expect("model/config.json");
        let tiny = shape("tiny").expect("a known shape");
        let sizes = |c: &ModelConfig| {
            let n = [
                c.vocab_size,
                c.hidden_size,
                c.intermediate_size,
                c.num_hidden_layers,
            ];
            let h = [c.num_attention_heads, c.num_key_value_heads];
            (
                n,
                h,
                c.max_position_embeddings,
                c.rope_theta,
                c.tie_word_embeddings,
            )
        };
        assert_eq!(sizes(&tiny), sizes(&shipped));
        assert!(shape("tinier").is_err());
    }
}
