//! The laptop task: procedurally generated arithmetic word problems with integer answers, on
//! which a model of a few million parameters can learn to solve *and* to check.
//!
//! Two families, both chosen so that **checking is easier than solving**:
//! - `sum`: a running total changed by a few additions and subtractions ("Mia has 47 coins. She
//!   gets 38 more. Then she spends 19. How many coins does she have now?"). A solution writes
//!   each step in one go (`47 + 38 = 85.`); a check redoes it column by column with the carries
//!   written out (`7 + 8 = 15, 4 + 3 + 1 = 8, so 85.`), which a small model gets right far more
//!   often.
//! - `linear`: find x with `a * x + b = c`. Solving needs a subtraction and a division; checking
//!   a candidate is one times-table product and one addition.
//!
//! Every problem is drawn from a seeded RNG, so a `(config, seed)` pair always yields the same
//! set. The difficulty knobs are the number of steps, the operand digits and the share of steps
//! with a carry or a borrow. [`super::trace`] writes the self-correction traces.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::KeyError;

/// The knobs of the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArithConfig {
    /// Fewest and most steps of a `sum` problem.
    pub min_steps: usize,
    pub max_steps: usize,
    /// Digits of the starting amount and of every operand of a `sum` problem.
    pub digits: u32,
    /// Probability that a `sum` step has a carry (addition) or a borrow (subtraction).
    pub carry_rate: f64,
    /// Share of `linear` problems (`a * x + b = c`); the rest are `sum`.
    pub linear_share: f64,
    /// Largest `a` and `x` of a `linear` problem (both from 2).
    pub linear_max_factor: i64,
    /// Largest `b` of a `linear` problem.
    pub linear_max_offset: i64,
}

impl Default for ArithConfig {
    fn default() -> Self {
        Self {
            min_steps: 2,
            max_steps: 3,
            digits: 2,
            carry_rate: 0.5,
            linear_share: 0.4,
            linear_max_factor: 9,
            linear_max_offset: 40,
        }
    }
}

impl ArithConfig {
    /// Check the knobs; the message names the bad one.
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.min_steps == 0 || self.min_steps > self.max_steps {
            return Err(KeyError::new(
                "min_steps",
                "must be at least 1 and at most `max_steps`",
            ));
        }
        // a problem of n steps is n operations on one line: a thousand is no problem any more
        if self.max_steps > 1000 {
            return Err(KeyError::new("max_steps", "must be at most 1000"));
        }
        if !(1..=6).contains(&self.digits) {
            return Err(KeyError::new("digits", "must be between 1 and 6"));
        }
        if !(0.0..=1.0).contains(&self.carry_rate) {
            return Err(KeyError::new("carry_rate", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.linear_share) {
            return Err(KeyError::new("linear_share", "must be in [0, 1]"));
        }
        if !(2..=99).contains(&self.linear_max_factor) {
            return Err(KeyError::new(
                "linear_max_factor",
                "must be between 2 and 99",
            ));
        }
        if !(1..=9999).contains(&self.linear_max_offset) {
            return Err(KeyError::new(
                "linear_max_offset",
                "must be between 1 and 9999",
            ));
        }
        Ok(())
    }
}

/// One written arithmetic step `lhs op rhs = result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub lhs: i64,
    pub op: Op,
    pub rhs: i64,
    pub result: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Add,
    Sub,
    Div,
}

impl Op {
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Div => '/',
        }
    }

    pub fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Div => a / b,
        }
    }
}

impl Step {
    pub fn new(lhs: i64, op: Op, rhs: i64) -> Self {
        Self {
            lhs,
            op,
            rhs,
            result: op.apply(lhs, rhs),
        }
    }

    /// `47 + 38 = 85.`
    pub fn line(&self) -> String {
        format!(
            "{} {} {} = {}.",
            self.lhs,
            self.op.symbol(),
            self.rhs,
            self.result
        )
    }
}

/// The problem families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Sum,
    Linear,
}

/// One problem with its worked solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArithProblem {
    pub family: Family,
    pub question: String,
    /// The solution's steps (for `linear`: `c - b` or `c + b`, then the division by `a`).
    pub steps: Vec<Step>,
    pub answer: i64,
    /// `linear` only: `(a, b, c)` of `a * x + b = c` (`b` may be negative).
    pub equation: Option<(i64, i64, i64)>,
}

impl ArithProblem {
    /// The reference solution: one line per step, then `\boxed{answer}`.
    pub fn solution(&self) -> String {
        solution_text(&self.steps, self.answer)
    }
}

/// Steps one per line, then the boxed answer.
pub fn solution_text(steps: &[Step], answer: i64) -> String {
    let mut out = String::new();
    for s in steps {
        out.push_str(&s.line());
        out.push('\n');
    }
    out.push_str(&format!("\\boxed{{{answer}}}"));
    out
}

const NAMES: &[(&str, &str)] = &[
    ("Mia", "She"),
    ("Leo", "He"),
    ("Ava", "She"),
    ("Sam", "He"),
    ("Zoe", "She"),
    ("Max", "He"),
    ("Ivy", "She"),
    ("Ben", "He"),
];
const ITEMS: &[&str] = &[
    "coins", "apples", "stamps", "books", "marbles", "cards", "shells", "pens",
];
const GAINS: &[&str] = &[
    "gets {} more",
    "buys {} more",
    "finds {} more",
    "wins {} more",
];
const LOSSES: &[&str] = &["gives away {}", "loses {}", "sells {}", "spends {}"];

/// A seeded generator of problems.
pub struct ArithTask {
    config: ArithConfig,
    rng: ChaCha8Rng,
}

impl ArithTask {
    pub fn new(config: ArithConfig, seed: u64) -> Result<Self, KeyError> {
        config.validate()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// The next problem.
    pub fn sample(&mut self) -> ArithProblem {
        if self.rng.random_bool(self.config.linear_share) {
            self.linear()
        } else {
            self.sum()
        }
    }

    /// The RNG, for tests that draw more from the same stream (the traces).
    #[cfg(test)]
    pub(crate) fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    fn operand(&mut self) -> i64 {
        let d = self.config.digits;
        let lo = if d == 1 { 1 } else { 10i64.pow(d - 1) };
        self.rng.random_range(lo..10i64.pow(d))
    }

    fn sum(&mut self) -> ArithProblem {
        let c = &self.config;
        let n = self.rng.random_range(c.min_steps..=c.max_steps);
        let (name, pronoun) = NAMES[self.rng.random_range(0..NAMES.len())];
        let item = ITEMS[self.rng.random_range(0..ITEMS.len())];
        let start = self.operand();
        let mut question = format!("{name} has {start} {item}.");
        let mut steps = Vec::with_capacity(n);
        let mut total = start;
        for i in 0..n {
            let want_carry = self.rng.random_bool(self.config.carry_rate);
            let subtract = self.rng.random_bool(0.5);
            let (op, rhs) = self.operand_for(total, subtract, want_carry);
            let verbs = if op == Op::Add { GAINS } else { LOSSES };
            let verb = verbs[self.rng.random_range(0..verbs.len())].replace("{}", &rhs.to_string());
            let then = if i == 0 { "" } else { "Then " };
            let subject = if i == 0 {
                pronoun.to_string()
            } else {
                pronoun.to_lowercase()
            };
            question.push_str(&format!(" {then}{subject} {verb}."));
            let step = Step::new(total, op, rhs);
            total = step.result;
            steps.push(step);
        }
        question.push_str(&format!(" How many {item} does {name} have now?"));
        ArithProblem {
            family: Family::Sum,
            question,
            steps,
            answer: total,
            equation: None,
        }
    }

    /// An operand for `total ± rhs` with (or without) a carry in the units column; a
    /// subtraction that would go below zero becomes an addition, and when the units digit
    /// makes the carry impossible one way (`…0 + x` never carries) the other way is tried.
    fn operand_for(&mut self, total: i64, subtract: bool, carry: bool) -> (Op, i64) {
        for i in 0..128 {
            let rhs = self.operand();
            let op = if (subtract == (i < 64)) && rhs <= total {
                Op::Sub
            } else {
                Op::Add
            };
            let has_carry = match op {
                Op::Add => total % 10 + rhs % 10 >= 10,
                _ => total % 10 < rhs % 10,
            };
            if has_carry == carry {
                return (op, rhs);
            }
        }
        (Op::Add, self.operand())
    }

    fn linear(&mut self) -> ArithProblem {
        let c = &self.config;
        let (max_f, max_b) = (c.linear_max_factor, c.linear_max_offset);
        let a = self.rng.random_range(2..=max_f);
        let x = self.rng.random_range(2..=max_f);
        let mut b = self.rng.random_range(1..=max_b);
        if self.rng.random_bool(0.3) && b < a * x {
            b = -b;
        }
        let rhs = a * x + b;
        let (sign, mag) = if b < 0 { ('-', -b) } else { ('+', b) };
        let question = format!("Find x if {a} * x {sign} {mag} = {rhs}.");
        let first = if b < 0 {
            Step::new(rhs, Op::Add, mag)
        } else {
            Step::new(rhs, Op::Sub, mag)
        };
        let steps = vec![first, Step::new(first.result, Op::Div, a)];
        ArithProblem {
            family: Family::Linear,
            question,
            steps,
            answer: x,
            equation: Some((a, b, rhs)),
        }
    }
}

/// Digits of `n ≥ 0`, least significant first.
pub fn digits_le(n: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut n = n.abs();
    loop {
        out.push(n % 10);
        n /= 10;
        if n == 0 {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{verify, Policy};

    #[test]
    fn problems_are_seeded_and_solutions_are_right() {
        let draw = |seed| {
            let mut t = ArithTask::new(ArithConfig::default(), seed).unwrap();
            (0..200).map(|_| t.sample()).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let linear = a.iter().filter(|p| p.family == Family::Linear).count();
        assert!((50..110).contains(&linear), "{linear} linear of 200");
        for p in &a {
            for s in &p.steps {
                assert_eq!(s.op.apply(s.lhs, s.rhs), s.result, "{}", p.question);
                assert!(s.result >= 0, "{}", p.question);
            }
            for w in p.steps.windows(2) {
                assert_eq!(w[0].result, w[1].lhs);
            }
            match p.equation {
                Some((a, b, c)) => {
                    assert_eq!(a * p.answer + b, c);
                    assert_eq!(p.steps[1].result * a, c - b);
                }
                None => assert_eq!(p.steps.last().unwrap().result, p.answer),
            }
            let v = verify(
                &p.answer.to_string(),
                &p.solution(),
                &Policy::default(),
                crate::verify::Extraction::Anchored,
            );
            assert!(v.correct, "{}", p.solution());
        }
    }

    #[test]
    fn the_question_reads_as_a_word_problem() {
        let mut t = ArithTask::new(
            ArithConfig {
                linear_share: 0.0,
                min_steps: 2,
                max_steps: 2,
                ..ArithConfig::default()
            },
            1,
        )
        .unwrap();
        let p = t.sample();
        assert_eq!(p.family, Family::Sum);
        assert_eq!(p.steps.len(), 2);
        assert!(p.question.contains(" Then "), "{}", p.question);
        assert!(p.question.ends_with(" have now?"), "{}", p.question);
        let start = p.steps[0].lhs.to_string();
        assert!(
            p.question.contains(&format!(" has {start} ")),
            "{}",
            p.question
        );
    }

    #[test]
    fn carry_rate_controls_the_carries() {
        let carries = |rate| {
            let cfg = ArithConfig {
                linear_share: 0.0,
                carry_rate: rate,
                ..ArithConfig::default()
            };
            let mut t = ArithTask::new(cfg, 3).unwrap();
            let steps: Vec<Step> = (0..100).flat_map(|_| t.sample().steps).collect();
            let with = steps
                .iter()
                .filter(|s| match s.op {
                    Op::Add => s.lhs % 10 + s.rhs % 10 >= 10,
                    _ => s.lhs % 10 < s.rhs % 10,
                })
                .count();
            with as f64 / steps.len() as f64
        };
        let (none, all) = (carries(0.0), carries(1.0));
        assert!(none < 0.05 && all > 0.95, "{none} {all}");
    }

    #[test]
    fn bad_knobs_are_named() {
        let cfg = ArithConfig {
            min_steps: 4,
            max_steps: 3,
            ..ArithConfig::default()
        };
        let err = ArithTask::new(cfg, 0).err().unwrap().to_string();
        assert!(err.contains("min_steps"), "{err}");
    }
}
