//! GQA attention on host memory, one query head at a time: the scores `S = Q·Kᵀ/√hd` of a head
//! (a scratch buffer reused across heads, never a `[b, h, q, k]` tensor), the masked softmax row
//! by row with its log-sum-exp kept, then `O = P·V`. The forward pass takes the queries in blocks
//! of 64 and computes each block's scores only over the keys its rows can see (causal rows skip
//! the later keys, left-padded rows the padding, a decode step the cache's unfilled slots); the
//! backward pass
//! recomputes `P` from the log-sum-exp and takes the five products of the gradient. The products
//! run through the `gemm` crate (burn-flex's own GEMM) straight on the tensors' strided memory —
//! a transposed view costs no copy (`strided_matmul.rs`) — and batch rows run in parallel.
//!
//! Query head `hh` reads K/V head `hh / n_rep` (GQA); the K/V gradients of a group sum over its
//! query heads.

use rayon::prelude::*;

use super::kernels::{exp, simd_dispatch, View};
use super::strided_matmul::{matmul, Mat};

/// The sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnDims {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    pub k_len: usize,
    pub head_dim: usize,
}

impl AttnDims {
    pub fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// One attention call's inputs.
///
/// # Shapes
/// - `q`: `[b, heads, q_len, hd]`; `k`, `v`: `[b, kv_heads, k_len, hd]`; `mask`:
///   `[b, 1, q_len, k_len]`, non-zero = masked (any non-negative strides; a size-1 axis may
///   broadcast with stride 0).
#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    pub q: View<'a, f32>,
    pub k: View<'a, f32>,
    pub v: View<'a, f32>,
    pub mask: View<'a, u8>,
    pub dims: AttnDims,
}

impl Attention<'_> {
    /// Head `h` of batch row `bi` of `t` as a `[len, hd]` matrix.
    fn head<'b>(&self, t: &View<'b, f32>, bi: usize, h: usize, len: usize) -> Mat<'b> {
        Mat {
            data: t.data,
            offset: t.offset + bi * t.strides[0] + h * t.strides[1],
            rows: len,
            cols: self.dims.head_dim,
            rs: t.strides[2],
            cs: t.strides[3],
        }
    }

    fn n_rep(&self) -> usize {
        self.dims.heads / self.dims.kv_heads
    }

    /// `scale · Q_h·Kᵀ` of query head `hh` of batch row `bi` into `s` (`[q_len, k_len]`).
    #[inline(always)]
    fn scores(&self, bi: usize, hh: usize, s: &mut [f32]) {
        let d = self.dims;
        let q = self.head(&self.q, bi, hh, d.q_len);
        let k = self.head(&self.k, bi, hh / self.n_rep(), d.k_len);
        matmul(s, (0, d.k_len, 1), q, k.t(), d.scale(), false);
    }

    /// The mask of batch row `bi` as contiguous `[q_len, k_len]` bytes (non-zero = masked),
    /// read once for all heads.
    fn mask_rows(&self, bi: usize) -> Vec<u8> {
        let (q_len, k_len) = (self.dims.q_len, self.dims.k_len);
        let mut m = vec![0u8; q_len * k_len];
        for (i, row) in m.chunks_exact_mut(k_len.max(1)).enumerate().take(q_len) {
            self.mask.row(bi, 0, i, row);
        }
        m
    }
}

/// Scaled dot-product attention with GQA and a boolean mask.
///
/// Returns the output laid out as `[b, q_len, heads, hd]` (the layout `o_proj` reads) and each
/// row's log-sum-exp `[b, heads, q_len]` (−∞ for a row with every key masked, whose output is 0).
pub fn attention_forward(a: &Attention) -> (Vec<f32>, Vec<f32>) {
    let d = a.dims;
    let (hd, h) = (d.head_dim, d.heads);
    let mut out = vec![0.0f32; d.batch * d.q_len * h * hd];
    let mut lse = vec![0.0f32; d.batch * h * d.q_len];
    if out.is_empty() {
        return (out, lse);
    }
    out.par_chunks_mut(d.q_len * h * hd)
        .zip(lse.par_chunks_mut(h * d.q_len))
        .enumerate()
        .for_each(|(bi, (out_b, lse_b))| forward_batch(a, bi, out_b, lse_b));
    (out, lse)
}

simd_dispatch! {
    /// [`attention_forward`] of batch row `bi` into `out_b` (`[q_len, heads, hd]`) and `lse_b`
    /// (`[heads, q_len]`).
    fn forward_batch(a: &Attention, bi: usize, out_b: &mut [f32], lse_b: &mut [f32]) = forward_batch_impl;
}

#[inline(always)]
fn forward_batch_impl(a: &Attention, bi: usize, out_b: &mut [f32], lse_b: &mut [f32]) {
    let d = a.dims;
    let (hd, h) = (d.head_dim, d.heads);
    let mask = a.mask_rows(bi);
    let bq = Q_BLOCK.min(d.q_len.max(1));
    let mut s = vec![0.0f32; bq * d.k_len];
    for i0 in (0..d.q_len).step_by(bq) {
        let i1 = (i0 + bq).min(d.q_len);
        // the keys any query of the block sees: causal rows skip the keys after the block's
        // last query, left-padded rows the keys before their first token
        let (lo, hi) = key_span(&mask[i0 * d.k_len..i1 * d.k_len], d.k_len);
        let (rows, w) = (i1 - i0, hi - lo);
        if w == 0 {
            for hh in 0..h {
                lse_b[hh * d.q_len + i0..hh * d.q_len + i1].fill(f32::NEG_INFINITY);
            }
            continue; // every key masked: the output rows stay 0
        }
        let s = &mut s[..rows * w];
        for hh in 0..h {
            let q = a.head(&a.q, bi, hh, d.q_len).rows(i0, rows);
            let k = a.head(&a.k, bi, hh / a.n_rep(), d.k_len).rows(lo, w);
            matmul(s, (0, w, 1), q, k.t(), d.scale(), false);
            for (r, row) in s.chunks_exact_mut(w).enumerate() {
                let i = i0 + r;
                let m = &mask[i * d.k_len + lo..i * d.k_len + hi];
                lse_b[hh * d.q_len + i] = softmax_row(row, m);
            }
            let p = Mat::dense(s, rows, w);
            let v = a.head(&a.v, bi, hh / a.n_rep(), d.k_len).rows(lo, w);
            matmul(out_b, (i0 * h * hd + hh * hd, h * hd, 1), p, v, 1.0, false);
        }
    }
}

/// Queries per block of the forward pass: each block computes scores only against the keys its
/// queries can see (see [`key_span`]).
const Q_BLOCK: usize = 64;

/// The smallest range `lo..hi` of keys that holds every unmasked key of the mask rows `mask`
/// (`rows × k_len` bytes, non-zero = masked); `0..0` when all are masked.
pub(super) fn key_span(mask: &[u8], k_len: usize) -> (usize, usize) {
    let seen = |row: &[u8]| {
        Some((
            row.iter().position(|&m| m == 0)?,
            row.iter().rposition(|&m| m == 0)? + 1,
        ))
    };
    let spans = mask.chunks_exact(k_len.max(1)).filter_map(seen);
    spans
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .unwrap_or((0, 0))
}

/// The row's softmax in place over its unmasked entries (`mask[j] != 0`: masked, becomes 0),
/// returning its log-sum-exp (−∞, and a row of zeros, when every entry is masked). Eight
/// lanes at a time, without branches, so that it vectorizes.
#[inline(always)]
fn softmax_row(row: &mut [f32], mask: &[u8]) -> f32 {
    const NEG: f32 = f32::NEG_INFINITY;
    let mut acc = [NEG; 8];
    let masked = |x: &mut f32, m: u8, a: &mut f32| {
        *x = if m != 0 { NEG } else { *x };
        *a = if *x > *a { *x } else { *a };
    };
    let mut rc = row.chunks_exact_mut(8);
    let mut mc = mask.chunks_exact(8);
    for (r, m) in (&mut rc).zip(&mut mc) {
        for l in 0..8 {
            masked(&mut r[l], m[l], &mut acc[l]);
        }
    }
    for (x, &m) in rc.into_remainder().iter_mut().zip(mc.remainder()) {
        masked(x, m, &mut acc[0]);
    }
    let max = acc.iter().fold(NEG, |a, &b| if b > a { b } else { a });
    if max == NEG {
        row.fill(0.0);
        return NEG;
    }
    let mut sum = [0.0f32; 8];
    let mut rc = row.chunks_exact_mut(8);
    for r in &mut rc {
        for l in 0..8 {
            r[l] = exp(r[l] - max); // exp(−∞) = 0 for the masked entries
            sum[l] += r[l];
        }
    }
    for x in rc.into_remainder() {
        *x = exp(*x - max);
        sum[0] += *x;
    }
    let sum: f32 = sum.iter().sum();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|x| *x *= inv);
    max + sum.ln()
}

/// `P = exp(S − lse)` of one row in place, masked entries (and every entry of a fully masked
/// row, `lse = −∞`) 0.
#[inline(always)]
fn probs_row(row: &mut [f32], mask: &[u8], lse: f32) {
    if lse == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    for (x, &m) in row.iter_mut().zip(mask) {
        let p = exp(*x - lse);
        *x = if m != 0 { 0.0 } else { p };
    }
}

/// The gradients of [`attention_forward`] with respect to `q`, `k` and `v`, from the forward
/// pass's output `out` and log-sum-exp `lse` (`[b, heads, q_len]`, contiguous) and the output's
/// gradient `dout` (both `[b, heads, q_len, hd]`, any strides).
///
/// Returns `dq` laid out as `[b, q_len, heads, hd]`, `dk` and `dv` as `[b, k_len, kv_heads,
/// hd]` (the projections' layouts, so that moving the heads back costs nothing).
pub fn attention_backward(
    a: &Attention,
    out: View<f32>,
    lse: &[f32],
    dout: View<f32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = a.dims;
    let (hd, h, kvh) = (d.head_dim, d.heads, d.kv_heads);
    let grad = Grad { out, lse, dout };
    let mut dq = vec![0.0f32; d.batch * d.q_len * h * hd];
    let mut dk = vec![0.0f32; d.batch * d.k_len * kvh * hd];
    let mut dv = vec![0.0f32; d.batch * d.k_len * kvh * hd];
    if dq.is_empty() || dk.is_empty() {
        return (dq, dk, dv);
    }
    dq.par_chunks_mut(d.q_len * h * hd)
        .zip(dk.par_chunks_mut(d.k_len * kvh * hd))
        .zip(dv.par_chunks_mut(d.k_len * kvh * hd))
        .enumerate()
        .for_each(|(bi, ((dq_b, dk_b), dv_b))| {
            backward_batch(a, &grad, bi, [dq_b, dk_b, dv_b]);
        });
    (dq, dk, dv)
}

/// What the backward pass reads besides the inputs: the forward output, its log-sum-exp and the
/// output's gradient.
#[derive(Clone, Copy)]
struct Grad<'a> {
    out: View<'a, f32>,
    lse: &'a [f32],
    dout: View<'a, f32>,
}

simd_dispatch! {
    /// [`attention_backward`] of batch row `bi` into its chunks of `dq`, `dk`, `dv`.
    fn backward_batch(a: &Attention, g: &Grad, bi: usize, dqkv: [&mut [f32]; 3]) = backward_batch_impl;
}

#[inline(always)]
fn backward_batch_impl(a: &Attention, gr: &Grad, bi: usize, [dq_b, dk_b, dv_b]: [&mut [f32]; 3]) {
    let d = a.dims;
    let (hd, h, kvh) = (d.head_dim, d.heads, d.kv_heads);
    let (out, lse, dout) = (gr.out, gr.lse, gr.dout);
    let (mut p, mut ds) = (vec![0.0; d.q_len * d.k_len], vec![0.0; d.q_len * d.k_len]);
    let (mut o_row, mut do_row) = (vec![0.0; hd], vec![0.0; hd]);
    let mask = a.mask_rows(bi);
    for hh in 0..h {
        let g = hh / a.n_rep();
        let (q, k, v) = (
            a.head(&a.q, bi, hh, d.q_len),
            a.head(&a.k, bi, g, d.k_len),
            a.head(&a.v, bi, g, d.k_len),
        );
        let d_out = a.head(&dout, bi, hh, d.q_len);
        // P = exp(S − lse), masked entries 0
        a.scores(bi, hh, &mut p);
        for (i, row) in p.chunks_exact_mut(d.k_len).enumerate() {
            let l = lse[(bi * h + hh) * d.q_len + i];
            probs_row(row, &mask[i * d.k_len..(i + 1) * d.k_len], l);
        }
        // dV_g += Pᵀ·dO_h;  dP = dO_h·V_gᵀ
        matmul(
            dv_b,
            (g * hd, kvh * hd, 1),
            Mat::dense(&p, d.q_len, d.k_len).t(),
            d_out,
            1.0,
            true,
        );
        matmul(&mut ds, (0, d.k_len, 1), d_out, v.t(), 1.0, false);
        // dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale
        for (i, (ds_row, p_row)) in ds
            .chunks_exact_mut(d.k_len)
            .zip(p.chunks_exact(d.k_len))
            .enumerate()
        {
            out.row(bi, hh, i, &mut o_row);
            dout.row(bi, hh, i, &mut do_row);
            let delta: f32 = o_row.iter().zip(&do_row).map(|(x, y)| x * y).sum();
            for (x, &pj) in ds_row.iter_mut().zip(p_row) {
                *x = pj * (*x - delta) * d.scale();
            }
        }
        // dQ_h = dS·K_g;  dK_g += dSᵀ·Q_h
        matmul(
            dq_b,
            (hh * hd, h * hd, 1),
            Mat::dense(&ds, d.q_len, d.k_len),
            k,
            1.0,
            false,
        );
        matmul(
            dk_b,
            (g * hd, kvh * hd, 1),
            Mat::dense(&ds, d.q_len, d.k_len).t(),
            q,
            1.0,
            true,
        );
    }
}
