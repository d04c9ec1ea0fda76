//! The optimizer's host kernels: one AdamW step over a parameter's values in a single parallel
//! pass (Burn's `AdamW` runs eight element-wise tensor operations, each a pass over the
//! parameter on one thread), and the sum of squares that the global gradient norm adds up.

use rayon::prelude::*;

use super::kernels::{simd_dispatch, sum_squares_f32};

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// The constants of one AdamW step, in the f32 values Burn's `AdamW` computes them as, so that
/// the kernel rounds as the composition does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// The learning rate.
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// `1 − lr·weight_decay` (1: no decay).
    pub decay: f32,
    /// The step's number, from 1 (the bias corrections' exponent).
    pub time: i32,
    /// The factor every gradient is multiplied by first (the global-norm clip; 1 = none).
    pub grad_scale: f32,
}

impl AdamWStep {
    /// `1 − β₁ᵗ`, `1 − β₂ᵗ`.
    pub fn bias_corrections(&self) -> (f32, f32) {
        (
            1.0 - self.beta1.powi(self.time),
            1.0 - self.beta2.powi(self.time),
        )
    }
}

/// One AdamW step in place: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p·decay − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)`, with `g` the gradient times
/// `grad_scale`; the slices have one length.
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamWStep) {
    let n = p.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "adamw: parameter, gradient and moments of {n}, {}, {} and {} values",
        g.len(),
        m.len(),
        v.len()
    );
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| adamw_chunk(p, g, m, v, s));
}

simd_dispatch! {
    fn adamw_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamWStep) = adamw_chunk_impl;
}

#[inline(always)]
fn adamw_chunk_impl(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: &AdamWStep) {
    let (b1, b2) = (s.beta1, s.beta2);
    let (f1, f2) = (1.0 - b1, 1.0 - b2);
    let (c1, c2) = s.bias_corrections();
    let scaled = s.grad_scale != 1.0;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if scaled { g * s.grad_scale } else { g };
        *m = *m * b1 + g * f1;
        *v = *v * b2 + g * g * f2;
        let delta = (*m / c1) / ((*v / c2).sqrt() + s.epsilon);
        *p = *p * s.decay - delta * s.lr;
    }
}

/// `Σ xᵢ²`, accumulated in f64 per chunk.
pub fn sum_squares(x: &[f32]) -> f64 {
    x.par_chunks(CHUNK).map(sum_squares_chunk).sum()
}

simd_dispatch! {
    fn sum_squares_chunk(x: &[f32]) -> f64 = sum_squares_chunk_impl;
}

#[inline(always)]
fn sum_squares_chunk_impl(x: &[f32]) -> f64 {
    // f32 partial sums of 256 elements, added up in f64
    x.chunks(256).map(|b| sum_squares_f32(b) as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step by hand (β₁ 0.5, β₂ 0.75, ε 0, lr 0.1, decay 0.9, t 1, scale 2) from zero moments:
    /// g = 2·1 = 2, m = 0.5·2 = 1, v = 0.25·4 = 1, m̂ = 1/0.5 = 2, v̂ = 1/0.25 = 4,
    /// p = 3·0.9 − 0.1·2/2 = 2.6.
    #[test]
    fn a_step_by_hand() {
        let s = AdamWStep {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.75,
            epsilon: 0.0,
            decay: 0.9,
            time: 1,
            grad_scale: 2.0,
        };
        let (mut p, mut m, mut v) = (vec![3.0f32], vec![0.0f32], vec![0.0f32]);
        adamw(&mut p, &[1.0], &mut m, &mut v, &s);
        assert_eq!((m[0], v[0]), (1.0, 1.0));
        assert!((p[0] - 2.6).abs() < 1e-6, "{}", p[0]);
    }

    #[test]
    fn sum_of_squares_over_chunks_and_remainders() {
        let x: Vec<f32> = (0..(2 * CHUNK + 37))
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        let by_hand: f64 = x.iter().map(|&x| (x as f64) * (x as f64)).sum();
        assert_eq!(sum_squares(&x), by_hand);
        assert_eq!(sum_squares(&[]), 0.0);
    }
}
