//! `Qwen2Config`: the HF `config.json` of a `Qwen2ForCausalLM` checkpoint.
//!
//! Both styles are read: the transformers-4 style with a top-level `rope_theta` (every Qwen2.5
//! release) and the transformers-5 style with `rope_parameters: {rope_theta, rope_type}`.
//! Unknown fields are kept (and written back on save) but otherwise ignored; a missing required
//! field is an error that names it. Sliding-window attention and RoPE scaling are refused
//! rather than silently ignored.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The architecture hyper-parameters of a Qwen2 model, with HF's field names.
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub tie_word_embeddings: bool,
    /// Token ids that end generation (`eos_token_id`, a number or a list in HF configs).
    pub eos_token_id: Vec<u32>,
    pub bos_token_id: Option<u32>,
    /// Every field of the original `config.json`, so that saving keeps what we do not model.
    pub extra: Map<String, Value>,
}

impl Qwen2Config {
    /// Dimension of one attention head (`hidden_size / num_attention_heads`).
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Parameters of one decoder layer: q/k/v projections with biases, o_proj, the SwiGLU MLP
    /// and two norms.
    pub fn layer_params(&self) -> usize {
        let (d, q, kv) = (
            self.hidden_size,
            self.num_attention_heads * self.head_dim(),
            self.num_key_value_heads * self.head_dim(),
        );
        (d * q + q) + 2 * (d * kv + kv) + q * d + 3 * d * self.intermediate_size + 2 * d
    }

    /// All parameters: embedding, layers, final norm, and the LM head when untied
    /// (Qwen2.5-0.5B: 494 M).
    pub fn num_params(&self) -> usize {
        let embed = self.vocab_size * self.hidden_size;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + self.num_hidden_layers * self.layer_params() + self.hidden_size + head
    }

    /// Model FLOPs of training on one token in a sequence of `seq` tokens (forward + backward),
    /// PaLM's count: `6 · N + 12 · layers · heads · head_dim · seq`, `N` the parameters that
    /// take part in a matmul (the layers and the LM head; not the embedding lookup).
    pub fn train_flops_per_token(&self, seq: usize) -> f64 {
        let n = self.num_hidden_layers * self.layer_params() + self.vocab_size * self.hidden_size;
        let attn = 12 * self.num_hidden_layers * self.num_attention_heads * self.head_dim() * seq;
        (6 * n + attn) as f64
    }

    /// A config built from the shape alone, with Qwen2's defaults for the rest.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        num_key_value_heads: usize,
        tie_word_embeddings: bool,
    ) -> Self {
        Self {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            max_position_embeddings: 32768,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            tie_word_embeddings,
            eos_token_id: Vec::new(),
            bos_token_id: None,
            extra: Map::new(),
        }
    }

    /// Read and validate `path` (a `config.json`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parse and validate the text of a `config.json`; `path` is only used in messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let err = |msg: String| Error::config(path, msg);
        let value: Value =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(err("expected a JSON object".into()));
        };

        let uint = |key: &str| -> Result<Option<usize>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                    err(format!(
                        "field `{key}` must be a non-negative integer, got {v}"
                    ))
                }),
            }
        };
        let required = |key: &str| -> Result<usize> {
            let n = uint(key)?.ok_or_else(|| err(format!("missing required field `{key}`")))?;
            if n == 0 {
                return Err(err(format!("field `{key}` must be > 0")));
            }
            Ok(n)
        };
        let float = |key: &str, obj: &Map<String, Value>| -> Result<Option<f64>> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| err(format!("field `{key}` must be a number, got {v}"))),
            }
        };
        let boolean = |key: &str| -> Result<Option<bool>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(v) => Err(err(format!("field `{key}` must be true or false, got {v}"))),
            }
        };

        if let Some(mt) = map.get("model_type").and_then(Value::as_str) {
            if mt != "qwen2" {
                return Err(err(format!(
                    "model_type `{mt}` is not supported (only `qwen2`, i.e. Qwen2/Qwen2.5)"
                )));
            }
        }
        if boolean("use_sliding_window")? == Some(true) {
            return Err(err(
                "`use_sliding_window: true` is not supported: sliding-window attention is not \
                 implemented (every Qwen2.5 release sets it to false)"
                    .into(),
            ));
        }
        if let Some(act) = map.get("hidden_act").and_then(Value::as_str) {
            if act != "silu" {
                return Err(err(format!(
                    "hidden_act `{act}` is not supported (only `silu`)"
                )));
            }
        }

        // RoPE: transformers-5 `rope_parameters`, else transformers-4 `rope_theta` (+ `rope_scaling`).
        let mut rope_theta = float("rope_theta", &map)?;
        for key in ["rope_parameters", "rope_scaling"] {
            match map.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(rope)) => {
                    let kind = rope
                        .get("rope_type")
                        .or_else(|| rope.get("type"))
                        .and_then(Value::as_str)
                        .unwrap_or("default");
                    if kind != "default" {
                        return Err(err(format!(
                            "`{key}.rope_type` = `{kind}` is not supported (only `default` RoPE)"
                        )));
                    }
                    if let Some(theta) = float("rope_theta", rope)? {
                        rope_theta = Some(theta);
                    }
                }
                Some(v) => return Err(err(format!("field `{key}` must be an object, got {v}"))),
            }
        }

        const REQUIRED: [&str; 5] = [
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
        ];
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|k| matches!(map.get(**k), None | Some(Value::Null)))
            .map(|k| format!("`{k}`"))
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() > 1 { "s" } else { "" };
            return Err(err(format!(
                "missing required field{s} {}",
                missing.join(", ")
            )));
        }
        let num_attention_heads = required("num_attention_heads")?;
        let hidden_size = required("hidden_size")?;
        let cfg = Self {
            vocab_size: required("vocab_size")?,
            hidden_size,
            intermediate_size: required("intermediate_size")?,
            num_hidden_layers: required("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: uint("num_key_value_heads")?.unwrap_or(num_attention_heads),
            max_position_embeddings: uint("max_position_embeddings")?.unwrap_or(32768),
            rms_norm_eps: float("rms_norm_eps", &map)?.unwrap_or(1e-6),
            rope_theta: rope_theta.unwrap_or(10000.0),
            tie_word_embeddings: boolean("tie_word_embeddings")?.unwrap_or(false),
            eos_token_id: token_ids(map.get("eos_token_id"))
                .map_err(|m| err(format!("field `eos_token_id` {m}")))?,
            bos_token_id: token_ids(map.get("bos_token_id"))
                .map_err(|m| err(format!("field `bos_token_id` {m}")))?
                .first()
                .copied(),
            extra: map.clone(),
        };
        if hidden_size % num_attention_heads != 0 {
            return Err(err(format!(
                "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )));
        }
        if let Some(hd) = uint("head_dim")? {
            if hd != cfg.head_dim() {
                return Err(err(format!(
                    "field `head_dim` = {hd} differs from hidden_size / num_attention_heads = {} \
                     (Qwen2 derives it; a different head_dim is not supported)",
                    cfg.head_dim()
                )));
            }
        }
        if cfg.num_key_value_heads == 0 || num_attention_heads % cfg.num_key_value_heads != 0 {
            return Err(err(format!(
                "num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {}",
                cfg.num_key_value_heads
            )));
        }
        if !cfg.head_dim().is_multiple_of(2) {
            return Err(err(format!(
                "head_dim {} must be even for RoPE",
                cfg.head_dim()
            )));
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(cfg.rms_norm_eps) || !positive(cfg.rope_theta) {
            return Err(err(
                "`rms_norm_eps` and `rope_theta` must be positive".into()
            ));
        }
        Ok(cfg)
    }

    /// The `config.json` to write next to saved weights: the original fields, with ours and
    /// the dtype overwritten. Both RoPE styles are written so transformers 4 and 5 (and vLLM)
    /// read it.
    pub fn to_json(&self, torch_dtype: &str) -> Value {
        let mut m = self.extra.clone();
        let mut set = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        set("architectures", serde_json::json!(["Qwen2ForCausalLM"]));
        set("model_type", "qwen2".into());
        set("vocab_size", self.vocab_size.into());
        set("hidden_size", self.hidden_size.into());
        set("intermediate_size", self.intermediate_size.into());
        set("num_hidden_layers", self.num_hidden_layers.into());
        set("num_attention_heads", self.num_attention_heads.into());
        set("num_key_value_heads", self.num_key_value_heads.into());
        set(
            "max_position_embeddings",
            self.max_position_embeddings.into(),
        );
        set("rms_norm_eps", self.rms_norm_eps.into());
        set("rope_theta", self.rope_theta.into());
        set(
            "rope_parameters",
            serde_json::json!({"rope_theta": self.rope_theta, "rope_type": "default"}),
        );
        set("rope_scaling", Value::Null);
        set("tie_word_embeddings", self.tie_word_embeddings.into());
        set("hidden_act", "silu".into());
        set("use_sliding_window", false.into());
        set("torch_dtype", torch_dtype.into());
        set("dtype", torch_dtype.into());
        match self.eos_token_id.as_slice() {
            [] => {}
            [one] => set("eos_token_id", (*one).into()),
            many => set("eos_token_id", many.to_vec().into()),
        }
        if let Some(b) = self.bos_token_id {
            set("bos_token_id", b.into());
        }
        Value::Object(m)
    }
}

/// A token id field: absent/null, one integer, or a list of integers.
fn token_ids(v: Option<&Value>) -> std::result::Result<Vec<u32>, String> {
    let one = |v: &Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("must be a token id or a list of them, got {v}"))
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(one).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Qwen2Config> {
        Qwen2Config::from_json_str(s, Path::new("config.json"))
    }

    const BASE: &str = r#""vocab_size": 10, "hidden_size": 8, "intermediate_size": 12,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1"#;

    /// The parameter counts of the released checkpoints (`model.num_parameters()` in
    /// transformers on Qwen2.5-0.5B, -1.5B, -3B and -7B).
    #[test]
    fn parameter_counts_match_the_released_models() {
        let c = |v, d, i, l, h, kv, tie| Qwen2Config::new(v, d, i, l, h, kv, tie).num_params();
        assert_eq!(c(151936, 896, 4864, 24, 14, 2, true), 494_032_768);
        assert_eq!(c(151936, 1536, 8960, 28, 12, 2, true), 1_543_714_304);
        assert_eq!(c(151936, 2048, 11008, 36, 16, 2, true), 3_085_938_688);
        assert_eq!(c(152064, 3584, 18944, 28, 28, 4, false), 7_615_616_512);
    }

    #[test]
    fn both_rope_styles() {
        let t4 = parse(&format!("{{{BASE}, \"rope_theta\": 500.0}}")).unwrap();
        let t5 = parse(&format!(
            "{{{BASE}, \"rope_parameters\": {{\"rope_theta\": 500.0, \"rope_type\": \"default\"}}}}"
        ))
        .unwrap();
        assert_eq!(t4.rope_theta, 500.0);
        assert_eq!(t5.rope_theta, 500.0);
        assert_eq!(t4.head_dim(), 4);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"vocab_size": 10}"#).unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("`hidden_size`"),
            "{e}"
        );
        let e = parse(&format!("{{{BASE}, \"use_sliding_window\": true}}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("use_sliding_window"), "{e}");
        let e = parse(&format!(
            "{{{BASE}, \"rope_scaling\": {{\"rope_type\": \"yarn\"}}}}"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("yarn"), "{e}");
        let e = parse(&format!("{{{BASE}, \"eos_token_id\": \"x\"}}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("eos_token_id"), "{e}");
    }

    #[test]
    fn json_roundtrip_keeps_fields() {
        let c = parse(&format!(
            "{{{BASE}, \"eos_token_id\": [3, 4], \"custom\": 1}}"
        ))
        .unwrap();
        let back = parse(&c.to_json("float32").to_string()).unwrap();
        assert_eq!(back.eos_token_id, vec![3, 4]);
        assert_eq!(back.extra.get("custom"), Some(&Value::from(1)));
        assert_eq!(back.rope_theta, c.rope_theta);
    }
}
