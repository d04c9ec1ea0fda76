//! Math expressions: a recursive-descent parser over [`lexer`](super::lexer) tokens and an
//! evaluator to [`Num`] with variables bound to chosen values.
//!
//! Grammar (loosest first): sum := term (± term)* ; term := unary ((* | / | implicit) unary)* ;
//! unary := ± unary | power ; power := postfix (^ unary)? ; postfix := primary (! | %)* ;
//! primary := number | variable | constant | ( sum ) | { sum } | |sum| | \frac | \sqrt |
//! \binom | function argument. Implicit multiplication covers `2x`, `3\sqrt{2}`, `2\pi r`.
//! Nesting is capped at [`MAX_DEPTH`] and length at [`MAX_TOKENS`] (which bounds the tree's
//! height, so evaluating or dropping it never recurses deeper than that), so adversarial input
//! fails cleanly.

use std::collections::{BTreeMap, BTreeSet};

use num_rational::BigRational;

use super::lexer::Tok;
use super::real::{Num, Trig};

/// Deepest nesting the parser accepts.
pub const MAX_DEPTH: usize = 64;

/// Longest token sequence the parser accepts: a flat chain `1+1+…+1` builds a tree as tall as
/// it is long.
pub const MAX_TOKENS: usize = 512;

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A literal and its decimal places when written with a decimal point.
    Num(BigRational, Option<usize>),
    Pi,
    E,
    Inf,
    Var(String),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    /// `\sqrt[n]{x}` (index, radicand).
    Root(Box<Expr>, Box<Expr>),
    Factorial(Box<Expr>),
    Percent(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
    Func(Func, Box<Expr>),
    /// `\log_b x` (base, argument).
    Log(Box<Expr>, Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Ln,
    Exp,
    Abs,
    Floor,
    Ceil,
}

/// How `%` evaluates: ignored (`50\%` = 50) or as a hundredth (`50\%` = 1/2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PercentMode {
    Ignore,
    Hundredth,
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    depth: usize,
}

type P<T> = Option<T>;

fn b(e: Expr) -> Box<Expr> {
    Box::new(e)
}

/// Parse a whole token sequence as one expression.
pub fn parse(toks: &[Tok]) -> Option<Expr> {
    if toks.is_empty() || toks.len() > MAX_TOKENS {
        return None;
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.sum()?;
    (p.pos == toks.len()).then_some(e)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> P<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn sum(&mut self) -> P<Expr> {
        self.enter()?;
        let mut e = self.term()?;
        loop {
            if self.eat('+') {
                e = Expr::Add(b(e), b(self.term()?));
            } else if self.eat('-') {
                e = Expr::Sub(b(e), b(self.term()?));
            } else {
                break;
            }
        }
        self.depth -= 1;
        Some(e)
    }

    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(..)) | Some(Tok::Var(_)) => true,
            Some(Tok::Sym(c)) => matches!(c, '(' | '{'),
            Some(Tok::Cmd(c)) => !matches!(
                c.as_str(),
                "pm" | "mp" | "cup" | "cap" | "in" | "to" | "rfloor" | "rceil" | "end"
            ),
            _ => false,
        }
    }

    fn term(&mut self) -> P<Expr> {
        let mut e = self.unary()?;
        loop {
            if self.eat('*') {
                e = Expr::Mul(b(e), b(self.unary()?));
            } else if self.eat('/') {
                e = Expr::Div(b(e), b(self.unary()?));
            } else if self.starts_primary() {
                let f = self.power()?;
                e = mixed_number(&e, &f).unwrap_or_else(|| Expr::Mul(b(e), b(f)));
            } else {
                break;
            }
        }
        Some(e)
    }

    fn unary(&mut self) -> P<Expr> {
        self.enter()?;
        let e = if self.eat('-') {
            Expr::Neg(b(self.unary()?))
        } else if self.eat('+') {
            self.unary()?
        } else {
            self.power()?
        };
        self.depth -= 1;
        Some(e)
    }

    fn power(&mut self) -> P<Expr> {
        let base = self.postfix()?;
        if self.eat('^') {
            let exp = self.exponent()?;
            // A factorial or percent after the exponent: 2^3! is rare; keep it simple.
            return Some(Expr::Pow(b(base), b(exp)));
        }
        Some(base)
    }

    /// An exponent: a braced group, or a signed primary (`x^-1`, `2^10`).
    fn exponent(&mut self) -> P<Expr> {
        self.enter()?;
        let e = if self.eat('-') {
            Expr::Neg(b(self.exponent()?))
        } else {
            self.power()?
        };
        self.depth -= 1;
        Some(e)
    }

    fn postfix(&mut self) -> P<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.eat('!') {
                e = Expr::Factorial(b(e));
            } else if self.eat('%') {
                e = Expr::Percent(b(e));
            } else {
                break;
            }
        }
        Some(e)
    }

    fn group(&mut self, open: char, close: char) -> P<Expr> {
        if !self.eat(open) {
            return None;
        }
        let e = self.sum()?;
        self.eat(close).then_some(e)
    }

    /// A command argument: a braced group or a single primary (`\sqrt2`, `\frac{1}{2}`).
    fn arg(&mut self) -> P<Expr> {
        if self.peek() == Some(&Tok::Sym('{')) {
            self.group('{', '}')
        } else {
            self.primary()
        }
    }

    fn primary(&mut self) -> P<Expr> {
        self.enter()?;
        let tok = self.peek()?.clone();
        self.pos += 1;
        let e = match tok {
            Tok::Num(q, d) => Expr::Num(q, d),
            Tok::Var(v) => match v.as_str() {
                "e" => Expr::E,
                _ => Expr::Var(v),
            },
            Tok::Sym('(') => {
                self.pos -= 1;
                self.group('(', ')')?
            }
            Tok::Sym('{') => {
                self.pos -= 1;
                self.group('{', '}')?
            }
            Tok::Sym('[') => {
                self.pos -= 1;
                self.group('[', ']')?
            }
            Tok::Sym('|') => {
                let inner = self.sum()?;
                if !self.eat('|') {
                    return None;
                }
                Expr::Func(Func::Abs, b(inner))
            }
            Tok::Cmd(c) => self.command(&c)?,
            _ => return None,
        };
        self.depth -= 1;
        Some(e)
    }

    fn command(&mut self, c: &str) -> P<Expr> {
        Some(match c {
            "pi" => Expr::Pi,
            "infty" | "infinity" => Expr::Inf,
            "frac" | "cfrac" => {
                let n = self.arg()?;
                let d = self.arg()?;
                Expr::Div(b(n), b(d))
            }
            "binom" | "choose" => {
                let n = self.arg()?;
                let k = self.arg()?;
                Expr::Binom(b(n), b(k))
            }
            "sqrt" => {
                let index = if self.peek() == Some(&Tok::Sym('[')) {
                    self.group('[', ']')?
                } else {
                    Expr::Num(BigRational::from_integer(2.into()), None)
                };
                Expr::Root(b(index), b(self.arg()?))
            }
            "lfloor" | "lceil" => {
                let inner = self.sum()?;
                let close = if c == "lfloor" { "rfloor" } else { "rceil" };
                if self.peek() != Some(&Tok::Cmd(close.into())) {
                    return None;
                }
                self.pos += 1;
                let f = if c == "lfloor" {
                    Func::Floor
                } else {
                    Func::Ceil
                };
                Expr::Func(f, b(inner))
            }
            "log" | "lg" => {
                let base = if self.eat('_') {
                    self.arg()?
                } else {
                    // Unsubscripted \log: base 10 (MATH convention for numeric answers).
                    Expr::Num(BigRational::from_integer(10.into()), None)
                };
                let arg = self.func_arg()?;
                Expr::Log(b(base), b(arg))
            }
            _ => {
                let f = match c {
                    "sin" => Func::Sin,
                    "cos" => Func::Cos,
                    "tan" => Func::Tan,
                    "cot" => Func::Cot,
                    "sec" => Func::Sec,
                    "csc" => Func::Csc,
                    "ln" => Func::Ln,
                    "exp" => Func::Exp,
                    _ => return None,
                };
                // \sin^2 x = (\sin x)^2.
                let power = if self.eat('^') {
                    Some(self.exponent()?)
                } else {
                    None
                };
                let inner = Expr::Func(f, b(self.func_arg()?));
                match power {
                    Some(p) => Expr::Pow(b(inner), b(p)),
                    None => inner,
                }
            }
        })
    }

    /// A function's argument: `(x)`, `{x}`, or an implicit product of primaries (`\sin 2x`).
    fn func_arg(&mut self) -> P<Expr> {
        if matches!(self.peek(), Some(Tok::Sym('(')) | Some(Tok::Sym('{'))) {
            return self.power();
        }
        let mut e = self.power()?;
        while matches!(self.peek(), Some(Tok::Num(..)) | Some(Tok::Var(_))) {
            e = Expr::Mul(b(e), b(self.power()?));
        }
        Some(e)
    }
}

fn int_literal(e: &Expr) -> bool {
    matches!(e, Expr::Num(q, None) if q.is_integer())
}

/// A mixed number `2\\frac{1}{2}` = 2 + 1/2: an integer literal followed by a proper fraction
/// of integer literals (anything else is a product).
fn mixed_number(whole: &Expr, f: &Expr) -> Option<Expr> {
    let Expr::Div(n, d) = f else { return None };
    let (Expr::Num(n, None), Expr::Num(d, None)) = (n.as_ref(), d.as_ref()) else {
        return None;
    };
    let proper = n.is_integer() && d.is_integer() && n < d && n.numer() > &0.into();
    match whole {
        w if proper && int_literal(w) => Some(Expr::Add(b(w.clone()), b(f.clone()))),
        Expr::Neg(w) if proper && int_literal(w) => {
            Some(Expr::Neg(b(Expr::Add(w.clone(), b(f.clone())))))
        }
        _ => None,
    }
}

impl Expr {
    /// The direct sub-expressions.
    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Num(..) | Expr::Pi | Expr::E | Expr::Inf | Expr::Var(_) => vec![],
            Expr::Neg(a) | Expr::Factorial(a) | Expr::Percent(a) | Expr::Func(_, a) => vec![a],
            Expr::Add(a, c)
            | Expr::Sub(a, c)
            | Expr::Mul(a, c)
            | Expr::Div(a, c)
            | Expr::Pow(a, c)
            | Expr::Root(a, c)
            | Expr::Binom(a, c)
            | Expr::Log(a, c) => vec![a, c],
        }
    }

    /// Whether `pred` holds for this expression or any sub-expression.
    fn any(&self, pred: &impl Fn(&Expr) -> bool) -> bool {
        pred(self) || self.children().into_iter().any(|c| c.any(pred))
    }

    /// The variables the expression mentions.
    pub fn vars(&self, out: &mut BTreeSet<String>) {
        if let Expr::Var(v) = self {
            out.insert(v.clone());
        }
        for c in self.children() {
            c.vars(out);
        }
    }

    /// Whether a factorial or a binomial appears (defined at integers only).
    pub fn has_integer_function(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Factorial(_) | Expr::Binom(..)))
    }

    /// Whether a `%` appears.
    pub fn has_percent(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Percent(_)))
    }

    /// A fraction literal `\frac{a}{b}` with integers `a`, `b` that share a factor (an
    /// unreduced fraction), anywhere in the expression.
    pub fn has_unreduced_fraction(&self) -> bool {
        self.any(&|e| match e {
            Expr::Div(n, d) => match (n.as_ref(), d.as_ref()) {
                (Expr::Num(a, None), Expr::Num(c, None)) => {
                    a.is_integer()
                        && c.is_integer()
                        && super::real::shares_factor(a.numer(), c.numer())
                }
                _ => false,
            },
            _ => false,
        })
    }

    /// Decimal places of a plain (possibly negated) decimal literal such as `3.14`.
    pub fn decimal_places(&self) -> Option<usize> {
        match self {
            Expr::Num(_, d) => *d,
            Expr::Neg(a) => a.decimal_places(),
            _ => None,
        }
    }

    /// Evaluate with `env` binding every variable; `None` when undefined or too large.
    pub fn eval(&self, env: &BTreeMap<String, Num>, pct: PercentMode) -> Option<Num> {
        let ev = |e: &Expr| e.eval(env, pct);
        Some(match self {
            Expr::Num(q, _) => Num::Exact(q.clone()),
            Expr::Pi => Num::pi(),
            Expr::E => Num::e(),
            Expr::Inf => Num::Inf(true),
            Expr::Var(v) => env.get(v)?.clone(),
            Expr::Neg(a) => ev(a)?.neg(),
            Expr::Add(a, c) => ev(a)?.add(&ev(c)?)?,
            Expr::Sub(a, c) => ev(a)?.sub(&ev(c)?)?,
            Expr::Mul(a, c) => ev(a)?.mul(&ev(c)?)?,
            Expr::Div(a, c) => ev(a)?.div(&ev(c)?)?,
            Expr::Pow(a, c) => ev(a)?.pow(&ev(c)?)?,
            Expr::Root(n, x) => {
                let n = ev(n)?;
                ev(x)?.pow(&Num::int(1).div(&n)?)?
            }
            Expr::Factorial(a) => ev(a)?.factorial()?,
            Expr::Percent(a) => match pct {
                PercentMode::Ignore => ev(a)?,
                PercentMode::Hundredth => ev(a)?.div(&Num::int(100))?,
            },
            Expr::Binom(n, k) => ev(n)?.binomial(&ev(k)?)?,
            Expr::Log(base, x) => ev(x)?.log(&ev(base)?)?,
            Expr::Func(f, a) => {
                let x = ev(a)?;
                match f {
                    Func::Sin => x.trig(Trig::Sin)?,
                    Func::Cos => x.trig(Trig::Cos)?,
                    Func::Tan => x.trig(Trig::Tan)?,
                    Func::Cot => Num::int(1).div(&x.trig(Trig::Tan)?)?,
                    Func::Sec => Num::int(1).div(&x.trig(Trig::Cos)?)?,
                    Func::Csc => Num::int(1).div(&x.trig(Trig::Sin)?)?,
                    Func::Ln => x.ln()?,
                    Func::Exp => x.exp()?,
                    Func::Abs => x.abs(),
                    Func::Floor => x.round_to_int(false)?,
                    Func::Ceil => x.round_to_int(true)?,
                }
            }
        })
    }
}

#[cfg(test)]
#[path = "expr_tests.rs"]
mod tests;
