//! `accuracy`: the verifier's verdict on the final answer, 1 when right and 0 otherwise.

use super::{Reward, RewardInput};
use crate::error::Result;
use crate::verify::{verify, Policy};

/// 1 for a right final answer, 0 otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct MathReward {
    /// Grader options.
    pub policy: Policy,
}

impl Reward for MathReward {
    fn name(&self) -> &str {
        "accuracy"
    }

    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>> {
        Ok(rows
            .iter()
            .map(|r| {
                let p = r.problem;
                let v = verify(
                    &p.gold_answer,
                    r.completion,
                    &self.policy,
                    p.format.extraction(&self.policy),
                );
                if v.correct {
                    1.0
                } else {
                    0.0
                }
            })
            .collect())
    }
}
