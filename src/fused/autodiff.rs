//! The fused operations under Burn's autodiff: where the inner backend runs a kernel, the
//! operation is one node of the graph with its own backward pass (Burn's `Backward` for custom
//! operations); elsewhere the composition is differentiated operation by operation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::ops::{BoolTensor, FloatTensor, IntTensor};
use burn::tensor::TensorPrimitive;

use super::{composed, AutodiffInner, FusedBackend, TokenLogprobs};

fn inner<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// The attention node's backward pass: the inner backend's `attention_backward` from the
/// saved inputs, output and log-sum-exp.
#[derive(Debug)]
struct AttentionBackward;

type AttentionState<B> = (
    [FloatTensor<B>; 3],
    BoolTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
);

impl<B: FusedBackend> Backward<B, 3> for AttentionBackward {
    type State = AttentionState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let dout = grads.consume::<B>(&ops.node);
        let ([q, k, v], mask, out, lse) = ops.state;
        let (dq, dk, dv) = B::fused_attention_backward(
            inner(q),
            inner(k),
            inner(v),
            Tensor::from_primitive(mask),
            inner(out),
            inner(lse),
            inner(dout),
        );
        for (node, grad) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, prim(grad));
            }
        }
    }
}

/// The RoPE node's backward pass: RoPE of the gradient with `sin` negated.
#[derive(Debug)]
struct RopeBackward;

impl<B: FusedBackend> Backward<B, 1> for RopeBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (cos, sin) = ops.state;
        if let Some(node) = node_x {
            let dx = B::fused_rope(inner(dy), inner(cos), inner::<B, 4>(sin).neg());
            grads.register::<B>(node.id, prim(dx));
        }
    }
}

/// The SwiGLU node's backward pass, from the saved inputs.
#[derive(Debug)]
struct SwigluBackward;

impl<B: FusedBackend> Backward<B, 2> for SwigluBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_gate, node_up] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (gate, up) = ops.state;
        let (dg, du) = B::fused_swiglu_backward(inner(gate), inner(up), inner(dy));
        for (node, grad) in [(node_gate, dg), (node_up, du)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, prim(grad));
            }
        }
    }
}

/// The RMSNorm node's backward pass, from the saved input and weight.
#[derive(Debug)]
struct RmsNormBackward;

impl<B: FusedBackend> Backward<B, 2> for RmsNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, eps) = ops.state;
        let (dx, dw) = B::fused_rms_norm_backward(inner(x), inner(w), inner(dy), eps);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, prim(dx));
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, prim(dw));
        }
    }
}

/// The token log-probs node's backward pass: `grad·(onehot − softmax)` from the saved logits
/// and log-sum-exp.
#[derive(Debug)]
struct TokenLogprobsBackward;

impl<B: FusedBackend> Backward<B, 1> for TokenLogprobsBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (logits, targets, lse) = ops.state;
        if let Some(node) = node {
            let d = B::fused_token_logprobs_backward(
                inner(logits),
                Tensor::from_primitive(targets),
                inner(lse),
                inner(grad),
            );
            grads.register::<B>(node.id, prim(d));
        }
    }
}

impl<B: AutodiffInner, C: CheckpointStrategy> FusedBackend for Autodiff<B, C> {
    fn memory_is_host() -> bool {
        B::memory_is_host()
    }

    fn has_attention_kernel(dtype: burn::tensor::DType) -> bool {
        B::has_attention_kernel(dtype)
    }

    fn fused_attention(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        mask: Tensor<Self, 4, Bool>,
    ) -> Tensor<Self, 4> {
        if !B::has_attention_kernel(q.dtype()) {
            return composed::attention(q, k, v, mask);
        }
        let (q, k, v) = (prim(q), prim(k), prim(v));
        let mask: BoolTensor<B> = mask.into_primitive();
        let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
        let out = match AttentionBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, lse) = B::fused_attention_lse(
                    inner(q.primitive.clone()),
                    inner(k.primitive.clone()),
                    inner(v.primitive.clone()),
                    Tensor::from_primitive(mask.clone()),
                );
                let (out, lse) = (prim(out), prim(lse));
                let state = (
                    [q.primitive, k.primitive, v.primitive],
                    mask,
                    out.clone(),
                    lse,
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(prim(B::fused_attention(
                inner(q.primitive),
                inner(k.primitive),
                inner(v.primitive),
                Tensor::from_primitive(mask),
            ))),
        };
        inner(out)
    }

    fn has_rope_kernel(dtype: burn::tensor::DType) -> bool {
        B::has_rope_kernel(dtype)
    }

    fn fused_rope(
        x: Tensor<Self, 4>,
        cos: Tensor<Self, 4>,
        sin: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        if !B::has_rope_kernel(x.dtype()) {
            return composed::rope(x, cos, sin);
        }
        // The tables are constants: only `x` is a parent.
        let (x, cos, sin) = (prim(x), prim(cos).primitive, prim(sin).primitive);
        let y = match RopeBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::fused_rope(inner(x.primitive), inner(cos.clone()), inner(sin.clone()));
                prep.finish((cos, sin), prim(y))
            }
            OpsKind::UnTracked(prep) => prep.finish(prim(B::fused_rope(
                inner(x.primitive),
                inner(cos),
                inner(sin),
            ))),
        };
        inner(y)
    }

    fn has_logprob_kernel(dtype: burn::tensor::DType) -> bool {
        B::has_logprob_kernel(dtype)
    }

    fn fused_token_logprobs(
        logits: Tensor<Self, 3>,
        targets: Tensor<Self, 2, Int>,
        with_entropy: bool,
    ) -> TokenLogprobs<Self> {
        if !B::has_logprob_kernel(logits.dtype()) {
            return composed::token_logprobs(logits, targets, with_entropy);
        }
        let logits = prim(logits);
        let targets: IntTensor<B> = targets.into_primitive();
        let run = |logits: FloatTensor<B>, targets: IntTensor<B>| {
            B::fused_token_logprobs(inner(logits), Tensor::from_primitive(targets), with_entropy)
        };
        let (lp, r) = match TokenLogprobsBackward
            .prepare::<C>([logits.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let r = run(logits.primitive.clone(), targets.clone());
                let state = (logits.primitive, targets, prim(r.lse.clone()));
                (prep.finish(state, prim(r.logprobs.clone())), r)
            }
            OpsKind::UnTracked(prep) => {
                let r = run(logits.primitive, targets);
                (prep.finish(prim(r.logprobs.clone())), r)
            }
        };
        TokenLogprobs {
            logprobs: inner(lp),
            lse: Tensor::from_inner(r.lse),
            entropy: r.entropy.map(Tensor::from_inner),
        }
    }

    fn has_swiglu_kernel(dtype: burn::tensor::DType) -> bool {
        B::has_swiglu_kernel(dtype)
    }

    fn has_rms_norm_kernel(dtype: burn::tensor::DType) -> bool {
        B::has_rms_norm_kernel(dtype)
    }

    fn fused_rms_norm(x: Tensor<Self, 2>, weight: Tensor<Self, 1>, eps: f64) -> Tensor<Self, 2> {
        if !B::has_rms_norm_kernel(x.dtype()) || weight.dtype() != x.dtype() {
            return composed::rms_norm(x, weight, eps);
        }
        let (x, w) = (prim(x), prim(weight));
        let y = match RmsNormBackward
            .prepare::<C>([x.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y =
                    B::fused_rms_norm(inner(x.primitive.clone()), inner(w.primitive.clone()), eps);
                prep.finish((x.primitive, w.primitive, eps), prim(y))
            }
            OpsKind::UnTracked(prep) => prep.finish(prim(B::fused_rms_norm(
                inner(x.primitive),
                inner(w.primitive),
                eps,
            ))),
        };
        inner(y)
    }

    fn fused_swiglu(gate: Tensor<Self, 3>, up: Tensor<Self, 3>) -> Tensor<Self, 3> {
        if !B::has_swiglu_kernel(gate.dtype()) {
            return composed::swiglu(gate, up);
        }
        let (gate, up) = (prim(gate), prim(up));
        let y = match SwigluBackward
            .prepare::<C>([gate.node.clone(), up.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::fused_swiglu(inner(gate.primitive.clone()), inner(up.primitive.clone()));
                prep.finish((gate.primitive, up.primitive), prim(y))
            }
            OpsKind::UnTracked(prep) => prep.finish(prim(B::fused_swiglu(
                inner(gate.primitive),
                inner(up.primitive),
            ))),
        };
        inner(y)
    }
}
