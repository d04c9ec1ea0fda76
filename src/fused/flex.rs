//! The fused operations on burn-flex: the kernels read the tensors' buffers through their
//! strides (a transposed view costs no copy) and their outputs come back as views in the
//! layout the next operation wants.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::{DType, Shape, TensorPrimitive};

use super::attention_kernel;
use super::kernels::{self, AttnDims, View};
use super::{composed, FusedBackend, Kernel, TokenLogprobs};

type B = Flex<f32>;

fn float(t: Tensor<B, 4>) -> FlexTensor {
    t.into_primitive().tensor()
}

/// A 3-d float tensor's primitive, contiguous.
fn float3(t: Tensor<B, 3>) -> FlexTensor {
    t.into_primitive().tensor().to_contiguous()
}

fn wrap<const D: usize>(t: FlexTensor) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// A tensor whose strides are all non-negative (a flipped view is copied first).
fn non_negative_strides(t: FlexTensor) -> FlexTensor {
    if t.layout().strides().iter().any(|&s| s < 0) {
        t.to_contiguous()
    } else {
        t
    }
}

/// The 4-d view of `t`'s buffer (`t` from [`non_negative_strides`]).
fn view<T: burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> View<'_, T> {
    let s = t.layout().strides();
    View {
        data: t.storage::<T>(),
        offset: t.layout().start_offset(),
        strides: [s[0] as usize, s[1] as usize, s[2] as usize, s[3] as usize],
    }
}

/// The view of `t` that broadcasts its size-1 axes (a mask `[b or 1, 1, q_len or 1, k_len]`,
/// RoPE tables `[b, s, 1, hd]`).
fn broadcast_view<T: burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> View<'_, T> {
    let d = t.layout().shape();
    let dims = [d[0], d[1], d[2], d[3]];
    view(t).broadcast(dims)
}

/// The values of a contiguous f32 tensor.
fn contiguous(t: &FlexTensor) -> &[f32] {
    let start = t.layout().start_offset();
    &t.storage::<f32>()[start..start + t.layout().num_elements()]
}

/// `data` laid out as `physical` (row-major), seen as the logical shape `[p[o[0]], …]`:
/// `order[i]` is the physical axis of logical axis `i`.
fn permuted(data: Vec<f32>, physical: [usize; 4], order: [usize; 4]) -> FlexTensor {
    let st = [
        physical[1] * physical[2] * physical[3],
        physical[2] * physical[3],
        physical[3],
        1,
    ];
    let shape = Shape::new(order.map(|a| physical[a]));
    let strides = order.map(|a| st[a] as isize).to_vec();
    FlexTensor::from_data(TensorData::new(data, physical))
        .with_layout(Layout::new(shape, strides, 0))
}

fn dims(q: &FlexTensor, k: &FlexTensor) -> AttnDims {
    let (qs, ks) = (q.layout().shape(), k.layout().shape());
    AttnDims {
        batch: qs[0],
        heads: qs[1],
        kv_heads: ks[1],
        q_len: qs[2],
        k_len: ks[2],
        head_dim: qs[3],
    }
}

fn flex_attention(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
) -> (Tensor<B, 4>, Tensor<B, 3>) {
    let (q, k, v) = (
        non_negative_strides(float(q)),
        non_negative_strides(float(k)),
        non_negative_strides(float(v)),
    );
    let mask = non_negative_strides(mask.into_primitive());
    let d = dims(&q, &k);
    let a = attention_kernel::Attention {
        q: view(&q),
        k: view(&k),
        v: view(&v),
        mask: broadcast_view(&mask),
        dims: d,
    };
    let (out, lse) = attention_kernel::attention_forward(&a);
    let out = permuted(out, [d.batch, d.q_len, d.heads, d.head_dim], [0, 2, 1, 3]);
    let lse = FlexTensor::from_data(TensorData::new(lse, [d.batch, d.heads, d.q_len]));
    (wrap(out), wrap(lse))
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
        flex_attention(q, k, v, mask)
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
        let (q, k, v) = (
            non_negative_strides(float(q)),
            non_negative_strides(float(k)),
            non_negative_strides(float(v)),
        );
        let (out, dout) = (
            non_negative_strides(float(out)),
            non_negative_strides(float(dout)),
        );
        let mask = non_negative_strides(mask.into_primitive());
        let lse = lse.into_primitive().tensor().to_contiguous();
        let d = dims(&q, &k);
        let a = attention_kernel::Attention {
            q: view(&q),
            k: view(&k),
            v: view(&v),
            mask: broadcast_view(&mask),
            dims: d,
        };
        let lse_data = lse.storage::<f32>();
        let start = lse.layout().start_offset();
        let lse_s = &lse_data[start..start + d.batch * d.heads * d.q_len];
        let (dq, dk, dv) = attention_kernel::attention_backward(&a, view(&out), lse_s, view(&dout));
        let swap = [0, 2, 1, 3];
        (
            wrap(permuted(dq, [d.batch, d.q_len, d.heads, d.head_dim], swap)),
            wrap(permuted(
                dk,
                [d.batch, d.k_len, d.kv_heads, d.head_dim],
                swap,
            )),
            wrap(permuted(
                dv,
                [d.batch, d.k_len, d.kv_heads, d.head_dim],
                swap,
            )),
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
        let dims = x.dims();
        let (x, cos, sin) = (
            non_negative_strides(float(x)),
            non_negative_strides(float(cos)),
            non_negative_strides(float(sin)),
        );
        let y = kernels::rope(view(&x), broadcast_view(&cos), broadcast_view(&sin), dims);
        wrap(FlexTensor::from_data(TensorData::new(y, dims)))
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
        let [n, t, v] = logits.dims();
        let ids = super::host_ids(targets);
        let logits = logits.into_primitive().tensor().to_contiguous();
        let [lp, lse, h] = kernels::token_logprobs(contiguous(&logits), &ids, v);
        let two = |x: Vec<f32>| wrap(FlexTensor::from_data(TensorData::new(x, [n, t])));
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
        let dims @ [_, _, v] = logits.dims();
        let ids = super::host_ids(targets);
        let logits = logits.into_primitive().tensor().to_contiguous();
        let lse = lse.into_primitive().tensor().to_contiguous();
        let grad = grad.into_primitive().tensor().to_contiguous();
        let d = kernels::token_logprobs_backward(
            contiguous(&logits),
            &ids,
            contiguous(&lse),
            contiguous(&grad),
            v,
        );
        wrap(FlexTensor::from_data(TensorData::new(d, dims)))
    }

    fn has_swiglu_kernel(dtype: DType) -> bool {
        super::kernel_on(Kernel::Swiglu, dtype)
    }

    fn fused_swiglu(gate: Tensor<Self, 3>, up: Tensor<Self, 3>) -> Tensor<Self, 3> {
        if !Self::has_swiglu_kernel(gate.dtype()) || up.dtype() != DType::F32 {
            return composed::swiglu(gate, up);
        }
        let dims = gate.dims();
        let (g, u) = (float3(gate), float3(up));
        let y = kernels::swiglu(contiguous(&g), contiguous(&u));
        wrap(FlexTensor::from_data(TensorData::new(y, dims)))
    }

    fn fused_swiglu_backward(
        gate: Tensor<Self, 3>,
        up: Tensor<Self, 3>,
        dy: Tensor<Self, 3>,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        if !Self::has_swiglu_kernel(gate.dtype()) || up.dtype() != DType::F32 {
            return composed::swiglu_backward(gate, up, dy);
        }
        let dims = gate.dims();
        let (g, u, dy) = (float3(gate), float3(up), float3(dy));
        let (dg, du) = kernels::swiglu_backward(contiguous(&g), contiguous(&u), contiguous(&dy));
        let t = |x: Vec<f32>| wrap(FlexTensor::from_data(TensorData::new(x, dims)));
        (t(dg), t(du))
    }

    fn fused_cache_write(
        buf: Tensor<Self, 4>,
        offset: usize,
        new: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        let [b, h, s, d] = new.dims();
        let cap = buf.dims()[2];
        let in_place = super::kernel_on(Kernel::CacheWrite, buf.dtype())
            && new.dtype() == DType::F32
            && offset + s <= cap;
        if !in_place {
            return buf.slice_assign([0..b, 0..h, offset..offset + s, 0..d], new);
        }
        let mut t = buf.into_primitive().tensor();
        let new = non_negative_strides(float(new));
        let fresh = t.layout().is_contiguous() && t.layout().start_offset() == 0;
        match t.try_storage_mut::<f32>().filter(|_| fresh) {
            Some(dst) => {
                let src = view::<f32>(&new);
                for bi in 0..b {
                    for hh in 0..h {
                        for j in 0..s {
                            let at = ((bi * h + hh) * cap + offset + j) * d;
                            src.row(bi, hh, j, &mut dst[at..at + d]);
                        }
                    }
                }
                wrap(t)
            }
            None => wrap::<4>(t).slice_assign([0..b, 0..h, offset..offset + s, 0..d], wrap(new)),
        }
    }
}
