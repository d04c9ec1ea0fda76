//! `CausalLm`: embeddings → N decoder layers → final RMSNorm → LM head (tied to the
//! embeddings when `tie_word_embeddings`), the one causal language model every family builds
//! (`family/`: Qwen2's `Qwen2ForCausalLM`, Qwen3's, Llama's). Module paths equal the HF
//! checkpoint keys (`model.embed_tokens.weight`, `model.layers.0.self_attn.q_proj.bias`,
//! `lm_head.weight`, …).

use crate::fused::FusedBackend;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::{DType, Distribution};

use super::attention::Attend;
use super::block::DecoderLayer;
use super::cache::KvCache;
use super::config::ModelConfig;
use super::norm::RmsNorm;
use super::packed::PackedInput;
use super::precision::{like, CastFrozen, CastParams, Precision};
use super::rope::RopeTables;
use super::weights::{Init, Initializer, WeightSource};
use crate::error::Result;

/// One batch of token rows, left-padded to a common length.
///
/// Positions come from the mask (`cumsum(mask) - 1`), so a padded row gets the same numbers as
/// the unpadded one; see [`crate::model::batch::PaddedBatch`] which builds this.
#[derive(Debug, Clone)]
pub struct ModelInput<B: Backend> {
    /// `[batch, seq]`
    pub input_ids: Tensor<B, 2, Int>,
    /// `[batch, seq]`, position of each token within its row (0 on padding)
    pub positions: Tensor<B, 2, Int>,
    /// `[batch, seq]`, `true` on padding tokens
    pub padding: Tensor<B, 2, Bool>,
}

/// The decoder stack (`model.*` keys).
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// `[vocab, hidden]`
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// RoPE's inverse frequencies, `[head_dim / 2]` (`rope.rs`: scaled for `llama3`).
    #[module(skip)]
    pub inv_freq: Vec<f32>,
    /// The activations' dtype when it differs from the weights' (bf16 training on f32 master
    /// weights, see [`super::precision`]); `None`: the embedding's dtype.
    #[module(skip)]
    pub compute_dtype: Option<DType>,
}

/// The causal language model (`model.*` and `lm_head.*` keys).
#[derive(Module, Debug)]
pub struct CausalLm<B: Backend> {
    pub model: Decoder<B>,
    /// `[hidden, vocab]` in Burn layout; `None` when the head is tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
}

impl<B: FusedBackend> Decoder<B> {
    /// The decoder stack of `config` (`model.*` keys) from `src`: layers first, then the
    /// embedding and the final norm.
    pub fn new(config: &ModelConfig, src: &mut impl WeightSource<B>) -> Result<Self> {
        let d = config.hidden_size;
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::new(&format!("model.layers.{i}"), config, src))
            .collect::<Result<Vec<_>>>()?;
        let embed = src.matrix(
            "model.embed_tokens.weight",
            Init::Embedding,
            [config.vocab_size, d],
        )?;
        let norm = RmsNorm::new("model.norm.weight", d, config.rms_norm_eps, src)?;
        Ok(Self {
            embed_tokens: Embedding { weight: embed },
            layers,
            norm,
            inv_freq: config.rope().inv_freq(config.head_dim()),
            compute_dtype: None,
        })
    }

    /// Token embeddings in the compute dtype: `[batch, seq]` → `[batch, seq, hidden]`.
    fn embed(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let x = self.embed_tokens.forward(input_ids);
        match self.compute_dtype {
            Some(dtype) => like(x, dtype),
            None => x,
        }
    }

    /// Final hidden states (after the last norm).
    ///
    /// # Shapes
    /// - returns `[batch, seq, hidden]`
    pub fn forward(&self, input: &ModelInput<B>) -> Tensor<B, 3> {
        let mut x = self.embed(input.input_ids.clone()); // [b, s, d]
        let rope = RopeTables::new(input.positions.clone(), &self.inv_freq, x.dtype());
        let mask = Attend::Padded(attention_mask(input.padding.clone()));
        for layer in &self.layers {
            x = layer.forward(x, &rope, &mask);
        }
        self.norm.forward(x)
    }

    /// Final hidden states of packed rows (`super::packed`): every layer but attention
    /// computes on the `N` real tokens only.
    ///
    /// # Shapes
    /// - returns `[1, N, hidden]`
    pub fn forward_packed(&self, input: &PackedInput<B>) -> Tensor<B, 3> {
        let mut x = self.embed(input.input_ids.clone()); // [1, N, d]
        let rope = RopeTables::new(input.positions.clone(), &self.inv_freq, x.dtype());
        let attend = Attend::Packed(&input.unpadding);
        for layer in &self.layers {
            x = layer.forward(x, &rope, &attend);
        }
        self.norm.forward(x)
    }
}

/// The causal + padding mask of a left-padded batch, `true` = masked.
///
/// Padding keys are masked, except that a padding query sees itself: no row is fully masked
/// (masked scores are -inf, and a softmax over nothing but -inf is NaN unless the backend
/// special-cases it), and real tokens never see padding.
///
/// # Shapes
/// - `padding`: `[batch, seq]`, `true` on padding → `[batch, 1, seq, seq]`
pub fn attention_mask<B: Backend>(padding: Tensor<B, 2, Bool>) -> Tensor<B, 4, Bool> {
    let [b, s] = padding.dims();
    let device = padding.device();
    let causal = Tensor::<B, 2, Bool>::tril_mask([s, s], 0, &device) // true above the diagonal
        .reshape([1, 1, s, s])
        .expand([b, 1, s, s]);
    let not_self = Tensor::<B, 2, Bool>::diag_mask([s, s], 0, &device)
        .reshape([1, 1, s, s])
        .expand([b, 1, s, s]);
    let pad = padding.reshape([b, 1, 1, s]).expand([b, 1, s, s]);
    causal.bool_or(pad.bool_and(not_self))
}

impl<B: FusedBackend> Decoder<B> {
    /// Final hidden states of `s` new tokens per row, reading and extending `cache` (the new
    /// tokens take slots `cache.len()..cache.len() + s`).
    ///
    /// # Shapes
    /// - `input_ids`, `positions`: `[batch, s]` (batch = `cache.batch()`)
    /// - returns `[batch, s, hidden]`
    pub fn forward_cached(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let s = input_ids.dims()[1];
        let device = input_ids.device();
        let mut x = self.embed(input_ids); // [b, s, d]
        let rope = RopeTables::new(positions, &self.inv_freq, x.dtype());
        let mask = cache.mask(s, &device); // [b, 1, s, len + s]
        let (kvs, offset) = cache.take_layers();
        let mut updated = Vec::with_capacity(kvs.len());
        for (layer, kv) in self.layers.iter().zip(kvs) {
            let (y, kv) = layer.forward_cached(x, &rope, mask.clone(), kv, offset);
            x = y;
            updated.push(kv);
        }
        cache.put_layers(updated, s);
        self.norm.forward(x)
    }
}

impl<B: FusedBackend> CausalLm<B> {
    /// Logits of the **last** of `s` new tokens per row, through the KV cache (prefill with
    /// `s` = prompt length, then one token per decode step). Only the last position goes
    /// through the LM head, `head` from [`Self::head_weight`] (computed once per generation).
    ///
    /// # Shapes
    /// - `input_ids`, `positions`: `[batch, s]`, `head`: `[hidden, vocab]` → `[batch, vocab]`
    pub fn forward_cached(
        &self,
        input_ids: Tensor<B, 2, Int>,
        positions: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
        head: &Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let hidden = self.model.forward_cached(input_ids, positions, cache); // [b, s, d]
        let [b, s, d] = hidden.dims();
        let hidden_dtype = hidden.dtype();
        let last = hidden.narrow(1, s - 1, 1).reshape([b, d]);
        crate::fused::linear(last, like(head.clone(), hidden_dtype), None)
    }

    /// The LM head as a `[hidden, vocab]` matrix in row-major order: `lm_head`'s weight, or the
    /// transposed embedding when tied. CPU backends copy a transposed operand before every
    /// matmul; decoding copies it once here instead of once per token.
    pub fn head_weight(&self) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(head) => head.weight.val(),
            None => {
                let w = self.model.embed_tokens.weight.val(); // [vocab, d]
                let [v, d] = w.dims();
                // through 1-d: a reshape that every backend must materialise in row-major order
                w.transpose().reshape([d * v]).reshape([d, v])
            }
        }
    }

    /// Rows of the embedding matrix (the vocabulary size the model was built with).
    pub fn vocab_size(&self) -> usize {
        self.model.embed_tokens.weight.dims()[0]
    }

    /// Full-sequence logits.
    ///
    /// # Shapes
    /// - returns `[batch, seq, vocab]`
    pub fn forward(&self, input: &ModelInput<B>) -> Tensor<B, 3> {
        self.logits(self.model.forward(input))
    }

    /// Apply the LM head (tied or not) to hidden states.
    ///
    /// # Shapes
    /// - `hidden`: `[batch, seq, hidden]` → `[batch, seq, vocab]`
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => super::linear3(head, hidden),
            None => {
                let [b, s, d] = hidden.dims();
                let w = like(self.model.embed_tokens.weight.val(), hidden.dtype()); // [vocab, d]
                let vocab = w.dims()[0];
                hidden
                    .reshape([b * s, d])
                    .matmul(w.transpose())
                    .reshape([b, s, vocab])
            }
        }
    }

    /// The model of `config` with every weight from `src`, under its checkpoint key: the
    /// decoder stack ([`Decoder::new`]), then the untied head (the order an initialiser
    /// draws in).
    pub fn new(config: &ModelConfig, src: &mut impl WeightSource<B>) -> Result<Self> {
        let model = Decoder::new(config, src)?;
        let lm_head = match config.tie_word_embeddings {
            true => None,
            false => Some(src.linear("lm_head", config.hidden_size, config.vocab_size, false)?),
        };
        Ok(Self { model, lm_head })
    }

    /// A model with random weights drawn so that logits are far from uniform (for tests and
    /// benchmarks): normal(0, 1/√fan_in) matrices, small random biases, norms near 1.
    pub fn random(config: &ModelConfig, device: &B::Device) -> Self {
        Self::drawn(config, move |kind, shape| {
            let (mean, std) = match kind {
                Init::Matrix => (0.0, (shape[0] as f64).powf(-0.5)),
                Init::Embedding => (0.0, 1.0),
                Init::Bias => (0.0, 0.1),
                Init::Norm => (1.0, 0.1),
            };
            Tensor::random(shape, Distribution::Normal(mean, std), device)
        })
    }

    /// A model to train from scratch, initialised as transformers does (`initializer_range`
    /// 0.02: normal(0, 0.02) matrices and embedding, zero biases, unit norms), drawn from a
    /// host RNG seeded with `seed` so that every backend gets the same weights.
    pub fn init(config: &ModelConfig, seed: u64, device: &B::Device) -> Self {
        use rand::SeedableRng;
        use rand_distr::{Distribution as _, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, 0.02).unwrap_or_else(|_| unreachable!());
        Self::drawn(config, move |kind, shape| {
            let n = shape[0] * shape[1];
            let values: Vec<f32> = match kind {
                Init::Matrix | Init::Embedding => (0..n).map(|_| normal.sample(&mut rng)).collect(),
                Init::Bias => vec![0.0; n],
                Init::Norm => vec![1.0; n],
            };
            Tensor::from_data(TensorData::new(values, shape), device)
        })
    }

    /// The model with every tensor drawn by `draw` (an initialiser cannot fail).
    fn drawn<'d>(
        config: &ModelConfig,
        draw: impl FnMut(Init, [usize; 2]) -> Tensor<B, 2> + 'd,
    ) -> Self {
        let mut src = Initializer {
            draw: Box::new(draw),
        };
        Self::new(config, &mut src).unwrap_or_else(|_| unreachable!("an initialiser never fails"))
    }
}

/// The model in a precision (`precision.rs`).
impl<B: FusedBackend> CausalLm<B> {
    /// Store the frozen weights (LoRA's base) in `dtype`: they are never updated, so they need
    /// no f32 master copy, and the sampling copy in `dtype` then shares them.
    pub fn with_frozen_in(self, dtype: DType) -> Self {
        self.map(&mut CastFrozen(dtype))
    }

    /// Inference in `precision`: weights cast once, activations in that dtype.
    pub fn to_precision(self, precision: Precision) -> Self {
        let dtype = precision.dtype();
        self.map(&mut CastParams(dtype)).with_compute_dtype(dtype)
    }

    /// Activations in `dtype`; weights keep their dtype and are cast where they are used.
    pub fn with_compute_dtype(mut self, dtype: DType) -> Self {
        self.model.compute_dtype = Some(dtype);
        self
    }

    /// The dtype of activations (and of the KV cache).
    pub fn compute_dtype(&self) -> DType {
        self.model
            .compute_dtype
            .unwrap_or_else(|| self.model.embed_tokens.weight.val().dtype())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    /// `init` is transformers' initialisation, the same for a seed on every call.
    #[test]
    fn init_is_seeded_and_hf_like() {
        let config = ModelConfig::new(64, 32, 48, 2, 4, 2, true);
        let dev = Default::default();
        let a = CausalLm::<NdArray>::init(&config, 3, &dev);
        let b = CausalLm::<NdArray>::init(&config, 3, &dev);
        let c = CausalLm::<NdArray>::init(&config, 4, &dev);
        let ta = crate::model::save::named_tensors(&a).unwrap();
        let tb = crate::model::save::named_tensors(&b).unwrap();
        let tc = crate::model::save::named_tensors(&c).unwrap();
        assert_eq!(ta.len(), 2 + 2 * 12);
        for (name, (v, _)) in &ta {
            assert_eq!(v, &tb[name].0, "{name}");
            if name.ends_with("norm.weight") {
                assert!(v.iter().all(|x| *x == 1.0), "{name}");
            } else if name.ends_with(".bias") {
                assert!(v.iter().all(|x| *x == 0.0), "{name}");
            } else {
                assert_ne!(v, &tc[name].0, "{name}");
                let n = v.len() as f32;
                let mean = v.iter().sum::<f32>() / n;
                let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
                assert!(
                    mean.abs() < 0.005 && (std - 0.02).abs() < 0.003,
                    "{name}: {mean} {std}"
                );
            }
        }
    }
}
