//! The GRPO objective: a pure function of tensors returning the loss and its metrics.
//!
//! Per token: `ℓ = −min(r·A, clip(r, 1 − ε_low, 1 + ε_high)·A) + β·D` with
//! `r = exp(log π_θ − log π_old)` and the k3 estimator `D = exp(ref − log π_θ) − (ref − log π_θ) − 1`.
//!
//! Choices, and the config key that switches each:
//! - `π_old` (`num_iterations`): with one update per rollout there are no old log-probs; the
//!   detached current log-probs stand in, so `r = 1` exactly in value and the gradient is
//!   `−A·∇log π` (the loss *value* is then ≈ 0 with β = 0, while its gradient is not).
//! - Clipping (`epsilon`, `epsilon_high`): asymmetric bounds as in DAPO; `epsilon_high`
//!   defaults to `epsilon`.
//! - KL (`beta`): the k3 estimator against a frozen reference, added per token; with β = 0 the
//!   reference is neither loaded nor evaluated.
//! - Aggregation (`loss_type`), with `m` the completion mask and the counts of the **whole
//!   optimizer step** (every micro-batch), so that gradient accumulation equals one big batch:
//!   - `grpo`: mean over sequences of each sequence's token mean;
//!   - `bnpo`: `Σ mℓ / Σ m` over the micro-batch, averaged over micro-batches (TRL's
//!     definition; the one variant that depends on how the step is split);
//!   - `dr_grpo`: `Σ mℓ / (sequences · max_completion_length)`;
//!   - `dapo` (default): `Σ mℓ / (active tokens of the step)`.
//! - Truncated completions (`mask_truncated_completions`) are removed by the caller through `m`.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How per-token losses are aggregated (`loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    Grpo,
    Bnpo,
    DrGrpo,
    #[default]
    Dapo,
}

/// The objective's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossParams {
    pub epsilon_low: f32,
    pub epsilon_high: f32,
    pub beta: f32,
    pub loss_type: LossType,
}

/// Counts of one part of the optimizer step (all of its micro-batches), and its token budget:
/// what its loss is normalised by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCounts {
    /// Sequences in the step.
    pub sequences: usize,
    /// Active (unmasked) completion tokens in the step.
    pub tokens: usize,
    /// Micro-batches the step is split into.
    pub micro_batches: usize,
    /// The token budget of these completions, `dr_grpo`'s constant length: layer 1's
    /// `max_completion_length`, or `layer2_max_completion_length` for MGRPO's layer 2 and
    /// iGRPO's refinements.
    pub max_completion_length: usize,
}

/// The tensors of one micro-batch. Completion tokens of `n` sequences in a `[n, t]` window
/// (shorter completions are padded; `mask` says which entries count).
#[derive(Debug, Clone)]
pub struct LossInputs<B: Backend> {
    /// `[n, t]` log π_θ of each completion token (carries the gradient)
    pub logps: Tensor<B, 2>,
    /// `[n, t]` log π_old, when the rollout is reused (`num_iterations > 1`)
    pub old_logps: Option<Tensor<B, 2>>,
    /// `[n, t]` log π_ref, when β > 0
    pub ref_logps: Option<Tensor<B, 2>>,
    /// `[n]`
    pub advantages: Tensor<B, 1>,
    /// `[n, t]`, 1 on counted tokens, 0 elsewhere
    pub mask: Tensor<B, 2>,
}

/// Sums over the micro-batch's active tokens (detached), to be added up over the step.
#[derive(Debug, Clone)]
pub struct LossSums<B: Backend> {
    /// `[5]`: Σ D, Σ low-clipped, Σ high-clipped, Σ region-clipped, Σ m
    pub sums: Tensor<B, 1>,
}

/// [`LossSums`] read back: sums over active tokens, added up over micro-batches and devices.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TokenSums {
    /// Σ D (the k3 KL).
    pub kl: f32,
    pub clip_low: f32,
    pub clip_high: f32,
    pub clip_region: f32,
    /// Σ m: the active tokens.
    pub tokens: f32,
}

impl TokenSums {
    /// Values in [`LossSums`]' order.
    pub const LEN: usize = 5;

    /// From `LEN` values in [`LossSums`]' order.
    pub fn from_slice(v: &[f32]) -> Self {
        Self {
            kl: v[0],
            clip_low: v[1],
            clip_high: v[2],
            clip_region: v[3],
            tokens: v[4],
        }
    }

    /// The values in [`LossSums`]' order.
    pub fn to_array(self) -> [f32; Self::LEN] {
        [
            self.kl,
            self.clip_low,
            self.clip_high,
            self.clip_region,
            self.tokens,
        ]
    }

    /// Add `other` field by field.
    pub fn add(&mut self, other: &Self) {
        self.kl += other.kl;
        self.clip_low += other.clip_low;
        self.clip_high += other.clip_high;
        self.clip_region += other.clip_region;
        self.tokens += other.tokens;
    }
}

/// [`LossSums`] read back and divided by the active tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossMetrics {
    /// Mean k3 KL per active token (`kl`; 0 when β = 0).
    pub kl: f32,
    /// Fraction of tokens with `r < 1 − ε_low` and `A < 0` (`clip_ratio/low_mean`).
    pub clip_low: f32,
    /// Fraction of tokens with `r > 1 + ε_high` and `A > 0` (`clip_ratio/high_mean`).
    pub clip_high: f32,
    /// Either of the two (`clip_ratio/region_mean`).
    pub clip_region: f32,
    pub tokens: f32,
}

impl LossMetrics {
    /// Metrics from the sums of every micro-batch of a step, in [`LossSums`]' order.
    pub fn from_sums(sums: &[f32; TokenSums::LEN]) -> Self {
        Self::from_totals(TokenSums::from_slice(sums))
    }

    /// Metrics from the step's token sums.
    pub fn from_totals(s: TokenSums) -> Self {
        let t = s.tokens.max(1.0);
        Self {
            kl: s.kl / t,
            clip_low: s.clip_low / t,
            clip_high: s.clip_high / t,
            clip_region: s.clip_region / t,
            tokens: s.tokens,
        }
    }
}

/// The micro-batch's share of the step's loss, and its metric sums.
///
/// # Shapes
/// - see [`LossInputs`]; returns a `[1]` loss
pub fn grpo_loss<B: Backend>(
    inputs: LossInputs<B>,
    params: &LossParams,
    step: &StepCounts,
) -> (Tensor<B, 1>, LossSums<B>) {
    let LossInputs {
        logps,
        old_logps,
        ref_logps,
        advantages,
        mask,
    } = inputs;
    let [n, t] = logps.dims();
    let old = old_logps.unwrap_or_else(|| logps.clone().detach());
    let ratio = (logps.clone() - old).exp(); // [n, t]
    let adv = advantages.reshape([n, 1]).expand([n, t]); // [n, t]
    let clipped = ratio
        .clone()
        .clamp(1.0 - params.epsilon_low, 1.0 + params.epsilon_high);
    let unclipped_obj = ratio.clone() * adv.clone();
    let clipped_obj = clipped * adv.clone();
    let mut per_token = unclipped_obj.min_pair(clipped_obj).neg(); // [n, t]

    let kl = match ref_logps {
        Some(reference) if params.beta > 0.0 => {
            // ref − log π, 0 on masked columns before the exp: there `ref` is a placeholder,
            // and exp(0 − log π) overflows to inf for log π < −88.7 (inf · 0 = NaN)
            let x = (reference - logps).mask_fill(mask.clone().equal_elem(0.0), 0.0);
            let d = x.clone().exp() - x - 1.0; // [n, t]
            per_token = per_token + d.clone().mul_scalar(params.beta);
            d.detach()
        }
        _ => Tensor::zeros([n, t], &mask.device()),
    };

    let masked = per_token * mask.clone(); // [n, t]
    let loss = match params.loss_type {
        LossType::Grpo => {
            let per_seq = masked.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0); // [n, 1]
            per_seq.sum().div_scalar(step.sequences.max(1) as f32)
        }
        LossType::Bnpo => {
            let local = mask.clone().sum().clamp_min(1.0);
            (masked.sum() / local).div_scalar(step.micro_batches.max(1) as f32)
        }
        LossType::DrGrpo => masked
            .sum()
            .div_scalar((step.sequences.max(1) * step.max_completion_length.max(1)) as f32),
        LossType::Dapo => masked.sum().div_scalar(step.tokens.max(1) as f32),
    };

    // TRL's clip metrics: a token is "low-clipped" when the ratio fell below the range on a
    // negative advantage, "high-clipped" when it rose above it on a positive one.
    let ratio = ratio.detach();
    let adv = adv.detach();
    let low = ratio
        .clone()
        .lower_elem(1.0 - params.epsilon_low)
        .bool_and(adv.clone().lower_elem(0.0))
        .float();
    let high = ratio
        .greater_elem(1.0 + params.epsilon_high)
        .bool_and(adv.greater_elem(0.0))
        .float();
    let region = (low.clone() + high.clone()).clamp_max(1.0);
    let sums = Tensor::cat(
        vec![
            (kl * mask.clone()).sum(),
            (low * mask.clone()).sum(),
            (high * mask.clone()).sum(),
            (region * mask.clone()).sum(),
            mask.sum(),
        ],
        0,
    )
    .detach(); // [5]
    (loss, LossSums { sums })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;

    type B = crate::TestBackend;
    type AB = Autodiff<B>;

    fn t2(rows: [[f32; 3]; 2]) -> Tensor<B, 2> {
        Tensor::from_data(rows, &Default::default())
    }

    /// Two sequences × three tokens, worked out by hand.
    /// - old log-probs 0, so r = exp(logp): seq 1 r = [1, 1.5, 0.5], seq 2 r = [1, 0.5, 2].
    /// - A = [+1, −1], ε_low = 0.2, ε_high = 0.28, seq 2's last token masked.
    ///
    /// seq 1 (A = +1): min(r, clip r) = [1, 1.28 (high-clipped), 0.5] → ℓ = [−1, −1.28, −0.5]
    /// seq 2 (A = −1): min(−r, −clip r) = [−1, −0.8 (low-clipped), −2] → ℓ = [1, 0.8, (2 masked)]
    fn example(beta: f32, with_ref: bool) -> LossInputs<B> {
        let ln = |x: f32| x.ln();
        LossInputs {
            logps: t2([[0.0, ln(1.5), ln(0.5)], [0.0, ln(0.5), ln(2.0)]]),
            old_logps: Some(t2([[0.0; 3]; 2])),
            // ref − logp = ln 2 on seq 1 token 1 and seq 2 token 2, 0 elsewhere:
            // D = 2 − ln 2 − 1 = 0.306853 there, 0 elsewhere
            ref_logps: (with_ref && beta > 0.0).then(|| {
                t2([
                    [ln(2.0), ln(1.5), ln(0.5)],
                    [0.0, ln(0.5) + ln(2.0), ln(2.0)],
                ])
            }),
            advantages: Tensor::from_data([1.0, -1.0], &Default::default()),
            mask: t2([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]),
        }
    }

    fn params(loss_type: LossType, beta: f32) -> LossParams {
        LossParams {
            epsilon_low: 0.2,
            epsilon_high: 0.28,
            beta,
            loss_type,
        }
    }

    const STEP: StepCounts = StepCounts {
        sequences: 2,
        tokens: 5,
        micro_batches: 1,
        max_completion_length: 3,
    };

    fn value(t: Tensor<B, 1>) -> f32 {
        t.into_scalar()
    }

    #[test]
    fn each_loss_type_by_hand() {
        // Σ mℓ = (−1 − 1.28 − 0.5) + (1 + 0.8) = −0.98 over 5 tokens
        // grpo: ((−2.78 / 3) + (1.8 / 2)) / 2 = (−0.926667 + 0.9) / 2
        for (lt, want) in [
            (LossType::Grpo, (-2.78 / 3.0 + 0.9) / 2.0),
            (LossType::Bnpo, -0.98 / 5.0),
            (LossType::DrGrpo, -0.98 / 6.0),
            (LossType::Dapo, -0.98 / 5.0),
        ] {
            let (loss, sums) = grpo_loss(example(0.0, false), &params(lt, 0.0), &STEP);
            let got = value(loss);
            assert!((got - want).abs() < 1e-6, "{lt:?}: {got} vs {want}");
            let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
            let m = LossMetrics::from_sums(&s.try_into().unwrap());
            assert_eq!(m.clip_low, 0.2, "{lt:?}");
            assert_eq!(m.clip_high, 0.2, "{lt:?}");
            assert_eq!(m.clip_region, 0.4, "{lt:?}");
            assert_eq!(m.kl, 0.0);
            assert_eq!(m.tokens, 5.0);
        }
    }

    #[test]
    fn kl_term_by_hand() {
        // D = 1 − ln 2 on two active tokens; β = 0.1 adds 0.1·2·(1 − ln 2) to Σ mℓ
        let d = 1.0 - 2f32.ln();
        for (lt, want) in [
            (LossType::Dapo, (-0.98 + 0.2 * d) / 5.0),
            (
                LossType::Grpo,
                ((-2.78 + 0.1 * d) / 3.0 + (1.8 + 0.1 * d) / 2.0) / 2.0,
            ),
            (LossType::DrGrpo, (-0.98 + 0.2 * d) / 6.0),
        ] {
            let (loss, sums) = grpo_loss(example(0.1, true), &params(lt, 0.1), &STEP);
            let got = value(loss);
            assert!((got - want).abs() < 1e-6, "{lt:?}: {got} vs {want}");
            let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
            let kl = LossMetrics::from_sums(&s.try_into().unwrap()).kl;
            assert!((kl - 2.0 * d / 5.0).abs() < 1e-6);
        }
    }

    #[test]
    fn kl_is_exactly_zero_when_policy_equals_reference() {
        let mut x = example(0.5, false);
        x.ref_logps = Some(x.logps.clone());
        let with = value(grpo_loss(x.clone(), &params(LossType::Dapo, 0.5), &STEP).0);
        let (without, sums) = grpo_loss(example(0.0, false), &params(LossType::Dapo, 0.0), &STEP);
        assert_eq!(with, value(without));
        let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
        assert_eq!(s[0], 0.0);
    }

    /// A masked column (seq 2's last token) where log π = −200 and the reference is the
    /// placeholder 0 that right-aligned padding leaves there: exp(0 − (−200)) overflows, and
    /// before the fix inf · 0 made the loss NaN for every loss type. The loss, its KL metric
    /// and its gradient must be finite, and equal to the same batch with a harmless value there.
    #[test]
    fn a_masked_column_far_below_the_reference_keeps_the_k3_loss_finite() {
        let beta = 0.5;
        let with_logp = |masked_logp: f32| {
            let mut x = example(beta, true);
            let ln = |v: f32| v.ln();
            x.logps = t2([[0.0, ln(1.5), ln(0.5)], [0.0, ln(0.5), masked_logp]]);
            x.ref_logps = Some(t2([
                [ln(2.0), ln(1.5), ln(0.5)],
                [0.0, ln(0.5) + ln(2.0), 0.0],
            ]));
            x
        };
        for lt in [
            LossType::Grpo,
            LossType::Bnpo,
            LossType::DrGrpo,
            LossType::Dapo,
        ] {
            let (far, sums) = grpo_loss(with_logp(-200.0), &params(lt, beta), &STEP);
            let (near, _) = grpo_loss(with_logp(-1.0), &params(lt, beta), &STEP);
            let (far, near) = (value(far), value(near));
            assert!(far.is_finite(), "{lt:?}: loss {far}");
            assert!((far - near).abs() < 1e-6, "{lt:?}: {far} vs {near}");
            let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
            assert!(s.iter().all(|v| v.is_finite()), "{lt:?}: sums {s:?}");
        }
        // the gradient through log π is finite too, and zero on the masked column
        let logps = Tensor::<AB, 2>::from_data(
            [[0.0, 1.5f32.ln(), 0.5f32.ln()], [0.0, 0.5f32.ln(), -200.0]],
            &Default::default(),
        )
        .require_grad();
        let ex = with_logp(-200.0);
        let inputs = LossInputs {
            logps: logps.clone(),
            old_logps: Some(Tensor::from_inner(ex.old_logps.unwrap())),
            ref_logps: Some(Tensor::from_inner(ex.ref_logps.unwrap())),
            advantages: Tensor::from_inner(ex.advantages),
            mask: Tensor::from_inner(ex.mask),
        };
        let (loss, _) = grpo_loss(inputs, &params(LossType::Dapo, beta), &STEP);
        let grads = loss.backward();
        let g: Vec<f32> = logps.grad(&grads).unwrap().into_data().to_vec().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert_eq!(g[5], 0.0);
    }

    /// Trainable log-probs (2 × 3) and the inputs of a first iteration (no old log-probs).
    fn first_iteration(
        advantages: Tensor<AB, 1>,
        mask: Tensor<AB, 2>,
    ) -> (Tensor<AB, 2>, LossInputs<AB>) {
        let logps = Tensor::<AB, 2>::from_data(
            [[-1.0, -2.0, -0.5], [-0.3, -1.7, -4.0]],
            &Default::default(),
        )
        .require_grad();
        let inputs = LossInputs {
            logps: logps.clone(),
            old_logps: None,
            ref_logps: None,
            advantages,
            mask,
        };
        (logps, inputs)
    }

    #[test]
    fn first_iteration_ratio_is_one_and_gradient_is_not_zero() {
        let dev = Default::default();
        let (logps, inputs) = first_iteration(
            Tensor::from_data([1.0, -1.0], &dev),
            Tensor::from_data([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], &dev),
        );
        let (loss, sums) = grpo_loss(inputs, &params(LossType::Dapo, 0.0), &STEP);
        // r = 1: ℓ = −A per token; Σ = −3 + 2 = −1 over 5 tokens
        assert!((loss.clone().into_scalar() + 0.2).abs() < 1e-7);
        let s: Vec<f32> = sums.sums.into_data().to_vec().unwrap();
        assert_eq!(&s[1..4], &[0.0, 0.0, 0.0], "nothing is clipped at r = 1");
        let grads = loss.backward();
        let g: Vec<f32> = logps.grad(&grads).unwrap().into_data().to_vec().unwrap();
        // ∂/∂logp = −A·m / 5
        assert_eq!(g, vec![-0.2, -0.2, -0.2, 0.2, 0.2, 0.0]);
    }

    #[test]
    fn all_equal_advantages_give_zero_loss_and_zero_gradient() {
        let dev = Default::default();
        let (logps, inputs) = first_iteration(Tensor::zeros([2], &dev), Tensor::ones([2, 3], &dev));
        let (loss, _) = grpo_loss(inputs, &params(LossType::Grpo, 0.0), &STEP);
        let v = loss.clone().into_scalar();
        assert_eq!(v, 0.0);
        let g: Vec<f32> = logps
            .grad(&loss.backward())
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        assert!(g.iter().all(|x| *x == 0.0 && x.is_finite()));
    }
}
