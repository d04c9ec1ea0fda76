//! Group-relative advantages: each completion's reward compared with the other
//! completions of its prompt.
//!
//! `A_i = (R_i − mean(R_group)) / (std + 1e-4)`, with `std` chosen by `scale_rewards`:
//! - `group` (default): the group's own standard deviation;
//! - `batch`: one standard deviation over every reward of the step (TRL's `"batch"`);
//! - `none`: no division (Dr. GRPO).
//!
//! Standard deviations are unbiased (Bessel's correction), as `torch.std` in TRL. A group whose
//! rewards are all equal carries no signal: its advantages are exactly 0 (never NaN).
//!
//! The statistics carry TRL's names and meanings (`GRPOTrainer._generate_and_score_completions`,
//! pinned by `tests/trl_parity.rs`): `reward_std` is the standard deviation over every reward of
//! the step, and `frac_reward_zero_std` the share of completions whose scaling standard
//! deviation is zero — their group's under `group` and `none`, the step's under `batch` (so
//! there it is 0 or 1).

use serde::{Deserialize, Serialize};

/// How advantages are scaled (`scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    #[default]
    Group,
    Batch,
    None,
}

/// Added to the standard deviation before dividing (TRL's constant).
pub const STD_EPS: f32 = 1e-4;

/// Advantages and the reward statistics TRL logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One per completion, in the order of the rewards.
    pub values: Vec<f32>,
    /// Mean reward over every scored completion (`reward`; NaN when none was scored).
    pub reward_mean: f32,
    /// Standard deviation over every scored reward (`reward_std`; NaN for fewer than two).
    pub reward_std: f32,
    /// Share of completions whose scaling standard deviation is zero (`frac_reward_zero_std`):
    /// their group's under `group`/`none`, the whole step's under `batch`.
    pub frac_zero_std: f32,
    /// Number of groups whose rewards are all equal.
    pub zero_std_groups: usize,
}

/// Mean of the scored (non-NaN) values; NaN when there are none (TRL's `nanmean`).
pub(crate) fn nanmean(x: &[f32]) -> f32 {
    let scored: Vec<f32> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if scored.is_empty() {
        return f32::NAN;
    }
    scored.iter().sum::<f32>() / scored.len() as f32
}

/// Unbiased standard deviation of the scored values (TRL's `nanstd`): NaN for fewer than two.
pub(crate) fn nanstd(x: &[f32]) -> f32 {
    let scored: Vec<f32> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if scored.len() < 2 {
        return f32::NAN;
    }
    let m = nanmean(&scored);
    (scored.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / (scored.len() - 1) as f32).sqrt()
}

/// Advantages of `rewards`, laid out as consecutive groups of `group_size` (all completions of
/// prompt 0, then prompt 1, ...).
///
/// A NaN reward is a completion no reward function scored (TRL's all-`None` row): it is left
/// out of its group's mean and standard deviation and of the step's, and its advantage is 0; so
/// is every advantage of a group with fewer than two scored completions under `group` scaling
/// (TRL's `nanstd` is NaN there, and `nan_to_num` makes the advantages 0).
///
/// # Panics
/// When `group_size` is 0 or does not divide `rewards.len()` (a caller bug: the trainer builds
/// the groups).
pub fn group_advantages(rewards: &[f32], group_size: usize, scale: ScaleRewards) -> Advantages {
    assert!(
        group_size > 0 && rewards.len().is_multiple_of(group_size),
        "{} rewards do not split into groups of {group_size}",
        rewards.len()
    );
    // with one value there is no spread: 0, as TRL's guards for a single completion
    let batch_std = if rewards.len() > 1 {
        nanstd(rewards)
    } else {
        0.0
    };
    let mut values = Vec::with_capacity(rewards.len());
    let mut stds = Vec::new();
    let mut zero_std_groups = 0;
    for group in rewards.chunks(group_size) {
        let s = if group_size > 1 { nanstd(group) } else { 0.0 };
        let m = nanmean(group);
        stds.push(s);
        let mut scored = group.iter().filter(|r| !r.is_nan());
        let first = scored.next();
        if let Some(&first) = first {
            if scored.all(|&r| r == first) {
                zero_std_groups += 1;
                values.extend(std::iter::repeat_n(0.0, group.len()));
                continue;
            }
        }
        let denom = match scale {
            ScaleRewards::Group => s + STD_EPS,
            ScaleRewards::Batch => batch_std + STD_EPS,
            ScaleRewards::None => 1.0,
        };
        // NaN (an unscored completion, or no spread to scale by) → 0, TRL's `nan_to_num`
        values.extend(group.iter().map(|r| {
            let a = (r - m) / denom;
            if a.is_nan() {
                0.0
            } else {
                a
            }
        }));
    }
    let groups = stds.len().max(1);
    // torch.isclose(std, 0): |std| ≤ 1e-8 (a NaN std is not zero)
    let frac_zero_std = match scale {
        ScaleRewards::Batch => f32::from(u8::from(batch_std <= 1e-8)),
        ScaleRewards::Group | ScaleRewards::None => {
            stds.iter().filter(|&&s| s <= 1e-8).count() as f32 / groups as f32
        }
    };
    Advantages {
        values,
        reward_mean: nanmean(rewards),
        reward_std: batch_std,
        frac_zero_std,
        zero_std_groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_scaling_by_hand() {
        // group [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3) = 0.57735
        let a = group_advantages(&[1.0, 0.0, 0.0, 1.0], 4, ScaleRewards::Group);
        let d = 0.5 / (0.577_350_26 + 1e-4);
        for (got, want) in a.values.iter().zip([d, -d, -d, d]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert_eq!(a.reward_mean, 0.5);
        assert!((a.reward_std - 0.577_350_26).abs() < 1e-6);
        assert_eq!(a.frac_zero_std, 0.0);
    }

    #[test]
    fn equal_groups_give_exact_zeros_and_are_counted() {
        let r = [0.1, 0.1, 0.1, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0];
        for scale in [ScaleRewards::Group, ScaleRewards::Batch, ScaleRewards::None] {
            let a = group_advantages(&r, 3, scale);
            assert_eq!(&a.values[0..3], &[0.0; 3]);
            assert_eq!(&a.values[6..9], &[0.0; 3]);
            assert!(a.values.iter().all(|v| v.is_finite()));
            assert_eq!(a.zero_std_groups, 2);
            // TRL counts against the std that scales: the groups', or the step's (not zero)
            let frac = match scale {
                ScaleRewards::Batch => 0.0,
                _ => 2.0 / 3.0,
            };
            assert!((a.frac_zero_std - frac).abs() < 1e-7, "{scale:?}");
        }
        // the hand case: [1, 1, 0, 0] in groups of 2 has flat groups but a step std of
        // sqrt(1/3) — TRL's reward_std is 0.577, not the groups' mean std 0
        let a = group_advantages(&[1.0, 1.0, 0.0, 0.0], 2, ScaleRewards::Group);
        assert!((a.reward_std - 0.577_350_26).abs() < 1e-6);
        assert_eq!(a.frac_zero_std, 1.0);
        // every group flat: no NaN anywhere, zero everywhere
        let a = group_advantages(&[1.0; 8], 4, ScaleRewards::Group);
        assert_eq!(a.values, vec![0.0; 8]);
        assert_eq!(a.frac_zero_std, 1.0);
    }

    #[test]
    fn batch_and_none_scaling() {
        let r = [1.0, 0.0, 0.0, 0.0];
        // none: r − group mean
        let a = group_advantages(&r, 2, ScaleRewards::None);
        assert_eq!(a.values, vec![0.5, -0.5, 0.0, 0.0]);
        // batch: divided by the std of all four rewards, sqrt(0.25 / 1 · 4/3 · ...) by hand:
        // mean 0.25, Σ(r − m)² = 0.5625 + 3·0.0625 = 0.75, /3 = 0.25, std = 0.5
        let a = group_advantages(&r, 2, ScaleRewards::Batch);
        assert!((a.values[0] - 0.5 / 0.5001).abs() < 1e-6);
        assert!((a.values[1] + 0.5 / 0.5001).abs() < 1e-6);
    }
}
