//! `Mlp`: SwiGLU, `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))`, biases only with Llama's
//! `mlp_bias`.

use crate::fused::FusedBackend;
use burn::nn::Linear;
use burn::prelude::*;

use super::attention::Projection;
use super::config::ModelConfig;
use super::lora::{lora_linear3, LoraAdapter};
use super::weights::WeightSource;
use crate::error::Result;

/// The feed-forward block of one decoder layer (`mlp.*` keys).
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
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

impl<B: FusedBackend> Mlp<B> {
    /// The MLP of `c` with weights `{prefix}.gate_proj.weight`, … from `src`, no adapters.
    pub fn new(prefix: &str, c: &ModelConfig, src: &mut impl WeightSource<B>) -> Result<Self> {
        let (d, inter) = (c.hidden_size, c.intermediate_size);
        let bias = c.layout.mlp_bias;
        Ok(Self {
            gate_proj: src.linear(&format!("{prefix}.gate_proj"), d, inter, bias)?,
            up_proj: src.linear(&format!("{prefix}.up_proj"), d, inter, bias)?,
            down_proj: src.linear(&format!("{prefix}.down_proj"), inter, d, bias)?,
            gate_proj_lora: None,
            up_proj_lora: None,
            down_proj_lora: None,
        })
    }

    /// The three projections with their LoRA slots, in checkpoint order.
    pub fn projections_mut(&mut self) -> [Projection<'_, B>; 3] {
        [
            ("gate_proj", &mut self.gate_proj, &mut self.gate_proj_lora),
            ("up_proj", &mut self.up_proj, &mut self.up_proj_lora),
            ("down_proj", &mut self.down_proj, &mut self.down_proj_lora),
        ]
    }

    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = lora_linear3(&self.gate_proj, self.gate_proj_lora.as_ref(), x.clone());
        let up = lora_linear3(&self.up_proj, self.up_proj_lora.as_ref(), x);
        let down = self.down_proj_lora.as_ref();
        lora_linear3(&self.down_proj, down, crate::fused::swiglu(gate, up)) // [b, s, inter] → [b, s, hidden]
    }
}
