//! Where a module's weights come from: a checkpoint's tensors (`checkpoint.rs`) or an
//! initialiser (random or transformers-like, `qwen2.rs`). Every module has one constructor
//! that takes a [`WeightSource`] and the checkpoint key of each of its tensors, so loading and
//! fresh initialisation build the same tree in one place, with every LoRA slot empty.

use crate::fused::FusedBackend;
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

use crate::error::Result;

/// What a weight is, for an initialiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// A linear layer's weight (`[in, out]`).
    Matrix,
    Embedding,
    Bias,
    /// An RMSNorm scale.
    Norm,
}

/// A source of named weights. Keys are the HF checkpoint keys.
pub trait WeightSource<B: FusedBackend> {
    /// The `[rows, cols]` tensor `key`, stored as is (an embedding).
    fn matrix(&mut self, key: &str, kind: Init, shape: [usize; 2]) -> Result<Param<Tensor<B, 2>>>;

    /// The `[n]` tensor `key` (a bias, a norm's scale).
    fn vector(&mut self, key: &str, kind: Init, n: usize) -> Result<Param<Tensor<B, 1>>>;

    /// The weight `key` of a linear layer, in Burn's `[in, out]` layout (HF stores `[out, in]`).
    fn linear_weight(
        &mut self,
        key: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Param<Tensor<B, 2>>>;

    /// The linear layer `{prefix}.weight` (and `{prefix}.bias` when `bias`).
    fn linear(&mut self, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Linear<B>> {
        let weight = self.linear_weight(&format!("{prefix}.weight"), d_in, d_out)?;
        let bias = match bias {
            true => Some(self.vector(&format!("{prefix}.bias"), Init::Bias, d_out)?),
            false => None,
        };
        Ok(Linear { weight, bias })
    }
}

/// Every tensor drawn by `draw(kind, shape)` (vectors as `[1, n]`), in the order asked for.
pub struct Initializer<'a, B: Backend> {
    pub draw: Box<dyn FnMut(Init, [usize; 2]) -> Tensor<B, 2> + 'a>,
}

impl<B: FusedBackend> WeightSource<B> for Initializer<'_, B> {
    fn matrix(&mut self, _: &str, kind: Init, shape: [usize; 2]) -> Result<Param<Tensor<B, 2>>> {
        Ok(Param::from_tensor((self.draw)(kind, shape)))
    }

    fn vector(&mut self, _: &str, kind: Init, n: usize) -> Result<Param<Tensor<B, 1>>> {
        Ok(Param::from_tensor((self.draw)(kind, [1, n]).reshape([n])))
    }

    fn linear_weight(
        &mut self,
        key: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Param<Tensor<B, 2>>> {
        self.matrix(key, Init::Matrix, [d_in, d_out])
    }
}
