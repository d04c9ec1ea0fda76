//! AdamW with a **global-norm** gradient clip, and its state on disk.
//!
//! Burn's optimizers clip each tensor on its own; GRPO (like PyTorch's `clip_grad_norm_`)
//! scales every gradient by one factor, `max_norm / (‖g‖ + 1e-6)` when the norm of all
//! gradients together exceeds `max_norm`. [`FusedAdamW`] is Burn's `AdamW` (which matches
//! `torch.optim.AdamW`: decoupled decay `θ ← θ(1 − lr·wd)`, bias-corrected moments, ε outside the
//! square root) with the same state record, run as one fused operation per parameter
//! ([`FusedBackend::fused_adamw`]: one parallel pass on the CPU backends instead of eight
//! single-threaded ones) that multiplies the gradient by the clip's factor on the way.
//!
//! The optimizer state is keyed by Burn parameter ids, which are new every time a model is
//! loaded; on disk it is keyed by the parameter's position in the module instead, so a resumed
//! run finds its moments again.

use crate::fused::{AdamWStep, FusedAutodiffBackend, FusedBackend};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate, Optimizer, SimpleOptimizer,
};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder, RecorderError};

use crate::error::{Error, Result};
use crate::model::value::ValueModel;
use crate::model::CausalLm;

/// AdamW over the parameters of a module `M`.
pub type AdamWOf<M, B> = OptimizerAdaptor<FusedAdamW, M, B>;

/// The policy's optimizer.
pub type PolicyOptimizer<B> = AdamWOf<CausalLm<B>, B>;

/// PPO's critic's optimizer.
pub type ValueOptimizer<B> = AdamWOf<ValueModel<B>, B>;

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

/// A fresh AdamW (no per-tensor clipping: see [`step_scaled`]).
pub fn adamw<B: FusedAutodiffBackend, M: AutodiffModule<B>>(p: &AdamParams) -> AdamWOf<M, B> {
    OptimizerAdaptor::from(FusedAdamW::new(*p))
}

/// Burn's `AdamW` (no AMSGrad, no cautious decay) as [`FusedBackend::fused_adamw`], keeping
/// Burn's state type (`AdamWState`: the same record on disk), with a factor for the gradients
/// of the next step ([`step_scaled`]).
///
/// Weight decay applies to matrices only, as transformers' `Trainer` (through which TRL trains)
/// decays none of the parameters its `get_decay_parameter_names` leaves out — biases and norm
/// weights. In every family we build those are exactly the one-dimensional parameters (checked
/// against transformers' list in `tests/trl_parity.rs`).
#[derive(Debug)]
pub struct FusedAdamW {
    params: AdamParams,
    /// The f32 bits of the factor the next step multiplies every gradient by (1: none).
    grad_scale: AtomicU32,
}

impl FusedAdamW {
    pub fn new(params: AdamParams) -> Self {
        Self {
            params,
            grad_scale: AtomicU32::new(1.0f32.to_bits()),
        }
    }

    fn set_grad_scale(&self, factor: f32) {
        self.grad_scale.store(factor.to_bits(), Ordering::Relaxed);
    }

    fn grad_scale(&self) -> f32 {
        f32::from_bits(self.grad_scale.load(Ordering::Relaxed))
    }
}

impl Clone for FusedAdamW {
    fn clone(&self) -> Self {
        let c = Self::new(self.params);
        c.set_grad_scale(self.grad_scale());
        c
    }
}

impl<B: FusedBackend> SimpleOptimizer<B> for FusedAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let dims = tensor.dims();
        let n = dims.iter().product::<usize>();
        let (time, m, v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1.reshape([n]),
                s.momentum.moment_2.reshape([n]),
            ),
            None => {
                let zeros = || Tensor::<B, 1>::zeros([n], &tensor.device());
                (1, zeros(), zeros())
            }
        };
        let p = &self.params;
        let step = AdamWStep {
            lr: lr as f32,
            beta1: p.beta1,
            beta2: p.beta2,
            epsilon: p.epsilon,
            decay: match D {
                1 => 1.0,
                _ => (1.0 - lr * p.weight_decay as f64) as f32,
            },
            time: i32::try_from(time).unwrap_or(i32::MAX),
            grad_scale: self.grad_scale(),
        };
        let (tensor, m, v) = B::fused_adamw(tensor.reshape([n]), grad.reshape([n]), m, v, &step);
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: m.reshape(dims),
            moment_2: v.reshape(dims),
            max_moment_2: None,
        };
        (tensor.reshape(dims), Some(AdamWState { momentum }))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

/// `optim.step` with every gradient multiplied by `grad_scale` first (the global-norm clip's
/// [`clip_coefficient`]; 1 = the gradients as they are).
pub fn step_scaled<B: FusedAutodiffBackend, M: AutodiffModule<B>>(
    optim: &mut AdamWOf<M, B>,
    lr: f64,
    model: M,
    grads: GradientsParams,
    grad_scale: f32,
) -> M {
    optim.optim().set_grad_scale(grad_scale);
    let model = optim.step(lr, model, grads);
    optim.optim().set_grad_scale(1.0);
    model
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
                let n = g.shape().num_elements();
                let sq = B::InnerBackend::fused_sum_squares(g.reshape([n])); // [1]
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
    use crate::model::ModelConfig;
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
        let config = ModelConfig::new(20, 8, 16, 1, 2, 1, false);
        let model = CausalLm::<AB>::random(&config, &dev);
        let ids = Tensor::<AB, 2, Int>::from_data([[1, 2, 3]], &dev);
        let input = crate::model::ModelInput {
            input_ids: ids.clone(),
            positions: Tensor::from_data([[0, 1, 2]], &dev),
            padding: Tensor::from_data([[false, false, false]], &dev),
        };
        let loss = model.forward(&input).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
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
        assert!((norm as f64 - sq.sqrt()).abs() < 1e-6 * sq.sqrt());
    }

    /// Gradients of a loss that changes with the step, for the optimizer tests.
    fn grads_at(model: &CausalLm<AB>, step: usize) -> GradientsParams {
        let dev = Default::default();
        let input = crate::model::ModelInput {
            input_ids: Tensor::<AB, 2, Int>::from_data([[1, 2 + step as i64, 3]], &dev),
            positions: Tensor::from_data([[0, 1, 2]], &dev),
            padding: Tensor::from_data([[false, false, false]], &dev),
        };
        let loss = model.forward(&input).powf_scalar(2.0).sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// Every float parameter's rank and values, in visiting order.
    fn values(model: &CausalLm<AB>) -> Vec<(usize, Vec<f32>)> {
        struct V(Vec<(usize, Vec<f32>)>);
        impl ModuleVisitor<AB> for V {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<AB, D>>) {
                self.0.push((D, p.val().into_data().to_vec().unwrap()));
            }
        }
        let mut v = V(Vec::new());
        model.visit(&mut v);
        v.0
    }

    /// [`step_scaled`] (the clip's factor 0.3) against Burn's own `AdamW` stepping on gradients
    /// multiplied by 0.3 beforehand: the same parameters, and the same moments (the next steps
    /// would part otherwise) — three steps without weight decay. Burn decays every parameter,
    /// ours the matrices only, so with decay on (one step, from the same gradients) a matrix is
    /// held to Burn's decayed AdamW and a vector (norm weight, bias) to Burn's undecayed one.
    #[test]
    fn fused_adamw_is_burns_adamw_with_the_clip_folded_in() {
        for (weight_decay, steps) in [(0.0, 3), (0.1, 1)] {
            fused_adamw_against_burns(weight_decay, steps);
        }
    }

    fn fused_adamw_against_burns(weight_decay: f32, steps: usize) {
        use burn::optim::AdamWConfig;
        let dev = Default::default();
        let config = ModelConfig::new(20, 8, 16, 1, 2, 1, false);
        let start = CausalLm::<AB>::random(&config, &dev);
        let p = AdamParams {
            beta1: 0.9,
            beta2: 0.99,
            epsilon: 1e-8,
            weight_decay,
        };
        let mut ours = adamw::<AB, CausalLm<AB>>(&p);
        let burns = |wd: f32| {
            AdamWConfig::new()
                .with_beta_1(p.beta1)
                .with_beta_2(p.beta2)
                .with_epsilon(p.epsilon)
                .with_weight_decay(wd)
                .init::<AB, CausalLm<AB>>()
        };
        let (mut decayed, mut plain) = (burns(p.weight_decay), burns(0.0));
        let before = values(&start);
        let (mut a, mut b, mut c) = (start.clone(), start.clone(), start);
        let scaled = |m: &CausalLm<AB>, step| {
            let mut g = grads_at(m, step);
            struct Scale<'a>(&'a mut GradientsParams);
            impl ModuleVisitor<AB> for Scale<'_> {
                fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<AB, D>>) {
                    if let Some(g) = self.0.remove::<crate::TestBackend, D>(p.id) {
                        self.0.register(p.id, g.mul_scalar(0.3));
                    }
                }
            }
            m.visit(&mut Scale(&mut g));
            g
        };
        for step in 0..steps {
            let ga = grads_at(&a, step);
            a = step_scaled(&mut ours, 1e-2, a, ga, 0.3);
            let gb = scaled(&b, step);
            b = decayed.step(1e-2, b, gb);
            let gc = scaled(&c, step);
            c = plain.step(1e-2, c, gc);
        }
        let (va, vb, vc) = (values(&a), values(&b), values(&c));
        let moved = va
            .iter()
            .zip(&before)
            .flat_map(|(x, y)| x.1.iter().zip(&y.1));
        assert!(
            moved.filter(|(x, y)| x != y).count() > 100,
            "the steps moved the parameters"
        );
        assert!(va.iter().any(|(d, _)| *d == 1) && va.iter().any(|(d, _)| *d == 2));
        for (k, ((d, x), ((_, yb), (_, yc)))) in va.iter().zip(vb.iter().zip(&vc)).enumerate() {
            let y = if *d == 1 { yc } else { yb };
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-6 * y.abs().max(1.0),
                    "weight decay {weight_decay}: parameter {k} (rank {d}) value {i}: {x} vs {y}"
                );
            }
        }
    }

    /// The issue's hand case: with zero gradients, lr 1e-2 and weight decay 0.1, 100 steps
    /// leave a norm weight (a vector) at 1.0, as transformers' `Trainer` does, and shrink a
    /// matrix by (1 − 1e-3)^100 = 0.904792.
    #[test]
    fn weight_decay_spares_vectors() {
        let dev = Default::default();
        let opt = FusedAdamW::new(AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.1,
        });
        let mut v = Tensor::<crate::TestBackend, 1>::ones([4], &dev);
        let mut m = Tensor::<crate::TestBackend, 2>::ones([2, 2], &dev);
        let (mut sv, mut sm) = (None, None);
        for _ in 0..100 {
            let gv = Tensor::zeros([4], &dev);
            (v, sv) = SimpleOptimizer::step(&opt, 1e-2, v, gv, sv);
            let gm = Tensor::zeros([2, 2], &dev);
            (m, sm) = SimpleOptimizer::step(&opt, 1e-2, m, gm, sm);
        }
        let v: Vec<f32> = v.into_data().to_vec().unwrap();
        let m: Vec<f32> = m.into_data().to_vec().unwrap();
        assert_eq!(v, vec![1.0; 4]);
        for x in m {
            assert!((x - 0.999f32.powi(100)).abs() < 1e-5, "{x}");
        }
    }
}
