//! `SelfAttention`: grouped-query attention with the family's biases (`family::Layout`),
//! Qwen3's per-head RMSNorm of queries and keys, rotate-half RoPE, and a causal + padding
//! mask, through the backend's fused attention (`crate::fused`: a kernel on the CPU backends,
//! Burn's `attention` op elsewhere).

use crate::fused::FusedBackend;
use burn::nn::Linear;
use burn::prelude::*;

use super::cache::LayerKv;
use super::config::ModelConfig;
use super::lora::{lora_linear3, LoraAdapter};
use super::norm::RmsNorm;
use super::packed::Unpadding;
use super::rope::RopeTables;
use super::weights::WeightSource;
use crate::error::Result;

/// How a full forward pass's queries see their keys.
#[derive(Debug, Clone)]
pub enum Attend<'a, B: Backend> {
    /// A left-padded batch: `[batch, 1, seq, seq]`, `true` where a query must not see a key.
    Padded(Tensor<B, 4, Bool>),
    /// Rows packed back to back (`[1, N, hidden]`), attended in their padded layout.
    Packed(&'a Unpadding<B>),
}

/// Self-attention of one decoder layer (`self_attn.*` keys).
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    /// `[hidden, heads · head_dim]` (a bias in Qwen2, or with `attention_bias`)
    pub q_proj: Linear<B>,
    /// `[hidden, kv_heads · head_dim]`
    pub k_proj: Linear<B>,
    /// `[hidden, kv_heads · head_dim]`
    pub v_proj: Linear<B>,
    /// `[heads · head_dim, hidden]` (a bias only with `attention_bias`)
    pub o_proj: Linear<B>,
    /// RMSNorm over `head_dim` of every query head, before RoPE (Qwen3).
    pub q_norm: Option<RmsNorm<B>>,
    /// The same for every key head.
    pub k_norm: Option<RmsNorm<B>>,
    /// LoRA adapters of the projections (`lora_r > 0`; see `lora.rs`).
    pub q_proj_lora: Option<LoraAdapter<B>>,
    pub k_proj_lora: Option<LoraAdapter<B>>,
    pub v_proj_lora: Option<LoraAdapter<B>>,
    pub o_proj_lora: Option<LoraAdapter<B>>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

/// A projection, its name (the checkpoint key's last part) and its LoRA slot.
pub type Projection<'m, B> = (
    &'static str,
    &'m mut Linear<B>,
    &'m mut Option<LoraAdapter<B>>,
);

impl<B: FusedBackend> SelfAttention<B> {
    /// The attention of `c` with weights `{prefix}.q_proj.weight`, … from `src`, no adapters.
    pub fn new(prefix: &str, c: &ModelConfig, src: &mut impl WeightSource<B>) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let (h, kvh) = (c.num_attention_heads, c.num_key_value_heads);
        let (qkv_bias, o_bias) = (c.layout.qkv_bias, c.layout.o_bias);
        let q_proj = src.linear(&format!("{prefix}.q_proj"), d, h * hd, qkv_bias)?;
        let k_proj = src.linear(&format!("{prefix}.k_proj"), d, kvh * hd, qkv_bias)?;
        let v_proj = src.linear(&format!("{prefix}.v_proj"), d, kvh * hd, qkv_bias)?;
        let o_proj = src.linear(&format!("{prefix}.o_proj"), h * hd, d, o_bias)?;
        let mut head_norm = |name: &str| match c.layout.qk_norm {
            true => {
                RmsNorm::new(&format!("{prefix}.{name}.weight"), hd, c.rms_norm_eps, src).map(Some)
            }
            false => Ok(None),
        };
        Ok(Self {
            q_norm: head_norm("q_norm")?,
            k_norm: head_norm("k_norm")?,
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            q_proj_lora: None,
            k_proj_lora: None,
            v_proj_lora: None,
            o_proj_lora: None,
            num_heads: h,
            num_kv_heads: kvh,
            head_dim: hd,
        })
    }

    /// The four projections with their LoRA slots, in checkpoint order.
    pub fn projections_mut(&mut self) -> [Projection<'_, B>; 4] {
        [
            ("q_proj", &mut self.q_proj, &mut self.q_proj_lora),
            ("k_proj", &mut self.k_proj, &mut self.k_proj_lora),
            ("v_proj", &mut self.v_proj, &mut self.v_proj_lora),
            ("o_proj", &mut self.o_proj, &mut self.o_proj_lora),
        ]
    }

    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` (`[1, N, hidden]` when packed)
    /// - `rope`: tables of `[batch, seq, 1, head_dim]`
    /// - returns `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        attend: &Attend<'_, B>,
    ) -> Tensor<B, 3> {
        let (q, k, v) = self.qkv(x, rope);
        let merged = match attend {
            Attend::Padded(mask) => {
                let heads = |t: Tensor<B, 4>| t.swap_dims(1, 2);
                merge(crate::fused::attention(
                    heads(q),
                    heads(k),
                    heads(v),
                    mask.clone(),
                ))
            }
            Attend::Packed(u) => u.unpad(crate::fused::attention(
                u.pad(q),
                u.pad(k),
                u.pad(v),
                u.mask.clone(),
            )),
        };
        lora_linear3(&self.o_proj, self.o_proj_lora.as_ref(), merged)
    }

    /// [`Self::forward`] for `s` new tokens whose keys and values go into `kv` at slots
    /// `offset..offset + s`; the queries attend to every filled slot.
    ///
    /// # Shapes
    /// - `x`: `[batch, s, hidden]`, `rope`: `[batch, s, 1, head_dim]`
    /// - `mask`: `[batch, 1, s, keys]` (`keys` = `offset + s` or its bucket), `true` = masked
    /// - returns `[batch, s, hidden]` and the updated cache
    pub fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: Tensor<B, 4, Bool>,
        kv: LayerKv<B>,
        offset: usize,
    ) -> (Tensor<B, 3>, LayerKv<B>) {
        let (q, k, v) = self.qkv(x, rope);
        let (q, k, v) = (q.swap_dims(1, 2), k.swap_dims(1, 2), v.swap_dims(1, 2));
        let keys = mask.dims()[3]; // offset + s, or its bucket
        let (kv, k, v) = kv.append(offset, k, v, keys); // [b, kvh, keys, hd]
        let out = merge(crate::fused::attention(q, k, v, mask));
        (
            lora_linear3(&self.o_proj, self.o_proj_lora.as_ref(), out),
            kv,
        )
    }

    /// Projections, split into heads, RoPE on queries and keys.
    ///
    /// # Shapes
    /// - returns q `[b, s, heads, hd]`, k and v `[b, s, kv_heads, hd]`
    fn qkv(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
        let [b, s, _] = x.dims();
        let hd = self.head_dim;
        let split = |t: Tensor<B, 3>, n: usize| t.reshape([b, s, n, hd]); // [b, s, n, hd]
        let proj = |l, a: &Option<LoraAdapter<B>>, x| lora_linear3(l, a.as_ref(), x);
        let q = proj(&self.q_proj, &self.q_proj_lora, x.clone());
        let k = proj(&self.k_proj, &self.k_proj_lora, x.clone());
        let v = proj(&self.v_proj, &self.v_proj_lora, x);
        let (mut q, mut k) = (split(q, self.num_heads), split(k, self.num_kv_heads));
        if let Some(norm) = &self.q_norm {
            q = norm.forward(q);
        }
        if let Some(norm) = &self.k_norm {
            k = norm.forward(k);
        }
        let (q, k) = (rope.apply(q), rope.apply(k));
        let v = split(v, self.num_kv_heads);
        (q, k, v)
    }
}

/// Merge heads: `[b, heads, s, hd]` → `[b, s, heads · hd]`.
fn merge<B: Backend>(out: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, s, hd] = out.dims();
    out.swap_dims(1, 2).reshape([b, s, h * hd])
}
