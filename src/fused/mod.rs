//! Fused operations: a Burn backend extension (the pattern of Burn's custom-kernel examples).
//!
//! [`FusedBackend`] extends `burn::prelude::Backend` with the model's hot operations. Each has a
//! default implementation composed of ordinary Burn tensor operations (`composed.rs`: what
//! wgpu, CUDA and LibTorch run, and the reference the kernels are tested against); the CPU
//! backends override them with kernels that work on the tensors' host memory (`kernels.rs`,
//! `attention_kernel.rs`), implemented once in `host.rs` over what `flex.rs` and `ndarray.rs`
//! lend of their memory (`HostMemory`). Under autodiff (`autodiff.rs`) an operation with a
//! kernel gets its own backward pass (also a kernel); one without is differentiated through its
//! composition as before.
//!
//! Library code is generic over `B: FusedBackend` (and `B: FusedAutodiffBackend` where it
//! trains); the impls for the concrete backends (here, `flex.rs`, `ndarray.rs`) are the only
//! place in the library that names them.
//!
//! | operation | composed | kernel (flex, ndarray, f32) |
//! |---|---|---|
//! | [`attention`] (GQA, boolean mask) | Burn's `attention` on folded query heads | a query head at a time: `gemm` on the strided views, masked softmax rows, no `[b, h, q, k]` tensor; forward in blocks of 64 queries over the keys they can see (about half the causal square); backward from the saved log-sum-exp |
//! | [`rope`] (rotate-half) | two products, a `cat` and a sum | one pass; backward = the same kernel with `−sin` |
//! | [`swiglu`] (`silu(gate)·up`) | sigmoid, two products | one pass with a vectorised `exp`; backward in one pass |
//! | KV-cache write | `slice_assign` | flex: in place when the buffer is uniquely owned (burn-flex 0.21's `slice_assign` copies the whole buffer) |
//! | [`token_logprobs`] (log-softmax + gather, entropy) | max, exp, sum, log, gather | two passes per row with a vectorised `exp`, no `[n, t, vocab]` intermediate; backward in one pass |
//! | [`rms_norm`] (RMSNorm of rows) | square, mean, sqrt, a division, the weight's product | one pass per row; backward in one pass, the weight's gradient summed per 32 rows and then over them |
//! | [`FusedBackend::fused_adamw`] (one AdamW step; the clip's scale folded in) | Burn's `AdamW` arithmetic, eight tensor operations | one parallel pass, in place where the buffers are not shared |
//! | [`FusedBackend::fused_sum_squares`] (a term of the global gradient norm) | `square`, `sum` | one parallel pass, f64 partial sums |
//! | [`linear`] (`x·w + b`, ≤ 32 rows, ≤ 128 while decoding) | `matmul` (`gemm`, which packs both operands every call) + bias | flex only (ndarray would copy the weight): the weight streamed once per four rows into 4 × 16 AVX2 accumulators, row-major, or inside a [`decoding`] scope from a copy packed once into 16-column panels; no backward (training shapes keep `gemm`) |

pub(crate) mod adamw_kernel;
mod attention_kernel;
pub(crate) mod composed;
mod decoding;
pub(crate) mod kernels;
pub(crate) mod linear_kernel;
mod rms_norm_kernel;

mod autodiff;
#[cfg(feature = "flex")]
mod flex;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod host;
#[cfg(feature = "ndarray")]
mod ndarray;
mod strided_matmul;
pub(crate) mod tensor;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;

pub use adamw_kernel::AdamWStep;
pub use composed::TokenLogprobs;
pub use decoding::{decoding, on_pool, on_pool_if, packed_weights};

/// A Burn backend with the model's fused operations.
pub trait FusedBackend: Backend {
    /// Whether tensors live in host memory (the CPU backends): a model's weights and a run's
    /// estimate are then checked against the machine's memory before they are allocated.
    fn memory_is_host() -> bool {
        false
    }

    /// Whether [`Self::fused_attention`] runs a kernel of its own for float tensors of `dtype` (then
    /// autodiff uses [`Self::fused_attention_backward`] instead of differentiating the composition).
    fn has_attention_kernel(_dtype: DType) -> bool {
        false
    }

    /// Scaled dot-product attention with GQA (`heads` a multiple of `kv_heads`).
    ///
    /// # Shapes
    /// - `q`: `[b, heads, q_len, hd]`; `k`, `v`: `[b, kv_heads, k_len, hd]`
    /// - `mask`: `[b, 1, q_len, k_len]`, `true` = masked; every row keeps at least one key
    /// - returns `[b, heads, q_len, hd]`
    fn fused_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
    ) -> Tensor<Self, 4> {
        composed::attention(q, k, v, mask)
    }

    /// [`Self::fused_attention`] and each query row's log-sum-exp `[b, heads, q_len]` (for the
    /// backward pass).
    fn fused_attention_lse(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
    ) -> (Tensor<Self, 4>, Tensor<Self, 3>) {
        composed::attention_lse(q, k, v, mask)
    }

    /// The gradients of [`Self::fused_attention`] with respect to `q`, `k` and `v` from the forward
    /// pass's `out` and `lse` and the output's gradient `dout`.
    fn fused_attention_backward(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
        out: Tensor<Self, 4>,
        lse: Tensor<Self, 3>,
        dout: Tensor<Self, 4>,
    ) -> (Tensor<Self, 4>, Tensor<Self, 4>, Tensor<Self, 4>) {
        composed::attention_backward(q, k, v, mask, out, lse, dout)
    }

    /// `x·weight + bias`: a linear layer on rows (Burn's `[in, out]` weight). The backend
    /// flex runs a kernel of its own for up to `linear_kernel::MAX_ROWS` f32 rows (decoding), or
    /// `linear_kernel::MAX_PACKED_ROWS` inside a [`decoding`] scope; it has no backward pass of
    /// its own, so under autodiff this is the composition.
    ///
    /// # Shapes
    /// - `x`: `[m, in]`, `weight`: `[in, out]`, `bias`: `[out]` → `[m, out]`
    fn fused_linear(
        x: Tensor<Self, 2>,
        weight: Tensor<Self, 2>,
        bias: Option<Tensor<Self, 1>>,
    ) -> Tensor<Self, 2> {
        composed::linear(x, weight, bias)
    }

    /// Whether [`Self::fused_rope`] runs a kernel of its own for float tensors of `dtype`.
    fn has_rope_kernel(_dtype: DType) -> bool {
        false
    }

    /// Rotate-half RoPE, `x·cos + rotate_half(x)·sin`; its backward is the same operation with
    /// `sin` negated.
    ///
    /// # Shapes
    /// - `x`: `[b, seq, heads, hd]`; `cos`, `sin`: `[b, seq, 1, hd]` → `[b, seq, heads, hd]`
    fn fused_rope(
        x: Tensor<Self, 4>,
        cos: Tensor<Self, 4>,
        sin: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        composed::rope(x, cos, sin)
    }

    /// Whether [`Self::fused_swiglu`] runs a kernel of its own for `dtype` tensors.
    fn has_swiglu_kernel(_dtype: DType) -> bool {
        false
    }

    /// SwiGLU's gate `silu(gate) · up` (the MLP's element-wise part).
    ///
    /// # Shapes
    /// - `gate`, `up`: `[b, s, intermediate]` → the same
    fn fused_swiglu(gate: Tensor<Self, 3>, up: Tensor<Self, 3>) -> Tensor<Self, 3> {
        composed::swiglu(gate, up)
    }

    /// The gradients of [`Self::fused_swiglu`] with respect to `gate` and `up`.
    fn fused_swiglu_backward(
        gate: Tensor<Self, 3>,
        up: Tensor<Self, 3>,
        dy: Tensor<Self, 3>,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        composed::swiglu_backward(gate, up, dy)
    }

    /// `buf` with `new` written at slots `offset..offset + s` of axis 2 (the KV cache's write:
    /// `buf` `[b, kv_heads, capacity, hd]`, `new` `[b, kv_heads, s, hd]`). The default is
    /// `slice_assign`; a backend that can write into a uniquely owned buffer does so in place.
    fn fused_cache_write(
        buf: Tensor<Self, 4>,
        offset: usize,
        new: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        composed::cache_write(buf, offset, new)
    }

    /// Whether [`Self::fused_token_logprobs`] runs a kernel of its own for `dtype` logits.
    fn has_logprob_kernel(_dtype: DType) -> bool {
        false
    }

    /// `log_softmax(logits)[target]` per token, its log-sum-exp and (when `with_entropy`) the
    /// softmax's entropy; only the log-probs carry a gradient.
    ///
    /// # Shapes
    /// - `logits`: `[n, t, vocab]`, `targets`: `[n, t]` (ids below `vocab`) → `[n, t]` each
    fn fused_token_logprobs(
        logits: Tensor<Self, 3>,
        targets: Tensor<Self, 2, Int>,
        with_entropy: bool,
    ) -> TokenLogprobs<Self> {
        composed::token_logprobs(logits, targets, with_entropy)
    }

    /// The gradient of [`Self::fused_token_logprobs`]' log-probs with respect to the logits.
    fn fused_token_logprobs_backward(
        logits: Tensor<Self, 3>,
        targets: Tensor<Self, 2, Int>,
        lse: Tensor<Self, 2>,
        grad: Tensor<Self, 2>,
    ) -> Tensor<Self, 3> {
        composed::token_logprobs_backward(logits, targets, lse, grad)
    }

    /// Whether [`Self::fused_rms_norm`] runs a kernel of its own for `dtype` tensors.
    fn has_rms_norm_kernel(_dtype: DType) -> bool {
        false
    }

    /// RMSNorm of the rows of `x`, scaled by `weight`.
    ///
    /// # Shapes
    /// - `x`: `[n, h]`, `weight`: `[h]` → `[n, h]`
    fn fused_rms_norm(x: Tensor<Self, 2>, weight: Tensor<Self, 1>, eps: f64) -> Tensor<Self, 2> {
        composed::rms_norm(x, weight, eps)
    }

    /// The gradients of [`Self::fused_rms_norm`] with respect to `x` and `weight`.
    fn fused_rms_norm_backward(
        x: Tensor<Self, 2>,
        weight: Tensor<Self, 1>,
        dy: Tensor<Self, 2>,
        eps: f64,
    ) -> (Tensor<Self, 2>, Tensor<Self, 1>) {
        composed::rms_norm_backward(x, weight, dy, eps)
    }

    /// One AdamW step on a parameter flattened to `[n]`, with its gradient and moments `m`, `v`
    /// (zeros before the first step); returns the new `(param, m, v)`. The CPU backends update
    /// the buffers in place where nobody else holds them, in one parallel pass.
    fn fused_adamw(
        param: Tensor<Self, 1>,
        grad: Tensor<Self, 1>,
        m: Tensor<Self, 1>,
        v: Tensor<Self, 1>,
        step: &AdamWStep,
    ) -> (Tensor<Self, 1>, Tensor<Self, 1>, Tensor<Self, 1>) {
        composed::adamw(param, grad, m, v, step)
    }

    /// `Σ x²` of a tensor flattened to `[n]`, as a one-element tensor (the global gradient
    /// norm's terms).
    fn fused_sum_squares(x: Tensor<Self, 1>) -> Tensor<Self, 1> {
        composed::sum_squares(x)
    }
}

/// An autodiff backend whose inner backend has the fused operations too (what the trainer's
/// `valid()` models and the reference model run on).
/// What `Autodiff<B>` needs of `B` to run the fused operations: with the `nccl` feature, Burn
/// 0.21's autodiff backend also requires `B`'s distributed operations (which the CubeCL
/// backends have).
#[cfg(feature = "nccl")]
pub trait AutodiffInner:
    FusedBackend + burn::tensor::backend::distributed::DistributedBackend
{
}
#[cfg(feature = "nccl")]
impl<B: FusedBackend + burn::tensor::backend::distributed::DistributedBackend> AutodiffInner for B {}
/// What `Autodiff<B>` needs of `B` to run the fused operations.
#[cfg(not(feature = "nccl"))]
pub trait AutodiffInner: FusedBackend {}
#[cfg(not(feature = "nccl"))]
impl<B: FusedBackend> AutodiffInner for B {}

pub trait FusedAutodiffBackend: AutodiffBackend<InnerBackend: FusedBackend> + FusedBackend {}

impl<B> FusedAutodiffBackend for B where
    B: AutodiffBackend<InnerBackend: FusedBackend> + FusedBackend
{
}

/// [`FusedBackend::fused_attention`].
pub fn attention<B: FusedBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    B::fused_attention(q, k, v, mask)
}

/// [`FusedBackend::fused_linear`].
pub fn linear<B: FusedBackend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 2> {
    B::fused_linear(x, weight, bias)
}

/// [`FusedBackend::fused_token_logprobs`].
pub fn token_logprobs<B: FusedBackend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    with_entropy: bool,
) -> TokenLogprobs<B> {
    B::fused_token_logprobs(logits, targets, with_entropy)
}

/// [`FusedBackend::fused_swiglu`].
pub fn swiglu<B: FusedBackend>(gate: Tensor<B, 3>, up: Tensor<B, 3>) -> Tensor<B, 3> {
    B::fused_swiglu(gate, up)
}

/// [`FusedBackend::fused_rms_norm`].
pub fn rms_norm<B: FusedBackend>(x: Tensor<B, 2>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, 2> {
    B::fused_rms_norm(x, weight, eps)
}

/// [`FusedBackend::fused_rope`].
pub fn rope<B: FusedBackend>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
) -> Tensor<B, 4> {
    B::fused_rope(x, cos, sin)
}

/// The operations that have CPU kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]
pub enum Kernel {
    Attention,
    Rope,
    Swiglu,
    Logprobs,
    CacheWrite,
    Linear,
    Adamw,
    RmsNorm,
}

#[cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]
impl Kernel {
    const ALL: [Kernel; 8] = [
        Kernel::Attention,
        Kernel::Rope,
        Kernel::Swiglu,
        Kernel::Logprobs,
        Kernel::CacheWrite,
        Kernel::Linear,
        Kernel::Adamw,
        Kernel::RmsNorm,
    ];

    fn name(self) -> &'static str {
        match self {
            Kernel::Attention => "attention",
            Kernel::Rope => "rope",
            Kernel::Swiglu => "swiglu",
            Kernel::CacheWrite => "cache_write",
            Kernel::Logprobs => "logprobs",
            Kernel::Linear => "linear",
            Kernel::Adamw => "adamw",
            Kernel::RmsNorm => "rms_norm",
        }
    }
}

/// The kernels this process uses: all of them, or those named in `MGRPO_KERNELS`
/// (comma-separated: `attention`, `rope`, `swiglu`, `logprobs`, `cache_write`, `linear`, `adamw`
/// (the optimizer step and the gradient norm's sums of squares), `rms_norm`; `none` =
/// every operation composed, which is how the benchmarks measure the kernels against the
/// compositions in one build). An unknown name is reported once and ignored.
#[cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]
fn enabled() -> &'static [Kernel] {
    static ENABLED: std::sync::OnceLock<Vec<Kernel>> = std::sync::OnceLock::new();
    ENABLED.get_or_init(|| match std::env::var("MGRPO_KERNELS") {
        Err(_) => Kernel::ALL.to_vec(),
        Ok(list) => {
            let mut on = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match Kernel::ALL.iter().find(|k| k.name() == name) {
                    Some(k) => on.push(*k),
                    None if name == "none" => {}
                    None if name == "all" => on.extend(Kernel::ALL),
                    None => tracing::warn!(
                        "MGRPO_KERNELS: unknown kernel `{name}` ignored (known: attention, rope, \
                         swiglu, logprobs, cache_write, linear, adamw, rms_norm, all, none)"
                    ),
                }
            }
            on
        }
    })
}

/// Whether the CPU kernel of `kernel` runs for `dtype` tensors: f32 only, and not switched off
/// by `MGRPO_KERNELS`.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn kernel_on(kernel: Kernel, dtype: DType) -> bool {
    dtype == DType::F32 && enabled().contains(&kernel)
}

#[cfg(feature = "wgpu")]
impl FusedBackend for burn::backend::Wgpu<f32, i32> {}
#[cfg(feature = "cuda")]
impl FusedBackend for burn::backend::Cuda<f32, i32> {}
#[cfg(feature = "tch")]
impl FusedBackend for burn::backend::LibTorch<f32> {}

#[cfg(test)]
mod attention_tests;
#[cfg(test)]
mod norm_adamw_tests;
#[cfg(test)]
mod tests;
