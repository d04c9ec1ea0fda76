//! Log-probs of completion tokens, laid out for the loss: a micro-batch of `prompt + completion`
//! rows is left-padded and run through the model once; only the last `t` positions (the
//! longest completion) go through the LM head, so the prompt costs no vocabulary projection.
//!
//! Completions are right-aligned in the `[n, t]` window (left padding puts every row's last
//! token in the last column): row `r`'s completion occupies its last `len_r` columns.

use crate::fused::FusedBackend;
use burn::prelude::*;
use burn::tensor::DType;

use crate::model::batch::PaddedBatch;
use crate::model::packed::{repeated_prefixes, PackedRows};
use crate::model::{CausalLm, ModelInput};

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

/// How [`completion_logprobs`] lays out a micro-batch for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One left-padded `[n, longest]` batch: every layer computes the padding too.
    Padded,
    /// The rows' tokens back to back (`padding_free`, `crate::model::packed`): only
    /// attention sees the padded layout.
    Packed,
}

impl Layout {
    /// `padding_free` → `Packed`.
    pub fn padding_free(on: bool) -> Self {
        if on {
            Layout::Packed
        } else {
            Layout::Padded
        }
    }
}

/// Log-probs of each completion token under the sampling distribution at `temperature`
/// (`log_softmax(logits / T)`, as TRL computes the policy, old and reference log-probs), and,
/// when `with_entropy`, the entropy of that distribution at each position (detached), in f32.
/// Both layouts give the same numbers up to float summation order.
///
/// # Shapes
/// - returns `([n, t], Option<[n, t]>)` with `t` = [`window`]`(rows)`; entries left of a row's
///   completion are meaningless (mask them).
pub fn completion_logprobs<B: FusedBackend>(
    model: &CausalLm<B>,
    rows: &[SeqRow<'_>],
    temperature: f32,
    with_entropy: bool,
    layout: Layout,
    device: &B::Device,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let t = window(rows);
    let (hidden, targets) = match layout {
        // rows of one length with distinct prompts have no padding to remove, nothing to share
        Layout::Packed if t > 0 && (!same_length(rows) || shares_prompts(rows)) => {
            packed_window(model, rows, t, device)
        }
        _ => padded_window(model, rows, t, device),
    };
    let logits = at_least_f32(model.logits(hidden)); // [n, t, V]
    let logits = if temperature == 1.0 {
        logits
    } else {
        logits / temperature
    };
    let out = crate::fused::token_logprobs(logits, targets, with_entropy);
    (out.logprobs, out.entropy)
}

/// Whether every row's `prompt + completion` has the same length.
fn same_length(rows: &[SeqRow<'_>]) -> bool {
    let len = |r: &SeqRow<'_>| r.prompt.len() + r.completion.len();
    rows.windows(2).all(|w| len(&w[0]) == len(&w[1]))
}

/// Whether two rows have the same (non-empty) prompt: a GRPO group's completions.
fn shares_prompts(rows: &[SeqRow<'_>]) -> bool {
    repeated_prefixes(rows.iter().map(|r| r.prompt))
        .next()
        .is_some()
}

/// The hidden states that predict the window's tokens, `[n, t, d]`, and those tokens `[n, t]`,
/// from one left-padded forward pass.
fn padded_window<B: FusedBackend>(
    model: &CausalLm<B>,
    rows: &[SeqRow<'_>],
    t: usize,
    device: &B::Device,
) -> (Tensor<B, 3>, Tensor<B, 2, Int>) {
    let input = rows_input::<B>(rows, device);
    let s = input.input_ids.dims()[1];
    // [n, s, d]; position j predicts token j + 1, so the window predicts tokens s − t .. s
    let hidden = model.model.forward(&input);
    let hidden = hidden.narrow(1, s - 1 - t, t); // [n, t, d]
    (hidden, input.input_ids.narrow(1, s - t, t))
}

/// [`padded_window`] from one packed forward pass, rows with the same prompt sharing its
/// tokens ([`PackedRows::sharing_prefixes`]): the window's hidden states are gathered from the
/// `N` distinct tokens (a column left of a row's completion takes token 0's, and its target is
/// id 0; the caller masks it).
fn packed_window<B: FusedBackend>(
    model: &CausalLm<B>,
    rows: &[SeqRow<'_>],
    t: usize,
    device: &B::Device,
) -> (Tensor<B, 3>, Tensor<B, 2, Int>) {
    let split: Vec<(&[u32], &[u32])> = rows.iter().map(|r| (r.prompt, r.completion)).collect();
    let packed = PackedRows::sharing_prefixes(&split);
    let n = rows.len();
    let mut at = vec![0i64; n * t];
    let mut targets = vec![0i64; n * t];
    for (r, row) in rows.iter().enumerate() {
        let (p, c) = (row.prompt.len(), row.completion.len());
        for k in 0..c {
            // completion token k is row token p + k, predicted one position earlier
            let col = r * t + t - c + k;
            at[col] = (p + k).checked_sub(1).map_or(0, |j| packed.token(r, j)) as i64;
            targets[col] = row.completion[k] as i64;
        }
    }
    let hidden = model.model.forward_packed(&packed.to_input(device)); // [1, N, d]
    let [_, tokens, d] = hidden.dims();
    let at = Tensor::<B, 1, Int>::from_data(TensorData::new(at, [n * t]), device);
    let hidden = hidden.reshape([tokens, d]).select(0, at).reshape([n, t, d]);
    let targets = Tensor::from_data(TensorData::new(targets, [n, t]), device);
    (hidden, targets)
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
    use crate::model::ModelConfig;
    use crate::score::score_rows;
    use burn::tensor::backend::AutodiffBackend;

    type B = crate::TestBackend;

    #[test]
    fn window_matches_full_sequence_scores() {
        let dev = Default::default();
        let config = ModelConfig::new(50, 32, 64, 2, 4, 2, true);
        let model = CausalLm::<B>::random(&config, &dev);
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
        let (lp, h) = completion_logprobs(&model, &rows, 1.0, true, Layout::Padded, &dev);
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

    /// Every float parameter's gradient of `Σ w · logp` over the completion tokens, in module
    /// order, and the masked log-probs and entropies, from one layout.
    fn packed_run<AB: crate::fused::FusedAutodiffBackend>(
        model: &CausalLm<AB>,
        rows: &[SeqRow<'_>],
        layout: Layout,
    ) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
        use burn::module::{ModuleVisitor, Param};
        let dev = Default::default();
        let t = window(rows);
        let mask = completion_mask(rows, &vec![true; rows.len()], t);
        let (lp, h) = completion_logprobs(model, rows, 0.7, true, layout, &dev);
        let w: Vec<f32> = (0..mask.len())
            .map(|i| mask[i] * (1.0 + (i % 5) as f32 * 0.3))
            .collect();
        let w = Tensor::<AB, 2>::from_data(TensorData::new(w, [rows.len(), t]), &dev);
        let grads = (lp.clone() * w).sum().backward();
        let pick = |v: Vec<f32>| -> Vec<f32> {
            v.iter()
                .zip(&mask)
                .filter(|(_, m)| **m > 0.0)
                .map(|(x, _)| *x)
                .collect()
        };
        let lp = pick(lp.into_data().to_vec().unwrap());
        let h = pick(h.unwrap().into_data().to_vec().unwrap());
        struct Grads<'a, AB: AutodiffBackend>(&'a AB::Gradients, Vec<Vec<f32>>);
        impl<AB: AutodiffBackend> ModuleVisitor<AB> for Grads<'_, AB> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<AB, D>>) {
                let g = p
                    .val()
                    .grad(self.0)
                    .map(|g| g.into_data().to_vec().unwrap());
                self.1.push(g.unwrap_or_default());
            }
        }
        let mut visitor = Grads::<AB>(&grads, Vec::new());
        model.visit(&mut visitor);
        (lp, h, visitor.1)
    }

    /// Ragged rows, rows of different lengths that share prompts, and one prompt's group. (The
    /// second set once gave ndarray's padded run gradients ~3e-4 off: autodiff of RMSNorm's
    /// composition on ndarray, whose broadcast division's backward does not round as IEEE
    /// division; RMSNorm has its own kernel and backward now.)
    fn packed_equals_padded_on<AB: crate::fused::FusedAutodiffBackend>() {
        let dev = Default::default();
        // prompts of 1..7 tokens, completions of 0..5 (one empty), so the rows' lengths differ;
        // rows 4 and 5 repeat the prompts of rows 0 and 3 (shared, as a GRPO group's are)
        let prompts: [&[u32]; 6] = [
            &[3, 4, 5],
            &[8],
            &[1, 2, 3, 4, 5, 6, 7],
            &[9, 9],
            &[3, 4, 5],
            &[9, 9],
        ];
        let completions: [&[u32]; 6] = [
            &[6, 7],
            &[9, 10, 11, 12, 13],
            &[],
            &[14, 3, 2, 1],
            &[2, 2, 2],
            &[7],
        ];
        let rows = |n: usize| -> Vec<SeqRow<'_>> {
            prompts
                .iter()
                .zip(&completions)
                .take(n)
                .map(|(p, c)| SeqRow {
                    prompt: p,
                    completion: c,
                })
                .collect()
        };
        // a GRPO group: one prompt, completions of one length (the rows' lengths are equal)
        let group: Vec<SeqRow<'_>> = [[6u32, 7, 8], [1, 1, 1], [8, 7, 6]]
            .iter()
            .map(|c| SeqRow {
                prompt: prompts[2],
                completion: c,
            })
            .collect();
        assert!(!same_length(&rows(4)) && !shares_prompts(&rows(4)));
        assert!(shares_prompts(&rows(6)) && same_length(&group) && shares_prompts(&group));
        for (rows, tokens) in [(rows(4), 11), (group, 9), (rows(6), 15)] {
            for (heads, kv_heads) in [(4, 4), (4, 2), (4, 1), (7, 1)] {
                // head_dim 4; GQA ratios 1, 2, 4 and 7; a tied and an untied head
                let config = ModelConfig::new(50, 4 * heads, 40, 2, heads, kv_heads, heads == 4);
                let model = CausalLm::<AB>::random(&config, &dev);
                let (lp_a, h_a, g_a) = packed_run(&model, &rows, Layout::Padded);
                let (lp_b, h_b, g_b) = packed_run(&model, &rows, Layout::Packed);
                assert_eq!(lp_a.len(), tokens);
                let close = |a: &[f32], b: &[f32], tol: f32, what: &str| {
                    assert_eq!(a.len(), b.len(), "{what}");
                    for (x, y) in a.iter().zip(b) {
                        assert!(
                            (x - y).abs() <= tol * (1.0 + x.abs()),
                            "{what} ({heads}/{kv_heads}, {tokens}): {x} vs {y}"
                        );
                    }
                };
                close(&lp_a, &lp_b, 1e-5, "log-probs");
                close(&h_a, &h_b, 1e-5, "entropies");
                assert_eq!(g_a.len(), g_b.len());
                assert!(
                    g_a.iter().all(|g| !g.is_empty()),
                    "every parameter gets a gradient"
                );
                for (i, (a, b)) in g_a.iter().zip(&g_b).enumerate() {
                    close(a, b, 1e-4, &format!("gradient of parameter {i}"));
                }
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn packed_equals_padded_flex() {
        packed_equals_padded_on::<burn::backend::Autodiff<burn::backend::Flex<f32>>>();
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn packed_equals_padded_ndarray() {
        packed_equals_padded_on::<burn::backend::Autodiff<burn::backend::NdArray<f32>>>();
    }
}
