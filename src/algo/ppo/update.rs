//! One-round PPO (TRL's `PPOTrainer`) on an experience: the critic's values at rollout time
//! ([`sample_values`]), the per-token KL-penalised rewards, GAE and whitened advantages
//! ([`prepare`], over `gae.rs`), then one optimizer step per mini-batch ([`ppo_update`]):
//! micro-batches of the clipped policy and value losses (`loss.rs`), the gradients of both
//! models clipped together by their global norm (TRL clips the policy-and-value wrapper as one),
//! and each model stepped by its own AdamW.
//!
//! The rollout, its rewards and the old and reference log-probs are GRPO's (`rl::experience`);
//! PPO differs in how advantages are made (per token, from a critic) and in the loss.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::gae::{gae, token_rewards, whiten, KlEstimator};
use super::loss::{policy_loss, value_loss, POLICY_SUMS, VALUE_SUMS};
use crate::error::{Error, Result};
use crate::fused::tensor::read_back;
use crate::model::value::ValueModel;
use crate::model::CausalLm;
use crate::rl::experience::Experience;
use crate::rl::logprobs::SeqRow;
use crate::rl::logprobs::{
    at_least_f32, completion_logprobs, completion_mask, right_aligned, rows_input, window, Layout,
};
use crate::rl::optim::{
    clip_coefficient, global_grad_norm, step_scaled, PolicyOptimizer, ValueOptimizer,
};

/// PPO's settings (TRL's `PPOConfig` names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoConfig {
    pub kl_coef: f32,
    pub kl_estimator: KlEstimator,
    pub whiten_rewards: bool,
    pub gamma: f32,
    pub lam: f32,
    pub cliprange: f32,
    pub cliprange_value: f32,
    pub vf_coef: f32,
    /// Sequences per forward/backward pass.
    pub micro_batch: usize,
    /// Global-norm clip over the policy's and the critic's gradients together (0 = off).
    pub max_grad_norm: f32,
    /// The sampling temperature (the policy's log-probs are taken at it).
    pub temperature: f32,
    /// The policy's log-probs from packed rows (`padding_free`; the critic runs padded).
    pub padding_free: bool,
}

/// One completion with what PPO freezes at rollout time, per completion token.
#[derive(Debug, Clone, PartialEq)]
pub struct PpoSample {
    pub prompt: usize,
    pub completion: Vec<u32>,
    /// `false`: every token masked (a truncated completion under `mask_truncated_completions`).
    pub keep: bool,
    pub old_logps: Vec<f32>,
    pub old_values: Vec<f32>,
    /// Whitened GAE advantages.
    pub advantages: Vec<f32>,
    /// GAE returns (the value targets).
    pub returns: Vec<f32>,
}

/// TRL's `objective/*` of one rollout: per-sequence sums of the token terms, averaged over
/// the sequences.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Objective {
    /// `objective/kl`: the estimator's KL to the reference.
    pub kl: f32,
    /// `objective/entropy`: `Σ −log π_old` (the sampled tokens' surprisal).
    pub entropy: f32,
    /// `objective/non_score_reward`: `−kl_coef · KL`.
    pub non_score_reward: f32,
    /// `objective/scores`: the verifier's reward.
    pub scores: f32,
}

impl Objective {
    /// `objective/rlhf_reward`: the score plus the KL penalty.
    pub fn rlhf_reward(&self) -> f32 {
        self.scores + self.non_score_reward
    }
}

/// A rollout ready for PPO's epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct PpoBatch {
    pub prompts: Vec<Vec<u32>>,
    pub samples: Vec<PpoSample>,
    pub objective: Objective,
}

impl PpoBatch {
    fn rows(&self, indices: &[usize]) -> Vec<SeqRow<'_>> {
        indices
            .iter()
            .map(|&i| SeqRow {
                prompt: &self.prompts[self.samples[i].prompt],
                completion: &self.samples[i].completion,
            })
            .collect()
    }

    /// Active tokens of the samples at `indices`.
    pub fn tokens(&self, indices: &[usize]) -> usize {
        indices
            .iter()
            .map(|&i| &self.samples[i])
            .filter(|s| s.keep)
            .map(|s| s.completion.len())
            .sum()
    }
}

/// The critic's values of every sample's completion tokens (no gradient), `micro_batch` rows
/// at a time (see [`ValueModel::forward_window`]).
pub fn sample_values<B: FusedBackend>(
    critic: &ValueModel<B>,
    exp: &Experience,
    micro_batch: usize,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let n = exp.samples.len();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(micro_batch.max(1)) {
        let rows = exp.rows(start..(start + micro_batch.max(1)).min(n));
        let t = window(&rows);
        if t == 0 {
            out.extend(rows.iter().map(|_| Vec::new()));
            continue;
        }
        let v = read_back(window_values(critic, &rows, t, device), "values")?;
        for (r, row) in rows.iter().enumerate() {
            out.push(v[(r + 1) * t - row.completion.len()..(r + 1) * t].to_vec());
        }
    }
    Ok(out)
}

/// `[n, t]` values of the rows' completion tokens, right-aligned, in f32 (or wider).
fn window_values<B: FusedBackend>(
    critic: &ValueModel<B>,
    rows: &[SeqRow<'_>],
    t: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    at_least_f32(critic.forward_window(&rows_input(rows, device), t))
}

/// Per-token rewards (KL penalty, the score on each row's last token, whitened when
/// `whiten_rewards`), whitened GAE advantages and returns, all `[n, t]` row-major over `mask`.
pub(crate) fn advantages(
    logps: &[f32],
    refs: &[f32],
    values: &[f32],
    scores: &[f32],
    mask: &[f32],
    kl_coef: f32,
    cfg: &PpoConfig,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let t = mask.len() / scores.len().max(1);
    let mut rewards = token_rewards(logps, refs, scores, mask, kl_coef, cfg.kl_estimator);
    if cfg.whiten_rewards {
        rewards = whiten(&rewards, mask, false);
    }
    let (adv, ret) = gae(&rewards, values, mask, t, cfg.gamma, cfg.lam);
    let adv = whiten(&adv, mask, true);
    (rewards, adv, ret)
}

/// Rewards, GAE and whitened advantages for a scored experience (old log-probs filled in,
/// reference log-probs when `kl_coef > 0`), its verifier `scores` and the critic's `values`.
pub fn prepare(
    exp: &Experience,
    scores: &[f32],
    values: Vec<Vec<f32>>,
    cfg: &PpoConfig,
) -> Result<PpoBatch> {
    let n = exp.samples.len();
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(Error::Invalid(format!(
            "PPO needs a reward for every completion, and no reward scored completion {} of \
             this step (every reward program printed None for it): use GRPO or RLOO, which \
             leave such completions out, or give it a score",
            i + 1
        )));
    }
    let t = exp
        .samples
        .iter()
        .map(|s| s.completion.len())
        .max()
        .unwrap_or(0);
    // [n, t], each row's tokens from column 0 (GAE runs over each row's unmasked positions)
    let (mut logps, mut refs, mut vals, mut mask) = (
        vec![0.0f32; n * t],
        vec![0.0f32; n * t],
        vec![0.0f32; n * t],
        vec![0.0f32; n * t],
    );
    for (i, (s, v)) in exp.samples.iter().zip(&values).enumerate() {
        let len = s.completion.len();
        let old = s.old_logps.as_ref().ok_or_else(|| {
            Error::Invalid("PPO needs the old log-probs of every sample (score them first)".into())
        })?;
        let row = i * t..i * t + len;
        logps[row.clone()].copy_from_slice(old);
        refs[row.clone()].copy_from_slice(s.ref_logps.as_deref().unwrap_or(old));
        vals[row.clone()].copy_from_slice(v);
        mask[row].fill(if s.keep { 1.0 } else { 0.0 });
    }
    let kl_coef = if exp.samples.iter().all(|s| s.ref_logps.is_some()) {
        cfg.kl_coef
    } else {
        0.0
    };
    let (_, adv, ret) = advantages(&logps, &refs, &vals, scores, &mask, kl_coef, cfg);

    let mut objective = Objective::default();
    for i in 0..n {
        for k in (i * t..(i + 1) * t).filter(|&k| mask[k] > 0.0) {
            let kl = cfg.kl_estimator.kl(logps[k], refs[k]);
            objective.kl += kl;
            objective.non_score_reward -= kl_coef * kl;
            objective.entropy -= logps[k];
        }
    }
    objective.scores = scores.iter().sum();
    let per_seq = 1.0 / n.max(1) as f32;
    for x in [
        &mut objective.kl,
        &mut objective.entropy,
        &mut objective.non_score_reward,
        &mut objective.scores,
    ] {
        *x *= per_seq;
    }
    let samples = exp
        .samples
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (s, v))| {
            let row = i * t..i * t + s.completion.len();
            PpoSample {
                prompt: s.prompt,
                completion: s.completion.clone(),
                keep: s.keep,
                old_logps: logps[row.clone()].to_vec(),
                old_values: v,
                advantages: adv[row.clone()].to_vec(),
                returns: ret[row].to_vec(),
            }
        })
        .collect();
    Ok(PpoBatch {
        prompts: exp.prompts.clone(),
        samples,
        objective,
    })
}

/// Sums over the active tokens of one optimizer step's micro-batches.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PpoSums {
    pub policy_loss: f32,
    pub value_loss: f32,
    pub policy: [f32; POLICY_SUMS],
    pub value: [f32; VALUE_SUMS],
    /// Σ entropy of the policy's distribution.
    pub entropy: f32,
    pub tokens: f32,
}

impl PpoSums {
    /// Add `other` field by field.
    pub fn add(&mut self, o: &Self) {
        self.policy_loss += o.policy_loss;
        self.value_loss += o.value_loss;
        for (a, b) in self.policy.iter_mut().zip(o.policy) {
            *a += b;
        }
        for (a, b) in self.value.iter_mut().zip(o.value) {
            *a += b;
        }
        self.entropy += o.entropy;
        self.tokens += o.tokens;
    }
}

/// What one optimizer step measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PpoStepStats {
    pub sums: PpoSums,
    /// The global norm of both models' gradients before clipping.
    pub grad_norm: f32,
    /// `false` when the loss or the gradient norm was not finite and the step was skipped.
    pub applied: bool,
    pub forward_secs: f64,
    pub backward_secs: f64,
    pub optimizer_secs: f64,
}

/// The models PPO trains and their optimizers.
pub struct PpoModels<'a, B: FusedAutodiffBackend> {
    pub policy: CausalLm<B>,
    pub critic: ValueModel<B>,
    pub policy_optim: &'a mut PolicyOptimizer<B>,
    pub value_optim: &'a mut ValueOptimizer<B>,
}

/// One optimizer step of both models on the samples of `batch` at `indices` (a mini-batch),
/// `micro_batch` at a time, each micro-batch's losses normalised by the mini-batch's active
/// tokens; learning rates `lr` (policy) and `value_lr`.
pub fn ppo_update<B: FusedAutodiffBackend>(
    models: PpoModels<'_, B>,
    batch: &PpoBatch,
    indices: &[usize],
    cfg: &PpoConfig,
    (lr, value_lr): (f64, f64),
    device: &B::Device,
) -> Result<(CausalLm<B>, ValueModel<B>, PpoStepStats)> {
    let PpoModels {
        policy,
        critic,
        policy_optim,
        value_optim,
    } = models;
    let t0 = Instant::now();
    let tokens = batch.tokens(indices) as f32;
    let mut acc_p = GradientsAccumulator::<CausalLm<B>>::new();
    let mut acc_v = GradientsAccumulator::<ValueModel<B>>::new();
    let mut stats = PpoStepStats::default();
    let mut any = false;
    for chunk in indices.chunks(cfg.micro_batch.max(1)) {
        let tf = Instant::now();
        let rows = batch.rows(chunk);
        let t = window(&rows);
        if t == 0 {
            continue;
        }
        let samples: Vec<&PpoSample> = chunk.iter().map(|&i| &batch.samples[i]).collect();
        let m = chunk.len();
        let host = |v: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v, [m, t]), device);
        let field = |f: fn(&PpoSample) -> &[f32]| {
            let vs: Vec<&[f32]> = samples.iter().map(|s| f(s)).collect();
            host(right_aligned(&vs, t))
        };
        let keep: Vec<bool> = samples.iter().map(|s| s.keep).collect();
        let mask = host(completion_mask(&rows, &keep, t));
        let layout = Layout::padding_free(cfg.padding_free);
        let (logps, entropy) =
            completion_logprobs(&policy, &rows, cfg.temperature, true, layout, device);
        let vpred = window_values(&critic, &rows, t, device);
        let (pg, pg_sums) = policy_loss(
            logps,
            field(|s| &s.old_logps),
            field(|s| &s.advantages),
            mask.clone(),
            cfg.cliprange,
            tokens,
        );
        let (vf, vf_sums) = value_loss(
            vpred,
            field(|s| &s.old_values),
            field(|s| &s.returns),
            mask.clone(),
            cfg.cliprange_value,
            tokens,
        );
        let entropy =
            entropy.map_or_else(|| Tensor::zeros([1], device), |h| (h * mask.clone()).sum());
        let host_sums = read_back(
            Tensor::cat(
                vec![
                    pg.clone().detach(),
                    vf.clone().detach(),
                    pg_sums,
                    vf_sums,
                    entropy,
                    mask.sum(),
                ],
                0,
            ),
            "PPO loss metrics",
        )?;
        let (p, v) = (2, 2 + POLICY_SUMS);
        let mut s = PpoSums {
            policy_loss: host_sums[0],
            value_loss: host_sums[1],
            entropy: host_sums[v + VALUE_SUMS],
            tokens: host_sums[v + VALUE_SUMS + 1],
            ..Default::default()
        };
        s.policy.copy_from_slice(&host_sums[p..v]);
        s.value.copy_from_slice(&host_sums[v..v + VALUE_SUMS]);
        stats.sums.add(&s);
        stats.forward_secs += tf.elapsed().as_secs_f64();
        let mut grads = (pg + vf.mul_scalar(cfg.vf_coef)).backward();
        acc_p.accumulate(&policy, GradientsParams::from_module(&mut grads, &policy));
        acc_v.accumulate(&critic, GradientsParams::from_module(&mut grads, &critic));
        any = true;
    }
    stats.backward_secs = t0.elapsed().as_secs_f64() - stats.forward_secs;
    if !any {
        stats.applied = true;
        return Ok((policy, critic, stats));
    }
    let t1 = Instant::now();
    let (gp, gv) = (acc_p.grads(), acc_v.grads());
    let norm_p = global_grad_norm(&policy, &gp);
    let norm_v = global_grad_norm(&critic, &gv);
    let norm = (norm_p * norm_p + norm_v * norm_v).sqrt();
    let c = clip_coefficient(norm, cfg.max_grad_norm);
    let loss = stats.sums.policy_loss + cfg.vf_coef * stats.sums.value_loss;
    stats.grad_norm = norm;
    stats.applied = loss.is_finite() && norm.is_finite();
    let (policy, critic) = if stats.applied {
        (
            step_scaled(policy_optim, lr, policy, gp, c),
            step_scaled(value_optim, value_lr, critic, gv, c),
        )
    } else {
        (policy, critic)
    };
    stats.optimizer_secs = t1.elapsed().as_secs_f64();
    Ok((policy, critic, stats))
}

/// The order of an epoch's samples: a permutation of `0..n` drawn from `seed` (TRL shuffles
/// every epoch), cut into `mini_batches` nearly equal mini-batches.
pub fn mini_batches(n: usize, mini_batches: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let k = mini_batches.clamp(1, n.max(1));
    (0..k)
        .map(|j| order[j * n / k..(j + 1) * n / k].to_vec())
        .collect()
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
