//! The experience a GRPO update trains on: each completion with its prompt, advantage and
//! mask, and — when the objective needs them — the old policy's and the reference model's
//! log-probs of its tokens, filled in by [`score`] before the update.

use crate::fused::FusedBackend;
use burn::prelude::*;

use super::batching;
use super::logprobs::{completion_logprobs, window, Layout, SeqRow};
use super::loss::StepCounts;
use super::rollout::Rollout;
use crate::error::Result;
use crate::fused::tensor::read_back;
use crate::model::CausalLm;

/// One sequence of experience.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index into [`Experience::prompts`].
    pub prompt: usize,
    pub completion: Vec<u32>,
    pub advantage: f32,
    /// `false` when the completion is masked out (a truncated completion under
    /// `mask_truncated_completions`).
    pub keep: bool,
    /// log π_old per completion token (when a rollout feeds more than one update:
    /// `num_iterations > 1` or several updates per generation).
    pub old_logps: Option<Vec<f32>>,
    /// log π_ref per completion token (β > 0).
    pub ref_logps: Option<Vec<f32>>,
}

/// What one update trains on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Experience {
    pub prompts: Vec<Vec<u32>>,
    pub samples: Vec<Sample>,
}

impl Experience {
    /// One sample per completion of `roll`, with its advantage; truncated completions are
    /// masked out when `mask_truncated`.
    pub fn from_rollout(roll: &Rollout, advantages: &[f32], mask_truncated: bool) -> Self {
        Self {
            prompts: roll.prompts.clone(),
            samples: roll
                .completions
                .iter()
                .zip(advantages)
                .map(|(c, &a)| Sample {
                    prompt: c.prompt_index,
                    completion: c.ids.clone(),
                    advantage: a,
                    keep: !(mask_truncated && c.truncated()),
                    old_logps: None,
                    ref_logps: None,
                })
                .collect(),
        }
    }

    /// Slice `k` of `n` (`steps_per_generation`): the samples whose index is `k` modulo `n`,
    /// so each slice mixes every prompt's completions.
    pub fn slice(&self, k: usize, n: usize) -> Self {
        Self {
            prompts: self.prompts.clone(),
            samples: self
                .samples
                .iter()
                .skip(k)
                .step_by(n.max(1))
                .cloned()
                .collect(),
        }
    }

    pub(crate) fn rows(&self, range: std::ops::Range<usize>) -> Vec<SeqRow<'_>> {
        self.rows_at(&range.collect::<Vec<_>>())
    }

    /// The samples at `indices`, as rows to score.
    pub(crate) fn rows_at(&self, indices: &[usize]) -> Vec<SeqRow<'_>> {
        indices
            .iter()
            .map(|&i| &self.samples[i])
            .map(|s| SeqRow {
                prompt: &self.prompts[s.prompt],
                completion: &s.completion,
            })
            .collect()
    }

    /// Completion tokens of the samples the loss counts (`keep`).
    pub fn active_tokens(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.keep)
            .map(|s| s.completion.len())
            .sum()
    }

    /// The counts of a step over all samples split into micro-batches of `micro_batch`, whose
    /// completions had a budget of `max_completion_length` tokens.
    pub fn counts(&self, micro_batch: usize, max_completion_length: usize) -> StepCounts {
        StepCounts {
            sequences: self.samples.len(),
            tokens: self.active_tokens() as f64,
            micro_batches: self.samples.len().div_ceil(micro_batch.max(1)),
            max_completion_length,
        }
    }
}

/// Log-probs of every sample's completion tokens under `model` at the sampling `temperature`
/// (no gradient), `micro_batch` rows at a time (of similar lengths when `group_by_length`, see
/// `batching`; packed when `layout` says so): the old policy's or the reference model's. In
/// sample order.
pub fn sample_logprobs<B: FusedBackend>(
    model: &CausalLm<B>,
    exp: &Experience,
    micro_batch: usize,
    group_by_length: bool,
    layout: Layout,
    temperature: f32,
    device: &B::Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = vec![Vec::new(); exp.samples.len()];
    for indices in batching::cut(exp, micro_batch, group_by_length) {
        let rows = exp.rows_at(&indices);
        let t = window(&rows);
        if t == 0 {
            continue;
        }
        let (lp, _) = completion_logprobs(model, &rows, temperature, false, layout, device);
        let lp = read_back(lp, "log-probs")?;
        for (r, (row, &i)) in rows.iter().zip(&indices).enumerate() {
            out[i] = lp[(r + 1) * t - row.completion.len()..(r + 1) * t].to_vec();
        }
    }
    Ok(out)
}

/// The models that score an experience before its update; either may be absent.
pub struct Scorers<'a, B: Backend> {
    /// π_old: the policy that sampled the rollout (`num_iterations > 1`).
    pub old: Option<&'a CausalLm<B>>,
    /// π_ref: the frozen reference (β > 0).
    pub reference: Option<&'a CausalLm<B>>,
    /// The sampling temperature: both score `log_softmax(logits / T)`.
    pub temperature: f32,
}

/// Fill in each sample's old and reference log-probs, `micro_batch` rows at a time (grouped by
/// length when `group_by_length`, laid out as `layout`).
pub fn score<B: FusedBackend>(
    exp: &mut Experience,
    scorers: &Scorers<'_, B>,
    micro_batch: usize,
    group_by_length: bool,
    layout: Layout,
    device: &B::Device,
) -> Result<()> {
    let of = |model: Option<&CausalLm<B>>| {
        let lps = |m| {
            sample_logprobs(
                m,
                exp,
                micro_batch,
                group_by_length,
                layout,
                scorers.temperature,
                device,
            )
        };
        model.map(lps).transpose()
    };
    let (old, reference) = (of(scorers.old)?, of(scorers.reference)?);
    if let Some(lps) = old {
        for (s, lp) in exp.samples.iter_mut().zip(lps) {
            s.old_logps = Some(lp);
        }
    }
    if let Some(lps) = reference {
        for (s, lp) in exp.samples.iter_mut().zip(lps) {
            s.ref_logps = Some(lp);
        }
    }
    Ok(())
}
