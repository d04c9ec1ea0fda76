//! The training loop (docs/ARCHITECTURE.md): set the run up once ([`Trainer`]), evaluate the
//! start model, then step — collect → score → update → metrics (`step.rs`) — evaluating and
//! checkpointing on schedule; resume from the last checkpoint exactly; stop on repeated
//! non-finite steps.

mod begin;
pub(crate) mod checkpoint;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod critic;
pub(crate) mod evaluate;
pub(crate) mod identity;
pub(crate) mod manifest;
pub(crate) mod memory;
pub(crate) mod nodes;
mod optim_config;
pub(crate) mod order;
mod overrides;
mod ppo_step;
mod secret;
mod setup;
pub mod sft;
pub(crate) mod star;
pub(crate) mod step;
pub(crate) mod trainer;
mod trl_keys;
pub(crate) mod validate;

use crate::fused::FusedAutodiffBackend;
use std::path::{Path, PathBuf};

pub use config::{Algorithm, TrainConfig};
pub use optim_config::OptimConfig;
pub use trainer::Trainer;

use crate::error::{Error, Result};
use crate::metrics::{Progress, StepMetrics};
use crate::run::interrupt;

/// How to run `mgrpo train`.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: TrainConfig,
    pub run_dir: PathBuf,
    /// Continue the run in `run_dir` from its last checkpoint.
    pub resume: bool,
    /// Stop after this step (checkpointing it), as if interrupted.
    pub stop_after: Option<usize>,
    /// With `resume`: the config the command line gave (`--config` with `--resume`: start
    /// the run, or continue it), which must be the one the run started with.
    pub expected: Option<TrainConfig>,
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

/// Run (or resume) a training run.
pub fn train<B: FusedAutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary> {
    let mut trainer = Trainer::<B>::new(opts, device)?;
    let out = run_steps(opts, &mut trainer);
    if let Err(e) = &out {
        nodes::tell_others(trainer.mesh(), e);
    }
    out
}

/// The steps of a run set up in `trainer`, to its end or its stop.
fn run_steps<B: FusedAutodiffBackend>(
    opts: &TrainOptions,
    trainer: &mut Trainer<'_, B>,
) -> Result<TrainSummary> {
    if trainer.state.step == 0 {
        trainer.evaluate()?;
    }
    let progress = Progress::new(trainer.total, trainer.state.step);
    let mut last = None;
    let mut silent = SilentReward::new(&opts.config);
    while !trainer.done() {
        let m = trainer.step()?;
        progress.step(&m);
        log_step(&m);
        silent.observe(&m);
        if m.skipped {
            if let Err(e) = trainer.check_nonfinite(m.loss, m.grad_norm) {
                progress.finish();
                return Err(e);
            }
        }
        if trainer.eval_due() {
            trainer.evaluate()?;
        }
        // a signal stops the run here, at a step boundary, as `--stop-after` would (every node
        // of a multi-node run at the same step, whichever got the signal)
        let local = interrupt::requested().filter(|_| !trainer.done());
        let interrupted = nodes::agree_stop(trainer.mesh(), local)?;
        let stop_now = opts.stop_after == Some(m.step) || interrupted.is_some();
        let saved = match trainer.save_due() || stop_now {
            true => Some(trainer.save_checkpoint()?),
            false => None,
        };
        last = Some(m);
        if let (Some(i), Some(saved)) = (interrupted, saved) {
            progress.finish();
            return Err(interrupted_error(i, trainer, &saved, &opts.run_dir));
        }
        if stop_now {
            break;
        }
    }
    progress.finish();
    let (final_model, report) = match trainer.done() {
        true => {
            let (model, report) = trainer.finish()?;
            (Some(model), report)
        }
        false => (None, None),
    };
    Ok(TrainSummary {
        run_dir: opts.run_dir.clone(),
        steps_done: trainer.state.step,
        total_steps: trainer.total,
        final_model,
        last,
        report,
    })
}

/// What an interrupted run tells the user: where it stopped and how to go on.
fn interrupted_error<B: FusedAutodiffBackend>(
    i: nodes::Stop,
    trainer: &Trainer<'_, B>,
    checkpoint: &Path,
    run: &Path,
) -> Error {
    Error::Interrupted {
        signal: i.interrupt.signal,
        msg: format!(
            "interrupted by {} after step {} of {}; checkpoint {}; continue with: mgrpo train \
             --resume {}",
            i.by,
            trainer.state.step,
            trainer.total,
            checkpoint.display(),
            run.display()
        ),
    }
}

/// Steps in a row with reward 0 and no `\boxed{}` answer before `SilentReward` warns.
pub const SILENT_STEPS: usize = 10;

/// A loud warning for a run that cannot learn: the verifier finds no answer in any completion,
/// step after step (a prompt that does not ask for `\boxed{}`, or a task the `accuracy` reward
/// does not fit), so the reward is exactly 0 and GRPO has no signal.
struct SilentReward {
    watching: bool,
    in_a_row: usize,
}

impl SilentReward {
    fn new(cfg: &TrainConfig) -> Self {
        Self {
            watching: cfg.reward.funcs.iter().any(|f| f == "accuracy"),
            in_a_row: 0,
        }
    }

    fn observe(&mut self, m: &StepMetrics) {
        if !self.watching {
            return;
        }
        self.in_a_row = if m.reward == 0.0 && m.format == 0.0 {
            self.in_a_row + 1
        } else {
            0
        };
        if self.in_a_row == SILENT_STEPS {
            tracing::warn!(
                "reward 0 for {SILENT_STEPS} steps in a row (through step {}) and no completion \
                 has a \\boxed{{}} answer: the `accuracy` reward reads only marked answers \
                 (\\boxed{{}}, \"the answer is\", \"####\"), so there is nothing to learn from. \
                 Use a template that asks for \\boxed{{}} (qwen-math, or a chat template whose \
                 system prompt does), add the `format` reward, let the verifier read unmarked \
                 answers ([reward.policy] extraction = \"last_math\" or \"last_number\"), or \
                 grade this task with a reward of its own ([reward] funcs)",
                m.step
            );
        }
    }
}

/// The step's structured log line (`-v`).
fn log_step(m: &StepMetrics) {
    tracing::info!(
        step = m.step,
        reward = m.reward,
        accuracy = m.accuracy,
        loss = m.loss,
        grad_norm = m.grad_norm,
        kl = m.kl,
        lr = m.learning_rate,
        tokens_per_s = m.tokens_per_second,
        "step"
    );
}

/// The default run directory for a config file: `runs/<config stem>`.
pub fn default_run_dir(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    PathBuf::from("runs").join(stem)
}
