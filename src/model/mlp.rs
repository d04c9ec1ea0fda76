//! `Qwen2MLP`: SwiGLU, `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))`, no biases.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::linear3;

/// The feed-forward block of one decoder layer (`mlp.*` keys).
#[derive(Module, Debug)]
pub struct Qwen2MLP<B: Backend> {
    /// `[hidden, intermediate]` in Burn layout (HF stores `[intermediate, hidden]`).
    pub gate_proj: Linear<B>,
    /// `[hidden, intermediate]`
    pub up_proj: Linear<B>,
    /// `[intermediate, hidden]`
    pub down_proj: Linear<B>,
}

impl<B: Backend> Qwen2MLP<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(linear3(&self.gate_proj, x.clone())); // [b, s, inter]
        linear3(&self.down_proj, gate * linear3(&self.up_proj, x))
    }
}
