//! The [`Trainer`]: everything a run holds from its first step to its last, built once — the
//! policy and its optimizer state (one replica per device), the frozen reference when β > 0,
//! the learning-rate schedule, the update and sampling settings, the run directory's logs and
//! the trainer state that a checkpoint saves. The step itself is in `step.rs`.

use crate::fused::FusedAutodiffBackend;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use burn::module::AutodiffModule;

use super::begin::{begin, check_stop, lora_checkpoint};
use super::checkpoint::{self, save_checkpoint, CheckpointSpec, TrainerState};
use super::critic::{load_start, Critic};
use super::evaluate::{eval_report, run_eval, EvalContext};
use super::setup::{memory_plan, rollout_generation, schedule, setup, update_config};
use super::setup::{warn_trl_differences, Setup};
use super::{TrainConfig, TrainOptions};
use crate::error::{Error, Result};
use crate::generate::GenerateConfig;
use crate::metrics::tensorboard::EventWriter;
use crate::metrics::{plot, JsonlLog};
use crate::model::lora::LoraConfig;
use crate::model::{load_adapter, load_weights, save_adapter, save_model, Precision};
use crate::model::{CausalLm, SaveOptions};
use crate::rl::grpo::UpdateConfig;
use crate::rl::mesh::Mesh;
use crate::rl::optim::PolicyOptimizer;
use crate::rl::parallel::{check_devices, devices, DataParallel};
use crate::rl::schedule::Schedule;
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
    pub(super) model: Option<CausalLm<B>>,
    pub(super) optim: PolicyOptimizer<B>,
    pub(super) dp: DataParallel<B>,
    /// The other nodes, in a multi-node run.
    pub(super) mesh: Option<Arc<Mesh>>,
    /// The frozen reference, in the compute dtype; only when the KL term exists (β > 0, or
    /// PPO's `kl_coef > 0`).
    pub(super) reference: Option<CausalLm<B::InnerBackend>>,
    /// PPO's critic (`algorithm = "ppo"` only).
    pub(super) critic: Option<Critic<B>>,
    pub(super) schedule: Schedule,
    pub(super) update: UpdateConfig,
    /// The rollouts' sampling settings (count, budget and seed are set per draw).
    pub(super) gen: GenerateConfig,
    pub(super) precision: Precision,
    pub(super) lora: Option<LoraConfig>,
    pub(super) metrics: JsonlLog,
    /// `report_to = "tensorboard"`: this (re)start's event file in `RUN/runs/`.
    pub(super) tensorboard: Option<EventWriter>,
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
        } else if B::memory_is_host() {
            // on a CPU backend the device is the machine: refused before allocating
            if let Some(machine) = crate::run::machine::memory_bytes() {
                check_fits(&plan, machine)?;
            }
        }
        check_devices::<B::InnerBackend>(&devices(device, cfg.num_devices))?;
        let total = cfg.total_steps(setup.dataset.len());
        check_stop(opts.stop_after, 0, total)?;
        let adam = cfg.optim.adam();
        let lora = cfg.lora();
        let value_model = match cfg.algorithm.has_critic() {
            true => load_start::<B>(cfg, &setup.model_config, device)?,
            false => None,
        };
        // every node agrees before any writes its run directory
        let mesh = super::nodes::join(opts)?;
        let begun = begin::<B>(opts, &setup, total, &adam, lora.as_ref(), device)
            .inspect_err(|e| super::nodes::tell_others(mesh.as_deref(), e))?;
        warn_trl_differences(cfg);
        eprintln!("{plan}");
        let critic = match cfg.algorithm.has_critic() {
            true => Some(Critic::new(
                cfg,
                value_model,
                (&begun.model, &setup.model_config),
                &adam,
                begun.checkpoint.as_deref(),
                device,
            )?),
            false => None,
        };
        let mut model = begun.model.with_compute_dtype(precision.dtype());
        if lora.is_some() {
            model = model.with_frozen_in(precision.dtype());
        }
        let dp = data_parallel(cfg, &model, &begun.optim, device, mesh.clone())?;
        let reference = match (cfg.needs_reference(), begun.synced_reference) {
            (false, _) => None,
            (true, Some(synced)) => Some(synced.to_precision(precision)),
            (true, None) => Some(
                load_weights::<B::InnerBackend>(&cfg.model, &setup.model_config, device)?
                    .to_precision(precision),
            ),
        };
        Ok(Self {
            cfg,
            run,
            schedule: schedule(cfg, total)?,
            update: update_config(cfg),
            gen: rollout_generation(cfg, &setup.eos_ids),
            setup: Rc::new(setup),
            model: Some(model),
            optim: begun.optim,
            dp,
            mesh,
            reference,
            critic,
            precision,
            lora,
            metrics: JsonlLog::new(run.join("metrics.jsonl")),
            tensorboard: match cfg.report_to.tensorboard() {
                true => Some(EventWriter::create(&run.join("runs"))?),
                false => None,
            },
            completions: JsonlLog::new(run.join("completions.jsonl")),
            device: device.clone(),
            state: begun.state,
            total,
            _lock: begun.lock,
        })
    }

    /// Device 0's policy.
    pub fn model(&self) -> &CausalLm<B> {
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

    /// The other nodes, in a multi-node run.
    pub fn mesh(&self) -> Option<&Mesh> {
        self.mesh.as_deref()
    }

    /// Checkpoint the current step (kept, in a multi-node run, once every node has).
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let dir = self.write_checkpoint()?;
        super::nodes::confirm_checkpoint(self.mesh(), &dir)?;
        Ok(dir)
    }

    fn write_checkpoint(&self) -> Result<PathBuf> {
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

/// The replicas over `num_devices` devices (summing with the other nodes through `mesh`, in
/// a multi-node run).
fn data_parallel<B: FusedAutodiffBackend>(
    cfg: &TrainConfig,
    model: &CausalLm<B>,
    optim: &PolicyOptimizer<B>,
    device: &B::Device,
    mesh: Option<Arc<Mesh>>,
) -> Result<DataParallel<B>> {
    let timeout = Duration::from_secs_f64(cfg.node_timeout_s);
    let devices = devices(device, cfg.num_devices);
    let dp = DataParallel::new(model, optim, devices, mesh, timeout)?;
    if cfg.world_size() > 1 {
        eprintln!("data parallel over {:?}", dp.devices());
    }
    Ok(dp)
}
