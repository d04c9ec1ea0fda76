//! Matrices as answers: `\begin{pmatrix} a & b \\ c & d \end{pmatrix}` (also bmatrix,
//! matrix, vmatrix, array), in brackets or not, and sums and products of literal matrices
//! written out (`A + B`, `A B`, `A \cdot B`), whose entries become expressions.

use super::answer::{items, Answer, MAX_ITEMS};
use super::expr::Expr;

/// A matrix answer, or a sum/product of matrices evaluated entry by entry.
pub(super) fn matrix(s: &str, depth: usize) -> Option<Answer> {
    let s = s.trim();
    if !s.contains("\\begin{") {
        return None;
    }
    // `(\begin{pmatrix}…\end{pmatrix})`, `[\begin{array}…\end{array}]`
    if let (Some(o), Some(c)) = (s.chars().next(), s.chars().last()) {
        let bracketed = matches!((o, c), ('(', ')') | ('[', ']')) && s.len() >= 2;
        let inner = if bracketed {
            s[1..s.len() - 1].trim()
        } else {
            ""
        };
        if bracketed && inner.starts_with("\\begin{") {
            if let Some(m) = matrix(inner, depth) {
                return Some(m);
            }
        }
    }
    let mut terms: Vec<Vec<Vec<Answer>>> = Vec::new();
    let mut ops: Vec<char> = Vec::new();
    let mut rest = s;
    loop {
        let (m, after) = literal(rest, depth)?;
        terms.push(m);
        rest = after.trim_start();
        if rest.is_empty() {
            break;
        }
        let (op, len) = match rest.as_bytes()[0] {
            b'+' => ('+', 1),
            b'-' => ('-', 1),
            _ if rest.starts_with("\\cdot") => ('*', 5),
            _ if rest.starts_with("\\times") => ('*', 6),
            _ if rest.starts_with("\\begin{") => ('*', 0),
            _ => return None,
        };
        ops.push(op);
        rest = rest[len..].trim_start();
        if terms.len() > 8 {
            return None;
        }
    }
    if terms.len() == 1 {
        return terms.pop().map(Answer::Matrix);
    }
    // products first, then sums and differences, left to right
    let mut sums = vec![terms[0].clone()];
    let mut signs = Vec::new();
    for (op, m) in ops.iter().zip(terms.into_iter().skip(1)) {
        if *op == '*' {
            let last = sums.pop()?;
            sums.push(product(&last, &m)?);
        } else {
            signs.push(*op);
            sums.push(m);
        }
    }
    let mut acc = sums[0].clone();
    for (op, m) in signs.iter().zip(&sums[1..]) {
        acc = entrywise(&acc, m, *op)?;
    }
    Some(Answer::Matrix(acc))
}

/// One `\begin{env}…\end{env}` at the start of `s`, and the text after it.
fn literal(s: &str, depth: usize) -> Option<(Vec<Vec<Answer>>, &str)> {
    let rest = s.strip_prefix("\\begin{")?;
    let (env, body) = rest.split_once('}')?;
    let end_tag = format!("\\end{{{env}}}");
    let end = body.find(&end_tag)?;
    let (body, after) = (&body[..end], &body[end + end_tag.len()..]);
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
    (!rows.is_empty() && rows.len() <= MAX_ITEMS).then_some((rows, after))
}

fn entry(a: &Answer) -> Option<Expr> {
    match a {
        Answer::Expr(e) => Some(e.clone()),
        _ => None,
    }
}

fn entrywise(a: &[Vec<Answer>], b: &[Vec<Answer>], op: char) -> Option<Vec<Vec<Answer>>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .map(|(ra, rb)| {
            (ra.len() == rb.len()).then_some(())?;
            ra.iter()
                .zip(rb)
                .map(|(x, y)| {
                    let (x, y) = (Box::new(entry(x)?), Box::new(entry(y)?));
                    Some(Answer::Expr(if op == '+' {
                        Expr::Add(x, y)
                    } else {
                        Expr::Sub(x, y)
                    }))
                })
                .collect()
        })
        .collect()
}

fn product(a: &[Vec<Answer>], b: &[Vec<Answer>]) -> Option<Vec<Vec<Answer>>> {
    let inner = b.len();
    let cols = b.first()?.len();
    if a.iter().any(|r| r.len() != inner) || b.iter().any(|r| r.len() != cols) {
        return None;
    }
    a.iter()
        .map(|row| {
            (0..cols)
                .map(|j| {
                    let mut sum: Option<Expr> = None;
                    for (k, x) in row.iter().enumerate() {
                        let term = Expr::Mul(Box::new(entry(x)?), Box::new(entry(&b[k][j])?));
                        sum = Some(match sum {
                            None => term,
                            Some(s) => Expr::Add(Box::new(s), Box::new(term)),
                        });
                    }
                    sum.map(Answer::Expr)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::verify::{answers_match, Policy};

    #[test]
    fn matrices_in_brackets_sums_and_products() {
        let p = Policy::default();
        let m = |s: &str| format!("\\begin{{pmatrix}}{s}\\end{{pmatrix}}");
        assert!(answers_match(
            &m("1 & 2 \\\\ 3 & 4"),
            "\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]",
            &p
        ));
        assert!(answers_match(
            &m("6 & 8 \\\\ 10 & 12"),
            &format!("{} + {}", m("1 & 2 \\\\ 3 & 4"), m("5 & 6 \\\\ 7 & 8")),
            &p
        ));
        assert!(answers_match(
            &m("19 & 22 \\\\ 43 & 50"),
            &format!("{} {}", m("1 & 2 \\\\ 3 & 4"), m("5 & 6 \\\\ 7 & 8")),
            &p
        ));
        assert!(!answers_match(
            &m("19 & 22 \\\\ 43 & 50"),
            &format!("{} {}", m("5 & 6 \\\\ 7 & 8"), m("1 & 2 \\\\ 3 & 4")),
            &p
        ));
        assert!(!answers_match(
            &m("1 & 2"),
            &format!("{} + {}", m("1 & 2"), m("1 \\\\ 2")),
            &p
        ));
    }
}
