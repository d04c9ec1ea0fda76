//! What a turn-2 check of the shipped task did (`trace::check_text` teaches its form): how
//! many of its column facts are true, how many checked steps reach the step's true value, and
//! whether it marked some step "wrong" (it *flags*). Measured on evaluation texts, kept per
//! sample by `mgrpo table2 --export`, summarised by `mgrpo table2`.
//!
//! ```text
//! Check:
//! 87 + 36: 7 + 6 = 13, 8 + 3 + 1 = 12, so 123. right.       a sum step: its column facts
//! 123 + 72: 3 + 2 = 5, 2 + 7 = 9, 1 + 0 = 1, so 195. wrong.
//! Check: 7 * 8 = 56, 56 + 12 = 68. wrong.                    a linear substitution
//! ```

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// The counts of one turn-2 text's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckAnatomy {
    pub columns_right: u32,
    pub columns: u32,
    pub steps_right: u32,
    pub steps: u32,
    pub flagged: bool,
}

struct Patterns {
    step: Regex,
    linear: Regex,
    fact: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        // literal patterns: compiling them cannot fail
        let re = |s: &str| Regex::new(s).unwrap_or_else(|e| unreachable!("{e}"));
        Patterns {
            step: re(r"(\d+) ([-+*/]) (\d+): (.*), so (-?\d+)\. (right|wrong)"),
            linear: re(
                r"(\d+) \* (-?\d+) = (-?\d+), (-?\d+) ([-+]) (\d+) = (-?\d+)\. (right|wrong)",
            ),
            fact: re(r"^(\d+) ([-+*]) (\d+)(?: ([-+]) (\d+))? = (-?\d+)$"),
        }
    })
}

fn int(s: Option<regex::Match<'_>>) -> Option<i128> {
    s?.as_str().parse().ok()
}

fn apply(x: i128, op: &str, y: i128) -> Option<i128> {
    match op {
        "+" => x.checked_add(y),
        "-" => x.checked_sub(y),
        "*" => x.checked_mul(y),
        "/" => (y != 0).then(|| x.div_euclid(y)),
        _ => None,
    }
}

/// Whether one column fact ("8 + 3 + 1 = 12") is true; `None` if it is not a fact.
fn fact_true(text: &str) -> Option<bool> {
    let m = patterns().fact.captures(text.trim())?;
    let mut v = apply(int(m.get(1))?, m.get(2)?.as_str(), int(m.get(3))?)?;
    if let Some(op2) = m.get(4) {
        v = apply(v, op2.as_str(), int(m.get(5))?)?;
    }
    Some(v == int(m.get(6))?)
}

impl CheckAnatomy {
    /// The check in a turn-2 text; `None` when it has no checked step.
    pub fn of_text(text: &str) -> Option<Self> {
        let p = patterns();
        let mut a = Self::default();
        for line in text.split('\n') {
            if let Some(m) = p.step.captures(line) {
                let (x, op, y) = (int(m.get(1))?, m.get(2)?.as_str(), int(m.get(3))?);
                a.steps += 1;
                a.steps_right += u32::from(apply(x, op, y) == int(m.get(5)));
                for fact in m.get(4)?.as_str().split(", ") {
                    if let Some(ok) = fact_true(fact) {
                        a.columns += 1;
                        a.columns_right += u32::from(ok);
                    }
                }
                a.flagged |= m.get(6)?.as_str() == "wrong";
            } else if let Some(m) = p.linear.captures(line) {
                let g = |i| int(m.get(i));
                let (coef, x, ax, ax2, b, c) = (g(1)?, g(2)?, g(3)?, g(4)?, g(6)?, g(7)?);
                a.steps += 1;
                let ok = coef.checked_mul(x) == Some(ax)
                    && ax2 == ax
                    && apply(ax, m.get(5)?.as_str(), b) == Some(c);
                a.steps_right += u32::from(ok);
                a.flagged |= m.get(8)?.as_str() == "wrong";
            }
        }
        (a.steps > 0).then_some(a)
    }

    /// `[columns right, columns, steps right, steps, flagged]`, as the compact export keeps it.
    pub fn to_json(self) -> Value {
        serde_json::json!([
            self.columns_right,
            self.columns,
            self.steps_right,
            self.steps,
            self.flagged
        ])
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        let a = v.as_array()?;
        let n = |i: usize| a.get(i)?.as_u64().and_then(|x| u32::try_from(x).ok());
        (a.len() == 5).then_some(())?;
        Some(Self {
            columns_right: n(0)?,
            columns: n(1)?,
            steps_right: n(2)?,
            steps: n(3)?,
            flagged: a[4].as_bool()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_check_by_hand() {
        // 7 + 6 = 13 true, 8 + 3 + 1 = 12 true, so 123 (87 + 36 = 123: right); then 3 + 2 = 5,
        // 2 + 7 = 9, 1 + 0 = 1 true, so 195 (123 + 72 = 195: right) but marked wrong
        let text = "\nCheck:\n87 + 36: 7 + 6 = 13, 8 + 3 + 1 = 12, so 123. right.\n\
                    123 + 72: 3 + 2 = 5, 2 + 7 = 9, 1 + 1 = 1, so 194. wrong.\n\\boxed{194}";
        let a = CheckAnatomy::of_text(text).unwrap();
        assert_eq!(
            a,
            CheckAnatomy {
                columns_right: 4,
                columns: 5,
                steps_right: 1,
                steps: 2,
                flagged: true
            }
        );
        assert_eq!(CheckAnatomy::from_json(&a.to_json()), Some(a));
    }

    #[test]
    fn a_linear_check_by_hand() {
        let right = CheckAnatomy::of_text("\nCheck: 7 * 7 = 49, 49 + 12 = 61. right.\n\\boxed{7}");
        assert_eq!(
            right,
            Some(CheckAnatomy {
                steps_right: 1,
                steps: 1,
                ..CheckAnatomy::default()
            })
        );
        // 7 * 8 = 56 true, 56 + 12 = 68 true: the step is right, the flag says wrong
        let wrong = CheckAnatomy::of_text("Check: 7 * 8 = 56, 56 + 12 = 68. wrong.").unwrap();
        assert_eq!((wrong.steps_right, wrong.flagged), (1, true));
        let false_fact = CheckAnatomy::of_text("Check: 7 * 8 = 57, 57 + 12 = 69. wrong.").unwrap();
        assert_eq!(false_fact.steps_right, 0);
        assert_eq!(CheckAnatomy::of_text("The answer is \\boxed{3}."), None);
        assert_eq!(CheckAnatomy::from_json(&serde_json::json!([1, 2, 3])), None);
    }
}
