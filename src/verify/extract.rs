//! Finding the final answer in a model completion.
//!
//! Markers, all searched: `\boxed{…}` / `\fbox{…}` (brace-matched, also `\boxed 5`), GSM8K's
//! `#### X`, Minerva's "Final Answer: The final answer is X. I hope it is correct.", and
//! "the answer is X" / "Answer: X". The marker that appears **last** wins, so a
//! self-correction ("\boxed{40} … wait … \boxed{45}") is graded on its final answer; boxes
//! separated only by commas, "and" or spaces are one list answer ("\boxed{2}, \boxed{3}").
//! With `<think>…</think>` the text after the thinking is searched first. The last number is
//! the answer only when the caller asks for it (GSM8K-type problems).

use serde::{Deserialize, Serialize};

use super::boxes::{boxed, is_separator};
use super::spans::{
    bold_spans, final_sentence_answer, math_spans, plain_number, trailing_number, without_sign_off,
    written_number,
};

/// Longest answer we accept (a longer one is not an answer, and bounds the grader's work).
pub const MAX_ANSWER_CHARS: usize = 1_000;

/// Which marker an answer was found by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    Boxed,
    Hashes,
    FinalAnswer,
    AnswerIs,
    /// The last `$…$` / `\(…\)` / `\[…\]` / `$$…$$` span (`last_math`).
    LastMath,
    /// The last markdown bold `**…**` (`last_math`).
    Bold,
    LastNumber,
}

/// Where the verifier looks for a completion's answer when no marker (`\boxed{}`, `####`,
/// "the answer is", "Final Answer:") is found. Markers always come first.
///
/// The disputed case: "The total is $12$ apples, or $\frac{12}{1}$ per box. But I'm not
/// sure." — `anchored` finds no answer (wrong), `last_math` grades `\frac{12}{1}`,
/// `last_number` grades `1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extraction {
    /// Markers only: the default for RL rewards on boxed-answer datasets (MATH, AIME, …),
    /// where a fallback would reward answers the model never committed to.
    Anchored,
    /// Then the last math span (`$…$`, `\(…\)` on one line; `$$…$$`, `\[…\]`), then the last
    /// markdown bold, then a number ending the last line: lenient grading of free-form text
    /// (`mgrpo verify --input`'s default).
    LastMath,
    /// Then the last number in the text (thousands separators and decimal commas read as
    /// written): GSM8K's default, whose answers are plain numbers.
    LastNumber,
}

impl std::str::FromStr for Extraction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "anchored" => Ok(Self::Anchored),
            "last_math" => Ok(Self::LastMath),
            "last_number" => Ok(Self::LastNumber),
            _ => Err(format!(
                "expected anchored, last_math or last_number, got `{s}`"
            )),
        }
    }
}

/// An extracted answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub answer: String,
    pub marker: Marker,
}

/// The final answer of `text`: its last marker, else what `extraction` allows.
pub fn extract_answer(text: &str, extraction: Extraction) -> Option<Extracted> {
    extract_answer_with(text, extraction, true)
}

/// [`extract_answer`], reading a comma before a group of other than three digits (`1,22`,
/// `0,111`) as a decimal comma or not (`decimal_comma`, the policy of that name).
pub fn extract_answer_with(
    text: &str,
    extraction: Extraction,
    decimal_comma: bool,
) -> Option<Extracted> {
    // a chat template's turn marker ends the answer (a model that writes the next turn itself)
    let text = STOP_TOKENS
        .iter()
        .filter_map(|t| text.find(t))
        .min()
        .map_or(text, |i| &text[..i]);
    // after the thinking, if there is any
    let tail = text
        .rfind("</think>")
        .map_or(text, |i| &text[i + "</think>".len()..]);
    let whole = || {
        (tail.len() < text.len())
            .then(|| extract_marked(text, decimal_comma))
            .flatten()
    };
    if let Some(a) = extract_marked(tail, decimal_comma).or_else(whole) {
        return Some(a);
    }
    match extraction {
        Extraction::Anchored => None,
        Extraction::LastNumber => last_number_in(tail)
            .and_then(|a| accepted(written_number(&a, decimal_comma), Marker::LastNumber)),
        Extraction::LastMath => {
            let tail = without_sign_off(tail);
            if let Some(a) = final_sentence_answer(tail, decimal_comma) {
                return accepted(a, Marker::LastMath);
            }
            let math = math_spans(tail)
                .pop()
                .map(|(_, end, m)| (end, m, Marker::LastMath));
            let bold = bold_spans(tail)
                .pop()
                .map(|(end, b)| (end, b, Marker::Bold));
            match [math, bold].into_iter().flatten().max_by_key(|c| c.0) {
                Some((_, answer, marker)) => accepted(answer, marker),
                // a bare answer (`\frac{10}{9}`, `28 %`): a short text of one line is all answer
                None if bare(tail) => accepted(tail.to_string(), Marker::LastMath),
                None => trailing_number(tail, decimal_comma)
                    .and_then(|n| accepted(n, Marker::LastNumber)),
            }
        }
    }
}

/// Chat-template markers of a new turn or the end of text.
const STOP_TOKENS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
];

/// Whether `text` is a bare answer: one line of at most 40 characters that is math (a digit
/// or a command) or a single word — "no idea" is not an answer.
fn bare(text: &str) -> bool {
    let t = text.trim();
    let math = t.contains(|c: char| c.is_ascii_digit() || c == '\\');
    !t.is_empty()
        && !t.contains('\n')
        && t.chars().count() <= 40
        && (math || t.split_whitespace().count() == 1)
}

/// Whether `text` has a non-empty `\boxed{…}` answer (the format reward).
pub fn has_boxed(text: &str) -> bool {
    boxed(text).is_some_and(|(_, a)| !a.trim().is_empty())
}

fn extract_marked(text: &str, decimal_comma: bool) -> Option<Extracted> {
    let lower = text.to_ascii_lowercase();
    let candidates = [
        boxed(text).map(|(p, a)| (p, a, Marker::Boxed)),
        hashes(text).map(|(p, a)| (p, a, Marker::Hashes)),
        after_phrase(
            text,
            &lower,
            &["final answer is"],
            Marker::FinalAnswer,
            decimal_comma,
        ),
        after_phrase(
            text,
            &lower,
            &["the answer is", "answer:", "answer is:"],
            Marker::AnswerIs,
            decimal_comma,
        ),
    ];
    let (_, answer, marker) = candidates.into_iter().flatten().max_by_key(|c| c.0)?;
    accepted(answer, marker)
}

/// `answer`, trimmed, when it is one: non-empty and at most [`MAX_ANSWER_CHARS`].
fn accepted(answer: String, marker: Marker) -> Option<Extracted> {
    let answer = answer.trim().to_string();
    (!answer.is_empty() && answer.chars().count() <= MAX_ANSWER_CHARS)
        .then_some(Extracted { answer, marker })
}

/// `#### X` (GSM8K): the rest of that line.
fn hashes(text: &str) -> Option<(usize, String)> {
    let i = text.rfind("####")?;
    let line = text[i + 4..].lines().next().unwrap_or("");
    Some((i, line.trim().to_string()))
}

/// The text after the last case-insensitive occurrence of one of `phrases`, to the end of its
/// sentence (Minerva's "I hope it is correct" trimmed).
/// `lower` is `text` in ASCII lower case (same byte offsets).
fn after_phrase(
    text: &str,
    lower: &str,
    phrases: &[&str],
    marker: Marker,
    decimal_comma: bool,
) -> Option<(usize, String, Marker)> {
    let (pos, len) = phrases
        .iter()
        .filter_map(|p| {
            lower
                .rmatch_indices(p)
                .find(|(i, _)| !p.starts_with("answer") || starts_line(&lower[..*i]))
                .map(|(i, _)| (i, p.len()))
        })
        .max()?;
    let rest = &text[pos + len..];
    let rest = rest
        .trim_start_matches([':', ' ', '*'])
        .replacen("**", "", 1);
    let mut answer = sentence(&rest);
    if let Some(i) = answer.to_ascii_lowercase().find("i hope it is correct") {
        answer.truncate(i);
    }
    let answer = last_math(
        answer.trim().trim_end_matches(['.', ',']).trim(),
        decimal_comma,
    );
    Some((pos, answer, marker))
}

/// In prose with inline math ("thus $12+8=20$ apples"), the last `$…$` is the answer, or a
/// number written after it ("The largest $n$ is 34"); spans joined only by "and", "or" and
/// commas are one list (`$12$ and $13$`). Prose without math ("Jane started 3 hours ago"):
/// its last number.
fn last_math(s: &str, decimal_comma: bool) -> String {
    let pieces: Vec<&str> = s.split('$').collect();
    let words = |p: &str| {
        p.split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() >= 3)
            .count()
    };
    let prose: usize = pieces.iter().step_by(2).map(|p| words(p)).sum();
    if pieces.len() >= 3 && pieces.len() % 2 == 1 && prose > 0 {
        let last = pieces[pieces.len() - 1];
        if !last.contains('\\') {
            if let Some(n) = plain_number(last, decimal_comma) {
                return n;
            }
        }
        let inner = &pieces[1..pieces.len() - 1];
        if inner.iter().skip(1).step_by(2).all(|p| is_separator(p)) {
            let spans: Vec<&str> = inner.iter().step_by(2).copied().collect();
            return spans.join(", ");
        }
        return pieces[pieces.len() - 2].to_string();
    }
    if pieces.len() == 1 && prose >= 2 && !s.contains('\\') {
        if let Some(n) = plain_number(s, decimal_comma) {
            return n;
        }
    }
    s.to_string()
}

/// `Answer:` counts only as a heading: at the start of a line (after markdown `*`, `#`, `>`),
/// or after "final" / "the" ("check our answer: …" is not an answer).
fn starts_line(before: &str) -> bool {
    let line = before.rsplit('\n').next().unwrap_or("");
    let line = line
        .trim_end_matches([' ', '*', '#', '>', '_'])
        .trim_start_matches([' ', '*', '#', '>', '_']);
    line.is_empty() || line.ends_with("final") || line.ends_with("the")
}

/// Text up to the end of the sentence: a newline, or a period followed by a space or the end,
/// outside `$…$` and braces. A decimal point (`3.5`) does not end a sentence.
fn sentence(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let (mut in_math, mut depth) = (false, 0i32);
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '$' => in_math = !in_math,
            '{' => depth += 1,
            '}' => depth -= 1,
            '\n' if !in_math || out.len() > MAX_ANSWER_CHARS => break,
            '.' if !in_math && depth <= 0 => {
                let next = chars.get(i + 1);
                if next.is_none_or(|n| n.is_whitespace()) {
                    break;
                }
            }
            _ => {}
        }
        out.push(c);
        if out.len() > 4 * MAX_ANSWER_CHARS {
            break;
        }
    }
    out
}

/// The last number in the text as written (`-1,234.5`, `1 000`, `1000,99`, `.4`).
pub(super) fn last_number_in(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = chars.len();
    while i > 0 {
        i -= 1;
        if chars[i].is_ascii_digit() {
            let end = i + 1;
            let mut start = i;
            while start > 0 {
                let c = chars[start - 1];
                let digit_before = start >= 2 && chars[start - 2].is_ascii_digit();
                // a space separates thousands only before a group of exactly three digits
                let space_group = c == ' '
                    && digit_before
                    && chars[start..]
                        .iter()
                        .take_while(|c| c.is_ascii_digit())
                        .count()
                        == 3;
                if c.is_ascii_digit() || ((c == ',' || c == '.') && digit_before) || space_group {
                    start -= 1;
                } else {
                    break;
                }
            }
            if start > 0 && chars[start - 1] == '.' {
                start -= 1; // `.4`
            }
            if start > 0 && chars[start - 1].is_ascii_alphabetic() {
                i = start; // part of a name (`K2`, `x1`), not a number
                continue;
            }
            if start > 0 && chars[start - 1] == '-' {
                start -= 1;
            }
            return Some(chars[start..end].iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(s: &str) -> String {
        extract_answer(s, Extraction::Anchored)
            .map(|e| e.answer)
            .unwrap_or_default()
    }

    #[test]
    fn markers_and_last_wins() {
        assert_eq!(ans("so $\\boxed{\\frac{1}{2}}$."), "\\frac{1}{2}");
        assert_eq!(ans("\\boxed{40}. Wait, that is wrong: \\boxed{45}"), "45");
        assert_eq!(ans("so \\boxed{2}, \\boxed{3}"), "2, 3");
        assert_eq!(ans("x \\boxed 5 done"), "5");
        assert_eq!(ans("5+7=12\n#### 1,200"), "1,200");
        assert_eq!(
            ans("Final Answer: The final answer is $3.5$. I hope it is correct."),
            "$3.5$"
        );
        assert_eq!(ans("So the answer is 3.5. Done"), "3.5");
        assert_eq!(
            ans("\\boxed{44}. We may check our answer: 17*44 = 748"),
            "44"
        );
        assert_eq!(ans("**Answer:** 12"), "12");
        assert_eq!(ans("\\boxed{4}... no, the answer is 6."), "6");
        assert_eq!(
            ans("<think>\\boxed{1}</think> The answer is \\boxed{2}"),
            "2"
        );
        assert_eq!(ans("unbalanced \\boxed{3"), "");
        assert_eq!(
            extract_answer(
                "I got 12 apples and 7 pears, -1,234.5",
                Extraction::LastNumber
            )
            .unwrap()
            .answer,
            "-1234.5"
        );
        assert_eq!(extract_answer("no numbers", Extraction::LastNumber), None);
    }

    /// The documented disputed example, under each policy; markers win under all of them.
    #[test]
    fn extraction_policies() {
        let t = "The total is $12$ apples, or $\\frac{12}{1}$ per box. But I'm not sure.";
        let got = |e: Extraction| extract_answer(t, e).map(|x| (x.answer, x.marker));
        assert_eq!(got(Extraction::Anchored), None);
        assert_eq!(
            got(Extraction::LastMath),
            Some(("\\frac{12}{1}".into(), Marker::LastMath))
        );
        assert_eq!(
            got(Extraction::LastNumber),
            Some(("1".into(), Marker::LastNumber))
        );
        let last = |s: &str| extract_answer(s, Extraction::LastMath).map(|x| x.answer);
        assert_eq!(last("So it is **73**."), Some("73".into()));
        assert_eq!(last("we need\n7,425,000"), Some("7425000".into()));
        assert_eq!(last("Answer $ \n 9 \n $"), None);
        assert_eq!(last("$1$ then \\boxed{2} and $3$"), Some("2".into()));
        assert_eq!("last_math".parse(), Ok(Extraction::LastMath));
        assert!("lenient".parse::<Extraction>().is_err());
    }
}
