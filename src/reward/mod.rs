//! The rewards: what a completion is worth to the trainer. The verifier they grade answers
//! with is `verify/` (pure text).
//!
//! The trainer's reward is a [`RewardSet`] (`set.rs`): named [`Reward`]s with weights —
//! `accuracy` (the verifier, `math.rs`), `format`, `soft_overlong_punishment` and `coin`
//! (`builtin.rs`), and external programs (`command.rs`).

pub(crate) mod builtin;
pub(crate) mod command;
pub(crate) mod math;
pub(crate) mod program;
pub(crate) mod set;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use builtin::soft_overlong;
pub use command::CommandSpec;
pub use math::MathReward;
pub use set::{weighted_total, RewardSet, BUILTIN_REWARDS};

use crate::data::Problem;
use crate::error::Result;
use crate::verify::Policy;

/// The reward's settings (a run config's `[reward]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// The rewards, by name (TRL's `reward_funcs`): built-ins (`accuracy`, `format`,
    /// `soft_overlong_punishment`, `coin`) and the names of `commands`.
    pub funcs: Vec<String>,
    /// One weight per reward (TRL's `reward_weights`); unset = 1 each.
    pub weights: Option<Vec<f32>>,
    /// The weighted total reward at which a completion counts as correct. Unset: the
    /// `accuracy` reward's verdict (required when `funcs` has no `accuracy`).
    pub correct_threshold: Option<f32>,
    /// `soft_overlong_punishment`'s L_cache in tokens (TRL's `soft_punish_cache`).
    pub soft_punish_cache: Option<usize>,
    /// `coin`'s probability of a 1 (set it to the true reward's mean for a random-reward
    /// control).
    pub coin_p: Option<f64>,
    /// Mixed into every `coin` flip: another salt, another sequence of coins.
    pub coin_salt: u64,
    /// External rewards: `[reward.commands.NAME]` with `command` and `timeout_s`.
    pub commands: BTreeMap<String, CommandSpec>,
    /// Grader options of `accuracy`.
    pub policy: Policy,
    /// What a second-turn text (an MGRPO correction, an iGRPO refinement, the evaluation's
    /// turn 2, a STaR revision) is graded on.
    pub turn2_graded_on: Turn2Grading,
}

/// What a second-turn text is graded on (`reward.turn2_graded_on`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Turn2Grading {
    /// The continuation alone: it must state its own final answer, and one without an answer
    /// is wrong. A model cannot keep a right first answer by saying nothing (the default).
    #[default]
    Continuation,
    /// The whole assistant turn (first answer + guide + continuation): the last answer given
    /// counts, so a continuation that confirms without restating keeps the first answer.
    Turn,
}

impl Turn2Grading {
    /// The text graded for a second-turn `continuation` written after `turn_so_far` (the first
    /// answer and the guide phrase).
    pub fn text<'a>(self, turn_so_far: &str, continuation: &'a str) -> Cow<'a, str> {
        match self {
            Turn2Grading::Continuation => Cow::Borrowed(continuation),
            Turn2Grading::Turn => Cow::Owned(format!("{turn_so_far}{continuation}")),
        }
    }
}

/// One completion as a reward sees it.
#[derive(Clone, Copy, Debug)]
pub struct RewardInput<'a> {
    pub problem: &'a Problem,
    /// The prompt text the completion follows.
    pub prompt: &'a str,
    /// The text graded (for a second turn, what `turn2_graded_on` says).
    pub completion: &'a str,
    /// The generated completion's token ids (TRL's `completion_ids`).
    pub completion_ids: &'a [u32],
    /// The completion's length in tokens.
    pub completion_tokens: usize,
    /// The token budget it was sampled with (its layer's `max_completion_length`).
    pub max_completion_tokens: usize,
}

impl<'a> RewardInput<'a> {
    /// A completion known only by its text (no prompt, no token counts).
    pub fn text(problem: &'a Problem, completion: &'a str) -> Self {
        Self {
            problem,
            prompt: "",
            completion,
            completion_ids: &[],
            completion_tokens: 0,
            max_completion_tokens: 0,
        }
    }
}

/// A reward: a function of completions' texts and their problems (no model, no tensors),
/// scoring a batch at once (an external program runs once per batch). Adding a built-in is a
/// file that implements this trait and a line in [`RewardConfig::reward_set`].
pub trait Reward: Send + Sync {
    /// The name in `funcs` and in the `rewards/<name>/…` metrics.
    fn name(&self) -> &str;
    /// One score per row; NaN (TRL's None: no opinion on the row) only when
    /// [`Self::may_abstain`].
    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>>;
    /// Whether this reward may leave rows unscored (an external command may; built-ins never).
    fn may_abstain(&self) -> bool {
        false
    }
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            funcs: vec!["accuracy".into()],
            weights: None,
            correct_threshold: None,
            soft_punish_cache: None,
            coin_p: None,
            coin_salt: 0,
            commands: BTreeMap::new(),
            policy: Policy::default(),
            turn2_graded_on: Turn2Grading::default(),
        }
    }
}

/// A completion's reward and its parts.
#[derive(Clone, Debug, PartialEq)]
pub struct RewardParts {
    /// Whether it counts as correct: the `accuracy` verdict, or the total at or above
    /// `reward.correct_threshold`.
    pub correct: bool,
    /// Whether the completion has a non-empty `\boxed{}` answer.
    pub formatted: bool,
    /// The weighted sum of the scores that were given (TRL's `nansum`); NaN when no reward
    /// scored the row (it then gets no advantage and is left out of the reward statistics).
    pub total: f32,
    /// Each reward's score, in `funcs` order.
    pub scores: Vec<f32>,
}

/// The total reward of one completion known only by its text, under `config`.
pub fn reward(problem: &Problem, completion: &str, config: &RewardConfig) -> Result<f32> {
    Ok(reward_parts(problem, completion, config)?.total)
}

/// [`reward`] with its parts.
pub fn reward_parts(
    problem: &Problem,
    completion: &str,
    config: &RewardConfig,
) -> Result<RewardParts> {
    let mut parts = config
        .reward_set()?
        .grade(&[RewardInput::text(problem, completion)])?;
    Ok(parts.remove(0))
}
