//! The [`Trainer`]: everything a run holds from its first step to its last, built once — the
//! policy and its optimizer state (one replica per device), the frozen reference when β > 0,
//! the learning-rate schedule, the update and sampling settings, the run directory's logs and
//! the trainer state that a checkpoint saves. The step itself is in `step.rs`.

use crate::fused::FusedAutodiffBackend;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::AutodiffModule;

use super::checkpoint::{
    self, restore_latest, save_checkpoint, CheckpointSpec, LoraCheckpoint, Restored, TrainerState,
};
use super::critic::{load_start, Critic};
use super::evaluate::{eval_report, run_eval, EvalContext};
use super::setup::{memory_plan, setup, Setup};
use super::{TrainConfig, TrainOptions};
use crate::algo;
use crate::error::{Error, Result};
use crate::generate::{GenerateConfig, SamplingParams, StopStrings};
use crate::metrics::{plot, JsonlLog};
use crate::model::lora::LoraConfig;
use crate::model::{load_adapter, save_adapter};
use crate::model::{
    load_weights, save_model, Precision, Qwen2Config, Qwen2ForCausalLM, SaveOptions,
};
use crate::rl::grpo::UpdateConfig;
use crate::rl::loss::LossParams;
use crate::rl::optim::{adamw, PolicyOptimizer};
use crate::rl::parallel::{check_devices, devices, DataParallel};
use crate::rl::schedule::Schedule;
use crate::run::fsutil::write_atomic;
use crate::run::lock::RunLock;
use crate::train::memory::check_fits;

/// A training run in progress.
pub struct Trainer<'a, B: FusedAutodiffBackend> {
    pub(super) cfg: &'a TrainConfig,
    pub(super) run: &'a Path,
    /// Shared with each step's borrows of the problems and prompts.
    pub(super) setup: Rc<Setup>,
    /// Device 0's policy (the other devices' replicas are in `dp`). Taken out only while an
    /// update owns it: see [`Self::model`].
    pub(super) model: Option<Qwen2ForCausalLM<B>>,
    pub(super) optim: PolicyOptimizer<B>,
    pub(super) dp: DataParallel<B>,
    /// The frozen reference, in the compute dtype; only when the KL term exists (β > 0, or
    /// PPO's `kl_coef > 0`).
    pub(super) reference: Option<Qwen2ForCausalLM<B::InnerBackend>>,
    /// PPO's critic (`algorithm = "ppo"` only).
    pub(super) critic: Option<Critic<B>>,
    pub(super) schedule: Schedule,
    pub(super) update: UpdateConfig,
    /// The rollouts' sampling settings (count, budget and seed are set per draw).
    pub(super) gen: GenerateConfig,
    pub(super) precision: Precision,
    pub(super) lora: Option<LoraConfig>,
    pub(super) metrics: JsonlLog,
    pub(super) completions: JsonlLog,
    pub(super) device: B::Device,
    pub state: TrainerState,
    /// Steps the run is planned for.
    pub total: usize,
    /// This process is the run directory's one writer.
    _lock: RunLock,
}

impl<'a, B: FusedAutodiffBackend> Trainer<'a, B> {
    /// Set the run up: load the data and the model (or the last checkpoint when resuming),
    /// write `config.resolved.toml` for a new run, fork the replicas, load the reference.
    pub fn new(opts: &'a TrainOptions, device: &B::Device) -> Result<Self> {
        let cfg = &opts.config;
        let run = opts.run_dir.as_path();
        let setup = setup(cfg)?;
        let precision = Precision::from_bf16(cfg.bf16);
        let plan = memory_plan(cfg, &setup, precision);
        if cfg.device_memory_gib > 0.0 {
            check_fits(&plan, cfg.device_memory_gib * (1u64 << 30) as f64)?;
        }
        check_devices::<B::InnerBackend>(&devices(device, cfg.num_devices))?;
        let total = cfg.total_steps(setup.dataset.len());
        check_stop(opts.stop_after, 0, total)?;
        let metrics = JsonlLog::new(run.join("metrics.jsonl"));
        let completions = JsonlLog::new(run.join("completions.jsonl"));
        let adam = cfg.optim.adam();
        let lora = cfg.lora();
        let value_model = match cfg.algorithm.has_critic() {
            true => load_start::<B>(cfg, &setup.model_config, device)?,
            false => None,
        };
        // `--resume` on a run killed before its first checkpoint starts it again from step 0
        let restart = opts.resume && checkpoint::list(run)?.is_empty();
        if restart {
            eprintln!(
                "{}: no checkpoint yet; starting the run again from step 0",
                run.display()
            );
        }
        let (model, optim, state, synced_reference, lock, ckpt) = if opts.resume && !restart {
            let lora_ckpt = lora_checkpoint(cfg, lora.as_ref());
            let (r, lock) = resume_run::<B>(opts, total, adamw(&adam), lora_ckpt, device)?;
            (r.model, r.optim, r.state, r.reference, lock, Some(r.dir))
        } else {
            // the resolved config states the answer extraction the reward uses
            let mut resolved = cfg.clone();
            let extraction = setup.dataset.format.extraction(&cfg.reward.policy);
            resolved.reward.policy.extraction = Some(extraction);
            let (model, lock) = start_run::<B>(
                &resolved,
                &setup.model_config,
                run,
                restart,
                lora.as_ref(),
                device,
            )?;
            let state = TrainerState {
                total_steps: total,
                seed: cfg.seed,
                ..Default::default()
            };
            (model, adamw::<B, _>(&adam), state, None, lock, None)
        };
        eprintln!("{plan}");
        let critic = match cfg.algorithm.has_critic() {
            true => Some(Critic::new(
                cfg,
                value_model,
                (&model, &setup.model_config),
                &adam,
                ckpt.as_deref(),
                device,
            )?),
            false => None,
        };
        let mut model = model.with_compute_dtype(precision.dtype());
        if lora.is_some() {
            model = model.with_frozen_in(precision.dtype());
        }
        let nodes = cfg.nodes();
        if let Some(nodes) = &nodes {
            nodes.start_orchestrator()?;
            eprintln!(
                "node {} of {}: waiting for every node at {}",
                nodes.rank, nodes.count, nodes.orchestrator
            );
        }
        let dp = DataParallel::new(&model, &optim, devices(device, cfg.num_devices), nodes)?;
        if cfg.world_size() > 1 {
            eprintln!("data parallel over {:?}", dp.devices());
        }
        let reference = match (cfg.needs_reference(), synced_reference) {
            (false, _) => None,
            (true, Some(synced)) => Some(synced.to_precision(precision)),
            (true, None) => Some(
                load_weights::<B::InnerBackend>(&cfg.model, &setup.model_config, device)?
                    .to_precision(precision),
            ),
        };
        let schedule = Schedule::new(
            cfg.optim.lr_scheduler_type,
            cfg.optim.learning_rate,
            total * cfg.updates_per_step(),
            cfg.optim.warmup_steps * cfg.updates_per_step(),
            cfg.optim.warmup_ratio,
        );
        let update = UpdateConfig {
            loss: algo::loss_params(
                cfg.algorithm,
                LossParams {
                    epsilon_low: cfg.epsilon,
                    epsilon_high: cfg.epsilon_high(),
                    beta: cfg.beta,
                    loss_type: cfg.loss_type,
                    importance_sampling: cfg.importance_sampling_level,
                    delta: cfg.delta,
                },
            ),
            micro_batch: cfg.per_device_train_batch_size,
            max_grad_norm: cfg.optim.max_grad_norm,
            temperature: cfg.temperature,
            top_entropy_quantile: cfg.top_entropy_quantile,
            group_by_length: cfg.group_by_length,
            padding_free: cfg.padding_free,
        };
        let gen = GenerateConfig {
            sampling: SamplingParams {
                temperature: cfg.temperature,
                top_k: cfg.top_k,
                top_p: cfg.top_p,
                min_p: cfg.min_p,
                ..SamplingParams::default()
            },
            batch_size: match cfg.decode_batch_size {
                0 => cfg.prompts_per_step() * cfg.num_generations,
                n => n,
            },
            eos_ids: setup.eos_ids.clone(),
            stop: StopStrings::default(),
            ..GenerateConfig::default()
        };
        Ok(Self {
            cfg,
            run,
            setup: Rc::new(setup),
            model: Some(model),
            optim,
            dp,
            reference,
            critic,
            schedule,
            update,
            gen,
            precision,
            lora,
            metrics,
            completions,
            device: device.clone(),
            state,
            total,
            _lock: lock,
        })
    }

    /// Device 0's policy.
    pub fn model(&self) -> &Qwen2ForCausalLM<B> {
        // `None` only inside `step.rs`'s update, which puts the updated model back before it
        // returns (or fails the run)
        self.model
            .as_ref()
            .unwrap_or_else(|| unreachable!("the policy is only taken out by the update"))
    }

    /// Whether every planned step is done.
    pub fn done(&self) -> bool {
        self.state.step >= self.total
    }

    /// Evaluate the current policy on the held-out set (when the run has one) and record it
    /// under `eval/` as of the current step.
    pub fn evaluate(&self) -> Result<()> {
        let Some(set) = &self.setup.eval else {
            return Ok(());
        };
        let ctx = EvalContext {
            cfg: self.cfg,
            set,
            template: &self.setup.template,
            tokenizer: &self.setup.tokenizer,
            model_config: &self.setup.model_config,
            eos_ids: &self.setup.eos_ids,
        };
        let policy = self.model().valid().to_precision(self.precision);
        run_eval(&ctx, &policy, self.state.step, self.run, &self.device)?;
        Ok(())
    }

    /// Whether the step just taken is one to evaluate after (`eval_steps`, and the last).
    pub fn eval_due(&self) -> bool {
        let step = self.state.step;
        let periodic = self.cfg.eval_steps > 0 && step.is_multiple_of(self.cfg.eval_steps);
        periodic || step == self.total
    }

    /// Whether the step just taken is one to checkpoint (`save_steps`, and the last).
    pub fn save_due(&self) -> bool {
        let step = self.state.step;
        let periodic = self.cfg.save_steps > 0 && step.is_multiple_of(self.cfg.save_steps);
        periodic || step == self.total
    }

    /// Checkpoint the current step.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let spec = CheckpointSpec {
            run: self.run,
            config: &self.setup.model_config,
            side_files_from: &self.cfg.model,
            limit: self.cfg.save_total_limit,
            lora: lora_checkpoint(self.cfg, self.lora.as_ref()),
        };
        let synced = self.reference.as_ref().filter(|_| self.cfg.sync_ref_model);
        let critic = self.critic.as_ref();
        save_checkpoint(
            &spec,
            &self.state,
            self.model(),
            &self.optim,
            synced,
            critic,
        )
    }

    /// After a non-finite step: an error once `max_nonfinite_steps` come in a row.
    pub fn check_nonfinite(&self, loss: f32, grad_norm: f32) -> Result<()> {
        let (step, in_a_row) = (self.state.step, self.state.nonfinite_in_a_row);
        tracing::warn!(
            step,
            loss,
            grad_norm,
            in_a_row,
            "non-finite loss or gradient: update skipped"
        );
        if in_a_row < self.cfg.max_nonfinite_steps {
            return Ok(());
        }
        let last_good = match checkpoint::list(self.run)?.pop() {
            Some((_, dir)) => format!("the last checkpoint is {}", dir.display()),
            None => "no checkpoint was written".into(),
        };
        Err(Error::Invalid(format!(
            "step {step}: {in_a_row} non-finite steps in a row (loss {loss}, grad_norm \
             {grad_norm}); stopping (max_nonfinite_steps = {}). Lower learning_rate or check \
             the model; {last_good}",
            self.cfg.max_nonfinite_steps,
        )))
    }

    /// The end of a completed run: the final model in HF layout (`model/`; with LoRA also
    /// `adapter/`, merged into the base for `model/`; PPO's critic in `value/`), the plots, and
    /// the held-out Table 2.
    pub fn finish(&self) -> Result<(PathBuf, Option<String>)> {
        let cfg = self.cfg;
        let dest = self.run.join("model");
        let opts = SaveOptions {
            side_files_from: Some(cfg.model.clone()),
            overwrite: true,
            ..SaveOptions::default()
        };
        // written to a temporary directory and renamed by save_model
        let out = match &self.lora {
            // the adapter, then merged into the base as loaded (f32, whatever the run's
            // storage of the frozen weights was)
            Some(l) => {
                let adapter = self.run.join("adapter");
                save_adapter(&self.model().valid(), l, &cfg.model, &adapter)?;
                let base = load_weights::<B::InnerBackend>(
                    &cfg.model,
                    &self.setup.model_config,
                    &self.device,
                )?;
                let base = base.with_lora(l, cfg.seed, &self.device);
                load_adapter(base, &adapter, &self.device)?.merge_lora()
            }
            None => self.model().valid(),
        };
        save_model(&out, &self.setup.model_config, &dest, &opts)?;
        if let Some(critic) = &self.critic {
            critic.export(&self.run.join("value"), &cfg.model)?;
        }
        plot::training_plots(&self.metrics, self.run)?;
        let report = eval_report(self.run, cfg.algorithm.name(), cfg.eval_turns)?;
        Ok((dest, report))
    }
}

fn lora_checkpoint<'c>(
    cfg: &'c TrainConfig,
    lora: Option<&'c LoraConfig>,
) -> Option<LoraCheckpoint<'c>> {
    lora.map(|config| LoraCheckpoint {
        config,
        base: &cfg.model,
        seed: cfg.seed,
    })
}

/// `--stop-after`, if given, must name a step after `at` (the run's current step) that the run
/// reaches (at most `total`).
fn check_stop(stop_after: Option<usize>, at: usize, total: usize) -> Result<()> {
    match stop_after {
        Some(stop) if stop <= at || stop > total => Err(Error::arg(
            format!("--stop-after {stop}"),
            format!("must be after the run's current step {at} and at most its last, {total}"),
        )),
        _ => Ok(()),
    }
}

/// A resumed run: lock the directory (before anything in it is read or truncated), remove what
/// killed writers left, load the latest verified checkpoint, check its state against the config
/// and `--stop-after`, and cut the logs back to its step — refusing a history with lines
/// missing, which would restart the curves at the checkpoint.
fn resume_run<B: FusedAutodiffBackend>(
    opts: &TrainOptions,
    total: usize,
    optim: PolicyOptimizer<B>,
    lora: Option<LoraCheckpoint<'_>>,
    device: &B::Device,
) -> Result<(Restored<B>, RunLock)> {
    let (cfg, run) = (&opts.config, opts.run_dir.as_path());
    let lock = RunLock::acquire(run)?;
    for p in lock.clean_stale()? {
        tracing::info!(removed = %p.display(), "left by a killed run");
    }
    let r = restore_latest::<B>(run, optim, lora, device)?;
    let step = r.state.step;
    check_stop(opts.stop_after, step, total)?;
    if r.state.data_position != step * cfg.prompts_per_step() {
        return Err(Error::checkpoint(
            r.dir.join("trainer_state.json"),
            format!(
                "data_position {} does not match step {step} × {} prompts per step",
                r.state.data_position,
                cfg.prompts_per_step()
            ),
        ));
    }
    tracing::info!(checkpoint = %r.dir.display(), step, "resuming");
    let metrics = JsonlLog::new(run.join("metrics.jsonl"));
    let kept = metrics.truncate_after(step)?;
    if kept != (1..=step).collect::<Vec<_>>() {
        return Err(Error::checkpoint(
            metrics.path(),
            format!(
                "holds {} step lines where the checkpoint at step {step} needs steps 1..={step} \
                 (deleted or truncated?); restore it from a copy, or start a new run",
                kept.len()
            ),
        ));
    }
    JsonlLog::new(run.join("completions.jsonl")).truncate_after(step)?;
    JsonlLog::new(run.join("eval").join("metrics.jsonl")).truncate_after(step)?;
    Ok((r, lock))
}

/// A new run (or, with `restart`, one killed before its first checkpoint, begun again):
/// refuse a directory that holds a run, load the model (LoRA: every weight frozen, adapters
/// attached with B = 0, so the base model's outputs), lock the directory, remove what an
/// earlier start left, write `config.resolved.toml`.
fn start_run<B: FusedAutodiffBackend>(
    cfg: &TrainConfig,
    model_config: &Qwen2Config,
    run: &Path,
    restart: bool,
    lora: Option<&LoraConfig>,
    device: &B::Device,
) -> Result<(Qwen2ForCausalLM<B>, RunLock)> {
    let metrics = run.join("metrics.jsonl");
    let taken = || {
        Error::Invalid(format!(
            "{} already holds a run; continue it with --resume {}, or choose another --out",
            run.display(),
            run.display()
        ))
    };
    if metrics.exists() && !restart {
        return Err(taken());
    }
    let model = load_weights::<B>(&cfg.model, model_config, device)?;
    let model = match lora {
        Some(l) => model.with_lora(l, cfg.seed, device),
        None => model,
    };
    let lock = RunLock::acquire(run)?;
    if restart {
        for p in lock.clean_stale()? {
            tracing::info!(removed = %p.display(), "left by a killed run");
        }
        if !checkpoint::list(run)?.is_empty() {
            return Err(taken()); // a checkpoint written meanwhile
        }
    } else if metrics.exists() {
        return Err(taken()); // a run that started meanwhile
    }
    // what an earlier start killed before its first checkpoint logged (its step-0 evaluation
    // at least) is redone by this run
    for stale in [
        metrics,
        run.join("completions.jsonl"),
        run.join("eval").join("metrics.jsonl"),
    ] {
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| Error::io(&stale, e))?;
        }
    }
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
    Ok((model, lock))
}
