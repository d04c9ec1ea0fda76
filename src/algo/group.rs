//! A group trained with GRPO's objective: a rollout, its advantages, and the experience built
//! from them.

use crate::rl::advantage::{group_advantages, Advantages, ScaleRewards};
use crate::rl::experience::Experience;
use crate::rl::rollout::Rollout;

/// A rollout, its advantages, and the experience built from them.
pub struct Group {
    pub rollout: Rollout,
    pub adv: Advantages,
    pub experience: Experience,
}

impl Group {
    /// Group advantages over each question's `g` completions (GRPO's).
    pub fn new(rollout: Rollout, g: usize, scale: ScaleRewards, mask_truncated: bool) -> Self {
        let adv = group_advantages(&rollout.totals(), g, scale);
        Self::with_advantages(rollout, adv, mask_truncated)
    }

    /// A group with advantages computed elsewhere.
    pub fn with_advantages(rollout: Rollout, adv: Advantages, mask_truncated: bool) -> Self {
        let experience = Experience::from_rollout(&rollout, &adv.values, mask_truncated);
        Self {
            rollout,
            adv,
            experience,
        }
    }
}
