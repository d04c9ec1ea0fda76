//! The structure of an answer: a multiple-choice letter, text, an expression, an equation, an
//! ordered tuple or interval, an unordered set or comma list, a union of intervals, or a
//! matrix. Parsed from a normalised string; every level is capped in size and depth.

use super::expr::{self, Expr};
use super::lexer::tokenize;

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
    // `{1,3}`: braces without a backslash only group
    if s.starts_with('{') && super::normalize::matching_brace(s, 0) == Some(s.len()) {
        return parse_at(&s[1..s.len() - 1], depth + 1);
    }
    if let Some(c) = choice(s) {
        return Some(Answer::Choice(c));
    }
    if let Some(m) = super::matrix::matrix(s, depth) {
        return Some(m);
    }
    let union = split_top(s, "\\cup");
    if union.len() > 1 {
        return items(&union, depth).map(Answer::Union);
    }
    // `1 and 2`, `(11,7) or (7,11)`, `21, 16 or 11`: answers joined by words are a list
    let joined = split_words(s, &["and", "or"]);
    if joined.len() > 1 && !joined.iter().any(|w| has_word(w)) {
        let mut out = Vec::new();
        for a in items(&joined, depth)? {
            match a {
                Answer::List(v) => out.extend(v),
                a => out.push(a),
            }
        }
        return Some(Answer::List(out));
    }
    if let Some(groups) = semicolons(s, depth) {
        return Some(groups);
    }
    let parts = split_top(s, ",");
    if parts.len() > 1 {
        return items(&parts, depth).map(Answer::List);
    }
    // `x = \frac13 \approx 0.33`: the exact value; `x \approx 11`: the approximation
    let approx = split_top(s, "\\approx");
    if approx.len() > 1 {
        return match parse_at(approx[0], depth + 1) {
            Some(Answer::Expr(e)) if !super::relation::is_name(&e) => Some(Answer::Expr(e)),
            Some(eq @ Answer::Equation(..)) => Some(eq),
            _ => parse_at(approx[1], depth + 1),
        };
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
        if let Some(rel) = super::relation::relation(toks) {
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

/// `-12;-11;-10` is the list `-12, -11, -10`; `p=5,q=2;p=7,q=2` lists solutions of named
/// values, each the tuple of its values: `(5,2), (7,2)`.
fn semicolons(s: &str, depth: usize) -> Option<Answer> {
    let groups = split_top(s, ";");
    if groups.len() < 2 {
        return None;
    }
    if !groups.iter().any(|g| split_top(g, ",").len() > 1) {
        return items(&groups, depth).map(Answer::List);
    }
    let tuples = groups
        .iter()
        .map(|g| {
            let values: Vec<&str> = split_top(g, ",")
                .into_iter()
                .map(|v| v.rsplit_once('=').map_or(v, |(_, value)| value))
                .collect();
            Some(Answer::Seq {
                open: '(',
                close: ')',
                items: items(&values, depth)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Answer::List(tuples))
}

/// Split `s` at top-level occurrences of the words `words` (not inside brackets, not part of
/// a longer word or a command).
fn split_words<'a>(s: &'a str, words: &[&str]) -> Vec<&'a str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let (mut depth, mut start, mut i) = (0i32, 0, 0);
    let letter = |j: Option<&u8>| j.is_some_and(|c| c.is_ascii_alphabetic() || *c == b'\\');
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        let at_word = if depth == 0 && !letter(i.checked_sub(1).and_then(|j| b.get(j))) {
            words
                .iter()
                .find(|w| b[i..].starts_with(w.as_bytes()) && !letter(b.get(i + w.len())))
        } else {
            None
        };
        if let Some(w) = at_word {
            parts.push(&s[start..i]);
            i += w.len();
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

pub(super) fn items(parts: &[&str], depth: usize) -> Option<Vec<Answer>> {
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
    let mut parts = split_top(inner, ",");
    if parts.len() == 1 {
        parts = split_top(inner, ";"); // `(0;-2;6)`
    }
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
