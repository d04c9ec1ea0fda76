//! Fused operations: a Burn backend extension (the pattern of Burn's custom-kernel examples).
//!
//! [`FusedBackend`] extends `burn::prelude::Backend` with the model's hot operations. Each has a
//! default implementation composed of ordinary Burn tensor operations (`composed.rs`: what
//! wgpu, CUDA and LibTorch run, and the reference the kernels are tested against); the CPU
//! backends override them with kernels that work on the tensors' host memory (`kernels.rs`,
//! wired in by `flex.rs` and `ndarray.rs`). Under autodiff (`autodiff.rs`) an operation with a
//! kernel gets its own backward pass (also a kernel); one without is differentiated through its
//! composition as before.
//!
//! Library code is generic over `B: FusedBackend` (and `B: FusedAutodiffBackend` where it
//! trains); the impls for the concrete backends below are the only place that names them.
//!
//! | operation | composed | kernel (flex, ndarray, f32) |
//! |---|---|---|
//! | [`attention`] (GQA, boolean mask) | Burn's `attention` on folded query heads | row-wise online softmax over the unmasked keys, no `[b, h, q, k]` tensor; backward from the saved log-sum-exp |
//! | [`rope`] (rotate-half) | two products, a `cat` and a sum | one pass; backward = the same kernel with `−sin` |

pub mod composed;
pub mod kernels;

mod autodiff;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "ndarray")]
mod ndarray;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;

/// A Burn backend with the model's fused operations.
pub trait FusedBackend: Backend {
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
    #[allow(clippy::too_many_arguments)]
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
}

/// An autodiff backend whose inner backend has the fused operations too (what the trainer's
/// `valid()` models and the reference model run on).
pub trait FusedAutodiffBackend: AutodiffBackend<InnerBackend: FusedBackend> + FusedBackend {}

impl<B> FusedAutodiffBackend for B where
    B: AutodiffBackend<InnerBackend: FusedBackend> + FusedBackend
{
}

/// [`FusedBackend::attention`].
pub fn attention<B: FusedBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> Tensor<B, 4> {
    B::fused_attention(q, k, v, mask)
}

/// [`FusedBackend::rope`].
pub fn rope<B: FusedBackend>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
) -> Tensor<B, 4> {
    B::fused_rope(x, cos, sin)
}

#[cfg(feature = "wgpu")]
impl FusedBackend for burn::backend::Wgpu<f32, i32> {}
#[cfg(feature = "cuda")]
impl FusedBackend for burn::backend::Cuda<f32, i32> {}
#[cfg(feature = "tch")]
impl FusedBackend for burn::backend::LibTorch<f32> {}

#[cfg(test)]
mod tests;
