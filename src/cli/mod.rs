//! The subcommands' arguments and bodies, one file per command; `main.rs` parses and
//! dispatches. Shared here: the `--device` flag and output writing.

pub mod bench;
pub mod convert;
pub mod eval;
pub mod generate;
pub mod score;
pub mod sft;
pub mod train;
pub mod verify;

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct DeviceArg {
    /// Backend and device: cpu, ndarray, flex, wgpu, cuda[:N], tch[:cpu|:cuda:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Write `out` to `path` atomically, or to stdout.
pub fn emit(path: Option<&Path>, out: &str) -> Result<()> {
    match path {
        Some(path) => mgrpo::fsutil::write_atomic(path, out.as_bytes()).context("writing --output"),
        None => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(out.as_bytes())
                .context("writing to stdout")
        }
    }
}
