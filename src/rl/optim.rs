//! AdamW with a **global-norm** gradient clip, and its state on disk.
//!
//! Burn's optimizers clip each tensor on its own; GRPO (like PyTorch's `clip_grad_norm_`)
//! scales every gradient by one factor, `max_norm / (‖g‖ + 1e-6)` when the norm of all
//! gradients together exceeds `max_norm`. Burn's `AdamW` matches `torch.optim.AdamW` (decoupled
//! decay `θ ← θ(1 − lr·wd)`, bias-corrected moments, ε outside the square root).
//!
//! The optimizer state is keyed by Burn parameter ids, which are new every time a model is
//! loaded; on disk it is keyed by the parameter's position in the module instead, so a resumed
//! run finds its moments again.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use std::collections::HashMap;
use std::path::Path;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder, RecorderError};

use crate::error::{Error, Result};
use crate::model::value::Qwen2ForValue;
use crate::model::Qwen2ForCausalLM;

/// AdamW over the parameters of a module `M`.
pub type AdamWOf<M, B> = OptimizerAdaptor<AdamW, M, B>;

/// The policy's optimizer.
pub type PolicyOptimizer<B> = AdamWOf<Qwen2ForCausalLM<B>, B>;

/// PPO's critic's optimizer.
pub type ValueOptimizer<B> = AdamWOf<Qwen2ForValue<B>, B>;

type OptimizerRecord<M, B> = <AdamWOf<M, B> as Optimizer<M, B>>::Record;

/// AdamW's hyper-parameters (TRL's `adam_beta1`, `adam_beta2`, `adam_epsilon`,
/// `weight_decay`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    pub weight_decay: f32,
}

/// A fresh AdamW (no per-tensor clipping: see [`clip_global_norm`]).
pub fn adamw<B: FusedAutodiffBackend, M: AutodiffModule<B>>(p: &AdamParams) -> AdamWOf<M, B> {
    AdamWConfig::new()
        .with_beta_1(p.beta1)
        .with_beta_2(p.beta2)
        .with_epsilon(p.epsilon)
        .with_weight_decay(p.weight_decay)
        .init()
}

/// Ids of the float parameters of `module`, in visiting order (stable for a given model shape).
pub fn param_ids<B: FusedBackend, M: Module<B>>(module: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl<B: FusedBackend> ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut v = Ids(Vec::new());
    module.visit(&mut v);
    v.0
}

/// The L2 norm of all gradients together (one read-back).
pub fn global_grad_norm<B: FusedAutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f32 {
    struct Norm<'a, B: FusedAutodiffBackend> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: FusedAutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let sq = g.square().sum(); // [1]
                self.sum = Some(match self.sum.take() {
                    Some(s) => s + sq,
                    None => sq,
                });
            }
        }
    }
    let mut v = Norm::<B> { grads, sum: None };
    module.visit(&mut v);
    v.sum
        .map(|s| s.sqrt().into_scalar().elem::<f32>())
        .unwrap_or(0.0)
}

/// PyTorch's `clip_grad_norm_` factor: `max_norm / (norm + 1e-6)` when that is below 1, else 1
/// (and 1 when clipping is off, `max_norm ≤ 0`).
pub fn clip_coefficient(norm: f32, max_norm: f32) -> f32 {
    if max_norm > 0.0 && norm.is_finite() {
        (max_norm / (norm + 1e-6)).min(1.0)
    } else {
        1.0
    }
}

/// Multiply every gradient by `factor`.
pub fn scale_grads<B: FusedAutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    factor: f32,
) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f32,
    }
    impl<B: FusedAutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    module.visit::<Scale<'_>>(&mut Scale { grads, factor });
}

/// Clip `grads` to `max_norm` by their global norm; returns the norm before clipping.
pub fn clip_global_norm<B: FusedAutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f32,
) -> f32 {
    let norm = global_grad_norm(module, grads);
    let c = clip_coefficient(norm, max_norm);
    if c < 1.0 {
        scale_grads(module, grads, c);
    }
    norm
}

/// Save the optimizer's state, keyed by parameter position, to `path` (Burn's binary record
/// format; the recorder appends `.bin`).
pub fn save_optimizer<B: FusedAutodiffBackend, M: AutodiffModule<B>>(
    optim: &AdamWOf<M, B>,
    model: &M,
    path: &Path,
) -> Result<()> {
    let position: HashMap<ParamId, usize> = param_ids(model)
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let record: OptimizerRecord<M, B> = optim
        .to_record()
        .into_iter()
        .filter_map(|(id, r)| position.get(&id).map(|&i| (ParamId::from(i as u64), r)))
        .collect();
    BinFileRecorder::<FullPrecisionSettings>::new()
        .record(record, path.to_path_buf())
        .map_err(|e| {
            let file = path.with_extension("bin");
            tracing::debug!(file = %file.display(), error = ?e, "optimizer state not written");
            let raw = format!("{e:?}");
            let cause = io_message(&raw).unwrap_or("the recorder failed");
            Error::checkpoint(&file, format!("writing the optimizer state: {cause}"))
        })
}

/// Load a state written by [`save_optimizer`] for `model` (same shape) into `optim`.
pub fn load_optimizer<B: FusedAutodiffBackend, M: AutodiffModule<B>>(
    optim: AdamWOf<M, B>,
    model: &M,
    path: &Path,
    device: &B::Device,
) -> Result<AdamWOf<M, B>> {
    let ids = param_ids(model);
    let record: OptimizerRecord<M, B> = BinFileRecorder::<FullPrecisionSettings>::new()
        .load(path.to_path_buf(), device)
        .map_err(|e| unreadable(path, &e, "the optimizer state"))?;
    let mut remapped: OptimizerRecord<M, B> = Default::default();
    for (key, r) in record {
        let id = usize::try_from(key.val())
            .ok()
            .and_then(|i| ids.get(i))
            .ok_or_else(|| {
                Error::checkpoint(
                    path,
                    format!(
                        "optimizer state for parameter #{} but the model has {} parameters",
                        key.val(),
                        ids.len()
                    ),
                )
            })?;
        remapped.insert(*id, r);
    }
    Ok(optim.load_record(remapped))
}

/// Burn's recorder errors print as nested `Debug` strings; name the file (the recorder adds
/// `.bin`) and the cause in a sentence, keeping the raw error for `-vv`.
pub(crate) fn unreadable(path: &Path, e: &RecorderError, what: &str) -> Error {
    let file = path.with_extension("bin");
    tracing::debug!(file = %file.display(), error = ?e, "{what} unreadable");
    let raw = format!("{e:?}");
    let cause = match e {
        RecorderError::FileNotFound(_) => "the file is missing",
        _ if raw.contains("UnexpectedEof") || raw.contains("fill whole buffer") => {
            "the file ends early (truncated)"
        }
        _ => "it is not a record this version of mgrpo can read (corrupt, or written by another version)",
    };
    Error::checkpoint(&file, format!("cannot read {what}: {cause}"))
}

/// The OS's words in a recorder error's `Debug` text (`message: "File too large"`), escaped
/// once per level of nesting.
fn io_message(raw: &str) -> Option<&str> {
    let start = raw.find("message: ")? + "message: ".len();
    let rest = raw[start..].trim_start_matches(['\\', '"']);
    let end = rest.find(['\\', '"'])?;
    Some(&rest[..end]).filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Qwen2Config;
    use burn::backend::Autodiff;

    type AB = Autodiff<crate::TestBackend>;

    /// The OS's message is found at any depth of Debug escaping, and nothing else is taken
    /// for one.
    #[test]
    fn io_messages_are_unescaped() {
        let once = r#"Unknown("Io { inner: Os { code: 27, kind: FileTooLarge, message: \"File too large\" }, index: 9 }")"#;
        assert_eq!(io_message(once), Some("File too large"));
        let twice = r#"Unknown("OtherString(\"Io { inner: Error { kind: UnexpectedEof, message: \\\"failed to fill whole buffer\\\" } }\")")"#;
        assert_eq!(io_message(twice), Some("failed to fill whole buffer"));
        assert_eq!(io_message("Unknown(\"no message here\")"), None);
    }

    #[test]
    fn clip_coefficient_like_pytorch() {
        assert_eq!(clip_coefficient(0.5, 1.0), 1.0);
        assert!((clip_coefficient(4.0, 1.0) - 1.0 / (4.0 + 1e-6)).abs() < 1e-9);
        assert_eq!(clip_coefficient(4.0, 0.0), 1.0, "0 turns clipping off");
        assert_eq!(clip_coefficient(f32::NAN, 1.0), 1.0);
    }

    #[test]
    fn global_norm_is_over_all_tensors() {
        let dev = Default::default();
        let config = Qwen2Config::new(20, 8, 16, 1, 2, 1, false);
        let model = Qwen2ForCausalLM::<AB>::random(&config, &dev);
        let ids = Tensor::<AB, 2, Int>::from_data([[1, 2, 3]], &dev);
        let input = crate::model::ModelInput {
            input_ids: ids.clone(),
            positions: Tensor::from_data([[0, 1, 2]], &dev),
            padding: Tensor::from_data([[false, false, false]], &dev),
        };
        let loss = model.forward(&input).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        // by hand: sqrt of the sum of every gradient's squared entries
        let mut sq = 0.0f64;
        struct Sq<'a>(&'a GradientsParams, &'a mut f64);
        impl ModuleVisitor<AB> for Sq<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<AB, D>>) {
                if let Some(g) = self.0.get::<crate::TestBackend, D>(p.id) {
                    let v: Vec<f32> = g.into_data().to_vec().unwrap();
                    *self.1 += v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>();
                }
            }
        }
        model.visit(&mut Sq(&grads, &mut sq));
        let norm = global_grad_norm(&model, &grads);
        assert!((norm as f64 - sq.sqrt()).abs() < 1e-3 * sq.sqrt());
        let before = clip_global_norm(&model, &mut grads, norm / 4.0);
        assert_eq!(before, norm);
        let after = global_grad_norm(&model, &grads);
        assert!(
            (after - norm / 4.0).abs() < 1e-4 * norm,
            "{after} vs {}",
            norm / 4.0
        );
    }
}
