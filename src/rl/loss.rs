//! The GRPO objective: a pure function of tensors returning the loss and its metrics.
//!
//! Per token: `ℓ = −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A) + β·D` with
//! `r = exp(log π_θ − log π_old)` and the k3 estimator `D = exp(ref − log π_θ) − (ref − log π_θ) − 1`.
//!
//! Choices, and the config key that switches each:
//! - `π_old` (`num_iterations`): with one update per rollout there are no old log-probs; the
//!   detached current log-probs stand in, so `r = 1` exactly in value and the gradient is
//!   `−A·∇log π` (the loss *value* is then ≈ 0 with β = 0, while its gradient is not).
//! - Clipping (`epsilon`, `epsilon_high`): asymmetric bounds as in DAPO; `epsilon_high`
//!   defaults to `epsilon`.
//! - KL (`beta`): the k3 estimator against a frozen reference, added per token; with β = 0 the
//!   reference is neither loaded nor evaluated.
//! - Aggregation (`loss_type`), with `m` the completion mask and the counts of the **whole
//!   optimizer step** (every micro-batch), so that gradient accumulation equals one big batch:
//!   - `grpo`: mean over sequences of each sequence's token mean;
//!   - `bnpo`: `Σ mℓ / Σ m` over the micro-batch, averaged over micro-batches (TRL's
//!     definition; the one variant that depends on how the step is split);
//!   - `dr_grpo`: `Σ mℓ / (sequences · max_completion_length)`;
//!   - `dapo` (default): `Σ mℓ / (active tokens of the step)`.
//!   - `cispo`: CISPO's objective `ℓ = −sg(min(r, ε_high))·A·log π_θ` (no clip on the
//!     gradient path: the importance weight is capped at `epsilon_high` itself and detached),
//!     aggregated as `dapo`.
//! - Importance sampling (`importance_sampling_level`): `token` (GRPO), `sequence` (GSPO: one
//!   ratio per sequence, `r = exp(mean over its tokens of log π_θ − log π_old)`) or
//!   `sequence_sum` (RLOO: `r = exp(Σ over its tokens of log π_θ − log π_old)`).
//! - Two-sided clipping (`delta`): the unclipped term uses `min(r, δ)`, so a large ratio on a
//!   negative advantage is bounded too.
//! - High-entropy tokens only (`top_entropy_quantile` q < 1): the per-token policy loss is kept on
//!   the tokens whose entropy is at or above the micro-batch's (1 − q) quantile
//!   ([`high_entropy_mask`]), as TRL does; the KL term stays on every token.
//! - Truncated completions (`mask_truncated_completions`) are removed by the caller through `m`.

use crate::fused::FusedBackend;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How per-token losses are aggregated (`loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    Grpo,
    Bnpo,
    DrGrpo,
    #[default]
    Dapo,
    Cispo,
}

/// What one importance ratio covers (`importance_sampling_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSampling {
    /// One ratio per token (GRPO).
    #[default]
    Token,
    /// One ratio per sequence, the geometric mean of its tokens' (GSPO).
    Sequence,
    /// One ratio per sequence, the product of its tokens' (`exp` of the summed log-ratios):
    /// the completion as one action (RLOO's).
    SequenceSum,
}

/// The objective's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossParams {
    pub epsilon_low: f32,
    pub epsilon_high: f32,
    pub beta: f32,
    pub loss_type: LossType,
    pub importance_sampling: ImportanceSampling,
    /// Upper bound of the unclipped ratio (two-sided clipping); `None` = off.
    pub delta: Option<f32>,
}

impl Default for LossParams {
    /// TRL's defaults: ε = 0.2 both ways, β = 0, `dapo`, token-level ratios, no δ.
    fn default() -> Self {
        Self {
            epsilon_low: 0.2,
            epsilon_high: 0.2,
            beta: 0.0,
            loss_type: LossType::Dapo,
            importance_sampling: ImportanceSampling::Token,
            delta: None,
        }
    }
}

/// Counts of one part of the optimizer step (all of its micro-batches), and its token budget:
/// what its loss is normalised by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCounts {
    /// Sequences in the step.
    pub sequences: usize,
    /// Active (unmasked) completion tokens `dapo` and `cispo` divide by: the step's own, or,
    /// when one rollout feeds several optimizer steps, the rollout's per step (TRL's
    /// `num_items_in_batch · gradient_accumulation_steps / steps_per_generation`).
    pub tokens: f64,
    /// Micro-batches the step is split into.
    pub micro_batches: usize,
    /// The token budget of these completions, `dr_grpo`'s constant length: layer 1's
    /// `max_completion_length`, or `layer2_max_completion_length` for MGRPO's layer 2 and
    /// iGRPO's refinements.
    pub max_completion_length: usize,
}

/// The tensors of one micro-batch. Completion tokens of `n` sequences in a `[n, t]` window
/// (shorter completions are padded; `mask` says which entries count).
#[derive(Debug, Clone)]
pub struct LossInputs<B: Backend> {
    /// `[n, t]` log π_θ of each completion token (carries the gradient)
    pub logps: Tensor<B, 2>,
    /// `[n, t]` log π_old, when the rollout is reused (`num_iterations > 1`)
    pub old_logps: Option<Tensor<B, 2>>,
    /// `[n, t]` log π_ref, when β > 0
    pub ref_logps: Option<Tensor<B, 2>>,
    /// `[n]`
    pub advantages: Tensor<B, 1>,
    /// `[n, t]`, 1 on counted tokens, 0 elsewhere
    pub mask: Tensor<B, 2>,
    /// `[n, t]`, 1 on the tokens whose policy loss counts (`top_entropy_quantile` < 1; see
    /// [`high_entropy_mask`]); `None` = every token.
    pub entropy_mask: Option<Tensor<B, 2>>,
}

/// Sums over the micro-batch (detached), to be added up over the step.
#[derive(Debug, Clone)]
pub struct LossSums<B: Backend> {
    /// `[6]`: Σ D, Σ low-clipped, Σ high-clipped, Σ region-clipped, Σ m, and the units the
    /// clip counts are of (Σ m for token ratios; sequences for sequence ratios)
    pub sums: Tensor<B, 1>,
}

/// [`LossSums`] read back: sums over active tokens (over sequences for the clip counts of
/// sequence ratios), added up over micro-batches and devices.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TokenSums {
    /// Σ D (the k3 KL).
    pub kl: f32,
    pub clip_low: f32,
    pub clip_high: f32,
    pub clip_region: f32,
    /// Σ m: the active tokens.
    pub tokens: f32,
    /// What the clip counts are out of: the active tokens for token ratios, the sequences
    /// (every one, as TRL counts them) for sequence ratios.
    pub clip_units: f32,
}

impl TokenSums {
    /// Values in [`LossSums`]' order.
    pub const LEN: usize = 6;

    /// From `LEN` values in [`LossSums`]' order.
    pub fn from_slice(v: &[f32]) -> Self {
        Self {
            kl: v[0],
            clip_low: v[1],
            clip_high: v[2],
            clip_region: v[3],
            tokens: v[4],
            clip_units: v[5],
        }
    }

    /// The values in [`LossSums`]' order.
    pub fn to_array(self) -> [f32; Self::LEN] {
        [
            self.kl,
            self.clip_low,
            self.clip_high,
            self.clip_region,
            self.tokens,
            self.clip_units,
        ]
    }

    /// Add `other` field by field.
    pub fn add(&mut self, other: &Self) {
        self.kl += other.kl;
        self.clip_low += other.clip_low;
        self.clip_high += other.clip_high;
        self.clip_region += other.clip_region;
        self.tokens += other.tokens;
        self.clip_units += other.clip_units;
    }
}

/// [`LossSums`] read back: the KL divided by the active tokens, the clip counts by their units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossMetrics {
    /// Mean k3 KL per active token (`kl`; 0 when β = 0).
    pub kl: f32,
    /// Fraction of tokens (of sequences, with sequence ratios) with `r < 1 − ε_low` and
    /// `A < 0` (`clip_ratio/low_mean`).
    pub clip_low: f32,
    /// Fraction with `r > 1 + ε_high` and `A > 0` (`clip_ratio/high_mean`), `r` bounded by δ
    /// first when it is set, as TRL does.
    pub clip_high: f32,
    /// Either of the two (`clip_ratio/region_mean`).
    pub clip_region: f32,
    pub tokens: f32,
}

impl LossMetrics {
    /// Metrics from the sums of every micro-batch of a step, in [`LossSums`]' order.
    pub fn from_sums(sums: &[f32; TokenSums::LEN]) -> Self {
        Self::from_totals(TokenSums::from_slice(sums))
    }

    /// Metrics from the step's token sums.
    pub fn from_totals(s: TokenSums) -> Self {
        let t = s.tokens.max(1.0);
        let u = s.clip_units.max(1.0);
        Self {
            kl: s.kl / t,
            clip_low: s.clip_low / u,
            clip_high: s.clip_high / u,
            clip_region: s.clip_region / u,
            tokens: s.tokens,
        }
    }
}

/// The micro-batch's share of the step's loss, and its metric sums.
///
/// # Shapes
/// - see [`LossInputs`]; returns a `[1]` loss
pub fn grpo_loss<B: FusedBackend>(
    inputs: LossInputs<B>,
    params: &LossParams,
    step: &StepCounts,
) -> (Tensor<B, 1>, LossSums<B>) {
    let LossInputs {
        logps,
        old_logps,
        ref_logps,
        advantages,
        mask,
        entropy_mask,
    } = inputs;
    let [n, t] = logps.dims();
    let old = old_logps.unwrap_or_else(|| logps.clone().detach());
    let ratio = match params.importance_sampling {
        ImportanceSampling::Token => (logps.clone() - old).exp(), // [n, t]
        ImportanceSampling::Sequence => {
            let log_ratio = (logps.clone() - old) * mask.clone();
            let per_seq = log_ratio.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0); // [n, 1]
            per_seq.exp().expand([n, t])
        }
        ImportanceSampling::SequenceSum => {
            let log_ratio = (logps.clone() - old) * mask.clone();
            log_ratio.sum_dim(1).exp().expand([n, t])
        }
    };
    let adv = advantages.reshape([n, 1]).expand([n, t]); // [n, t]
    let mut per_token = match params.loss_type {
        LossType::Cispo => {
            let weight = ratio.clone().clamp_max(params.epsilon_high).detach();
            (weight * adv.clone() * logps.clone()).neg()
        }
        _ => {
            let clipped = ratio
                .clone()
                .clamp(1.0 - params.epsilon_low, 1.0 + params.epsilon_high);
            let unclipped = match params.delta {
                Some(delta) => ratio.clone().clamp_max(delta),
                None => ratio.clone(),
            };
            let unclipped_obj = unclipped * adv.clone();
            let clipped_obj = clipped * adv.clone();
            unclipped_obj.min_pair(clipped_obj).neg() // [n, t]
        }
    };
    if let Some(keep) = entropy_mask {
        per_token = per_token * keep;
    }

    let kl = match ref_logps {
        Some(reference) if params.beta > 0.0 => {
            // ref − log π, 0 on masked columns before the exp: there `ref` is a placeholder,
            // and exp(0 − log π) overflows to inf for log π < −88.7 (inf · 0 = NaN)
            let x = (reference - logps).mask_fill(mask.clone().equal_elem(0.0), 0.0);
            let d = x.clone().exp() - x - 1.0; // [n, t]
            per_token = per_token + d.clone().mul_scalar(params.beta);
            d.detach()
        }
        _ => Tensor::zeros([n, t], &mask.device()),
    };

    let masked = per_token * mask.clone(); // [n, t]
    let loss = match params.loss_type {
        LossType::Grpo => {
            let per_seq = masked.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0); // [n, 1]
            per_seq.sum().div_scalar(step.sequences.max(1) as f32)
        }
        LossType::Bnpo => {
            let local = mask.clone().sum().clamp_min(1.0);
            (masked.sum() / local).div_scalar(step.micro_batches.max(1) as f32)
        }
        LossType::DrGrpo => masked
            .sum()
            .div_scalar((step.sequences.max(1) * step.max_completion_length.max(1)) as f32),
        LossType::Dapo | LossType::Cispo => masked.sum().div_scalar(step.tokens.max(1.0) as f32),
    };

    // TRL's clip metrics: a token is "low-clipped" when the ratio fell below the range on a
    // negative advantage, "high-clipped" when it rose above it on a positive one (the ratio
    // bounded by δ first). For `cispo` "high-clipped" is TRL's `cispo_clip_ratio`: the weight
    // was capped (r > ε_high, A > 0). Sequence ratios count once per sequence, every sequence.
    let ratio = ratio.detach();
    let adv = adv.detach();
    let (low_bound, high_bound) = match params.loss_type {
        LossType::Cispo => (f32::NEG_INFINITY, params.epsilon_high),
        _ => (1.0 - params.epsilon_low, 1.0 + params.epsilon_high),
    };
    let ratio = match (params.loss_type, params.delta) {
        (LossType::Cispo, _) | (_, None) => ratio,
        (_, Some(delta)) => ratio.clamp_max(delta),
    };
    let low = ratio
        .clone()
        .lower_elem(low_bound)
        .bool_and(adv.clone().lower_elem(0.0))
        .float();
    let high = ratio
        .greater_elem(high_bound)
        .bool_and(adv.greater_elem(0.0))
        .float();
    let region = (low.clone() + high.clone()).clamp_max(1.0);
    let device = mask.device();
    let (clip_weight, clip_units) = match params.importance_sampling {
        ImportanceSampling::Token => (mask.clone(), mask.clone().sum()),
        // the ratio is the same on every column: count column 0 of every row
        ImportanceSampling::Sequence | ImportanceSampling::SequenceSum => {
            let first: Vec<f32> = (0..n * t).map(|i| f32::from(i % t == 0)).collect();
            let first = Tensor::<B, 2>::from_data(TensorData::new(first, [n, t]), &device);
            (first, Tensor::from_data([n as f32], &device))
        }
    };
    let sums = Tensor::cat(
        vec![
            (kl * mask.clone()).sum(),
            (low * clip_weight.clone()).sum(),
            (high * clip_weight.clone()).sum(),
            (region * clip_weight).sum(),
            mask.sum(),
            clip_units,
        ],
        0,
    )
    .detach(); // [6]
    (loss, LossSums { sums })
}

/// `top_entropy_quantile`: 1.0 on the active tokens (`mask` = 1) whose `entropy` is at or
/// above the `1 − quantile` quantile of the active tokens' entropies (linear interpolation, as
/// `torch.quantile`), 0 elsewhere. Row-major host values of one micro-batch; TRL computes the
/// threshold over its per-device batch the same way.
pub fn high_entropy_mask(entropy: &[f32], mask: &[f32], quantile: f32) -> Vec<f32> {
    let mut active: Vec<f32> = entropy
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m > 0.0)
        .map(|(h, _)| *h)
        .collect();
    if active.is_empty() {
        return vec![0.0; entropy.len()];
    }
    active.sort_by(f32::total_cmp);
    let pos = (1.0 - quantile.clamp(0.0, 1.0)) as f64 * (active.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let frac = (pos - lo as f64) as f32;
    let threshold = active[lo] + (active[hi] - active[lo]) * frac;
    entropy
        .iter()
        .zip(mask)
        .map(|(h, m)| f32::from(*m > 0.0 && *h >= threshold))
        .collect()
}

#[cfg(test)]
#[path = "loss_tests.rs"]
mod tests;
