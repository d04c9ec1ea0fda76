//! Qwen2 and Qwen2.5 (`Qwen2ForCausalLM`): biases on the query, key and value projections
//! only, fixed by the architecture (no config key).

use serde_json::{Map, Value};

use super::{Family, Layout};
use crate::error::KeyError;

pub const QWEN2: Family = Family {
    model_type: "qwen2",
    causal_lm: "Qwen2ForCausalLM",
    sequence_classification: "Qwen2ForSequenceClassification",
    known_as: "Qwen2, Qwen2.5, Qwen2.5-Math, DeepSeek-R1-Distill-Qwen",
    layout,
    write,
};

/// Qwen2's layers, the same for every checkpoint.
pub const LAYOUT: Layout = Layout {
    qkv_bias: true,
    o_bias: false,
    mlp_bias: false,
    qk_norm: false,
};

fn layout(_: &Map<String, Value>) -> Result<Layout, KeyError> {
    Ok(LAYOUT)
}

fn write(_: &Layout, json: &mut Map<String, Value>) {
    json.insert("use_sliding_window".into(), false.into());
}
