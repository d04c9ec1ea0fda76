//! The optimizer and learning-rate schedule keys, one struct shared by every trainer (GRPO,
//! MGRPO, iGRPO, PPO, RLOO and SFT), written at the top level of a config under TRL's names.

use serde::{Deserialize, Serialize};

use crate::error::KeyError;
use crate::rl::optim::AdamParams;
use crate::rl::schedule::SchedulerType;

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
        Ok(())
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
