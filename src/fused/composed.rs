//! The fused operations composed of ordinary Burn tensor operations: what every backend without
//! a kernel of its own runs (wgpu, CUDA, LibTorch, and any dtype a kernel does not take), what
//! autodiff differentiates there, and the reference the kernels are tested against.

use burn::prelude::*;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::adamw_kernel::AdamWStep;

/// Scaled dot-product attention with GQA through Burn's `attention` op (flash attention where
/// the backend has one): each K/V head serves `n_rep = heads / kv_heads` consecutive query
/// heads (transformers' `repeat_kv`). Instead of copying K and V `n_rep` times, the query heads
/// of a group are folded into the query-length axis (`[b, kvh, n_rep · q_len, hd]`) and the
/// mask is tiled to match: the same numbers, no K/V copies, fewer and larger matmuls.
///
/// # Shapes
/// - `q`: `[batch, heads, q_len, head_dim]`; `k`, `v`: `[batch, kv_heads, k_len, head_dim]`
/// - `mask`: `[batch, 1, q_len, k_len]`, `true` = masked. Every query row must keep at least
///   one key (masked scores are −∞; a fully masked row gives NaN here).
/// - returns `[batch, heads, q_len, head_dim]`
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    let [b, h, q_len, hd] = q.dims();
    let kvh = k.dims()[1];
    let (q, mask) = fold_groups(q, mask, kvh);
    let mut mask = mask;
    if bool_mask_is_inverted::<B>(&q.device()) {
        mask = mask.bool_not();
    }
    // scale defaults to 1/sqrt(head_dim)
    burn_attention(q, k, v, Some(mask), None, AttentionModuleOptions::default()) // [b, kvh, rows, hd]
        .reshape([b, h, q_len, hd])
}

/// The query heads of each K/V group folded into the query axis, and the mask tiled to match:
/// `[b, h, q, hd]` → `[b, kvh, n_rep·q, hd]`, `[b, 1, q, k]` → `[b, kvh, n_rep·q, k]`.
fn fold_groups<B: Backend>(
    q: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
    kvh: usize,
) -> (Tensor<B, 4>, Tensor<B, 4, Bool>) {
    let [b, h, q_len, hd] = q.dims();
    let k_len = mask.dims()[3];
    let n_rep = h / kvh;
    let rows = n_rep * q_len;
    let q = q.reshape([b, kvh, rows, hd]);
    let mask = if n_rep == 1 || q_len == 1 {
        mask // rows = q_len, or one query whose mask row broadcasts over its n_rep heads
    } else {
        mask.unsqueeze_dim::<5>(2)
            .expand([b, 1, n_rep, q_len, k_len])
            .reshape([b, 1, rows, k_len])
    };
    (q, mask.expand([b, kvh, rows, k_len]))
}

/// The attention probabilities' logits `q·kᵀ/√hd` with masked keys at −∞, in the folded
/// layout `[b, kvh, n_rep·q, k]`.
fn masked_scores<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    let hd = q.dims()[3];
    let kvh = k.dims()[1];
    let (q, mask) = fold_groups(q, mask, kvh);
    let s = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt();
    s.mask_fill(mask, f32::NEG_INFINITY)
}

/// [`attention`] and each query row's log-sum-exp of its scaled scores, `[b, heads, q_len]`
/// (what the backward pass needs to recompute the probabilities), from one set of scores.
pub fn attention_lse<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let [b, h, q_len, hd] = q.dims();
    let s = masked_scores(q, k, mask); // [b, kvh, rows, k]
    let max = s.clone().max_dim(3); // [b, kvh, rows, 1]
    let lse = (s.clone() - max.clone()).exp().sum_dim(3).log() + max;
    let out = (s - lse.clone()).exp().matmul(v); // softmax · V, [b, kvh, rows, hd]
    (out.reshape([b, h, q_len, hd]), lse.reshape([b, h, q_len]))
}

/// The gradients of [`attention`] with respect to `q`, `k` and `v`, given the forward pass's
/// output `out`, its log-sum-exp `lse` and the output's gradient `dout`:
/// `P = exp(S − lse)`, `dV = Pᵀ·dO`, `dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O))`, `dQ = dS·K/√hd`,
/// `dK = dSᵀ·Q/√hd`, with each group's query heads summed into their K/V head.
pub fn attention_backward<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
    out: Tensor<B, 4>,
    lse: Tensor<B, 3>,
    dout: Tensor<B, 4>,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let [b, h, q_len, hd] = q.dims();
    let kvh = k.dims()[1];
    let rows = h / kvh * q_len;
    let scale = 1.0 / (hd as f64).sqrt();
    let s = masked_scores(q.clone(), k.clone(), mask);
    let lse = lse.reshape([b, kvh, rows, 1]);
    let p = (s - lse).exp(); // [b, kvh, rows, k]
    let dout = dout.reshape([b, kvh, rows, hd]);
    let delta = (dout.clone() * out.reshape([b, kvh, rows, hd])).sum_dim(3); // [b, kvh, rows, 1]
    let dv = p.clone().swap_dims(2, 3).matmul(dout.clone());
    let dp = dout.matmul(v.swap_dims(2, 3));
    let ds = p * (dp - delta) * scale;
    let dq = ds.clone().matmul(k).reshape([b, h, q_len, hd]);
    let dk = ds.swap_dims(2, 3).matmul(q.reshape([b, kvh, rows, hd]));
    (dq, dk, dv)
}

/// A linear layer on rows: `x·weight + bias` (Burn's `Linear::forward` on a 2-d input).
pub fn linear<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    let y = x.matmul(weight);
    match bias {
        Some(bias) => y + bias.unsqueeze(),
        None => y,
    }
}

/// Rotate-half RoPE: `x·cos + rotate_half(x)·sin`, `rotate_half([x1, x2]) = [−x2, x1]`.
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`; `cos`, `sin`: `[batch, seq, 1, head_dim]`
pub fn rope<B: Backend>(x: Tensor<B, 4>, cos: Tensor<B, 4>, sin: Tensor<B, 4>) -> Tensor<B, 4> {
    let hd = x.dims()[3];
    let x1 = x.clone().narrow(3, 0, hd / 2);
    let x2 = x.clone().narrow(3, hd / 2, hd / 2);
    x * cos + Tensor::cat(vec![x2.neg(), x1], 3) * sin
}

/// SwiGLU's gate: `silu(gate) · up`, `silu(x) = x·σ(x)`.
pub fn swiglu<B: Backend>(gate: Tensor<B, 3>, up: Tensor<B, 3>) -> Tensor<B, 3> {
    burn::tensor::activation::silu(gate) * up
}

/// The gradients of [`swiglu`] with respect to `gate` and `up` given the output's `dy`:
/// `d_up = dy·silu(gate)`, `d_gate = dy·up·σ(gate)·(1 + gate·(1 − σ(gate)))`.
pub fn swiglu_backward<B: Backend>(
    gate: Tensor<B, 3>,
    up: Tensor<B, 3>,
    dy: Tensor<B, 3>,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let sig = burn::tensor::activation::sigmoid(gate.clone());
    let silu = gate.clone() * sig.clone();
    let d_gate = dy.clone() * up * sig.clone() * ((gate * (sig.neg() + 1.0)) + 1.0);
    (d_gate, dy * silu)
}

/// The KV-cache write: `buf` with `new` at slots `offset..offset + s` of axis 2.
pub fn cache_write<B: Backend>(
    buf: Tensor<B, 4>,
    offset: usize,
    new: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, h, s, d] = new.dims();
    buf.slice_assign([0..b, 0..h, offset..offset + s, 0..d], new)
}

/// RMS normalisation of the rows of `x` `[n, h]`, scaled by `weight` `[h]`:
/// `x / √(mean(x²) + eps) · weight` (in `x`'s dtype; the model casts around it for others).
pub fn rms_norm<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, 2> {
    let rms = (x.clone().square().mean_dim(1) + eps).sqrt(); // [n, 1]
                                                             // A true division: ndarray's SIMD `recip` is an approximation (relative error ~5e-5)
                                                             // that moves log-probs by ~4e-4 on our fixtures.
    (x / rms) * weight.unsqueeze()
}

/// The gradients of [`rms_norm`] with respect to `x` and `weight` from the output's gradient
/// `dy`: with `x̂ = x / rms`, `g = dy·weight`, `dx = (g − x̂ · mean(g·x̂)) / rms` and
/// `dweight = Σ_rows dy·x̂`.
pub fn rms_norm_backward<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 1>,
    dy: Tensor<B, 2>,
    eps: f64,
) -> (Tensor<B, 2>, Tensor<B, 1>) {
    let h = weight.dims()[0];
    let rms = (x.clone().square().mean_dim(1) + eps).sqrt(); // [n, 1]
    let xn = x / rms.clone();
    let g = dy.clone() * weight.unsqueeze();
    let mean = (g.clone() * xn.clone()).mean_dim(1);
    let dx = (g - xn.clone() * mean) / rms;
    let dw = (dy * xn).sum_dim(0).reshape([h]);
    (dx, dw)
}

/// One AdamW step on a flattened parameter `p` with gradient `g` and moments `m`, `v` (zeros
/// before the first step), in the order of operations of Burn's `AdamW` (so that it rounds as
/// that does); returns the new `(p, m, v)`.
pub fn adamw<B: Backend>(
    p: Tensor<B, 1>,
    g: Tensor<B, 1>,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    s: &AdamWStep,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let g = if s.grad_scale == 1.0 {
        g
    } else {
        g.mul_scalar(s.grad_scale)
    };
    let m = m
        .mul_scalar(s.beta1)
        .add(g.clone().mul_scalar(1.0 - s.beta1));
    let v = v
        .mul_scalar(s.beta2)
        .add(g.square().mul_scalar(1.0 - s.beta2));
    let (c1, c2) = s.bias_corrections();
    let delta = m
        .clone()
        .div_scalar(c1)
        .div(v.clone().div_scalar(c2).sqrt().add_scalar(s.epsilon));
    let p = if s.decay == 1.0 {
        p
    } else {
        p.mul_scalar(s.decay)
    };
    (p - delta.mul_scalar(s.lr), m, v)
}

/// `Σ x²` as a one-element tensor.
pub fn sum_squares<B: Backend>(x: Tensor<B, 1>) -> Tensor<B, 1> {
    x.square().sum()
}

/// Per-token log-probs of a batch of logits, with what the backward pass and the metrics need.
#[derive(Debug, Clone)]
pub struct TokenLogprobs<B: Backend> {
    /// `log_softmax(logits)[target]`, `[n, t]`
    pub logprobs: Tensor<B, 2>,
    /// `log Σ exp(logits)` of each row, `[n, t]` (constant: no gradient flows through it)
    pub lse: Tensor<B, 2>,
    /// The entropy `−Σ p log p` of each row's softmax, `[n, t]` (constant), when asked for
    pub entropy: Option<Tensor<B, 2>>,
}

/// `log_softmax(logits)[target]` without materialising the log-softmax:
/// `logit[target] − (m + log Σ exp(logit − m))`, `m` the row max (detached; it cancels), and,
/// when `with_entropy`, `H = log Σ eᶻ − Σ eᶻ·z / Σ eᶻ` with `z = logit − m`.
///
/// # Shapes
/// - `logits`: `[n, t, vocab]`, `targets`: `[n, t]`
pub fn token_logprobs<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    with_entropy: bool,
) -> TokenLogprobs<B> {
    let [n, t, _] = logits.dims();
    let m = logits.clone().max_dim(2).detach(); // [n, t, 1]
    let z = logits.clone() - m.clone();
    let e = z.clone().exp();
    let sum = e.clone().sum_dim(2); // [n, t, 1]
    let entropy = with_entropy.then(|| {
        (sum.clone().log() - (e * z).sum_dim(2) / sum.clone())
            .reshape([n, t])
            .detach()
    });
    let lse = sum.log() + m; // [n, t, 1]
    let logprobs = logits.gather(2, targets.reshape([n, t, 1])) - lse.clone();
    TokenLogprobs {
        logprobs: logprobs.reshape([n, t]),
        lse: lse.reshape([n, t]).detach(),
        entropy,
    }
}

/// The gradient of [`token_logprobs`]'s log-probs with respect to the logits, given the
/// log-probs' gradient `grad` (`[n, t]`): `grad·(onehot(target) − exp(logits − lse))`.
pub fn token_logprobs_backward<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    lse: Tensor<B, 2>,
    grad: Tensor<B, 2>,
) -> Tensor<B, 3> {
    let [n, t, v] = logits.dims();
    let p = (logits.clone() - lse.reshape([n, t, 1])).exp();
    let ids = Tensor::<B, 1, Int>::arange(0..v as i64, &logits.device())
        .reshape([1, 1, v])
        .expand([n, t, v]);
    let onehot = targets
        .reshape([n, t, 1])
        .expand([n, t, v])
        .equal(ids)
        .float()
        .cast(logits.dtype());
    (onehot - p) * grad.reshape([n, t, 1])
}

/// Whether this backend's `attention` reads a boolean mask as "true = attend" instead of Burn's
/// documented "true = masked". burn-tch 0.21 hands the mask straight to PyTorch's
/// `scaled_dot_product_attention`, whose boolean masks mean the opposite (its log-probs were
/// off by 1.6 on our fixtures). A two-key probe, once per backend type, tells; when the backend
/// is fixed upstream the probe says so and nothing is inverted.
pub(crate) fn bool_mask_is_inverted<B: Backend>(device: &B::Device) -> bool {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<TypeId, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = TypeId::of::<B>();
    if let Some(&inverted) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&key).copied())
        .as_ref()
    {
        return inverted;
    }
    // One query, two keys with equal scores; values 0 and 1; key 1 masked → output 0.
    let zeros = Tensor::<B, 4>::zeros([1, 1, 2, 2], device);
    let q = Tensor::<B, 4>::zeros([1, 1, 1, 2], device);
    let v = Tensor::<B, 4>::from_data(
        TensorData::new(vec![0.0f32, 0.0, 1.0, 1.0], [1, 1, 2, 2]),
        device,
    );
    let mask =
        Tensor::<B, 4, Bool>::from_data(TensorData::new(vec![false, true], [1, 1, 1, 2]), device);
    let out = burn_attention(
        q,
        zeros,
        v,
        Some(mask),
        None,
        AttentionModuleOptions::default(),
    );
    let inverted = out
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map(|v| v[0] > 0.5)
        .unwrap_or(false);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, inverted);
    }
    inverted
}
