//! PPO's two losses (TRL's `PPOTrainer`), pure functions of `[batch, tokens]` tensors and the
//! completion mask, summed over the unmasked tokens and divided by `tokens` — the active tokens
//! of the whole mini-batch, so that its micro-batches add up to one optimizer step's loss (TRL
//! averages per micro-batch; the two agree when micro-batch = mini-batch):
//! - policy: `Σ max(−A·r, −A·clip(r, 1 − c, 1 + c)) / tokens`, `r = exp(log π − log π_old)`,
//!   `A` the whitened per-token GAE advantages (`gae.rs`), `c` = `cliprange`;
//! - value: `½ · Σ max((V − R)², (clip(V, V_old − c, V_old + c) − R)²) / tokens`, `V` the
//!   critic's predictions, `V_old` its values at rollout time, `R` the GAE returns, `c` =
//!   `cliprange_value`.
//!
//! Each also returns detached sums over the unmasked tokens for the metrics (divided by the
//! step's tokens later): the policy's clipped tokens (`policy/clipfrac_avg`),
//! `½·(log π − log π_old)²` (`policy/approxkl_avg`) and `r` (`val/ratio`); the value's clipped
//! tokens (`val/clipfrac_avg`), `V` (`val/vpred`) and `(V − R)²` (`val/error`).

use crate::fused::FusedBackend;
use burn::prelude::*;

/// Entries of [`policy_loss`]'s sums.
pub const POLICY_SUMS: usize = 3;
/// Entries of [`value_loss`]'s sums.
pub const VALUE_SUMS: usize = 3;

/// The policy loss `[1]` and its sums `[3]`: clipped tokens, approximate KL, ratio.
pub fn policy_loss<B: FusedBackend>(
    logps: Tensor<B, 2>,
    old_logps: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cliprange: f32,
    tokens: f32,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let log_ratio = logps - old_logps;
    let ratio = log_ratio.clone().exp();
    let unclipped = -(advantages.clone() * ratio.clone());
    let clipped = -(advantages * ratio.clone().clamp(1.0 - cliprange, 1.0 + cliprange));
    let clip = clipped.clone().greater(unclipped.clone()).float();
    let approx_kl = log_ratio.detach().powi_scalar(2).mul_scalar(0.5);
    let sums = Tensor::cat(
        vec![
            (clip * mask.clone()).sum(),
            (approx_kl * mask.clone()).sum(),
            (ratio.detach() * mask.clone()).sum(),
        ],
        0,
    );
    let loss = (unclipped.max_pair(clipped) * mask)
        .sum()
        .div_scalar(tokens.max(1.0));
    (loss, sums)
}

/// The value loss `[1]` and its sums `[3]`: clipped tokens, predictions, squared errors.
pub fn value_loss<B: FusedBackend>(
    vpred: Tensor<B, 2>,
    old_values: Tensor<B, 2>,
    returns: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cliprange_value: f32,
    tokens: f32,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let clipped = vpred
        .clone()
        .max_pair(old_values.clone().sub_scalar(cliprange_value))
        .min_pair(old_values.add_scalar(cliprange_value));
    let unclipped_loss = (vpred.clone() - returns.clone()).powi_scalar(2);
    let clipped_loss = (clipped - returns).powi_scalar(2);
    let clip = clipped_loss.clone().greater(unclipped_loss.clone()).float();
    let sums = Tensor::cat(
        vec![
            (clip * mask.clone()).sum(),
            (vpred.detach() * mask.clone()).sum(),
            (unclipped_loss.clone().detach() * mask.clone()).sum(),
        ],
        0,
    );
    let worst = unclipped_loss.max_pair(clipped_loss);
    let loss = (worst * mask)
        .sum()
        .div_scalar(tokens.max(1.0))
        .mul_scalar(0.5);
    (loss, sums)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;

    type B = crate::TestBackend;

    fn t(dev: &burn::tensor::Device<B>, v: [f32; 3]) -> Tensor<B, 2> {
        Tensor::<B, 1>::from_floats(v, dev).reshape([1, 3])
    }

    /// c = 0.2. Token 0: r = 1.5, A = 2 → −3 vs −2·1.2 = −2.4: −2.4 (clipped). Token 1: r = 0.5,
    /// A = −1 → 0.5 vs 0.8: 0.8 (clipped). Token 2: r = 1, A = 0.5 → −0.5 (not). Token 3 masked.
    /// Loss (−2.4 + 0.8 − 0.5)/3 = −0.7; clip fraction 2/3; approx KL
    /// ½·(ln²1.5 + ln²0.5 + 0)/3 = ½·(0.1644019 + 0.4804530)/3 = 0.1074758.
    #[test]
    fn clipped_policy_loss_by_hand() {
        let dev = Default::default();
        let row = |v: [f32; 4]| Tensor::<B, 1>::from_floats(v, &dev).reshape([1, 4]);
        let old = row([-1.0, -1.0, -2.0, -1.0]);
        let logps = old.clone() + row([1.5f32.ln(), 0.5f32.ln(), 0.0, 3.0]);
        let (loss, sums) = policy_loss(
            logps,
            old,
            row([2.0, -1.0, 0.5, 100.0]),
            row([1.0, 1.0, 1.0, 0.0]),
            0.2,
            3.0,
        );
        let loss: f32 = loss.into_scalar();
        let sums: Vec<f32> = sums.into_data().to_vec().unwrap();
        assert!((loss + 0.7).abs() < 1e-6, "{loss}");
        assert!((sums[0] / 3.0 - 2.0 / 3.0).abs() < 1e-6, "{sums:?}");
        assert!((sums[1] / 3.0 - 0.1074758).abs() < 1e-6, "{sums:?}");
        assert!(
            (sums[2] - 3.0).abs() < 1e-6,
            "ratios 1.5 + 0.5 + 1: {sums:?}"
        );
        // the same tokens normalised by a mini-batch of 6 tokens: half the loss
        let old = row([-1.0, -1.0, -2.0, -1.0]);
        let logps = old.clone() + row([1.5f32.ln(), 0.5f32.ln(), 0.0, 3.0]);
        let adv = row([2.0, -1.0, 0.5, 100.0]);
        let (half, _) = policy_loss(logps, old, adv, row([1.0, 1.0, 1.0, 0.0]), 0.2, 6.0);
        assert!((half.into_scalar() + 0.35).abs() < 1e-6);
    }

    /// c = 0.2. Token 0: V 1.5, V_old 1.0, R 2.0 → clip(V) = 1.2; (1.5 − 2)² = 0.25,
    /// (1.2 − 2)² = 0.64: the clipped term wins (clipped). Token 1: V 0.9 within 1.0 ± 0.2, R
    /// 0.95 → both 0.0025. Token 2 masked (any values). Loss ½·(0.64 + 0.0025)/2 = 0.160625,
    /// clip fraction 1/2; Σ V = 2.4, Σ (V − R)² = 0.25 + 0.0025.
    #[test]
    fn clipped_value_loss_by_hand() {
        let dev = Default::default();
        let (loss, sums) = value_loss(
            t(&dev, [1.5, 0.9, 40.0]),
            t(&dev, [1.0, 1.0, 0.0]),
            t(&dev, [2.0, 0.95, -3.0]),
            t(&dev, [1.0, 1.0, 0.0]),
            0.2,
            2.0,
        );
        let loss: f32 = loss.into_scalar();
        let sums: Vec<f32> = sums.into_data().to_vec().unwrap();
        assert!((loss - 0.160625).abs() < 1e-6, "{loss}");
        assert!((sums[0] / 2.0 - 0.5).abs() < 1e-6, "{sums:?}");
        assert!((sums[1] - 2.4).abs() < 1e-6, "{sums:?}");
        assert!((sums[2] - 0.2525).abs() < 1e-6, "{sums:?}");
    }

    /// The gradient reaches V only through the larger term: on token 0 the clipped value is
    /// flat in V (clip is active), so ∂loss/∂V₀ = 0 even though V₀ is off; on token 1 it is
    /// ½·2·(V − R)/2 = (0.9 − 0.95)/2 = −0.025.
    #[test]
    fn gradient_flows_only_through_the_unclipped_region() {
        let dev = Default::default();
        let v = Tensor::<Autodiff<B>, 1>::from_floats([1.5, 0.9, 40.0], &dev)
            .reshape([1, 3])
            .require_grad();
        let lift = |x: [f32; 3]| Tensor::<Autodiff<B>, 1>::from_floats(x, &dev).reshape([1, 3]);
        let (loss, _) = value_loss(
            v.clone(),
            lift([1.0, 1.0, 0.0]),
            lift([2.0, 0.95, -3.0]),
            lift([1.0, 1.0, 0.0]),
            0.2,
            2.0,
        );
        let grads = loss.backward();
        let g: Vec<f32> = v.grad(&grads).unwrap().into_data().to_vec().unwrap();
        assert!(g[0].abs() < 1e-7 && g[2].abs() < 1e-7, "{g:?}");
        assert!((g[1] + 0.025).abs() < 1e-6, "{g:?}");
    }
}
