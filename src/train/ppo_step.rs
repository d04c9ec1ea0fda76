//! The update stage of a PPO step: the critic's values of the rollout, its advantages
//! (`algo::ppo::prepare`), then `num_ppo_epochs` passes over it, each shuffled into
//! `num_mini_batches` mini-batches, one optimizer step of the policy and the critic per
//! mini-batch (`algo::ppo::ppo_update`). Collect and score are GRPO's (`step.rs`).

use crate::fused::FusedAutodiffBackend;
use std::time::Instant;

use burn::module::AutodiffModule;

use super::setup::step_seed;
use super::step::Updated;
use super::trainer::Trainer;
use crate::algo::ppo::{
    mini_batches, ppo_update, prepare, sample_values, PpoConfig, PpoModels, PpoStats, PpoSums,
};
use crate::algo::Collected;
use crate::error::Result;
use crate::rl::grpo::UpdateStats;
use crate::rl::loss::LossMetrics;

impl<B: FusedAutodiffBackend> Trainer<'_, B> {
    /// PPO's settings from the run config.
    fn ppo_config(&self) -> PpoConfig {
        let cfg = self.cfg;
        PpoConfig {
            kl_coef: cfg.methods.ppo.kl_coef,
            kl_estimator: cfg.methods.ppo.kl_estimator,
            whiten_rewards: cfg.methods.ppo.whiten_rewards,
            gamma: cfg.methods.ppo.gamma,
            lam: cfg.methods.ppo.lam,
            cliprange: cfg.methods.ppo.cliprange,
            cliprange_value: cfg.methods.ppo.cliprange_value,
            vf_coef: cfg.methods.ppo.vf_coef,
            micro_batch: cfg.per_device_train_batch_size,
            max_grad_norm: cfg.optim.max_grad_norm,
            temperature: cfg.temperature,
            padding_free: cfg.padding_free,
        }
    }

    /// PPO's optimizer steps on the collected (and scored) rollout.
    pub(super) fn ppo_update(&mut self, got: &Collected) -> Result<Updated> {
        let (cfg, ppo) = (self.cfg, self.ppo_config());
        let Some(critic) = self.critic.as_mut() else {
            unreachable!("a PPO run has a critic")
        };
        let t0 = Instant::now();
        let steps_before = self.state.optimizer_steps;
        let main = &got.main;
        let values = sample_values(
            &critic.model().valid(),
            &main.experience,
            ppo.micro_batch,
            &self.device,
        )?;
        let batch = prepare(&main.experience, &main.rollout.totals(), values, &ppo)?;
        let all: Vec<usize> = (0..batch.samples.len()).collect();
        let active = batch.tokens(&all).max(1) as f32;
        let mut out = Updated {
            last: UpdateStats::default(),
            lr: 0.0,
            all_applied: true,
            secs: [t0.elapsed().as_secs_f64(), 0.0, 0.0],
            padding: Default::default(),
            ppo: None,
        };
        let (mut totals, mut steps) = (PpoSums::default(), 0.0f32);
        let mut value_lr = 0.0;
        let seed = step_seed(cfg.seed, self.state.step + 1);
        for epoch in 0..cfg.methods.ppo.num_ppo_epochs {
            let order = mini_batches(
                all.len(),
                cfg.methods.ppo.num_mini_batches,
                seed ^ epoch as u64,
            );
            for indices in order {
                let lr = self.schedule.lr(self.state.optimizer_steps);
                value_lr = lr * cfg.value_learning_rate() / cfg.optim.learning_rate;
                // the update owns both models (its optimizer steps update them in place)
                let (Some(policy), Some(model)) = (self.model.take(), critic.model.take()) else {
                    unreachable!("both models are back after every update")
                };
                let models = PpoModels {
                    policy,
                    critic: model,
                    policy_optim: &mut self.optim,
                    value_optim: &mut critic.optim,
                };
                let (policy, model, s) =
                    ppo_update(models, &batch, &indices, &ppo, (lr, value_lr), &self.device)?;
                self.model = Some(policy);
                critic.model = Some(model);
                self.state.optimizer_steps += 1;
                totals.add(&s.sums);
                steps += 1.0;
                out.all_applied &= s.applied;
                out.secs[0] += s.forward_secs;
                out.secs[1] += s.backward_secs;
                out.secs[2] += s.optimizer_secs;
                out.lr = lr;
                out.last = UpdateStats {
                    loss: s.sums.policy_loss + cfg.methods.ppo.vf_coef * s.sums.value_loss,
                    grad_norm: s.grad_norm,
                    applied: s.applied,
                    ..UpdateStats::default()
                };
            }
        }
        let tokens = totals.tokens.max(1.0);
        let o = batch.objective;
        let n = batch.samples.len() as f32;
        let stats = PpoStats {
            kl: o.kl,
            entropy: o.entropy,
            non_score_reward: o.non_score_reward,
            rlhf_reward: o.rlhf_reward(),
            scores: o.scores,
            approxkl: totals.policy[1] / tokens,
            clipfrac: totals.policy[0] / tokens,
            policy_entropy: totals.entropy / tokens,
            policy_loss: totals.policy_loss / steps.max(1.0),
            value_loss: totals.value_loss / steps.max(1.0),
            value_clipfrac: totals.value[0] / tokens,
            vpred: totals.value[1] / tokens,
            value_error: totals.value[2] / tokens,
            ratio: totals.policy[2] / tokens,
            value_learning_rate: value_lr,
        };
        // GRPO's keys where PPO has the same quantity: the KL per token, the entropy, the
        // clipped fraction of the policy's tokens
        out.last.metrics = LossMetrics {
            kl: o.kl * n / active,
            clip_region: stats.clipfrac,
            tokens,
            ..LossMetrics::default()
        };
        out.last.entropy = stats.policy_entropy;
        out.ppo = Some(stats);
        self.sync_reference(steps_before);
        Ok(out)
    }
}
