//! The fused operations of the backends whose tensors live in host memory (flex, ndarray): one
//! implementation of [`FusedBackend`] over the kernels, for every backend that says how it lends
//! its tensors' memory ([`HostMemory`], in `flex.rs` and `ndarray.rs`). Each operation runs its
//! kernel for the dtypes the kernel takes (f32, unless `MGRPO_KERNELS` switches it off) and its
//! composition otherwise.

use burn::prelude::*;
use burn::tensor::DType;

use super::adamw_kernel::{self, AdamWStep};
use super::attention_kernel::{self, AttnDims};
use super::kernels::{self, View};
use super::rms_norm_kernel;
use super::{composed, kernel_on, FusedBackend, Kernel, TokenLogprobs};
use super::{decoding, linear_kernel};

/// How a host-memory backend lends its tensors to the kernels.
pub(super) trait HostMemory: Backend {
    /// Whether [`Self::contiguous`] of a tensor already laid out row-major lends its memory
    /// without a copy. The linear kernel reads a whole weight per call of a few rows' work; a
    /// copy of the weight would cost more than the kernel saves, so it runs only where this holds.
    const LENDS_IN_PLACE: bool;

    /// An f32 tensor held while a kernel reads it (with its shape); a clone shares the buffer.
    type Floats: Clone + 'static;
    /// A boolean tensor held while a kernel reads it.
    type Bools;

    /// `t` with any layout whose strides are non-negative (read through [`Self::view`]).
    fn strided<const D: usize>(t: Tensor<Self, D>) -> Self::Floats;
    /// `t` laid out row-major (read through [`Self::values`]).
    fn contiguous<const D: usize>(t: Tensor<Self, D>) -> Self::Floats;
    /// Whether [`Self::contiguous`] lends `t`'s own buffer, without a copy.
    fn lends_row_major<const D: usize>(_t: &Tensor<Self, D>) -> bool {
        false
    }
    fn bools(t: Tensor<Self, 4, Bool>) -> Self::Bools;
    /// The 4-d view of a held tensor; an axis of size 1 broadcasts (stride 0).
    fn view(t: &Self::Floats) -> View<'_, f32>;
    /// The values of a tensor held by [`Self::contiguous`].
    fn values(t: &Self::Floats) -> &[f32];
    /// The 4-d view of a held boolean tensor as bytes (non-zero = true), broadcasting as `view`.
    fn bool_view(t: &Self::Bools) -> View<'_, u8>;

    /// `t` (from [`Self::contiguous`]) as a buffer nobody else holds, for a kernel to overwrite:
    /// `t` itself when it is one, else a copy.
    fn writable(t: Self::Floats) -> Self::Floats;
    /// The values of a tensor from [`Self::writable`], to overwrite in place.
    fn values_mut(t: &mut Self::Floats) -> &mut [f32];
    /// A held tensor as a tensor of `dims` (its element count).
    fn into_tensor<const D: usize>(t: Self::Floats, dims: [usize; D]) -> Tensor<Self, D>;

    /// The KV-cache write ([`FusedBackend::fused_cache_write`]); `slice_assign` unless the
    /// backend can do better.
    fn cache_write(buf: Tensor<Self, 4>, offset: usize, new: Tensor<Self, 4>) -> Tensor<Self, 4> {
        composed::cache_write(buf, offset, new)
    }
}

/// `data`, laid out `[d0, d1, d2, d3]`, seen as `[d0, d2, d1, d3]` (the kernels' outputs keep the
/// projections' layout, so moving the heads back costs nothing).
fn swapped<B: Backend>(data: Vec<f32>, physical: [usize; 4], dev: &B::Device) -> Tensor<B, 4> {
    Tensor::<B, 4>::from_data(TensorData::new(data, physical), dev).swap_dims(1, 2)
}

fn tensor<B: Backend, const D: usize>(
    data: Vec<f32>,
    dims: [usize; D],
    dev: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(data, dims), dev)
}

/// Token ids as host indices (ids are checked against the vocabulary by whoever builds the
/// batch).
fn ids<B: Backend, const D: usize>(ids: Tensor<B, D, Int>) -> Vec<usize> {
    let data = ids.into_data().convert::<i64>();
    data.iter::<i64>().map(|i| i.max(0) as usize).collect()
}

/// The held inputs of one attention call.
struct Held<B: HostMemory> {
    q: B::Floats,
    k: B::Floats,
    v: B::Floats,
    mask: B::Bools,
    dims: AttnDims,
}

impl<B: HostMemory> Held<B> {
    fn new(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>) -> Self {
        let ([batch, heads, q_len, head_dim], [_, kv_heads, k_len, _]) = (q.dims(), k.dims());
        Self {
            q: B::strided(q),
            k: B::strided(k),
            v: B::strided(v),
            mask: B::bools(mask),
            dims: AttnDims {
                batch,
                heads,
                kv_heads,
                q_len,
                k_len,
                head_dim,
            },
        }
    }

    fn kernel_inputs(&self) -> attention_kernel::Attention<'_> {
        attention_kernel::Attention {
            q: B::view(&self.q),
            k: B::view(&self.k),
            v: B::view(&self.v),
            mask: B::bool_view(&self.mask),
            dims: self.dims,
        }
    }
}

impl<B: HostMemory> FusedBackend for B {
    fn memory_is_host() -> bool {
        true
    }

    fn has_attention_kernel(dtype: DType) -> bool {
        kernel_on(Kernel::Attention, dtype)
    }

    fn fused_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
    ) -> Tensor<Self, 4> {
        if !Self::has_attention_kernel(q.dtype()) {
            return composed::attention(q, k, v, mask);
        }
        Self::fused_attention_lse(q, k, v, mask).0
    }

    fn fused_attention_lse(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
    ) -> (Tensor<Self, 4>, Tensor<Self, 3>) {
        if !Self::has_attention_kernel(q.dtype()) {
            return composed::attention_lse(q, k, v, mask);
        }
        let dev = q.device();
        let held = Held::<Self>::new(q, k, v, mask);
        let d = held.dims;
        let (out, lse) = attention_kernel::attention_forward(&held.kernel_inputs());
        (
            swapped::<Self>(out, [d.batch, d.q_len, d.heads, d.head_dim], &dev),
            tensor(lse, [d.batch, d.heads, d.q_len], &dev),
        )
    }

    fn fused_attention_backward(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
        out: Tensor<Self, 4>,
        lse: Tensor<Self, 3>,
        dout: Tensor<Self, 4>,
    ) -> (Tensor<Self, 4>, Tensor<Self, 4>, Tensor<Self, 4>) {
        if !Self::has_attention_kernel(q.dtype()) {
            return composed::attention_backward(q, k, v, mask, out, lse, dout);
        }
        let dev = q.device();
        let held = Held::<Self>::new(q, k, v, mask);
        let d = held.dims;
        let (out, lse, dout) = (
            Self::strided(out),
            Self::contiguous(lse),
            Self::strided(dout),
        );
        let (dq, dk, dv) = attention_kernel::attention_backward(
            &held.kernel_inputs(),
            Self::view(&out),
            Self::values(&lse),
            Self::view(&dout),
        );
        let kv = [d.batch, d.k_len, d.kv_heads, d.head_dim];
        (
            swapped::<Self>(dq, [d.batch, d.q_len, d.heads, d.head_dim], &dev),
            swapped::<Self>(dk, kv, &dev),
            swapped::<Self>(dv, kv, &dev),
        )
    }

    fn fused_linear(
        x: Tensor<Self, 2>,
        weight: Tensor<Self, 2>,
        bias: Option<Tensor<Self, 1>>,
    ) -> Tensor<Self, 2> {
        let ([m, k], n) = (x.dims(), weight.dims()[1]);
        let f32s =
            weight.dtype() == DType::F32 && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        let run = Self::LENDS_IN_PLACE && kernel_on(Kernel::Linear, x.dtype()) && f32s;
        // in a decoding scope, a weight lent in place is read from its packed copy
        let packing = run && decoding::is_open() && Self::lends_row_major(&weight);
        let max_rows = if packing {
            linear_kernel::MAX_PACKED_ROWS
        } else {
            linear_kernel::MAX_ROWS
        };
        if !run || m > max_rows {
            return composed::linear(x, weight, bias);
        }
        let dev = x.device();
        let (x, weight) = (Self::contiguous(x), Self::contiguous(weight));
        let bias = bias.map(Self::contiguous);
        let (x, w, bias) = (
            Self::values(&x),
            Self::values(&weight),
            bias.as_ref().map(Self::values),
        );
        let packed = packing
            .then(|| decoding::panels(w, [k, n], || Box::new(weight.clone())))
            .flatten();
        let y = match packed {
            Some(panels) => linear_kernel::linear_packed(x, &panels, bias, m),
            None => linear_kernel::linear(x, w, bias, m, k, n),
        };
        tensor(y, [m, n], &dev)
    }

    fn has_rope_kernel(dtype: DType) -> bool {
        kernel_on(Kernel::Rope, dtype)
    }

    fn fused_rope(
        x: Tensor<Self, 4>,
        cos: Tensor<Self, 4>,
        sin: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        if !Self::has_rope_kernel(x.dtype()) || cos.dtype() != DType::F32 {
            return composed::rope(x, cos, sin);
        }
        let (dev, dims) = (x.device(), x.dims());
        let (x, cos, sin) = (Self::strided(x), Self::strided(cos), Self::strided(sin));
        let y = kernels::rope(Self::view(&x), Self::view(&cos), Self::view(&sin), dims);
        tensor(y, dims, &dev)
    }

    fn has_swiglu_kernel(dtype: DType) -> bool {
        kernel_on(Kernel::Swiglu, dtype)
    }

    fn fused_swiglu(gate: Tensor<Self, 3>, up: Tensor<Self, 3>) -> Tensor<Self, 3> {
        if !Self::has_swiglu_kernel(gate.dtype()) || up.dtype() != DType::F32 {
            return composed::swiglu(gate, up);
        }
        let (dev, dims) = (gate.device(), gate.dims());
        let (g, u) = (Self::contiguous(gate), Self::contiguous(up));
        tensor(
            kernels::swiglu(Self::values(&g), Self::values(&u)),
            dims,
            &dev,
        )
    }

    fn fused_swiglu_backward(
        gate: Tensor<Self, 3>,
        up: Tensor<Self, 3>,
        dy: Tensor<Self, 3>,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        if !Self::has_swiglu_kernel(gate.dtype()) || up.dtype() != DType::F32 {
            return composed::swiglu_backward(gate, up, dy);
        }
        let (dev, dims) = (gate.device(), gate.dims());
        let (g, u, dy) = (
            Self::contiguous(gate),
            Self::contiguous(up),
            Self::contiguous(dy),
        );
        let (dg, du) =
            kernels::swiglu_backward(Self::values(&g), Self::values(&u), Self::values(&dy));
        (tensor(dg, dims, &dev), tensor(du, dims, &dev))
    }

    fn fused_cache_write(
        buf: Tensor<Self, 4>,
        offset: usize,
        new: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        Self::cache_write(buf, offset, new)
    }

    fn has_logprob_kernel(dtype: DType) -> bool {
        kernel_on(Kernel::Logprobs, dtype)
    }

    fn fused_token_logprobs(
        logits: Tensor<Self, 3>,
        targets: Tensor<Self, 2, Int>,
        with_entropy: bool,
    ) -> TokenLogprobs<Self> {
        if !Self::has_logprob_kernel(logits.dtype()) {
            return composed::token_logprobs(logits, targets, with_entropy);
        }
        let (dev, [n, t, v]) = (logits.device(), logits.dims());
        let logits = Self::contiguous(logits);
        let [lp, lse, h] = kernels::token_logprobs(Self::values(&logits), &ids(targets), v);
        TokenLogprobs {
            logprobs: tensor(lp, [n, t], &dev),
            lse: tensor(lse, [n, t], &dev),
            entropy: with_entropy.then(|| tensor(h, [n, t], &dev)),
        }
    }

    fn fused_token_logprobs_backward(
        logits: Tensor<Self, 3>,
        targets: Tensor<Self, 2, Int>,
        lse: Tensor<Self, 2>,
        grad: Tensor<Self, 2>,
    ) -> Tensor<Self, 3> {
        if !Self::has_logprob_kernel(logits.dtype()) {
            return composed::token_logprobs_backward(logits, targets, lse, grad);
        }
        let (dev, dims @ [_, _, v]) = (logits.device(), logits.dims());
        let ids = ids(targets);
        let (logits, lse, grad) = (
            Self::contiguous(logits),
            Self::contiguous(lse),
            Self::contiguous(grad),
        );
        let d = kernels::token_logprobs_backward(
            Self::values(&logits),
            &ids,
            Self::values(&lse),
            Self::values(&grad),
            v,
        );
        tensor(d, dims, &dev)
    }

    fn has_rms_norm_kernel(dtype: DType) -> bool {
        kernel_on(Kernel::RmsNorm, dtype)
    }

    fn fused_rms_norm(x: Tensor<Self, 2>, weight: Tensor<Self, 1>, eps: f64) -> Tensor<Self, 2> {
        if !Self::has_rms_norm_kernel(x.dtype()) || weight.dtype() != DType::F32 {
            return composed::rms_norm(x, weight, eps);
        }
        let (dev, dims) = (x.device(), x.dims());
        let (x, w) = (Self::contiguous(x), Self::contiguous(weight));
        let y = rms_norm_kernel::rms_norm(Self::values(&x), Self::values(&w), eps as f32);
        tensor(y, dims, &dev)
    }

    fn fused_rms_norm_backward(
        x: Tensor<Self, 2>,
        weight: Tensor<Self, 1>,
        dy: Tensor<Self, 2>,
        eps: f64,
    ) -> (Tensor<Self, 2>, Tensor<Self, 1>) {
        if !Self::has_rms_norm_kernel(x.dtype()) || weight.dtype() != DType::F32 {
            return composed::rms_norm_backward(x, weight, dy, eps);
        }
        let (dev, dims, h) = (x.device(), x.dims(), weight.dims()[0]);
        let (x, w, dy) = (
            Self::contiguous(x),
            Self::contiguous(weight),
            Self::contiguous(dy),
        );
        let (dx, dw) = rms_norm_kernel::rms_norm_backward(
            Self::values(&x),
            Self::values(&w),
            Self::values(&dy),
            eps as f32,
        );
        (tensor(dx, dims, &dev), tensor(dw, [h], &dev))
    }

    fn fused_adamw(
        param: Tensor<Self, 1>,
        grad: Tensor<Self, 1>,
        m: Tensor<Self, 1>,
        v: Tensor<Self, 1>,
        step: &AdamWStep,
    ) -> (Tensor<Self, 1>, Tensor<Self, 1>, Tensor<Self, 1>) {
        let on = kernel_on(Kernel::Adamw, param.dtype())
            && [&grad, &m, &v].iter().all(|t| t.dtype() == DType::F32);
        if !on {
            return composed::adamw(param, grad, m, v, step);
        }
        let dims = param.dims();
        let g = Self::contiguous(grad);
        let [mut p, mut m, mut v] = [param, m, v].map(|t| Self::writable(Self::contiguous(t)));
        adamw_kernel::adamw(
            Self::values_mut(&mut p),
            Self::values(&g),
            Self::values_mut(&mut m),
            Self::values_mut(&mut v),
            step,
        );
        (
            Self::into_tensor(p, dims),
            Self::into_tensor(m, dims),
            Self::into_tensor(v, dims),
        )
    }

    fn fused_sum_squares(x: Tensor<Self, 1>) -> Tensor<Self, 1> {
        if !kernel_on(Kernel::Adamw, x.dtype()) {
            return composed::sum_squares(x);
        }
        let dev = x.device();
        let x = Self::contiguous(x);
        let sum = adamw_kernel::sum_squares(Self::values(&x)) as f32;
        tensor(vec![sum], [1], &dev)
    }
}
