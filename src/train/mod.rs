//! The training loop (DESIGN §11): draw the step's problems, roll out, score, update, log,
//! checkpoint; resume from the last checkpoint exactly; stop on repeated non-finite steps.

pub mod checkpoint;
pub mod config;
pub mod evaluate;
pub mod order;
pub mod sft;
pub mod star;
pub mod step;
pub mod validate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

pub use config::{Algorithm, TrainConfig};

use crate::data::{Dataset, Problem};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::generate::{eos_ids_from_model_dir, GenerateConfig, SamplingParams, StopStrings};
use crate::memory::{check_fits, estimate, MemoryEstimate, RunShape};
use crate::metrics::{plot, JsonlLog, Progress, StepMetrics};
use crate::model::lora::{load_adapter, save_adapter};
use crate::model::{load_model, save_model, Precision, Qwen2Config, Qwen2ForCausalLM, SaveOptions};
use crate::rl::grpo::{sample_logprobs, UpdateConfig};
use crate::rl::loss::LossParams;
use crate::rl::optim::{adamw, AdamParams};
use crate::rl::parallel::{devices, DataParallel, ParallelSampler};
use crate::rl::schedule::Schedule;
use crate::template::PromptTemplate;
use crate::tokenizer::Tokenizer;
use checkpoint::{restore_latest, save_checkpoint, LoraCheckpoint, TrainerState};
use evaluate::{run_eval, EvalContext, EvalSet};

/// How to run `mgrpo train`.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: TrainConfig,
    pub run_dir: PathBuf,
    /// Continue the run in `run_dir` from its last checkpoint.
    pub resume: bool,
    /// Stop after this step (checkpointing it), as if interrupted.
    pub stop_after: Option<usize>,
}

/// What a finished (or stopped) run leaves.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub steps_done: usize,
    pub total_steps: usize,
    /// The final model (HF layout), when the run completed.
    pub final_model: Option<PathBuf>,
    pub last: Option<StepMetrics>,
    /// The held-out Table 2 (start model, every evaluation, trained model) when the run
    /// completed with an `eval_dataset`; also in `results.md`.
    pub report: Option<String>,
}

/// Everything fixed for the whole run: data, prompts, tokenizer, model config.
struct Setup {
    dataset: Dataset,
    /// Token ids of each problem's prompt.
    prompts: Vec<Vec<u32>>,
    tokenizer: Tokenizer,
    template: PromptTemplate,
    model_config: Qwen2Config,
    eos_ids: Vec<u32>,
    eval: Option<EvalSet>,
    /// Tokens after the prompt: one completion, or both turns for MGRPO/iGRPO.
    completion_room: usize,
}

fn setup(cfg: &TrainConfig) -> Result<Setup> {
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
    let model_config = Qwen2Config::load(&cfg.model.join("config.json"))?;
    let context = model_config.max_position_embeddings;
    if cfg.max_completion_length >= context {
        return Err(Error::Invalid(format!(
            "max_completion_length {} does not fit the model's context \
             (max_position_embeddings {context} in {})",
            cfg.max_completion_length,
            cfg.model.join("config.json").display()
        )));
    }
    let tokenizer = Tokenizer::from_model_dir(&cfg.model)?.ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no tokenizer.json (training needs one to decode completions)",
            cfg.model.display()
        ))
    })?;
    let template = PromptTemplate::builtin(&cfg.template)?;
    // MGRPO and iGRPO continue the first answer in the same turn: room for both turns
    let second_turn = match cfg.algorithm {
        Algorithm::Grpo => None,
        Algorithm::Mgrpo | Algorithm::Igrpo => {
            let texts: Vec<&String> = match cfg.algorithm {
                Algorithm::Mgrpo => cfg.guide_phrases.iter().collect(),
                _ => vec![&cfg.refine_instruction],
            };
            let mut longest = 0;
            for t in texts {
                longest = longest.max(tokenizer.encode(&format!("\n\n{t}"))?.len());
            }
            Some(cfg.max_completion_length + longest + cfg.layer2_max_completion_length())
        }
    };
    let mut prompts = Vec::with_capacity(dataset.len());
    for p in &dataset.problems {
        let ids = tokenizer.encode(&template.render(&p.question))?;
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
    let eos_ids = eos_ids_from_model_dir(&cfg.model, &model_config.eos_token_id, Some(&tokenizer))?;
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

/// The memory this run needs at its peak (see [`crate::memory`]).
fn memory_plan(cfg: &TrainConfig, s: &Setup, precision: Precision) -> MemoryEstimate {
    // per device: each samples its share of the step's prompts
    let rows = cfg.prompts_per_step().div_ceil(cfg.num_devices) * cfg.num_generations;
    let rollout_rows = match cfg.generation_batch_size {
        0 => rows,
        n => n.min(rows),
    };
    let shape = RunShape {
        precision,
        reference: cfg.beta > 0.0,
        gradient_checkpointing: cfg.gradient_checkpointing,
        rollout_rows,
        micro_batch_rows: cfg.per_device_train_batch_size,
        seq_len: s.prompts.iter().map(Vec::len).max().unwrap_or(0) + s.completion_room,
        lora_params: cfg.lora().map(|l| l.num_params(&s.model_config)),
    };
    estimate(&s.model_config, &shape)
}

/// The sampler seed of a step (each completion then has its own stream within it).
fn step_seed(seed: u64, step: usize) -> u64 {
    seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Run (or resume) a training run.
pub fn train<B: AutodiffBackend>(opts: &TrainOptions, device: &B::Device) -> Result<TrainSummary> {
    let cfg = &opts.config;
    let run = &opts.run_dir;
    let s = setup(cfg)?;
    let precision = Precision::from_bf16(cfg.bf16);
    let plan = memory_plan(cfg, &s, precision);
    if cfg.device_memory_gib > 0.0 {
        check_fits(&plan, cfg.device_memory_gib * (1u64 << 30) as f64)?;
    }
    let total = cfg.total_steps(s.dataset.len());
    let metrics = JsonlLog::new(run.join("metrics.jsonl"));
    let completions_log = JsonlLog::new(run.join("completions.jsonl"));
    let adam = AdamParams {
        beta1: cfg.adam_beta1,
        beta2: cfg.adam_beta2,
        epsilon: cfg.adam_epsilon,
        weight_decay: cfg.weight_decay,
    };

    let lora = cfg.lora();
    let lora_ckpt = lora.as_ref().map(|config| LoraCheckpoint {
        config,
        base: &cfg.model,
        seed: cfg.seed,
    });
    let (model, mut optim, mut state) = if opts.resume {
        let r = restore_latest::<B>(run, adamw(&adam), lora_ckpt, device)?;
        tracing::info!(checkpoint = %r.dir.display(), step = r.state.step, "resuming");
        metrics.truncate_after(r.state.step)?;
        completions_log.truncate_after(r.state.step)?;
        JsonlLog::new(run.join("eval").join("metrics.jsonl")).truncate_after(r.state.step)?;
        (r.model, r.optim, r.state)
    } else {
        if metrics.path().exists() {
            return Err(Error::Invalid(format!(
                "{} already holds a run; continue it with --resume {}, or choose another --out",
                run.display(),
                run.display()
            )));
        }
        let (_, model) = load_model::<B>(&cfg.model, device)?;
        // LoRA: every weight frozen, adapters attached (B = 0: the base model's outputs)
        let model = match &lora {
            Some(l) => model.with_lora(l, cfg.seed, device),
            None => model,
        };
        std::fs::create_dir_all(run).map_err(|e| Error::io(run, e))?;
        // absolute paths, so that `--resume` works from any directory
        let mut resolved = cfg.clone();
        for p in [&mut resolved.model, &mut resolved.dataset] {
            *p = std::fs::canonicalize(&*p).map_err(|e| Error::io(&*p, e))?;
        }
        resolved.output_dir = Some(std::fs::canonicalize(run).map_err(|e| Error::io(run, e))?);
        write_atomic(
            &run.join("config.resolved.toml"),
            resolved.to_toml()?.as_bytes(),
        )?;
        let state = TrainerState {
            total_steps: total,
            seed: cfg.seed,
            ..Default::default()
        };
        (model, adamw::<B>(&adam), state)
    };
    eprintln!("{plan}");
    let mut model = model.with_compute_dtype(precision.dtype());
    if lora.is_some() {
        model = model.with_frozen_in(precision.dtype());
    }
    let mut dp = DataParallel::new(&model, &optim, devices(device, cfg.num_devices))?;
    if cfg.num_devices > 1 {
        eprintln!("data parallel over {:?}", dp.devices());
    }
    // The frozen reference exists only when the KL term does (β > 0), in the compute dtype.
    let reference: Option<Qwen2ForCausalLM<B::InnerBackend>> = if cfg.beta > 0.0 {
        Some(
            load_model::<B::InnerBackend>(&cfg.model, device)?
                .1
                .to_precision(precision),
        )
    } else {
        None
    };
    let schedule = Schedule::new(
        cfg.lr_scheduler_type,
        cfg.learning_rate,
        total * cfg.num_iterations,
        cfg.warmup_steps * cfg.num_iterations,
        cfg.warmup_ratio,
    );
    let update_cfg = UpdateConfig {
        loss: LossParams {
            epsilon_low: cfg.epsilon,
            epsilon_high: cfg.epsilon_high(),
            beta: cfg.beta,
            loss_type: cfg.loss_type,
            max_completion_length: cfg.max_completion_length,
        },
        micro_batch: cfg.per_device_train_batch_size,
        max_grad_norm: cfg.max_grad_norm,
    };
    let per_step = cfg.prompts_per_step();
    let g = cfg.num_generations;
    let eval_ctx = s.eval.as_ref().map(|set| EvalContext {
        cfg,
        set,
        template: &s.template,
        tokenizer: &s.tokenizer,
        model_config: &s.model_config,
        eos_ids: &s.eos_ids,
    });
    if let (Some(ctx), 0) = (&eval_ctx, state.step) {
        run_eval(ctx, &model.valid().to_precision(precision), 0, run, device)?;
    }
    let progress = Progress::new(total, state.step);
    let mut last = None;

    while state.step < total {
        let step = state.step + 1;
        let t0 = Instant::now();
        let picks = order::step_problems(
            s.dataset.len(),
            per_step,
            state.data_position,
            cfg.seed,
            cfg.shuffle_dataset,
        );
        let problems: Vec<&Problem> = picks.iter().map(|&i| &s.dataset.problems[i]).collect();
        let prompts: Vec<Vec<u32>> = picks.iter().map(|&i| s.prompts[i].clone()).collect();
        let mut sampler = ParallelSampler {
            shards: dp.policies(&model, precision),
            config: &s.model_config,
            tokenizer: &s.tokenizer,
            gen: GenerateConfig {
                sampling: SamplingParams {
                    temperature: cfg.temperature,
                    top_k: cfg.top_k,
                    top_p: cfg.top_p,
                    min_p: cfg.min_p,
                },
                batch_size: match cfg.generation_batch_size {
                    0 => per_step * g,
                    n => n,
                },
                eos_ids: s.eos_ids.clone(),
                stop: StopStrings::default(),
                ..GenerateConfig::default()
            },
        };
        let mut got = step::collect(
            cfg,
            &mut sampler,
            &s.template,
            &s.tokenizer,
            &problems,
            prompts,
            step_seed(cfg.seed, step),
            s.model_config.max_position_embeddings,
        )?;
        let t_gen = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mb = cfg.per_device_train_batch_size;
        let policy = &sampler.shards[0].0;
        for exp in got.experiences_mut() {
            if cfg.num_iterations > 1 {
                let old = sample_logprobs(policy, exp, mb, device)?;
                for (s, lp) in exp.samples.iter_mut().zip(old) {
                    s.old_logps = Some(lp);
                }
            }
            if let Some(reference) = &reference {
                let r = sample_logprobs(reference, exp, mb, device)?;
                for (s, lp) in exp.samples.iter_mut().zip(r) {
                    s.ref_logps = Some(lp);
                }
            }
        }
        drop(sampler);
        let t_score = t1.elapsed().as_secs_f64();

        let mut m = StepMetrics::default();
        let mut all_applied = true;
        let parts = got.parts(cfg.layer2_weight);
        for _ in 0..cfg.num_iterations {
            let lr = schedule.lr(state.optimizer_steps);
            let (next, u) = dp.update(model, &mut optim, &parts, &update_cfg, lr)?;
            model = next;
            state.optimizer_steps += 1;
            all_applied &= u.applied;
            m.loss = u.loss;
            m.layer2_loss = got.layer2.as_ref().and(u.part_losses.get(1).copied());
            m.grad_norm = u.grad_norm;
            m.kl = u.metrics.kl;
            m.clip_low = u.metrics.clip_low;
            m.clip_high = u.metrics.clip_high;
            m.clip_region = u.metrics.clip_region;
            m.entropy = u.entropy;
            m.learning_rate = lr;
            m.time_forward += u.forward_secs;
            m.time_backward += u.backward_secs;
            m.time_optimizer += u.optimizer_secs;
        }

        let roll = &got.main;
        let adv = &got.adv;
        let lengths: Vec<usize> = roll.completions.iter().map(|c| c.ids.len()).collect();
        let generated: usize = lengths.iter().sum();
        got.fill_metrics(&mut m);
        let all_generated = m.rollout_tokens_layer1 + m.rollout_tokens_layer2;
        state.step = step;
        state.data_position += per_step;
        state.epoch = state.data_position / s.dataset.len();
        state.num_tokens += all_generated as u64;
        state.nonfinite_in_a_row = if all_applied {
            0
        } else {
            state.nonfinite_in_a_row + 1
        };
        m.step = step;
        m.epoch = state.data_position as f64 / s.dataset.len() as f64;
        m.reward = adv.reward_mean;
        m.reward_std = adv.reward_std;
        m.frac_reward_zero_std = adv.frac_zero_std;
        m.accuracy = roll.accuracy();
        m.format = roll.format_rate();
        m.mean_length = generated as f32 / lengths.len().max(1) as f32;
        m.min_length = lengths.iter().copied().min().unwrap_or(0);
        m.max_length = lengths.iter().copied().max().unwrap_or(0);
        m.clipped_ratio = roll.completions.iter().filter(|c| c.truncated()).count() as f32
            / lengths.len().max(1) as f32;
        m.num_tokens = state.num_tokens;
        m.skipped = !all_applied;
        m.time_generation = t_gen;
        m.time_scoring = t_score;
        m.step_time = t0.elapsed().as_secs_f64();
        m.tokens_per_second = all_generated as f64 / m.step_time.max(1e-9);
        metrics.append(&m)?;
        if cfg.log_completions {
            got.log(&completions_log, step, &problems)?;
        }
        progress.step(&m);
        tracing::info!(
            step,
            reward = m.reward,
            accuracy = m.accuracy,
            loss = m.loss,
            grad_norm = m.grad_norm,
            kl = m.kl,
            lr = m.learning_rate,
            tokens_per_s = m.tokens_per_second,
            "step"
        );
        if !all_applied {
            tracing::warn!(
                step,
                loss = m.loss,
                grad_norm = m.grad_norm,
                in_a_row = state.nonfinite_in_a_row,
                "non-finite loss or gradient: update skipped"
            );
            if state.nonfinite_in_a_row >= cfg.max_nonfinite_steps {
                progress.finish();
                let last_good = match checkpoint::list(run)?.pop() {
                    Some((_, dir)) => format!("the last checkpoint is {}", dir.display()),
                    None => "no checkpoint was written".into(),
                };
                return Err(Error::Invalid(format!(
                    "step {step}: {} non-finite steps in a row (loss {}, grad_norm {}); \
                     stopping (max_nonfinite_steps = {}). Lower learning_rate or check the \
                     model; {last_good}",
                    state.nonfinite_in_a_row, m.loss, m.grad_norm, cfg.max_nonfinite_steps,
                )));
            }
        }
        if let Some(ctx) = &eval_ctx {
            let periodic = cfg.eval_steps > 0 && step.is_multiple_of(cfg.eval_steps);
            if periodic || step == total {
                run_eval(
                    ctx,
                    &model.valid().to_precision(precision),
                    step,
                    run,
                    device,
                )?;
            }
        }
        let stop_now = opts.stop_after == Some(step);
        let periodic = cfg.save_steps > 0 && step.is_multiple_of(cfg.save_steps);
        if periodic || stop_now || step == total {
            save_checkpoint(
                run,
                &state,
                &model,
                &optim,
                &s.model_config,
                &cfg.model,
                cfg.save_total_limit,
                lora_ckpt,
            )?;
        }
        last = Some(m);
        if stop_now {
            break;
        }
    }
    progress.finish();

    let done = state.step >= total;
    let final_model = if done {
        let dest = run.join("model");
        let opts = SaveOptions {
            side_files_from: Some(cfg.model.clone()),
            overwrite: true,
            ..SaveOptions::default()
        };
        // written to a temporary directory and renamed by save_model
        let out = match &lora {
            // the adapter, then merged into the base as loaded (f32, whatever the run's
            // storage of the frozen weights was)
            Some(l) => {
                let adapter = run.join("adapter");
                save_adapter(&model.valid(), l, &cfg.model, &adapter)?;
                let (_, base) = load_model::<B::InnerBackend>(&cfg.model, device)?;
                load_adapter(base.with_lora(l, cfg.seed, device), &adapter, device)?.merge_lora()
            }
            None => model.valid(),
        };
        save_model(&out, &s.model_config, &dest, &opts)?;
        plot::training_plots(&metrics, run)?;
        Some(dest)
    } else {
        None
    };
    let report = match final_model {
        Some(_) => evaluate::eval_report(run, cfg.algorithm.name(), cfg.eval_turns)?,
        None => None,
    };
    Ok(TrainSummary {
        run_dir: run.clone(),
        steps_done: state.step,
        total_steps: total,
        final_model,
        last,
        report,
    })
}

/// The default run directory for a config file: `runs/<config stem>`.
pub fn default_run_dir(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    PathBuf::from("runs").join(stem)
}
