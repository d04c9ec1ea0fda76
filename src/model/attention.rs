//! `Qwen2Attention`: grouped-query attention with q/k/v biases, rotate-half RoPE, and a
//! causal + padding mask, through Burn's fused `attention` op (flash attention where the
//! backend has one, a matmul-softmax-matmul fallback elsewhere).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::cache::LayerKv;
use super::config::Qwen2Config;
use super::lora::{lora_linear3, LoraAdapter};
use super::rope::RopeTables;
use super::weights::WeightSource;
use crate::error::Result;

/// Self-attention of one decoder layer (`self_attn.*` keys).
#[derive(Module, Debug)]
pub struct Qwen2Attention<B: Backend> {
    /// `[hidden, heads · head_dim]`, with bias
    pub q_proj: Linear<B>,
    /// `[hidden, kv_heads · head_dim]`, with bias
    pub k_proj: Linear<B>,
    /// `[hidden, kv_heads · head_dim]`, with bias
    pub v_proj: Linear<B>,
    /// `[heads · head_dim, hidden]`, no bias
    pub o_proj: Linear<B>,
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

impl<B: Backend> Qwen2Attention<B> {
    /// The attention of `c` with weights `{prefix}.q_proj.weight`, … from `src`, no adapters.
    pub fn new(prefix: &str, c: &Qwen2Config, src: &mut impl WeightSource<B>) -> Result<Self> {
        let (d, hd) = (c.hidden_size, c.head_dim());
        let (h, kvh) = (c.num_attention_heads, c.num_key_value_heads);
        Ok(Self {
            q_proj: src.linear(&format!("{prefix}.q_proj"), d, h * hd, true)?,
            k_proj: src.linear(&format!("{prefix}.k_proj"), d, kvh * hd, true)?,
            v_proj: src.linear(&format!("{prefix}.v_proj"), d, kvh * hd, true)?,
            o_proj: src.linear(&format!("{prefix}.o_proj"), h * hd, d, false)?,
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
    /// - `x`: `[batch, seq, hidden]`
    /// - `rope`: tables of `[batch, seq, 1, head_dim]`
    /// - `mask`: `[batch, 1, seq, seq]`, `true` where a query must not see a key
    /// - returns `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeTables<B>,
        mask: Tensor<B, 4, Bool>,
    ) -> Tensor<B, 3> {
        let (q, k, v) = self.qkv(x, rope);
        self.output(attend(q, k, v, mask, self.num_heads / self.num_kv_heads))
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
        let keys = mask.dims()[3]; // offset + s, or its bucket
        let (kv, k, v) = kv.append(offset, k, v, keys); // [b, kvh, keys, hd]
        let out = attend(q, k, v, mask, self.num_heads / self.num_kv_heads);
        (self.output(out), kv)
    }

    /// Projections, split into heads, RoPE on queries and keys.
    ///
    /// # Shapes
    /// - returns q `[b, heads, s, hd]`, k and v `[b, kv_heads, s, hd]`
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
        let q = rope.apply(split(q, self.num_heads));
        let k = rope.apply(split(k, self.num_kv_heads));
        let v = split(v, self.num_kv_heads);
        (q.swap_dims(1, 2), k.swap_dims(1, 2), v.swap_dims(1, 2))
    }

    /// Merge heads and apply `o_proj`: `[b, heads, s, hd]` → `[b, s, hidden]`.
    fn output(&self, out: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, h, s, hd] = out.dims();
        let out = out.swap_dims(1, 2).reshape([b, s, h * hd]);
        lora_linear3(&self.o_proj, self.o_proj_lora.as_ref(), out)
    }
}

/// Scaled dot-product attention with GQA: each K/V head serves `n_rep` consecutive query heads
/// (transformers' `repeat_kv`). Instead of copying K and V `n_rep` times, the query heads of a
/// group are folded into the query-length axis (`[b, kvh, n_rep · q_len, hd]`) and the mask is
/// tiled to match: the same numbers, no K/V copies, and fewer, larger matmuls.
///
/// # Shapes
/// - `q`: `[batch, heads, q_len, head_dim]`
/// - `k`, `v`: `[batch, kv_heads, k_len, head_dim]`
/// - `mask`: `[batch, 1, q_len, k_len]`, `true` = masked. Every query row must keep at least
///   one key (masked scores are -inf; a fully masked row would give NaN).
/// - returns `[batch, heads, q_len, head_dim]`
pub fn attend<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4, Bool>,
    n_rep: usize,
) -> Tensor<B, 4> {
    let [b, h, q_len, hd] = q.dims();
    let [_, kvh, k_len, _] = k.dims();
    let rows = n_rep * q_len;
    let q = q.reshape([b, kvh, rows, hd]);
    let mask = if n_rep == 1 || q_len == 1 {
        mask // rows = q_len, or one query whose mask row broadcasts over its n_rep heads
    } else {
        mask.unsqueeze_dim::<5>(2)
            .expand([b, 1, n_rep, q_len, k_len])
            .reshape([b, 1, rows, k_len])
    };
    let mut mask = mask.expand([b, kvh, rows, k_len]);
    if bool_mask_is_inverted::<B>(&q.device()) {
        mask = mask.bool_not();
    }
    // scale defaults to 1/sqrt(head_dim)
    attention(q, k, v, Some(mask), None, AttentionModuleOptions::default()) // [b, kvh, rows, hd]
        .reshape([b, h, q_len, hd])
}

/// Whether this backend's fused `attention` reads a boolean mask as "true = attend" instead of
/// Burn's documented "true = masked". burn-tch 0.21 hands the mask straight to PyTorch's
/// `scaled_dot_product_attention`, whose boolean masks mean the opposite (its log-probs were
/// off by 1.6 on our fixtures). A two-key probe, once per backend type, tells; when the
/// backend is fixed upstream the probe says so and nothing is inverted.
fn bool_mask_is_inverted<B: Backend>(device: &B::Device) -> bool {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<TypeId, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = TypeId::of::<B>();
    if let Some(&inverted) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&key).copied())
        .as_ref()
    {
        return inverted;
    }
    // One query, two keys with equal scores; values 0 and 1; key 1 masked → output 0.
    let zeros = Tensor::<B, 4>::zeros([1, 1, 2, 2], device);
    let q = Tensor::<B, 4>::zeros([1, 1, 1, 2], device);
    let v = Tensor::<B, 4>::from_data(
        TensorData::new(vec![0.0f32, 0.0, 1.0, 1.0], [1, 1, 2, 2]),
        device,
    );
    let mask =
        Tensor::<B, 4, Bool>::from_data(TensorData::new(vec![false, true], [1, 1, 1, 2]), device);
    let out = attention(
        q,
        zeros,
        v,
        Some(mask),
        None,
        AttentionModuleOptions::default(),
    );
    let inverted = out
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map(|v| v[0] > 0.5)
        .unwrap_or(false);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, inverted);
    }
    inverted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    /// Folding the query heads of a KV group into the query axis gives what transformers'
    /// `repeat_kv` (copying each K/V head `n_rep` times) gives, with a causal + padding mask.
    #[test]
    fn gqa_fold_equals_repeated_kv_heads() {
        use burn::tensor::Distribution;
        let dev = Default::default();
        let (b, h, kvh, s, hd) = (2, 6, 2, 3, 4);
        let rnd = |shape: [usize; 4]| {
            Tensor::<TestBackend, 4>::random(shape, Distribution::Normal(0.0, 1.0), &dev)
        };
        let (q, k, v) = (
            rnd([b, h, s, hd]),
            rnd([b, kvh, s, hd]),
            rnd([b, kvh, s, hd]),
        );
        // row 0 causal; row 1 causal with key 0 hidden from queries 1 and 2
        let mask = Tensor::<TestBackend, 4, Bool>::from_data(
            TensorData::new(
                vec![
                    false, true, true, false, false, true, false, false, false, //
                    false, true, true, true, false, true, true, false, false,
                ],
                [b, 1, s, s],
            ),
            &dev,
        );
        let rep = |x: Tensor<TestBackend, 4>| {
            x.unsqueeze_dim::<5>(2)
                .repeat_dim(2, h / kvh)
                .reshape([b, h, s, hd])
        };
        let want = attention(
            q.clone(),
            rep(k.clone()),
            rep(v.clone()),
            Some(mask.clone().expand([b, h, s, s])),
            None,
            AttentionModuleOptions::default(),
        );
        let got = attend(q, k, v, mask, h / kvh);
        let d = (got - want).abs().max().into_scalar();
        assert!(d < 1e-6, "{d}");
    }

    /// The CPU backends follow Burn's "true = masked" convention (burn-tch does not; its
    /// inversion is covered by `parity_tch`).
    #[test]
    fn cpu_backends_read_masks_as_documented() {
        assert!(!bool_mask_is_inverted::<TestBackend>(&Default::default()));
        // Key 1 masked: the query sees only key 0 (value 0).
        let dev = Default::default();
        let q = Tensor::<TestBackend, 4>::zeros([1, 1, 1, 2], &dev);
        let v = Tensor::<TestBackend, 4>::from_data([[[[0.0, 0.0], [1.0, 1.0]]]], &dev);
        let mask = Tensor::<TestBackend, 4, Bool>::from_data([[[[false, true]]]], &dev);
        let out: Vec<f32> = attend(q, v.clone() * 0.0, v, mask, 1)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(out, vec![0.0, 0.0]);
    }
}
