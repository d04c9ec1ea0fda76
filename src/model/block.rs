//! `Qwen2DecoderLayer`: pre-norm attention and MLP with residuals.
//!
//! `h = x + o_proj(attn(input_layernorm(x)))`,
//! `out = h + mlp(post_attention_layernorm(h))`.

use crate::fused::FusedBackend;
use burn::prelude::*;

use super::attention::{Attend, Qwen2Attention};
use super::cache::LayerKv;
use super::config::Qwen2Config;
use super::mlp::Qwen2MLP;
use super::norm::Qwen2RMSNorm;
use super::rope::RopeTables;
use super::weights::WeightSource;
use crate::error::Result;

/// One decoder layer (`model.layers.N.*` keys).
#[derive(Module, Debug)]
pub struct Qwen2DecoderLayer<B: Backend> {
    pub self_attn: Qwen2Attention<B>,
    pub mlp: Qwen2MLP<B>,
    pub input_layernorm: Qwen2RMSNorm<B>,
    pub post_attention_layernorm: Qwen2RMSNorm<B>,
}

impl<B: FusedBackend> Qwen2DecoderLayer<B> {
    /// Layer `{prefix}` (`model.layers.N`) of `c`, its weights from `src`.
    pub fn new(prefix: &str, c: &Qwen2Config, src: &mut impl WeightSource<B>) -> Result<Self> {
        let (d, eps) = (c.hidden_size, c.rms_norm_eps);
        Ok(Self {
            self_attn: Qwen2Attention::new(&format!("{prefix}.self_attn"), c, src)?,
            mlp: Qwen2MLP::new(&format!("{prefix}.mlp"), c, src)?,
            input_layernorm: Qwen2RMSNorm::new(
                &format!("{prefix}.input_layernorm.weight"),
                d,
                eps,
                src,
            )?,
            post_attention_layernorm: Qwen2RMSNorm::new(
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
    /// [`Qwen2Attention::forward_cached`]).
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
