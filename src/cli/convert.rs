//! `mgrpo convert`: load an HF model directory and save it again.

use crate::fused::FusedBackend;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::model::{load_model, save_model, SaveDtype, SaveOptions};
use crate::run::dest;

use super::args::DeviceArg;

#[derive(Args)]
// "-1" is a value to check, not an unknown flag ("--temperature: must be ≥ 0")
#[command(allow_negative_numbers = true)]
pub struct ConvertArgs {
    /// Source HF model directory, or a hub id `ORG/NAME[@REVISION]` in the local Hugging Face
    /// cache.
    #[arg(long)]
    pub model: PathBuf,
    /// Destination directory (must not exist unless --overwrite; never a run directory).
    #[arg(long)]
    pub out: PathBuf,
    /// Weight dtype to write: f32 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Shard the weights above this many bytes per file.
    #[arg(long, default_value_t = 5_000_000_000)]
    pub max_shard_bytes: usize,
    /// Replace --out if it holds a model (a directory with other files, or a run, is refused).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub device: DeviceArg,
}

/// What `mgrpo convert` writes: a Hugging Face model directory (with the side files a
/// checkpoint carries: tokenizer, templates, README).
const MODEL_OUTPUT: dest::Kind = dest::Kind {
    command: "mgrpo convert",
    what: "a model",
    marker: "config.json",
    owns: |n| {
        [".json", ".safetensors", ".jinja", ".txt", ".model", ".md"]
            .iter()
            .any(|e| n.ends_with(e))
            || n == ".gitattributes"
    },
};

pub fn convert<B: FusedBackend>(mut a: ConvertArgs, device: &B::Device) -> Result<()> {
    a.model = crate::model::hub::locate(&a.model)?;
    let dtype =
        SaveDtype::parse(&a.dtype).map_err(|e| crate::Error::arg("--dtype", e.to_string()))?;
    if a.max_shard_bytes == 0 {
        anyhow::bail!("--max-shard-bytes: must be > 0");
    }
    // refused before loading: a run, someone else's files, a model without --overwrite; a
    // run's own model (`RUN/model`) is replaced only under the run's lock
    let _claim = dest::claim(&a.out, MODEL_OUTPUT, a.overwrite, false)?;
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
