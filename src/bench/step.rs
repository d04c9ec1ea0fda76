//! `mgrpo bench grpo`: the time of one whole GRPO step on a random model — sampling `G`
//! completions of `new` tokens for each of `prompts` random prompts (EOS ignored, so every
//! completion has exactly `new` tokens), random 0/1 rewards, group advantages, one update
//! (forward, backward, global-norm clip, AdamW) — split into its parts.
//! `scripts/bench_trl_grpo.py` times TRL's `GRPOTrainer` on the same workload.

use crate::fused::FusedAutodiffBackend;
use std::time::Instant;

use burn::module::AutodiffModule;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{sorted_median, Timing};
use crate::generate::{generate, GenerateConfig, SamplingParams};
use crate::model::{CausalLm, ModelConfig, Precision};
use crate::rl::advantage::{group_advantages, ScaleRewards};
use crate::rl::experience::{Experience, Sample};
use crate::rl::grpo::{update, Part, UpdateConfig};
use crate::rl::logprobs::Layout;
use crate::rl::loss::{LossParams, LossType};
use crate::rl::optim::{adamw, AdamParams, PolicyOptimizer};
use crate::rl::sft::{sft_update, SftExample, SftStep};

/// The workload of [`bench_grpo_step`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct GrpoWorkload {
    pub prompts: usize,
    pub generations: usize,
    pub prompt_len: usize,
    pub new_tokens: usize,
}

/// Median seconds of each part of a step, over the timed steps.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrpoBenchReport {
    pub workload: GrpoWorkload,
    pub steps: usize,
    pub step_s: f64,
    pub generation_s: f64,
    pub logprobs_s: f64,
    pub backward_s: f64,
    pub optimizer_s: f64,
    pub min_step_s: f64,
    /// The first step's seconds: with a GPU backend it includes compiling and autotuning.
    pub first_step_s: f64,
}

/// The trained model of a benchmark: random weights of shape `config` (its context widened to
/// `len` tokens), bf16 compute on f32 weights when `precision` says so, AdamW, and a seeded rng.
fn bench_policy<B: FusedAutodiffBackend>(
    config: &ModelConfig,
    len: usize,
    precision: Precision,
    device: &B::Device,
) -> (ModelConfig, CausalLm<B>, PolicyOptimizer<B>, ChaCha8Rng) {
    let mut config = config.clone();
    config.max_position_embeddings = config.max_position_embeddings.max(len + 1);
    B::seed(device, 0);
    let model = CausalLm::<B>::random(&config, device).with_compute_dtype(precision.dtype());
    let optim = adamw::<B, _>(&AdamParams {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    });
    (config, model, optim, ChaCha8Rng::seed_from_u64(0))
}

/// Run `warmup + steps` GRPO steps on a random model of shape `config`; time the last `steps`.
pub fn bench_grpo_step<B: FusedAutodiffBackend>(
    config: &ModelConfig,
    w: GrpoWorkload,
    t: Timing,
    device: &B::Device,
) -> crate::Result<GrpoBenchReport> {
    let Timing {
        warmup,
        iters: steps,
        precision,
    } = t;
    let (config, mut model, mut optim, mut rng) =
        bench_policy::<B>(config, w.prompt_len + w.new_tokens, precision, device);
    let prompts: Vec<Vec<u32>> = (0..w.prompts)
        .map(|_| {
            (0..w.prompt_len)
                .map(|_| rng.random_range(0..config.vocab_size as u32))
                .collect()
        })
        .collect();
    let update_cfg = UpdateConfig {
        loss: LossParams {
            epsilon_low: 0.2,
            epsilon_high: 0.2,
            beta: 0.0,
            loss_type: LossType::Dapo,
            ..LossParams::default()
        },
        micro_batch: w.prompts * w.generations,
        max_grad_norm: 1.0,
        temperature: 1.0,
        top_entropy_quantile: 1.0,
        group_by_length: true,
        padding_free: true,
    };
    let (mut total, mut gen_t, mut fwd, mut bwd, mut opt) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut first_step_s = 0.0;
    for step in 0..warmup + steps.max(1) {
        let t0 = Instant::now();
        let gen = GenerateConfig {
            max_new_tokens: w.new_tokens,
            sampling: SamplingParams::default(),
            num_return_sequences: w.generations,
            seed: step as u64,
            batch_size: w.prompts * w.generations,
            ..GenerateConfig::default()
        };
        let sampler = model.valid().to_precision(precision);
        let out = generate(&sampler, &config, &prompts, &gen, None, device)?;
        let t_gen = t0.elapsed().as_secs_f64();
        let rewards: Vec<f32> = out
            .completions
            .iter()
            .map(|_| rng.random_range(0..2) as f32)
            .collect();
        let adv = group_advantages(&rewards, w.generations, ScaleRewards::Group);
        let exp = Experience {
            prompts: prompts.clone(),
            samples: out
                .completions
                .into_iter()
                .zip(adv.values)
                .map(|(c, a)| Sample {
                    prompt: c.prompt_index,
                    completion: c.ids,
                    advantage: a,
                    keep: true,
                    old_logps: None,
                    ref_logps: None,
                })
                .collect(),
        };
        let parts = [Part {
            experience: &exp,
            weight: 1.0,
            max_completion_length: w.new_tokens,
            tokens_per_step: None,
        }];
        let (next, u) = update(model, &mut optim, &parts, &update_cfg, 1e-6, device)?;
        model = next;
        if step == 0 {
            first_step_s = t0.elapsed().as_secs_f64();
        }
        if step >= warmup {
            total.push(t0.elapsed().as_secs_f64());
            gen_t.push(t_gen);
            fwd.push(u.forward_secs);
            bwd.push(u.backward_secs);
            opt.push(u.optimizer_secs);
        }
    }
    let min_step_s = total.iter().copied().fold(f64::MAX, f64::min);
    Ok(GrpoBenchReport {
        workload: w,
        steps: total.len(),
        step_s: sorted_median(&mut total),
        generation_s: sorted_median(&mut gen_t),
        logprobs_s: sorted_median(&mut fwd),
        backward_s: sorted_median(&mut bwd),
        optimizer_s: sorted_median(&mut opt),
        min_step_s,
        first_step_s,
    })
}

/// What [`bench_train_step`] measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainBenchReport {
    pub batch: usize,
    pub seq: usize,
    pub steps: usize,
    /// Median seconds of one step: forward, backward, global-norm clip, AdamW.
    pub step_s: f64,
    pub min_step_s: f64,
    /// Trained tokens per second (batch · (seq − 1) / median step).
    pub tokens_per_s: f64,
    /// [`ModelConfig::train_flops_per_token`] at this length.
    pub flops_per_token: f64,
    /// Model FLOPs utilisation: flops_per_token · tokens_per_s / peak.
    pub mfu: f64,
    /// The first step (a warm-up step when `warmup` > 0): with a GPU backend it includes
    /// compiling and autotuning kernels.
    pub first_step_s: f64,
}

/// Time `warmup + steps` supervised training steps (next-token NLL on random rows of `seq`
/// tokens, one micro-batch of `batch` rows) on a random model of shape `config`; time the last
/// `steps` (`t.iters`). MFU is measured against `peak_flops` (H100 SXM: 989e12 dense bf16).
pub fn bench_train_step<B: FusedAutodiffBackend>(
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    t: Timing,
    peak_flops: f64,
    device: &B::Device,
) -> crate::Result<TrainBenchReport> {
    let Timing {
        warmup,
        iters: steps,
        precision,
    } = t;
    let (config, mut model, mut optim, mut rng) = bench_policy::<B>(config, seq, precision, device);
    let rows: Vec<SftExample> = (0..batch)
        .map(|_| SftExample {
            prompt: vec![rng.random_range(0..config.vocab_size as u32)],
            completion: (1..seq)
                .map(|_| rng.random_range(0..config.vocab_size as u32))
                .collect(),
        })
        .collect();
    let refs: Vec<&SftExample> = rows.iter().collect();
    let mut times = Vec::new();
    let mut first_step_s = 0.0;
    for step in 0..warmup + steps.max(1) {
        let t0 = Instant::now();
        // The loss is read back inside: the step is synchronised.
        let settings = SftStep {
            micro_batch: batch,
            layout: Layout::Packed,
            max_grad_norm: 1.0,
            lr: 1e-6,
        };
        let (next, _) = sft_update(model, &mut optim, &refs, &settings, device)?;
        model = next;
        if step == 0 {
            first_step_s = t0.elapsed().as_secs_f64();
        }
        if step >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let min_step_s = times.iter().copied().fold(f64::MAX, f64::min);
    let step_s = sorted_median(&mut times);
    let tokens_per_s = (batch * (seq - 1)) as f64 / step_s;
    let flops_per_token = config.train_flops_per_token(seq);
    Ok(TrainBenchReport {
        batch,
        seq,
        steps: times.len(),
        step_s,
        min_step_s,
        tokens_per_s,
        flops_per_token,
        mfu: flops_per_token * tokens_per_s / peak_flops,
        first_step_s,
    })
}
