//! GRPO (DeepSeekMath): G completions per question, advantages within each question's group,
//! the clipped objective of `rl::loss`. Its keys are TRL's `GRPOConfig`'s, at the top level
//! of the run config (they are shared by every method that trains with that objective).

use super::{Collected, Group, Shared, StepInput};
use crate::error::Result;
use crate::rl::policy::Policy;
use crate::rl::rollout::{Draw, Sampler};

/// G completions per question, graded, with group advantages (GRPO's rollout; PPO's too).
pub fn first_layer<S: Sampler>(
    shared: &Shared,
    policy: &mut Policy<'_, S>,
    input: StepInput<'_>,
) -> Result<Group> {
    let draw = Draw {
        n: shared.num_generations,
        max_new_tokens: shared.max_completion_length,
        seed: input.seed,
    };
    let rollout = policy.rollout(input.problems, input.prompts, None, draw)?;
    Ok(Group::new(
        rollout,
        shared.num_generations,
        shared.scale_rewards,
        shared.mask_truncated,
    ))
}

/// GRPO's collect stage: one group, trained with weight 1.
pub fn collect<S: Sampler>(
    shared: &Shared,
    policy: &mut Policy<'_, S>,
    input: StepInput<'_>,
) -> Result<Collected> {
    let main = first_layer(shared, policy, input)?;
    Ok(Collected::single(main, shared.max_completion_length))
}
