//! Log-probs of completion tokens, laid out for the loss: a micro-batch of `prompt + completion`
//! rows is left-padded and run through the model once; only the last `t` positions (the
//! longest completion) go through the LM head, so the prompt costs no vocabulary projection.
//!
//! Completions are right-aligned in the `[n, t]` window (left padding puts every row's last
//! token in the last column): row `r`'s completion occupies its last `len_r` columns.

use crate::fused::FusedBackend;
use burn::prelude::*;
use burn::tensor::DType;

use crate::batch::PaddedBatch;
use crate::model::{ModelInput, Qwen2ForCausalLM};

/// One sequence to score: a prompt and the completion sampled for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeqRow<'a> {
    pub prompt: &'a [u32],
    pub completion: &'a [u32],
}

/// Width of the window of `rows`: their longest completion.
pub fn window(rows: &[SeqRow<'_>]) -> usize {
    rows.iter().map(|r| r.completion.len()).max().unwrap_or(0)
}

/// `[n, t]` row-major: `1.0` on row `r`'s completion columns when `keep[r]`, else `0.0`.
pub fn completion_mask(rows: &[SeqRow<'_>], keep: &[bool], t: usize) -> Vec<f32> {
    let mut mask = vec![0.0; rows.len() * t];
    for (r, (row, &k)) in rows.iter().zip(keep).enumerate() {
        if k {
            let len = row.completion.len();
            mask[r * t + t - len..(r + 1) * t].fill(1.0);
        }
    }
    mask
}

/// Host values (`[len_r]` per row) laid out in the `[n, t]` window, zeros elsewhere.
pub fn right_aligned(values: &[&[f32]], t: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len() * t];
    for (r, v) in values.iter().enumerate() {
        out[(r + 1) * t - v.len()..(r + 1) * t].copy_from_slice(v);
    }
    out
}

/// Log-probs of each completion token under the sampling distribution at `temperature`
/// (`log_softmax(logits / T)`, as TRL computes the policy, old and reference log-probs), and,
/// when `with_entropy`, the entropy of that distribution at each position (detached), in f32.
///
/// # Shapes
/// - returns `([n, t], Option<[n, t]>)` with `t` = [`window`]`(rows)`; entries left of a row's
///   completion are meaningless (mask them).
pub fn completion_logprobs<B: FusedBackend>(
    model: &Qwen2ForCausalLM<B>,
    rows: &[SeqRow<'_>],
    temperature: f32,
    with_entropy: bool,
    device: &B::Device,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let t = window(rows);
    let input = rows_input::<B>(rows, device);
    let s = input.input_ids.dims()[1];
    let hidden = model.model.forward(&input); // [n, s, d]
                                              // position j predicts token j + 1: the window predicts tokens s − t .. s
    let hidden = hidden.narrow(1, s - 1 - t, t); // [n, t, d]
    let logits = at_least_f32(model.logits(hidden)); // [n, t, V]
    let logits = if temperature == 1.0 {
        logits
    } else {
        logits / temperature
    };
    let targets = input.input_ids.narrow(1, s - t, t); // [n, t]
    let out = crate::fused::token_logprobs(logits, targets, with_entropy);
    (out.logprobs, out.entropy)
}

/// The rows as one left-padded batch of `prompt + completion` sequences.
pub(crate) fn rows_input<B: FusedBackend>(
    rows: &[SeqRow<'_>],
    device: &B::Device,
) -> ModelInput<B> {
    let seqs: Vec<Vec<u32>> = rows
        .iter()
        .map(|r| [r.prompt, r.completion].concat())
        .collect();
    PaddedBatch::left_padded(&seqs, 0).to_input(device)
}

/// Half-precision logits in f32 (the loss is computed in f32 or wider; f64 stays f64).
pub(crate) fn at_least_f32<B: FusedBackend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    match t.dtype() {
        DType::F16 | DType::BF16 => t.cast(DType::F32),
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Qwen2Config;
    use crate::score::score_rows;

    type B = crate::TestBackend;

    #[test]
    fn window_matches_full_sequence_scores() {
        let dev = Default::default();
        let config = Qwen2Config::new(50, 32, 64, 2, 4, 2, true);
        let model = Qwen2ForCausalLM::<B>::random(&config, &dev);
        let (p1, c1, p2, c2) = (vec![3, 4, 5], vec![6, 7], vec![8], vec![9, 10, 11, 12]);
        let rows = [
            SeqRow {
                prompt: &p1,
                completion: &c1,
            },
            SeqRow {
                prompt: &p2,
                completion: &c2,
            },
        ];
        let (lp, h) = completion_logprobs(&model, &rows, 1.0, true, &dev);
        let lp: Vec<f32> = lp.into_data().to_vec().unwrap();
        let seqs = [[&p1[..], &c1].concat(), [&p2[..], &c2].concat()];
        let full = score_rows(&model, &seqs, 1, &dev).unwrap();
        // row 0: completion = last 2 of its 4 log-probs, in the last 2 of 4 columns
        for (got, want) in lp[2..4].iter().zip(&full[0][2..]) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        for (got, want) in lp[4..8].iter().zip(&full[1][..]) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        let h: Vec<f32> = h.unwrap().into_data().to_vec().unwrap();
        assert!(h.iter().all(|x| *x >= 0.0 && *x <= 50f32.ln() + 1e-5));
        let mask = completion_mask(&rows, &[true, false], 4);
        assert_eq!(mask, vec![0., 0., 1., 1., 0., 0., 0., 0.]);
        assert_eq!(
            right_aligned(&[&[1.0], &[2.0, 3.0]], 3),
            vec![0., 0., 1., 0., 2., 3.]
        );
    }
}
