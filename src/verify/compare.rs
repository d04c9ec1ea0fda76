//! Equivalence of two parsed answers under a [`Policy`]: exact values exactly, irrational
//! values to high precision, expressions with variables at several fixed rational points,
//! equations up to a non-zero factor, tuples in order, sets and comma lists in any order,
//! intervals with their ends, matrices element-wise, text and letters case-insensitively.

use std::collections::{BTreeMap, BTreeSet};

use num_bigint::BigInt;
use num_rational::BigRational;

use super::answer::Answer as A;
pub use super::answer::Answer;
use super::expr::{Expr, PercentMode};
use super::policy::{PercentPolicy, Policy};
use super::real::Num;

/// Points at which expressions with variables are compared.
const POINTS: usize = 6;

/// Whether `pred` is the same answer as `gold`.
pub fn same(gold: &Answer, pred: &Answer, policy: &Policy) -> bool {
    if super::budget::exhausted() {
        return false;
    }
    match (gold, pred) {
        (A::Choice(a), A::Choice(b)) => a == b,
        (A::Choice(a), A::Expr(Expr::Var(v))) | (A::Expr(Expr::Var(v)), A::Choice(a)) => {
            v.len() == 1 && v.eq_ignore_ascii_case(&a.to_string())
        }
        (A::Text(a), A::Text(b)) => a == b,
        (A::Expr(a), A::Expr(b)) => exprs_equal(a, b, policy),
        (A::Equation(l1, r1), A::Equation(l2, r2)) => {
            if is_var(l1) && l1 == l2 {
                exprs_equal(r1, r2, policy)
            } else {
                equations_equal(l1, r1, l2, r2)
            }
        }
        (A::Expr(v), A::Equation(l, r)) | (A::Equation(l, r), A::Expr(v)) => {
            policy.strip_assignment && assignment(l, r) && exprs_equal(v, r, policy)
        }
        (
            A::Seq {
                open: '{',
                items: a,
                ..
            },
            A::Seq {
                open: '{',
                items: b,
                ..
            },
        ) => unordered(a, b, policy),
        (
            A::Seq {
                open: o1,
                close: c1,
                items: a,
            },
            A::Seq {
                open: o2,
                close: c2,
                items: b,
            },
        ) => o1 == o2 && c1 == c2 && ordered(a, b, policy),
        (
            A::Seq {
                open: '{',
                items: a,
                ..
            },
            A::List(b),
        )
        | (
            A::List(a),
            A::Seq {
                open: '{',
                items: b,
                ..
            },
        ) => unordered(a, b, policy),
        (
            A::Seq {
                open: '(',
                close: ')',
                items: a,
            },
            A::List(b),
        ) => ordered(a, b, policy),
        (A::List(a), A::List(b)) if policy.ordered_lists => ordered(a, b, policy),
        (A::List(a), A::List(b)) | (A::Union(a), A::Union(b)) => unordered(a, b, policy),
        (A::Matrix(a), A::Matrix(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| ordered(x, y, policy))
        }
        // A one-column matrix and a tuple are the same vector.
        (
            A::Matrix(m),
            A::Seq {
                open: '(', items, ..
            },
        )
        | (
            A::Seq {
                open: '(', items, ..
            },
            A::Matrix(m),
        ) => {
            m.iter().all(|r| r.len() == 1)
                && m.len() == items.len()
                && m.iter().zip(items).all(|(r, x)| same(&r[0], x, policy))
        }
        // One answer written several equivalent ways ("\\boxed{15\\frac{39}{40}}, or
        // \\boxed{\\frac{639}{40}}"): every item must be the gold answer.
        (g, A::List(items)) if !matches!(g, A::List(_) | A::Seq { .. } | A::Union(_)) => {
            items.iter().all(|x| same(g, x, policy))
        }
        _ => false,
    }
}

fn is_var(e: &Expr) -> bool {
    matches!(e, Expr::Var(_))
}

/// `x = 5` (a name on the left: `x`, `AB`, `f(x)`), or a chain whose ends are equal numbers
/// (`\frac{6}{8} = \frac{3}{4}`): the right-hand side is the answer.
fn assignment(l: &Expr, r: &Expr) -> bool {
    if super::relation::is_name(l) {
        return true;
    }
    let env = BTreeMap::new();
    let mut vars = BTreeSet::new();
    l.vars(&mut vars);
    r.vars(&mut vars);
    vars.is_empty()
        && match (
            l.eval(&env, PercentMode::Ignore),
            r.eval(&env, PercentMode::Ignore),
        ) {
            (Some(a), Some(b)) => a.equals(&b),
            _ => false,
        }
}

fn ordered(a: &[Answer], b: &[Answer], policy: &Policy) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y, policy))
}

/// The same set: every item of each side is an item of the other (a repeated solution is one
/// solution).
fn unordered(a: &[Answer], b: &[Answer], policy: &Policy) -> bool {
    a.is_empty() == b.is_empty()
        && a.iter().all(|x| b.iter().any(|y| same(x, y, policy)))
        && b.iter().all(|y| a.iter().any(|x| same(x, y, policy)))
}

/// The value of variable `j` at point `k`: distinct small positive rationals, so that square
/// roots and logarithms of simple expressions are defined.
fn point(k: usize, j: usize) -> Num {
    const NUMS: [i64; 11] = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43];
    const DENS: [i64; 5] = [3, 5, 4, 7, 6];
    let n = NUMS[(k * 3 + j * 5) % NUMS.len()] + (j as i64) * 2;
    let d = DENS[(k + j * 2) % DENS.len()];
    Num::Exact(BigRational::new(BigInt::from(n), BigInt::from(d)))
}

/// The variables' values at sample point `k`, with `at` ([`point`] or [`integer_point`]).
fn env_at(vars: &BTreeSet<String>, k: usize, at: fn(usize, usize) -> Num) -> BTreeMap<String, Num> {
    vars.iter()
        .enumerate()
        .map(|(j, v)| (v.clone(), at(k, j)))
        .collect()
}

fn all_vars(a: &Expr, b: &Expr) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    a.vars(&mut vars);
    b.vars(&mut vars);
    vars
}

/// Two expressions are equal: under each percent reading the policy allows, at every point
/// where both are defined (at least two when there are variables); or, when the policy allows
/// decimal approximations, one side is a decimal that the other rounds to.
pub fn exprs_equal(gold: &Expr, pred: &Expr, policy: &Policy) -> bool {
    if policy.require_reduced_fractions && pred.has_unreduced_fraction() {
        return false;
    }
    let modes: &[PercentMode] = if gold.has_percent() || pred.has_percent() {
        match policy.percent {
            PercentPolicy::Either => &[PercentMode::Ignore, PercentMode::Hundredth],
            PercentPolicy::Ignore => &[PercentMode::Ignore],
            PercentPolicy::Fraction => &[PercentMode::Hundredth],
        }
    } else {
        &[PercentMode::Ignore]
    };
    if modes.iter().any(|&m| values_equal(gold, pred, m)) {
        return true;
    }
    policy.decimal_approximations && decimal_rounds(gold, pred)
}

/// Equal at the rational sample points; with factorials or binomials of a variable
/// (`\frac{(2n)!}{(n!)^2}` and `\binom{2n}{n}`, defined at integers only), at integer points.
fn values_equal(a: &Expr, b: &Expr, mode: PercentMode) -> bool {
    let vars = all_vars(a, b);
    let at = if !vars.is_empty() && (a.has_integer_function() || b.has_integer_function()) {
        integer_point
    } else {
        point
    };
    agree_at(a, b, mode, &vars, at) == Some(true)
}

/// `Some(false)` when `a` and `b` differ at a sample point (or only one is defined there),
/// `Some(true)` when they agree at every point and at least two (one without variables) are
/// defined, `None` when too few are.
fn agree_at(
    a: &Expr,
    b: &Expr,
    mode: PercentMode,
    vars: &BTreeSet<String>,
    at: fn(usize, usize) -> Num,
) -> Option<bool> {
    let points = if vars.is_empty() { 1 } else { POINTS };
    let mut agreed = 0;
    for k in 0..points {
        if super::budget::exhausted() {
            return Some(false);
        }
        let env = env_at(vars, k, at);
        match (a.eval(&env, mode), b.eval(&env, mode)) {
            (Some(x), Some(y)) => {
                if !x.equals(&y) {
                    return Some(false);
                }
                agreed += 1;
            }
            (None, None) => {}
            // Defined on one side only: different functions.
            _ => return Some(false),
        }
    }
    (agreed >= points.min(2)).then_some(true)
}

/// The value of variable `j` at integer point `k`: distinct small positive integers.
fn integer_point(k: usize, j: usize) -> Num {
    Num::int((2 + k + 3 * j) as i64)
}

/// One side is a decimal literal with `d` places and the other rounds to it:
/// `|x - lit| <= 5·10^-(d+1)`.
fn decimal_rounds(a: &Expr, b: &Expr) -> bool {
    let (lit, other, d) = match (a.decimal_places(), b.decimal_places()) {
        (_, Some(d)) if d >= 1 => (b, a, d),
        (Some(d), _) if d >= 1 => (a, b, d),
        _ => return false,
    };
    if !all_vars(a, b).is_empty() || d > 60 {
        return false;
    }
    let env = BTreeMap::new();
    let (Some(x), Some(y)) = (
        lit.eval(&env, PercentMode::Ignore),
        other.eval(&env, PercentMode::Ignore),
    ) else {
        return false;
    };
    let tol = BigRational::new(BigInt::from(5), BigInt::from(10).pow(d as u32 + 1));
    x.within(&y, &tol)
}

/// `l1 = r1` and `l2 = r2` are the same equation: `l1 - r1 = c (l2 - r2)` for one constant
/// `c != 0` at every point.
fn equations_equal(l1: &Expr, r1: &Expr, l2: &Expr, r2: &Expr) -> bool {
    let f1 = Expr::Sub(Box::new(l1.clone()), Box::new(r1.clone()));
    let f2 = Expr::Sub(Box::new(l2.clone()), Box::new(r2.clone()));
    let vars = all_vars(&f1, &f2);
    let points = if vars.is_empty() { 1 } else { POINTS };
    let mut ratio: Option<Num> = None;
    let mut agreed = 0;
    for k in 0..points {
        if super::budget::exhausted() {
            return false;
        }
        let env = env_at(&vars, k, point);
        let (Some(a), Some(b)) = (
            f1.eval(&env, PercentMode::Ignore),
            f2.eval(&env, PercentMode::Ignore),
        ) else {
            continue;
        };
        agreed += 1;
        if b.is_zero() || a.is_zero() {
            if !(a.is_zero() && b.is_zero()) {
                return false;
            }
            continue;
        }
        let Some(r) = a.div(&b) else {
            return false;
        };
        match &ratio {
            None => ratio = Some(r),
            Some(c) if c.equals(&r) => {}
            Some(_) => return false,
        }
    }
    agreed >= points.min(2)
}
