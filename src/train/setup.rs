//! What a run fixes before its first step: the dataset and its tokenized prompts, the
//! tokenizer and template, the model's config and end-of-sequence ids, the held-out set, and
//! the memory the run will need. Every prompt is checked against the model's context here, so
//! a bad row fails before any training.

use super::config::TrainConfig;
use super::evaluate::EvalSet;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::generate::{GenerateConfig, SamplingParams, StopStrings};
use crate::model::dir::ModelDir;
use crate::model::{ModelConfig, Precision};
use crate::rl::grpo::UpdateConfig;
use crate::rl::loss::{ImportanceSampling, LossType};
use crate::rl::schedule::Schedule;
use crate::text::template::PromptTemplate;
use crate::text::tokenizer::Tokenizer;
use crate::train::memory::{estimate, MemoryEstimate, RunShape};

/// Everything fixed for the whole run: data, prompts, tokenizer, model config.
pub(crate) struct Setup {
    pub dataset: Dataset,
    /// Token ids of each problem's prompt.
    pub prompts: Vec<Vec<u32>>,
    pub tokenizer: Tokenizer,
    pub template: PromptTemplate,
    pub model_config: ModelConfig,
    pub eos_ids: Vec<u32>,
    pub eval: Option<EvalSet>,
    /// Tokens after the prompt: one completion, or both turns for MGRPO/iGRPO.
    pub completion_room: usize,
}

pub(crate) fn setup(cfg: &TrainConfig) -> Result<Setup> {
    if cfg.importance_sampling_level == ImportanceSampling::Sequence
        && cfg.loss_type != LossType::Grpo
    {
        tracing::warn!(
            "importance_sampling_level = \"sequence\" with loss_type = {:?} sums per-token terms, \
             which weights each sequence by its length; GSPO's objective is loss_type = \"grpo\"",
            cfg.loss_type
        );
    }
    let format = cfg.dataset_format.as_deref().map(str::parse).transpose()?;
    let dataset = Dataset::load(&cfg.dataset, format)?;
    let per_step = cfg.prompts_per_step();
    if dataset.len() < per_step {
        return Err(Error::Invalid(format!(
            "{}: {} problems, fewer than the {per_step} prompts of one step \
             (per_device_train_batch_size × gradient_accumulation_steps / num_generations)",
            cfg.dataset.display(),
            dataset.len()
        )));
    }
    let (model_config, tokenizer, eos_ids) =
        ModelDir::open(&cfg.model)?.with_tokenizer("training needs one to decode completions")?;
    let context = model_config.max_position_embeddings;
    if cfg.max_completion_length >= context {
        return Err(Error::Invalid(format!(
            "max_completion_length {} does not fit the model's context \
             (max_position_embeddings {context} in {})",
            cfg.max_completion_length,
            cfg.model.join("config.json").display()
        )));
    }
    let template = PromptTemplate::load_with(
        &cfg.template,
        &cfg.model,
        cfg.system_prompt.as_deref(),
        &cfg.chat_template_kwargs,
    )?;
    dataset.check_template(&template)?;
    // MGRPO and iGRPO continue the first answer in the same turn: room for both turns
    let second_turn = match cfg
        .methods
        .second_turn(cfg.algorithm, cfg.max_completion_length)
    {
        None => None,
        Some((texts, budget)) => {
            let mut longest = 0;
            for t in texts {
                longest = longest.max(tokenizer.encode(&format!("\n\n{t}"))?.len());
            }
            Some(cfg.max_completion_length + longest + budget)
        }
    };
    let mut prompts = Vec::with_capacity(dataset.len());
    // a prompt whose bytes alone prove it too long is refused before tokenizing it
    let most_tokens = cfg
        .max_prompt_length
        .unwrap_or(usize::MAX)
        .min(context.saturating_sub(cfg.max_completion_length));
    let max_token_bytes = tokenizer.max_token_bytes();
    for p in &dataset.problems {
        let text = template.render_ask(p.ask())?;
        let fewest = text.len() / max_token_bytes;
        if fewest > most_tokens {
            return Err(Error::Invalid(format!(
                "{}: problem `{}`: its prompt is {} bytes, so at least {fewest} tokens (no \
                 token is longer than {max_token_bytes} bytes), more than the {most_tokens} that \
                 max_prompt_length and the model's context minus max_completion_length allow",
                cfg.dataset.display(),
                p.id,
                text.len()
            )));
        }
        let ids = tokenizer.encode(&text)?;
        let too_long = |what: String| {
            Err(Error::Invalid(format!(
                "{}: problem `{}`: {} prompt tokens {what}",
                cfg.dataset.display(),
                p.id,
                ids.len()
            )))
        };
        if let Some(max) = cfg.max_prompt_length {
            if ids.len() > max {
                return too_long(format!("exceed max_prompt_length {max}"));
            }
        }
        if ids.len() + cfg.max_completion_length > context {
            return too_long(format!(
                "+ max_completion_length {} exceed the model's context {context}",
                cfg.max_completion_length
            ));
        }
        if let Some(extra) = second_turn {
            if ids.len() + extra > context {
                return too_long(format!(
                    "+ a first answer, a guide phrase and a second answer ({extra} tokens: \
                     max_completion_length + the longest guide_phrases/refine_instruction + \
                     layer2_max_completion_length) exceed the model's context {context}"
                ));
            }
        }
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= model_config.vocab_size) {
            return too_long(format!(
                "include id {bad}, outside the model's vocabulary ({})",
                model_config.vocab_size
            ));
        }
        prompts.push(ids);
    }
    let eval = EvalSet::load(cfg, &template, &tokenizer, context)?;
    Ok(Setup {
        dataset,
        prompts,
        tokenizer,
        template,
        model_config,
        eos_ids,
        eval,
        completion_room: second_turn.unwrap_or(cfg.max_completion_length),
    })
}

/// Where this run's settings make it behave otherwise than TRL would, a warning (said once the
/// run is set up, so that an error in the config stays the one line printed).
pub(crate) fn warn_trl_differences(cfg: &TrainConfig) {
    for w in trl_differences(cfg) {
        tracing::warn!("{w}");
    }
}

/// What this run does differently from TRL, one sentence each (docs/training.md, "Where we
/// differ from TRL").
pub(crate) fn trl_differences(cfg: &TrainConfig) -> Vec<String> {
    let mut out = Vec::new();
    let updates = cfg.updates_per_step();
    let steps_keys = cfg.max_steps.is_some() || cfg.save_steps > 0 || cfg.eval_steps > 0;
    if !cfg.algorithm.has_critic() && updates > 1 && steps_keys {
        out.push(format!(
            "{updates} optimizer steps per step (num_iterations × steps_per_generation / \
             gradient_accumulation_steps): max_steps, save_steps and eval_steps count steps \
             (rollouts), where TRL's count optimizer steps — TRL would stop, save and evaluate \
             {updates} times as often; warmup_steps and ref_model_sync_steps count optimizer \
             steps, as TRL's"
        ));
    }
    if cfg.algorithm.has_critic() {
        let mini_batches = cfg.methods.ppo.num_mini_batches;
        if mini_batches > 1 {
            out.push(format!(
                "num_mini_batches = {mini_batches}: one optimizer step per mini-batch, \
                 {mini_batches} per PPO epoch; TRL's PPOTrainer (trl.experimental.ppo, up to trl \
                 1.10) accumulates its mini-batches over gradient_accumulation_steps \
                 micro-batches and so steps once per epoch"
            ));
        }
        out.push(
            "PPO's score sits on the last completion token, where the value head is trained \
             and the advantages start, and an EOS token is trained like any other; TRL's \
             PPOTrainer puts the score one slot past the last kept token and, when pad == eos \
             (Qwen2.5 base and Math tokenizers), leaves EOS out of the policy loss and the KL"
                .to_string(),
        );
    }
    out
}

/// The memory this run needs at its peak (see [`crate::train::memory`]).
pub(crate) fn memory_plan(cfg: &TrainConfig, s: &Setup, precision: Precision) -> MemoryEstimate {
    // per device: each samples its share of the step's prompts
    let rows = cfg.prompts_per_step().div_ceil(cfg.world_size()) * cfg.num_generations;
    let rollout_rows = match cfg.decode_batch_size {
        0 => rows,
        n => n.min(rows),
    };
    let shape = RunShape {
        precision,
        reference: cfg.needs_reference(),
        gradient_checkpointing: cfg.gradient_checkpointing,
        rollout_rows,
        micro_batch_rows: cfg.per_device_train_batch_size,
        seq_len: s.prompts.iter().map(Vec::len).max().unwrap_or(0) + s.completion_room,
        lora_params: cfg.lora().map(|l| l.num_params(&s.model_config)),
        critic: cfg.algorithm.has_critic(),
    };
    estimate(&s.model_config, &shape)
}

/// The sampler seed of a step (each completion then has its own stream within it).
pub(crate) fn step_seed(seed: u64, step: usize) -> u64 {
    seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The update's settings: the loss (as the method sets it), micro-batches, clipping.
pub(crate) fn update_config(cfg: &TrainConfig) -> UpdateConfig {
    UpdateConfig {
        loss: cfg.loss_params(),
        micro_batch: cfg.per_device_train_batch_size,
        max_grad_norm: cfg.optim.max_grad_norm,
        temperature: cfg.temperature,
        top_entropy_quantile: cfg.top_entropy_quantile,
        group_by_length: cfg.group_by_length,
        padding_free: cfg.padding_free,
    }
}

/// The rollouts' sampling settings (count, budget and seed are set per draw).
pub(crate) fn rollout_generation(cfg: &TrainConfig, eos_ids: &[u32]) -> GenerateConfig {
    GenerateConfig {
        sampling: SamplingParams {
            temperature: cfg.temperature,
            top_k: cfg.top_k,
            top_p: cfg.top_p,
            min_p: cfg.min_p,
            repetition_penalty: cfg.repetition_penalty,
            ..SamplingParams::default()
        },
        batch_size: match cfg.decode_batch_size {
            0 => cfg.prompts_per_step() * cfg.num_generations,
            n => n,
        },
        eos_ids: eos_ids.to_vec(),
        stop: StopStrings::default(),
        ..GenerateConfig::default()
    }
}

/// The learning-rate schedule over the run's optimizer steps: `max_steps` counts rollouts and
/// is scaled by the updates per rollout, `warmup_steps` counts optimizer steps (TRL's).
pub(crate) fn schedule(cfg: &TrainConfig, total: usize) -> Result<Schedule> {
    Ok(cfg.optim.schedule(total * cfg.updates_per_step())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every known difference from TRL is said, and nothing when there is none: plain GRPO says
    /// nothing; two updates per rollout with `max_steps` say the steps unit; PPO always says its
    /// score position, and its optimizer steps with several mini-batches.
    #[test]
    fn the_trl_differences_are_said() {
        let cfg = |extra: &str| {
            TrainConfig::from_toml(
                &format!("dataset = \"d\"\nmax_steps = 5\n{extra}"),
                std::path::Path::new("run.toml"),
                &[],
            )
            .unwrap()
        };
        assert!(trl_differences(&cfg("")).is_empty());
        let two = trl_differences(&cfg("num_iterations = 2\n"));
        assert_eq!(two.len(), 1);
        assert!(two[0].starts_with("2 optimizer steps per step"), "{two:?}");
        let ppo = trl_differences(&cfg(
            "algorithm = \"ppo\"\nnum_generations = 1\nnum_mini_batches = 2\n",
        ));
        assert_eq!(ppo.len(), 2, "{ppo:?}");
        assert!(ppo[0].starts_with("num_mini_batches = 2"), "{ppo:?}");
        assert!(
            ppo[1].contains("one slot past the last kept token"),
            "{ppo:?}"
        );
        let one = trl_differences(&cfg(
            "algorithm = \"ppo\"\nnum_generations = 1\nnum_mini_batches = 1\n",
        ));
        assert_eq!(one.len(), 1, "{one:?}");
    }

    /// The hand case: two updates per rollout (`num_iterations = 2`) and
    /// `warmup_steps = 10` warm up for 10 optimizer steps, as TRL, not 20.
    #[test]
    fn warmup_counts_optimizer_steps() {
        let cfg = TrainConfig::from_toml(
            "dataset = \"d\"\nnum_iterations = 2\nwarmup_steps = 10\nlearning_rate = 1e-3\n\
             lr_scheduler_type = \"constant_with_warmup\"\nmax_steps = 50\n",
            std::path::Path::new("run.toml"),
            &[],
        )
        .unwrap();
        assert_eq!(cfg.updates_per_step(), 2);
        let s = schedule(&cfg, 50).unwrap();
        assert!(s.lr(9) < 1e-3);
        assert_eq!(s.lr(10), 1e-3);
        assert_eq!(s.lr(99), 1e-3);
    }
}
