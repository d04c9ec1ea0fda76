//! Rollouts: prompts → completions (from a [`Sampler`]: the KV-cache engine, or a scripted
//! mock in tests) → rewards ([`super::policy::Policy::rollout`]). The result is plain host
//! data, so GRPO, MGRPO and iGRPO build their batches from it without touching the model.

use crate::fused::FusedBackend;
use burn::prelude::*;

use crate::error::Result;
use crate::generate::{generate, Completion, GenerateConfig, GenerateStats, Generation};
use crate::model::{CausalLm, ModelConfig};
use crate::reward::RewardParts;
use crate::text::tokenizer::Tokenizer;

/// How many completions to draw per prompt, with what budget and seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub n: usize,
    pub max_new_tokens: usize,
    pub seed: u64,
}

/// Something that samples completions: the policy model, or a scripted mock in tests.
pub trait Sampler {
    /// `draw.n` decoded completions for each prompt, grouped by prompt (all of prompt 0
    /// first).
    fn sample(&mut self, prompts: &[Vec<u32>], draw: Draw) -> Result<Generation>;
}

impl<S: Sampler + ?Sized> Sampler for &mut S {
    fn sample(&mut self, prompts: &[Vec<u32>], draw: Draw) -> Result<Generation> {
        (**self).sample(prompts, draw)
    }
}

/// The model as a [`Sampler`]: [`generate`] with fixed sampling settings.
pub struct ModelSampler<'a, B: Backend> {
    pub model: &'a CausalLm<B>,
    pub config: &'a ModelConfig,
    pub tokenizer: &'a Tokenizer,
    /// Sampling settings; `num_return_sequences`, `max_new_tokens` and `seed` are set per call.
    pub gen: GenerateConfig,
    pub device: &'a B::Device,
}

impl<B: FusedBackend> Sampler for ModelSampler<'_, B> {
    fn sample(&mut self, prompts: &[Vec<u32>], draw: Draw) -> Result<Generation> {
        if prompts.is_empty() {
            return Ok(Generation {
                completions: Vec::new(),
                stats: GenerateStats::default(),
            });
        }
        generate(
            self.model,
            self.config,
            prompts,
            &draw_config(&self.gen, draw),
            Some(self.tokenizer),
            self.device,
        )
    }
}

/// `base` (the sampling settings) with a draw's count, budget and seed.
pub fn draw_config(base: &GenerateConfig, draw: Draw) -> GenerateConfig {
    GenerateConfig {
        num_return_sequences: draw.n,
        max_new_tokens: draw.max_new_tokens,
        seed: draw.seed,
        batch_size: base.batch_size.max(draw.n),
        ..base.clone()
    }
}

/// The completions of a batch of prompts and their rewards.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Token ids of each prompt.
    pub prompts: Vec<Vec<u32>>,
    /// The same number of completions per prompt, grouped by prompt.
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

    /// Tokens generated over all completions (the rollout budget).
    pub fn generated_tokens(&self) -> usize {
        self.completions.iter().map(|c| c.ids.len()).sum()
    }

    /// The text of completion `i` (rollouts are always decoded).
    pub fn text(&self, i: usize) -> &str {
        self.completions[i].text.as_deref().unwrap_or("")
    }
}
