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
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Override a config key (repeatable): --set learning_rate=1e-5 --set loss_type=grpo.
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
    pub set: Vec<String>,
    /// Continue the run in this directory from its last checkpoint, with its
    /// config.resolved.toml.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// The run directory (default: the config's output_dir, else runs/<config name>).
    #[arg(long, conflicts_with = "resume")]
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
    let opts = match &a.resume {
        Some(run) => {
            let path = run.join("config.resolved.toml");
            if !path.is_file() {
                bail!("--resume {}: no config.resolved.toml there", run.display());
            }
            TrainOptions {
                config: TrainConfig::load(&path, &[])?,
                run_dir: run.clone(),
                resume: true,
                stop_after: a.stop_after,
            }
        }
        None => {
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
            TrainOptions {
                config,
                run_dir,
                resume: false,
                stop_after: a.stop_after,
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
