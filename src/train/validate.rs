//! The run config's checks: why a [`TrainConfig`] is unusable, naming the key at fault.

use super::config::TrainConfig;
use super::optim_config::{non_negative, positive};
use crate::error::KeyError;
use crate::model::lora::LORA_TARGETS;
use crate::rl::loss::LossType;
use crate::rl::nodes::parse_port;
use crate::text::template::{BUILTIN, CHECKPOINT};

impl TrainConfig {
    /// Why the config is unusable, naming the key.
    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        self.check_inputs()?;
        self.check_devices()?;
        self.check_lora()?;
        self.check_batches()?;
        self.check_sampling()?;
        self.check_loss()?;
        self.check_run()?;
        self.check_eval()?;
        self.methods.validate(self.algorithm, &self.shared_keys())?;
        self.reward.validate().map_err(|e| e.within("reward"))
    }

    /// The checks of the dataset and the prompt template.
    fn check_inputs(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if self.dataset.as_os_str().is_empty() {
            return bad("dataset", "missing: give the training JSONL");
        }
        if self.template != CHECKPOINT && !BUILTIN.contains(&self.template.as_str()) {
            return bad(
                "template",
                &format!(
                    "unknown template `{}` (built-in: {}; or \"{CHECKPOINT}\", the model's chat template)",
                    self.template,
                    BUILTIN.join(", ")
                ),
            );
        }
        if self.system_prompt.is_some() && self.template != CHECKPOINT {
            return bad(
                "system_prompt",
                &format!(
                    "needs template = \"{CHECKPOINT}\" (the built-in templates fix their own)"
                ),
            );
        }
        if !self.chat_template_kwargs.is_empty() && self.template != CHECKPOINT {
            return bad(
                "chat_template_kwargs",
                &format!(
                    "needs template = \"{CHECKPOINT}\": they are variables of the model's chat \
                     template (the built-in templates are fixed text)"
                ),
            );
        }
        Ok(())
    }

    /// The checks of the group size, the micro-batch, and the devices and nodes it runs on.
    fn check_devices(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if self.num_generations == 0 {
            return bad("num_generations", "must be at least 1");
        }
        if self.num_generations < self.algorithm.min_generations() {
            return bad(
                "num_generations",
                "must be at least 2 (a group of one has no advantage; PPO's critic allows 1)",
            );
        }
        if self.per_device_train_batch_size == 0 || self.gradient_accumulation_steps == 0 {
            return bad(
                "per_device_train_batch_size",
                "it and gradient_accumulation_steps must be at least 1",
            );
        }
        if self.num_devices == 0 {
            return bad("num_devices", "must be at least 1");
        }
        if self.num_nodes == 0 {
            return bad("num_nodes", "must be at least 1");
        }
        if self.node_rank >= self.num_nodes {
            return bad(
                "node_rank",
                &format!(
                    "{} is not below num_nodes = {}",
                    self.node_rank, self.num_nodes
                ),
            );
        }
        if !(self.node_timeout_s >= 1.0 && self.node_timeout_s <= 604_800.0) {
            return bad(
                "node_timeout_s",
                "must be between 1 and 604800 seconds (a week)",
            );
        }
        if self.num_nodes > 1 {
            if self.rendezvous.is_empty() {
                return bad(
                    "rendezvous",
                    "missing: a multi-node run needs node 0's host:port",
                );
            }
            if let Err(e) = parse_port(&self.rendezvous) {
                return bad("rendezvous", &e);
            }
        }
        Ok(())
    }

    /// The checks of LoRA's adapter settings (when `lora_r > 0`).
    fn check_lora(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if self.lora_r > 0 {
            if !(self.lora_alpha > 0.0 && self.lora_alpha.is_finite()) {
                return bad("lora_alpha", "must be > 0");
            }
            if self.lora_target_modules.is_empty() {
                return bad("lora_target_modules", "must name at least one projection");
            }
            if let Some(t) = self
                .lora_target_modules
                .iter()
                .find(|t| !LORA_TARGETS.contains(&t.as_str()))
            {
                return bad(
                    "lora_target_modules",
                    &format!(
                        "unknown projection `{t}` (one of {})",
                        LORA_TARGETS.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }

    /// The checks of how micro-batches make a rollout, and a rollout whole groups.
    fn check_batches(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        let per_micro_step = self.per_device_train_batch_size * self.world_size();
        match (self.generation_batch_size, self.steps_per_generation) {
            (Some(_), Some(_)) => {
                return bad(
                    "generation_batch_size",
                    "set it or steps_per_generation, not both (each implies the other)",
                )
            }
            (Some(g), None) if g == 0 || !g.is_multiple_of(per_micro_step) => {
                return bad(
                    "generation_batch_size",
                    &format!(
                        "{g} is not a positive multiple of per_device_train_batch_size × \
                         num_nodes × num_devices = {per_micro_step}"
                    ),
                )
            }
            _ => {}
        }
        let spg = self.steps_per_generation();
        if spg == 0 || !spg.is_multiple_of(self.gradient_accumulation_steps) {
            let key = match self.generation_batch_size {
                Some(_) => "generation_batch_size",
                None => "steps_per_generation",
            };
            return bad(
                key,
                &format!(
                    "{spg} micro-batches per rollout is not a positive multiple of \
                     gradient_accumulation_steps = {}",
                    self.gradient_accumulation_steps
                ),
            );
        }
        let completions = self.completions_per_step();
        if !completions.is_multiple_of(self.num_generations) {
            return bad(
                "per_device_train_batch_size",
                &format!(
                    "per_device_train_batch_size × steps_per_generation × num_nodes × num_devices = \
                     {completions} completions per rollout is not a multiple of \
                     num_generations = {}",
                    self.num_generations
                ),
            );
        }
        Ok(())
    }

    /// The checks of the rollouts' lengths and sampling.
    fn check_sampling(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if self.max_completion_length == 0 {
            return bad("max_completion_length", "must be at least 1");
        }
        if self.max_prompt_length == Some(0) {
            return bad("max_prompt_length", "must be at least 1");
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(
                "temperature",
                "must be > 0 (GRPO needs sampled, distinct completions)",
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "must be in (0, 1]");
        }
        if !(0.0..1.0).contains(&self.min_p) {
            return bad("min_p", "must be in [0, 1)");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(
                "repetition_penalty",
                "must be a finite number > 0 (1 = off)",
            );
        }
        Ok(())
    }

    /// The checks of the objective: KL, clipping, the loss type, the reference and its syncing.
    fn check_loss(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad("beta", "must be ≥ 0");
        }
        if !(self.epsilon > 0.0 && self.epsilon < 1.0) {
            return bad("epsilon", "must be in (0, 1)");
        }
        if !(self.epsilon_high() > 0.0 && self.epsilon_high().is_finite()) {
            return bad("epsilon_high", "must be > 0");
        }
        if let Some(delta) = self.delta {
            if !(delta > 1.0 && delta.is_finite()) {
                return bad("delta", "must be > 1 (it bounds the ratio from above)");
            }
        }
        if !(self.top_entropy_quantile > 0.0 && self.top_entropy_quantile <= 1.0) {
            return bad("top_entropy_quantile", "must be in (0, 1]");
        }
        if self.loss_type == LossType::Cispo && self.epsilon_high() < 1.0 {
            return bad(
                "epsilon_high",
                "with loss_type = \"cispo\" it caps the importance weight itself (not 1 + \
                 epsilon_high), so it must be ≥ 1; set it explicitly",
            );
        }
        if self.sync_ref_model {
            if !self.needs_reference() {
                return bad(
                    "sync_ref_model",
                    "needs beta > 0 (kl_coef > 0 for PPO): without the KL term there is no \
                     reference to sync",
                );
            }
            if self.lora_r > 0 {
                return bad(
                    "sync_ref_model",
                    "not with LoRA (lora_r > 0): the reference is the frozen base (as in TRL)",
                );
            }
            if self.ref_model_sync_steps == 0 {
                return bad("ref_model_sync_steps", "must be at least 1");
            }
            if !(0.0..=1.0).contains(&self.ref_model_mixup_alpha) {
                return bad("ref_model_mixup_alpha", "must be in [0, 1]");
            }
        }
        if self.num_iterations > 1024 {
            return bad(
                "num_iterations",
                "at most 1024 passes over a step's completions",
            );
        }
        if self.num_iterations == 0 {
            return bad("num_iterations", "must be at least 1");
        }
        Ok(())
    }

    /// The checks of the optimizer and the run's length, checkpoints and safeguards.
    fn check_run(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        self.optim.validate()?;
        self.report_to.validate()?;
        if self.max_steps == Some(0) {
            return bad("max_steps", "must be at least 1");
        }
        if self.max_steps.is_none() && !positive(self.num_train_epochs) {
            return bad("num_train_epochs", "must be > 0");
        }
        if self.save_total_limit == Some(0) {
            return bad("save_total_limit", "must be at least 1");
        }
        if self.max_nonfinite_steps == 0 {
            return bad("max_nonfinite_steps", "must be at least 1");
        }
        if !non_negative(self.device_memory_gib) {
            return bad("device_memory_gib", "must be ≥ 0 (0 = no check)");
        }
        Ok(())
    }

    /// The checks of the held-out evaluation.
    fn check_eval(&self) -> std::result::Result<(), KeyError> {
        let bad = |key: &str, msg: &str| Err(KeyError::new(key, msg));
        if !(1..=2).contains(&self.eval_turns) {
            return bad("eval_turns", "must be 1 or 2");
        }
        if !non_negative(self.eval_temperature as f64) {
            return bad("eval_temperature", "must be ≥ 0 (0 = greedy)");
        }
        if self.eval_max_new_tokens == Some(0) {
            return bad("eval_max_new_tokens", "must be at least 1");
        }
        if self.eval_samples == 0 || self.eval_samples > 1024 {
            return bad("eval_samples", "must be between 1 and 1024");
        }
        if self.eval_limit == Some(0) {
            return bad("eval_limit", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::rl::loss::ImportanceSampling;

    fn load(text: &str) -> crate::Result<TrainConfig> {
        TrainConfig::from_toml(
            &format!("dataset = \"d\"\n{text}"),
            Path::new("run.toml"),
            &[],
        )
    }

    /// The loss menu is reachable from the config, and its bad values name their key.
    #[test]
    fn the_loss_menu_from_the_config() {
        let c = load(
            "loss_type = \"cispo\"\nepsilon_high = 5.0\nimportance_sampling_level = \
             \"sequence\"\ndelta = 1.5\ntop_entropy_quantile = 0.2\n",
        )
        .unwrap();
        assert_eq!(c.loss_type, LossType::Cispo);
        assert_eq!(c.importance_sampling_level, ImportanceSampling::Sequence);
        assert_eq!((c.delta, c.top_entropy_quantile), (Some(1.5), 0.2));
        let d = load("").unwrap();
        assert_eq!(d.importance_sampling_level, ImportanceSampling::Token);
        assert_eq!((d.delta, d.top_entropy_quantile), (None, 1.0));
        for (text, key) in [
            ("delta = 1.0", "`delta`"),
            ("top_entropy_quantile = 0.0", "`top_entropy_quantile`"),
            ("top_entropy_quantile = 1.5", "`top_entropy_quantile`"),
            ("loss_type = \"cispo\"", "`epsilon_high`"),
            (
                "importance_sampling_level = \"group\"",
                "importance_sampling_level",
            ),
            ("sync_ref_model = true", "`sync_ref_model`"),
            (
                "sync_ref_model = true\nbeta = 0.1\nlora_r = 4",
                "`sync_ref_model`",
            ),
            (
                "sync_ref_model = true\nbeta = 0.1\nref_model_sync_steps = 0",
                "`ref_model_sync_steps`",
            ),
            (
                "sync_ref_model = true\nbeta = 0.1\nref_model_mixup_alpha = 1.5",
                "`ref_model_mixup_alpha`",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains("run.toml") && e.contains(key), "{text}: {e}");
        }
    }
}
