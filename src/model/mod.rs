//! The causal language model (`causal_lm.rs`) of every supported family (`family/`: Qwen2,
//! Qwen3, Llama), written generically over Burn backends, with HF checkpoints in and out:
//! `dir` opens a model directory (config, tokenizer, end-of-sequence ids, then the weights),
//! `batch` left-pads the token rows it runs on.

pub mod attention;
pub mod batch;
pub mod block;
pub mod cache;
pub mod causal_lm;
pub(crate) mod checkpoint;
pub mod config;
pub mod dir;
pub mod family;
pub mod hub;
pub mod lora;
mod lora_model;
pub mod mlp;
pub mod norm;
pub(crate) mod packed;
pub mod precision;
pub mod rope;
pub(crate) mod save;
pub mod value;
pub(crate) mod weights;

pub use cache::KvCache;

use crate::fused::FusedBackend;
use burn::nn::Linear;
use burn::prelude::*;

/// `linear.forward` on `[batch, seq, in]` as one `[batch · seq, in] × [in, out]` product
/// ([`crate::fused::linear`]: a kernel of its own for the few rows of a decoding step on the
/// CPU backends). Burn's `Linear` on a 3-d input broadcasts the weight over the batch, which CPU
/// backends run as `batch` separate matmuls that each re-read (and re-pack) the weight —
/// ruinous at `seq = 1`. Weights in another dtype than `x` (bf16 compute on f32 master weights)
/// are cast on use.
pub(crate) fn linear3<B: FusedBackend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let x = x.reshape([b * s, d]);
    let dtype = x.dtype();
    let weight = precision::like(linear.weight.val(), dtype);
    let bias = linear
        .bias
        .as_ref()
        .map(|b| precision::like(b.val(), dtype));
    let y = crate::fused::linear(x, weight, bias);
    let out = y.dims()[1];
    y.reshape([b, s, out])
}
pub use causal_lm::{CausalLm, ModelInput};
pub use checkpoint::{load_config, load_model, load_value_model, load_weights};
pub use config::ModelConfig;
pub use lora_model::{load_adapter, save_adapter};
pub use precision::Precision;
pub use save::{named_tensors, save_model, save_value_model, SaveDtype, SaveOptions};
