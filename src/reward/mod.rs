//! The math verifier: GRPO's reward and MGRPO's judge of corrections.
//!
//! A completion is graded in four steps, one file each: [`extract`] finds the final answer
//! (the last `\boxed{}`, `#### X`, "The final answer is X", "the answer is X"), [`normalize`]
//! cleans the LaTeX, [`answer`] parses its structure (tuple, set, interval, equation, matrix,
//! text, choice) over [`expr`] expressions, and [`compare`] decides equivalence with exact
//! big-rational arithmetic ([`real`]) under a [`Policy`]. Every size is capped, so a call takes
//! at most a few milliseconds on any input and never panics.

pub mod answer;
pub mod compare;
pub mod expr;
pub mod extract;
pub mod lexer;
pub mod math;
pub mod normalize;
pub mod policy;
pub mod real;
mod series;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use extract::{extract_answer, has_boxed, Extracted, Marker};
pub use math::MathReward;
pub use policy::{PercentPolicy, Policy};

use crate::data::Problem;

/// The verdict on one completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub correct: bool,
    /// The answer found in the completion (`None`: no answer).
    pub pred_answer: Option<String>,
    pub gold_answer: String,
    /// How the answer was found.
    pub marker: Option<Marker>,
}

/// Whether two extracted answers are equivalent.
pub fn answers_match(gold: &str, pred: &str, policy: &Policy) -> bool {
    let (g, p) = (normalize::normalize(gold), normalize::normalize(pred));
    if g.is_empty() || p.is_empty() {
        return false;
    }
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    if squash(&g) == squash(&p) && !(policy.require_reduced_fractions && p.contains("\\frac")) {
        return true;
    }
    match (answer::parse_answer(&g), answer::parse_answer(&p)) {
        (Some(ga), Some(pa)) => compare::same(&ga, &pa, policy),
        _ => false,
    }
}

/// The gold answer of a reference: its extracted final answer when it is a full solution
/// (`\boxed{}`, `#### N`), otherwise the text itself.
pub fn gold_answer(gold: &str) -> String {
    match extract::extract_answer(gold, false) {
        Some(e) if matches!(e.marker, Marker::Boxed | Marker::Hashes) => e.answer,
        _ => gold.trim().to_string(),
    }
}

/// Grade a full `completion` against a gold answer. `last_number` turns on the last-number
/// fallback (GSM8K-type problems).
pub fn verify(gold: &str, completion: &str, policy: &Policy, last_number: bool) -> Verdict {
    let gold_answer = gold_answer(gold);
    let extracted = extract::extract_answer(completion, last_number);
    let correct = extracted
        .as_ref()
        .is_some_and(|e| answers_match(&gold_answer, &e.answer, policy));
    Verdict {
        correct,
        pred_answer: extracted.as_ref().map(|e| e.answer.clone()),
        gold_answer,
        marker: extracted.map(|e| e.marker),
    }
}

/// The reward's settings (a run config's `[reward]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// Grader options.
    pub policy: Policy,
    /// Added to the reward when the completion puts an answer in `\boxed{}` (0 = off).
    pub format_weight: f32,
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

/// A reward: a pure function of a problem and a completion's text (no model, no tensors).
/// Adding one is a file that implements this trait and a line in [`RewardConfig::reward`].
pub trait Reward: Send + Sync {
    /// The reward of `text` as an answer to `problem`, with its parts.
    fn grade(&self, problem: &Problem, text: &str) -> RewardParts;
}

impl RewardConfig {
    /// The reward these settings describe. Every reward the trainer knows is listed here.
    pub fn reward(&self) -> Box<dyn Reward> {
        Box::new(MathReward {
            policy: self.policy.clone(),
            format_weight: self.format_weight,
        })
    }
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            format_weight: 0.0,
            turn2_graded_on: Turn2Grading::default(),
        }
    }
}

/// The format reward: 1 when the completion has a non-empty `\boxed{}` answer.
pub fn format_reward(completion: &str) -> f32 {
    if has_boxed(completion) {
        1.0
    } else {
        0.0
    }
}

/// A completion's reward and its parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewardParts {
    /// The verifier's verdict on the final answer.
    pub correct: bool,
    /// Whether the completion has a non-empty `\boxed{}` answer.
    pub formatted: bool,
    /// `correct + format_weight · formatted`
    pub total: f32,
}

/// The trainer's reward: 1 for a correct final answer, 0 otherwise, plus `format_weight` times
/// the format reward.
pub fn reward(problem: &Problem, completion: &str, config: &RewardConfig) -> f32 {
    reward_parts(problem, completion, config).total
}

/// [`reward`] with its parts (the trainer logs accuracy and format separately).
pub fn reward_parts(problem: &Problem, completion: &str, config: &RewardConfig) -> RewardParts {
    config.reward().grade(problem, completion)
}
