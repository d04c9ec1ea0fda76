//! Supervised fine-tuning (the STaR baselines and warm starts): the negative log-likelihood of
//! the completion tokens given the prompt (TRL's `completion_only_loss`), normalised by the
//! step's total completion tokens, so gradient accumulation equals one big batch.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::logprobs::{completion_logprobs, completion_mask, window, Layout, SeqRow};
use super::optim::{clip_coefficient, global_grad_norm, step_scaled, PolicyOptimizer};
use crate::error::{Error, Result};
use crate::model::CausalLm;

/// `−Σ mask·logp / tokens`: the mean NLL of a step's completion tokens (this micro-batch's
/// share when the step has several).
pub fn sft_loss<B: FusedBackend>(
    logps: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    tokens: usize,
) -> Tensor<B, 1> {
    (logps * mask).sum().neg() / tokens.max(1) as f32
}

/// A tokenized prompt/completion pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftExample {
    pub prompt: Vec<u32>,
    pub completion: Vec<u32>,
}

/// What an SFT step measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SftStats {
    /// Mean NLL per completion token.
    pub loss: f32,
    pub grad_norm: f32,
    pub tokens: usize,
    pub applied: bool,
}

/// How [`sft_update`] runs its step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SftStep {
    /// Rows per forward/backward pass.
    pub micro_batch: usize,
    /// Padded, or packed (`padding_free`).
    pub layout: Layout,
    /// Global-norm clip (0 = off).
    pub max_grad_norm: f32,
    pub lr: f64,
}

/// One optimizer step on `batch`, `step.micro_batch` rows per forward/backward pass.
pub fn sft_update<B: FusedAutodiffBackend>(
    model: CausalLm<B>,
    optim: &mut PolicyOptimizer<B>,
    batch: &[&SftExample],
    step: &SftStep,
    device: &B::Device,
) -> Result<(CausalLm<B>, SftStats)> {
    let SftStep {
        micro_batch,
        layout,
        max_grad_norm,
        lr,
    } = *step;
    let tokens: usize = batch.iter().map(|e| e.completion.len()).sum();
    let mut accum = GradientsAccumulator::<CausalLm<B>>::new();
    let mut loss_sum = 0.0f32;
    for chunk in batch.chunks(micro_batch.max(1)) {
        let rows: Vec<SeqRow<'_>> = chunk
            .iter()
            .map(|e| SeqRow {
                prompt: &e.prompt,
                completion: &e.completion,
            })
            .collect();
        let t = window(&rows);
        if t == 0 {
            continue;
        }
        let keep = vec![true; rows.len()];
        let mask = Tensor::<B, 2>::from_data(
            TensorData::new(completion_mask(&rows, &keep, t), [rows.len(), t]),
            device,
        );
        let (logps, _) = completion_logprobs(&model, &rows, 1.0, false, layout, device);
        let loss = sft_loss(logps, mask, tokens);
        loss_sum += loss
            .clone()
            .detach()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| Error::Invalid(format!("reading the loss back: {e:?}")))?[0];
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        accum.accumulate(&model, grads);
    }
    if tokens == 0 {
        return Ok((model, SftStats::default()));
    }
    let grads = accum.grads();
    let grad_norm = global_grad_norm(&model, &grads);
    let applied = loss_sum.is_finite() && grad_norm.is_finite();
    let model = if applied {
        step_scaled(
            optim,
            lr,
            model,
            grads,
            clip_coefficient(grad_norm, max_grad_norm),
        )
    } else {
        model
    };
    Ok((
        model,
        SftStats {
            loss: loss_sum,
            grad_norm,
            tokens,
            applied,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = crate::TestBackend;

    #[test]
    fn loss_by_hand() {
        let dev = Default::default();
        // two rows in a window of 3: row 0 has 2 completion tokens, row 1 has 3
        let logps = Tensor::<B, 2>::from_floats([[9.0, -1.0, -0.5], [-2.0, -0.25, -0.25]], &dev);
        let mask = Tensor::<B, 2>::from_floats([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]], &dev);
        // −(−1 − 0.5 − 2 − 0.25 − 0.25) / 5 = 0.8; the masked 9.0 does not count
        let l = sft_loss(logps.clone(), mask.clone(), 5).into_scalar();
        assert!((l - 0.8).abs() < 1e-6, "{l}");
        // as one micro-batch of a step with 10 tokens: half of it
        let l = sft_loss(logps, mask, 10).into_scalar();
        assert!((l - 0.4).abs() < 1e-6, "{l}");
    }
}
