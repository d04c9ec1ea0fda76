//! `Qwen2MLP`: SwiGLU, `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))`, no biases.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::lora::{lora_linear3, LoraAdapter};

/// The feed-forward block of one decoder layer (`mlp.*` keys).
#[derive(Module, Debug)]
pub struct Qwen2MLP<B: Backend> {
    /// `[hidden, intermediate]` in Burn layout (HF stores `[intermediate, hidden]`).
    pub gate_proj: Linear<B>,
    /// `[hidden, intermediate]`
    pub up_proj: Linear<B>,
    /// `[intermediate, hidden]`
    pub down_proj: Linear<B>,
    /// LoRA adapters (`lora_r > 0`; see `lora.rs`).
    pub gate_proj_lora: Option<LoraAdapter<B>>,
    pub up_proj_lora: Option<LoraAdapter<B>>,
    pub down_proj_lora: Option<LoraAdapter<B>>,
}

impl<B: Backend> Qwen2MLP<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = lora_linear3(&self.gate_proj, self.gate_proj_lora.as_ref(), x.clone());
        let up = lora_linear3(&self.up_proj, self.up_proj_lora.as_ref(), x);
        let down = self.down_proj_lora.as_ref();
        lora_linear3(&self.down_proj, down, silu(gate) * up) // [b, s, inter] → [b, s, hidden]
    }
}
