//! `mgrpo convert`: load an HF model directory and save it again.

use crate::fused::FusedBackend;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::model::{load_model, save_model, SaveDtype, SaveOptions};

use super::args::DeviceArg;

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct ConvertArgs {
    /// Source HF model directory, or a hub id `ORG/NAME[@REVISION]` in the local Hugging Face
    /// cache.
    #[arg(long)]
    pub model: PathBuf,
    /// Destination directory (must not exist unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Weight dtype to write: f32 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Shard the weights above this many bytes per file.
    #[arg(long, default_value_t = 5_000_000_000)]
    pub max_shard_bytes: usize,
    /// Replace --out if it exists.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn convert<B: FusedBackend>(mut a: ConvertArgs, device: &B::Device) -> Result<()> {
    a.model = crate::model::hub::locate(&a.model)?;
    let dtype =
        SaveDtype::parse(&a.dtype).map_err(|e| crate::Error::arg("--dtype", e.to_string()))?;
    if a.max_shard_bytes == 0 {
        anyhow::bail!("--max-shard-bytes: must be > 0");
    }
    let (config, model) = load_model::<B>(&a.model, device)?;
    let opts = SaveOptions {
        dtype,
        max_shard_bytes: a.max_shard_bytes,
        side_files_from: Some(a.model.clone()),
        overwrite: a.overwrite,
    };
    save_model(&model, &config, &a.out, &opts)?;
    eprintln!(
        "saved {} ({}) to {}",
        a.model.display(),
        a.dtype,
        a.out.display()
    );
    Ok(())
}
