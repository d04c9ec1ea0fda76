//! Saving checkpoints in HF layout.
//!
//! Writes `config.json`, safetensors with `format=pt` metadata (transformers refuses files
//! without it) in BF16 or F32, sharded above `max_shard_bytes` with an index like
//! `save_pretrained`, and copies the tokenizer and generation files of the source directory.
//! The directory is written under a temporary name and renamed at the end, so a crash never
//! leaves a half-written checkpoint.

use crate::fused::FusedBackend;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::nn::Linear;
use burn::prelude::*;
use safetensors::Dtype;

use super::causal_lm::{CausalLm, Decoder};
use super::checkpoint::transpose;
use super::config::ModelConfig;
use super::value::ValueModel;
use crate::error::{Error, Result};

/// Files copied from the source model directory when saving, if present.
pub const SIDE_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
];

/// Weight dtype of a saved checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDtype {
    F32,
    Bf16,
}

impl SaveDtype {
    /// Parse `f32`/`float32` or `bf16`/`bfloat16`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            _ => Err(Error::Invalid(format!(
                "unknown dtype `{s}` (expected f32 or bf16)"
            ))),
        }
    }

    fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
        }
    }
}

/// Tensors by HF key: f32 values in HF layout and the shape.
pub type NamedTensors = BTreeMap<String, (Vec<f32>, Vec<usize>)>;

/// Every tensor of `model` under its HF key, in HF layout (`Linear` weights `[out, in]`), as
/// f32 values and a shape.
pub fn named_tensors<B: FusedBackend>(model: &CausalLm<B>) -> Result<NamedTensors> {
    let mut c = backbone_tensors(&model.model)?;
    if let Some(head) = &model.lm_head {
        c.linear("lm_head".into(), head)?;
    }
    Ok(c.out)
}

/// Every tensor of PPO's critic under its key in transformers'
/// `Qwen2ForSequenceClassification` with one label: `model.*` and `score.weight` `[1, hidden]`.
pub fn value_tensors<B: FusedBackend>(critic: &ValueModel<B>) -> Result<NamedTensors> {
    let mut c = backbone_tensors(&critic.model)?;
    c.linear("score".into(), &critic.score)?;
    Ok(c.out)
}

/// The decoder stack's tensors (`model.*`).
fn backbone_tensors<B: FusedBackend>(model: &Decoder<B>) -> Result<Collector> {
    let mut c = Collector {
        out: BTreeMap::new(),
    };
    c.tensor(
        "model.embed_tokens.weight".into(),
        model.embed_tokens.weight.val(),
    )?;
    for (i, l) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = &l.self_attn;
        for (name, lin) in [
            ("q_proj", &a.q_proj),
            ("k_proj", &a.k_proj),
            ("v_proj", &a.v_proj),
            ("o_proj", &a.o_proj),
        ] {
            c.linear(format!("{p}.self_attn.{name}"), lin)?;
        }
        for (name, norm) in [("q_norm", &a.q_norm), ("k_norm", &a.k_norm)] {
            if let Some(norm) = norm {
                c.tensor(format!("{p}.self_attn.{name}.weight"), norm.weight.val())?;
            }
        }
        for (name, lin) in [
            ("gate_proj", &l.mlp.gate_proj),
            ("up_proj", &l.mlp.up_proj),
            ("down_proj", &l.mlp.down_proj),
        ] {
            c.linear(format!("{p}.mlp.{name}"), lin)?;
        }
        c.tensor(
            format!("{p}.input_layernorm.weight"),
            l.input_layernorm.weight.val(),
        )?;
        c.tensor(
            format!("{p}.post_attention_layernorm.weight"),
            l.post_attention_layernorm.weight.val(),
        )?;
    }
    c.tensor("model.norm.weight".into(), model.norm.weight.val())?;
    Ok(c)
}

struct Collector {
    out: NamedTensors,
}

impl Collector {
    fn tensor<B: FusedBackend, const D: usize>(
        &mut self,
        key: String,
        t: Tensor<B, D>,
    ) -> Result<()> {
        let shape = t.dims().to_vec();
        let v = crate::fused::tensor::read_back(t, &format!("tensor `{key}`"))?;
        self.out.insert(key, (v, shape));
        Ok(())
    }

    fn linear<B: FusedBackend>(&mut self, prefix: String, l: &Linear<B>) -> Result<()> {
        let key = format!("{prefix}.weight");
        self.tensor(key.clone(), l.weight.val())?;
        if let Some((v, shape)) = self.out.get_mut(&key) {
            let (d_in, d_out) = (shape[0], shape[1]);
            *v = transpose(v, d_in, d_out);
            *shape = vec![d_out, d_in];
        }
        if let Some(b) = &l.bias {
            self.tensor(format!("{prefix}.bias"), b.val())?;
        }
        Ok(())
    }
}

/// Options of [`save_model`].
#[derive(Debug, Clone)]
pub struct SaveOptions {
    pub dtype: SaveDtype,
    /// Shard above this many bytes of weights (HF's default is 5 GB).
    pub max_shard_bytes: usize,
    /// Copy tokenizer and generation files from here (usually the source model directory).
    pub side_files_from: Option<PathBuf>,
    /// Replace `out` if it exists (the old directory is removed only after the new one is
    /// complete).
    pub overwrite: bool,
}

impl Default for SaveOptions {
    fn default() -> Self {
        Self {
            dtype: SaveDtype::F32,
            max_shard_bytes: 5_000_000_000,
            side_files_from: None,
            overwrite: false,
        }
    }
}

/// Write `model` to `out` in HF layout (see the module docs).
pub fn save_model<B: FusedBackend>(
    model: &CausalLm<B>,
    config: &ModelConfig,
    out: &Path,
    opts: &SaveOptions,
) -> Result<()> {
    let tensors = named_tensors(model)?;
    save_tensors(tensors, config.to_json(opts.dtype.torch_name()), out, opts)
}

/// Write PPO's critic to `out` in HF layout, as transformers' `Qwen2ForSequenceClassification`
/// with one label (what TRL's `PPOTrainer` loads a value model as); `config` is the critic's.
pub fn save_value_model<B: FusedBackend>(
    critic: &ValueModel<B>,
    config: &ModelConfig,
    out: &Path,
    opts: &SaveOptions,
) -> Result<()> {
    let tensors = value_tensors(critic)?;
    let mut json = config.to_json(opts.dtype.torch_name());
    if let Some(m) = json.as_object_mut() {
        m.insert(
            "architectures".into(),
            serde_json::json!([config.family.sequence_classification]),
        );
        m.insert("id2label".into(), serde_json::json!({"0": "LABEL_0"}));
        m.insert("label2id".into(), serde_json::json!({"LABEL_0": 0}));
    }
    save_tensors(tensors, json, out, opts)
}

/// Write `tensors` and `config_json` to `out`, atomically (see the module docs).
fn save_tensors(
    tensors: NamedTensors,
    config_json: serde_json::Value,
    out: &Path,
    opts: &SaveOptions,
) -> Result<()> {
    if out.exists() && !opts.overwrite {
        return Err(Error::checkpoint(
            out,
            "already exists (pass overwrite to replace it)",
        ));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    crate::run::fsutil::remove_dead_siblings(out)?;
    let tmp = crate::run::fsutil::temp_sibling(out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    let result = write_dir(tensors, &config_json, &tmp, opts).and_then(|()| {
        // durable before it is published: every file, then the rename
        crate::run::fsutil::sync_tree(&tmp)?;
        if out.exists() {
            let old = parent.join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
            std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))
        } else {
            std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
        }
        .and_then(|()| crate::run::fsutil::sync_dir(out))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_dir(
    tensors: NamedTensors,
    config_json: &serde_json::Value,
    dir: &Path,
    opts: &SaveOptions,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (dtype, width) = match opts.dtype {
        SaveDtype::F32 => (Dtype::F32, 4),
        SaveDtype::Bf16 => (Dtype::BF16, 2),
    };
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(k, (v, shape))| {
            let bytes = match opts.dtype {
                SaveDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                SaveDtype::Bf16 => v
                    .iter()
                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                    .collect(),
            };
            (k, shape, bytes)
        })
        .collect();
    // Greedy sharding in key order, like `save_pretrained`.
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0;
    for (i, (_, _, b)) in encoded.iter().enumerate() {
        if size > 0 && size + b.len() > opts.max_shard_bytes {
            shards.push(Vec::new());
            size = 0;
        }
        size += b.len();
        if let Some(s) = shards.last_mut() {
            s.push(i);
        }
    }
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    let n = shards.len();
    let mut weight_map = serde_json::Map::new();
    for (si, shard) in shards.iter().enumerate() {
        let fname = if n == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{n:05}.safetensors", si + 1)
        };
        let views = shard
            .iter()
            .map(|&i| {
                let (k, shape, b) = &encoded[i];
                weight_map.insert(k.clone(), fname.clone().into());
                safetensors::tensor::TensorView::new(dtype, shape.clone(), b)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| {
                        Error::tensor(dir.join(&fname), k.as_str(), format!("tensor `{k}`: {e}"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let path = dir.join(&fname);
        safetensors::serialize_to_file(views, metadata.clone(), &path)
            .map_err(|e| Error::checkpoint(&path, format!("writing safetensors: {e}")))?;
    }
    if n > 1 {
        let total: usize = encoded
            .iter()
            .map(|(_, s, _)| s.iter().product::<usize>() * width)
            .sum();
        let index =
            serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        write_json(&dir.join("model.safetensors.index.json"), &index)?;
    }
    write_json(&dir.join("config.json"), config_json)?;
    if let Some(src) = &opts.side_files_from {
        for f in SIDE_FILES {
            let from = src.join(f);
            if from.is_file() {
                std::fs::copy(&from, dir.join(f)).map_err(|e| Error::io(&from, e))?;
            }
        }
    }
    Ok(())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::serialize("config.json", e))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}
