//! The math reward: the verifier's verdict on the final answer, plus an optional bonus for
//! putting it in `\boxed{}` (`reward.format_weight`).

use super::{format_reward, verify, Policy, Reward, RewardParts};
use crate::data::Problem;

/// 1 for a right final answer, 0 otherwise, plus `format_weight` when the completion has a
/// non-empty `\boxed{}` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MathReward {
    /// Grader options.
    pub policy: Policy,
    pub format_weight: f32,
}

impl Reward for MathReward {
    fn grade(&self, problem: &Problem, text: &str) -> RewardParts {
        let v = verify(
            &problem.gold_answer,
            text,
            &self.policy,
            problem.format.last_number_fallback(),
        );
        let formatted = format_reward(text) > 0.0;
        let bonus = if formatted { self.format_weight } else { 0.0 };
        RewardParts {
            correct: v.correct,
            formatted,
            total: if v.correct { 1.0 } else { 0.0 } + bonus,
        }
    }
}
