//! How a run begins: a new run (its directory refused if it holds one, the model loaded,
//! `config.resolved.toml` written), a run killed before its first checkpoint begun again, or
//! a run resumed from its last verified checkpoint with its logs cut back to that step.

use std::path::Path;

use super::checkpoint::{self, restore_latest, LoraCheckpoint, Restored, TrainerState};
use super::identity;
use super::setup::Setup;
use super::{TrainConfig, TrainOptions};
use crate::error::{Error, Result};
use crate::fused::FusedAutodiffBackend;
use crate::metrics::JsonlLog;
use crate::model::lora::LoraConfig;
use crate::model::{load_weights, CausalLm, ModelConfig};
use crate::rl::optim::{adamw, AdamParams, PolicyOptimizer};
use crate::run::fsutil::write_atomic;
use crate::run::lock::RunLock;

/// What a run starts its first step from.
pub(super) struct Begun<B: FusedAutodiffBackend> {
    pub model: CausalLm<B>,
    pub optim: PolicyOptimizer<B>,
    pub state: TrainerState,
    /// The reference a resumed run synced (`sync_ref_model`), as checkpointed.
    pub synced_reference: Option<CausalLm<B::InnerBackend>>,
    pub lock: RunLock,
    /// The checkpoint resumed from.
    pub checkpoint: Option<std::path::PathBuf>,
}

/// Begin the run `opts` names: resumed (`--resume` with a checkpoint), begun again (`--resume`
/// on a run killed before its first checkpoint) or new.
pub(super) fn begin<B: FusedAutodiffBackend>(
    opts: &TrainOptions,
    setup: &Setup,
    total: usize,
    adam: &AdamParams,
    lora: Option<&LoraConfig>,
    device: &B::Device,
) -> Result<Begun<B>> {
    let (cfg, run) = (&opts.config, opts.run_dir.as_path());
    let restart = opts.resume && checkpoint::list(run)?.is_empty();
    if restart {
        eprintln!(
            "{}: no checkpoint yet; starting the run again from step 0",
            run.display()
        );
    }
    if opts.resume {
        // the run continues only with what it started with (a restart too: it redoes the run
        // its config describes, not the command line's)
        let given = match &opts.expected {
            Some(c) => Some(absolute(&resolve(c, setup), run)?.to_toml()?),
            None => None,
        };
        identity::check(run, cfg, given.as_deref())?;
    }
    if opts.resume && !restart {
        let lora_ckpt = lora_checkpoint(cfg, lora);
        let (r, lock) = resume_run::<B>(opts, total, adamw(adam), lora_ckpt, device)?;
        return Ok(Begun {
            model: r.model,
            optim: r.optim,
            state: r.state,
            synced_reference: r.reference,
            lock,
            checkpoint: Some(r.dir),
        });
    }
    let resolved = resolve(cfg, setup);
    let (model, lock) = start_run::<B>(&resolved, &setup.model_config, run, restart, lora, device)?;
    let state = TrainerState {
        total_steps: total,
        seed: cfg.seed,
        ..Default::default()
    };
    Ok(Begun {
        model,
        optim: adamw::<B, _>(adam),
        state,
        synced_reference: None,
        lock,
        checkpoint: None,
    })
}

/// A LoRA run's adapter settings as its checkpoints record them.
pub(super) fn lora_checkpoint<'c>(
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
pub(super) fn check_stop(stop_after: Option<usize>, at: usize, total: usize) -> Result<()> {
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
    model_config: &ModelConfig,
    run: &Path,
    restart: bool,
    lora: Option<&LoraConfig>,
    device: &B::Device,
) -> Result<(CausalLm<B>, RunLock)> {
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
    if !restart {
        crate::run::dest::check_new_run(run)?;
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
    let resolved = absolute(cfg, run)?;
    let toml = resolved.to_toml()?;
    // what the run starts with first, then the config that makes it a run
    identity::record(run, &resolved, &toml)?;
    write_atomic(&run.join("config.resolved.toml"), toml.as_bytes())?;
    Ok((model, lock))
}

/// The config as the run records it: with the answer extraction the reward uses.
fn resolve(cfg: &TrainConfig, setup: &Setup) -> TrainConfig {
    let mut resolved = cfg.clone();
    let extraction = setup.dataset.format.extraction(&cfg.reward.policy);
    resolved.reward.policy.extraction = Some(extraction);
    resolved
}

/// `cfg` with absolute paths (the model, the dataset, the run), so that `--resume` works from
/// any directory.
fn absolute(cfg: &TrainConfig, run: &Path) -> Result<TrainConfig> {
    let mut resolved = cfg.clone();
    for p in [&mut resolved.model, &mut resolved.dataset] {
        *p = crate::data::rows::absolute(p)?;
    }
    if let Some(p) = &mut resolved.eval_dataset {
        *p = crate::data::rows::absolute(p)?;
    }
    resolved.output_dir = Some(std::fs::canonicalize(run).map_err(|e| Error::io(run, e))?);
    Ok(resolved)
}
