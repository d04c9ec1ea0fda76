//! Rotary position embedding, the HF convention of every family here: **rotate-half**, not
//! interleaved pairs.
//!
//! `inv_freq_i = θ^(-2i/head_dim)` for `i < head_dim/2`; with `cos, sin` of `pos · inv_freq`
//! repeated twice along the last dim, `rot(x) = x·cos + rotate_half(x)·sin` where
//! `rotate_half([x1, x2]) = [-x2, x1]`. (`burn::nn::RotaryEncoding` rotates interleaved pairs
//! `(x0, x1), (x2, x3), …`, which gives different numbers on HF weights.)
//!
//! Positions are an explicit tensor (built from the attention mask by the caller), so a
//! left-padded row gets the same angles as the same row unpadded. The tables are computed in f32
//! exactly as transformers does (`inv_freq` in f32, `angle = inv_freq · pos` in f32).
//!
//! Llama 3.1's `llama3` scaling ([`Llama3Scaling`]) rescales the frequencies once, by
//! wavelength: kept below `original_max_position_embeddings / high_freq_factor`, divided by
//! `factor` above `original_max_position_embeddings / low_freq_factor`, interpolated between.

use crate::fused::FusedBackend;
use burn::prelude::*;
use burn::tensor::DType;
use serde::Deserialize;

use crate::error::KeyError;

/// The `cos` and `sin` tables for a batch of positions.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    /// `[batch, seq, 1, head_dim]`
    pub cos: Tensor<B, 4>,
    /// `[batch, seq, 1, head_dim]`
    pub sin: Tensor<B, 4>,
}

/// Llama 3.1's RoPE scaling (`rope_type = "llama3"`), with transformers' key names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// The RoPE of a model: its base and, for Llama 3.1+, its scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f64,
    pub llama3: Option<Llama3Scaling>,
}

impl Rope {
    /// `inv_freq_i = 1 / θ^(2i/head_dim)` in f32, as transformers computes it, then scaled.
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        let plain = (0..head_dim / 2)
            .map(|i| 1.0f32 / (self.theta as f32).powf((2 * i) as f32 / head_dim as f32));
        match &self.llama3 {
            None => plain.collect(),
            Some(s) => plain.map(|f| s.scale(f)).collect(),
        }
    }
}

impl Llama3Scaling {
    /// One frequency scaled as transformers' `_compute_llama3_parameters` does, in f32.
    fn scale(&self, inv_freq: f32) -> f32 {
        let old = self.original_max_position_embeddings as f32;
        let (factor, low) = (self.factor as f32, self.low_freq_factor as f32);
        let low_freq_wavelen =
            (self.original_max_position_embeddings as f64 / self.low_freq_factor) as f32;
        let high_freq_wavelen =
            (self.original_max_position_embeddings as f64 / self.high_freq_factor) as f32;
        let wavelen = (2.0 * std::f64::consts::PI) as f32 / inv_freq;
        let scaled = if wavelen > low_freq_wavelen {
            inv_freq / factor
        } else {
            inv_freq
        };
        // NaN-free: `wavelen` is finite and positive
        let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
        if !medium {
            return scaled;
        }
        let smooth =
            (old / wavelen - low) / ((self.high_freq_factor - self.low_freq_factor) as f32);
        (1.0 - smooth) * scaled / factor + smooth * scaled
    }
}

#[derive(Deserialize)]
/// A `rope_parameters` or `rope_scaling` object of `config.json`, as transformers writes it.
pub(super) struct RopeKeys {
    rope_type: Option<String>,
    /// The transformers-4 name of `rope_type`.
    #[serde(rename = "type")]
    kind: Option<String>,
    pub(super) rope_theta: Option<f64>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<usize>,
    partial_rotary_factor: Option<f64>,
}

impl RopeKeys {
    /// The scaling this RoPE describes (`key` is where it was found, for messages).
    pub(super) fn scaling(
        &self,
        key: &str,
    ) -> std::result::Result<Option<Llama3Scaling>, KeyError> {
        if let Some(p) = self.partial_rotary_factor.filter(|p| *p != 1.0) {
            return Err(KeyError::new(
                format!("{key}.partial_rotary_factor"),
                format!("{p} is not supported (only 1.0: RoPE over the whole head)"),
            ));
        }
        let kind = self.rope_type.as_deref().or(self.kind.as_deref());
        match kind {
            None | Some("default") => Ok(None),
            Some("llama3") => {
                let need = |k: &str, v: Option<f64>| {
                    v.ok_or_else(|| {
                        KeyError::new(format!("{key}.{k}"), "missing (llama3 RoPE needs it)")
                    })
                };
                Ok(Some(Llama3Scaling {
                    factor: need("factor", self.factor)?,
                    low_freq_factor: need("low_freq_factor", self.low_freq_factor)?,
                    high_freq_factor: need("high_freq_factor", self.high_freq_factor)?,
                    original_max_position_embeddings: self
                        .original_max_position_embeddings
                        .ok_or_else(|| {
                            KeyError::new(
                                format!("{key}.original_max_position_embeddings"),
                                "missing (llama3 RoPE needs it)",
                            )
                        })?,
                }))
            }
            Some(other) => Err(KeyError::new(
                format!("{key}.rope_type"),
                format!("`{other}` is not supported (only `default` and `llama3` RoPE)"),
            )),
        }
    }
}

impl<B: FusedBackend> RopeTables<B> {
    /// # Shapes
    /// - `positions`: `[batch, seq]` (integer positions, e.g. `cumsum(mask) - 1`)
    /// - returns tables of shape `[batch, seq, 1, head_dim]`, in the dtype `dtype`.
    /// - `inv_freq`: `[head_dim / 2]` ([`Rope::inv_freq`])
    pub fn new(positions: Tensor<B, 2, Int>, inv_freq: &[f32], dtype: DType) -> Self {
        let device = positions.device();
        let [batch, seq] = positions.dims();
        let half = inv_freq.len();
        let inv = Tensor::<B, 1>::from_data(
            TensorData::new(inv_freq.to_vec(), [half]),
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
        let rope = Rope {
            theta: 100.0,
            llama3: None,
        };
        let t = RopeTables::new(pos, &rope.inv_freq(4), DType::F32);
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
