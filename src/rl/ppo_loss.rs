//! PPO's two losses (TRL's `PPOTrainer`), pure functions of `[batch, tokens]` tensors and the
//! completion mask, averaged over the unmasked tokens:
//! - policy: `masked mean of max(−A·r, −A·clip(r, 1 − c, 1 + c))`, `r = exp(log π − log π_old)`,
//!   `A` the whitened per-token GAE advantages (`rl::gae`), `c` = `cliprange`; with the clip
//!   fraction (`policy/clipfrac_avg`) and `½·mean((log π − log π_old)²)` (`policy/approxkl_avg`);
//! - value: `½ · masked mean of max((V − R)², (clip(V, V_old − c, V_old + c) − R)²)`, `V` the
//!   critic's predictions, `V_old` its values at rollout time, `R` the GAE returns, `c` =
//!   `cliprange_value`; with the fraction of tokens where the clipped term is the larger
//!   (`val/clipfrac_avg`).

use burn::prelude::*;

/// The policy loss (scalar), its clip fraction and the approximate KL to π_old (scalars).
pub fn policy_loss<B: Backend>(
    logps: Tensor<B, 2>,
    old_logps: Tensor<B, 2>,
    advantages: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cliprange: f32,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let log_ratio = logps - old_logps;
    let ratio = log_ratio.clone().exp();
    let unclipped = -(advantages.clone() * ratio.clone());
    let clipped = -(advantages * ratio.clamp(1.0 - cliprange, 1.0 + cliprange));
    let tokens = mask.clone().sum().clamp_min(1.0);
    let clip_frac =
        (clipped.clone().greater(unclipped.clone()).float() * mask.clone()).sum() / tokens.clone();
    let approx_kl = (log_ratio.powi_scalar(2) * mask.clone())
        .sum()
        .div(tokens.clone())
        .mul_scalar(0.5);
    let loss = (unclipped.max_pair(clipped) * mask).sum().div(tokens);
    (loss, clip_frac, approx_kl)
}

/// The value loss (scalar) and its clip fraction (scalar), over the tokens where `mask` is 1.
pub fn value_loss<B: Backend>(
    vpred: Tensor<B, 2>,
    old_values: Tensor<B, 2>,
    returns: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cliprange_value: f32,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let clipped = vpred
        .clone()
        .max_pair(old_values.clone().sub_scalar(cliprange_value))
        .min_pair(old_values.add_scalar(cliprange_value));
    let unclipped_loss = (vpred - returns.clone()).powi_scalar(2);
    let clipped_loss = (clipped - returns).powi_scalar(2);
    let tokens = mask.clone().sum().clamp_min(1.0);
    let clip_frac = (clipped_loss.clone().greater(unclipped_loss.clone()).float() * mask.clone())
        .sum()
        / tokens.clone();
    let worst = unclipped_loss.max_pair(clipped_loss);
    let loss = (worst * mask).sum().div(tokens).mul_scalar(0.5);
    (loss, clip_frac)
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
        let (loss, frac, kl) = policy_loss(
            logps,
            old,
            row([2.0, -1.0, 0.5, 100.0]),
            row([1.0, 1.0, 1.0, 0.0]),
            0.2,
        );
        let (loss, frac, kl): (f32, f32, f32) =
            (loss.into_scalar(), frac.into_scalar(), kl.into_scalar());
        assert!((loss + 0.7).abs() < 1e-6, "{loss}");
        assert!((frac - 2.0 / 3.0).abs() < 1e-6, "{frac}");
        assert!((kl - 0.1074758).abs() < 1e-6, "{kl}");
    }

    /// c = 0.2. Token 0: V 1.5, V_old 1.0, R 2.0 → clip(V) = 1.2; (1.5 − 2)² = 0.25,
    /// (1.2 − 2)² = 0.64: the clipped term wins (clipped). Token 1: V 0.9 within 1.0 ± 0.2, R
    /// 0.95 → both 0.0025. Token 2 masked (any values). Loss ½·(0.64 + 0.0025)/2 = 0.160625,
    /// clip fraction 1/2.
    #[test]
    fn clipped_value_loss_by_hand() {
        let dev = Default::default();
        let (loss, frac) = value_loss(
            t(&dev, [1.5, 0.9, 40.0]),
            t(&dev, [1.0, 1.0, 0.0]),
            t(&dev, [2.0, 0.95, -3.0]),
            t(&dev, [1.0, 1.0, 0.0]),
            0.2,
        );
        let loss: f32 = loss.into_scalar();
        let frac: f32 = frac.into_scalar();
        assert!((loss - 0.160625).abs() < 1e-6, "{loss}");
        assert!((frac - 0.5).abs() < 1e-6, "{frac}");
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
        );
        let grads = loss.backward();
        let g: Vec<f32> = v.grad(&grads).unwrap().into_data().to_vec().unwrap();
        assert!(g[0].abs() < 1e-7 && g[2].abs() < 1e-7, "{g:?}");
        assert!((g[1] + 0.025).abs() < 1e-6, "{g:?}");
    }
}
