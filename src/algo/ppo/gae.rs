//! PPO's advantages (the one-round PPO baseline, TRL's `PPOTrainer`), on the host: per-token
//! rewards with a KL penalty against the reference, generalised advantage estimation over each
//! completion, and whitening over the batch. Pure functions of `[n, t]` row-major arrays and a
//! completion mask; the losses are `loss.rs`.
//!
//! - Rewards: `r_t = −kl_coef · KL_t`, plus the verifier's score on the completion's last token,
//!   with `KL_t = log π − log π_ref` (`k1`, TRL's default) or the non-negative
//!   `exp(ref − log π) − (ref − log π) − 1` (`k3`).
//! - GAE: `δ_t = r_t + γ·V_{t+1} − V_t`, `A_t = δ_t + γ·λ·A_{t+1}`, `V` and `A` zero past the
//!   last token; returns `R_t = A_t + V_t` (the value targets). A masked token is skipped, as if
//!   absent: TRL's trailing padding is the case that arises.
//! - Whitening: `(A − mean) / sqrt(var + 1e-8)` over the batch's unmasked tokens, with the
//!   unbiased variance (TRL's `masked_whiten`); masked tokens get 0.

use serde::{Deserialize, Serialize};

/// The per-token KL estimator of the reward penalty (`kl_estimator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// `log π − log π_ref` (unbiased, can be negative per token).
    #[default]
    K1,
    /// `exp(ref − log π) − (ref − log π) − 1` (non-negative, lower variance).
    K3,
}

impl KlEstimator {
    /// The estimate for one token.
    pub fn kl(self, logp: f32, ref_logp: f32) -> f32 {
        match self {
            Self::K1 => logp - ref_logp,
            Self::K3 => {
                let log_ratio = ref_logp - logp;
                log_ratio.exp() - log_ratio - 1.0
            }
        }
    }
}

/// The unmasked positions of row `i` of an `[n, t]` mask, in order.
fn row_positions(mask: &[f32], t: usize, i: usize) -> impl DoubleEndedIterator<Item = usize> + '_ {
    (i * t..(i + 1) * t).filter(move |&k| mask[k] > 0.0)
}

/// Per-token rewards `[n, t]`: the KL penalty on every unmasked token, plus `scores[i]` on row
/// `i`'s last unmasked token; 0 where masked.
pub fn token_rewards(
    logps: &[f32],
    ref_logps: &[f32],
    scores: &[f32],
    mask: &[f32],
    kl_coef: f32,
    estimator: KlEstimator,
) -> Vec<f32> {
    let n = scores.len();
    let t = mask.len() / n.max(1);
    let mut r = vec![0.0f32; mask.len()];
    for (i, &score) in scores.iter().enumerate() {
        let mut last = None;
        for k in row_positions(mask, t, i) {
            r[k] = -kl_coef * estimator.kl(logps[k], ref_logps[k]);
            last = Some(k);
        }
        if let Some(k) = last {
            r[k] += score;
        }
    }
    r
}

/// Advantages and returns `[n, t]` by GAE over each row's unmasked tokens; 0 where masked.
pub fn gae(
    rewards: &[f32],
    values: &[f32],
    mask: &[f32],
    t: usize,
    gamma: f32,
    lam: f32,
) -> (Vec<f32>, Vec<f32>) {
    let n = mask.len() / t.max(1);
    let (mut adv, mut ret) = (vec![0.0f32; mask.len()], vec![0.0f32; mask.len()]);
    for i in 0..n {
        let (mut next_value, mut next_adv) = (0.0f32, 0.0f32);
        for k in row_positions(mask, t, i).rev() {
            let delta = rewards[k] + gamma * next_value - values[k];
            next_adv = delta + gamma * lam * next_adv;
            adv[k] = next_adv;
            ret[k] = next_adv + values[k];
            next_value = values[k];
        }
    }
    (adv, ret)
}

/// `x` whitened over its unmasked entries (unbiased variance, ε = 1e-8); masked entries 0.
/// With fewer than two unmasked entries there is no variance: they are only centred. With
/// `shift_mean = false` the mean is added back (only the scale changes: TRL's
/// `whiten_rewards`).
pub fn whiten(x: &[f32], mask: &[f32], shift_mean: bool) -> Vec<f32> {
    let live: Vec<f64> = x
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m > 0.0)
        .map(|(&v, _)| v as f64)
        .collect();
    let count = live.len() as f64;
    if live.is_empty() {
        return vec![0.0; x.len()];
    }
    let mean = live.iter().sum::<f64>() / count;
    let scale = if live.len() > 1 {
        let var = live.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
        1.0 / (var + 1e-8).sqrt()
    } else {
        1.0
    };
    x.iter()
        .zip(mask)
        .map(|(&v, &m)| {
            if m > 0.0 {
                let w = (v as f64 - mean) * scale;
                (if shift_mean { w } else { w + mean }) as f32
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    /// Two completions, γ = 0.9, λ = 0.8; the second is one token shorter (its last slot is
    /// padding, with a value that must not leak). By hand, γλ = 0.72:
    /// row 0 (r = 0.1, −0.2, 1.0; V = 0.5, 0.4, 0.3):
    ///   δ₂ = 1.0 − 0.3 = 0.7                       A₂ = 0.7
    ///   δ₁ = −0.2 + 0.9·0.3 − 0.4 = −0.33          A₁ = −0.33 + 0.72·0.7 = 0.174
    ///   δ₀ = 0.1 + 0.9·0.4 − 0.5 = −0.04           A₀ = −0.04 + 0.72·0.174 = 0.08528
    /// row 1 (r = 0, 2; V = 1.0, 0.5):
    ///   δ₁ = 2 − 0.5 = 1.5                         A₁ = 1.5
    ///   δ₀ = 0.9·0.5 − 1.0 = −0.55                 A₀ = −0.55 + 0.72·1.5 = 0.53
    /// returns R = A + V.
    #[test]
    fn gae_and_returns_by_hand() {
        let rewards = [0.1, -0.2, 1.0, 0.0, 2.0, 7.0];
        let values = [0.5, 0.4, 0.3, 1.0, 0.5, 9.9];
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let (adv, ret) = gae(&rewards, &values, &mask, 3, 0.9, 0.8);
        close(&adv, &[0.08528, 0.174, 0.7, 0.53, 1.5, 0.0]);
        close(&ret, &[0.58528, 0.574, 1.0, 1.53, 2.0, 0.0]);
        // a masked token inside a row is skipped: row 1 as [V 1.0, (masked), V 0.5]
        let (adv, _) = gae(
            &[0.0, 5.0, 2.0],
            &[1.0, 3.0, 0.5],
            &[1.0, 0.0, 1.0],
            3,
            0.9,
            0.8,
        );
        close(&adv, &[0.53, 0.0, 1.5]);
        // γ = λ = 1: A_t = Σ future rewards − V_t
        let (adv, _) = gae(&[1.0, 2.0], &[0.5, 0.25], &[1.0, 1.0], 2, 1.0, 1.0);
        close(&adv, &[2.5, 1.75]);
    }

    /// x = 1, 2, 3, 6 (and a masked 100): mean 3; squared deviations 4, 1, 0, 9 sum to 14;
    /// unbiased variance 14/3; std 2.1602469; whitened −0.9258201, −0.4629100, 0, 1.3887301.
    #[test]
    fn whitening_by_hand() {
        let mask = [1.0, 1.0, 0.0, 1.0, 1.0];
        let w = whiten(&[1.0, 2.0, 100.0, 3.0, 6.0], &mask, true);
        close(&w, &[-0.9258201, -0.46291, 0.0, 0.0, 1.38873]);
        close(&whiten(&[4.0, 8.0], &[0.0, 1.0], true), &[0.0, 0.0]);
        close(&whiten(&[4.0], &[0.0], true), &[0.0]);
        // the mean (3) added back: only the scale changes
        let kept = whiten(&[1.0, 2.0, 100.0, 3.0, 6.0], &mask, false);
        close(&kept, &[2.07418, 2.53709, 0.0, 3.0, 4.38873]);
    }

    /// kl_coef 0.5; row 0: log π − ref = 0.2, −0.4 (k1) → rewards −0.1, 0.2 + score 1;
    /// row 1 masked after its first token → −0.5·0 + score 0.5 on that token.
    /// k3 of ref − log π = −0.2: e^−0.2 + 0.2 − 1 = 0.0187308.
    #[test]
    fn kl_penalised_rewards_by_hand() {
        let logps = [-1.0, -2.0, -0.5, -3.0];
        let refs = [-1.2, -1.6, -0.5, -1.0];
        let mask = [1.0, 1.0, 1.0, 0.0];
        let r = token_rewards(&logps, &refs, &[1.0, 0.5], &mask, 0.5, KlEstimator::K1);
        close(&r, &[-0.1, 1.2, 0.5, 0.0]);
        assert!((KlEstimator::K3.kl(-1.0, -1.2) - 0.0187308).abs() < 1e-6);
        assert_eq!(KlEstimator::K3.kl(-0.7, -0.7), 0.0);
        let r = token_rewards(&logps, &refs, &[0.0, 0.0], &mask, 1.0, KlEstimator::K3);
        assert!(
            r.iter().all(|&x| x <= 0.0),
            "k3 penalties are never rewards: {r:?}"
        );
    }
}
