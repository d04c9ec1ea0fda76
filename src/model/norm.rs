//! `RmsNorm`: `x / sqrt(mean(x²) + eps) * weight`, computed in f32 as transformers does
//! (normalise in f32, cast back to the input dtype, then multiply by `weight`).

use crate::fused::FusedBackend;
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;

use super::weights::{Init, WeightSource};
use crate::error::Result;

/// RMS normalisation over the last dimension. Field names follow the checkpoint keys
/// (`input_layernorm.weight`, `norm.weight`, …).
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// `[hidden_size]`
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: FusedBackend> RmsNorm<B> {
    /// The norm whose scale is `key` in `src`.
    pub fn new(key: &str, size: usize, eps: f64, src: &mut impl WeightSource<B>) -> Result<Self> {
        Ok(Self {
            weight: src.vector(key, Init::Norm, size)?,
            eps,
        })
    }

    /// A norm with weight 1 (the identity scale).
    pub fn ones(size: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([size], device)),
            eps,
        }
    }

    /// # Shapes
    /// - `x`: `[..., hidden_size]` → same shape.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let weight = self.weight.val();
        if dtype == DType::F32 && weight.dtype() == DType::F32 {
            // the rows through the fused operation (one pass on the CPU backends)
            let dims = x.dims();
            let h = dims[D - 1];
            let rows = x.shape().num_elements() / h.max(1);
            return crate::fused::rms_norm(x.reshape([rows, h]), weight, self.eps).reshape(dims);
        }
        let xf = x.cast(DType::F32);
        let rms = (xf.clone().square().mean_dim(D - 1) + self.eps).sqrt(); // [..., 1]
                                                                           // A true division: ndarray's SIMD `recip` is an approximation (relative error ~5e-5)
                                                                           // that moves log-probs by ~4e-4 on our fixtures.
        let normed = (xf / rms).cast(dtype);
        normed * super::precision::like(weight, dtype).unsqueeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    #[test]
    fn rms_norm_by_hand() {
        let dev = Default::default();
        let mut n = RmsNorm::<TestBackend>::ones(2, 0.0, &dev);
        n.weight = Param::from_tensor(Tensor::from_data([1.0, 2.0], &dev));
        // x = [3, 4]: mean(x²) = 12.5, rms = 3.5355…
        let y: Vec<f32> = n
            .forward(Tensor::<TestBackend, 2>::from_data([[3.0, 4.0]], &dev))
            .into_data()
            .to_vec()
            .unwrap();
        let r = 12.5f32.sqrt();
        assert!(
            (y[0] - 3.0 / r).abs() < 1e-6 && (y[1] - 8.0 / r).abs() < 1e-6,
            "{y:?}"
        );
    }
}
