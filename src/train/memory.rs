//! Device memory of a training run, estimated before anything is allocated: the trained
//! weights, their gradients, AdamW's moments, the bf16 copy that samples, the frozen reference
//! (only when β > 0), the KV cache of the rollouts and the activations kept for the backward
//! pass of one micro-batch. Printed at start-up; a run that cannot fit fails before loading.
//!
//! Activations per token and layer, kept for the backward pass (bytes `a` per activation
//! value: 2 in bf16, 4 in f32; the norms' f32 copies are 4 bytes either way):
//! `8·d + a·(3·d + 3·q + 4·kv + 4·I)` — the two norms' f32 inputs, their outputs, q/k/v before
//! and after RoPE, the attention output, the residual, gate/up/silu/product of the MLP
//! (`d` hidden, `q` = heads · head_dim, `kv` = KV heads · head_dim, `I` intermediate). The
//! logits of a token take `V·(a + 4 + 4)` (logits, their f32 copy, the shifted exponentials).
//! Burn's balanced checkpointing recomputes the memory-bound (element-wise) operations: we
//! count half the layer activations then. These are estimates (±30 %); `mgrpo bench train`
//! on the device reports the measured peak.

use std::fmt;

use crate::model::{ModelConfig, Precision};

const GIB: f64 = (1u64 << 30) as f64;

/// What a run keeps on the device at its peak.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RunShape {
    pub precision: Precision,
    /// The frozen reference model exists (β > 0).
    pub reference: bool,
    pub gradient_checkpointing: bool,
    /// Rows decoded together and their longest length (prompt + completion).
    pub rollout_rows: usize,
    /// Rows of one forward/backward micro-batch and their longest length.
    pub micro_batch_rows: usize,
    pub seq_len: usize,
    /// Trained parameters when only LoRA adapters train (`lora_r > 0`); gradients and AdamW
    /// state exist for those alone. `None`: full fine-tuning.
    pub lora_params: Option<usize>,
    /// PPO's critic exists, trained like the policy (counted with the policy's shape: its
    /// backbone and a one-output head).
    pub critic: bool,
}

/// Bytes of each part, see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MemoryEstimate {
    pub params: usize,
    /// Parameters with gradients and AdamW state (all of them, or LoRA's adapters).
    pub trained_params: usize,
    pub weights: f64,
    pub gradients: f64,
    pub optimizer: f64,
    pub sampler_copy: f64,
    pub reference: f64,
    /// PPO's critic: its weights, gradients, AdamW state and activations.
    pub critic: f64,
    pub kv_cache: f64,
    pub activations: f64,
}

impl MemoryEstimate {
    pub fn total(&self) -> f64 {
        self.weights
            + self.gradients
            + self.optimizer
            + self.sampler_copy
            + self.reference
            + self.critic
            + self.kv_cache
            + self.activations
    }
}

/// The estimate for training `config` with `shape` (f32 master weights and AdamW state).
pub fn estimate(config: &ModelConfig, shape: &RunShape) -> MemoryEstimate {
    let n = config.num_params();
    let a = shape.precision.bytes() as f64;
    let (d, hd, inter) = (
        config.hidden_size as f64,
        config.head_dim() as f64,
        config.intermediate_size as f64,
    );
    let (q, kv) = (
        config.num_attention_heads as f64 * hd,
        config.num_key_value_heads as f64 * hd,
    );
    let layers = config.num_hidden_layers as f64;
    let per_token_layer = 8.0 * d + a * (3.0 * d + 3.0 * q + 4.0 * kv + 4.0 * inter);
    let checkpoint = if shape.gradient_checkpointing {
        0.5
    } else {
        1.0
    };
    let logits = config.vocab_size as f64 * (a + 8.0);
    let tokens = (shape.micro_batch_rows * shape.seq_len) as f64;
    // the rollouts' copy in the compute dtype (in f32 the sampler shares the trained weights;
    // under LoRA it shares the frozen base, stored in the compute dtype)
    let (weights, low) = match shape.lora_params {
        None if shape.precision == Precision::Bf16 => (n as f64 * 4.0, n as f64 * a),
        None => (n as f64 * 4.0, 0.0),
        Some(adapters) => (n as f64 * a + adapters as f64 * 4.0, 0.0),
    };
    let trained_params = shape.lora_params.unwrap_or(n);
    let trained = trained_params as f64;
    let layer_activations = tokens * layers * per_token_layer * checkpoint;
    let critic = if shape.critic {
        let head = if config.tie_word_embeddings {
            0.0
        } else {
            config.vocab_size as f64 * d
        };
        let critic_n = n as f64 - head + d;
        let (weights, trained) = match shape.lora_params {
            None => (critic_n * 4.0, critic_n),
            Some(adapters) => (
                critic_n * a + (adapters as f64 + d) * 4.0,
                adapters as f64 + d,
            ),
        };
        weights + trained * 12.0 + layer_activations
    } else {
        0.0
    };
    MemoryEstimate {
        params: n,
        trained_params,
        weights,
        gradients: trained * 4.0,
        optimizer: trained * 8.0,
        sampler_copy: low,
        reference: if shape.reference { n as f64 * a } else { 0.0 },
        critic,
        kv_cache: (shape.rollout_rows * shape.seq_len) as f64 * layers * 2.0 * kv * a,
        activations: layer_activations + tokens * logits,
    }
}

impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = |x: f64| size(x);
        write!(
            f,
            "memory estimate ({} parameters, {} trained): weights {}, gradients {}, AdamW {}, \
             bf16 sampler copy {}, reference {},{} KV cache {}, activations {}; total {} \
             ({:.2} GiB, the unit of device_memory_gib)",
            count(self.params),
            count(self.trained_params),
            g(self.weights),
            g(self.gradients),
            g(self.optimizer),
            g(self.sampler_copy),
            g(self.reference),
            match self.critic {
                c if c > 0.0 => format!(" critic {},", g(c)),
                _ => String::new(),
            },
            g(self.kv_cache),
            g(self.activations),
            g(self.total()),
            self.total() / GIB
        )
    }
}

/// `14.7 GiB` from one GiB up, `4.0 MiB` below (a small model's parts are not all "0.0 GiB").
fn size(bytes: f64) -> String {
    if bytes >= GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    }
}

/// `7.62 B`, `494 M`, `1.05 M`: billions from one billion up, millions below.
fn count(n: usize) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} B", n / 1e9)
    } else if n >= 1e8 {
        format!("{:.0} M", n / 1e6)
    } else {
        format!("{:.2} M", n / 1e6)
    }
}

/// The error for a run that cannot fit `capacity_bytes`, naming what to change.
pub fn check_fits(est: &MemoryEstimate, capacity_bytes: f64) -> crate::Result<()> {
    if est.total() <= capacity_bytes {
        return Ok(());
    }
    Err(crate::Error::Invalid(format!(
        "this run needs about {:.1} GiB but the device has {:.1} GiB ({est}); lower num_generations, \
         per_device_train_batch_size or decode_batch_size, set bf16 = true, \
         gradient_checkpointing = true or lora_r (LoRA), or train a smaller model",
        est.total() / GIB,
        capacity_bytes / GIB
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(precision: Precision) -> RunShape {
        RunShape {
            precision,
            reference: false,
            gradient_checkpointing: false,
            rollout_rows: 0,
            micro_batch_rows: 0,
            seq_len: 0,
            lora_params: None,
            critic: false,
        }
    }

    /// Full fine-tuning with f32 master weights and AdamW costs 16 bytes per parameter before
    /// activations: Qwen2.5-3B fits an 80 GB GPU (46 GiB), 7B does not (113 GiB).
    #[test]
    fn states_by_hand() {
        let seven = ModelConfig::new(152064, 3584, 18944, 28, 28, 4, false);
        let e = estimate(&seven, &shape(Precision::F32));
        assert_eq!(
            e.weights + e.gradients + e.optimizer,
            7_615_616_512.0 * 16.0
        );
        assert_eq!(e.total(), 7_615_616_512.0 * 16.0);
        assert!(check_fits(&e, 80e9).is_err());
        let three = ModelConfig::new(151936, 2048, 11008, 36, 16, 2, true);
        assert!(check_fits(&estimate(&three, &shape(Precision::F32)), 80e9).is_ok());
        // LoRA r 16 on every projection: the frozen base in bf16 (shared by the sampler), f32
        // adapters with gradients and AdamW (40 M parameters): 7B takes 14.7 GiB before the
        // KV cache and activations
        let lora = crate::model::lora::LoraConfig {
            r: 16,
            alpha: 32.0,
            targets: crate::model::lora::LORA_TARGETS.map(String::from).to_vec(),
        };
        let trained = lora.num_params(&seven);
        assert_eq!(
            trained,
            28 * 16 * (2 * (3584 + 3584) + 2 * (3584 + 512) + 3 * (3584 + 18944))
        );
        let e = estimate(
            &seven,
            &RunShape {
                lora_params: Some(trained),
                ..shape(Precision::Bf16)
            },
        );
        assert_eq!(e.gradients, trained as f64 * 4.0);
        assert_eq!(e.weights, 7_615_616_512.0 * 2.0 + trained as f64 * 4.0);
        assert_eq!(e.sampler_copy, 0.0);
        assert!(e.total() < 15.0 * GIB, "{e}");
    }

    /// KV cache and activations by hand on a small shape.
    #[test]
    fn kv_and_activations_by_hand() {
        // d 8, 2 heads (hd 4), 1 KV head, I 12, 1 layer, vocab 10
        let c = ModelConfig::new(10, 8, 12, 1, 2, 1, true);
        let s = RunShape {
            precision: Precision::Bf16,
            reference: true,
            gradient_checkpointing: false,
            rollout_rows: 3,
            micro_batch_rows: 2,
            seq_len: 5,
            lora_params: None,
            critic: false,
        };
        let e = estimate(&c, &s);
        let n = c.num_params() as f64;
        assert_eq!(e.sampler_copy, n * 2.0);
        assert_eq!(e.reference, n * 2.0);
        // 3 rows · 5 tokens · 1 layer · (K and V) · 4 values · 2 bytes
        assert_eq!(e.kv_cache, 240.0);
        // per token: 8·8 + 2·(24 + 24 + 16 + 48) = 288, logits 10·10 = 100; 10 tokens
        assert_eq!(e.activations, 3880.0);
        assert_eq!(e.critic, 0.0);
        // PPO's critic: the backbone and a head of 8 (tied: no LM head to drop), 16 bytes per
        // parameter (f32 weights, gradients, AdamW), and its layers' activations (no logits)
        let ppo = estimate(&c, &RunShape { critic: true, ..s });
        assert_eq!(ppo.critic, (n + 8.0) * 16.0 + 2880.0);
        assert_eq!(ppo.total(), e.total() + ppo.critic);
        let half = estimate(
            &c,
            &RunShape {
                gradient_checkpointing: true,
                ..s
            },
        );
        assert_eq!(half.activations, 10.0 * (144.0 + 100.0));
        let err = check_fits(&e, 100.0).unwrap_err().to_string();
        assert!(err.contains("per_device_train_batch_size"), "{err}");
    }
}
