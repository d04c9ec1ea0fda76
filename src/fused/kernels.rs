//! The host kernels behind the CPU backends' fused operations: plain loops over slices of host
//! memory, parallel over rows with rayon. They know nothing of Burn: `flex.rs` and `ndarray.rs`
//! hand them their tensors' memory and wrap what comes back. Attention is in
//! `attention_kernel.rs`; here are the strided views, the vectorisable `exp`, RoPE and the
//! per-token log-probs.

use rayon::prelude::*;

/// Whether this CPU runs AVX2 and FMA (x86-64 builds target the baseline SSE2; the kernels'
/// loops are compiled a second time for AVX2 + FMA and chosen at run time).
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `fn $name(args) = $imp;` defines `$name`, which runs `$imp` (an `#[inline(always)]` function)
/// compiled for AVX2 + FMA when the CPU has them, and as compiled otherwise.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? = $imp:ident;) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($a: $t),*) $(-> $r)? {
                    $imp($($a),*)
                }
                if $crate::fused::kernels::avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            $imp($($a),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// A strided 4-d view of host memory: element `[i0, i1, i2, i3]` is at
/// `offset + Σ i·strides` (a broadcast dimension has stride 0).
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub strides: [usize; 4],
}

impl<'a, T: Copy> View<'a, T> {
    /// A contiguous row-major view of `data` with shape `dims`.
    pub fn contiguous(data: &'a [T], dims: [usize; 4]) -> Self {
        let strides = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1];
        Self {
            data,
            offset: 0,
            strides,
        }
    }

    /// The view with a stride of 0 along every axis of size 1 in `dims` (broadcast).
    pub fn broadcast(mut self, dims: [usize; 4]) -> Self {
        for (s, &n) in self.strides.iter_mut().zip(&dims) {
            if n == 1 {
                *s = 0;
            }
        }
        self
    }

    #[inline]
    fn index(&self, i: [usize; 4]) -> usize {
        self.offset
            + i[0] * self.strides[0]
            + i[1] * self.strides[1]
            + i[2] * self.strides[2]
            + i[3] * self.strides[3]
    }

    /// Copies the `out.len()` elements `[i0, i1, i2, 0..]` into `out`.
    #[inline]
    pub fn row(&self, i0: usize, i1: usize, i2: usize, out: &mut [T]) {
        let start = self.index([i0, i1, i2, 0]);
        if self.strides[3] == 1 {
            out.copy_from_slice(&self.data[start..start + out.len()]);
        } else {
            for (d, o) in out.iter_mut().enumerate() {
                *o = self.data[start + d * self.strides[3]];
            }
        }
    }
}

/// `eˣ` to within 2 ulp, subnormal results included (as libm's `expf`, so that a gradient
/// libm would make tiny but non-zero is not zero here): Cephes' polynomial after a reduction by
/// ln 2, written without branches or calls so that loops over slices vectorize (libm's `expf`
/// is a call per element).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let xc = x.clamp(-104.0, 88.0);
    let t = xc * LOG2E + ROUND;
    // eˣ = 2ⁿ·eʳ, |r| ≤ ln 2 / 2; n also as an integer from t's bits (t lies in [2²³, 2²⁴),
    // where one unit is one ulp): `n as i32` would be a scalar conversion per lane with the
    // cast's saturation checks
    let n = t - ROUND;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    // 2ⁿ below the normal range: 2ⁿ⁺²⁴ (normal), times 2⁻²⁴ after the product (subnormal)
    let tiny = ni < -125;
    let ni = if tiny { ni + 24 } else { ni };
    let e = p * f32::from_bits(((ni + 127) << 23) as u32);
    let e = if tiny { e * 5.960_464_5e-8 } else { e };
    if x < -103.972_08 {
        0.0
    } else {
        e
    }
}

/// `Σ x²` in f32, in eight lanes of partial sums (so that the loop vectorises), then the rest.
#[inline(always)]
pub(crate) fn sum_squares_f32(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut it = x.chunks_exact(8);
    for c in &mut it {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x * x;
        }
    }
    let rest: f32 = it.remainder().iter().map(|x| x * x).sum();
    lanes.iter().sum::<f32>() + rest
}

/// Rotate-half RoPE: `y = x·cos + rotate_half(x)·sin` with `rotate_half([x1, x2]) = [−x2, x1]`.
/// With `sin` negated it is its own backward (`cos`/`sin` repeat their halves).
///
/// # Shapes
/// - `x`: `[b, s, heads, hd]`; `cos`, `sin`: `[b, s, 1, hd]` (any strides)
/// - returns `y`, contiguous `[b, s, heads, hd]`
pub fn rope(x: View<f32>, cos: View<f32>, sin: View<f32>, dims: [usize; 4]) -> Vec<f32> {
    let [b, s, n, hd] = dims;
    let mut y = vec![0.0f32; b * s * n * hd];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(s * n * hd)
        .enumerate()
        .for_each(|(bi, y_b)| rope_batch(y_b, bi, [x, cos, sin], dims));
    y
}

simd_dispatch! {
    /// [`rope`] of batch row `bi` into `y_b` (`[s, heads, hd]`).
    fn rope_batch(y_b: &mut [f32], bi: usize, xcs: [View<f32>; 3], dims: [usize; 4]) = rope_batch_impl;
}

#[inline(always)]
fn rope_batch_impl(y_b: &mut [f32], bi: usize, [x, cos, sin]: [View<f32>; 3], dims: [usize; 4]) {
    let [_, s, n, hd] = dims;
    let half = hd / 2;
    let (mut c, mut sn, mut xr) = (vec![0.0; hd], vec![0.0; hd], vec![0.0; hd]);
    for t in 0..s {
        cos.row(bi, t, 0, &mut c);
        sin.row(bi, t, 0, &mut sn);
        for hh in 0..n {
            x.row(bi, t, hh, &mut xr);
            let yr = &mut y_b[(t * n + hh) * hd..(t * n + hh + 1) * hd];
            let (y1, y2) = yr.split_at_mut(half);
            for dd in 0..half {
                y1[dd] = xr[dd] * c[dd] - xr[dd + half] * sn[dd];
                y2[dd] = xr[dd + half] * c[dd + half] + xr[dd] * sn[dd + half];
            }
        }
    }
}

/// Per-token log-probs of a batch of logit rows: for each row of `logits` (`vocab` values) and
/// its target id, `log_softmax(row)[target]`, the row's log-sum-exp and the entropy of its
/// softmax, in two passes over the row (its max, then `Σ eᶻ` and `Σ eᶻ·z` with `z = x − max`).
///
/// Returns `(logprob, lse, entropy)`, one value per row.
pub fn token_logprobs(logits: &[f32], targets: &[usize], vocab: usize) -> [Vec<f32>; 3] {
    let n = targets.len();
    let (mut lp, mut lse, mut h) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    if n == 0 || vocab == 0 {
        return [lp, lse, h];
    }
    logits
        .par_chunks(vocab)
        .zip(targets.par_iter())
        .zip(
            lp.par_iter_mut()
                .zip(lse.par_iter_mut())
                .zip(h.par_iter_mut()),
        )
        .for_each(|((row, &t), ((lp, lse), h))| {
            [*lp, *lse, *h] = logprob_row(row, t);
        });
    [lp, lse, h]
}

simd_dispatch! {
    /// `[log-prob of target, log-sum-exp, entropy]` of one row of logits.
    fn logprob_row(row: &[f32], t: usize) -> [f32; 3] = logprob_row_impl;
}

#[inline(always)]
fn logprob_row_impl(row: &[f32], t: usize) -> [f32; 3] {
    let m = row_max(row);
    let (mut s, mut ez) = ([0.0f32; 8], [0.0f32; 8]);
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let z = c[l] - m;
            let e = exp(z);
            s[l] += e;
            ez[l] += e * z;
        }
    }
    let (mut s, mut ez) = (s.iter().sum::<f32>(), ez.iter().sum::<f32>());
    for &x in rest {
        let z = x - m;
        let e = exp(z);
        s += e;
        ez += e * z;
    }
    let log_s = s.ln();
    let lse = m + log_s;
    [row[t] - lse, lse, log_s - ez / s]
}

/// The largest value of `row` (−∞ for an empty row), eight lanes at a time.
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    rest.iter().fold(
        acc.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        |a, &b| a.max(b),
    )
}

/// The gradient of [`token_logprobs`]'s log-probs with respect to the logits:
/// `∂/∂x_j = g·(1[j = target] − softmax_j)`, with `softmax_j = exp(x_j − lse)`.
pub fn token_logprobs_backward(
    logits: &[f32],
    targets: &[usize],
    lse: &[f32],
    grad: &[f32],
    vocab: usize,
) -> Vec<f32> {
    let mut d = vec![0.0f32; logits.len()];
    if d.is_empty() {
        return d;
    }
    d.par_chunks_mut(vocab)
        .zip(logits.par_chunks(vocab))
        .zip(targets.par_iter().zip(lse.par_iter()).zip(grad.par_iter()))
        .for_each(|((d, row), ((&t, &l), &g))| logprob_grad_row(d, row, t, l, g));
    d
}

simd_dispatch! {
    /// One row of [`token_logprobs_backward`].
    fn logprob_grad_row(d: &mut [f32], row: &[f32], t: usize, lse: f32, g: f32) = logprob_grad_row_impl;
}

#[inline(always)]
fn logprob_grad_row_impl(d: &mut [f32], row: &[f32], t: usize, lse: f32, g: f32) {
    for (dj, &x) in d.iter_mut().zip(row) {
        *dj = -g * exp(x - lse);
    }
    d[t] += g;
}

/// SwiGLU's gate, `silu(g)·u` element-wise, over contiguous buffers.
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; gate.len()];
    y.par_chunks_mut(CHUNK)
        .zip(gate.par_chunks(CHUNK).zip(up.par_chunks(CHUNK)))
        .for_each(|(y, (g, u))| swiglu_chunk(y, g, u));
    y
}

/// Elements per parallel task of the element-wise kernels.
const CHUNK: usize = 1 << 14;

simd_dispatch! {
    fn swiglu_chunk(y: &mut [f32], g: &[f32], u: &[f32]) = swiglu_chunk_impl;
}

#[inline(always)]
fn swiglu_chunk_impl(y: &mut [f32], g: &[f32], u: &[f32]) {
    for ((y, &g), &u) in y.iter_mut().zip(g).zip(u) {
        *y = g / (1.0 + exp(-g)) * u;
    }
}

/// The gradients of [`swiglu`]: `(d_gate, d_up)` from the output's gradient `dy`.
pub fn swiglu_backward(gate: &[f32], up: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut dg, mut du) = (vec![0.0f32; gate.len()], vec![0.0f32; gate.len()]);
    dg.par_chunks_mut(CHUNK)
        .zip(du.par_chunks_mut(CHUNK))
        .zip(
            gate.par_chunks(CHUNK)
                .zip(up.par_chunks(CHUNK))
                .zip(dy.par_chunks(CHUNK)),
        )
        .for_each(|((dg, du), ((g, u), dy))| swiglu_grad_chunk([dg, du], g, u, dy));
    (dg, du)
}

simd_dispatch! {
    fn swiglu_grad_chunk(d: [&mut [f32]; 2], g: &[f32], u: &[f32], dy: &[f32]) = swiglu_grad_chunk_impl;
}

#[inline(always)]
fn swiglu_grad_chunk_impl([dg, du]: [&mut [f32]; 2], g: &[f32], u: &[f32], dy: &[f32]) {
    for (((dg, du), (&g, &u)), &dy) in dg
        .iter_mut()
        .zip(du.iter_mut())
        .zip(g.iter().zip(u))
        .zip(dy)
    {
        let sig = 1.0 / (1.0 + exp(-g));
        *du = dy * g * sig;
        *dg = dy * u * sig * (1.0 + g * (1.0 - sig));
    }
}
