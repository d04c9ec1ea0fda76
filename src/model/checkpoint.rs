//! Loading safetensors checkpoints in HF layout (saving is in `save.rs`).
//!
//! Loading reads `config.json` and either `model.safetensors` or the shards listed in
//! `model.safetensors.index.json` (memory-mapped), accepts F32, BF16 and F16 tensors and casts
//! them to the run's float type. Every tensor the config implies must be present with the right
//! shape and nothing else may be (errors name the tensor and the file). HF `Linear` weights are
//! `[out, in]`; Burn's are `[in, out]`: the transpose happens here, on the host, so the device
//! tensors are contiguous.

use crate::fused::FusedBackend;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use super::causal_lm::{CausalLm, Decoder};
use super::config::ModelConfig;
use super::value::ValueModel;
use super::weights::{Init, WeightSource};
use crate::error::{Error, Result};

/// Load `dir` (an HF model directory) onto `device`.
pub fn load_model<B: FusedBackend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(ModelConfig, CausalLm<B>)> {
    let config = load_config(dir)?;
    let model = load_weights(dir, &config, device)?;
    Ok((config, model))
}

/// The validated `config.json` of `dir` (an HF model directory).
pub fn load_config(dir: &Path) -> Result<ModelConfig> {
    if !dir.is_dir() {
        return Err(Error::checkpoint(
            dir,
            "not a directory (expected an HF model directory)",
        ));
    }
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::checkpoint(
            &config_path,
            "missing (every HF model directory has one)",
        ));
    }
    ModelConfig::load(&config_path)
}

/// The weights of `dir` (an HF model directory whose config is `config`) onto `device`.
pub fn load_weights<B: FusedBackend>(
    dir: &Path,
    config: &ModelConfig,
    device: &B::Device,
) -> Result<CausalLm<B>> {
    if B::memory_is_host() {
        fits_in_memory(dir, config)?;
    }
    with_store(dir, |store| CausalLm::new(config, &mut (store, device)))
}

/// A model whose f32 weights alone exceed the machine's memory (RAM and swap) is refused
/// before anything is allocated, naming the sizes of `config.json` that make it so (a sparse
/// 100 KB file declaring a [200 M, 32] embedding used to abort allocating 25.6 GB).
fn fits_in_memory(dir: &Path, config: &ModelConfig) -> Result<()> {
    let Some(machine) = crate::run::machine::memory_bytes() else {
        return Ok(());
    };
    let bytes = config.num_params() as f64 * 4.0;
    if bytes <= machine {
        return Ok(());
    }
    let gib = crate::run::machine::gib;
    Err(Error::checkpoint(
        dir.join("config.json"),
        format!(
            "{} parameters (vocab_size {}, hidden_size {}, intermediate_size {}, \
             num_hidden_layers {}) need {:.1} GiB in f32, more than this machine's {:.1} GiB of \
             memory and swap",
            config.num_params(),
            config.vocab_size,
            config.hidden_size,
            config.intermediate_size,
            config.num_hidden_layers,
            gib(bytes),
            gib(machine)
        ),
    ))
}

/// Open the weights of `dir`, build something from them with `build`, and check that it used
/// every tensor (but the ignorable ones).
fn with_store<T>(dir: &Path, build: impl FnOnce(&mut TensorStore<'_>) -> Result<T>) -> Result<T> {
    let (files, origin, index) = weight_files(dir)?;
    let maps = files
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
            // SAFETY: the file is opened read-only and only read while the map lives; a file
            // truncated underneath us by another process is the one case mmap cannot guard.
            unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(p, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let parsed = maps
        .iter()
        .zip(&files)
        .map(|(m, p)| {
            SafeTensors::deserialize(m)
                .map_err(|e| Error::checkpoint(p, format!("not a valid safetensors file: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut store = TensorStore::new(&files, &parsed, origin, index)?;
    let built = build(&mut store)?;
    store.finish(dir)?;
    Ok(built)
}

/// PPO's critic from `dir`: an HF directory holding a value or reward model (`model.*` and
/// `score.weight` `[1, hidden]`, transformers' `Qwen2ForSequenceClassification` with one label)
/// or a causal LM, whose `lm_head` is dropped and which gets a fresh head drawn from `seed`
/// (see [`ValueModel::with_fresh_head`]). Its own `config.json` sizes it; its vocabulary must
/// cover the policy's (`vocab_size`).
pub fn load_value_model<B: FusedBackend>(
    dir: &Path,
    vocab_size: usize,
    seed: u64,
    device: &B::Device,
) -> Result<(ModelConfig, ValueModel<B>)> {
    let config = load_config(dir)?;
    if config.vocab_size < vocab_size {
        return Err(Error::checkpoint(
            dir.join("config.json"),
            format!(
                "vocab_size {} is smaller than the policy's {vocab_size}: the critic must read \
                 the policy's tokens",
                config.vocab_size
            ),
        ));
    }
    let critic = with_store(dir, |store| {
        let model = Decoder::new(&config, &mut (&mut *store, device))?;
        Ok(if store.tensors.contains_key("score.weight") {
            let d = config.hidden_size;
            let score = WeightSource::<B>::linear(&mut (store, device), "score", d, 1, false)?;
            ValueModel { model, score }
        } else {
            ValueModel::with_fresh_head(model, seed, device)
        })
    })?;
    Ok((config, critic))
}

/// The safetensors files of `dir`: the shards of the index, or `model.safetensors`; the file
/// that lists the tensors (the index or the single file); and the index's key → file map.
type WeightFiles = (Vec<PathBuf>, PathBuf, Option<HashMap<String, PathBuf>>);

fn weight_files(dir: &Path) -> Result<WeightFiles> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(&index, format!("invalid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::checkpoint(&index, "missing object `weight_map`"))?;
        let mut names: Vec<&str> = Vec::new();
        for (key, file) in map {
            let file = file.as_str().ok_or_else(|| {
                Error::checkpoint(
                    &index,
                    format!("weight_map entry `{key}` is not a file name"),
                )
            })?;
            if file.contains('/') || file.contains('\\') || file.contains("..") {
                return Err(Error::checkpoint(
                    &index,
                    format!("weight_map entry `{key}`: bad file name `{file}`"),
                ));
            }
            if !names.contains(&file) {
                names.push(file);
            }
        }
        names.sort_unstable();
        let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
        for (f, key) in files.iter().zip(&names) {
            if !f.is_file() {
                let user = map
                    .iter()
                    .find(|(_, v)| v.as_str() == Some(key))
                    .map(|(k, _)| k.as_str())
                    .unwrap_or("?");
                return Err(Error::checkpoint(
                    f,
                    format!("missing shard (listed in {} for `{user}`)", index.display()),
                ));
            }
        }
        let by_key = map
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|f| (k.clone(), dir.join(f))))
            .collect();
        return Ok((files, index, Some(by_key)));
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok((vec![single.clone()], single, None));
    }
    Err(Error::checkpoint(
        dir,
        "no model.safetensors or model.safetensors.index.json",
    ))
}

/// Every tensor of every file, by name, with bookkeeping of which ones were used.
struct TensorStore<'a> {
    tensors: HashMap<String, (&'a Path, safetensors::tensor::TensorView<'a>)>,
    used: HashSet<String>,
    /// Named in "missing tensor" errors: the index, or the single weights file.
    origin: PathBuf,
}

impl<'a> TensorStore<'a> {
    fn new(
        files: &'a [PathBuf],
        parsed: &'a [SafeTensors<'a>],
        origin: PathBuf,
        index: Option<HashMap<String, PathBuf>>,
    ) -> Result<Self> {
        let mut tensors = HashMap::new();
        for (path, st) in files.iter().zip(parsed) {
            for (name, view) in st.iter() {
                if let Some((other, _)) = tensors.insert(name.to_string(), (path.as_path(), view)) {
                    return Err(Error::tensor(
                        path,
                        name,
                        format!("tensor `{name}` also appears in {}", other.display()),
                    ));
                }
            }
        }
        if let Some(index) = index {
            for (key, file) in &index {
                match tensors.get(key) {
                    Some((p, _)) if *p == file.as_path() => {}
                    Some((p, _)) => {
                        return Err(Error::tensor(
                            &origin,
                            key,
                            format!(
                                "lists `{key}` in {} but it is in {}",
                                file.display(),
                                p.display()
                            ),
                        ))
                    }
                    None => {
                        return Err(Error::tensor(
                            file,
                            key,
                            format!("missing tensor `{key}` (listed in {})", origin.display()),
                        ))
                    }
                }
            }
        }
        Ok(Self {
            tensors,
            used: HashSet::new(),
            origin,
        })
    }

    /// The tensor `key` as f32 values in its HF layout, checked against `shape`.
    fn take(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let Some((path, view)) = self.tensors.get(key) else {
            return Err(Error::tensor(
                &self.origin,
                key,
                format!("missing tensor `{key}` (expected shape {shape:?})"),
            ));
        };
        if view.shape() != shape {
            return Err(Error::tensor(
                *path,
                key,
                format!(
                    "tensor `{key}` has shape {:?}, expected {shape:?} from config.json",
                    view.shape()
                ),
            ));
        }
        let bytes = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::tensor(
                    *path,
                    key,
                    format!(
                        "tensor `{key}` has dtype {other:?}; only F32, BF16 and F16 are supported"
                    ),
                ))
            }
        };
        // NaN or ±inf weights would decode to text with null log-probs and train to NaN
        let bad = values.iter().filter(|x| !x.is_finite()).count();
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::tensor(
                *path,
                key,
                format!(
                    "tensor `{key}` holds {bad} non-finite value(s) (the first, at flat index \
                     {i}, is {}): the checkpoint is corrupt or comes from a diverged run",
                    values[i]
                ),
            ));
        }
        self.used.insert(key.to_string());
        Ok(values)
    }

    /// Fail on tensors that the config does not account for.
    fn finish(self, dir: &Path) -> Result<()> {
        let mut extra: Vec<(&String, &Path)> = self
            .tensors
            .iter()
            .filter(|(k, _)| !self.used.contains(*k) && !ignorable(k))
            .map(|(k, (p, _))| (k, *p))
            .collect();
        extra.sort();
        match extra.first() {
            None => Ok(()),
            Some((key, path)) => Err(Error::tensor(
                *path,
                key.as_str(),
                format!(
                    "unexpected tensor `{key}` ({} unexpected in all) — does config.json in {} match these weights?",
                    extra.len(),
                    dir.display()
                ),
            )),
        }
    }
}

/// Tensors that HF checkpoints may carry and that are derived, not learned: rotary buffers of
/// old exports, and `lm_head.weight` written next to a tied embedding.
fn ignorable(key: &str) -> bool {
    key.ends_with("rotary_emb.inv_freq") || key == "lm_head.weight"
}

pub(crate) fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// A parameter of `shape` from host values.
fn param<B: FusedBackend, const D: usize>(
    v: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
}

impl<B: FusedBackend> WeightSource<B> for (&mut TensorStore<'_>, &B::Device) {
    fn matrix(&mut self, key: &str, _: Init, shape: [usize; 2]) -> Result<Param<Tensor<B, 2>>> {
        Ok(param(self.0.take(key, &shape)?, shape, self.1))
    }

    fn vector(&mut self, key: &str, _: Init, n: usize) -> Result<Param<Tensor<B, 1>>> {
        Ok(param(self.0.take(key, &[n])?, [n], self.1))
    }

    fn linear_weight(
        &mut self,
        key: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Param<Tensor<B, 2>>> {
        let w = self.0.take(key, &[d_out, d_in])?;
        Ok(param(transpose(&w, d_out, d_in), [d_in, d_out], self.1)) // [in, out]
    }
}
