//! LoRA (Hu et al. 2021, as PEFT's `LoraConfig`): `y = x·W + b + (α/r)·x·A·B` on the decoder's
//! linear layers, with the base weights frozen and only `A` (`[in, r]`, uniform in
//! `±1/√in` as PEFT's Kaiming init) and `B` (`[r, out]`, zero, so training starts from the base
//! model) trained.
//!
//! This file is the adapter layer the projections use; `lora_model.rs` attaches adapters to a
//! model. A model with adapters trains, samples and scores as usual; `merge_lora` folds them
//! into the weights for an HF checkpoint, and `save_adapter`/`load_adapter` write and read them
//! in PEFT's layout (`adapter_model.safetensors` with
//! `base_model.model.{key}.lora_A.weight` `[r, in]` / `lora_B.weight` `[out, r]`, and
//! `adapter_config.json`), which `peft.PeftModel.from_pretrained` loads.

use crate::fused::FusedBackend;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;

use super::linear3;
use super::precision::like;

/// The projections PEFT calls `target_modules`, all of them by default.
pub const LORA_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Rank, scale and targets (`lora_r`, `lora_alpha`, `lora_target_modules`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f32,
    pub targets: Vec<String>,
}

impl LoraConfig {
    pub(crate) fn scale(&self) -> f32 {
        self.alpha / self.r as f32
    }

    /// Adapter parameters on `config`: `r · (in + out)` per targeted projection and layer.
    pub fn num_params(&self, config: &super::ModelConfig) -> usize {
        let (d, inter) = (config.hidden_size, config.intermediate_size);
        let q = config.num_attention_heads * config.head_dim();
        let kv = config.num_key_value_heads * config.head_dim();
        let per_layer: usize = self
            .targets
            .iter()
            .map(|t| match t.as_str() {
                "q_proj" => d + q,
                "k_proj" | "v_proj" => d + kv,
                "o_proj" => q + d,
                "gate_proj" | "up_proj" | "down_proj" => d + inter,
                _ => 0,
            })
            .sum();
        self.r * per_layer * config.num_hidden_layers
    }
}

/// The low-rank update of one linear layer.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// `[in, r]` (PEFT's `lora_A.weight` is `[r, in]`)
    pub lora_a: Param<Tensor<B, 2>>,
    /// `[r, out]`, zero at the start (PEFT's `lora_B.weight` is `[out, r]`)
    pub lora_b: Param<Tensor<B, 2>>,
    /// α / r
    #[module(skip)]
    pub scale: f32,
}

impl<B: FusedBackend> LoraAdapter<B> {
    /// `(α/r)·A·B`, `[in, out]` in Burn's layout.
    pub(crate) fn delta(&self) -> Tensor<B, 2> {
        self.lora_a
            .val()
            .matmul(self.lora_b.val())
            .mul_scalar(self.scale)
    }
}

/// [`linear3`] plus the adapter's update, cast to `x`'s dtype.
///
/// # Shapes
/// - `x`: `[batch, seq, in]` → `[batch, seq, out]`
pub(crate) fn lora_linear3<B: FusedBackend>(
    linear: &Linear<B>,
    adapter: Option<&LoraAdapter<B>>,
    x: Tensor<B, 3>,
) -> Tensor<B, 3> {
    let Some(a) = adapter else {
        return linear3(linear, x);
    };
    let [b, s, d] = x.dims();
    let dtype = x.dtype();
    let low = x
        .clone()
        .reshape([b * s, d])
        .matmul(like(a.lora_a.val(), dtype))
        .matmul(like(a.lora_b.val(), dtype))
        .mul_scalar(a.scale);
    let out = low.dims()[1];
    linear3(linear, x) + low.reshape([b, s, out])
}
