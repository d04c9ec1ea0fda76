//! Batched generation with the KV cache: the rollout engine.
//!
//! Prompts are grouped by length into batches, left-padded and prefilled once; each prompt's
//! prefill is then copied to its `num_return_sequences` samples, and every unfinished row
//! decodes one token per step. Finished rows are dropped from the batch (and from the cache), so
//! they stop costing compute, and the loop ends when every row is done.
//!
//! Each sample draws from its own RNG stream (seed, prompt index, sample index), so a completion
//! does not depend on `batch_size` or on which prompts share its batch.

pub(crate) mod device_sampler;
pub(crate) mod input;
mod pick;
pub mod sampler;
pub(crate) mod stop;

use crate::fused::FusedBackend;
use std::time::Instant;

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use device_sampler::{sample_on_device, DeviceDraw, SampleOn};
pub use sampler::{sample, sample_penalised, Sampled, SamplingParams};
pub use stop::{FinishReason, StopStrings};

use crate::error::{Error, Result};
use crate::model::batch::PaddedBatch;
use crate::model::cache::index_tensor;
use crate::model::{CausalLm, KvCache, ModelConfig};
use crate::text::tokenizer::Tokenizer;

/// What to generate and how.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Token budget per completion (also capped by `max_position_embeddings`).
    pub max_new_tokens: usize,
    pub sampling: SamplingParams,
    /// Completions per prompt (GRPO's G), sharing the prompt's prefill.
    pub num_return_sequences: usize,
    pub seed: u64,
    /// Rows decoded together (prompts × `num_return_sequences`; at least one prompt).
    pub batch_size: usize,
    /// A completion ends after emitting one of these.
    pub eos_ids: Vec<u32>,
    /// A completion ends when its text contains one of these.
    pub stop: StopStrings,
    /// The index of `prompts[0]` in a larger batch split across devices: sample `s` of prompt
    /// `p` draws from stream `(first_prompt + p, s)`, so a split batch samples exactly what the
    /// whole batch would (`prompt_index` stays local).
    pub first_prompt: usize,
    /// Attention over the KV cache in length buckets (a bounded set of shapes: see
    /// [`KvCache::bucketed`]). Unset: on for GPU backends, off for host-memory ones.
    pub kv_buckets: Option<bool>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: SamplingParams::default(),
            num_return_sequences: 1,
            seed: 0,
            batch_size: 16,
            eos_ids: Vec::new(),
            stop: StopStrings::default(),
            first_prompt: 0,
            kv_buckets: None,
        }
    }
}

/// One generated completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Index of its prompt in the input.
    pub prompt_index: usize,
    /// Which of the prompt's `num_return_sequences` samples it is.
    pub sample_index: usize,
    /// Generated ids, including the EOS id or stop-string token that ended it.
    pub ids: Vec<u32>,
    /// `ids` decoded without special tokens, when the model has a tokenizer.
    pub text: Option<String>,
    pub finish_reason: FinishReason,
    /// Per token: log-prob under the distribution it was sampled from (0 for greedy).
    pub logprobs: Vec<f32>,
    /// Per token: log-prob under the model (temperature 1, no filtering).
    pub model_logprobs: Vec<f32>,
}

impl Completion {
    /// Whether the completion ran out of tokens before EOS or a stop string.
    pub fn truncated(&self) -> bool {
        self.finish_reason == FinishReason::Length
    }
}

/// Counters and wall times of one [`generate`] call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateStats {
    /// Prompt tokens prefilled (padding excluded).
    pub prompt_tokens: usize,
    /// Tokens generated over all completions.
    pub generated_tokens: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    /// Wall time of each decode step (choose a token for every active row, then one forward
    /// pass; the choice reads the tokens back, so each step ends synchronised).
    pub decode_step_secs: Vec<f64>,
}

impl GenerateStats {
    /// Add another batch's counts and times (batches that ran one after the other).
    pub fn add(&mut self, other: &Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.generated_tokens += other.generated_tokens;
        self.prefill_secs += other.prefill_secs;
        self.decode_secs += other.decode_secs;
        self.decode_step_secs
            .extend_from_slice(&other.decode_step_secs);
    }
}

/// Completions in prompt order (all samples of prompt 0, then prompt 1, ...), with stats.
#[derive(Debug, Clone)]
pub struct Generation {
    pub completions: Vec<Completion>,
    pub stats: GenerateStats,
}

/// The most completions one prompt may ask for: every sequence's state is allocated before
/// decoding starts (10^9 aborted allocating 120 GB).
pub const MAX_RETURN_SEQUENCES: usize = 1 << 16;

/// Generate `gen.num_return_sequences` completions for every prompt.
///
/// Prompts must be non-empty, use ids below the vocabulary size and leave room below
/// `max_position_embeddings`; the error names the prompt's index otherwise.
pub fn generate<B: FusedBackend>(
    model: &CausalLm<B>,
    config: &ModelConfig,
    prompts: &[Vec<u32>],
    gen: &GenerateConfig,
    tokenizer: Option<&Tokenizer>,
    device: &B::Device,
) -> Result<Generation> {
    gen.sampling.validate()?;
    if gen.num_return_sequences == 0 || gen.batch_size == 0 {
        return Err(Error::Invalid(
            "num_return_sequences and batch_size must be at least 1".into(),
        ));
    }
    if gen.num_return_sequences > MAX_RETURN_SEQUENCES {
        return Err(Error::Invalid(format!(
            "num_return_sequences: at most {MAX_RETURN_SEQUENCES} (got {})",
            gen.num_return_sequences
        )));
    }
    if !gen.stop.is_empty() && tokenizer.is_none() {
        return Err(Error::Invalid("stop strings need a tokenizer".into()));
    }
    for (i, p) in prompts.iter().enumerate() {
        check_prompt(p, config).map_err(|e| Error::arg(format!("prompt {i}"), e.to_string()))?;
    }
    let g = gen.num_return_sequences;
    let per_batch = (gen.batch_size / g).max(1);
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(prompts[i].len()));
    let mut slots: Vec<Option<Completion>> = vec![None; prompts.len() * g];
    let mut stats = GenerateStats::default();
    // On a host-memory backend, on a thread of the rayon pool, so that a kernel's parallel
    // pieces start where it is called instead of handing each decode-step operation to a worker
    // and waiting for it (GPU backends do not use rayon: there a pool thread blocked on the
    // device would only leave the other workers spinning). The weights do not change while
    // generating: the host kernels read them packed.
    let host = crate::fused::tensor::host_memory::<B>(device);
    crate::fused::on_pool_if(host, || {
        crate::fused::decoding(|| -> Result<()> {
            let decoder = Decoder {
                model,
                head: model.head_weight(),
                config,
                gen,
                tokenizer,
                device,
                host,
            };
            for chunk in order.chunks(per_batch) {
                let (batch, batch_stats) = generate_batch(&decoder, prompts, chunk)?;
                stats.add(&batch_stats);
                for c in batch {
                    let at = c.prompt_index * g + c.sample_index;
                    slots[at] = Some(c);
                }
            }
            Ok(())
        })
    })?;
    let completions = slots.into_iter().flatten().collect::<Vec<_>>();
    debug_assert_eq!(completions.len(), prompts.len() * g);
    Ok(Generation { completions, stats })
}

/// Why a prompt cannot be generated from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("the prompt is empty")]
    Empty,
    #[error("token id {id} is out of range (vocab_size {vocab_size})")]
    OutOfVocab { id: u32, vocab_size: usize },
    #[error("{len} prompt tokens leave no room below max_position_embeddings {max}")]
    TooLong { len: usize, max: usize },
}

/// Check that a prompt can be generated from.
pub fn check_prompt(prompt: &[u32], config: &ModelConfig) -> std::result::Result<(), PromptError> {
    if prompt.is_empty() {
        return Err(PromptError::Empty);
    }
    if let Some(&id) = prompt.iter().find(|&&t| t as usize >= config.vocab_size) {
        return Err(PromptError::OutOfVocab {
            id,
            vocab_size: config.vocab_size,
        });
    }
    if prompt.len() >= config.max_position_embeddings {
        return Err(PromptError::TooLong {
            len: prompt.len(),
            max: config.max_position_embeddings,
        });
    }
    Ok(())
}

/// A row being decoded.
struct Row {
    prompt_index: usize,
    sample_index: usize,
    prompt_len: usize,
    budget: usize,
    rng: ChaCha8Rng,
    ids: Vec<u32>,
    logprobs: Vec<f32>,
    model_logprobs: Vec<f32>,
    finish: Option<FinishReason>,
}

/// What every batch of one [`generate`] call decodes with.
struct Decoder<'a, B: FusedBackend> {
    model: &'a CausalLm<B>,
    /// The LM head's `[d, vocab]` weight, made once per call (a transposed copy when tied).
    head: Tensor<B, 2>,
    config: &'a ModelConfig,
    gen: &'a GenerateConfig,
    tokenizer: Option<&'a Tokenizer>,
    device: &'a B::Device,
    /// Whether the backend keeps its tensors in host memory.
    host: bool,
}

/// Generate for the prompts `chunk` (indices into `prompts`): prefill once, copy each prefill
/// to its samples, decode until every row is done. Returns the completions and what it took.
fn generate_batch<B: FusedBackend>(
    d: &Decoder<'_, B>,
    prompts: &[Vec<u32>],
    chunk: &[usize],
) -> Result<(Vec<Completion>, GenerateStats)> {
    let (model, head, config, gen) = (d.model, &d.head, d.config, d.gen);
    let (tokenizer, device) = (d.tokenizer, d.device);
    let mut stats = GenerateStats::default();
    let g = gen.num_return_sequences;
    let group: Vec<Vec<u32>> = chunk.iter().map(|&i| prompts[i].clone()).collect();
    let batch = PaddedBatch::left_padded(&group, 0);
    let budget = |len: usize| gen.max_new_tokens.min(config.max_position_embeddings - len);
    let max_budget = group.iter().map(|p| budget(p.len())).max().unwrap_or(0);
    if max_budget == 0 {
        return Ok((Vec::new(), stats));
    }
    let dtype = model.compute_dtype();
    let bucketed = gen.kv_buckets.unwrap_or(!d.host);
    // decided once per batch: the backend does not change between decode steps
    let on_device = !gen.sampling.is_greedy() && gen.sampling.sample_on.on_device::<B>(device);
    let new_cache = if bucketed {
        KvCache::bucketed
    } else {
        KvCache::new
    };
    let mut cache = new_cache(
        config,
        batch.pad_lens.clone(),
        batch.seq + max_budget,
        dtype,
        device,
    );

    let t0 = Instant::now();
    let input = batch.to_input::<B>(device);
    let mut logits = model.forward_cached(input.input_ids, input.positions, &mut cache, head); // [P, V]
    if g > 1 {
        let rows: Vec<usize> = (0..chunk.len()).flat_map(|p| [p].repeat(g)).collect();
        cache.select_rows(&rows);
        logits = logits.select(0, index_tensor::<B>(&rows, device));
    }
    let mut rows: Vec<Row> = chunk
        .iter()
        .flat_map(|&p| (0..g).map(move |s| (p, s)))
        .map(|(p, s)| {
            let mut rng = ChaCha8Rng::seed_from_u64(gen.seed);
            rng.set_stream(((gen.first_prompt + p) * g + s) as u64);
            Row {
                prompt_index: p,
                sample_index: s,
                prompt_len: prompts[p].len(),
                budget: budget(prompts[p].len()),
                rng,
                ids: Vec::new(),
                logprobs: Vec::new(),
                model_logprobs: Vec::new(),
                finish: None,
            }
        })
        .collect();
    stats.prompt_tokens += group.iter().map(Vec::len).sum::<usize>();
    let t1 = Instant::now();
    stats.prefill_secs += (t1 - t0).as_secs_f64();

    // `active[i]` is the row whose cache is at batch position i.
    let mut active: Vec<usize> = (0..rows.len()).collect();
    let mut step_start = t1;
    loop {
        let picks = pick::pick_tokens(
            logits,
            &gen.sampling,
            on_device,
            &mut rows,
            &active,
            prompts,
        )?;
        let mut still = Vec::with_capacity(active.len());
        for (slot, (&r, pick)) in active.iter().zip(picks).enumerate() {
            let row = &mut rows[r];
            row.ids.push(pick.token);
            row.logprobs.push(pick.logprob);
            row.model_logprobs.push(pick.model_logprob);
            let stopped = match tokenizer {
                Some(t) => gen.stop.hit(&row.ids, t)?,
                None => false,
            };
            row.finish = if gen.eos_ids.contains(&pick.token) {
                Some(FinishReason::Eos)
            } else if stopped {
                Some(FinishReason::Stop)
            } else if row.ids.len() >= row.budget {
                Some(FinishReason::Length)
            } else {
                None
            };
            if row.finish.is_none() {
                still.push(slot);
            }
        }
        if still.is_empty() {
            stats
                .decode_step_secs
                .push(step_start.elapsed().as_secs_f64());
            break;
        }
        if still.len() < active.len() {
            cache.select_rows(&still);
            active = still.iter().map(|&s| active[s]).collect();
        }
        let n = active.len();
        let last: Vec<i64> = active
            .iter()
            .map(|&r| *rows[r].ids.last().unwrap_or(&0) as i64)
            .collect();
        let pos: Vec<i64> = active
            .iter()
            .map(|&r| (rows[r].prompt_len + rows[r].ids.len() - 1) as i64)
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(last, [n, 1]), device);
        let pos = Tensor::<B, 2, Int>::from_data(TensorData::new(pos, [n, 1]), device);
        logits = model.forward_cached(ids, pos, &mut cache, head);
        let now = Instant::now();
        stats
            .decode_step_secs
            .push((now - step_start).as_secs_f64());
        step_start = now;
    }
    stats.decode_secs += t1.elapsed().as_secs_f64();
    stats.generated_tokens += rows.iter().map(|r| r.ids.len()).sum::<usize>();

    let completions = rows
        .into_iter()
        .map(|r| {
            let text = tokenizer.map(|t| t.decode(&r.ids, true)).transpose()?;
            Ok(Completion {
                prompt_index: r.prompt_index,
                sample_index: r.sample_index,
                ids: r.ids,
                text,
                finish_reason: r.finish.unwrap_or(FinishReason::Length),
                logprobs: r.logprobs,
                model_logprobs: r.model_logprobs,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((completions, stats))
}
