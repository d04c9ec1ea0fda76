//! What the subcommands share: the backends they run on, the `--device` and `--dtype` flags,
//! and writing an output file or stdout.

use crate::fused::FusedBackend;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;

/// A backend the binary trains on (`Autodiff<B>`). With the `nccl` feature, Burn 0.21's
/// `distributed` makes its autodiff backend require the inner backend's distributed operations,
/// which only the CubeCL backends (cuda, wgpu) have; that build leaves the others out.
#[cfg(feature = "nccl")]
pub(crate) trait Trainable:
    FusedBackend + burn::tensor::backend::distributed::DistributedBackend
{
}
#[cfg(feature = "nccl")]
impl<B: FusedBackend + burn::tensor::backend::distributed::DistributedBackend> Trainable for B {}
#[cfg(not(feature = "nccl"))]
pub(crate) trait Trainable: FusedBackend {}
#[cfg(not(feature = "nccl"))]
impl<B: FusedBackend> Trainable for B {}

#[derive(Args)]
pub(crate) struct DeviceArg {
    /// Backend and device: cpu, ndarray, flex, wgpu, cuda[:N], tch[:cpu|:cuda:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Args)]
pub(crate) struct DtypeArg {
    /// Numeric precision: f32, or bf16 (weights and activations in bf16; norms, softmax and
    /// log-probs in f32).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

impl DtypeArg {
    pub(crate) fn precision(&self) -> Result<crate::model::Precision> {
        Ok(self.dtype.parse()?)
    }
}

/// Refuse an `--output` that is one of the command's `inputs` (`(flag, path)`): writing it
/// would replace what was read. Checked before any work.
pub(crate) fn output_not_an_input(output: Option<&Path>, inputs: &[(&str, &Path)]) -> Result<()> {
    let Some(out) = output.and_then(|o| o.canonicalize().ok()) else {
        return Ok(()); // a new file is nobody's input
    };
    for (flag, input) in inputs {
        if input.canonicalize().is_ok_and(|i| i == out) {
            anyhow::bail!(
                "--output {} is the file {flag} reads: writing it would replace the input; \
                 choose another output",
                out.display()
            );
        }
    }
    Ok(())
}

/// Write `out` to `path` atomically, or to stdout.
pub(crate) fn emit(path: Option<&Path>, out: &str) -> Result<()> {
    match path {
        Some(path) => {
            crate::run::fsutil::write_atomic(path, out.as_bytes()).context("writing --output")
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .lock()
                .write_all(out.as_bytes())
                .context("writing to stdout")
        }
    }
}
