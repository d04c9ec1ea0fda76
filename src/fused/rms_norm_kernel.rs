//! RMSNorm's host kernels: `y = x / √(mean(x²) + ε) · w` over the rows of `x` in one pass, and
//! its backward pass in one pass over the rows (plus the weight's gradient summed over them),
//! parallel over rows.

use rayon::prelude::*;

use super::kernels::{simd_dispatch, sum_squares_f32};

/// Rows per parallel task.
const ROWS: usize = 32;

/// `x` `[n, h]` normalised per row and scaled by `w` `[h]`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let h = w.len();
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(ROWS * h)
        .zip(x.par_chunks(ROWS * h))
        .for_each(|(y, x)| {
            for (y, x) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
                forward_row(y, x, w, eps);
            }
        });
    y
}

simd_dispatch! {
    fn forward_row(y: &mut [f32], x: &[f32], w: &[f32], eps: f32) = forward_row_impl;
}

#[inline(always)]
fn forward_row_impl(y: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    let rms = rms(x, eps);
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
        *y = x / rms * w;
    }
}

/// `√(mean(x²) + ε)` of a row.
#[inline(always)]
fn rms(x: &[f32], eps: f32) -> f32 {
    (sum_squares_f32(x) / x.len() as f32 + eps).sqrt()
}

/// The gradients of [`rms_norm`] from the output's gradient `dy`: `(dx, dw)`, with
/// `x̂ = x / rms`, `g = dy·w`: `dx = (g − x̂ · mean(g·x̂)) / rms`, `dw = Σ_rows dy·x̂`.
pub fn rms_norm_backward(x: &[f32], w: &[f32], dy: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let h = w.len();
    let mut dx = vec![0.0f32; x.len()];
    let dw = dx
        .par_chunks_mut(ROWS * h)
        .zip(x.par_chunks(ROWS * h).zip(dy.par_chunks(ROWS * h)))
        .map(|(dx, (x, dy))| {
            let mut dw = vec![0.0f32; h];
            for ((dx, x), dy) in dx
                .chunks_exact_mut(h)
                .zip(x.chunks_exact(h))
                .zip(dy.chunks_exact(h))
            {
                backward_row(dx, &mut dw, x, w, dy, eps);
            }
            dw
        })
        .reduce(
            || vec![0.0f32; h],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        );
    (dx, dw)
}

simd_dispatch! {
    fn backward_row(dx: &mut [f32], dw: &mut [f32], x: &[f32], w: &[f32], dy: &[f32], eps: f32) = backward_row_impl;
}

#[inline(always)]
fn backward_row_impl(dx: &mut [f32], dw: &mut [f32], x: &[f32], w: &[f32], dy: &[f32], eps: f32) {
    let rms = rms(x, eps);
    let mut dot = 0.0f32; // Σ g·x̂
    for ((&x, &w), &dy) in x.iter().zip(w).zip(dy) {
        dot += dy * w * (x / rms);
    }
    let mean = dot / x.len() as f32;
    for ((((dx, dw), &x), &w), &dy) in dx.iter_mut().zip(dw.iter_mut()).zip(x).zip(w).zip(dy) {
        let xn = x / rms;
        *dx = (dy * w - xn * mean) / rms;
        *dw += dy * xn;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x = [3, 4], w = [1, 2], ε = 0: rms = √12.5; y = [3/rms, 8/rms]. With dy = [1, 0]:
    /// g = [1, 0], x̂ = x/rms, mean(g·x̂) = 3/(2·rms), dx = (g − x̂·3/(2 rms)) / rms,
    /// dw = [3/rms, 0].
    #[test]
    fn a_row_by_hand() {
        let r = 12.5f32.sqrt();
        let y = rms_norm(&[3.0, 4.0], &[1.0, 2.0], 0.0);
        assert!(
            (y[0] - 3.0 / r).abs() < 1e-6 && (y[1] - 8.0 / r).abs() < 1e-6,
            "{y:?}"
        );
        let (dx, dw) = rms_norm_backward(&[3.0, 4.0], &[1.0, 2.0], &[1.0, 0.0], 0.0);
        let m = 3.0 / (2.0 * r);
        let want = [(1.0 - 3.0 / r * m) / r, (0.0 - 4.0 / r * m) / r];
        assert!(
            (dx[0] - want[0]).abs() < 1e-6 && (dx[1] - want[1]).abs() < 1e-6,
            "{dx:?}"
        );
        assert!((dw[0] - 3.0 / r).abs() < 1e-6 && dw[1] == 0.0, "{dw:?}");
    }
}
