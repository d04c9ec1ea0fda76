//! The run config: a TOML file whose keys follow TRL's `GRPOConfig` where one exists
//!, `--set key=value` overrides, validation that names the key at fault, and the
//! resolved config written into the run directory.
//!
//! Batch semantics are TRL's: `per_device_train_batch_size` counts **completions** per
//! micro-batch, `gradient_accumulation_steps` micro-batches make one optimizer step, and one
//! rollout holds `steps_per_generation` micro-batches per device (default: one optimizer step's
//! worth), so a step samples `per_device_train_batch_size × steps_per_generation × num_devices
//! / num_generations` prompts. A step is one rollout followed by `num_iterations` passes over
//! it, each pass `steps_per_generation / gradient_accumulation_steps` optimizer updates on
//! disjoint slices of it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::optim_config::OptimConfig;
use super::overrides::{parse_table, refuse_moved, refuse_replaced};
use super::trl_keys::{refuse_unsupported, rename_aliases};
pub use crate::algo::Algorithm;
use crate::algo::{Sections, Shared, SharedKeys};
use crate::error::{Error, Result};
use crate::model::lora::{LoraConfig, LORA_TARGETS};
use crate::reward::RewardConfig;
use crate::rl::advantage::ScaleRewards;
use crate::rl::loss::{ImportanceSampling, LossParams, LossType};
use crate::sections::take_flat;
use crate::text::template::PAPER_GUIDE_PHRASES;

/// Every key of a run config, with TRL's defaults unless noted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    // --- what to train on ---
    /// HF model directory (config.json, safetensors, tokenizer.json), or a hub id
    /// `ORG/NAME[@REVISION]` in the local Hugging Face cache (nothing is downloaded).
    pub model: PathBuf,
    /// Training problems (JSONL; any format `mgrpo verify` reads).
    pub dataset: PathBuf,
    /// The dataset's format when it cannot be detected (gsm8k, math, qa, ...).
    pub dataset_format: Option<String>,
    /// Prompt template: qwen-math, r1, plain, chatml, or `checkpoint` (the model's own chat
    /// template from `tokenizer_config.json`).
    pub template: String,
    /// The system message under `template = "checkpoint"` (none: the chat template's default).
    pub system_prompt: Option<String>,
    /// Extra variables of the chat template under `template = "checkpoint"` (TRL's
    /// `chat_template_kwargs`, e.g. `{ enable_thinking = false }` for Qwen3).
    pub chat_template_kwargs: toml::Table,
    pub algorithm: Algorithm,
    /// Run directory (`--out` overrides).
    pub output_dir: Option<PathBuf>,

    // --- rollouts ---
    pub num_generations: usize,
    /// Prompts longer than this many tokens are an error (TRL truncates them; we refuse to
    /// train on a question with its beginning cut off).
    pub max_prompt_length: Option<usize>,
    pub max_completion_length: usize,
    pub temperature: f32,
    pub top_p: f32,
    /// 0 = off (TRL: None).
    pub top_k: usize,
    /// 0 = off (TRL: None).
    pub min_p: f32,
    /// transformers' repetition penalty on the sampler (1 = off; TRL's `repetition_penalty`).
    pub repetition_penalty: f32,
    /// Completions sampled per rollout, over all devices (TRL's meaning:
    /// `per_device_train_batch_size × num_nodes × num_devices × steps_per_generation`); set this or
    /// `steps_per_generation`, not both.
    pub generation_batch_size: Option<usize>,
    /// Micro-batches per device that one rollout feeds (TRL; default
    /// `gradient_accumulation_steps`, one optimizer step per rollout). A multiple `k` of
    /// `gradient_accumulation_steps` reuses each rollout for `k` optimizer steps on disjoint
    /// slices, with old log-probs.
    pub steps_per_generation: Option<usize>,
    /// Rows decoded together (ours; 0 = all completions of the rollout at once).
    pub decode_batch_size: usize,
    pub shuffle_dataset: bool,
    /// Verifier reward settings (ours).
    pub reward: RewardConfig,

    // --- objective ---
    pub beta: f32,
    pub epsilon: f32,
    /// Upper clip bound; defaults to `epsilon`.
    pub epsilon_high: Option<f32>,
    /// `grpo`, `bnpo`, `dr_grpo`, `dapo` or `cispo` (which caps the weight at `epsilon_high`).
    pub loss_type: LossType,
    /// `token` (GRPO) or `sequence` (GSPO).
    pub importance_sampling_level: ImportanceSampling,
    /// Two-sided clipping: the unclipped ratio's upper bound (> 1); unset = off.
    pub delta: Option<f32>,
    /// Train on this fraction of each micro-batch's highest-entropy tokens (1.0 = all).
    pub top_entropy_quantile: f32,
    pub scale_rewards: ScaleRewards,
    pub mask_truncated_completions: bool,
    pub num_iterations: usize,
    /// Move the reference towards the policy every `ref_model_sync_steps` steps (β > 0).
    pub sync_ref_model: bool,
    pub ref_model_sync_steps: usize,
    pub ref_model_mixup_alpha: f32,

    // --- optimisation ---
    /// AdamW and its learning-rate schedule (TRL's keys, at the top level; shared with SFT).
    #[serde(flatten, skip_deserializing)]
    pub optim: OptimConfig,
    pub per_device_train_batch_size: usize,
    /// Cut updates into micro-batches of similar lengths (less padding; `rl::batching`).
    pub group_by_length: bool,
    /// Token-wise layers on the rows' tokens packed back to back (`model::packed`).
    pub padding_free: bool,
    pub gradient_accumulation_steps: usize,
    /// Steps to train; when absent, `num_train_epochs` passes over the dataset.
    pub max_steps: Option<usize>,
    pub num_train_epochs: f64,
    pub seed: u64,
    /// bf16 activations on f32 master weights (and bf16 rollouts); see `model::precision`.
    pub bf16: bool,
    /// Recompute each decoder layer's activations in the backward pass instead of keeping
    /// them (less memory, ~1/3 more compute).
    pub gradient_checkpointing: bool,
    /// The device's memory in GiB: a run whose estimate (printed at start-up) exceeds it fails
    /// before loading anything. 0 = no check.
    pub device_memory_gib: f64,
    /// Data-parallel replicas (TRL/accelerate's `num_processes`): the devices `--device`,
    /// `--device` + 1, ... (`cuda:0`, `cuda:1`, ...). Each samples its share of the step's
    /// rollouts and trains on its share of the micro-batches; gradients are summed on the host in
    /// device order (NCCL on CUDA in an `nccl` build). A step holds `per_device_train_batch_size ×
    /// gradient_accumulation_steps × num_devices` completions, as in TRL. On a CPU backend the
    /// replicas share the one CPU (no speed-up: it exercises the code path).
    pub num_devices: usize,
    /// Processes (machines) training together (torchrun's `--nnodes`): each runs
    /// `num_devices` devices, the run has `num_nodes × num_devices` ranks, and a step holds
    /// `per_device_train_batch_size × steps_per_generation × num_nodes × num_devices`
    /// completions. Every node is started with the same config and its own `node_rank`.
    pub num_nodes: usize,
    /// This node's rank, `0..num_nodes`; node 0 listens on `rendezvous`.
    pub node_rank: usize,
    /// `host:port` of node 0, the same on every node (torchrun's `--rdzv-endpoint`): node 0
    /// listens there — on that address only, until every node has joined — and the others
    /// connect to it. Needed when `num_nodes > 1`.
    pub rendezvous: String,
    /// A file holding the run's shared secret (readable by its owner only, 16 bytes or more),
    /// with which every node proves it belongs to the run. Without it, the secret is taken
    /// from the `MGRPO_NODE_SECRET` environment variable. Needed when `num_nodes > 1`.
    pub node_secret_file: String,
    /// The longest wait, in seconds, for another node's progress (joining, or its part of a
    /// sum): a node dead, stopped or unreachable for longer stops every node, naming it.
    /// Above any step's imbalance between nodes (evaluation included).
    pub node_timeout_s: f64,
    /// LoRA rank (PEFT's `r`): 0 trains every weight; > 0 freezes them and trains adapters on
    /// `lora_target_modules` (see `model::lora`). The final model is saved merged, the adapter
    /// in PEFT's layout next to it.
    pub lora_r: usize,
    /// LoRA's α: the update is scaled by α / r.
    pub lora_alpha: f32,
    /// Projections that get adapters (PEFT's `target_modules`; default: all seven).
    pub lora_target_modules: Vec<String>,

    // --- the methods' own keys ---
    /// `[mgrpo]` and `[igrpo]` tables; PPO's and RLOO's keys at the top level (TRL's names).
    #[serde(flatten, skip_deserializing)]
    pub methods: Sections,

    // --- evaluation during training (ours) ---
    /// Problems for the two-turn evaluation (none or "" = no evaluation).
    pub eval_dataset: Option<PathBuf>,
    pub eval_dataset_format: Option<String>,
    /// Evaluate every this many steps (0 = only before the first and after the last step).
    pub eval_steps: usize,
    /// Evaluate on the first N problems only.
    pub eval_limit: Option<usize>,
    /// 1 or 2.
    pub eval_turns: usize,
    /// Two-turn samples per problem (each metric the per-problem mean; `mgrpo eval --samples`).
    pub eval_samples: usize,
    /// 0 = greedy; the paper samples at 0.7.
    pub eval_temperature: f32,
    /// Guide phrase of turn 2; defaults to the first of `guide_phrases`.
    pub eval_guide: Option<String>,
    /// Token budget of each evaluation turn; defaults to the larger of `max_completion_length`
    /// and the second-turn budgets (`[mgrpo] layer2_max_completion_length`, `[igrpo]
    /// refine_max_completion_length`).
    pub eval_max_new_tokens: Option<usize>,

    // --- bookkeeping ---
    /// Checkpoint every this many steps (0 = only at the end).
    pub save_steps: usize,
    /// Keep at most this many checkpoints (oldest deleted first).
    pub save_total_limit: Option<usize>,
    /// Abort after this many non-finite steps in a row (ours).
    pub max_nonfinite_steps: usize,
    /// Write every completion of every step to `completions.jsonl` (TRL: `log_completions`).
    pub log_completions: bool,
    /// Where metrics go besides `metrics.jsonl`: `"tensorboard"` (event files in `RUN/runs/`).
    pub report_to: crate::metrics::ReportTo,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("model"),
            dataset: PathBuf::new(),
            dataset_format: None,
            template: "qwen-math".into(),
            system_prompt: None,
            chat_template_kwargs: toml::Table::new(),
            algorithm: Algorithm::Grpo,
            output_dir: None,
            num_generations: 8,
            max_prompt_length: Some(512),
            max_completion_length: 256,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            generation_batch_size: None,
            steps_per_generation: None,
            decode_batch_size: 0,
            shuffle_dataset: true,
            reward: RewardConfig::default(),
            beta: 0.0,
            epsilon: 0.2,
            epsilon_high: None,
            loss_type: LossType::Dapo,
            importance_sampling_level: ImportanceSampling::Token,
            delta: None,
            top_entropy_quantile: 1.0,
            scale_rewards: ScaleRewards::Group,
            mask_truncated_completions: false,
            num_iterations: 1,
            sync_ref_model: false,
            ref_model_sync_steps: 512,
            ref_model_mixup_alpha: 0.6,
            optim: OptimConfig::default(),
            per_device_train_batch_size: 8,
            group_by_length: true,
            padding_free: true,
            gradient_accumulation_steps: 1,
            max_steps: None,
            num_train_epochs: 3.0,
            seed: 42,
            bf16: false,
            gradient_checkpointing: false,
            device_memory_gib: 0.0,
            num_devices: 1,
            num_nodes: 1,
            node_rank: 0,
            rendezvous: String::new(),
            node_secret_file: String::new(),
            node_timeout_s: 900.0,
            lora_r: 0,
            lora_alpha: 16.0,
            lora_target_modules: LORA_TARGETS.map(String::from).to_vec(),
            methods: Sections::default(),
            eval_dataset: None,
            eval_dataset_format: None,
            eval_steps: 0,
            eval_limit: None,
            eval_turns: 2,
            eval_samples: 1,
            eval_temperature: 0.7,
            eval_guide: None,
            eval_max_new_tokens: None,
            save_steps: 500,
            save_total_limit: None,
            max_nonfinite_steps: 3,
            log_completions: false,
            report_to: Default::default(),
        }
    }
}

impl TrainConfig {
    /// Read `path`, apply `overrides` (`key=value`, TOML or a bare string), validate (errors
    /// name the file and the key); a hub id in `model` or `value_model_path` becomes its
    /// cached snapshot (`model::hub`), which `config.resolved.toml` then pins.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config = Self::from_toml(&text, path, overrides)?;
        config.model = crate::model::hub::locate(&config.model)?;
        if let Some(critic) = &mut config.methods.ppo.value_model_path {
            *critic = crate::model::hub::locate(critic)?;
        }
        Ok(config)
    }

    /// [`Self::load`] from text (`path` is only used in messages).
    pub fn from_toml(text: &str, path: &Path, overrides: &[String]) -> Result<Self> {
        let mut table = parse_table(text, path, overrides)?;
        refuse_moved(&table, MOVED).map_err(|e| Error::config(path, e))?;
        refuse_replaced(&table).map_err(|e| Error::config(path, e))?;
        refuse_unsupported(&table).map_err(|e| Error::config(path, e))?;
        rename_aliases(&mut table).map_err(|e| e.at(path))?;
        // a method's TRL config may default a shared key otherwise (RLOO's `beta`)
        if let Some(a) = table.get("algorithm").and_then(toml::Value::as_str) {
            for (key, value) in Algorithm::from_key(a).map_or(&[][..], Algorithm::shared_defaults) {
                table.entry(*key).or_insert(value.clone());
            }
        }
        let methods = Sections::take(&mut table).map_err(|e| Error::config(path, e))?;
        let optim =
            take_flat(&mut table, &OptimConfig::default()).map_err(|e| Error::config(path, e))?;
        let mut config = Self::deserialize(table)
            .map_err(|e| Error::config(path, e.to_string().trim().replace('\n', " ")))?;
        config.methods = methods;
        config.optim = optim;
        // `--set eval_dataset=""` switches a config's evaluation off (a key cannot be unset)
        config.eval_dataset = config.eval_dataset.filter(|p| !p.as_os_str().is_empty());
        config.validate().map_err(|e| e.at(path))?;
        Ok(config)
    }

    /// The config as TOML (what `config.resolved.toml` holds).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::serialize("the config", e))
    }

    /// The LoRA settings, when `lora_r > 0`.
    pub fn lora(&self) -> Option<LoraConfig> {
        (self.lora_r > 0).then(|| LoraConfig {
            r: self.lora_r,
            alpha: self.lora_alpha,
            targets: self.lora_target_modules.clone(),
        })
    }

    /// Micro-batches per device that one rollout feeds (`steps_per_generation`, or what
    /// `generation_batch_size` implies, or one optimizer step's).
    pub fn steps_per_generation(&self) -> usize {
        let per_micro_step = self.per_device_train_batch_size * self.world_size();
        self.steps_per_generation
            .or(self
                .generation_batch_size
                .map(|g| g / per_micro_step.max(1)))
            .unwrap_or(self.gradient_accumulation_steps)
    }

    /// Optimizer steps per pass over a rollout.
    pub fn optimizer_steps_per_generation(&self) -> usize {
        if self.algorithm.has_critic() {
            return self.methods.ppo.num_mini_batches;
        }
        (self.steps_per_generation() / self.gradient_accumulation_steps.max(1)).max(1)
    }

    /// Optimizer updates per step: `num_iterations` passes over the rollout (PPO:
    /// `num_ppo_epochs`), each of [`Self::optimizer_steps_per_generation`] updates (PPO:
    /// `num_mini_batches`).
    pub fn updates_per_step(&self) -> usize {
        let passes = match self.algorithm.has_critic() {
            true => self.methods.ppo.num_ppo_epochs,
            false => self.num_iterations,
        };
        passes * self.optimizer_steps_per_generation()
    }

    /// Completions sampled per step (one rollout), over all devices.
    pub fn completions_per_step(&self) -> usize {
        self.per_device_train_batch_size * self.steps_per_generation() * self.world_size()
    }

    /// Data-parallel ranks: the devices of every node.
    pub fn world_size(&self) -> usize {
        self.num_devices * self.num_nodes
    }

    /// Prompts sampled per step, over all devices.
    pub fn prompts_per_step(&self) -> usize {
        self.completions_per_step() / self.num_generations
    }

    /// Whether a frozen reference model is needed: GRPO's KL term (β > 0), PPO's KL penalty
    /// (`kl_coef > 0`).
    pub fn needs_reference(&self) -> bool {
        match self.algorithm.has_critic() {
            true => self.methods.ppo.kl_coef > 0.0,
            false => self.beta > 0.0,
        }
    }

    /// The critic's learning rate.
    pub fn value_learning_rate(&self) -> f64 {
        self.methods
            .ppo
            .value_learning_rate
            .unwrap_or(self.optim.learning_rate)
    }

    /// The upper clip bound.
    pub fn epsilon_high(&self) -> f32 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// The objective as the algorithm sets it from this config's loss keys (RLOO fixes its
    /// own: one summed ratio per completion, averaged over completions, no KL term).
    pub fn loss_params(&self) -> LossParams {
        crate::algo::loss_params(
            self.algorithm,
            LossParams {
                epsilon_low: self.epsilon,
                epsilon_high: self.epsilon_high(),
                beta: self.beta,
                loss_type: self.loss_type,
                importance_sampling: self.importance_sampling_level,
                delta: self.delta,
            },
        )
    }

    /// Steps of the run for a dataset of `rows` problems.
    pub fn total_steps(&self, rows: usize) -> usize {
        self.max_steps.unwrap_or_else(|| {
            ((self.num_train_epochs * rows as f64) / self.prompts_per_step().max(1) as f64).ceil()
                as usize
        })
    }

    /// What every method's collect stage reads; `context` is the model's.
    pub fn shared(&self, context: usize) -> Shared {
        Shared {
            num_generations: self.num_generations,
            max_completion_length: self.max_completion_length,
            scale_rewards: self.scale_rewards,
            mask_truncated: self.mask_truncated_completions,
            beta: self.beta,
            context,
        }
    }

    /// What the methods' validation reads.
    pub(crate) fn shared_keys(&self) -> SharedKeys {
        let d = Self::default();
        let changed = [
            ("loss_type", self.loss_type != d.loss_type),
            (
                "importance_sampling_level",
                self.importance_sampling_level != d.importance_sampling_level,
            ),
            ("delta", self.delta.is_some()),
            (
                "top_entropy_quantile",
                self.top_entropy_quantile != d.top_entropy_quantile,
            ),
        ];
        SharedKeys {
            beta: self.beta,
            num_iterations: self.num_iterations,
            num_generations: self.num_generations,
            num_devices: self.num_devices,
            num_nodes: self.num_nodes,
            completions_per_step: self.completions_per_step(),
            changed_loss_key: changed.iter().find(|(_, c)| *c).map(|(k, _)| *k),
        }
    }

    /// The token budget of each turn of an evaluation during training.
    pub fn eval_max_new_tokens(&self) -> usize {
        self.eval_max_new_tokens.unwrap_or(
            self.max_completion_length
                .max(self.methods.second_budget(self.max_completion_length)),
        )
    }

    /// The turn-2 guide phrase of evaluations.
    pub fn eval_guide(&self) -> String {
        self.eval_guide
            .clone()
            .or_else(|| self.methods.mgrpo.guide_phrases.first().cloned())
            .unwrap_or_else(|| PAPER_GUIDE_PHRASES[0].to_string())
    }
}

const MOVED: &[(&str, &str)] = &[
    ("guide_phrases", "[mgrpo] guide_phrases"),
    ("augment_h", "[mgrpo] augment_h"),
    (
        "layer2_max_queries_per_step",
        "[mgrpo] layer2_max_queries_per_step",
    ),
    ("layer2_weight", "[mgrpo] layer2_weight"),
    ("layer2_on", "[mgrpo] layer2_on"),
    (
        "layer2_max_completion_length",
        "[mgrpo] layer2_max_completion_length (MGRPO's corrections) or [igrpo] \
         refine_max_completion_length (iGRPO's refinements)",
    ),
    ("igrpo_num_drafts", "[igrpo] num_drafts"),
    ("refine_instruction", "[igrpo] refine_instruction"),
    ("draft_tie", "[igrpo] draft_tie"),
];

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
