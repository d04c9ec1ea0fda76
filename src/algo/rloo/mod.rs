//! RLOO (REINFORCE leave-one-out; TRL's `RLOOTrainer`, Ahmadian et al. 2024): G completions
//! per question; each completion's baseline is the mean reward of the other G − 1, so
//! `A_i = r_i − (Σ_j r_j − r_i) / (G − 1)`. Choices, as TRL makes them:
//! - the reward is clipped to `reward_clip_range` (unset: no clip), then the KL penalty is
//!   taken out of it: `r_i − β · Σ_t (log π_old − log π_ref)` over the completion's tokens
//!   (`beta`, the k1 estimate summed per sequence; the loss has no KL term);
//! - `normalize_advantages` whitens the advantages over the whole rollout
//!   (`(A − mean) / (std + 1e-4)`, unbiased std);
//! - the loss (`rl::loss`, `importance_sampling_level = "sequence_sum"` with `loss_type =
//!   "grpo"`) treats a completion as one action: `r = exp(Σ_t log π_θ − log π_old)`,
//!   `−min(r·A, clip(r, 1 − ε, 1 + ε_high)·A)`, averaged over sequences.
//!
//! Metrics are GRPO's names; `kl` is the mean per-token k1 of the penalty, `reward_std` the
//! standard deviation over the whole rollout (TRL's). Keys: TRL's `RLOOConfig` names at the
//! top level (`beta`, `num_generations`, `epsilon`, ... are shared with GRPO).

use serde::{Deserialize, Serialize};

use super::{grpo, Collected, Group, Shared, SharedKeys, StepInput};
use crate::error::{KeyError, Result};
use crate::rl::advantage::{nanmean, nanstd, Advantages};
use crate::rl::loss::{ImportanceSampling, LossParams, LossType};
use crate::rl::policy::Policy;
use crate::rl::rollout::Sampler;

/// TRL's constant in the whitening's denominator.
const NORMALIZE_EPS: f32 = 1e-4;

/// `RLOOConfig`'s defaults where they differ from `GRPOConfig`'s: `beta` 0.05, `num_generations` 2.
pub(crate) const TRL_DEFAULTS: [(&str, toml::Value); 2] = [
    ("beta", toml::Value::Float(0.05)),
    ("num_generations", toml::Value::Integer(2)),
];

/// RLOO's own keys (TRL's `RLOOConfig` names).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Whiten the advantages over the rollout (mean 0, std 1).
    pub normalize_advantages: bool,
    /// `[min, max]` the rewards are clipped to before the baseline; unset = no clip.
    pub reward_clip_range: Option<[f32; 2]>,
}

impl Config {
    /// Why RLOO's keys, or the GRPO keys it replaces, are unusable.
    pub fn validate(&self, s: &SharedKeys) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if let Some([lo, hi]) = self.reward_clip_range {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return bad("reward_clip_range", "must be [min, max] with min < max");
            }
        }
        if s.num_generations < 2 {
            return bad(
                "num_generations",
                "must be at least 2 (the leave-one-out baseline needs another completion)",
            );
        }
        if let Some(key) = s.changed_loss_key {
            return bad(
                key,
                "is GRPO's; RLOO's loss is fixed (TRL's: one ratio per completion, averaged \
                 over completions): leave it at its default",
            );
        }
        Ok(())
    }
}

/// RLOO's objective: GRPO's clipped loss with one ratio per completion (the sum of its
/// tokens' log-ratios), averaged over completions, and no KL term (it is in the reward).
pub fn loss_params(base: LossParams) -> LossParams {
    LossParams {
        beta: 0.0,
        loss_type: LossType::Grpo,
        importance_sampling: ImportanceSampling::SequenceSum,
        delta: None,
        ..base
    }
}

/// Leave-one-out advantages of `rewards` in groups of `g` (≥ 2), whitened over the batch when
/// `normalize`; the reward statistics are of `raw` (the rewards before clip and penalty).
///
/// A NaN reward is a completion no reward function scored (TRL's all-`None` row): the baseline
/// of the others averages their scored siblings only, and it gets advantage 0, as does a
/// completion with no scored sibling (TRL's `RLOOTrainer`).
pub fn loo_advantages(rewards: &[f32], raw: &[f32], g: usize, normalize: bool) -> Advantages {
    let mut values = Vec::with_capacity(rewards.len());
    let mut zero_std_groups = 0;
    for group in rewards.chunks(g) {
        let scored = group.iter().filter(|r| !r.is_nan()).count() as f32;
        let sum: f32 = group.iter().filter(|r| !r.is_nan()).sum();
        values.extend(group.iter().map(|r| r - (sum - r) / (scored - 1.0)));
        // torch.isclose(nanstd, 0); a NaN std (fewer than two scored) is not zero
        if nanstd(group) <= 1e-8 {
            zero_std_groups += 1;
        }
    }
    if normalize {
        let (m, s) = (nanmean(&values), nanstd(&values));
        for v in &mut values {
            *v = (*v - m) / (s + NORMALIZE_EPS);
        }
    }
    // TRL's nan_to_num: no scored reward, or no scored sibling, gives no signal
    for v in &mut values {
        if v.is_nan() {
            *v = 0.0;
        }
    }
    let groups = rewards.len().div_ceil(g.max(1)).max(1);
    Advantages {
        values,
        reward_mean: nanmean(raw),
        reward_std: nanstd(raw),
        frac_zero_std: zero_std_groups as f32 / groups as f32,
        zero_std_groups,
    }
}

/// The rewards the baseline sees: clipped to `range`.
fn clipped(raw: &[f32], range: Option<[f32; 2]>) -> Vec<f32> {
    match range {
        Some([lo, hi]) => raw.iter().map(|r| r.clamp(lo, hi)).collect(),
        None => raw.to_vec(),
    }
}

/// G completions per question with leave-one-out advantages; with β > 0 the advantages are
/// set after scoring, once the KL penalty of each completion is known.
pub fn collect<S: Sampler>(
    cfg: &Config,
    shared: &Shared,
    policy: &mut Policy<'_, S>,
    input: StepInput<'_>,
) -> Result<Collected> {
    let g = shared.num_generations;
    let first = grpo::first_layer(shared, policy, input)?;
    let raw = first.rollout.totals();
    let rewards = clipped(&raw, cfg.reward_clip_range);
    let adv = loo_advantages(&rewards, &raw, g, cfg.normalize_advantages);
    let main = Group::with_advantages(first.rollout, adv, shared.mask_truncated);
    let mut got = Collected::single(main, shared.max_completion_length);
    if shared.beta > 0.0 {
        let (beta, normalize) = (shared.beta, cfg.normalize_advantages);
        got.after_score = Some(Box::new(move |got: &mut Collected| {
            penalise(got, &raw, &rewards, g, beta, normalize)
        }));
    }
    Ok(got)
}

/// The KL penalty in the reward: each completion's `Σ_t (log π_old − log π_ref)` (its kept
/// tokens; none when masked) times β, out of its reward; then the advantages again, and the
/// reference log-probs dropped (the loss has no KL term).
fn penalise(
    got: &mut Collected,
    raw: &[f32],
    rewards: &[f32],
    g: usize,
    beta: f32,
    normalize: bool,
) {
    let (mut kl_sum, mut tokens) = (0.0f32, 0usize);
    let mut penalised = Vec::with_capacity(rewards.len());
    for (s, r) in got.main.experience.samples.iter_mut().zip(rewards) {
        let kl = match (&s.old_logps, s.ref_logps.take()) {
            (Some(old), Some(reference)) if s.keep => {
                tokens += old.len();
                old.iter().zip(&reference).map(|(o, f)| o - f).sum()
            }
            _ => 0.0,
        };
        kl_sum += kl;
        penalised.push(r - beta * kl);
    }
    let adv = loo_advantages(&penalised, raw, g, normalize);
    for (s, a) in got.main.experience.samples.iter_mut().zip(&adv.values) {
        s.advantage = *a;
    }
    got.main.adv = adv;
    got.reward_kl = Some(kl_sum / tokens.max(1) as f32);
}

#[cfg(test)]
mod tests;
