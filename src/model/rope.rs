//! Rotary position embedding, HF Qwen2 convention: **rotate-half**, not interleaved pairs.
//!
//! `inv_freq_i = θ^(-2i/head_dim)` for `i < head_dim/2`; with `cos, sin` of `pos · inv_freq`
//! repeated twice along the last dim, `rot(x) = x·cos + rotate_half(x)·sin` where
//! `rotate_half([x1, x2]) = [-x2, x1]`. (`burn::nn::RotaryEncoding` rotates interleaved pairs
//! `(x0, x1), (x2, x3), …`, which gives different numbers on HF weights.)
//!
//! Positions are an explicit tensor (built from the attention mask by the caller), so a
//! left-padded row gets the same angles as the same row unpadded. The tables are computed in f32
//! exactly as transformers does (`inv_freq` in f32, `angle = inv_freq · pos` in f32).

use crate::fused::FusedBackend;
use burn::prelude::*;
use burn::tensor::DType;

/// The `cos` and `sin` tables for a batch of positions.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    /// `[batch, seq, 1, head_dim]`
    pub cos: Tensor<B, 4>,
    /// `[batch, seq, 1, head_dim]`
    pub sin: Tensor<B, 4>,
}

/// `inv_freq_i = 1 / θ^(2i/head_dim)` in f32, as transformers computes it.
pub fn inv_freq(head_dim: usize, theta: f64) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| 1.0f32 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
        .collect()
}

impl<B: FusedBackend> RopeTables<B> {
    /// # Shapes
    /// - `positions`: `[batch, seq]` (integer positions, e.g. `cumsum(mask) - 1`)
    /// - returns tables of shape `[batch, seq, 1, head_dim]`, in the dtype `dtype`.
    pub fn new(positions: Tensor<B, 2, Int>, head_dim: usize, theta: f64, dtype: DType) -> Self {
        let device = positions.device();
        let [batch, seq] = positions.dims();
        let half = head_dim / 2;
        let inv = Tensor::<B, 1>::from_data(
            TensorData::new(inv_freq(head_dim, theta), [half]),
            (&device, DType::F32),
        );
        let pos = positions.float().cast(DType::F32).reshape([batch, seq, 1]); // [b, s, 1]
        let angles = pos * inv.reshape([1, 1, half]); // [b, s, half]
        let emb = Tensor::cat(vec![angles.clone(), angles], 2).unsqueeze_dim::<4>(2); // [b, s, 1, hd]
        Self {
            cos: emb.clone().cos().cast(dtype),
            sin: emb.sin().cast(dtype),
        }
    }

    /// Rotate `x` (queries or keys), in the projections' own layout: a contiguous
    /// `[batch, seq, heads, head_dim]` (before the heads are moved in front of the sequence) is
    /// several times cheaper for the CPU backends than the transposed view.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, heads, head_dim]` → same shape.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::fused::rope(x, self.cos.clone(), self.sin.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    /// Hand-worked case: head_dim 4, θ = 100 → inv_freq = [1, 0.1]; at position 1 the pairs
    /// (x0, x2) and (x1, x3) rotate by 1 and 0.1 rad (rotate-half pairs i with i + hd/2).
    #[test]
    fn rotate_half_pairs_by_hand() {
        let dev = Default::default();
        let pos = Tensor::<TestBackend, 2, Int>::from_data([[0, 1]], &dev);
        let t = RopeTables::new(pos, 4, 100.0, DType::F32);
        let x = Tensor::<TestBackend, 4>::from_data(
            [[[[1.0, 2.0, 3.0, 4.0]], [[1.0, 2.0, 3.0, 4.0]]]],
            &dev,
        ); // [1, 2, 1, 4]
        let y: Vec<f32> = t.apply(x).into_data().to_vec().unwrap();
        // position 0: unchanged
        assert_eq!(&y[..4], &[1.0, 2.0, 3.0, 4.0]);
        let (c1, s1, c2, s2) = (1f32.cos(), 1f32.sin(), 0.1f32.cos(), 0.1f32.sin());
        let expect = [
            1.0 * c1 - 3.0 * s1,
            2.0 * c2 - 4.0 * s2,
            3.0 * c1 + 1.0 * s1,
            4.0 * c2 + 2.0 * s2,
        ];
        for (a, b) in y[4..].iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{y:?} vs {expect:?}");
        }
    }
}
