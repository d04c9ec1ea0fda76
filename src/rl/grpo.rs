//! One GRPO update over a batch of experience: the completions with their advantages (and old
//! and reference log-probs when needed) → micro-batches → loss → accumulated gradients →
//! global-norm clip → AdamW.
//!
//! Gradient accumulation normalises every micro-batch by the counts of the whole step
//! ([`super::loss::StepCounts`]), so splitting a batch changes nothing but memory (except for `bnpo`, see
//! `loss.rs`). A non-finite loss or gradient norm skips the optimizer step.

use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::experience::{Experience, Sample};
use super::logprobs::{completion_logprobs, completion_mask, right_aligned, window};
use super::loss::{grpo_loss, LossInputs, LossMetrics, LossParams, TokenSums};
use super::optim::{clip_global_norm, PolicyOptimizer};
use crate::error::Result;
use crate::model::Qwen2ForCausalLM;
use crate::tensor::read_back;

/// Settings of [`update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateConfig {
    pub loss: LossParams,
    /// Sequences per forward/backward pass (`per_device_train_batch_size`).
    pub micro_batch: usize,
    /// Global-norm clip (`max_grad_norm`; 0 = off).
    pub max_grad_norm: f32,
    /// The sampling temperature: the policy's log-probs are `log_softmax(logits / T)`, the
    /// distribution the completions were drawn from (TRL does the same).
    pub temperature: f32,
}

/// One loss term of an update: a batch of experience and its weight. GRPO has one part; MGRPO
/// adds the layer-2 corrections with `layer2_weight`. Each part is normalised by its own counts
/// (`loss_type`), so the step's loss is `Σ weight · L(part)`.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub experience: &'a Experience,
    pub weight: f32,
    /// The token budget its completions were sampled with (`dr_grpo`'s constant).
    pub max_completion_length: usize,
}

/// What an update measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateStats {
    /// The step's loss (the weighted parts added up).
    pub loss: f32,
    /// Each part's own (unweighted) loss.
    pub part_losses: Vec<f32>,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Loss metrics over every part's active tokens.
    pub metrics: LossMetrics,
    /// Mean entropy of the policy over active tokens.
    pub entropy: f32,
    /// `false` when the loss or the gradient was not finite and the step was skipped.
    pub applied: bool,
    /// Forward seconds (log-probs and loss, read back).
    pub forward_secs: f64,
    /// Backward seconds (and gradient accumulation).
    pub backward_secs: f64,
    /// Clipping + optimizer seconds.
    pub optimizer_secs: f64,
}

/// Host-side sums of a share of a step's micro-batches: added up over micro-batches, then
/// over devices (`rl::parallel` all-reduces them as one vector, [`Self::to_vec`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UpdateSums {
    pub tokens: TokenSums,
    /// Σ entropy over active tokens.
    pub entropy: f32,
    /// Micro-batches run.
    pub micro_batches: f32,
    /// Each part's loss.
    pub part_losses: Vec<f32>,
}

impl UpdateSums {
    pub fn new(parts: usize) -> Self {
        Self {
            part_losses: vec![0.0; parts],
            ..Default::default()
        }
    }

    /// Every field in one vector: the token sums, the entropy, the micro-batches, the part
    /// losses.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut v = self.tokens.to_array().to_vec();
        v.extend([self.entropy, self.micro_batches]);
        v.extend(&self.part_losses);
        v
    }

    /// The inverse of [`Self::to_vec`].
    pub fn from_vec(v: &[f32]) -> Self {
        let n = TokenSums::LEN;
        Self {
            tokens: TokenSums::from_slice(&v[..n]),
            entropy: v[n],
            micro_batches: v[n + 1],
            part_losses: v[n + 2..].to_vec(),
        }
    }
}

/// Gradients and host-side sums of a share of a step's micro-batches (all of them on one
/// device; every n-th under data parallelism, see `rl::parallel`).
pub(crate) struct Accumulated {
    pub grads: Option<GradientsParams>,
    pub sums: UpdateSums,
    pub forward_secs: f64,
    pub secs: f64,
}

/// Which micro-batches a device runs: number `j` (counted over all parts) when
/// `j % of == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Share {
    pub index: usize,
    pub of: usize,
}

/// Forward and backward over this device's share of the micro-batches of `parts`, each
/// normalised by the counts of its whole part, so that the shares' gradients add up to the
/// step's gradient.
pub(crate) fn accumulate<B: AutodiffBackend>(
    model: &Qwen2ForCausalLM<B>,
    parts: &[Part<'_>],
    cfg: &UpdateConfig,
    share: Share,
    device: &B::Device,
) -> Result<Accumulated> {
    let t0 = Instant::now();
    let mb = cfg.micro_batch.max(1);
    let mut accum = GradientsAccumulator::<Qwen2ForCausalLM<B>>::new();
    let mut sums = UpdateSums::new(parts.len());
    let mut forward_secs = 0.0;
    let mut any = false;
    let mut j = 0;
    for (pi, part) in parts.iter().enumerate() {
        let exp = part.experience;
        let counts = exp.counts(mb, part.max_completion_length);
        let n = exp.samples.len();
        for start in (0..n).step_by(mb) {
            let mine = j % share.of == share.index;
            j += 1;
            if !mine {
                continue;
            }
            let tf = Instant::now();
            let range = start..(start + mb).min(n);
            let samples = &exp.samples[range.clone()];
            let rows = exp.rows(range);
            let t = window(&rows);
            if t == 0 {
                continue;
            }
            let m = rows.len();
            let keep: Vec<bool> = samples.iter().map(|s| s.keep).collect();
            let host = |v: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v, [m, t]), device);
            let aligned = |f: fn(&Sample) -> Option<&Vec<f32>>| -> Option<Tensor<B, 2>> {
                let vs: Option<Vec<&[f32]>> =
                    samples.iter().map(|s| f(s).map(|v| &v[..])).collect();
                vs.map(|vs| host(right_aligned(&vs, t)))
            };
            let mask = host(completion_mask(&rows, &keep, t));
            let (logps, entropy) = completion_logprobs(model, &rows, cfg.temperature, true, device);
            let inputs = LossInputs {
                logps,
                old_logps: aligned(|s| s.old_logps.as_ref()),
                ref_logps: aligned(|s| s.ref_logps.as_ref()),
                advantages: Tensor::from_data(
                    TensorData::new(samples.iter().map(|s| s.advantage).collect(), [m]),
                    device,
                ),
                mask: mask.clone(),
            };
            let (loss, loss_sums) = grpo_loss(inputs, &cfg.loss, &counts);
            let entropy = entropy.map_or_else(|| Tensor::zeros([1], device), |h| (h * mask).sum());
            // one read-back per micro-batch: the metric sums, the entropy sum and the loss
            let host = read_back(
                Tensor::cat(vec![loss_sums.sums, entropy, loss.clone().detach()], 0),
                "loss metrics",
            )?;
            let n = TokenSums::LEN;
            sums.tokens.add(&TokenSums::from_slice(&host[..n]));
            sums.entropy += host[n];
            sums.micro_batches += 1.0;
            sums.part_losses[pi] += host[n + 1];
            forward_secs += tf.elapsed().as_secs_f64();
            let grads = GradientsParams::from_grads((loss * part.weight).backward(), model);
            accum.accumulate(model, grads);
            any = true;
        }
    }
    Ok(Accumulated {
        grads: any.then(|| accum.grads()),
        sums,
        forward_secs,
        secs: t0.elapsed().as_secs_f64(),
    })
}

/// The step's statistics from the (device-summed) sums of [`Accumulated`], and, when any
/// micro-batch ran, the clipped optimizer step.
pub(crate) fn apply<B: AutodiffBackend>(
    model: Qwen2ForCausalLM<B>,
    optim: &mut PolicyOptimizer<B>,
    parts: &[Part<'_>],
    grads: Option<GradientsParams>,
    sums: &UpdateSums,
    cfg: &UpdateConfig,
    lr: f64,
) -> (Qwen2ForCausalLM<B>, UpdateStats) {
    let t0 = Instant::now();
    let part_losses = sums.part_losses.clone();
    let Some(mut grads) = grads.filter(|_| sums.micro_batches > 0.0) else {
        // nothing to train on (every part empty): no optimizer step, nothing skipped
        return (
            model,
            UpdateStats {
                part_losses,
                applied: true,
                ..Default::default()
            },
        );
    };
    let metrics = LossMetrics::from_totals(sums.tokens);
    let loss: f32 = parts
        .iter()
        .zip(&part_losses)
        .map(|(p, l)| p.weight * l)
        .sum();
    let grad_norm = clip_global_norm(&model, &mut grads, cfg.max_grad_norm);
    let applied = loss.is_finite() && grad_norm.is_finite();
    let model = if applied {
        optim.step(lr, model, grads)
    } else {
        model
    };
    (
        model,
        UpdateStats {
            loss,
            part_losses,
            grad_norm,
            metrics,
            entropy: sums.entropy / metrics.tokens.max(1.0),
            applied,
            optimizer_secs: t0.elapsed().as_secs_f64(),
            ..Default::default()
        },
    )
}

/// One optimizer step on `parts` at learning rate `lr`. Returns the updated model (unchanged
/// when the step is skipped) and what it measured.
pub fn update<B: AutodiffBackend>(
    model: Qwen2ForCausalLM<B>,
    optim: &mut PolicyOptimizer<B>,
    parts: &[Part<'_>],
    cfg: &UpdateConfig,
    lr: f64,
    device: &B::Device,
) -> Result<(Qwen2ForCausalLM<B>, UpdateStats)> {
    let all = Share { index: 0, of: 1 };
    let acc = accumulate(&model, parts, cfg, all, device)?;
    let (model, mut stats) = apply(model, optim, parts, acc.grads, &acc.sums, cfg, lr);
    stats.forward_secs = acc.forward_secs;
    stats.backward_secs = acc.secs - acc.forward_secs;
    Ok((model, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{named_tensors, Qwen2Config};
    use crate::rl::loss::LossType;
    use crate::rl::optim::{adamw, AdamParams};
    use burn::backend::Autodiff;

    type AB = Autodiff<crate::TestBackend>;

    fn experience(with_old: bool) -> Experience {
        let prompts = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9]];
        let completions: [&[u32]; 8] = [
            &[10, 11],
            &[12, 13, 14, 15],
            &[16],
            &[17, 18, 19],
            &[20, 21, 22, 23, 24],
            &[25, 26],
            &[27],
            &[28, 29, 30],
        ];
        let samples = completions
            .iter()
            .enumerate()
            .map(|(i, c)| Sample {
                prompt: i % 3,
                completion: c.to_vec(),
                advantage: [1.0, -0.5, 0.25, -1.0][i % 4],
                keep: i != 5,
                old_logps: with_old.then(|| c.iter().map(|&x| -(x as f32) / 10.0).collect()),
                ref_logps: None,
            })
            .collect();
        Experience { prompts, samples }
    }

    /// One step; returns the updated weights and the gradient norm.
    fn step(
        model: Qwen2ForCausalLM<AB>,
        exp: &Experience,
        mb: usize,
        lt: LossType,
    ) -> (Vec<(String, f32)>, f32) {
        let mut optim = adamw::<AB>(&AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-3,
            weight_decay: 0.01,
        });
        let cfg = UpdateConfig {
            loss: LossParams {
                epsilon_low: 0.2,
                epsilon_high: 0.28,
                beta: 0.0,
                loss_type: lt,
            },
            micro_batch: mb,
            max_grad_norm: 0.5,
            temperature: 1.0,
        };
        let parts = [Part {
            experience: exp,
            weight: 1.0,
            max_completion_length: 5,
        }];
        let (model, stats) =
            update(model, &mut optim, &parts, &cfg, 1e-3, &Default::default()).unwrap();
        assert!(stats.applied && stats.grad_norm > 0.0);
        let weights = named_tensors(&model)
            .unwrap()
            .into_iter()
            .flat_map(|(k, (v, _))| v.into_iter().map(move |x| (k.clone(), x)))
            .collect::<Vec<_>>();
        (weights, stats.grad_norm)
    }

    /// In f32 two batchings round differently (~1e-7 of each gradient entry). Adam's first step
    /// is `lr·g/(|g| + ε)`: with ε = 1e-8 an entry that happens to be ~1e-8 turns that rounding
    /// into an lr-sized difference (seen: one `v_proj` entry off by 0.6·lr). ε = 1e-3 keeps the
    /// step smooth in g, so the comparison measures accumulation, not Adam's sign-like start.
    #[test]
    fn accumulation_equals_one_big_batch() {
        let config = Qwen2Config::new(32, 16, 32, 2, 4, 2, true);
        <AB as Backend>::seed(&Default::default(), 11);
        let model = Qwen2ForCausalLM::<AB>::random(&config, &Default::default());
        let before: Vec<f32> = named_tensors(&model)
            .unwrap()
            .into_values()
            .flat_map(|(v, _)| v)
            .collect();
        for (lt, with_old) in [
            (LossType::Dapo, false),
            (LossType::Dapo, true),
            (LossType::Grpo, false),
            (LossType::Grpo, true),
            (LossType::DrGrpo, true),
        ] {
            let exp = experience(with_old);
            let (one, norm_one) = step(model.clone(), &exp, 8, lt);
            let (four, norm_four) = step(model.clone(), &exp, 2, lt);
            assert!(
                (norm_one - norm_four).abs() < 1e-4 * norm_one,
                "{lt:?}: gradient norms {norm_one} vs {norm_four}"
            );
            let moved = one
                .iter()
                .zip(&before)
                .map(|(a, b)| (a.1 - b).abs())
                .fold(0.0, f32::max);
            assert!(
                moved > 1e-4,
                "{lt:?}: the step must change the weights ({moved})"
            );
            let diff = one
                .iter()
                .zip(&four)
                .map(|(a, b)| (a.1 - b.1).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-5, "{lt:?}: 1×8 vs 4×2 differ by {diff}");
        }
    }

    /// dr_grpo divides each part by its own sequences × budget. On a first iteration (no old
    /// log-probs) the ratio is 1, so each token's loss is −A whatever the model: over
    /// `experience(false)` (lengths 2 4 1 3 5 2 1 3, advantages 1 −½ ¼ −1 repeating, sequence 5
    /// masked) Σ −A·len = −2 + 2 − ¼ + 3 − 5 − ¼ + 3 = ½. With 8 sequences, budget 5 gives
    /// ½ / 40 = 0.0125 and budget 20 gives ½ / 160 = 0.003125.
    #[test]
    fn dr_grpo_divides_each_part_by_its_own_budget() {
        let config = Qwen2Config::new(32, 16, 32, 2, 4, 2, true);
        <AB as Backend>::seed(&Default::default(), 3);
        let model = Qwen2ForCausalLM::<AB>::random(&config, &Default::default());
        let exp = experience(false);
        let cfg = UpdateConfig {
            loss: LossParams {
                epsilon_low: 0.2,
                epsilon_high: 0.28,
                beta: 0.0,
                loss_type: LossType::DrGrpo,
            },
            micro_batch: 3,
            max_grad_norm: 0.0,
            temperature: 1.0,
        };
        let part = |weight, max_completion_length| Part {
            experience: &exp,
            weight,
            max_completion_length,
        };
        let mut optim = adamw::<AB>(&AdamParams {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        });
        let parts = [part(1.0, 5), part(0.5, 20)];
        let (_, stats) =
            update(model, &mut optim, &parts, &cfg, 1e-3, &Default::default()).unwrap();
        let [l1, l2] = stats.part_losses[..] else {
            panic!("{:?}", stats.part_losses)
        };
        assert!((l1 - 0.0125).abs() < 1e-7, "layer 1: {l1}");
        assert!((l2 - 0.003125).abs() < 1e-7, "layer 2: {l2}");
        assert!((stats.loss - (0.0125 + 0.5 * 0.003125)).abs() < 1e-7);
    }

    /// MGRPO's step: the loss is `L1 + w·L2`, each part normalised by its own counts, so
    /// adding layer 2 never rescales layer 1.
    #[test]
    fn weighted_parts_add_up() {
        let config = Qwen2Config::new(32, 16, 32, 2, 4, 2, true);
        <AB as Backend>::seed(&Default::default(), 5);
        let model = Qwen2ForCausalLM::<AB>::random(&config, &Default::default());
        let l1 = experience(true);
        let mut l2 = experience(true);
        l2.samples.truncate(5);
        for s in &mut l2.samples {
            s.advantage = -2.0 * s.advantage + 0.3;
        }
        let cfg = UpdateConfig {
            loss: LossParams {
                epsilon_low: 0.2,
                epsilon_high: 0.28,
                beta: 0.0,
                loss_type: LossType::Dapo,
            },
            micro_batch: 3,
            max_grad_norm: 0.0,
            temperature: 1.0,
        };
        let run = |parts: &[Part<'_>]| {
            let mut optim = adamw::<AB>(&AdamParams {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.0,
            });
            update(
                model.clone(),
                &mut optim,
                parts,
                &cfg,
                1e-3,
                &Default::default(),
            )
            .unwrap()
            .1
        };
        let part = |e, w| Part {
            experience: e,
            weight: w,
            max_completion_length: 5,
        };
        let a = run(&[part(&l1, 1.0)]);
        let b = run(&[part(&l2, 1.0)]);
        let both = run(&[part(&l1, 1.0), part(&l2, 0.5)]);
        assert!(a.loss.abs() > 1e-3 && b.loss.abs() > 1e-3);
        assert_eq!(both.part_losses.len(), 2);
        assert!((both.part_losses[0] - a.loss).abs() < 1e-6);
        assert!((both.part_losses[1] - b.loss).abs() < 1e-6);
        assert!((both.loss - (a.loss + 0.5 * b.loss)).abs() < 1e-5);
        // an empty layer 2 changes nothing
        let empty = Experience::default();
        let alone = run(&[part(&l1, 1.0), part(&empty, 1.0)]);
        assert!((alone.loss - a.loss).abs() < 1e-7);
        assert!((alone.grad_norm - a.grad_norm).abs() < 1e-6 * a.grad_norm);
    }
}
