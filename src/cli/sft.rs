//! `mgrpo sft`: supervised fine-tuning, and the STaR baselines (a `[star]` table).

use crate::fused::FusedAutodiffBackend;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::DeviceArg;

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct SftArgs {
    /// The SFT config (TOML; keys follow TRL's SFTConfig, plus an optional [star] table).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config key (repeatable): --set learning_rate=1e-5 --set star.source=revisions.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The run directory (default: the config's output_dir, else runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn sft<B: FusedAutodiffBackend>(a: SftArgs, device: &B::Device) -> Result<()> {
    use crate::train::default_run_dir;
    use crate::train::sft::SftConfig;
    let config = SftConfig::load(&a.config, &a.set)?;
    let run = a
        .out
        .clone()
        .or_else(|| config.output_dir.clone())
        .unwrap_or_else(|| default_run_dir(&a.config));
    let s = crate::train::sft::sft::<B>(&config, &run, device)?;
    let kept = match s.sampled {
        Some(n) => format!("STaR kept {} of {n} samples; ", s.examples),
        None => String::new(),
    };
    eprintln!(
        "{kept}{} steps on {} examples, last loss {:.4}; model in {}",
        s.steps,
        s.examples,
        s.last_loss,
        s.final_model.display()
    );
    Ok(())
}
