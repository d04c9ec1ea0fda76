//! The structure of an answer: a multiple-choice letter, text, an expression, an equation, an
//! ordered tuple or interval, an unordered set or comma list, a union of intervals, or a
//! matrix. Parsed from a normalised string; every level is capped in size and depth.

use super::expr::{self, Expr};
use super::lexer::{tokenize, Tok};

/// Most elements in a list, tuple, set or matrix.
pub const MAX_ITEMS: usize = 64;
const MAX_NESTING: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A multiple-choice letter, upper case.
    Choice(char),
    /// Words, lower case with single spaces.
    Text(String),
    Expr(Expr),
    /// `lhs = rhs` (a chain `a = b = c` keeps its first and last parts).
    Equation(Expr, Expr),
    /// A bracketed sequence: `(1, 2)`, `[0, 1)`, `\{1, 2\}` (open `{` = a set).
    Seq {
        open: char,
        close: char,
        items: Vec<Answer>,
    },
    /// A bare comma list `1, 2` or `3 \pm \sqrt{2}`.
    List(Vec<Answer>),
    /// `A \cup B \cup …`.
    Union(Vec<Answer>),
    Matrix(Vec<Vec<Answer>>),
}

/// Parse a normalised answer.
pub fn parse_answer(s: &str) -> Option<Answer> {
    parse_at(s, 0)
}

fn parse_at(s: &str, depth: usize) -> Option<Answer> {
    let s = s.trim();
    if s.is_empty() || depth > MAX_NESTING {
        return None;
    }
    if let Some(c) = choice(s) {
        return Some(Answer::Choice(c));
    }
    if let Some(m) = matrix(s, depth) {
        return Some(m);
    }
    let union = split_top(s, "\\cup");
    if union.len() > 1 {
        return items(&union, depth).map(Answer::Union);
    }
    let parts = split_top(s, ",");
    if parts.len() > 1 {
        return items(&parts, depth).map(Answer::List);
    }
    if let Some(pm) = plus_minus(s, depth) {
        return Some(pm);
    }
    if let Some(seq) = bracketed(s, depth) {
        return Some(seq);
    }
    if let Some(rest) = strip_membership(s) {
        return parse_at(rest, depth + 1);
    }
    let toks = tokenize(s);
    if let Some(toks) = &toks {
        if let Some(rel) = relation(toks) {
            return Some(rel);
        }
    }
    let text = Answer::Text(text_key(s));
    if has_word(s) {
        return Some(text);
    }
    match toks.and_then(|t| expr::parse(&t)) {
        Some(e) => Some(Answer::Expr(e)),
        None => Some(text),
    }
}

fn items(parts: &[&str], depth: usize) -> Option<Vec<Answer>> {
    if parts.len() > MAX_ITEMS {
        return None;
    }
    parts.iter().map(|p| parse_at(p, depth + 1)).collect()
}

/// Text compared case-insensitively: lower case, alphanumerics and single spaces.
pub fn text_key(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A run of three or more letters that is not a LaTeX command: the answer is words.
fn has_word(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_alphabetic() {
            i += 1;
        }
        if i - start >= 3 {
            return true;
        }
        if i == start {
            i += 1;
        }
    }
    false
}

/// `C`, `(C)`, `(c) 12`, `C) 12`.
fn choice(s: &str) -> Option<char> {
    let b = s.as_bytes();
    let letter = |c: u8| (c as char).to_ascii_uppercase();
    match b {
        [c] if (b'A'..=b'E').contains(c) => Some(*c as char),
        [b'(', c, b')', ..]
            if c.is_ascii_alphabetic() && (b'A'..=b'E').contains(&(letter(*c) as u8)) =>
        {
            Some(letter(*c))
        }
        [c, b')', ..] if (b'A'..=b'E').contains(c) => Some(*c as char),
        _ => None,
    }
}

/// Split `s` at top-level occurrences of `sep` (outside any brackets).
pub fn split_top<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' && i + 1 < bytes.len() && (bytes[i + 1] == b'{' || bytes[i + 1] == b'}') {
            depth += if bytes[i + 1] == b'{' { 1 } else { -1 };
            i += 2;
            continue;
        }
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        if depth == 0 && bytes[i..].starts_with(sep.as_bytes()) {
            let after = &s[i + sep.len()..];
            let command_prefix =
                sep.starts_with('\\') && after.starts_with(|c: char| c.is_ascii_alphabetic());
            if !command_prefix {
                parts.push(&s[start..i]);
                i += sep.len();
                start = i;
                continue;
            }
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

/// `a \pm b` (one top-level ±) → the list `a + b, a - b`.
fn plus_minus(s: &str, depth: usize) -> Option<Answer> {
    let parts = split_top(s, "\\pm");
    if parts.len() != 2 {
        return None;
    }
    let (a, b) = (parts[0].trim(), parts[1].trim());
    let lead = if a.is_empty() {
        String::new()
    } else {
        format!("{a} ")
    };
    let plus = parse_at(&format!("{lead}+ {b}"), depth + 1)?;
    let minus = parse_at(&format!("{lead}- ({b})"), depth + 1)?;
    Some(Answer::List(vec![plus, minus]))
}

/// `(…)`, `[…)`, `\{…\}`, `\langle…\rangle` around the whole answer.
fn bracketed(s: &str, depth: usize) -> Option<Answer> {
    let (open, body) = if let Some(r) = s.strip_prefix("\\{") {
        ('{', r)
    } else if let Some(r) = s.strip_prefix("\\langle") {
        ('(', r)
    } else {
        let c = s.chars().next()?;
        if c != '(' && c != '[' {
            return None;
        }
        (c, &s[1..])
    };
    let (close, inner) = if let Some(r) = body.strip_suffix("\\}") {
        ('}', r)
    } else if let Some(r) = body.strip_suffix("\\rangle") {
        (')', r)
    } else {
        let c = body.chars().last()?;
        if c != ')' && c != ']' {
            return None;
        }
        (c, &body[..body.len() - 1])
    };
    // The closer must match the opener: `(1)(2)` is a product, not a tuple.
    if unbalanced(inner) {
        return None;
    }
    let parts = split_top(inner, ",");
    if open == '{' {
        if inner.trim().is_empty() {
            return Some(Answer::Seq {
                open,
                close,
                items: vec![],
            });
        }
    } else if parts.len() < 2 {
        return None; // plain parentheses: an expression
    }
    Some(Answer::Seq {
        open,
        close,
        items: items(&parts, depth)?,
    })
}

fn unbalanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    depth != 0
}

/// `x \in [1, 2)` → `[1, 2)`.
fn strip_membership(s: &str) -> Option<&str> {
    let i = s.find("\\in")?;
    let after = &s[i + 3..];
    let lhs = s[..i].trim();
    (!after.starts_with(|c: char| c.is_ascii_alphabetic())
        && lhs.chars().all(|c| c.is_alphanumeric() || c == '_'))
    .then_some(after)
}

/// `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also bmatrix, matrix, vmatrix, array).
fn matrix(s: &str, depth: usize) -> Option<Answer> {
    let rest = s.strip_prefix("\\begin{")?;
    let (env, body) = rest.split_once('}')?;
    let body = body.strip_suffix(&format!("\\end{{{env}}}"))?;
    // `array` has a column spec first: {cc}.
    let body = if env == "array" {
        let b = body.trim_start();
        let end = super::normalize::matching_brace(b, 0)?;
        &b[end..]
    } else {
        body
    };
    let mut rows = Vec::new();
    for row in body.split("\\\\") {
        if row.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = row.split('&').collect();
        rows.push(items(&cells, depth)?);
    }
    (!rows.is_empty() && rows.len() <= MAX_ITEMS).then_some(Answer::Matrix(rows))
}

/// An equation or an inequality on one variable (as an interval).
fn relation(toks: &[Tok]) -> Option<Answer> {
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

/// `x > a`, `a \le x`, `a < x \le b` as intervals.
fn inequality(parts: &[Expr], ops: &[&Tok]) -> Option<Answer> {
    let is_var = |e: &Expr| matches!(e, Expr::Var(_));
    let inf = |neg: bool| {
        if neg {
            Expr::Neg(Box::new(Expr::Inf))
        } else {
            Expr::Inf
        }
    };
    // Normalise each comparison to "less than" direction: (strict, a, b) meaning a < b.
    let less = |t: &Tok| match t {
        Tok::Sym('<') => Some((true, false)),
        Tok::Le => Some((false, false)),
        Tok::Sym('>') => Some((true, true)),
        Tok::Ge => Some((false, true)),
        _ => None,
    };
    let interval = |lo: Expr, lo_open: bool, hi: Expr, hi_open: bool| Answer::Seq {
        open: if lo_open { '(' } else { '[' },
        close: if hi_open { ')' } else { ']' },
        items: vec![Answer::Expr(lo), Answer::Expr(hi)],
    };
    match (parts, ops) {
        ([a, b], [op]) => {
            let (strict, flipped) = less(op)?;
            // var < b ; a < var ; var > b ; a > var
            match (is_var(a), is_var(b), flipped) {
                (true, false, false) => Some(interval(inf(true), true, b.clone(), strict)),
                (true, false, true) => Some(interval(b.clone(), strict, inf(false), true)),
                (false, true, false) => Some(interval(a.clone(), strict, inf(false), true)),
                (false, true, true) => Some(interval(inf(true), true, a.clone(), strict)),
                _ => None,
            }
        }
        ([a, x, c], [op1, op2]) if is_var(x) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures() {
        assert_eq!(parse_answer("(C)"), Some(Answer::Choice('C')));
        assert!(matches!(
            parse_answer("(1, 2]"),
            Some(Answer::Seq {
                open: '(',
                close: ']',
                ..
            })
        ));
        assert!(matches!(
            parse_answer("\\{1, 2\\}"),
            Some(Answer::Seq { open: '{', .. })
        ));
        assert!(matches!(parse_answer("1, 2, 3"), Some(Answer::List(v)) if v.len() == 3));
        assert!(
            matches!(parse_answer("(0,9) \\cup (9,36)"), Some(Answer::Union(v)) if v.len() == 2)
        );
        assert!(matches!(parse_answer("3 \\pm 2\\sqrt{2}"), Some(Answer::List(v)) if v.len() == 2));
        assert!(matches!(
            parse_answer("y = 2x + 3"),
            Some(Answer::Equation(..))
        ));
        assert!(matches!(
            parse_answer("x \\ge 3"),
            Some(Answer::Seq {
                open: '[',
                close: ')',
                ..
            })
        ));
        assert!(matches!(parse_answer("Evelyn"), Some(Answer::Text(t)) if t == "evelyn"));
        assert!(matches!(parse_answer("(2)(3)"), Some(Answer::Expr(_))));
        assert!(matches!(
            parse_answer("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"),
            Some(Answer::Matrix(r)) if r.len() == 2 && r[0].len() == 2
        ));
    }
}
