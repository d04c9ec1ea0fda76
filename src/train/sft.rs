//! `mgrpo sft`: supervised fine-tuning on prompt/completion pairs, and the two STaR baselines
//! (a `[star]` table: the pairs are sampled from the starting model and filtered by the
//! verifier first, `star.rs`). Keys follow TRL's `SFTConfig` where one exists.
//!
//! The run directory gets `config.resolved.toml`, `star.jsonl` (STaR: the kept pairs),
//! `metrics.jsonl` (step, epoch, loss, grad_norm, learning_rate, num_tokens, step_time) and the
//! final model in `model/`.

use crate::fused::{FusedAutodiffBackend, FusedBackend};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::optim_config::positive;
use super::optim_config::OptimConfig;
use super::overrides::parse_table;
use super::star::{star_pairs, StarConfig, StarPair};
use crate::error::{Error, KeyError, Result};
use crate::eval::encode_prompts;
use crate::generate::{GenerateConfig, SamplingParams, StopStrings};
use crate::metrics::JsonlLog;
use crate::model::dir::ModelDir;
use crate::model::SaveOptions;
use crate::model::{load_weights, save_model, CausalLm, ModelConfig, Precision};
use crate::reward::RewardConfig;
use crate::rl::logprobs::Layout;
use crate::rl::optim::adamw;
use crate::rl::policy::Policy;
use crate::rl::rollout::ModelSampler;
use crate::rl::sft::{sft_update, SftExample, SftStep};
use crate::run::fsutil::write_atomic;
use crate::run::jsonl::{line_error, read_objects};
use crate::run::lock::RunLock;
use crate::sections::take_flat;
use crate::text::template::PromptTemplate;
use crate::text::tokenizer::Tokenizer;

/// Every key of an SFT config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    pub model: PathBuf,
    /// JSONL of `{"prompt", "completion"}` (texts; the prompt already templated). Not with
    /// `[star]`, which makes the pairs.
    pub dataset: Option<PathBuf>,
    /// Template of the STaR prompts: qwen-math, r1, plain or chatml.
    pub template: String,
    pub output_dir: Option<PathBuf>,
    /// Append the model's end-of-sequence id to every completion (TRL does).
    pub add_eos: bool,
    /// Longer prompt + completion pairs are an error (0 = the model's context).
    pub max_length: usize,
    /// AdamW and its schedule (the run config's keys; the learning rate defaults to 2e-5).
    #[serde(flatten, skip_deserializing)]
    pub optim: OptimConfig,
    pub per_device_train_batch_size: usize,
    /// Run the token-wise layers on the tokens only, rows packed back to back
    /// (`model::packed`); the same numbers up to float summation order.
    pub padding_free: bool,
    pub gradient_accumulation_steps: usize,
    pub num_train_epochs: f64,
    pub max_steps: Option<usize>,
    pub seed: u64,
    /// bf16 activations on f32 master weights; see `model::precision`.
    pub bf16: bool,
    pub star: Option<StarConfig>,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("model"),
            dataset: None,
            template: "qwen-math".into(),
            output_dir: None,
            add_eos: true,
            max_length: 0,
            optim: OptimConfig::with_learning_rate(2e-5),
            per_device_train_batch_size: 8,
            padding_free: true,
            gradient_accumulation_steps: 1,
            num_train_epochs: 3.0,
            max_steps: None,
            seed: 42,
            bf16: false,
            star: None,
        }
    }
}

impl SftConfig {
    /// Read `path`, apply `--set` overrides, validate; errors name the file and the key.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut table = parse_table(&text, path, overrides)?;
        let optim =
            take_flat(&mut table, &Self::default().optim).map_err(|e| Error::config(path, e))?;
        let mut c = Self::deserialize(table)
            .map_err(|e| Error::config(path, e.to_string().trim().replace('\n', " ")))?;
        c.optim = optim;
        c.validate().map_err(|e| e.at(path))?;
        c.model = crate::model::hub::locate(&c.model)?;
        Ok(c)
    }

    pub fn validate(&self) -> std::result::Result<(), KeyError> {
        let bad = |k: &str, m: &str| Err(KeyError::new(k, m));
        match (&self.dataset, &self.star) {
            (None, None) => {
                return bad(
                    "dataset",
                    "missing: give prompt/completion JSONL, or a [star] table",
                )
            }
            (Some(_), Some(_)) => {
                return bad("dataset", "not with [star], which samples its own data")
            }
            (None, Some(s)) => s.validate()?,
            _ => {}
        }
        if self.per_device_train_batch_size == 0 || self.gradient_accumulation_steps == 0 {
            return bad(
                "per_device_train_batch_size",
                "it and gradient_accumulation_steps must be at least 1",
            );
        }
        self.optim.validate()?;
        if self.max_steps == Some(0) {
            return bad("max_steps", "must be at least 1");
        }
        if self.max_steps.is_none() && !positive(self.num_train_epochs) {
            return bad("num_train_epochs", "must be > 0");
        }
        Ok(())
    }

    fn examples_per_step(&self) -> usize {
        self.per_device_train_batch_size * self.gradient_accumulation_steps
    }
}

/// Read `{"prompt", "completion"}` rows; errors name the file and line.
pub fn read_pairs(path: &Path) -> Result<Vec<StarPair>> {
    let mut out = Vec::new();
    for (line, row) in read_objects(path)? {
        let field = |k: &str| {
            row.get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| line_error(path, line, format!("no string field `{k}`")))
        };
        out.push(StarPair {
            problem: row
                .get("id")
                .and_then(|v| v.as_str())
                .map_or_else(|| format!("line-{line}"), str::to_string),
            prompt: field("prompt")?,
            completion: field("completion")?,
        });
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!("{}: no examples", path.display())));
    }
    Ok(out)
}

/// What `mgrpo sft` leaves.
#[derive(Debug, Clone)]
pub struct SftSummary {
    pub examples: usize,
    pub steps: usize,
    pub last_loss: f32,
    /// STaR: samples drawn before filtering.
    pub sampled: Option<usize>,
    pub final_model: PathBuf,
}

/// Fine-tune `cfg.model` into `run/model`.
pub fn sft<B: FusedAutodiffBackend>(
    cfg: &SftConfig,
    run: &Path,
    device: &B::Device,
) -> Result<SftSummary> {
    if run.join("metrics.jsonl").exists() {
        return Err(Error::Invalid(format!(
            "{} already holds a run; choose another --out",
            run.display()
        )));
    }
    crate::run::dest::check_new_run(run)?;
    let dir = ModelDir::open(&cfg.model)?.with_tokenizer("SFT tokenizes text")?;
    let (model_config, tokenizer, eos_ids) = &dir;
    let template = PromptTemplate::load(&cfg.template, &cfg.model, None)?;
    let precision = Precision::from_bf16(cfg.bf16);
    let model = load_weights::<B>(&cfg.model, model_config, device)?;
    let model = model.with_compute_dtype(precision.dtype());

    // the pairs: read, or sampled by STaR with the starting model
    let (pairs, source, sampled) = match (&cfg.dataset, &cfg.star) {
        (Some(path), _) => (read_pairs(path)?, path.clone(), None),
        (None, Some(star)) => {
            let policy = model.valid().to_precision(precision);
            let (pairs, n) = star_sample(star, &policy, &dir, &template, device)?;
            (pairs, star.problems.clone(), Some(n))
        }
        (None, None) => {
            return Err(Error::Invalid(
                "key `dataset`: missing: give prompt/completion JSONL, or a [star] table".into(),
            ))
        }
    };
    let context = match cfg.max_length {
        0 => model_config.max_position_embeddings,
        n => n.min(model_config.max_position_embeddings),
    };
    let examples = tokenize_examples(cfg, &pairs, &source, tokenizer, eos_ids, context)?;

    let _lock = RunLock::acquire(run)?;
    if run.join("metrics.jsonl").exists() {
        return Err(Error::Invalid(format!(
            "{} already holds a run; choose another --out",
            run.display()
        )));
    }
    write_atomic(
        &run.join("config.resolved.toml"),
        toml::to_string(cfg)
            .map_err(|e| Error::serialize("the config", e))?
            .as_bytes(),
    )?;
    if sampled.is_some() {
        let mut text = String::new();
        for p in &pairs {
            text.push_str(
                &serde_json::to_string(p).map_err(|e| Error::serialize("a STaR pair", e))?,
            );
            text.push('\n');
        }
        write_atomic(&run.join("star.jsonl"), text.as_bytes())?;
    }

    let (model, steps, last_loss) = fine_tune(cfg, model, &examples, run, device)?;
    let dest = run.join("model");
    let opts = SaveOptions {
        side_files_from: Some(cfg.model.clone()),
        overwrite: true,
        ..SaveOptions::default()
    };
    save_model(&model.valid(), model_config, &dest, &opts)?;
    Ok(SftSummary {
        examples: examples.len(),
        steps,
        last_loss,
        sampled,
        final_model: dest,
    })
}

/// STaR's pairs: `star.samples_per_question` samples of each problem from `policy`, the ones
/// the plain verifier accepts kept (with the count drawn).
fn star_sample<B: FusedBackend>(
    star: &StarConfig,
    policy: &CausalLm<B>,
    (model_config, tokenizer, eos_ids): &(ModelConfig, Tokenizer, Vec<u32>),
    template: &PromptTemplate,
    device: &B::Device,
) -> Result<(Vec<StarPair>, usize)> {
    let problems = star.load_problems()?;
    let room = star.max_new_tokens * 2;
    let prompts = encode_prompts(
        &problems,
        template,
        tokenizer,
        room,
        model_config.max_position_embeddings,
        &star.problems,
    )?;
    let sampler = ModelSampler {
        model: policy,
        config: model_config,
        tokenizer,
        gen: GenerateConfig {
            sampling: SamplingParams {
                temperature: star.temperature,
                ..SamplingParams::default()
            },
            batch_size: 64,
            eos_ids: eos_ids.clone(),
            stop: StopStrings::default(),
            ..GenerateConfig::default()
        },
        device,
    };
    // STaR keeps what the plain verifier accepts (the default reward)
    let reward = RewardConfig::default();
    let mut policy = Policy::new(sampler, template, tokenizer, &reward)?;
    let (pairs, n) = star_pairs(&mut policy, star, &problems, prompts)?;
    if pairs.is_empty() {
        return Err(Error::Invalid(format!(
            "STaR kept none of {n} samples on {} (source = {:?}): nothing to fine-tune on; \
             raise star.samples_per_question or star.temperature",
            star.problems.display(),
            star.source
        )));
    }
    Ok((pairs, n))
}

/// The pairs as token ids (the completion with the first end-of-sequence id when `add_eos`),
/// every example non-empty and within `context` tokens.
fn tokenize_examples(
    cfg: &SftConfig,
    pairs: &[StarPair],
    source: &Path,
    tokenizer: &Tokenizer,
    eos_ids: &[u32],
    context: usize,
) -> Result<Vec<SftExample>> {
    let eos = eos_ids.first().copied();
    let mut examples = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let prompt = tokenizer.encode(&p.prompt)?;
        let mut completion = tokenizer.encode(&p.completion)?;
        if cfg.add_eos {
            completion.extend(eos);
        }
        if prompt.is_empty() || completion.is_empty() || prompt.len() + completion.len() > context {
            return Err(Error::Invalid(format!(
                "{}: example {} (`{}`): {} prompt + {} completion tokens; both must be non-empty \
                 and fit max_length / the model's context ({context})",
                source.display(),
                i + 1,
                p.problem,
                prompt.len(),
                completion.len()
            )));
        }
        examples.push(SftExample { prompt, completion });
    }
    Ok(examples)
}

/// The training loop: epochs of seeded shuffles cut into steps of `examples_per_step`, one
/// `sft_update` each, a `metrics.jsonl` line per step. Returns the model, the steps taken and
/// the last loss.
fn fine_tune<B: FusedAutodiffBackend>(
    cfg: &SftConfig,
    mut model: CausalLm<B>,
    examples: &[SftExample],
    run: &Path,
    device: &B::Device,
) -> Result<(CausalLm<B>, usize, f32)> {
    let per_step = cfg.examples_per_step();
    let steps_per_epoch = examples.len().div_ceil(per_step);
    let total = cfg
        .max_steps
        .unwrap_or_else(|| (cfg.num_train_epochs * steps_per_epoch as f64).ceil() as usize);
    let schedule = cfg.optim.schedule(total)?;
    let mut optim = adamw::<B, _>(&cfg.optim.adam());
    let metrics = JsonlLog::new(run.join("metrics.jsonl"));
    let mut order: Vec<usize> = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut num_tokens = 0usize;
    let mut last_loss = f32::NAN;
    for step in 1..=total {
        let t0 = Instant::now();
        let epoch = (step - 1) / steps_per_epoch;
        let at = (step - 1) % steps_per_epoch;
        if at == 0 {
            order = (0..examples.len()).collect();
            order.shuffle(&mut rng);
        }
        let batch: Vec<&SftExample> = order[at * per_step..((at + 1) * per_step).min(order.len())]
            .iter()
            .map(|&i| &examples[i])
            .collect();
        let lr = schedule.lr(step - 1);
        let settings = SftStep {
            micro_batch: cfg.per_device_train_batch_size,
            layout: Layout::padding_free(cfg.padding_free),
            max_grad_norm: cfg.optim.max_grad_norm,
            lr,
        };
        let (next, s) = sft_update(model, &mut optim, &batch, &settings, device)?;
        model = next;
        if !s.applied {
            return Err(Error::Invalid(format!(
                "step {step}: non-finite loss or gradient (loss {}, grad_norm {}); lower learning_rate",
                s.loss, s.grad_norm
            )));
        }
        num_tokens += s.tokens;
        last_loss = s.loss;
        metrics.append(&serde_json::json!({
            "step": step,
            "epoch": epoch as f64 + (at + 1) as f64 / steps_per_epoch as f64,
            "loss": s.loss,
            "grad_norm": s.grad_norm,
            "learning_rate": lr,
            "num_tokens": num_tokens,
            "step_time": t0.elapsed().as_secs_f64(),
        }))?;
        tracing::info!(step, loss = s.loss, grad_norm = s.grad_norm, lr, "sft step");
    }
    Ok((model, total, last_loss))
}
