//! PPO (TRL's `PPOTrainer`): GRPO's rollout, per-token KL-penalised rewards, GAE over a
//! critic's values, the clipped policy and value losses (`update.rs` over `gae.rs` and
//! `loss.rs`). Its keys are TRL's `PPOConfig`'s, at the top level of the run config. The
//! trainer's side (the critic in a run, its update stage) is `train/critic.rs` and
//! `train/ppo_step.rs`.

mod gae;
mod loss;
mod update;

#[cfg(test)]
mod trl_tests;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use gae::KlEstimator;
pub use update::{mini_batches, ppo_update, prepare, sample_values, PpoConfig, PpoModels, PpoSums};

use super::SharedKeys;
use crate::error::KeyError;

/// PPO's keys (TRL's `PPOConfig` names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The per-token KL penalty's coefficient in the reward (0: no reference model).
    pub kl_coef: f32,
    /// `k1` (`log π − log π_ref`, TRL's default) or `k3`.
    pub kl_estimator: KlEstimator,
    /// The policy ratio's clip range.
    pub cliprange: f32,
    /// The value prediction's clip range around the value at rollout time.
    pub cliprange_value: f32,
    /// The value loss's weight (it only scales the critic's gradient, which has its own
    /// optimizer; it shows in the logged `loss`).
    pub vf_coef: f32,
    /// GAE's discount.
    pub gamma: f32,
    /// GAE's λ.
    pub lam: f32,
    /// Passes over each rollout.
    pub num_ppo_epochs: usize,
    /// Optimizer steps per pass: the rollout, shuffled, in this many mini-batches.
    pub num_mini_batches: usize,
    /// Whiten the per-token rewards over the batch before GAE.
    pub whiten_rewards: bool,
    /// The critic's starting point: an HF directory holding a value or reward model
    /// (`model.*` and `score.weight`, transformers' `…ForSequenceClassification`) or a causal
    /// LM (a fresh head then). Default: the policy's start, with a fresh head.
    pub value_model_path: Option<PathBuf>,
    /// The critic's learning rate (ours; default `learning_rate`), on the same schedule.
    pub value_learning_rate: Option<f64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            kl_coef: 0.05,
            kl_estimator: KlEstimator::K1,
            cliprange: 0.2,
            cliprange_value: 0.2,
            vf_coef: 0.1,
            gamma: 1.0,
            lam: 0.95,
            num_ppo_epochs: 4,
            num_mini_batches: 1,
            whiten_rewards: false,
            value_model_path: None,
            value_learning_rate: None,
        }
    }
}

impl Config {
    /// PPO's keys, and the GRPO keys that PPO replaces.
    pub fn validate(&self, s: &SharedKeys) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if s.num_devices > 1 || s.num_nodes > 1 {
            let key = if s.num_nodes > 1 {
                "num_nodes"
            } else {
                "num_devices"
            };
            return bad(
                key,
                "algorithm = \"ppo\" trains on one device (its critic is not data-parallel yet); \
                 set num_devices = 1 and num_nodes = 1",
            );
        }
        if s.beta != 0.0 {
            return bad(
                "beta",
                "is GRPO's KL term; PPO's KL penalty is in the reward (kl_coef): set beta = 0",
            );
        }
        if s.num_iterations != 1 {
            return bad(
                "num_iterations",
                "is GRPO's; PPO's passes over a rollout are num_ppo_epochs: set num_iterations = 1",
            );
        }
        if !(self.kl_coef.is_finite() && self.kl_coef >= 0.0) {
            return bad(
                "kl_coef",
                "must be ≥ 0 (0 = no KL penalty, no reference model)",
            );
        }
        for (key, v) in [
            ("cliprange", self.cliprange),
            ("cliprange_value", self.cliprange_value),
            ("vf_coef", self.vf_coef),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, "must be > 0");
            }
        }
        for (key, v) in [("gamma", self.gamma), ("lam", self.lam)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, "must be in [0, 1]");
            }
        }
        if self.num_ppo_epochs == 0 {
            return bad("num_ppo_epochs", "must be at least 1");
        }
        let rollout = s.completions_per_step;
        if self.num_mini_batches == 0 || self.num_mini_batches > rollout {
            return bad(
                "num_mini_batches",
                &format!("must be in 1..={rollout} (the completions of one rollout)"),
            );
        }
        if let Some(lr) = self.value_learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                return bad("value_learning_rate", "must be > 0");
            }
        }
        Ok(())
    }
}

/// What PPO measured in one step, under TRL's `PPOTrainer` names: `objective/*` over the
/// rollout (per-sequence sums averaged over sequences), the rest averaged over every
/// optimizer step of the step (`*_avg` over their tokens; the losses over the steps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PpoStats {
    #[serde(rename = "objective/kl")]
    pub kl: f32,
    #[serde(rename = "objective/entropy")]
    pub entropy: f32,
    #[serde(rename = "objective/non_score_reward")]
    pub non_score_reward: f32,
    #[serde(rename = "objective/rlhf_reward")]
    pub rlhf_reward: f32,
    #[serde(rename = "objective/scores")]
    pub scores: f32,
    #[serde(rename = "policy/approxkl_avg")]
    pub approxkl: f32,
    #[serde(rename = "policy/clipfrac_avg")]
    pub clipfrac: f32,
    #[serde(rename = "policy/entropy_avg")]
    pub policy_entropy: f32,
    #[serde(rename = "loss/policy_avg")]
    pub policy_loss: f32,
    #[serde(rename = "loss/value_avg")]
    pub value_loss: f32,
    #[serde(rename = "val/clipfrac_avg")]
    pub value_clipfrac: f32,
    /// Mean prediction of the critic over the trained tokens.
    #[serde(rename = "val/vpred")]
    pub vpred: f32,
    /// Mean squared error of the predictions against the returns.
    #[serde(rename = "val/error")]
    pub value_error: f32,
    /// Mean ratio π / π_old over the trained tokens.
    #[serde(rename = "val/ratio")]
    pub ratio: f32,
    /// The critic's learning rate (ours).
    pub value_learning_rate: f64,
}
