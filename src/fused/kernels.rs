//! The host kernels behind the CPU backends' fused operations: plain loops over slices of host
//! memory, parallel over the batch with rayon. They know nothing of Burn: `flex.rs` and
//! `ndarray.rs` hand them their tensors' memory and wrap what comes back.
//!
//! Attention works a query row at a time (the flash-attention recurrence without tiling: a
//! row's scores live in one `k_len` buffer, never a `[b, h, q, k]` tensor), reads the mask to
//! skip masked keys (a causal row computes only its own prefix), and keeps each row's
//! log-sum-exp so that the backward pass recomputes the probabilities instead of storing them.
//! GQA: query head `hh` reads K/V head `hh / n_rep`, whose rows are gathered once into a
//! contiguous buffer.

use rayon::prelude::*;

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

    #[inline]
    fn at(&self, i: [usize; 4]) -> T {
        self.data[self.index(i)]
    }

    /// Copies the `out.len()` elements `[i0, i1, i2, 0..]` into `out`.
    #[inline]
    fn row(&self, i0: usize, i1: usize, i2: usize, out: &mut [T]) {
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
    fn n_rep(&self) -> usize {
        self.heads / self.kv_heads
    }
    fn scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }
}

/// `Σ a_i b_i` with eight independent partial sums, which the compiler turns into SIMD.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += a·x`.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// K/V head `g` of batch row `bi` as a contiguous `[k_len, head_dim]` buffer.
fn gather_head(t: &View<f32>, bi: usize, g: usize, d: &AttnDims, buf: &mut [f32]) {
    for (j, row) in buf.chunks_exact_mut(d.head_dim).enumerate() {
        t.row(bi, g, j, row);
    }
}

/// The scores of one query row: the unmasked keys and their scaled dot products.
struct Row {
    keys: Vec<usize>,
    scores: Vec<f32>,
}

impl Row {
    fn new(k_len: usize) -> Self {
        Self {
            keys: Vec::with_capacity(k_len),
            scores: Vec::with_capacity(k_len),
        }
    }

    /// Fills the row for query `q_row` (row `i` of batch row `bi`) against the contiguous keys
    /// `kb`, skipping masked keys (mask `[b, 1, q, k]`, non-zero = masked); returns the max.
    fn fill(
        &mut self,
        q_row: &[f32],
        kb: &[f32],
        mask: &View<u8>,
        bi: usize,
        i: usize,
        d: &AttnDims,
    ) -> f32 {
        self.keys.clear();
        self.scores.clear();
        let mut max = f32::NEG_INFINITY;
        for j in 0..d.k_len {
            if mask.at([bi, 0, i, j]) == 0 {
                let x = dot(q_row, &kb[j * d.head_dim..(j + 1) * d.head_dim]) * d.scale();
                max = max.max(x);
                self.keys.push(j);
                self.scores.push(x);
            }
        }
        max
    }
}

/// One attention call's inputs.
///
/// # Shapes
/// - `q`: `[b, heads, q_len, hd]`; `k`, `v`: `[b, kv_heads, k_len, hd]`; `mask`:
///   `[b, 1, q_len, k_len]`, non-zero = masked (any strides).
#[derive(Clone, Copy, Debug)]
pub struct Attention<'a> {
    pub q: View<'a, f32>,
    pub k: View<'a, f32>,
    pub v: View<'a, f32>,
    pub mask: View<'a, u8>,
    pub dims: AttnDims,
}

/// Scaled dot-product attention with GQA and a boolean mask.
///
/// Returns the output laid out as `[b, q_len, heads, hd]` (the layout `o_proj` reads) and each
/// row's log-sum-exp `[b, heads, q_len]` (−∞ for a row with every key masked, whose output is 0).
pub fn attention_forward(a: &Attention) -> (Vec<f32>, Vec<f32>) {
    let (q, k, v, mask, d) = (a.q, a.k, a.v, a.mask, a.dims);
    let (hd, h) = (d.head_dim, d.heads);
    let mut out = vec![0.0f32; d.batch * d.q_len * h * hd];
    let mut lse = vec![0.0f32; d.batch * h * d.q_len];
    if out.is_empty() {
        return (out, lse);
    }
    out.par_chunks_mut(d.q_len * h * hd)
        .zip(lse.par_chunks_mut(h * d.q_len))
        .enumerate()
        .for_each(|(bi, (out_b, lse_b))| {
            let (mut kb, mut vb) = (vec![0.0; d.k_len * hd], vec![0.0; d.k_len * hd]);
            let mut q_row = vec![0.0; hd];
            let mut row = Row::new(d.k_len);
            for g in 0..d.kv_heads {
                gather_head(&k, bi, g, &d, &mut kb);
                gather_head(&v, bi, g, &d, &mut vb);
                for hh in g * d.n_rep()..(g + 1) * d.n_rep() {
                    for i in 0..d.q_len {
                        q.row(bi, hh, i, &mut q_row);
                        let max = row.fill(&q_row, &kb, &mask, bi, i, &d);
                        let o = &mut out_b[(i * h + hh) * hd..(i * h + hh + 1) * hd];
                        if row.keys.is_empty() {
                            lse_b[hh * d.q_len + i] = f32::NEG_INFINITY;
                            continue;
                        }
                        let mut sum = 0.0f32;
                        for (&j, &x) in row.keys.iter().zip(&row.scores) {
                            let p = (x - max).exp();
                            sum += p;
                            axpy(p, &vb[j * hd..(j + 1) * hd], o);
                        }
                        let inv = 1.0 / sum;
                        o.iter_mut().for_each(|x| *x *= inv);
                        lse_b[hh * d.q_len + i] = max + sum.ln();
                    }
                }
            }
        });
    (out, lse)
}

/// The gradients of [`attention_forward`] with respect to `q`, `k` and `v`, from the forward
/// pass's output `out` and log-sum-exp `lse` (`[b, heads, q_len]`, contiguous) and the output's
/// gradient `dout` (both `[b, heads, q_len, hd]`, any strides).
///
/// # Shapes
/// - returns `dq` laid out as `[b, q_len, heads, hd]`, `dk` and `dv` as `[b, k_len, kv_heads,
///   hd]` (the projections' layouts, so that moving the heads back costs nothing).
pub fn attention_backward(
    a: &Attention,
    out: View<f32>,
    lse: &[f32],
    dout: View<f32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (q, k, v, mask, d) = (a.q, a.k, a.v, a.mask, a.dims);
    let (hd, h, kvh) = (d.head_dim, d.heads, d.kv_heads);
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
            let (mut kb, mut vb) = (vec![0.0; d.k_len * hd], vec![0.0; d.k_len * hd]);
            let (mut dkl, mut dvl) = (vec![0.0; d.k_len * hd], vec![0.0; d.k_len * hd]);
            let (mut q_row, mut do_row, mut o_row) = (vec![0.0; hd], vec![0.0; hd], vec![0.0; hd]);
            let mut row = Row::new(d.k_len);
            for g in 0..kvh {
                gather_head(&k, bi, g, &d, &mut kb);
                gather_head(&v, bi, g, &d, &mut vb);
                dkl.fill(0.0);
                dvl.fill(0.0);
                for hh in g * d.n_rep()..(g + 1) * d.n_rep() {
                    for i in 0..d.q_len {
                        let l = lse[(bi * h + hh) * d.q_len + i];
                        if l == f32::NEG_INFINITY {
                            continue; // every key masked: the output was a constant 0
                        }
                        q.row(bi, hh, i, &mut q_row);
                        dout.row(bi, hh, i, &mut do_row);
                        out.row(bi, hh, i, &mut o_row);
                        let delta = dot(&do_row, &o_row); // Σ_j p_j dp_j
                        row.fill(&q_row, &kb, &mask, bi, i, &d);
                        let dq_row = &mut dq_b[(i * h + hh) * hd..(i * h + hh + 1) * hd];
                        for (&j, &x) in row.keys.iter().zip(&row.scores) {
                            let p = (x - l).exp();
                            let (kj, vj) = (j * hd..(j + 1) * hd, j * hd..(j + 1) * hd);
                            axpy(p, &do_row, &mut dvl[vj.clone()]);
                            let ds = p * (dot(&do_row, &vb[vj]) - delta) * d.scale();
                            axpy(ds, &kb[kj.clone()], dq_row);
                            axpy(ds, &q_row, &mut dkl[kj]);
                        }
                    }
                }
                for j in 0..d.k_len {
                    let dst = (j * kvh + g) * hd..(j * kvh + g + 1) * hd;
                    dk_b[dst.clone()].copy_from_slice(&dkl[j * hd..(j + 1) * hd]);
                    dv_b[dst].copy_from_slice(&dvl[j * hd..(j + 1) * hd]);
                }
            }
        });
    (dq, dk, dv)
}

/// Rotate-half RoPE: `y = x·cos + rotate_half(x)·sin` with `rotate_half([x1, x2]) = [−x2, x1]`.
/// With `sin` negated it is its own backward (`cos`/`sin` repeat their halves).
///
/// # Shapes
/// - `x`: `[b, s, heads, hd]`; `cos`, `sin`: `[b, s, 1, hd]` (any strides)
/// - returns `y`, contiguous `[b, s, heads, hd]`
pub fn rope(x: View<f32>, cos: View<f32>, sin: View<f32>, dims: [usize; 4]) -> Vec<f32> {
    let [b, s, n, hd] = dims;
    let half = hd / 2;
    let mut y = vec![0.0f32; b * s * n * hd];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(s * n * hd)
        .enumerate()
        .for_each(|(bi, y_b)| {
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
        });
    y
}
