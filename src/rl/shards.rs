//! The rollout sampler of data parallelism: each batch of prompts split into contiguous shards,
//! one per device (and, in a multi-node run, per rank over every node's devices), generated side
//! by side; every sample keeps the RNG stream it has in the whole batch, so the completions do
//! not depend on the number of devices or nodes.

use crate::fused::FusedBackend;
use burn::prelude::*;
use std::sync::Arc;

use super::nodes::{gather_generation, ranks, Layout, Place};
use super::reduce::Reducer;
use super::rollout::{draw_config, Draw, Sampler};
use super::threads::join_all;
use super::threads::DevicePools;
use crate::error::{Error, Result};
use crate::generate::{generate, GenerateConfig, GenerateStats, Generation};
use crate::model::{CausalLm, ModelConfig};
use crate::text::tokenizer::Tokenizer;

/// A multi-node rollout's exchange: this node's place, every local device's end of the sum.
pub struct Gather<B: Backend> {
    pub nodes: Place,
    pub reducers: Vec<Reducer<B>>,
}

/// A [`Sampler`] over one policy copy per device: each batch of prompts is split into
/// contiguous shards generated in parallel, then put back in prompt order. In a multi-node
/// run the shards are the whole run's (ranks over every node's devices), and the nodes
/// exchange theirs ([`super::nodes::gather_generation`]).
pub struct ParallelSampler<'a, B: Backend> {
    pub shards: Vec<(CausalLm<B>, B::Device)>,
    pub config: &'a ModelConfig,
    pub tokenizer: &'a Tokenizer,
    /// Sampling settings (`batch_size` is per device).
    pub gen: GenerateConfig,
    /// The other nodes, in a multi-node run.
    pub gather: Option<Gather<B>>,
    /// Each device's CPU threads (`DataParallel::pools`).
    pub pools: Arc<DevicePools>,
}

impl<B: FusedBackend> ParallelSampler<'_, B> {
    /// Device 0's policy copy: the policy that sampled (π_old for the step's scoring).
    pub fn leader(&self) -> &CausalLm<B> {
        &self.shards[0].0
    }
}

impl<B: FusedBackend> Sampler for ParallelSampler<'_, B> {
    fn sample(&mut self, prompts: &[Vec<u32>], draw: Draw) -> Result<Generation> {
        let n = self.shards.len().max(1);
        let (world, first) = ranks(self.gather.as_ref().map(|g| &g.nodes), n);
        let bounds: Vec<usize> = (0..=world).map(|k| k * prompts.len() / world).collect();
        let (config, tokenizer) = (self.config, self.tokenizer);
        let layout = Layout {
            prompts: prompts.len(),
            n: draw.n,
            max_new_tokens: draw.max_new_tokens,
        };
        let (gather, pools) = (self.gather.as_ref(), &self.pools);
        let run = |(model, device): &mut (CausalLm<B>, B::Device), k: usize| {
            let (lo, hi) = (bounds[first + k], bounds[first + k + 1]);
            let shard = if lo == hi {
                Ok(Generation {
                    completions: Vec::new(),
                    stats: GenerateStats::default(),
                })
            } else {
                let gen = GenerateConfig {
                    first_prompt: lo,
                    ..draw_config(&self.gen, draw)
                };
                generate(
                    model,
                    config,
                    &prompts[lo..hi],
                    &gen,
                    Some(tokenizer),
                    device,
                )
                .map(|mut g| {
                    for c in &mut g.completions {
                        c.prompt_index += lo;
                    }
                    g
                })
            };
            match gather {
                None => shard.map(Some),
                Some(g) => {
                    gather_generation(shard, layout, &g.reducers[k], Some(tokenizer), device)
                }
            }
        };
        let outs: Vec<Result<Option<Generation>>> = if n == 1 {
            vec![run(&mut self.shards[0], 0)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = self
                    .shards
                    .iter_mut()
                    .enumerate()
                    .map(|(k, shard)| s.spawn(move || pools.run(k, || run(shard, k))))
                    .collect();
                join_all(handles, "generation")
            })
        };
        if gather.is_some() {
            // device 0 holds the whole rollout; the others' results are their errors
            let mut whole = None;
            for out in outs {
                if let Some(g) = out? {
                    whole = Some(g);
                }
            }
            return whole.ok_or_else(|| Error::Backend("multi-node: no rollout gathered".into()));
        }
        let mut all = Generation {
            completions: Vec::with_capacity(prompts.len() * draw.n),
            stats: GenerateStats::default(),
        };
        for out in outs {
            let Some(out) = out? else { continue };
            all.completions.extend(out.completions);
            let (a, b) = (&mut all.stats, out.stats);
            a.prompt_tokens += b.prompt_tokens;
            a.generated_tokens += b.generated_tokens;
            // the devices run side by side: wall time is the slowest one's
            a.prefill_secs = a.prefill_secs.max(b.prefill_secs);
            a.decode_secs = a.decode_secs.max(b.decode_secs);
        }
        Ok(all)
    }
}
