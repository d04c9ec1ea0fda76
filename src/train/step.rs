//! One training step as its stages: draw the step's problems → **collect** the rollouts
//! (`algo::collect`, the method's folder) → **score** the experience (old and reference log-probs,
//! [`crate::rl::experience::score`]) → **update** the policy (`num_iterations` passes, each
//! `steps_per_generation / gradient_accumulation_steps` optimizer steps over every device;
//! PPO: `ppo_step.rs`) → **metrics** built from the stages' outputs → **log**.

use crate::fused::FusedAutodiffBackend;
use crate::rl::logprobs::Layout;
use std::rc::Rc;
use std::time::Instant;

use burn::module::AutodiffModule;

use super::completions::log_completions;
use super::order::step_problems;
use super::setup::step_seed;
use super::trainer::Trainer;
use crate::algo::ppo::PpoStats;
use crate::algo::{self, Collected, StepInput};
use crate::data::Problem;
use crate::error::{Error, Result};
use crate::metrics::tensorboard::numbers;
use crate::metrics::{RewardFuncStats, StepMetrics};
use crate::rl::batching::Padding;
use crate::rl::experience::{score, Scorers};
use crate::rl::grpo::{rollout_slices, slice_parts, Part, UpdateStats};
use crate::rl::loss::LossType;
use crate::rl::policy::Policy;
use crate::rl::reference::mix_into_reference;
use crate::rl::shards::ParallelSampler;

/// What the update stage did over its optimizer steps.
pub(super) struct Updated {
    /// The last optimizer step's statistics.
    pub last: UpdateStats,
    /// Its learning rate.
    pub lr: f64,
    /// Every optimizer step was applied (none skipped as non-finite).
    pub all_applied: bool,
    /// Forward, backward and optimizer seconds over all of them.
    pub secs: [f64; 3],
    /// The padding their micro-batches computed (GRPO updates).
    pub padding: Padding,
    /// PPO's statistics.
    pub ppo: Option<PpoStats>,
}

/// Wall-clock seconds of the stages.
struct Timings {
    generation: f64,
    scoring: f64,
    start: Instant,
}

impl<B: FusedAutodiffBackend> Trainer<'_, B> {
    /// Take the next step: collect → score → update → metrics → log. Returns its metrics
    /// line (already appended to `metrics.jsonl`).
    pub fn step(&mut self) -> Result<StepMetrics> {
        let start = Instant::now();
        let step = self.state.step + 1;
        let picks = step_problems(
            self.setup.dataset.len(),
            self.cfg.prompts_per_step(),
            self.state.data_position,
            self.cfg.seed,
            self.cfg.shuffle_dataset,
        );
        let setup = Rc::clone(&self.setup);
        let problems: Vec<&Problem> = picks.iter().map(|&i| &setup.dataset.problems[i]).collect();
        let prompts: Vec<Vec<u32>> = picks.iter().map(|&i| setup.prompts[i].clone()).collect();

        // collect: sample with the policy as it is now (π_old), one shard per device
        let sampler = ParallelSampler {
            shards: self.dp.policies(self.model(), self.precision),
            config: &setup.model_config,
            tokenizer: &setup.tokenizer,
            gen: self.gen.clone(),
            gather: self.dp.gather(),
            pools: self.dp.pools(),
        };
        let mut policy = Policy::new(sampler, &setup.template, &setup.tokenizer, &self.cfg.reward)?;
        let seed = step_seed(self.cfg.seed, step);
        let shared = self.cfg.shared(setup.model_config.max_position_embeddings);
        let cfg = self.cfg;
        let input = StepInput {
            problems: &problems,
            prompts,
            seed,
        };
        let mut got = algo::collect(cfg.algorithm, &cfg.methods, &shared, &mut policy, input)?;
        let generation = start.elapsed().as_secs_f64();

        // score: the log-probs the objective compares against, before any update
        let t_score = Instant::now();
        let ppo = self.critic.is_some();
        let scorers = Scorers {
            // PPO's rewards and ratios, and RLOO's KL in the reward, need π_old even with one
            // update per rollout
            old: (self.cfg.updates_per_step() > 1 || ppo || got.after_score.is_some())
                .then(|| policy.sampler.leader()),
            reference: self.reference.as_ref(),
            temperature: self.cfg.temperature,
        };
        for exp in got.experiences_mut() {
            score(
                exp,
                &scorers,
                self.update.micro_batch,
                self.update.group_by_length,
                Layout::padding_free(self.update.padding_free),
                &self.device,
            )?;
        }
        got.finish_scoring();
        let reward_funcs = RewardFuncStats(policy.reward.stats(&got.main.rollout.rewards));
        let reward_names = policy.reward.names();
        drop(policy);
        let scoring = t_score.elapsed().as_secs_f64();

        let updated = match ppo {
            true => self.ppo_update(&got)?,
            false => self.update(&got)?,
        };
        let timings = Timings {
            generation,
            scoring,
            start,
        };
        got.record_update(&updated.last.part_losses, updated.ppo);
        let mut m = self.advance(&got, &updated, timings);
        m.reward_funcs = reward_funcs;
        self.metrics.append(&m)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            let line = serde_json::to_value(&m).map_err(|e| Error::serialize("the metrics", e))?;
            tb.scalars(step, &numbers(&line))?;
        }
        if self.cfg.log_completions {
            log_completions(&got, &self.completions, step, &problems, &reward_names)?;
        }
        Ok(m)
    }

    /// The optimizer steps on the collected experience: `num_iterations` passes, each over
    /// the `steps_per_generation / gradient_accumulation_steps` slices of the rollout in turn
    /// (TRL's order). Every slice is one optimizer step, normalised by its own counts — but for
    /// `dapo`/`cispo`'s token count, which is the whole rollout's per step, as TRL divides
    /// every step by `num_items_in_batch · gradient_accumulation_steps / steps_per_generation`.
    fn update(&mut self, got: &Collected) -> Result<Updated> {
        let parts = got.parts();
        let n = self.cfg.optimizer_steps_per_generation();
        let sliced = match n {
            0 | 1 => Vec::new(),
            _ => rollout_slices(&parts, n),
        };
        let batches: Vec<Vec<Part<'_>>> = match n {
            0 | 1 => vec![parts],
            _ => sliced.iter().map(|s| slice_parts(&parts, s, n)).collect(),
        };
        let mut out = Updated {
            last: UpdateStats::default(),
            lr: 0.0,
            all_applied: true,
            secs: [0.0; 3],
            padding: Padding::default(),
            ppo: None,
        };
        for parts in (0..self.cfg.num_iterations).flat_map(|_| &batches) {
            let lr = self.schedule.lr(self.state.optimizer_steps);
            // the update owns the policy (its optimizer step updates the weights in place)
            let Some(model) = self.model.take() else {
                unreachable!("the policy is back after every update")
            };
            let (next, u) = self
                .dp
                .update(model, &mut self.optim, parts, &self.update, lr)?;
            self.model = Some(next);
            self.state.optimizer_steps += 1;
            self.sync_reference(self.state.optimizer_steps - 1);
            out.all_applied &= u.applied;
            out.secs[0] += u.forward_secs;
            out.secs[1] += u.backward_secs;
            out.secs[2] += u.optimizer_secs;
            out.padding.add(u.padding);
            out.lr = lr;
            out.last = u;
        }
        Ok(out)
    }

    /// `sync_ref_model`: when the optimizer steps since `before` reached a multiple of
    /// `ref_model_sync_steps` (TRL's `global_step`, counted from 1), move the reference towards
    /// the policy. GRPO asks after every optimizer step, so with several updates per rollout a
    /// sync can fall between two of them, as in TRL; PPO (which TRL's `PPOTrainer` does not
    /// sync) asks once after its epochs.
    pub(super) fn sync_reference(&mut self, before: usize) {
        let cfg = self.cfg;
        let (every, after) = (cfg.ref_model_sync_steps.max(1), self.state.optimizer_steps);
        if !cfg.sync_ref_model || after / every == before / every {
            return;
        }
        if let Some(reference) = self.reference.take() {
            let policy = self.model().valid();
            self.reference = Some(mix_into_reference(
                reference,
                &policy,
                cfg.ref_model_mixup_alpha,
            ));
        }
    }

    /// Move the trainer state past this step and build its metrics line from the stages'
    /// outputs.
    fn advance(&mut self, got: &Collected, u: &Updated, t: Timings) -> StepMetrics {
        let rows = self.setup.dataset.len();
        let s = &mut self.state;
        let (layer1_tokens, layer2_tokens) = got.tokens;
        let all_generated = layer1_tokens + layer2_tokens;
        s.step += 1;
        s.data_position += self.cfg.prompts_per_step();
        s.epoch = s.data_position / rows;
        s.num_tokens += all_generated as u64;
        s.nonfinite_in_a_row = if u.all_applied {
            0
        } else {
            s.nonfinite_in_a_row + 1
        };
        let main = &got.main;
        let (roll, adv) = (&main.rollout, &main.adv);
        let lengths: Vec<usize> = roll.completions.iter().map(|c| c.ids.len()).collect();
        let generated: usize = lengths.iter().sum();
        let n = lengths.len().max(1) as f32;
        let truncated = roll.completions.iter().filter(|c| c.truncated()).count();
        let step_time = t.start.elapsed().as_secs_f64();
        let l = &u.last;
        StepMetrics {
            step: s.step,
            epoch: s.data_position as f64 / rows as f64,
            reward: adv.reward_mean,
            reward_std: adv.reward_std,
            frac_reward_zero_std: adv.frac_zero_std,
            accuracy: roll.accuracy(),
            format: roll.format_rate(),
            reward_funcs: RewardFuncStats::default(),
            mean_length: generated as f32 / n,
            min_length: lengths.iter().copied().min().unwrap_or(0),
            max_length: lengths.iter().copied().max().unwrap_or(0),
            clipped_ratio: truncated as f32 / n,
            kl: got.reward_kl.unwrap_or(l.metrics.kl),
            entropy: l.entropy,
            clip_low: l.metrics.clip_low,
            clip_high: l.metrics.clip_high,
            clip_region: l.metrics.clip_region,
            cispo_clip_ratio: (self.cfg.loss_type == LossType::Cispo)
                .then_some(l.metrics.clip_high),
            loss: l.loss,
            grad_norm: l.grad_norm,
            learning_rate: u.lr,
            num_tokens: s.num_tokens,
            skipped: !u.all_applied,
            tokens_per_second: all_generated as f64 / step_time.max(1e-9),
            step_time,
            time_generation: t.generation,
            time_scoring: t.scoring,
            time_forward: u.secs[0],
            time_backward: u.secs[1],
            time_optimizer: u.secs[2],
            padding_fraction: (u.padding.computed > 0).then(|| u.padding.fraction()),
            shared_prompt_fraction: (u.padding.tokens > 0).then(|| u.padding.shared_fraction()),
            rollout_tokens_layer1: layer1_tokens,
            rollout_tokens_layer2: layer2_tokens,
            method: got.stats.clone(),
        }
    }
}
