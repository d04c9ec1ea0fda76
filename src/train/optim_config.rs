//! The optimizer and learning-rate schedule keys, one struct shared by every trainer (GRPO,
//! MGRPO, iGRPO, PPO, RLOO and SFT), written at the top level of a config under TRL's names.

use serde::{Deserialize, Serialize};

use crate::error::KeyError;
use crate::rl::optim::AdamParams;
use crate::rl::schedule::{Schedule, SchedulerType, Shape};

/// AdamW, the global-norm clip and the schedule (TRL's / transformers' `TrainingArguments`
/// names and defaults, but the learning rate: 1e-6 as in TRL's RL trainers; SFT's is 2e-5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub learning_rate: f64,
    pub adam_beta1: f32,
    pub adam_beta2: f32,
    pub adam_epsilon: f32,
    pub weight_decay: f32,
    pub lr_scheduler_type: SchedulerType,
    /// The schedule's own arguments (transformers' `lr_scheduler_kwargs`): `num_cycles`
    /// (`cosine`, `cosine_with_min_lr`, `cosine_with_restarts`), `min_lr` or `min_lr_rate`
    /// (`cosine_with_min_lr`, one of them required), `lr_end` and `power` (`polynomial`).
    pub lr_scheduler_kwargs: toml::Table,
    pub warmup_ratio: f64,
    pub warmup_steps: usize,
    /// Global-norm clip; 0 = off.
    pub max_grad_norm: f32,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-6,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            weight_decay: 0.0,
            lr_scheduler_type: SchedulerType::Linear,
            lr_scheduler_kwargs: toml::Table::new(),
            warmup_ratio: 0.0,
            warmup_steps: 0,
            max_grad_norm: 1.0,
        }
    }
}

impl OptimConfig {
    /// The defaults with another learning rate.
    pub fn with_learning_rate(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            ..Self::default()
        }
    }

    /// AdamW's hyper-parameters.
    pub fn adam(&self) -> AdamParams {
        AdamParams {
            beta1: self.adam_beta1,
            beta2: self.adam_beta2,
            epsilon: self.adam_epsilon,
            weight_decay: self.weight_decay,
        }
    }

    /// Why a key is unusable.
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if !positive(self.learning_rate) {
            return bad("learning_rate", "must be > 0");
        }
        for (key, v) in [
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
        ] {
            if !(0.0..1.0).contains(&v) {
                return bad(key, "must be in [0, 1)");
            }
        }
        if !positive(self.adam_epsilon as f64) {
            return bad("adam_epsilon", "must be > 0");
        }
        if !non_negative(self.weight_decay as f64) {
            return bad("weight_decay", "must be ≥ 0");
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return bad("warmup_ratio", "must be in [0, 1]");
        }
        if !non_negative(self.max_grad_norm as f64) {
            return bad("max_grad_norm", "must be ≥ 0 (0 turns clipping off)");
        }
        self.shape().map(|_| ())
    }

    /// The schedule over `total` optimizer steps.
    pub fn schedule(&self, total: usize) -> std::result::Result<Schedule, KeyError> {
        let s = Schedule::new(
            self.lr_scheduler_type,
            self.learning_rate,
            total,
            self.warmup_steps,
            self.warmup_ratio,
        );
        Ok(s.with_shape(self.shape()?))
    }

    /// `lr_scheduler_kwargs` read as the shape of `lr_scheduler_type`, with transformers' checks.
    fn shape(&self) -> std::result::Result<Shape, KeyError> {
        let kind = self.lr_scheduler_type;
        let key = |k: &str| format!("lr_scheduler_kwargs.{k}");
        let allowed = kind.kwargs();
        let number = |k: &str| -> std::result::Result<Option<f64>, KeyError> {
            match self.lr_scheduler_kwargs.get(k) {
                None => Ok(None),
                Some(v) => match v.as_float().or(v.as_integer().map(|i| i as f64)) {
                    Some(x) if x.is_finite() => Ok(Some(x)),
                    _ => Err(KeyError::new(key(k), "must be a finite number")),
                },
            }
        };
        if let Some(k) = self
            .lr_scheduler_kwargs
            .keys()
            .find(|k| !allowed.contains(&k.as_str()))
        {
            let takes = if allowed.is_empty() {
                "takes no arguments".to_string()
            } else {
                format!("takes {}", allowed.join(", "))
            };
            let kind = toml::Value::try_from(kind)
                .map(|v| v.to_string())
                .unwrap_or_default();
            return Err(KeyError::new(
                key(k),
                format!("not an argument of lr_scheduler_type = {kind} (it {takes})"),
            ));
        }
        let mut shape = Shape::default_for(kind);
        if let Some(n) = number("num_cycles")? {
            if n <= 0.0 || (kind == SchedulerType::CosineWithRestarts && n.fract() != 0.0) {
                return Err(KeyError::new(
                    key("num_cycles"),
                    "must be > 0 (a whole number of restarts for cosine_with_restarts)",
                ));
            }
            shape.num_cycles = n;
        }
        if kind == SchedulerType::CosineWithMinLr {
            shape.min_lr_rate = match (number("min_lr")?, number("min_lr_rate")?) {
                (Some(_), Some(_)) => {
                    return Err(KeyError::new(
                        key("min_lr"),
                        "set min_lr or min_lr_rate, not both",
                    ))
                }
                (Some(lr), None) if lr >= 0.0 => lr / self.learning_rate,
                (None, Some(rate)) if (0.0..=1.0).contains(&rate) => rate,
                (None, None) => {
                    return Err(KeyError::new(
                        "lr_scheduler_kwargs",
                        "cosine_with_min_lr needs min_lr or min_lr_rate (as transformers)",
                    ))
                }
                (Some(_), None) => return Err(KeyError::new(key("min_lr"), "must be ≥ 0")),
                (None, Some(_)) => {
                    return Err(KeyError::new(key("min_lr_rate"), "must be in [0, 1]"))
                }
            };
        }
        if let Some(end) = number("lr_end")? {
            shape.lr_end = end;
        }
        if let Some(power) = number("power")? {
            shape.power = power;
        }
        if kind == SchedulerType::Polynomial && self.learning_rate <= shape.lr_end {
            return Err(KeyError::new(
                key("lr_end"),
                format!(
                    "must be below learning_rate ({}), as transformers requires",
                    self.learning_rate
                ),
            ));
        }
        Ok(shape)
    }
}

/// A finite number above 0 (false for NaN).
pub(crate) fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A finite number at or above 0 (false for NaN).
pub(crate) fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}
