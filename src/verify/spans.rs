//! Answers written without a marker (the `last_math` and `last_number` extraction policies):
//! math spans and markdown bold in running text, the final sentence's answer, a number ending
//! the text, and numbers as people write them (`7,425,000`, `1 000`, `1000,99`, `.4`, `2/3`,
//! `√2`). Every scan is linear in the text, with each span's search bounded.

use super::extract::{last_number_in, MAX_ANSWER_CHARS};

/// How far a closing delimiter is looked for (a longer span is not an answer).
const MAX_SPAN_BYTES: usize = 8 * MAX_ANSWER_CHARS;

/// Every math span of `text` in order, as (byte offsets of its start and end, content): `$$…$$` and
/// `\[…\]` (may span lines), `$…$` and `\(…\)` (one line). An escaped `\$` is a dollar sign,
/// not a delimiter.
pub fn math_spans(text: &str) -> Vec<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    // per closing delimiter, how far a failed search has already looked
    let mut searched = [Searched::default(); 4];
    let mut i = 0;
    while i < b.len() {
        let (open, close, one_line): (usize, &str, bool) = match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'[') => (2, "\\]", false),
            b'\\' if b.get(i + 1) == Some(&b'(') => (2, "\\)", true),
            b'\\' => {
                i += 2; // an escaped character (`\$`) or a command's backslash
                continue;
            }
            b'$' if b.get(i + 1) == Some(&b'$') => (2, "$$", false),
            b'$' => (1, "$", true),
            _ => {
                i += 1;
                continue;
            }
        };
        let from = i + open;
        let kind = ["\\]", "\\)", "$$", "$"]
            .iter()
            .position(|c| *c == close)
            .unwrap_or(0);
        match find_close(text, from, close, one_line, &mut searched[kind]) {
            Some(end) => {
                out.push((i, end + close.len(), text[from..end].to_string()));
                i = end + close.len();
            }
            // an unclosed inline `$` is a dollar sign; skip past the opener
            None => i = from,
        }
    }
    out
}

/// What a failed search for one closing delimiter established: no closer before `to`, and
/// whether it stopped at a line break there.
#[derive(Clone, Copy, Default)]
struct Searched {
    to: usize,
    at_newline: bool,
}

/// The byte offset of `close` after `from` (skipping escaped characters; not past a newline
/// when `one_line`), within [`MAX_SPAN_BYTES`]. `seen` carries a failed search forward, so that
/// many unclosed openers cost one pass, not one pass each.
fn find_close(
    text: &str,
    from: usize,
    close: &str,
    one_line: bool,
    seen: &mut Searched,
) -> Option<usize> {
    let b = text.as_bytes();
    let limit = (from + MAX_SPAN_BYTES).min(b.len());
    if from < seen.to && seen.at_newline {
        return None; // the same line break stops this search too
    }
    let mut j = from.max(seen.to);
    let fail = |seen: &mut Searched, to: usize, at_newline: bool| {
        *seen = Searched { to, at_newline };
        None
    };
    while j < limit {
        if b[j..].starts_with(close.as_bytes()) && (close != "$" || b.get(j + 1) != Some(&b'$')) {
            return Some(j);
        }
        match b[j] {
            b'\n' if one_line => return fail(seen, j, true),
            b'\\' if !close.starts_with('\\') || b.get(j + 1) != close.as_bytes().get(1) => j += 2,
            _ => j += 1,
        }
    }
    fail(seen, limit, false)
}

/// Every markdown bold `**…**` on one line, as (byte offset of its end, content).
pub fn bold_spans(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        let mut at = offset;
        while let Some(s) = rest.find("**") {
            let after = &rest[s + 2..];
            let Some(e) = after.find("**") else { break };
            let inner = after[..e].trim();
            if !inner.is_empty() {
                out.push((at + s + 2 + e + 2, inner.to_string()));
            }
            let used = s + 2 + e + 2;
            at += used;
            rest = &rest[used..];
        }
        offset += line.len();
    }
    out
}

/// `text` without Minerva's closing "I hope it is correct." (and what follows it).
pub fn without_sign_off(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    lower
        .rfind("i hope it is correct")
        .map_or(text, |i| text[..i].trim_end())
}

/// In the final sentence of `text`: the last math span, or a number written after it ("There
/// are 12 sequences.", "The largest $n$ is 34.", "the probability is 2/3."). `None` when the
/// final sentence has neither.
pub fn final_sentence_answer(text: &str, decimal_comma: bool) -> Option<String> {
    let text = text.trim_end();
    let spans = math_spans(text);
    let start = sentence_start(text, &spans);
    let last_span = spans.iter().rev().find(|s| s.0 >= start);
    let after = last_span.map_or(start, |s| s.1);
    // plain text, not LaTeX outside delimiters (`\frac{10}{9}` is not the number 9)
    let plain = &text[after..];
    if !plain.contains(['\\', '{', '^']) {
        if let Some(n) = plain_number(plain, decimal_comma) {
            return Some(n);
        }
    }
    last_span.map(|s| s.2.clone())
}

/// Where the final sentence of `text` starts: after the last line break or `. ` (`! `, `? `)
/// outside math spans and before the text's own closing punctuation.
fn sentence_start(text: &str, spans: &[(usize, usize, String)]) -> usize {
    let b = text
        .trim_end_matches(['.', '!', '?', ' ', '"', ')'])
        .as_bytes();
    let (mut i, mut k) = (b.len(), spans.len());
    while i > 0 {
        i -= 1;
        while k > 0 && spans[k - 1].0 > i {
            k -= 1;
        }
        if k > 0 && spans[k - 1].1 > i {
            i = spans[k - 1].0; // a period inside `$…$` ends no sentence
            continue;
        }
        let ends = match b[i] {
            b'\n' => true,
            b'.' | b'!' | b'?' => b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace()),
            _ => false,
        };
        if ends {
            return i + 1;
        }
    }
    0
}

/// The last number of plain text `s` (`12`, `7,425,000`, `-0.5`) as [`written_number`] reads
/// it, or the word it is part of when that word is math (`2/3`, `√2`, `2π`, `100%`).
pub fn plain_number(s: &str, decimal_comma: bool) -> Option<String> {
    let n = last_number_in(s)?;
    let at = s.rfind(&n)?;
    let start = s[..at]
        .rfind(char::is_whitespace)
        .map_or(0, |i| i + s[i..].chars().next().map_or(1, char::len_utf8));
    let end = s[at..]
        .find(char::is_whitespace)
        .map_or(s.len(), |i| at + i);
    let word = s[start..end]
        .trim_start_matches(['(', '*'])
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '*']);
    let math = |c: char| c.is_ascii_digit() || "+-/^.,%√∛πθ°²³⁄×·−".contains(c);
    Some(if word != n && !word.is_empty() && word.chars().all(math) {
        word.to_string()
    } else {
        written_number(&n, decimal_comma)
    })
}

/// A number that ends the text's last non-empty line (after closing punctuation), as
/// [`written_number`] reads it: "… so we need 7,425,000" → `7425000`.
pub fn trailing_number(text: &str, decimal_comma: bool) -> Option<String> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let line = line.trim_end().trim_end_matches(['.', '!', ')', ' ']);
    let n = last_number_in(line)?;
    line.ends_with(n.as_str())
        .then(|| written_number(&n, decimal_comma))
}

/// A number as written → the plain form the answer parser reads. Both `,` and `.`: the later
/// one is the decimal point. Only `,`: thousands separators when every group after the first
/// has three digits and the first is not `0` (`7,425,000`), else, with `decimal_comma`, a
/// decimal comma (`1000,99`, `0,111`, `1,22`; without it, left as written: a list). Spaces
/// between digit groups go (`1 000`); a leading `.` gets its `0`.
pub fn written_number(s: &str, decimal_comma: bool) -> String {
    let s: String = s.chars().filter(|c| *c != ' ').collect();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.as_str()),
    };
    let (comma, dot) = (digits.rfind(','), digits.rfind('.'));
    let plain = match (comma, dot) {
        (Some(c), Some(d)) if c > d => digits.replace('.', "").replacen(',', ".", 1),
        (Some(_), Some(_)) => digits.replace(',', ""),
        (Some(_), None) => {
            let groups: Vec<&str> = digits.split(',').collect();
            let thousands = groups[0] != "0" && groups[1..].iter().all(|g| g.len() == 3);
            match (thousands, groups.len()) {
                (true, _) => digits.replace(',', ""),
                (false, 2) if decimal_comma => digits.replacen(',', ".", 1),
                _ => digits.to_string(), // `1,2,3`: a list, not a number
            }
        }
        _ => digits.to_string(),
    };
    let plain = match plain.strip_prefix('.') {
        Some(frac) => format!("0.{frac}"),
        None => plain,
    };
    format!("{sign}{plain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_each_kind() {
        let t = "Answer $ 9 $, or \\( x \\) and \\[\n 10 \n\\] then $$ 11 $$.";
        let got: Vec<String> = math_spans(t).into_iter().map(|(_, _, m)| m).collect();
        assert_eq!(got, [" 9 ", " x ", "\n 10 \n", " 11 "]);
        // a line break ends no display span but every inline one; `\$` is a dollar
        assert!(math_spans("Answer $ \n 9 \n $").is_empty());
        assert_eq!(
            math_spans("$ \\frac{1}{2} \\$ = \\frac{10}{9} $")[0].2,
            " \\frac{1}{2} \\$ = \\frac{10}{9} "
        );
        assert_eq!(math_spans("costs $5 and more").len(), 0);
        // an escaped multi-byte character inside a span (the search steps over it by bytes)
        assert_eq!(math_spans("$\\é = 1$ and \\(\\π\\)")[1].2, "\\π");
        assert!(math_spans("\\[ \\é \\ü").is_empty());
        assert_eq!(
            bold_spans("so **73** is it, **Final: 12**")[1].1,
            "Final: 12"
        );
    }

    #[test]
    fn numbers_as_written() {
        for (w, n) in [
            ("7,425,000", "7425000"),
            ("1 000", "1000"),
            ("1000,99", "1000.99"),
            ("1,22", "1.22"),
            ("0,111", "0.111"),
            ("1,000.99", "1000.99"),
            ("1.000,5", "1000.5"),
            (".4", "0.4"),
            ("-1,234.5", "-1234.5"),
        ] {
            assert_eq!(written_number(w, true), n, "{w}");
        }
        assert_eq!(
            trailing_number("we need\n 7,425,000.", true).as_deref(),
            Some("7425000")
        );
        assert_eq!(trailing_number("it is 5 or more", true), None);
        // without decimal commas, `1,22` is left as written (a list) and thousands still group
        assert_eq!(written_number("1,22", false), "1,22");
        assert_eq!(written_number("7,425,000", false), "7425000");
        assert_eq!(written_number("1.000,5", false), "1000.5");
    }

    /// Many unclosed openers stay linear: each search is bounded.
    #[test]
    fn unclosed_openers_are_bounded() {
        let t = "\\(".repeat(200_000);
        let start = std::time::Instant::now();
        assert!(math_spans(&t).is_empty());
        assert!(start.elapsed().as_millis() < 2_000);
    }
}
