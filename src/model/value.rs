//! The critic of PPO: a Qwen2 decoder stack with a scalar head on every position, laid out as
//! transformers' `Qwen2ForSequenceClassification` with one label (`model.*` and `score.weight`,
//! no bias) — the value model TRL's `PPOTrainer` loads (`AutoModelForSequenceClassification`,
//! `num_labels = 1`) and reads at every position. Loading and saving it in that layout:
//! `checkpoint::load_value_model`, `save::save_value_model`.

use crate::fused::FusedBackend;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

use super::causal_lm::{CausalLm, Decoder, ModelInput};
use super::lora::LoraConfig;
use super::precision::CastFrozen;

/// Standard deviation of the fresh value head (transformers' `initializer_range` default).
pub const SCORE_INIT_STD: f32 = 0.02;

/// A value model: the backbone's final hidden states through `score` (`[hidden] → 1`).
#[derive(Module, Debug)]
pub struct ValueModel<B: Backend> {
    pub model: Decoder<B>,
    /// `[hidden, 1]` in Burn layout.
    pub score: Linear<B>,
}

impl<B: FusedBackend> ValueModel<B> {
    /// The critic initialised from a policy: its decoder stack's weights (its LM head dropped)
    /// as parameters of their own — new ids, new autodiff leaves, so the critic trains apart
    /// from the policy; frozen ones (LoRA's base) stay frozen and its adapters are copied — and
    /// a fresh value head drawn from `seed` ([`Self::with_fresh_head`]).
    pub fn from_policy(policy: CausalLm<B>, seed: u64, device: &B::Device) -> Self {
        struct Own;
        impl<B: FusedBackend> ModuleMapper<B> for Own {
            fn map_float<const D: usize>(
                &mut self,
                param: Param<Tensor<B, D>>,
            ) -> Param<Tensor<B, D>> {
                let (_, tensor, mapper) = param.consume();
                let trained = tensor.is_require_grad();
                let mut tensor = tensor.detach();
                if trained {
                    tensor = tensor.require_grad();
                }
                Param::from_mapped_value(ParamId::new(), tensor, mapper)
            }
        }
        Self::with_fresh_head(policy.model.map(&mut Own), seed, device)
    }

    /// `model` with a fresh value head, normal(0, 0.02), drawn on the host from `seed` (the
    /// same head on every backend and in every run with that seed).
    pub fn with_fresh_head(model: Decoder<B>, seed: u64, device: &B::Device) -> Self {
        use rand::SeedableRng;
        use rand_distr::{Distribution as _, Normal};
        let hidden = model.embed_tokens.weight.dims()[1];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5C0E);
        let normal = Normal::new(0.0f32, SCORE_INIT_STD).unwrap_or_else(|_| unreachable!());
        let w: Vec<f32> = (0..hidden).map(|_| normal.sample(&mut rng)).collect();
        let weight = Tensor::from_data(TensorData::new(w, [hidden, 1]), device);
        let score = Linear {
            weight: Param::from_tensor(weight),
            bias: None,
        };
        Self { model, score }
    }

    /// The backbone seen as a causal LM without a head, for what is defined on one (LoRA).
    fn through_lm(self, f: impl FnOnce(CausalLm<B>) -> CausalLm<B>) -> Self {
        let lm = f(CausalLm {
            model: self.model,
            lm_head: None,
        });
        Self {
            model: lm.model,
            score: self.score,
        }
    }

    /// LoRA on the backbone (every backbone weight frozen, adapters from `seed`); the head
    /// stays trained.
    pub fn with_lora(self, cfg: &LoraConfig, seed: u64, device: &B::Device) -> Self {
        self.through_lm(|lm| lm.with_lora(cfg, seed, device))
    }

    /// The adapters folded into their weights.
    pub fn merge_lora(self) -> Self {
        self.through_lm(CausalLm::merge_lora)
    }

    /// Frozen weights stored in `dtype` (as [`CausalLm::with_frozen_in`]).
    pub fn with_frozen_in(self, dtype: DType) -> Self {
        self.map(&mut CastFrozen(dtype))
    }

    /// Activations in `dtype` (as [`CausalLm::with_compute_dtype`]).
    pub fn with_compute_dtype(mut self, dtype: DType) -> Self {
        self.model.compute_dtype = Some(dtype);
        self
    }

    /// The values of the states that predict the last `t` tokens of each row (positions
    /// `s − 1 − t .. s − 1`): for a completion right-aligned in a `[n, t]` window, column `k`
    /// holds the value of the state before its token `k` (TRL reads
    /// `value[:, context_length − 1 : −1]`). The prompt costs no head projection.
    ///
    /// # Shapes
    /// - returns `[batch, t]`
    pub fn forward_window(&self, input: &ModelInput<B>, t: usize) -> Tensor<B, 2> {
        let hidden = self.model.forward(input);
        let [b, s, _] = hidden.dims();
        let hidden = hidden.narrow(1, s - 1 - t, t);
        super::linear3(&self.score, hidden).reshape([b, t])
    }

    /// The value of every position.
    ///
    /// # Shapes
    /// - returns `[batch, seq]`
    pub fn forward(&self, input: &ModelInput<B>) -> Tensor<B, 2> {
        let hidden = self.model.forward(input);
        let [b, s, _] = hidden.dims();
        super::linear3(&self.score, hidden).reshape([b, s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::batch::PaddedBatch;
    use crate::model::ModelConfig;
    use burn::backend::Autodiff;

    type AB = Autodiff<crate::TestBackend>;

    fn input(dev: &burn::tensor::Device<AB>) -> ModelInput<AB> {
        PaddedBatch::left_padded(&[vec![3, 5, 7, 2], vec![9, 4]], 0).to_input(dev)
    }

    /// At initialisation the critic's backbone is the policy's, hidden state for hidden state,
    /// and the head reads them out as `h · w` at every position.
    #[test]
    fn critic_is_the_backbone_at_initialisation() {
        let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
        let dev = Default::default();
        <AB as Backend>::seed(&dev, 5);
        let policy = CausalLm::<AB>::random(&config, &dev);
        let want = policy.model.forward(&input(&dev));
        let critic = ValueModel::from_policy(policy.clone(), 1, &dev);
        let got = critic.model.forward(&input(&dev));
        assert_eq!(
            want.clone().into_data().to_vec::<f32>().unwrap(),
            got.into_data().to_vec::<f32>().unwrap()
        );
        let w: Vec<f32> = critic.score.weight.val().into_data().to_vec().unwrap();
        assert_eq!(w.len(), 16);
        let std = (w.iter().map(|x| x * x).sum::<f32>() / 16.0).sqrt();
        assert!(std > 0.002 && std < 0.06, "head std {std}");
        let values: Vec<f32> = critic.forward(&input(&dev)).into_data().to_vec().unwrap();
        let h: Vec<f32> = want.into_data().to_vec().unwrap();
        for (pos, v) in values.iter().enumerate() {
            let dot: f32 = h[pos * 16..(pos + 1) * 16]
                .iter()
                .zip(&w)
                .map(|(a, b)| a * b)
                .sum();
            assert!((v - dot).abs() < 1e-5, "position {pos}: {v} vs {dot}");
        }
    }

    /// The head's gradient comes from a loss on the values alone: a loss on the policy's
    /// logits leaves the critic without gradients, and a loss on the values reaches the head
    /// and the critic's backbone but not the policy's (separate parameters, separate ids).
    #[test]
    fn the_head_learns_only_from_the_values() {
        let config = ModelConfig::new(32, 16, 32, 2, 4, 2, true);
        let dev = Default::default();
        <AB as Backend>::seed(&dev, 6);
        let policy = CausalLm::<AB>::random(&config, &dev);
        let critic = ValueModel::from_policy(policy.clone(), 1, &dev);
        let policy_loss = policy.forward(&input(&dev)).mean();
        let grads = policy_loss.backward();
        assert!(critic.score.weight.grad(&grads).is_none());
        let value_loss = critic.forward(&input(&dev)).powi_scalar(2).mean();
        let grads = value_loss.backward();
        let g = critic
            .score
            .weight
            .grad(&grads)
            .expect("the head's gradient");
        assert!(g.abs().max().into_scalar() > 0.0);
        assert!(critic.model.norm.weight.grad(&grads).is_some());
        assert!(
            policy.model.norm.weight.grad(&grads).is_none(),
            "the critic's backbone is its own"
        );
        assert_ne!(critic.model.norm.weight.id, policy.model.norm.weight.id);
    }

    /// Saved in transformers' layout and loaded back (`value_model_path`), the critic predicts
    /// the same values; a causal LM's directory gives the same backbone with a fresh head.
    #[test]
    fn saved_and_loaded_in_hf_layout() {
        let config = ModelConfig::new(32, 16, 32, 2, 4, 2, false);
        let dev = Default::default();
        let policy = CausalLm::<AB>::random(&config, &dev);
        let critic = ValueModel::from_policy(policy.clone(), 9, &dev);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("value");
        let opts = crate::model::SaveOptions::default();
        crate::model::save_value_model(&critic, &config, &dir, &opts).unwrap();
        let (got_config, loaded) = crate::model::load_value_model::<AB>(&dir, 32, 1, &dev).unwrap();
        assert_eq!(got_config.hidden_size, 16);
        let flat = |c: &ValueModel<AB>| -> Vec<f32> {
            c.forward(&input(&dev)).into_data().to_vec().unwrap()
        };
        assert_eq!(flat(&critic), flat(&loaded));
        // a causal LM: its backbone, its head dropped, a fresh head from the seed
        let lm = tmp.path().join("lm");
        crate::model::save_model(&policy, &config, &lm, &opts).unwrap();
        let (_, fresh) = crate::model::load_value_model::<AB>(&lm, 32, 9, &dev).unwrap();
        assert_eq!(
            flat(&critic),
            flat(&fresh),
            "the same seed draws the same head"
        );
        // a critic must read the policy's tokens
        let e = crate::model::load_value_model::<AB>(&dir, 33, 1, &dev)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("vocab_size 32") && e.contains("config.json"),
            "{e}"
        );
    }
}
