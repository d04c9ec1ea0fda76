//! Qwen3 dense models (`Qwen3ForCausalLM`): every query and key head RMS-normalised before
//! RoPE (`q_norm`, `k_norm`), `attention_bias` on all four attention projections (false in
//! every release), and an explicit `head_dim` (128 where `hidden_size / heads` is 64 or 80).

use serde_json::{Map, Value};

use super::{flag, Family, Layout};
use crate::error::KeyError;

pub const QWEN3: Family = Family {
    model_type: "qwen3",
    causal_lm: "Qwen3ForCausalLM",
    sequence_classification: "Qwen3ForSequenceClassification",
    known_as: "Qwen3 dense, 0.6B-32B",
    layout,
    write,
};

fn layout(json: &Map<String, Value>) -> Result<Layout, KeyError> {
    let bias = flag(json, "attention_bias", false)?;
    Ok(Layout {
        qkv_bias: bias,
        o_bias: bias,
        mlp_bias: false,
        qk_norm: true,
    })
}

fn write(layout: &Layout, json: &mut Map<String, Value>) {
    json.insert("attention_bias".into(), layout.qkv_bias.into());
    json.insert("use_sliding_window".into(), false.into());
}
