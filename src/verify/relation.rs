//! Equations and inequalities as answers: `y = 2x + 3`, `x \le 3` (an interval), `a < x \le b`,
//! `0 < f(x) < 1`, and inequalities that need one step of algebra to read (`-x > -1` is
//! `x < 1`, `2x + 1 \ge 5` is `x \ge 2`).

use std::collections::BTreeMap;

use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::answer::Answer;
use super::expr::{self, Expr, PercentMode};
use super::lexer::Tok;
use super::real::Num;

/// An equation (a chain `a = b = c` keeps its first and last parts) or an inequality on one
/// variable (as an interval).
pub(super) fn relation(toks: &[Tok]) -> Option<Answer> {
    let mut depth = 0i32;
    let mut rels = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Sym('(') | Tok::Sym('[') | Tok::Sym('{') => depth += 1,
            Tok::Sym(')') | Tok::Sym(']') | Tok::Sym('}') => depth -= 1,
            Tok::Sym('=') | Tok::Sym('<') | Tok::Sym('>') | Tok::Le | Tok::Ge if depth == 0 => {
                rels.push(i)
            }
            _ => {}
        }
    }
    if rels.is_empty() {
        return None;
    }
    let parts: Vec<Expr> = std::iter::once(0)
        .chain(rels.iter().map(|i| i + 1))
        .zip(rels.iter().copied().chain(std::iter::once(toks.len())))
        .map(|(a, b)| expr::parse(&toks[a..b]))
        .collect::<Option<_>>()?;
    let ops: Vec<&Tok> = rels.iter().map(|&i| &toks[i]).collect();
    if ops.iter().all(|t| **t == Tok::Sym('=')) {
        return Some(Answer::Equation(
            parts[0].clone(),
            parts[parts.len() - 1].clone(),
        ));
    }
    inequality(&parts, &ops)
}

/// A name: a variable, or a product of variables (`AB`, `f(x)`, `xy`), as written on the left
/// of an assignment or in the middle of a range.
pub(super) fn is_name(e: &Expr) -> bool {
    match e {
        Expr::Var(_) => true,
        Expr::Mul(a, b) => is_name(a) && is_name(b),
        _ => false,
    }
}

fn inf(neg: bool) -> Expr {
    if neg {
        Expr::Neg(Box::new(Expr::Inf))
    } else {
        Expr::Inf
    }
}

fn interval(lo: Expr, lo_open: bool, hi: Expr, hi_open: bool) -> Answer {
    Answer::Seq {
        open: if lo_open { '(' } else { '[' },
        close: if hi_open { ')' } else { ']' },
        items: vec![Answer::Expr(lo), Answer::Expr(hi)],
    }
}

/// A comparison as (strict, flipped): `<` is (true, false), `\ge` is (false, true).
fn less(t: &Tok) -> Option<(bool, bool)> {
    match t {
        Tok::Sym('<') => Some((true, false)),
        Tok::Le => Some((false, false)),
        Tok::Sym('>') => Some((true, true)),
        Tok::Ge => Some((false, true)),
        _ => None,
    }
}

/// `x > a`, `a \le x`, `a < x \le b` (x a name), or a linear inequality in one variable, as
/// intervals.
fn inequality(parts: &[Expr], ops: &[&Tok]) -> Option<Answer> {
    match (parts, ops) {
        ([a, b], [op]) => {
            let (strict, flipped) = less(op)?;
            // the side that is a name, and whether it is below the other
            let (bound, var_below) = match (is_name(a), is_name(b)) {
                (true, false) => (b.clone(), !flipped),
                (false, true) => (a.clone(), flipped),
                _ => return solved(a, b, strict, flipped),
            };
            Some(if var_below {
                interval(inf(true), true, bound, strict)
            } else {
                interval(bound, strict, inf(false), true)
            })
        }
        ([a, x, c], [op1, op2]) if is_name(x) => {
            let (s1, f1) = less(op1)?;
            let (s2, f2) = less(op2)?;
            if f1 != f2 {
                return None;
            }
            if f1 {
                Some(interval(c.clone(), s2, a.clone(), s1))
            } else {
                Some(interval(a.clone(), s1, c.clone(), s2))
            }
        }
        _ => None,
    }
}

/// `a < b` (or `>`, `\le`, `\ge` by `strict`/`flipped`) where `a - b` is linear in its one
/// variable with a non-zero exact slope: the interval of that variable it describes.
fn solved(a: &Expr, b: &Expr, strict: bool, flipped: bool) -> Option<Answer> {
    let f = Expr::Sub(Box::new(a.clone()), Box::new(b.clone()));
    let mut vars = std::collections::BTreeSet::new();
    f.vars(&mut vars);
    let [var] = <[String; 1]>::try_from(vars.into_iter().collect::<Vec<_>>()).ok()?;
    let at = |x: i64| -> Option<BigRational> {
        let env = BTreeMap::from([(var.clone(), Num::int(x))]);
        let v = f.eval(&env, PercentMode::Ignore)?;
        v.is_exact().then(|| v.rational().cloned()).flatten()
    };
    let (f0, f1, f2) = (at(0)?, at(1)?, at(2)?);
    let slope = &f1 - &f0;
    // linear (three points on a line) and not constant
    if slope.is_zero() || &f2 - &f1 != slope {
        return None;
    }
    let root = Expr::Num(-&f0 / &slope, None);
    // f < 0 (or f > 0 when flipped): below the root when the slope is positive
    let below = slope.is_positive() != flipped;
    Some(if below {
        interval(inf(true), true, root, strict)
    } else {
        interval(root, strict, inf(false), true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::answer::parse_answer;

    fn interval_of(s: &str) -> (char, char) {
        match parse_answer(s) {
            Some(Answer::Seq { open, close, .. }) => (open, close),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn inequalities_read_as_intervals() {
        assert_eq!(interval_of("x < 1"), ('(', ')'));
        assert_eq!(interval_of("-x > -1"), ('(', ')'));
        assert_eq!(parse_answer("-x \\ge -1"), parse_answer("x \\le 1"));
        assert_eq!(parse_answer("2x + 1 \\ge 5"), parse_answer("x \\ge 2"));
        assert_eq!(parse_answer("-x > -1"), parse_answer("x < 1"));
        assert_ne!(parse_answer("x > -1"), parse_answer("x < 1"));
        assert_eq!(parse_answer("0 < f(x) < 1"), parse_answer("0 < y < 1"));
        // not linear, or two variables: not an interval
        assert!(!matches!(parse_answer("x^2 < 4"), Some(Answer::Seq { .. })));
        assert!(!matches!(
            parse_answer("x + y < 4"),
            Some(Answer::Seq { .. })
        ));
    }
}
