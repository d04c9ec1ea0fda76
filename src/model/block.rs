//! `DecoderLayer`: pre-norm attention and MLP with residuals.
//!
//! `h = x + o_proj(attn(input_layernorm(x)))`,
//! `out = h + mlp(post_attention_layernorm(h))`.

use crate::fused::FusedBackend;
use burn::prelude::*;

use super::attention::{Attend, SelfAttention};
use super::cache::LayerKv;
use super::config::ModelConfig;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::rope::RopeTables;
use super::weights::WeightSource;
use crate::error::Result;

/// One decoder layer (`model.layers.N.*` keys).
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: SelfAttention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

impl<B: FusedBackend> DecoderLayer<B> {
    /// Layer `{prefix}` (`model.layers.N`) of `c`, its weights from `src`.
    pub fn new(prefix: &str, c: &ModelConfig, src: &mut impl WeightSource<B>) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.rms_norm_eps);
        Ok(Self {
            self_attn: SelfAttention::new(&format!("{prefix}.self_attn"), c, src)?,
            mlp: Mlp::new(&format!("{prefix}.mlp"), c, src)?,
            input_layernorm: RmsNorm::new(
                &format!("{prefix}.input_layernorm.weight"),
                d,
                eps,
                src,
            )?,
            post_attention_layernorm: RmsNorm::new(
                &format!("{prefix}.post_attention_layernorm.weight"),
                d,
                eps,
                src,
            )?,
        })
    }

    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → `[batch, seq, hidden]`
    /// - `mask`: `[batch, 1, seq, seq]`, `true` = masked
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        attend: &Attend<'_, B>,
    ) -> Tensor<B, 3> {
        let h = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), rope, attend);
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }

    /// [`Self::forward`] with the layer's KV cache (see
    /// [`SelfAttention::forward_cached`]).
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: Tensor<B, 4, Bool>,
        kv: LayerKv<B>,
        offset: usize,
    ) -> (Tensor<B, 3>, LayerKv<B>) {
        let (a, kv) = self.self_attn.forward_cached(
            self.input_layernorm.forward(x.clone()),
            rope,
            mask,
            kv,
            offset,
        );
        let h = x + a;
        let out = h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h));
        (out, kv)
    }
}
