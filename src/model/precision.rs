//! Numeric precision: `f32`, or `bf16` weights and activations with the numerically delicate
//! parts in f32 — RMSNorm statistics, the attention softmax (inside Burn's fused kernel),
//! log-probs, the loss and the optimizer.
//!
//! Two ways to run in bf16:
//! - **inference** (`CausalLm::to_precision`): every weight is cast to bf16 once, so
//!   decoding reads half the bytes;
//! - **training** (`CausalLm::with_compute_dtype`): the trained weights stay f32
//!   ("master weights", so AdamW's small updates are not rounded away and its moments are
//!   f32), and each weight is cast to bf16 where it is used; gradients flow back through the
//!   cast to f32. This is PyTorch's autocast recipe.

use crate::fused::FusedBackend;
use std::fmt;
use std::str::FromStr;

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::DType;

use crate::Error;

/// `--dtype` / the `bf16` config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
        }
    }

    /// Bytes of one value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::Bf16 => 2,
        }
    }

    /// The precision of the TRL-style `bf16 = true|false` key.
    pub fn from_bf16(bf16: bool) -> Self {
        if bf16 {
            Self::Bf16
        } else {
            Self::F32
        }
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            _ => Err(Error::arg(
                "--dtype",
                format!("unknown dtype `{s}` (expected f32 or bf16)"),
            )),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

/// `t` in `dtype` (no op when it already is).
pub(crate) fn like<B: FusedBackend, const D: usize>(t: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if t.dtype() == dtype {
        t
    } else {
        t.cast(dtype)
    }
}

/// Casts every float parameter to one dtype, keeping parameter ids.
pub(crate) struct CastParams(pub DType);

impl<B: FusedBackend> ModuleMapper<B> for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, like(tensor, self.0), mapper)
    }
}

/// Casts the frozen (no-gradient) float parameters to one dtype, keeping parameter ids.
pub(crate) struct CastFrozen(pub DType);

impl<B: FusedBackend> ModuleMapper<B> for CastFrozen {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if tensor.is_require_grad() {
            tensor
        } else {
            like(tensor, self.0)
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}
