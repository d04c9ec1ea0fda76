//! Tokens of a normalised math answer: numbers (exact, with decimals, e-notation and repeating
//! decimals), variables (with subscripts), LaTeX commands and symbols.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// Longest digit string accepted in one number (bounds the size of literals).
pub const MAX_DIGITS: usize = 400;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A number literal and whether it was written with a decimal point (for the
    /// decimal-approximation policy: the number of digits after the point).
    Num(BigRational, Option<usize>),
    /// A variable: a letter, a Greek letter command, with any subscript (`x_1`, `a_{n}`).
    Var(String),
    /// A LaTeX command without its backslash (`frac`, `sqrt`, `pi`, ...).
    Cmd(String),
    /// A one-character symbol: `+ - * / ^ ( ) [ ] { } | ! % , = < > & _`.
    Sym(char),
    /// `\le`/`\ge` (`<=`, `>=`) and `\ne`.
    Le,
    Ge,
    Ne,
}

/// Commands that stand for a symbol.
fn command_symbol(name: &str) -> Option<Tok> {
    Some(match name {
        "cdot" | "times" | "ast" => Tok::Sym('*'),
        "div" => Tok::Sym('/'),
        "le" | "leq" | "leqslant" => Tok::Le,
        "ge" | "geq" | "geqslant" => Tok::Ge,
        "ne" | "neq" => Tok::Ne,
        "lt" => Tok::Sym('<'),
        "gt" => Tok::Sym('>'),
        "lbrace" => Tok::Sym('('),
        "rbrace" => Tok::Sym(')'),
        "vert" | "lvert" | "rvert" | "mid" => Tok::Sym('|'),
        "langle" => Tok::Sym('('),
        "rangle" => Tok::Sym(')'),
        _ => return None,
    })
}

/// Tokenise a normalised answer; `None` for characters we cannot read.
pub fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let (tok, next) = number(&chars, i)?;
            out.push(tok);
            i = next;
        } else if c == '\\' {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j == start {
                // `\{`, `\}`, `\|`, `\%`, `\$`: one-character commands.
                let &d = chars.get(start)?;
                match d {
                    '{' => out.push(Tok::Sym('(')),
                    '}' => out.push(Tok::Sym(')')),
                    '|' => out.push(Tok::Sym('|')),
                    '%' => out.push(Tok::Sym('%')),
                    '$' | ',' | ';' | ':' | '!' | ' ' => {}
                    _ => return None,
                }
                i = start + 1;
                continue;
            }
            let name: String = chars[start..j].iter().collect();
            i = j;
            if let Some(t) = command_symbol(&name) {
                out.push(t);
            } else if is_greek(&name) {
                let (v, next) = subscript(&chars, i, name);
                out.push(Tok::Var(v));
                i = next;
            } else {
                out.push(Tok::Cmd(name));
            }
        } else if c.is_alphabetic() {
            let (v, next) = subscript(&chars, i + 1, c.to_string());
            out.push(Tok::Var(v));
            i = next;
        } else if c == '<' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Le);
            i += 2;
        } else if c == '>' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Ge);
            i += 2;
        } else if c == '!' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Ne);
            i += 2;
        } else if c == '*' && chars.get(i + 1) == Some(&'*') {
            out.push(Tok::Sym('^'));
            i += 2;
        } else if "+-*/^()[]{}|!%,=<>&_'".contains(c) {
            if c != '\'' {
                out.push(Tok::Sym(c));
            }
            i += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn is_greek(name: &str) -> bool {
    matches!(
        name,
        "alpha"
            | "beta"
            | "gamma"
            | "delta"
            | "epsilon"
            | "varepsilon"
            | "zeta"
            | "eta"
            | "theta"
            | "vartheta"
            | "iota"
            | "kappa"
            | "lambda"
            | "mu"
            | "nu"
            | "xi"
            | "rho"
            | "sigma"
            | "tau"
            | "upsilon"
            | "phi"
            | "varphi"
            | "chi"
            | "psi"
            | "omega"
            | "Gamma"
            | "Delta"
            | "Theta"
            | "Lambda"
            | "Xi"
            | "Sigma"
            | "Phi"
            | "Psi"
            | "Omega"
    )
}

/// A variable's optional subscript (`_1`, `_{n+1}`) appended to its name.
fn subscript(chars: &[char], mut i: usize, mut name: String) -> (String, usize) {
    if chars.get(i) != Some(&'_') {
        return (name, i);
    }
    name.push('_');
    i += 1;
    if chars.get(i) == Some(&'{') {
        let mut depth = 0;
        while i < chars.len() {
            let c = chars[i];
            name.push(c);
            i += 1;
            if c == '{' {
                depth += 1;
            } else if c == '}' {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
        }
    } else if let Some(&c) = chars.get(i) {
        name.push(c);
        i += 1;
    }
    (name, i)
}

fn digits_value(d: &str) -> BigInt {
    d.parse().unwrap_or_else(|_| BigInt::zero())
}

/// A number starting at `i`: `12`, `3.5`, `.25`, `1.5e-3`, `0.\overline{3}`, `0.1\overline{6}`.
fn number(chars: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let mut int_part = String::new();
    while i < chars.len() && chars[i].is_ascii_digit() {
        int_part.push(chars[i]);
        i += 1;
    }
    let mut frac = String::new();
    let mut has_point = false;
    if chars.get(i) == Some(&'.')
        && chars
            .get(i + 1)
            .is_some_and(|c| c.is_ascii_digit() || *c == '\\')
    {
        has_point = true;
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            frac.push(chars[i]);
            i += 1;
        }
    }
    if int_part.len() + frac.len() > MAX_DIGITS {
        return None;
    }
    let ten = BigInt::from(10);
    let scale = ten.pow(frac.len() as u32);
    let mut value = BigRational::new(digits_value(&format!("{int_part}{frac}")), scale.clone());
    // Repeating decimal: 0.1\overline{6} = 0.1 + 0.0666...
    let rest: String = chars[i..chars.len().min(i + 10)].iter().collect();
    if has_point && rest.starts_with("\\overline{") {
        let mut j = i + "\\overline{".len();
        let mut rep = String::new();
        while j < chars.len() && chars[j].is_ascii_digit() {
            rep.push(chars[j]);
            j += 1;
        }
        if chars.get(j) == Some(&'}') && !rep.is_empty() && rep.len() <= 50 {
            let period = ten.pow(rep.len() as u32) - BigInt::one();
            value += BigRational::new(digits_value(&rep), period * scale);
            return Some((Tok::Num(value, None), j + 1));
        }
    }
    // e-notation: 1.5e3, 2E-4 (the exponent needs digits, so `2e` stays 2·e).
    if matches!(chars.get(i), Some('e') | Some('E')) {
        let mut j = i + 1;
        let neg = match chars.get(j) {
            Some('-') => {
                j += 1;
                true
            }
            Some('+') => {
                j += 1;
                false
            }
            _ => false,
        };
        let mut exp = String::new();
        while j < chars.len() && chars[j].is_ascii_digit() {
            exp.push(chars[j]);
            j += 1;
        }
        if !exp.is_empty() && exp.len() <= 4 && !chars.get(j).is_some_and(|c| c.is_alphabetic()) {
            let e: u32 = exp.parse().ok()?;
            let p = BigRational::from_integer(ten.pow(e));
            value = if neg { value / p } else { value * p };
            return Some((Tok::Num(value, None), j));
        }
    }
    let decimals = has_point.then_some(frac.len());
    Some((Tok::Num(value, decimals), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> BigRational {
        match tokenize(s).unwrap().as_slice() {
            [Tok::Num(q, _)] => q.clone(),
            t => panic!("{s}: {t:?}"),
        }
    }

    #[test]
    fn numbers() {
        let q = |n: i64, d: i64| BigRational::new(n.into(), d.into());
        assert_eq!(num("12.50"), q(25, 2));
        assert_eq!(num(".35625"), q(57, 160));
        assert_eq!(num("1.5e-3"), q(3, 2000));
        assert_eq!(num("2E4"), q(20000, 1));
        assert_eq!(num("0.\\overline{3}"), q(1, 3));
        assert_eq!(num("0.1\\overline{6}"), q(1, 6));
    }

    #[test]
    fn variables_and_commands() {
        let t = tokenize("x_1 + \\alpha_{n} \\cdot \\sqrt{2}").unwrap();
        assert_eq!(t[0], Tok::Var("x_1".into()));
        assert_eq!(t[2], Tok::Var("alpha_{n}".into()));
        assert_eq!(t[3], Tok::Sym('*'));
        assert_eq!(t[4], Tok::Cmd("sqrt".into()));
        assert!(tokenize("2 # 3").is_none());
    }
}
