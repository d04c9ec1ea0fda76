//! `ModelConfig`: the HF `config.json` of a causal LM of one of the families in `family/`.
//!
//! Both styles are read: the transformers-4 style with a top-level `rope_theta` and
//! `rope_scaling` (every Qwen2.5 and Llama 3 release) and the transformers-5 style with
//! `rope_parameters: {rope_theta, rope_type, …}`. `config.json` is deserialised into a private
//! `RawConfig` (serde; `serde_path_to_error` names the key of a value of the wrong type), its
//! family picked (`family::of_config`), given HF's defaults, and validated. Unknown fields are
//! kept (and written back on save) but otherwise ignored; a missing required field is an error
//! that names it. Sliding-window attention, RoPE types other than `default` and `llama3`, and
//! partial rotary embeddings are refused rather than silently ignored.

use std::path::Path;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::family::{self, Family, Layout};
use super::rope::{Llama3Scaling, Rope, RopeKeys};
use crate::error::{Error, KeyError, Result};

/// The architecture hyper-parameters of a model, with HF's field names.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The family (`model_type`) the checkpoint is written for.
    pub family: &'static Family,
    /// Which projections have biases, whether heads are normalised (from the family).
    pub layout: Layout,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    /// `head_dim`, or `hidden_size / num_attention_heads` when the config has none.
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// Llama 3.1's RoPE scaling, when `rope_type` is `llama3`.
    pub rope_scaling: Option<Llama3Scaling>,
    pub tie_word_embeddings: bool,
    /// Token ids that end generation (`eos_token_id`, a number or a list in HF configs).
    pub eos_token_id: Vec<u32>,
    pub bos_token_id: Option<u32>,
    /// Every field of the original `config.json`, so that saving keeps what we do not model.
    pub extra: Map<String, Value>,
}

impl ModelConfig {
    /// Dimension of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// The model's RoPE (base and scaling).
    pub fn rope(&self) -> Rope {
        Rope {
            theta: self.rope_theta,
            llama3: self.rope_scaling,
        }
    }

    /// Parameters of one decoder layer: the four attention projections, the SwiGLU MLP, the two
    /// norms, and the biases and head norms of the family's layout.
    pub fn layer_params(&self) -> usize {
        let (d, q, kv, inter) = (
            self.hidden_size,
            self.num_attention_heads * self.head_dim,
            self.num_key_value_heads * self.head_dim,
            self.intermediate_size,
        );
        let l = &self.layout;
        let on = |yes: bool, n: usize| if yes { n } else { 0 };
        d * q
            + 2 * d * kv
            + q * d
            + 3 * d * inter
            + 2 * d
            + on(l.qkv_bias, q + 2 * kv)
            + on(l.o_bias, d)
            + on(l.mlp_bias, 2 * inter + d)
            + on(l.qk_norm, 2 * self.head_dim)
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

    /// A Qwen2 config built from the shape alone, with Qwen2's defaults for the rest.
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
            family: &family::QWEN2,
            layout: family::QWEN2_LAYOUT,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim: hidden_size / num_attention_heads.max(1),
            max_position_embeddings: 32768,
            rms_norm_eps: 1e-6,
            rope_theta: 1_000_000.0,
            rope_scaling: None,
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
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::config(path, format!("invalid JSON: {e}")))?;
        let not_an_object = || Error::config(path, "expected a JSON object");
        if !value.is_object() {
            return Err(not_an_object());
        }
        // deserialised from a reference, so the original fields are kept without a copy
        let raw: RawConfig = serde_path_to_error::deserialize(&value)
            .map_err(|e| KeyError::new(e.path().to_string(), e.inner().to_string()).at(path))?;
        let Value::Object(extra) = value else {
            return Err(not_an_object());
        };
        let config = raw.resolve(extra).map_err(|e| e.at(path))?;
        config.validate().map_err(|e| e.at(path))?;
        Ok(config)
    }

    /// Why this architecture cannot be built, naming the key at fault.
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: String| Err(KeyError::new(key, msg));
        for (key, n) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if n == 0 {
                return bad(key, "must be > 0".into());
            }
        }
        // far beyond any real model, and below what overflows a parameter count
        for (key, n, max) in [
            ("vocab_size", self.vocab_size, 1usize << 22),
            ("hidden_size", self.hidden_size, 1 << 20),
            ("intermediate_size", self.intermediate_size, 1 << 20),
            ("num_hidden_layers", self.num_hidden_layers, 1 << 12),
            ("num_attention_heads", self.num_attention_heads, 1 << 16),
            ("num_key_value_heads", self.num_key_value_heads, 1 << 16),
            ("head_dim", self.head_dim, 1 << 16),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                1 << 24,
            ),
        ] {
            if n > max {
                return bad(key, format!("{n} is beyond the largest supported, {max}"));
            }
        }
        let (d, heads, kv) = (
            self.hidden_size,
            self.num_attention_heads,
            self.num_key_value_heads,
        );
        let explicit_head_dim = self.extra.get("head_dim").is_some_and(|v| !v.is_null());
        if !explicit_head_dim && !d.is_multiple_of(heads) {
            return bad(
                "hidden_size",
                format!("{d} is not a multiple of num_attention_heads {heads}"),
            );
        }
        if !heads.is_multiple_of(kv) {
            return bad(
                "num_attention_heads",
                format!("{heads} is not a multiple of num_key_value_heads {kv}"),
            );
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            let (key, what) = match explicit_head_dim {
                true => ("head_dim", "head_dim"),
                false => (
                    "hidden_size",
                    "head_dim = hidden_size / num_attention_heads",
                ),
            };
            return bad(
                key,
                format!("{what} = {} must be even and > 0 for RoPE", self.head_dim),
            );
        }
        let vocab = self.vocab_size;
        if let Some(id) = self.eos_token_id.iter().find(|&&id| id as usize >= vocab) {
            return bad(
                "eos_token_id",
                format!("{id} is not a token id (vocab_size {vocab}): generation would never stop on it"),
            );
        }
        if let Some(id) = self.bos_token_id.filter(|&id| id as usize >= vocab) {
            return bad(
                "bos_token_id",
                format!("{id} is not a token id (vocab_size {vocab})"),
            );
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(self.rms_norm_eps) {
            return bad(
                "rms_norm_eps",
                format!("must be > 0, got {}", self.rms_norm_eps),
            );
        }
        if !positive(self.rope_theta) {
            return bad(
                "rope_theta",
                format!("must be > 0, got {}", self.rope_theta),
            );
        }
        if let Some(s) = &self.rope_scaling {
            let key = |k: &str| format!("rope_scaling.{k}");
            if !(s.factor.is_finite() && s.factor >= 1.0) {
                return bad(&key("factor"), format!("must be >= 1, got {}", s.factor));
            }
            if !positive(s.low_freq_factor) {
                return bad(
                    &key("low_freq_factor"),
                    format!("must be > 0, got {}", s.low_freq_factor),
                );
            }
            if !(s.high_freq_factor.is_finite() && s.high_freq_factor > s.low_freq_factor) {
                return bad(
                    &key("high_freq_factor"),
                    format!(
                        "must be greater than low_freq_factor {}, got {}",
                        s.low_freq_factor, s.high_freq_factor
                    ),
                );
            }
            if s.original_max_position_embeddings == 0 {
                return bad(
                    &key("original_max_position_embeddings"),
                    "must be > 0".into(),
                );
            }
        }
        Ok(())
    }

    /// The `config.json` to write next to saved weights: the original fields, with ours and
    /// the dtype overwritten. Both RoPE styles are written so transformers 4 and 5 (and vLLM)
    /// read it.
    pub fn to_json(&self, torch_dtype: &str) -> Value {
        let mut m = self.extra.clone();
        let mut set = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        set("architectures", serde_json::json!([self.family.causal_lm]));
        set("model_type", self.family.model_type.into());
        set("vocab_size", self.vocab_size.into());
        set("hidden_size", self.hidden_size.into());
        set("intermediate_size", self.intermediate_size.into());
        set("num_hidden_layers", self.num_hidden_layers.into());
        set("num_attention_heads", self.num_attention_heads.into());
        set("num_key_value_heads", self.num_key_value_heads.into());
        set("head_dim", self.head_dim.into());
        set(
            "max_position_embeddings",
            self.max_position_embeddings.into(),
        );
        set("rms_norm_eps", self.rms_norm_eps.into());
        set("rope_theta", self.rope_theta.into());
        match &self.rope_scaling {
            None => {
                set(
                    "rope_parameters",
                    serde_json::json!({"rope_theta": self.rope_theta, "rope_type": "default"}),
                );
                set("rope_scaling", Value::Null);
            }
            Some(s) => {
                let scaling = serde_json::json!({
                    "rope_type": "llama3",
                    "factor": s.factor,
                    "low_freq_factor": s.low_freq_factor,
                    "high_freq_factor": s.high_freq_factor,
                    "original_max_position_embeddings": s.original_max_position_embeddings,
                });
                let mut parameters = scaling.clone();
                parameters["rope_theta"] = self.rope_theta.into();
                set("rope_parameters", parameters);
                set("rope_scaling", scaling);
            }
        }
        set("tie_word_embeddings", self.tie_word_embeddings.into());
        set("hidden_act", "silu".into());
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
        (self.family.write)(&self.layout, &mut m);
        Value::Object(m)
    }
}

/// `config.json` as HF writes it: the fields we read, each optional here so that a missing
/// one is reported with the others, and HF's defaults filled in by [`RawConfig::resolve`].
#[derive(Deserialize)]
struct RawConfig {
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    max_position_embeddings: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    /// transformers 5
    rope_parameters: Option<RopeKeys>,
    /// transformers 4
    rope_scaling: Option<RopeKeys>,
    tie_word_embeddings: Option<bool>,
    use_sliding_window: Option<bool>,
    layer_types: Option<Vec<String>>,
    partial_rotary_factor: Option<f64>,
    hidden_act: Option<String>,
    #[serde(default, deserialize_with = "token_ids")]
    eos_token_id: Vec<u32>,
    #[serde(default, deserialize_with = "token_ids")]
    bos_token_id: Vec<u32>,
}

impl RawConfig {
    /// The config, with HF's defaults for what is absent; refuses what we do not implement.
    fn resolve(self, extra: Map<String, Value>) -> std::result::Result<ModelConfig, KeyError> {
        let family = family::of_config(&extra)?;
        let layout = (family.layout)(&extra)?;
        if self.use_sliding_window == Some(true) {
            return Err(KeyError::new(
                "use_sliding_window",
                "`true` is not supported: sliding-window attention is not implemented \
                 (every Qwen2.5 and Qwen3 release sets it to false)",
            ));
        }
        if let Some((i, t)) =
            (self.layer_types.iter().flatten().enumerate()).find(|(_, t)| *t != "full_attention")
        {
            return Err(KeyError::new(
                format!("layer_types[{i}]"),
                format!("`{t}` is not supported (only `full_attention` layers)"),
            ));
        }
        if let Some(p) = self.partial_rotary_factor.filter(|p| *p != 1.0) {
            return Err(KeyError::new(
                "partial_rotary_factor",
                format!("{p} is not supported (only 1.0: RoPE over the whole head)"),
            ));
        }
        if let Some(act) = self.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(KeyError::new(
                "hidden_act",
                format!("`{act}` is not supported (only `silu`)"),
            ));
        }
        // transformers 5 reads `rope_parameters` and falls back to the older `rope_scaling`
        let mut rope_theta = self.rope_theta;
        let mut rope_scaling = None;
        for (key, rope) in [
            ("rope_scaling", &self.rope_scaling),
            ("rope_parameters", &self.rope_parameters),
        ] {
            let Some(rope) = rope else { continue };
            rope_scaling = rope.scaling(key)?;
            // two thetas that disagree: one would be ignored without a word
            if let (Some(top), Some(inner)) = (self.rope_theta, rope.rope_theta) {
                if top != inner {
                    return Err(KeyError::new(
                        "rope_theta",
                        format!("{top} disagrees with {key}.rope_theta {inner}"),
                    ));
                }
            }
            rope_theta = rope.rope_theta.or(rope_theta);
        }
        let required = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
        ];
        let missing: Vec<&str> = required
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        if let Some(first) = missing.first() {
            let also = match &missing[1..] {
                [] => String::new(),
                rest => format!(" (and `{}`)", rest.join("`, `")),
            };
            return Err(KeyError::new(
                *first,
                format!("missing required field{also}"),
            ));
        }
        let [vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads] =
            required.map(|(_, v)| v.unwrap_or_default());
        let config = ModelConfig {
            family,
            layout,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(num_attention_heads),
            head_dim: self
                .head_dim
                .unwrap_or(hidden_size / num_attention_heads.max(1)),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(32768),
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: rope_theta.unwrap_or(10000.0),
            rope_scaling,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            eos_token_id: self.eos_token_id,
            bos_token_id: self.bos_token_id.first().copied(),
            extra,
        };
        Ok(config)
    }
}

/// A token id field: absent/null, one id, or a list of ids.
fn token_ids<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        One(u32),
        Many(Vec<u32>),
    }
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(Vec::new());
    }
    match Ids::deserialize(&v) {
        Ok(Ids::One(id)) => Ok(vec![id]),
        Ok(Ids::Many(ids)) => Ok(ids),
        Err(_) => Err(D::Error::custom(format!(
            "must be a token id or a list of them, got {v}"
        ))),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
