//! PPO's critic in a run: the value model and its own AdamW, built once per run — from the
//! policy's start (the backbone's weights, a fresh head) or from `value_model_path` — with the
//! policy's LoRA settings and precision; checkpointed next to the policy (`value.bin`, its
//! weights as a Burn record, exact for resuming with or without LoRA, and
//! `value_optimizer.bin`); written at the end of the run in HF layout (`RUN/value/`, LoRA
//! merged), which `value_model_path` reads back.

use crate::fused::FusedAutodiffBackend;
use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::record::{BinFileRecorder, FullPrecisionSettings};

use super::TrainConfig;
use crate::error::{Error, Result};
use crate::model::lora::LoraConfig;
use crate::model::value::ValueModel;
use crate::model::{
    load_value_model, save_value_model, CausalLm, ModelConfig, Precision, SaveOptions,
};
use crate::rl::optim::{
    adamw, load_optimizer, save_optimizer, unreadable, AdamParams, ValueOptimizer,
};

/// The critic's weights in a checkpoint (the recorder appends `.bin`).
const WEIGHTS: &str = "value";
/// Its optimizer state in a checkpoint.
const OPTIMIZER: &str = "value_optimizer";
/// The seed of a fresh head and of the critic's own LoRA adapters, derived from the run's.
fn critic_seed(seed: u64) -> u64 {
    seed ^ 0xC217_1C00
}

/// The critic of a PPO run.
pub struct Critic<B: FusedAutodiffBackend> {
    /// Taken out only while an update owns it: see [`Self::model`].
    pub model: Option<ValueModel<B>>,
    pub optim: ValueOptimizer<B>,
    /// The critic's own config (the policy's unless `value_model_path` says otherwise).
    pub config: ModelConfig,
}

/// The critic `value_model_path` names, loaded (before the run writes anything, so that a bad
/// one fails cleanly); `None` without one.
pub(crate) fn load_start<B: FusedAutodiffBackend>(
    cfg: &TrainConfig,
    policy_config: &ModelConfig,
    device: &B::Device,
) -> Result<Option<(ModelConfig, ValueModel<B>)>> {
    let Some(dir) = &cfg.methods.ppo.value_model_path else {
        return Ok(None);
    };
    let seed = critic_seed(cfg.seed);
    let (config, critic) = load_value_model::<B>(dir, policy_config.vocab_size, seed, device)?;
    let critic = match cfg.lora() {
        Some(l) => critic.with_lora(&l, seed, device),
        None => critic,
    };
    Ok(Some((config, critic)))
}

impl<B: FusedAutodiffBackend> Critic<B> {
    /// The critic as a new run starts it — `start` ([`load_start`]), or the policy's backbone
    /// with a fresh head — or, with `checkpoint`, as that checkpoint left it: the same
    /// construction, then the checkpoint's weights and optimizer state over it. `policy` is the
    /// run's policy in f32 (with its adapters under LoRA), before precision.
    pub fn new(
        cfg: &TrainConfig,
        start: Option<(ModelConfig, ValueModel<B>)>,
        (policy, policy_config): (&CausalLm<B>, &ModelConfig),
        adam: &AdamParams,
        checkpoint: Option<&Path>,
        device: &B::Device,
    ) -> Result<Self> {
        let lora = cfg.lora();
        let (config, mut model) = start.unwrap_or_else(|| {
            let seed = critic_seed(cfg.seed);
            let critic = ValueModel::from_policy(policy.clone(), seed, device);
            (policy_config.clone(), critic)
        });
        let mut optim = adamw::<B, _>(adam);
        if let Some(dir) = checkpoint {
            let path = dir.join(WEIGHTS);
            let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
            model = model
                .load_file(path.clone(), &recorder, device)
                .map_err(|e| unreadable(&path, &e, "the critic's weights"))?;
            optim = load_optimizer(optim, &model, &dir.join(OPTIMIZER), device)?;
        }
        let model = with_precision(model, Precision::from_bf16(cfg.bf16), lora.as_ref());
        Ok(Self {
            model: Some(model),
            optim,
            config,
        })
    }

    /// The critic (between updates).
    pub fn model(&self) -> &ValueModel<B> {
        self.model
            .as_ref()
            .unwrap_or_else(|| unreachable!("the critic is only taken out by the update"))
    }

    /// Write the critic's weights and optimizer state into the checkpoint directory `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(WEIGHTS);
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        self.model()
            .clone()
            .save_file(path.clone(), &recorder)
            .map_err(|e| {
                Error::checkpoint(
                    path.with_extension("bin"),
                    format!("writing the critic's weights: {e:?}"),
                )
            })?;
        save_optimizer(&self.optim, self.model(), &dir.join(OPTIMIZER))
    }

    /// The critic in HF layout at `dest` (the family's `…ForSequenceClassification`,
    /// LoRA merged), with the tokenizer files of `side_files_from`.
    pub fn export(&self, dest: &Path, side_files_from: &Path) -> Result<()> {
        let opts = SaveOptions {
            side_files_from: Some(side_files_from.to_path_buf()),
            overwrite: true,
            ..SaveOptions::default()
        };
        let critic = self.model().valid().merge_lora();
        save_value_model(&critic, &self.config, dest, &opts)
    }
}

/// The critic in the run's precision: activations in its dtype, and under LoRA the frozen
/// backbone stored in it (as the policy).
fn with_precision<B: FusedAutodiffBackend>(
    model: ValueModel<B>,
    precision: Precision,
    lora: Option<&LoraConfig>,
) -> ValueModel<B> {
    let model = model.with_compute_dtype(precision.dtype());
    match lora {
        Some(_) => model.with_frozen_in(precision.dtype()),
        None => model,
    }
}
