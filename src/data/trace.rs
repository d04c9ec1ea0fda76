//! Self-correction traces for the warm-start corpus: an attempt (right, or with
//! one slip carried through), a guide phrase, then a **check** that either confirms the answer
//! or finds the slip and finishes the problem again. The check uses the easier procedure of
//! each family: column arithmetic with written carries for `sum`, substitution for `linear`.
//!
//! These are the latent self-correction patterns that MGRPO's second layer amplifies; without
//! them turn 2 is an independent resample and Δ(t1, t2) ≈ 0 by construction.

use rand::Rng;

use super::arith::{digits_le, solution_text, ArithProblem, Family, Op, Step};

/// A written attempt: the steps as the solver wrote them and its boxed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub steps: Vec<Step>,
    pub answer: i64,
}

impl Attempt {
    /// The problem's own (right) solution.
    pub fn right(problem: &ArithProblem) -> Self {
        Self {
            steps: problem.steps.clone(),
            answer: problem.answer,
        }
    }

    pub fn text(&self) -> String {
        solution_text(&self.steps, self.answer)
    }

    /// An attempt with one slip, the kind a small model makes (off by one, off by ten, a
    /// dropped carry or borrow), carried through the later steps.
    pub fn slipped(problem: &ArithProblem, rng: &mut impl Rng) -> Self {
        loop {
            if let Some(a) = Self::try_slip(problem, rng) {
                return a;
            }
        }
    }

    /// One draw of [`Self::slipped`]; `None` when the slip would take a total below zero.
    fn try_slip(problem: &ArithProblem, rng: &mut impl Rng) -> Option<Self> {
        let at = rng.random_range(0..problem.steps.len());
        let step = problem.steps[at];
        let delta = match rng.random_range(0..5) {
            0 => 1,
            1 => -1,
            2 => 10,
            3 => -10,
            // a dropped carry (addition) or borrow (subtraction)
            _ => match step.op {
                Op::Add => -10,
                Op::Sub => 10,
                Op::Div => 1,
            },
        };
        let mut steps = problem.steps[..at].to_vec();
        steps.push(Step {
            result: step.result + delta,
            ..step
        });
        for s in &problem.steps[at + 1..] {
            let lhs = steps.last().map_or(s.lhs, |p| p.result);
            steps.push(Step::new(lhs, s.op, s.rhs));
        }
        if steps.iter().any(|s| s.result < 0) {
            return None;
        }
        let mut answer = steps.last().map_or(problem.answer, |s| s.result);
        if answer == problem.answer {
            // a `linear` slip that the division's rounding absorbed: slip the quotient
            answer += if answer > 1 { -1 } else { 1 };
            if let Some(last) = steps.last_mut() {
                last.result = answer;
            }
        }
        Some(Self { steps, answer })
    }
}

/// What follows the guide phrase: a check of `attempt` against `problem`, ending in the
/// boxed answer it arrives at (the right one).
pub fn check_text(problem: &ArithProblem, attempt: &Attempt) -> String {
    match (problem.family, problem.equation) {
        (Family::Linear, Some((a, b, c))) => check_linear(problem, attempt, a, b, c),
        _ => check_sum(problem, attempt),
    }
}

/// Redo every step in columns from the running value; mark each step of the attempt right or
/// wrong until the first wrong one, then just finish the problem.
fn check_sum(problem: &ArithProblem, attempt: &Attempt) -> String {
    let mut out = String::from("\nCheck:");
    let mut on_track = true;
    let mut value = problem.steps.first().map_or(problem.answer, |s| s.lhs);
    for (i, s) in problem.steps.iter().enumerate() {
        let step = Step::new(value, s.op, s.rhs);
        out.push('\n');
        out.push_str(&columns(&step));
        if on_track {
            let written = attempt.steps.get(i);
            let right = written.is_some_and(|w| w.lhs == step.lhs && w.result == step.result);
            out.push_str(if right { " right." } else { " wrong." });
            on_track = right;
        }
        value = step.result;
    }
    out.push_str(&format!("\n\\boxed{{{value}}}"));
    out
}

/// Substitute the attempt's answer; if it fails, solve again with the subtraction in columns.
fn check_linear(problem: &ArithProblem, attempt: &Attempt, a: i64, b: i64, c: i64) -> String {
    let x = attempt.answer;
    let (sign, mag) = if b < 0 { ('-', -b) } else { ('+', b) };
    let product = a * x;
    let value = product + b;
    let right = value == c;
    let mut out = format!(
        "\nCheck: {a} * {x} = {product}, {product} {sign} {mag} = {value}. {}",
        if right { "right." } else { "wrong." }
    );
    if !right {
        for s in &problem.steps {
            out.push('\n');
            match s.op {
                Op::Div => out.push_str(&s.line()),
                _ => out.push_str(&columns(s)),
            }
        }
    }
    out.push_str(&format!("\n\\boxed{{{}}}", problem.answer));
    out
}

/// A step done in columns, carries and borrows written out:
/// `47 + 38: 7 + 8 = 15, 4 + 3 + 1 = 8, so 85.` and `85 - 19: 15 - 9 = 6, 8 - 1 - 1 = 6, so 66.`
pub fn columns(step: &Step) -> String {
    let (a, b) = (digits_le(step.lhs), digits_le(step.rhs));
    let n = a.len().max(b.len());
    let mut parts = Vec::with_capacity(n);
    let mut carry = 0;
    for i in 0..n {
        let da = a.get(i).copied().unwrap_or(0);
        let db = b.get(i).copied().unwrap_or(0);
        match step.op {
            Op::Add => {
                let s = da + db + carry;
                parts.push(if carry > 0 {
                    format!("{da} + {db} + 1 = {s}")
                } else {
                    format!("{da} + {db} = {s}")
                });
                carry = s / 10;
            }
            _ => {
                let borrow = i64::from(da - carry < db);
                let top = da + 10 * borrow;
                let d = top - carry - db;
                parts.push(if carry > 0 {
                    format!("{top} - 1 - {db} = {d}")
                } else {
                    format!("{top} - {db} = {d}")
                });
                carry = borrow;
            }
        }
    }
    format!(
        "{} {} {}: {}, so {}.",
        step.lhs,
        step.op.symbol(),
        step.rhs,
        parts.join(", "),
        step.result
    )
}

#[cfg(test)]
mod tests {
    use super::super::arith::{ArithConfig, ArithTask};
    use super::*;
    use crate::verify::{verify, Extraction, Policy};

    #[test]
    fn columns_write_carries_and_borrows() {
        assert_eq!(
            columns(&Step::new(47, Op::Add, 38)),
            "47 + 38: 7 + 8 = 15, 4 + 3 + 1 = 8, so 85."
        );
        assert_eq!(
            columns(&Step::new(85, Op::Sub, 19)),
            "85 - 19: 15 - 9 = 6, 8 - 1 - 1 = 6, so 66."
        );
        assert_eq!(
            columns(&Step::new(95, Op::Add, 38)),
            "95 + 38: 5 + 8 = 13, 9 + 3 + 1 = 13, so 133."
        );
        assert_eq!(
            columns(&Step::new(105, Op::Sub, 98)),
            "105 - 98: 15 - 8 = 7, 10 - 1 - 9 = 0, 1 - 1 - 0 = 0, so 7."
        );
        assert_eq!(
            columns(&Step::new(61, Op::Sub, 12)),
            "61 - 12: 11 - 2 = 9, 6 - 1 - 1 = 4, so 49."
        );
    }

    /// The digits written in the columns are the result's digits (plus the final carry).
    #[test]
    fn columns_agree_with_the_result() {
        for a in 0..300 {
            for b in [0, 7, 19, 58, 99, 123] {
                for op in [Op::Add, Op::Sub] {
                    if op == Op::Sub && b > a {
                        continue;
                    }
                    let s = Step::new(a, op, b);
                    let text = columns(&s);
                    let digits: Vec<i64> = text
                        .split(", ")
                        .filter_map(|p| p.split(" = ").nth(1))
                        .map(|v| v.trim_end_matches(|c: char| !c.is_ascii_digit()))
                        .filter_map(|v| v.parse::<i64>().ok())
                        .collect();
                    let mut value = 0;
                    let mut place = 1;
                    let last = digits.len() - 1;
                    for (i, d) in digits.iter().enumerate() {
                        let d = if i == last && op == Op::Add {
                            *d
                        } else {
                            d % 10
                        };
                        value += d * place;
                        place *= 10;
                    }
                    assert_eq!(value, s.result, "{text}");
                }
            }
        }
    }

    #[test]
    fn a_check_confirms_a_right_attempt_and_fixes_a_slip() {
        let mut task = ArithTask::new(ArithConfig::default(), 11).unwrap();
        let mut wrong_seen = 0;
        for _ in 0..300 {
            let p = task.sample();
            let gold = p.answer.to_string();
            let right = Attempt::right(&p);
            let check = check_text(&p, &right);
            assert!(!check.contains("wrong"), "{check}");
            assert!(verify(&gold, &check, &Policy::default(), Extraction::Anchored).correct);

            let slipped = Attempt::slipped(&p, task.rng());
            assert_ne!(
                slipped.answer,
                p.answer,
                "{}\n{}",
                p.question,
                slipped.text()
            );
            assert!(
                !verify(
                    &gold,
                    &slipped.text(),
                    &Policy::default(),
                    Extraction::Anchored
                )
                .correct
            );
            let check = check_text(&p, &slipped);
            assert_eq!(check.matches("wrong.").count(), 1, "{check}");
            assert!(
                verify(&gold, &check, &Policy::default(), Extraction::Anchored).correct,
                "{check}"
            );
            wrong_seen += 1;
        }
        assert_eq!(wrong_seen, 300);
    }

    #[test]
    fn a_linear_check_substitutes() {
        let p = ArithProblem {
            family: Family::Linear,
            question: "Find x if 7 * x + 12 = 61.".into(),
            steps: vec![Step::new(61, Op::Sub, 12), Step::new(49, Op::Div, 7)],
            answer: 7,
            equation: Some((7, 12, 61)),
        };
        assert_eq!(
            check_text(&p, &Attempt::right(&p)),
            "\nCheck: 7 * 7 = 49, 49 + 12 = 61. right.\n\\boxed{7}"
        );
        let wrong = Attempt {
            steps: vec![
                Step::new(61, Op::Sub, 12),
                Step {
                    result: 8,
                    ..p.steps[1]
                },
            ],
            answer: 8,
        };
        assert_eq!(
            check_text(&p, &wrong),
            "\nCheck: 7 * 8 = 56, 56 + 12 = 68. wrong.\n61 - 12: 11 - 2 = 9, 6 - 1 - 1 = 4, so 49.\n49 / 7 = 7.\n\\boxed{7}"
        );
    }
}
