//! The math verifier: GRPO's reward and MGRPO's judge of corrections.
//!
//! A completion is graded in four steps, one file each: [`extract`] finds the final answer
//! (the last `\boxed{}`, `#### X`, "The final answer is X", "the answer is X"), [`normalize`]
//! cleans the LaTeX, [`answer`] parses its structure (tuple, set, interval, equation, matrix,
//! text, choice) over [`expr`] expressions, and [`compare`] decides equivalence with exact
//! big-rational arithmetic ([`real`]) under a [`Policy`]. Every size is capped, so a call takes
//! at most a few milliseconds on any input and never panics.
//!
//! The trainer's reward is a [`RewardSet`] (`set.rs`): named [`Reward`]s with weights —
//! `accuracy` (the verifier, `math.rs`), `format` and `soft_overlong_punishment`
//! (`builtin.rs`), and external programs (`command.rs`).

pub mod answer;
mod boxes;
mod budget;
pub mod builtin;
pub mod command;
pub mod compare;
pub mod expr;
pub mod extract;
pub mod lexer;
pub mod math;
mod matrix;
pub mod normalize;
pub mod policy;
pub mod real;
mod relation;
mod series;
pub mod set;
mod spans;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use extract::{extract_answer, extract_answer_with, has_boxed, Extracted, Extraction, Marker};
pub use math::MathReward;
pub use policy::{PercentPolicy, Policy};
pub use set::{CommandSpec, RewardSet, BUILTIN_REWARDS};

use crate::data::Problem;
use crate::error::Result;

/// The verdict on one completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub correct: bool,
    /// The answer found in the completion (`None`: no answer).
    pub pred_answer: Option<String>,
    pub gold_answer: String,
    /// How the answer was found.
    pub marker: Option<Marker>,
    /// Why a found answer was graded wrong without a full comparison (`time budget
    /// exceeded`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Whether two extracted answers are equivalent.
pub fn answers_match(gold: &str, pred: &str, policy: &Policy) -> bool {
    let (g, p) = (normalize::normalize(gold), normalize::normalize(pred));
    if normalized_match(&g, &p, policy) {
        return true;
    }
    // `(p,q)=(3,2)` for `(3,2)`, `|AB|=1` for `1`, `k = \frac13` for `\frac13`: when only one
    // side is a named value, the value after its last `=` is the answer
    if !policy.strip_assignment {
        return false;
    }
    match (assigned_value(&g), assigned_value(&p)) {
        (Some(gv), None) => normalized_match(gv, &p, policy),
        (None, Some(pv)) => normalized_match(&g, pv, policy),
        _ => false,
    }
}

/// The text after the last top-level `=` of `s` (outside braces and brackets, not part of
/// `<=`, `>=`, `!=`, `==`), when there is one and something on both sides.
fn assigned_value(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut at = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            b'=' if depth == 0 => {
                let before = i.checked_sub(1).map(|j| b[j]);
                let after = b.get(i + 1).copied();
                if !matches!(before, Some(b'<' | b'>' | b'!' | b'=')) && after != Some(b'=') {
                    at = Some(i);
                }
            }
            _ => {}
        }
    }
    let i = at?;
    let (lhs, rhs) = (s[..i].trim(), s[i + 1..].trim());
    // a name (`x`, `(p,q)`, `|AB|`, `f(x)`, `V_1:V_2`), not an equation to solve (`a + 3z = 0`
    // does not answer `0`)
    let mut depth = 0i32;
    let operator = lhs.bytes().any(|c| {
        match c {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            _ => {}
        }
        depth == 0 && matches!(c, b'+' | b'-')
    });
    let named = lhs.chars().any(char::is_alphabetic) && !operator;
    (named && !rhs.is_empty()).then_some(rhs)
}

fn normalized_match(g: &str, p: &str, policy: &Policy) -> bool {
    if g.is_empty() || p.is_empty() {
        return false;
    }
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    if squash(g) == squash(p) && !(policy.require_reduced_fractions && p.contains("\\frac")) {
        return true;
    }
    // words differ only in case (`\text{no}` for `\text{No}`); a single letter is a variable
    let word = |s: &str| {
        s.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && s.chars().all(|c| c.is_alphabetic() || c == ' ')
    };
    if word(g) && word(p) && squash(g).eq_ignore_ascii_case(&squash(p)) {
        return true;
    }
    match (answer::parse_answer(g), answer::parse_answer(p)) {
        (Some(ga), Some(pa)) => compare::same(&ga, &pa, policy),
        _ => false,
    }
}

/// The gold answer of a reference: its extracted final answer when it is a full solution
/// (`\boxed{}`, `#### N`, "Final Answer: The final answer is …"), otherwise the text itself.
pub fn gold_answer(gold: &str) -> String {
    match extract::extract_answer(gold, Extraction::Anchored) {
        Some(e)
            if matches!(
                e.marker,
                Marker::Boxed | Marker::Hashes | Marker::FinalAnswer
            ) =>
        {
            e.answer
        }
        _ => gold.trim().to_string(),
    }
}

/// A gold answer under `last_number` (GSM8K) read as the completion's number is: `1,22` with
/// a decimal comma is `1.22`, `7,425,000` is `7425000`.
fn gold_number(gold: String, decimal_comma: bool) -> String {
    let number = gold.bytes().any(|c| c.is_ascii_digit())
        && gold
            .trim_start_matches('-')
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b',' || c == b'.');
    if number {
        spans::written_number(&gold, decimal_comma)
    } else {
        gold
    }
}

/// Grade a full `completion` against a gold answer, finding its answer as `extraction` says
/// when it has no marker.
pub fn verify(gold: &str, completion: &str, policy: &Policy, extraction: Extraction) -> Verdict {
    let mut gold_answer = gold_answer(gold);
    if extraction == Extraction::LastNumber {
        gold_answer = gold_number(gold_answer, policy.decimal_comma);
    }
    let extracted = extract::extract_answer_with(completion, extraction, policy.decimal_comma);
    let budget = budget::Budget::start(Duration::from_millis(policy.time_budget_ms));
    let mut correct = extracted
        .as_ref()
        .is_some_and(|e| answers_match(&gold_answer, &e.answer, policy));
    let reason = budget.spent().then_some("time budget exceeded");
    correct &= reason.is_none();
    Verdict {
        correct,
        pred_answer: extracted.as_ref().map(|e| e.answer.clone()),
        gold_answer,
        marker: extracted.map(|e| e.marker),
        reason,
    }
}

/// The reward's settings (a run config's `[reward]` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// The rewards, by name (TRL's `reward_funcs`): built-ins (`accuracy`, `format`,
    /// `soft_overlong_punishment`) and the names of `commands`.
    pub funcs: Vec<String>,
    /// One weight per reward (TRL's `reward_weights`); unset = 1 each.
    pub weights: Option<Vec<f32>>,
    /// The weighted total reward at which a completion counts as correct. Unset: the
    /// `accuracy` reward's verdict (required when `funcs` has no `accuracy`).
    pub correct_threshold: Option<f32>,
    /// `soft_overlong_punishment`'s L_cache in tokens (TRL's `soft_punish_cache`).
    pub soft_punish_cache: Option<usize>,
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
    /// One score per row.
    fn score(&self, rows: &[RewardInput<'_>]) -> Result<Vec<f32>>;
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            funcs: vec!["accuracy".into()],
            weights: None,
            correct_threshold: None,
            soft_punish_cache: None,
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
    /// The weighted sum of the scores.
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
