//! One GRPO update over a batch of experience: the completions with their advantages (and old
//! and reference log-probs when needed) → micro-batches → loss → accumulated gradients →
//! global-norm clip → AdamW.
//!
//! Gradient accumulation normalises every micro-batch by the counts of the whole step
//! ([`super::loss::StepCounts`]), so splitting a batch changes nothing but memory (except for `bnpo`, see
//! `loss.rs`). A non-finite loss or gradient norm skips the optimizer step.

use crate::fused::FusedAutodiffBackend;
use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::batching;
use super::experience::{Experience, Sample};
use super::logprobs::{completion_logprobs, completion_mask, right_aligned, window, Layout};
use super::loss::{
    grpo_loss, high_entropy_mask, LossInputs, LossMetrics, LossParams, StepCounts, TokenSums,
};
use super::optim::{clip_coefficient, global_grad_norm, step_scaled, PolicyOptimizer};
use crate::error::Result;
use crate::fused::tensor::read_back;
use crate::model::CausalLm;

/// Settings of [`update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateConfig {
    pub loss: LossParams,
    /// Sequences per forward/backward pass (`per_device_train_batch_size`).
    pub micro_batch: usize,
    /// Global-norm clip (`max_grad_norm`; 0 = off).
    pub max_grad_norm: f32,
    /// The sampling temperature: the policy's log-probs are `log_softmax(logits / T)`, the
    /// distribution the completions were drawn from (TRL does the same).
    pub temperature: f32,
    /// Train only on each micro-batch's highest-entropy tokens, this fraction of them (1.0 =
    /// every token; see [`super::loss::high_entropy_mask`]).
    pub top_entropy_quantile: f32,
    /// Cut each part into micro-batches of similar lengths (see `batching`).
    pub group_by_length: bool,
    /// Run each micro-batch's token-wise layers on its tokens only ([`Layout::Packed`]).
    pub padding_free: bool,
}

/// One loss term of an update: a batch of experience and its weight. GRPO has one part; MGRPO
/// adds the layer-2 corrections with `layer2_weight`. Each part is normalised by its own counts
/// (`loss_type`), so the step's loss is `Σ weight · L(part)`.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub experience: &'a Experience,
    pub weight: f32,
    /// The token budget its completions were sampled with (`dr_grpo`'s constant).
    pub max_completion_length: usize,
    /// `dapo`/`cispo`'s divisor when this part is one of several optimizer steps' slices of a
    /// rollout: the whole rollout part's active tokens over the steps it feeds, as TRL divides
    /// (None: the part's own active tokens).
    pub tokens_per_step: Option<f64>,
}

/// The experiences of the `n` optimizer steps one rollout feeds
/// (`steps_per_generation / gradient_accumulation_steps`): slice `k` holds samples `k`,
/// `k + n`, … of every part (TRL's order).
pub fn rollout_slices(parts: &[Part<'_>], n: usize) -> Vec<Vec<Experience>> {
    (0..n)
        .map(|k| parts.iter().map(|p| p.experience.slice(k, n)).collect())
        .collect()
}

/// The parts of one of [`rollout_slices`]: each part's weight and budget, with `dapo`/`cispo`'s
/// divisor the whole part's active tokens over the `n` steps, as TRL divides every step by
/// the rollout's tokens per step (so a step of short completions weighs no more per token).
pub fn slice_parts<'a>(parts: &[Part<'_>], slice: &'a [Experience], n: usize) -> Vec<Part<'a>> {
    parts
        .iter()
        .zip(slice)
        .map(|(p, e)| Part {
            experience: e,
            weight: p.weight,
            max_completion_length: p.max_completion_length,
            tokens_per_step: Some(p.experience.active_tokens() as f64 / n.max(1) as f64),
        })
        .collect()
}

/// What an update measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateStats {
    /// The step's loss (the weighted parts added up).
    pub loss: f32,
    /// Each part's own (unweighted) loss.
    pub part_losses: Vec<f32>,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Loss metrics over every part's active tokens.
    pub metrics: LossMetrics,
    /// Mean entropy of the policy over active tokens.
    pub entropy: f32,
    /// `false` when the loss or the gradient was not finite and the step was skipped.
    pub applied: bool,
    /// Forward seconds (log-probs and loss, read back).
    pub forward_secs: f64,
    /// Backward seconds (and gradient accumulation).
    pub backward_secs: f64,
    /// Clipping + optimizer seconds.
    pub optimizer_secs: f64,
    /// Positions the micro-batches computed, and the tokens among them.
    pub padding: batching::Padding,
}

/// Host-side sums of a share of a step's micro-batches: added up over micro-batches, then
/// over devices (`rl::parallel` all-reduces them as one vector, [`Self::to_vec`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UpdateSums {
    pub tokens: TokenSums,
    /// Σ entropy over active tokens.
    pub entropy: f32,
    /// Micro-batches run.
    pub micro_batches: f32,
    /// Each part's loss.
    pub part_losses: Vec<f32>,
}

impl UpdateSums {
    pub fn new(parts: usize) -> Self {
        Self {
            part_losses: vec![0.0; parts],
            ..Default::default()
        }
    }

    /// Every field in one vector: the token sums, the entropy, the micro-batches, the part
    /// losses.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = self.tokens.to_array().to_vec();
        v.extend([self.entropy, self.micro_batches]);
        v.extend(&self.part_losses);
        v
    }

    /// The inverse of [`Self::to_vec`].
    pub fn from_vec(v: &[f32]) -> Self {
        let n = TokenSums::LEN;
        Self {
            tokens: TokenSums::from_slice(&v[..n]),
            entropy: v[n],
            micro_batches: v[n + 1],
            part_losses: v[n + 2..].to_vec(),
        }
    }
}

/// Gradients and host-side sums of a share of a step's micro-batches (all of them on one
/// device; every n-th under data parallelism, see `rl::parallel`).
pub(crate) struct Accumulated {
    pub grads: Option<GradientsParams>,
    pub sums: UpdateSums,
    pub forward_secs: f64,
    pub secs: f64,
    /// The padding of the whole step's plan (every device's micro-batches).
    pub padding: batching::Padding,
}

/// Which micro-batches a device runs: those [`batching::plan`] gives device `index` of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Share {
    pub index: usize,
    pub of: usize,
}

/// Forward and backward over this device's share of the micro-batches of `parts`, each
/// normalised by the counts of its whole part, so that the shares' gradients add up to the
/// step's gradient.
pub(crate) fn accumulate<B: FusedAutodiffBackend>(
    model: &CausalLm<B>,
    parts: &[Part<'_>],
    cfg: &UpdateConfig,
    share: Share,
    device: &B::Device,
) -> Result<Accumulated> {
    let t0 = Instant::now();
    let mb = cfg.micro_batch.max(1);
    let mut accum = GradientsAccumulator::<CausalLm<B>>::new();
    let mut sums = UpdateSums::new(parts.len());
    let mut forward_secs = 0.0;
    let mut any = false;
    let exps: Vec<&Experience> = parts.iter().map(|p| p.experience).collect();
    let plan = batching::plan(&exps, mb, cfg.group_by_length, share.of);
    let counts: Vec<StepCounts> = parts
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let own = p.experience.counts(mb, p.max_completion_length);
            StepCounts {
                // bnpo's divisor: the micro-batches the plan actually cut the part into
                micro_batches: plan.iter().filter(|b| b.part == pi).count(),
                tokens: p.tokens_per_step.unwrap_or(own.tokens),
                ..own
            }
        })
        .collect();
    for batch in plan.iter().filter(|b| b.device == share.index) {
        let (pi, part) = (batch.part, &parts[batch.part]);
        let tf = Instant::now();
        let Some((loss, host)) = forward(
            model,
            part.experience,
            &batch.samples,
            cfg,
            &counts[pi],
            device,
        )?
        else {
            continue;
        };
        let n = TokenSums::LEN;
        sums.tokens.add(&TokenSums::from_slice(&host[..n]));
        sums.entropy += host[n];
        sums.micro_batches += 1.0;
        sums.part_losses[pi] += host[n + 1];
        forward_secs += tf.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads((loss * part.weight).backward(), model);
        accum.accumulate(model, grads);
        any = true;
    }
    Ok(Accumulated {
        grads: any.then(|| accum.grads()),
        sums,
        forward_secs,
        secs: t0.elapsed().as_secs_f64(),
        padding: batching::plan_padding(&exps, &plan, cfg.padding_free),
    })
}

/// The loss of one micro-batch (the samples of `exp` at `indices`) with its graph, and, read back in one go,
/// its token sums, entropy sum and loss value; `None` when every completion is empty.
fn forward<B: FusedAutodiffBackend>(
    model: &CausalLm<B>,
    exp: &Experience,
    indices: &[usize],
    cfg: &UpdateConfig,
    counts: &StepCounts,
    device: &B::Device,
) -> Result<Option<(Tensor<B, 1>, Vec<f32>)>> {
    let samples: Vec<&Sample> = indices.iter().map(|&i| &exp.samples[i]).collect();
    let rows = exp.rows_at(indices);
    let t = window(&rows);
    if t == 0 {
        return Ok(None);
    }
    let m = rows.len();
    let keep: Vec<bool> = samples.iter().map(|s| s.keep).collect();
    let host = |v: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v, [m, t]), device);
    let aligned = |f: fn(&Sample) -> Option<&Vec<f32>>| -> Option<Tensor<B, 2>> {
        let vs: Option<Vec<&[f32]>> = samples.iter().map(|s| f(s).map(|v| &v[..])).collect();
        vs.map(|vs| host(right_aligned(&vs, t)))
    };
    let mask_values = completion_mask(&rows, &keep, t);
    let layout = Layout::padding_free(cfg.padding_free);
    let (logps, entropy) = completion_logprobs(model, &rows, cfg.temperature, true, layout, device);
    let entropy_mask = match &entropy {
        Some(h) if cfg.top_entropy_quantile < 1.0 => {
            let h = read_back(h.clone(), "entropies")?;
            let q = cfg.top_entropy_quantile;
            Some(host(high_entropy_mask(&h, &mask_values, q)))
        }
        _ => None,
    };
    let mask = host(mask_values);
    let inputs = LossInputs {
        logps,
        old_logps: aligned(|s| s.old_logps.as_ref()),
        ref_logps: aligned(|s| s.ref_logps.as_ref()),
        advantages: Tensor::from_data(
            TensorData::new(samples.iter().map(|s| s.advantage).collect(), [m]),
            device,
        ),
        mask: mask.clone(),
        entropy_mask,
    };
    let (loss, loss_sums) = grpo_loss(inputs, &cfg.loss, counts);
    let entropy = entropy.map_or_else(|| Tensor::zeros([1], device), |h| (h * mask).sum());
    // one read-back per micro-batch: the metric sums, the entropy sum and the loss
    let host = read_back(
        Tensor::cat(vec![loss_sums.sums, entropy, loss.clone().detach()], 0),
        "loss metrics",
    )?;
    Ok(Some((loss, host)))
}

/// The step's statistics from the (device-summed) sums of [`Accumulated`], and, when any
/// micro-batch ran, the clipped optimizer step.
pub(crate) fn apply<B: FusedAutodiffBackend>(
    model: CausalLm<B>,
    optim: &mut PolicyOptimizer<B>,
    parts: &[Part<'_>],
    grads: Option<GradientsParams>,
    sums: &UpdateSums,
    cfg: &UpdateConfig,
    lr: f64,
) -> (CausalLm<B>, UpdateStats) {
    let t0 = Instant::now();
    let part_losses = sums.part_losses.clone();
    let Some(grads) = grads.filter(|_| sums.micro_batches > 0.0) else {
        // nothing to train on (every part empty): no optimizer step, nothing skipped
        return (
            model,
            UpdateStats {
                part_losses,
                applied: true,
                ..Default::default()
            },
        );
    };
    let metrics = LossMetrics::from_totals(sums.tokens);
    let loss: f32 = parts
        .iter()
        .zip(&part_losses)
        .map(|(p, l)| p.weight * l)
        .sum();
    let grad_norm = global_grad_norm(&model, &grads);
    let applied = loss.is_finite() && grad_norm.is_finite();
    let model = if applied {
        step_scaled(
            optim,
            lr,
            model,
            grads,
            clip_coefficient(grad_norm, cfg.max_grad_norm),
        )
    } else {
        model
    };
    (
        model,
        UpdateStats {
            loss,
            part_losses,
            grad_norm,
            metrics,
            entropy: sums.entropy / metrics.tokens.max(1.0),
            applied,
            optimizer_secs: t0.elapsed().as_secs_f64(),
            ..Default::default()
        },
    )
}

/// One optimizer step on `parts` at learning rate `lr`. Returns the updated model (unchanged
/// when the step is skipped) and what it measured.
pub fn update<B: FusedAutodiffBackend>(
    model: CausalLm<B>,
    optim: &mut PolicyOptimizer<B>,
    parts: &[Part<'_>],
    cfg: &UpdateConfig,
    lr: f64,
    device: &B::Device,
) -> Result<(CausalLm<B>, UpdateStats)> {
    let all = Share { index: 0, of: 1 };
    let acc = accumulate(&model, parts, cfg, all, device)?;
    let (model, mut stats) = apply(model, optim, parts, acc.grads, &acc.sums, cfg, lr);
    stats.forward_secs = acc.forward_secs;
    stats.backward_secs = acc.secs - acc.forward_secs;
    stats.padding = acc.padding;
    Ok((model, stats))
}

#[cfg(test)]
#[path = "grpo_tests.rs"]
mod tests;
