//! LoRA on a whole model: attach fresh adapters to the targeted projections, merge them into
//! the weights, and save or load them in PEFT's layout (the adapter layer itself is `lora.rs`).

use crate::fused::FusedBackend;
use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::causal_lm::CausalLm;
use super::checkpoint::transpose;
use super::lora::{LoraAdapter, LoraConfig};
use super::precision::like;
use crate::error::{Error, Result};
use crate::fused::tensor::read_back;
use crate::run::fsutil::write_atomic;

/// Each adapter slot of `model` with its HF key prefix, its projection name and its linear
/// layer, in checkpoint order (the projections are listed by their modules).
fn slots<B: FusedBackend>(
    model: &mut CausalLm<B>,
) -> impl Iterator<
    Item = (
        String,
        &'static str,
        &mut Linear<B>,
        &mut Option<LoraAdapter<B>>,
    ),
> {
    model
        .model
        .layers
        .iter_mut()
        .enumerate()
        .flat_map(|(i, l)| {
            let attn = l
                .self_attn
                .projections_mut()
                .map(move |(name, linear, slot)| {
                    (
                        format!("model.layers.{i}.self_attn.{name}"),
                        name,
                        linear,
                        slot,
                    )
                });
            let mlp = l.mlp.projections_mut().map(move |(name, linear, slot)| {
                (format!("model.layers.{i}.mlp.{name}"), name, linear, slot)
            });
            attn.into_iter().chain(mlp)
        })
}

impl<B: FusedBackend> CausalLm<B> {
    /// Freeze every weight and attach fresh adapters to the targeted projections (`A` drawn
    /// from `seed`, host-side, so the start does not depend on the backend).
    pub fn with_lora(self, cfg: &LoraConfig, seed: u64, device: &B::Device) -> Self {
        let mut m = self.no_grad();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x10_4A);
        for (_, name, linear, slot) in slots(&mut m) {
            if !cfg.targets.iter().any(|t| t == name) {
                continue;
            }
            let [d_in, d_out] = linear.weight.dims();
            let bound = 1.0 / (d_in as f32).sqrt();
            let a: Vec<f32> = (0..d_in * cfg.r)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            *slot = Some(LoraAdapter {
                lora_a: Param::from_tensor(Tensor::from_data(
                    TensorData::new(a, [d_in, cfg.r]),
                    device,
                )),
                lora_b: Param::from_tensor(Tensor::zeros([cfg.r, d_out], device)),
                scale: cfg.scale(),
            });
        }
        m
    }

    /// Whether any adapter is attached.
    pub fn has_lora(&self) -> bool {
        // a module clone shares its tensors: nothing is copied
        let mut m = self.clone();
        let any = slots(&mut m).any(|(_, _, _, slot)| slot.is_some());
        any
    }

    /// Fold every adapter into its weight (`W + (α/r)·A·B`) and drop it: a plain model.
    pub fn merge_lora(mut self) -> Self {
        for (_, _, linear, slot) in slots(&mut self) {
            if let Some(a) = slot.take() {
                let delta = a.delta();
                linear.weight = linear
                    .weight
                    .clone()
                    .map(|w| (w.clone() + like(delta, w.dtype())).detach());
            }
        }
        self
    }
}

fn peft_key(prefix: &str, ab: &str) -> String {
    format!("base_model.model.{prefix}.lora_{ab}.weight")
}

/// Write `model`'s adapters to `dir` in PEFT's layout (atomically per file).
pub fn save_adapter<B: FusedBackend>(
    model: &CausalLm<B>,
    cfg: &LoraConfig,
    base: &Path,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let read = |t: Tensor<B, 2>, key: &str| read_back(t, &format!("`{key}`"));
    let mut model = model.clone();
    for (prefix, _, _, slot) in slots(&mut model) {
        if let Some(a) = slot.as_ref() {
            let [d_in, r] = a.lora_a.dims();
            let [_, d_out] = a.lora_b.dims();
            let (ka, kb) = (peft_key(&prefix, "A"), peft_key(&prefix, "B"));
            let va = transpose(&read(a.lora_a.val(), &ka)?, d_in, r); // [r, in]
            let vb = transpose(&read(a.lora_b.val(), &kb)?, r, d_out); // [out, r]
            let bytes = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect();
            tensors.push((ka, vec![r, d_in], bytes(va)));
            tensors.push((kb, vec![d_out, r], bytes(vb)));
        }
    }
    let views = tensors
        .iter()
        .map(|(k, shape, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| {
                    let path = dir.join("adapter_model.safetensors");
                    Error::tensor(path, k.as_str(), format!("adapter tensor `{k}`: {e}"))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    let bytes =
        safetensors::serialize(views, metadata).map_err(|e| Error::serialize("the adapter", e))?;
    write_atomic(&dir.join("adapter_model.safetensors"), &bytes)?;
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base.to_string_lossy(),
        "r": cfg.r,
        "lora_alpha": cfg.alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": cfg.targets,
        "fan_in_fan_out": false,
        "inference_mode": true,
    });
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| Error::serialize("adapter_config.json", e))?;
    write_atomic(&dir.join("adapter_config.json"), text.as_bytes())
}

/// Set the adapters of `model` (attached with [`CausalLm::with_lora`] and the same
/// config) to those saved in `dir` by [`save_adapter`]. Errors name the file and the tensor.
pub fn load_adapter<B: FusedBackend>(
    mut model: CausalLm<B>,
    dir: &Path,
    device: &B::Device,
) -> Result<CausalLm<B>> {
    let path = dir.join("adapter_model.safetensors");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::checkpoint(&path, format!("not a safetensors file: {e}")))?;
    let get = |key: &str, rows: usize, cols: usize| -> Result<Vec<f32>> {
        let t = st
            .tensor(key)
            .map_err(|_| Error::tensor(&path, key, format!("no tensor `{key}`")))?;
        if t.dtype() != safetensors::Dtype::F32 || t.shape() != [rows, cols] {
            return Err(Error::tensor(
                &path,
                key,
                format!(
                    "`{key}` is {:?} {:?}, expected F32 [{rows}, {cols}]",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let mut seen = 0;
    for (prefix, _, _, slot) in slots(&mut model) {
        let Some(a) = slot.as_mut() else { continue };
        let [d_in, r] = a.lora_a.dims();
        let [_, d_out] = a.lora_b.dims();
        let va = transpose(&get(&peft_key(&prefix, "A"), r, d_in)?, r, d_in);
        let vb = transpose(&get(&peft_key(&prefix, "B"), d_out, r)?, d_out, r);
        let set = |p: &Param<Tensor<B, 2>>, v: Vec<f32>, shape: [usize; 2]| {
            p.clone()
                .map(|_| Tensor::from_data(TensorData::new(v, shape), device).require_grad())
        };
        a.lora_a = set(&a.lora_a, va, [d_in, r]);
        a.lora_b = set(&a.lora_b, vb, [r, d_out]);
        seen += 2;
    }
    if seen != st.len() {
        return Err(Error::checkpoint(
            &path,
            format!(
                "{} tensors, but the model's adapters (lora_target_modules) take {seen}",
                st.len()
            ),
        ));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lora::LORA_TARGETS;
    use crate::model::{ModelConfig, ModelInput, Precision};
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;

    type AB = Autodiff<crate::TestBackend>;

    fn input<B: FusedBackend>(dev: &B::Device) -> ModelInput<B> {
        ModelInput {
            input_ids: Tensor::from_data([[1, 5, 3, 7], [2, 2, 9, 4]], dev),
            positions: Tensor::from_data([[0, 1, 2, 3], [0, 1, 2, 3]], dev),
            padding: Tensor::from_data([[false; 4], [false; 4]], dev),
        }
    }

    fn values<B: FusedBackend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().convert::<f32>().into_vec().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn cfg(targets: &[&str]) -> LoraConfig {
        LoraConfig {
            r: 3,
            alpha: 6.0,
            targets: targets.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Non-zero `B`s, as after some training.
    fn trained<B: FusedBackend>(m: CausalLm<B>, dev: &B::Device) -> CausalLm<B> {
        let mut m = m;
        for (_, _, _, slot) in slots(&mut m) {
            if let Some(a) = slot.as_mut() {
                let [r, out] = a.lora_b.dims();
                let v: Vec<f32> = (0..r * out)
                    .map(|i| ((i * 7) % 11) as f32 / 20.0 - 0.25)
                    .collect();
                a.lora_b = a
                    .lora_b
                    .clone()
                    .map(|_| Tensor::from_data(TensorData::new(v, [r, out]), dev).require_grad());
            }
        }
        m
    }

    /// Adapters start as the base model (B = 0); only they are trainable; with trained `B`s the
    /// output equals the merged model's, and the adapters survive `valid` and `to_precision`.
    #[test]
    fn adapters_start_at_the_base_and_merge_exactly() {
        let dev = Default::default();
        let config = ModelConfig::new(12, 8, 16, 2, 2, 1, true);
        let base = CausalLm::<AB>::random(&config, &dev);
        let x = input::<AB>(&dev);
        let want = values(base.forward(&x));
        let l = base.clone().with_lora(&cfg(&LORA_TARGETS), 1, &dev);
        assert!(l.has_lora() && !base.has_lora());
        assert_eq!(max_diff(&values(l.forward(&x)), &want), 0.0);
        // one gradient step's worth of structure: gradients reach the adapters only
        let grads = l.forward(&x).sum().backward();
        let gp = burn::optim::GradientsParams::from_grads(grads, &l);
        assert_eq!(gp.len(), 2 * 7 * 2, "A and B of 7 projections × 2 layers");
        // r · (in + out): q (8 → 8), k and v (8 → 4), o (8 → 8), gate/up/down (8 ↔ 16)
        assert_eq!(
            cfg(&LORA_TARGETS).num_params(&config),
            2 * 3 * (2 * (8 + 8) + 2 * (8 + 4) + 3 * (8 + 16))
        );

        let t = trained(l, &dev);
        let out = values(t.forward(&x));
        assert!(
            max_diff(&out, &want) > 1e-3,
            "trained adapters must change the output"
        );
        let merged = t.clone().merge_lora();
        assert!(!merged.has_lora());
        assert!(max_diff(&values(merged.forward(&x)), &out) < 1e-5);
        let inner = t.valid().to_precision(Precision::F32);
        assert!(inner.has_lora());
        let xi = input::<crate::TestBackend>(&dev);
        // within rounding: the inner backend's few-row products run the CPU linear kernel,
        // autodiff's go through `gemm`
        assert!(max_diff(&values(inner.forward(&xi)), &out) < 1e-5);
    }

    /// PEFT's layout on disk, read back into a fresh attachment: the same outputs; a file for
    /// other targets is refused, naming the tensor.
    #[test]
    fn adapter_round_trip() {
        let dev = Default::default();
        let config = ModelConfig::new(12, 8, 16, 2, 2, 1, false);
        let base = CausalLm::<AB>::random(&config, &dev);
        let c = cfg(&["q_proj", "v_proj", "down_proj"]);
        let t = trained(base.clone().with_lora(&c, 1, &dev), &dev);
        let tmp = tempfile::tempdir().unwrap();
        save_adapter(&t, &c, Path::new("base"), tmp.path()).unwrap();
        let cfg_json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.path().join("adapter_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg_json["r"], 3);
        assert_eq!(cfg_json["peft_type"], "LORA");
        let bytes = std::fs::read(tmp.path().join("adapter_model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), 2 * 3 * 2);
        let a = st
            .tensor("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight")
            .unwrap();
        assert_eq!(a.shape(), [3, 16], "lora_A is [r, in]");
        let fresh = base.clone().with_lora(&c, 99, &dev);
        let back = load_adapter(fresh, tmp.path(), &dev).unwrap();
        let x = input::<AB>(&dev);
        assert_eq!(
            max_diff(&values(back.forward(&x)), &values(t.forward(&x))),
            0.0
        );
        let other = base.with_lora(&cfg(&["k_proj"]), 1, &dev);
        let err = load_adapter(other, tmp.path(), &dev)
            .unwrap_err()
            .to_string();
        assert!(err.contains("k_proj.lora_A.weight"), "{err}");
    }

    /// Trained alone (AdamW on the adapters, the weights frozen), the adapters fit a target
    /// the base model gets wrong, and the base weights do not move.
    #[test]
    fn adapters_alone_learn() {
        use burn::optim::{GradientsParams, Optimizer};
        let dev = Default::default();
        let config = ModelConfig::new(12, 8, 16, 2, 2, 1, true);
        <AB as Backend>::seed(&dev, 7);
        let base = CausalLm::<AB>::random(&config, &dev);
        let mut m = base.clone().with_lora(&cfg(&LORA_TARGETS), 1, &dev);
        let x = input::<AB>(&dev);
        // target: token (3 · position + row) mod 12 after every position
        let target: Vec<i64> = (0..8).map(|i| ((i % 4) * 3 + i / 4) as i64 % 12).collect();
        let target = Tensor::<AB, 2, Int>::from_data(TensorData::new(target, [2, 4]), &dev);
        let nll = |m: &CausalLm<AB>| {
            let logp = burn::tensor::activation::log_softmax(m.forward(&x), 2); // [2, 4, V]
            logp.gather(2, target.clone().unsqueeze_dim(2)).mean().neg()
        };
        let mut optim = crate::rl::optim::adamw::<AB, _>(&crate::rl::optim::AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        });
        let start = values(nll(&m))[0];
        for _ in 0..60 {
            let grads = GradientsParams::from_grads(nll(&m).backward(), &m);
            m = optim.step(3e-2, m, grads);
        }
        let end = values(nll(&m))[0];
        assert!(end < 0.5 * start, "nll {start} → {end}");
        let frozen = |m: &CausalLm<AB>| {
            let l = &m.model.layers[1];
            let mut v = values(l.self_attn.q_proj.weight.val());
            v.extend(values(m.model.embed_tokens.weight.val()));
            v.extend(values(l.post_attention_layernorm.weight.val()));
            v
        };
        assert_eq!(frozen(&m), frozen(&base));
    }
}
