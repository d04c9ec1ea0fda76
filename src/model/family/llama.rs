//! Llama and the models shaped like it (`LlamaForCausalLM`: Llama 2/3.x, SmolLM2, many
//! distills): `attention_bias` on all four attention projections, `mlp_bias` on the three MLP
//! projections (both false in Meta's releases). Llama 3.1+'s `llama3` RoPE scaling is read
//! with the other RoPE parameters (`rope.rs`).

use serde_json::{Map, Value};

use super::{flag, Family, Layout};
use crate::error::KeyError;

pub const LLAMA: Family = Family {
    model_type: "llama",
    causal_lm: "LlamaForCausalLM",
    sequence_classification: "LlamaForSequenceClassification",
    known_as: "Llama 2, Llama 3.x, SmolLM2 and other Llama-shaped models",
    layout,
    write,
};

fn layout(json: &Map<String, Value>) -> Result<Layout, KeyError> {
    let bias = flag(json, "attention_bias", false)?;
    Ok(Layout {
        qkv_bias: bias,
        o_bias: bias,
        mlp_bias: flag(json, "mlp_bias", false)?,
        qk_norm: false,
    })
}

fn write(layout: &Layout, json: &mut Map<String, Value>) {
    json.insert("attention_bias".into(), layout.qkv_bias.into());
    json.insert("mlp_bias".into(), layout.mlp_bias.into());
}
