//! `mgrpo train`: a GRPO, MGRPO, iGRPO or PPO run from a TOML config, or the continuation of one.

use std::path::PathBuf;

use anyhow::{bail, Result};
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::Autodiff;
use clap::Args;

use super::args::DeviceArg;

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// The run config (TOML). Default: configs/tiny-mgrpo.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override a config key (repeatable): --set learning_rate=1e-5 --set loss_type=grpo.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// `--resume RUN_DIR`: continue the run in RUN_DIR from its last checkpoint, with its
    /// config.resolved.toml. `--resume` with no value, after the command that started the run:
    /// start it if its directory holds no run yet, else continue it (it must have been
    /// started with the same config): the one command for every state of a run.
    #[arg(long, value_name = "RUN_DIR", num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// The run directory (default: the config's output_dir, else runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop after this step, checkpointing it (continue later with --resume). Ctrl-C or
    /// SIGTERM does the same after the step in progress (exit status 130 / 143).
    #[arg(long, value_name = "STEP")]
    pub stop_after: Option<usize>,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// The autodiff backend is chosen here, from the config: Burn's balanced checkpointing
/// (memory-bound operations recomputed in the backward pass, compute-bound ones kept) when
/// `gradient_checkpointing = true`.
pub fn train<B: super::args::Trainable>(a: TrainArgs, device: &B::Device) -> Result<()> {
    use crate::train::{default_run_dir, TrainConfig, TrainOptions};
    let start = || -> Result<(TrainConfig, PathBuf)> {
        let path = a
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("configs/tiny-mgrpo.toml"));
        let config = TrainConfig::load(&path, &a.set)?;
        let run_dir = a
            .out
            .clone()
            .or_else(|| config.output_dir.clone())
            .unwrap_or_else(|| default_run_dir(&path));
        Ok((config, run_dir))
    };
    let opts = match &a.resume {
        Some(Some(run)) => {
            if a.config.is_some() || !a.set.is_empty() || a.out.is_some() {
                bail!(
                    "--resume {}: continues a run with its own config; give no --config, --set \
                     or --out with it (or use `--resume` with no value after the command that \
                     started the run)",
                    run.display()
                );
            }
            let path = run.join("config.resolved.toml");
            if !path.is_file() {
                bail!(
                    "--resume {}: no config.resolved.toml there, so no run to continue (a run \
                     stopped before it wrote its config has lost nothing); the command that \
                     started it, with `--resume` added, starts it or continues it",
                    run.display()
                );
            }
            TrainOptions {
                config: TrainConfig::load(&path, &[])?,
                run_dir: run.clone(),
                resume: true,
                stop_after: a.stop_after,
                expected: None,
            }
        }
        resume => {
            let (config, run_dir) = start()?;
            let stored = run_dir.join("config.resolved.toml");
            // `--resume` with no value: continue the run there is, checked against this config
            match resume.is_some() && stored.is_file() {
                true => {
                    let mut resumed = TrainConfig::load(&stored, &[])?;
                    // how a node reaches the others may change between restarts (node 0 on
                    // another machine); everything else must be what the run started with
                    crate::train::identity::take_launch(&mut resumed, &config);
                    TrainOptions {
                        config: resumed,
                        run_dir,
                        resume: true,
                        stop_after: a.stop_after,
                        expected: Some(config),
                    }
                }
                false => TrainOptions {
                    config,
                    run_dir,
                    resume: false,
                    stop_after: a.stop_after,
                    expected: None,
                },
            }
        }
    };
    // Ctrl-C / SIGTERM: checkpoint the current step and exit 130 / 143 (train::train)
    crate::run::interrupt::install()?;
    let s = if opts.config.gradient_checkpointing {
        crate::train::train::<Autodiff<B, BalancedCheckpointing>>(&opts, device)?
    } else {
        crate::train::train::<Autodiff<B>>(&opts, device)?
    };
    if let Some(table) = &s.report {
        println!("{table}");
    }
    match &s.final_model {
        Some(model) => eprintln!(
            "trained {} steps{}; model in {}, metrics and plots in {}",
            s.steps_done,
            s.last
                .as_ref()
                .map(|m| format!(": reward {:.3}, accuracy {:.3}", m.reward, m.accuracy))
                .unwrap_or_default(),
            model.display(),
            s.run_dir.display()
        ),
        None => eprintln!(
            "stopped after step {} of {}; continue with: mgrpo train --resume {}",
            s.steps_done,
            s.total_steps,
            s.run_dir.display()
        ),
    }
    Ok(())
}
