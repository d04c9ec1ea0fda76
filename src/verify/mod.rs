//! The math verifier: GRPO's reward and MGRPO's judge of corrections, on text alone (no
//! model, no tensor, no dataset type: `data/` and `reward/` both use it).
//!
//! A completion is graded in four steps, one file each: `extract` finds the final answer
//! (the last `\boxed{}`, `#### X`, "The final answer is X", "the answer is X"), `normalize`
//! cleans the LaTeX, `answer` parses its structure (tuple, set, interval, equation, matrix,
//! text, choice) over `expr` expressions, and `compare` decides equivalence with exact
//! big-rational arithmetic (`real`) under a [`Policy`]. Every size is capped, so a call takes
//! at most a few milliseconds on any input and never panics.

pub(crate) mod answer;
mod boxes;
mod budget;
pub(crate) mod compare;
pub(crate) mod expr;
pub(crate) mod extract;
pub(crate) mod lexer;
mod matrix;
pub(crate) mod normalize;
pub(crate) mod policy;
pub(crate) mod real;
mod relation;
mod series;
mod spans;

use std::time::Duration;

use serde::Serialize;

/// Why no completion could ever match `gold`: longer than an extracted answer may be, or a
/// number with more digits than the lexer reads (`None`: within the verifier's caps).
pub fn gold_beyond_caps(gold: &str) -> Option<String> {
    let chars = gold.chars().count();
    if chars > extract::MAX_ANSWER_CHARS {
        return Some(format!(
            "{chars} characters, beyond the {} an answer may have",
            extract::MAX_ANSWER_CHARS
        ));
    }
    let longest = gold
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    (longest > lexer::MAX_DIGITS).then(|| {
        format!(
            "a number of {longest} digits, beyond the {} the verifier reads",
            lexer::MAX_DIGITS
        )
    })
}

pub use extract::{extract_answer, extract_answer_with, has_boxed, Extracted, Extraction, Marker};
pub use policy::{PercentPolicy, Policy};

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
