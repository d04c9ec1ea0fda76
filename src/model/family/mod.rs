//! The model families: what a checkpoint's `config.json` says about its layers, and what to
//! write back. Every family here is the same decoder (`causal_lm.rs`: pre-norm attention and
//! SwiGLU MLP, rotate-half RoPE, RMSNorm, the same checkpoint keys); a family only decides
//! which projections carry biases and whether queries and keys are normalised per head. Adding
//! one is a file in this folder and a line in [`FAMILIES`].

mod llama;
mod qwen2;
mod qwen3;

use serde_json::{Map, Value};

use crate::error::KeyError;

pub use llama::LLAMA;
pub use qwen2::{LAYOUT as QWEN2_LAYOUT, QWEN2};
pub use qwen3::QWEN3;

/// What differs between the families' decoder layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Biases on `q_proj`, `k_proj`, `v_proj`.
    pub qkv_bias: bool,
    /// A bias on `o_proj`.
    pub o_bias: bool,
    /// Biases on `gate_proj`, `up_proj`, `down_proj`.
    pub mlp_bias: bool,
    /// RMSNorm of every query and key head before RoPE (`self_attn.q_norm`, `self_attn.k_norm`).
    pub qk_norm: bool,
}

/// One model family, as transformers names it.
#[derive(Debug)]
pub struct Family {
    /// `config.json`'s `model_type`.
    pub model_type: &'static str,
    /// `architectures[0]` of the causal language model.
    pub causal_lm: &'static str,
    /// `architectures[0]` of the same backbone with a one-label score head (PPO's critic).
    pub sequence_classification: &'static str,
    /// What people know the family by, for messages and the README's table.
    pub known_as: &'static str,
    /// The layout the family's `config.json` describes (its own keys, with transformers'
    /// defaults), or the key it cannot honour.
    pub layout: fn(&Map<String, Value>) -> Result<Layout, KeyError>,
    /// The family's own keys written into a saved `config.json`.
    pub write: fn(&Layout, &mut Map<String, Value>),
}

impl PartialEq for Family {
    fn eq(&self, other: &Self) -> bool {
        self.model_type == other.model_type
    }
}

/// Every family we build: the one place a `model_type` picks its family.
pub const FAMILIES: [&Family; 3] = [&qwen2::QWEN2, &qwen3::QWEN3, &llama::LLAMA];

/// The family whose `model_type` is `name`.
pub fn named(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().copied().find(|f| f.model_type == name)
}

/// The family of a `config.json`: by `model_type`, else by `architectures[0]`, else Qwen2
/// (configs written before `model_type` was required).
pub fn of_config(json: &Map<String, Value>) -> Result<&'static Family, KeyError> {
    let supported = || {
        FAMILIES
            .iter()
            .map(|f| format!("`{}` ({})", f.model_type, f.known_as))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match json.get("model_type") {
        Some(Value::String(mt)) => named(mt).ok_or_else(|| {
            KeyError::new(
                "model_type",
                format!("`{mt}` is not supported (supported: {})", supported()),
            )
        }),
        Some(Value::Null) | None => match json.get("architectures").and_then(|a| a.get(0)) {
            Some(Value::String(arch)) => FAMILIES
                .iter()
                .copied()
                .find(|f| f.causal_lm == arch || f.sequence_classification == arch)
                .ok_or_else(|| {
                    KeyError::new(
                        "architectures",
                        format!("`{arch}` is not supported (supported: {})", supported()),
                    )
                }),
            _ => Ok(&qwen2::QWEN2),
        },
        Some(other) => Err(KeyError::new(
            "model_type",
            format!("must be a string, got {other}"),
        )),
    }
}

/// The boolean `key` of `json`, `default` when absent or null.
fn flag(json: &Map<String, Value>, key: &str, default: bool) -> Result<bool, KeyError> {
    match json.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(KeyError::new(
            key,
            format!("must be true or false, got {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn picked_by_model_type_then_architectures() {
        let f = of_config(&obj(serde_json::json!({"model_type": "qwen3"}))).unwrap();
        assert_eq!(f.causal_lm, "Qwen3ForCausalLM");
        let f = of_config(&obj(
            serde_json::json!({"architectures": ["LlamaForCausalLM"]}),
        ))
        .unwrap();
        assert_eq!(f.model_type, "llama");
        let f = of_config(&obj(serde_json::json!({}))).unwrap();
        assert_eq!(f.model_type, "qwen2");
        let e = of_config(&obj(serde_json::json!({"model_type": "gemma3"}))).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("model_type") && e.contains("gemma3") && e.contains("llama"),
            "{e}"
        );
        let e = of_config(&obj(
            serde_json::json!({"architectures": ["MixtralForCausalLM"]}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("architectures") && e.contains("Mixtral"), "{e}");
    }

    #[test]
    fn layouts_are_transformers() {
        let empty = Map::new();
        let l = (qwen2::QWEN2.layout)(&empty).unwrap();
        assert!(l.qkv_bias && !l.o_bias && !l.mlp_bias && !l.qk_norm);
        let l = (qwen3::QWEN3.layout)(&empty).unwrap();
        assert!(!l.qkv_bias && !l.o_bias && !l.mlp_bias && l.qk_norm);
        let l = (llama::LLAMA.layout)(&empty).unwrap();
        assert!(!l.qkv_bias && !l.o_bias && !l.mlp_bias && !l.qk_norm);
        let with = obj(serde_json::json!({"attention_bias": true, "mlp_bias": true}));
        let l = (llama::LLAMA.layout)(&with).unwrap();
        assert!(l.qkv_bias && l.o_bias && l.mlp_bias);
        let l = (qwen3::QWEN3.layout)(&with).unwrap();
        assert!(
            l.qkv_bias && l.o_bias && !l.mlp_bias,
            "Qwen3's MLP has no bias key"
        );
        let bad = obj(serde_json::json!({"attention_bias": "yes"}));
        let e = (llama::LLAMA.layout)(&bad).unwrap_err().to_string();
        assert!(e.contains("attention_bias"), "{e}");
    }
}
