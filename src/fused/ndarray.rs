//! The fused operations on burn-ndarray: its tensors go to the kernels through `TensorData`
//! (one contiguous copy of each input, the outputs adopted without one).

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::DType;

use super::attention_kernel;
use super::kernels::{self, AttnDims, View};
use super::{composed, FusedBackend, Kernel, TokenLogprobs};

type B = NdArray<f32>;

/// The values of `t`, row-major (f32 tensors only: the callers check).
fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}

/// The mask as bytes, non-zero = masked.
fn mask_bytes(mask: Tensor<B, 4, Bool>) -> Vec<u8> {
    let data = mask.into_data();
    data.iter::<bool>().map(u8::from).collect()
}

/// `data`, laid out `[d0, d1, d2, d3]`, as the logical `[d0, d2, d1, d3]` (axes 1 and 2
/// swapped: the kernels' outputs keep the projections' layout).
fn swapped(
    data: Vec<f32>,
    physical: [usize; 4],
    dev: &burn::backend::ndarray::NdArrayDevice,
) -> Tensor<B, 4> {
    Tensor::<B, 4>::from_data(TensorData::new(data, physical), dev).swap_dims(1, 2)
}

struct Inputs {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    mask: Vec<u8>,
    mask_dims: [usize; 4],
    dims: AttnDims,
}

impl Inputs {
    fn new(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, mask: Tensor<B, 4, Bool>) -> Self {
        let ([b, h, q_len, hd], [_, kvh, k_len, _]) = (q.dims(), k.dims());
        Self {
            mask_dims: mask.dims(),
            dims: AttnDims {
                batch: b,
                heads: h,
                kv_heads: kvh,
                q_len,
                k_len,
                head_dim: hd,
            },
            q: values(q),
            k: values(k),
            v: values(v),
            mask: mask_bytes(mask),
        }
    }

    fn kernel_inputs(&self) -> attention_kernel::Attention<'_> {
        let d = self.dims;
        let kv = [d.batch, d.kv_heads, d.k_len, d.head_dim];
        attention_kernel::Attention {
            q: View::contiguous(&self.q, [d.batch, d.heads, d.q_len, d.head_dim]),
            k: View::contiguous(&self.k, kv),
            v: View::contiguous(&self.v, kv),
            mask: View::contiguous(&self.mask, self.mask_dims).broadcast(self.mask_dims),
            dims: d,
        }
    }
}

impl FusedBackend for B {
    fn has_attention_kernel(dtype: DType) -> bool {
        super::kernel_on(Kernel::Attention, dtype)
    }

    fn fused_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
    ) -> Tensor<Self, 4> {
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
        let inputs = Inputs::new(q, k, v, mask);
        let d = inputs.dims;
        let (out, lse) = attention_kernel::attention_forward(&inputs.kernel_inputs());
        (
            swapped(out, [d.batch, d.q_len, d.heads, d.head_dim], &dev),
            Tensor::from_data(TensorData::new(lse, [d.batch, d.heads, d.q_len]), &dev),
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
        let inputs = Inputs::new(q, k, v, mask);
        let d = inputs.dims;
        let q_dims = [d.batch, d.heads, d.q_len, d.head_dim];
        let (out, lse, dout) = (values(out), values(lse), values(dout));
        let (dq, dk, dv) = attention_kernel::attention_backward(
            &inputs.kernel_inputs(),
            View::contiguous(&out, q_dims),
            &lse,
            View::contiguous(&dout, q_dims),
        );
        let kv = [d.batch, d.k_len, d.kv_heads, d.head_dim];
        (
            swapped(dq, [d.batch, d.q_len, d.heads, d.head_dim], &dev),
            swapped(dk, kv, &dev),
            swapped(dv, kv, &dev),
        )
    }

    fn has_rope_kernel(dtype: DType) -> bool {
        super::kernel_on(Kernel::Rope, dtype)
    }

    fn fused_rope(
        x: Tensor<Self, 4>,
        cos: Tensor<Self, 4>,
        sin: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        if !Self::has_rope_kernel(x.dtype()) || cos.dtype() != DType::F32 {
            return composed::rope(x, cos, sin);
        }
        let dev = x.device();
        let (dims, t_dims) = (x.dims(), cos.dims());
        let (x, cos, sin) = (values(x), values(cos), values(sin));
        let y = kernels::rope(
            View::contiguous(&x, dims),
            View::contiguous(&cos, t_dims).broadcast(t_dims),
            View::contiguous(&sin, t_dims).broadcast(t_dims),
            dims,
        );
        Tensor::from_data(TensorData::new(y, dims), &dev)
    }

    fn has_logprob_kernel(dtype: DType) -> bool {
        super::kernel_on(Kernel::Logprobs, dtype)
    }

    fn fused_token_logprobs(
        logits: Tensor<Self, 3>,
        targets: Tensor<Self, 2, Int>,
        with_entropy: bool,
    ) -> TokenLogprobs<Self> {
        if !Self::has_logprob_kernel(logits.dtype()) {
            return composed::token_logprobs(logits, targets, with_entropy);
        }
        let dev = logits.device();
        let [n, t, v] = logits.dims();
        let ids = super::host_ids(targets);
        let [lp, lse, h] = kernels::token_logprobs(&values(logits), &ids, v);
        let two = |x: Vec<f32>| Tensor::from_data(TensorData::new(x, [n, t]), &dev);
        TokenLogprobs {
            logprobs: two(lp),
            lse: two(lse),
            entropy: with_entropy.then(|| two(h)),
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
        let dev = logits.device();
        let dims @ [_, _, v] = logits.dims();
        let ids = super::host_ids(targets);
        let d =
            kernels::token_logprobs_backward(&values(logits), &ids, &values(lse), &values(grad), v);
        Tensor::from_data(TensorData::new(d, dims), &dev)
    }

    fn has_swiglu_kernel(dtype: DType) -> bool {
        super::kernel_on(Kernel::Swiglu, dtype)
    }

    fn fused_swiglu(gate: Tensor<Self, 3>, up: Tensor<Self, 3>) -> Tensor<Self, 3> {
        if !Self::has_swiglu_kernel(gate.dtype()) || up.dtype() != DType::F32 {
            return composed::swiglu(gate, up);
        }
        let (dev, dims) = (gate.device(), gate.dims());
        let y = kernels::swiglu(&values(gate), &values(up));
        Tensor::from_data(TensorData::new(y, dims), &dev)
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
        let (dg, du) = kernels::swiglu_backward(&values(gate), &values(up), &values(dy));
        let t = |x: Vec<f32>| Tensor::from_data(TensorData::new(x, dims), &dev);
        (t(dg), t(du))
    }
}
