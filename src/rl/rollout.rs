//! Rollouts: prompts → G completions each (the generation engine, no gradient) → verifier
//! rewards. The result is plain host data, so GRPO, MGRPO and iGRPO can build their batches
//! from it without touching the model.

use burn::prelude::*;

use crate::data::Problem;
use crate::error::{Error, Result};
use crate::generate::{generate, Completion, GenerateConfig, GenerateStats};
use crate::model::{Qwen2Config, Qwen2ForCausalLM};
use crate::reward::{reward_parts, RewardConfig, RewardParts};
use crate::tokenizer::Tokenizer;

/// The completions of a batch of prompts and their rewards.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Token ids of each prompt.
    pub prompts: Vec<Vec<u32>>,
    /// `gen.num_return_sequences` completions per prompt, grouped by prompt.
    pub completions: Vec<Completion>,
    /// One per completion.
    pub rewards: Vec<RewardParts>,
    pub stats: GenerateStats,
}

impl Rollout {
    /// Completions per prompt.
    pub fn group_size(&self) -> usize {
        self.completions.len() / self.prompts.len().max(1)
    }

    /// The total reward of each completion.
    pub fn totals(&self) -> Vec<f32> {
        self.rewards.iter().map(|r| r.total).collect()
    }

    /// Fraction of completions whose final answer is right.
    pub fn accuracy(&self) -> f32 {
        let n = self.rewards.len().max(1) as f32;
        self.rewards.iter().filter(|r| r.correct).count() as f32 / n
    }

    /// Fraction of completions with a `\boxed{}` answer.
    pub fn format_rate(&self) -> f32 {
        let n = self.rewards.len().max(1) as f32;
        self.rewards.iter().filter(|r| r.formatted).count() as f32 / n
    }
}

/// Sample completions for `problems` (whose prompts, already tokenized, are `prompts`) and
/// score each with the verifier.
#[allow(clippy::too_many_arguments)]
pub fn rollout<B: Backend>(
    model: &Qwen2ForCausalLM<B>,
    config: &Qwen2Config,
    problems: &[&Problem],
    prompts: Vec<Vec<u32>>,
    gen: &GenerateConfig,
    tokenizer: &Tokenizer,
    reward: &RewardConfig,
    device: &B::Device,
) -> Result<Rollout> {
    let out = generate(model, config, &prompts, gen, Some(tokenizer), device)?;
    let g = gen.num_return_sequences;
    let rewards = out
        .completions
        .iter()
        .map(|c| {
            let text = c.text.as_deref().ok_or_else(|| {
                Error::Invalid("rollout completions must be decoded (no tokenizer?)".into())
            })?;
            Ok(reward_parts(problems[c.prompt_index], text, reward))
        })
        .collect::<Result<Vec<_>>>()?;
    debug_assert_eq!(rewards.len(), problems.len() * g);
    Ok(Rollout {
        prompts,
        completions: out.completions,
        rewards,
        stats: out.stats,
    })
}
