//! String-level normalisation of an extracted answer before parsing: LaTeX spacing and sizing
//! commands, `$`, `\text{…}` units, degrees, thousands separators, `\dfrac`, `\frac12`,
//! Unicode symbols. What the parser can read is left to the parser (e-notation, mixed numbers,
//! percent, `x = 5`).

/// Normalise an answer string.
pub fn normalize(answer: &str) -> String {
    // Commands written with a doubled backslash (`\\\\frac`: text that was escaped twice) are
    // commands; a row break is never followed by a letter in a well-formed answer.
    let s = undouble_commands(&unicode(answer.trim()));
    let s = delimited(&s);
    // Protect matrix row breaks `\\\\` from the `\\ ` spacing rule below.
    let mut s = s.replace("\\\\", ROW_BREAK);
    s = unwrap_command(&s, &["boxed", "fbox"], |c| c.to_string());
    s = s.replace("\\$", "").replace('$', "");
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("\\%", "%"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("{}^{\\circ}", ""),
        ("\\circ", ""),
        ("\\degree", ""),
        ("^{\\prime}", ""),
        ("^\\prime", ""),
        ("\\mathbb{R}", "(-\\infty,\\infty)"),
        ("\\emptyset", "\\{\\}"),
        ("\\varnothing", "\\{\\}"),
        // relations as typed: one spelling each
        ("!=", "\\ne "),
        ("<=", "\\le "),
        (">=", "\\ge "),
        ("\\neq", "\\ne "),
        ("\\leq", "\\le "),
        ("\\geq", "\\ge "),
        ("\\lt ", "<"),
        ("\\gt ", ">"),
        // `14 {, }916`: a braced thousands separator with spaces
        (" {, }", "{,}"),
        ("{, }", "{,}"),
        // `11,\\! 111`: a thousands separator with a negative thin space
        (",\\! ", ","),
        (",\\!", ","),
    ] {
        s = s.replace(from, to);
    }
    s = delete_commands(
        &s,
        &[
            "left",
            "right",
            "displaystyle",
            "textstyle",
            "big",
            "Big",
            "bigl",
            "bigr",
            "Bigl",
            "Bigr",
            "bigg",
            "Bigg",
            "biggl",
            "biggr",
            "limits",
        ],
    );
    s = thousands_separators(&s);
    for (from, to) in [
        ("\\!", ""),
        ("\\,", " "),
        ("\\;", " "),
        ("\\:", " "),
        ("\\ ", " "),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("~", " "),
    ] {
        s = s.replace(from, to);
    }
    s = strip_trailing_units(&s);
    s = text_groups(&s);
    s = brace_digit_args(&s, "\\frac", 2);
    s = brace_digit_args(&s, "\\sqrt", 1);
    let s = s.trim().trim_end_matches(['.', ',', ';']).trim();
    let s = plain_thousands(s);
    strip_trailing_words(&s).replace(ROW_BREAK, "\\\\")
}

const ROW_BREAK: &str = "\u{1}";

/// The inside of a whole answer written between `\(`…`\)` or `\[`…`\]`.
fn delimited(s: &str) -> String {
    for (open, close) in [("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            return inner.trim().to_string();
        }
    }
    s.to_string()
}

/// `\\\\frac` → `\\frac`: a doubled backslash before a command name (not `\\\\end`, which
/// may close a matrix right after a row break).
fn undouble_commands(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\\\") {
        let after = &rest[i + 2..];
        let letter = after.starts_with(|c: char| c.is_ascii_alphabetic());
        out.push_str(&rest[..i]);
        if letter && !after.starts_with("end") && !after.starts_with("hline") {
            out.push('\\');
        } else {
            out.push_str("\\\\");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn unicode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '−' | '–' | '—' => out.push('-'),
            '√' => {
                out.push_str("\\sqrt");
                // √12 means √(12): brace the whole number.
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push('{');
                    while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
                        out.push(d);
                    }
                    out.push('}');
                }
            }
            'π' => out.push_str("\\pi "),
            '∞' => out.push_str("\\infty "),
            '×' => out.push_str("\\times "),
            '·' | '⋅' => out.push_str("\\cdot "),
            '÷' => out.push_str("\\div "),
            '≤' => out.push_str("\\le "),
            '≥' => out.push_str("\\ge "),
            '≠' => out.push_str("\\ne "),
            '∪' => out.push_str("\\cup "),
            '∈' => out.push_str("\\in "),
            '°' => {}
            '²' => out.push_str("^2"),
            '³' => out.push_str("^3"),
            '½' => out.push_str("\\frac{1}{2}"),
            '\u{a0}' | '\u{2009}' | '\u{202f}' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Byte index just past the `}` matching the `{` at `open`.
pub fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Position of `\name` in `s` at or after `from`, not followed by another letter.
fn find_command(s: &str, name: &str, from: usize) -> Option<usize> {
    let pat = format!("\\{name}");
    let mut at = from;
    while let Some(i) = s[at..].find(&pat) {
        let start = at + i;
        let end = start + pat.len();
        if !s[end..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Some(start);
        }
        at = end;
    }
    None
}

/// Replace `\name{content}` by `f(content)` for each of `names`.
fn unwrap_command(s: &str, names: &[&str], f: impl Fn(&str) -> String) -> String {
    let mut s = s.to_string();
    for name in names {
        let mut from = 0;
        while let Some(start) = find_command(&s, name, from) {
            let after = start + name.len() + 1;
            let open = after + (s[after..].len() - s[after..].trim_start().len());
            if !s[open..].starts_with('{') {
                from = after;
                continue;
            }
            let Some(end) = matching_brace(&s, open) else {
                break;
            };
            let inner = f(&s[open + 1..end - 1]);
            s = format!("{}{}{}", &s[..start], inner, &s[end..]);
            from = start + inner.len();
        }
    }
    s
}

fn delete_commands(s: &str, names: &[&str]) -> String {
    let mut s = s.to_string();
    for name in names {
        while let Some(start) = find_command(&s, name, 0) {
            s.replace_range(start..start + name.len() + 1, "");
        }
    }
    s
}

/// `1{,}000`, `1\,000`, `1\ 000` → `1000` (a separator followed by exactly three digits).
fn thousands_separators(s: &str) -> String {
    let mut out = s.to_string();
    for sep in ["{,}", "\\,", "\\ ", "\\;"] {
        let mut from = 0;
        while let Some(i) = out[from..].find(sep) {
            let at = from + i;
            let before = out[..at].chars().last().is_some_and(|c| c.is_ascii_digit());
            let rest = &out.as_bytes()[at + sep.len()..];
            let three = rest.len() >= 3
                && rest[..3].iter().all(u8::is_ascii_digit)
                && !rest.get(3).is_some_and(u8::is_ascii_digit);
            if before && three {
                out.replace_range(at..at + sep.len(), "");
                from = at;
            } else {
                from = at + sep.len();
            }
        }
    }
    out
}

/// `1,000,000` (the whole answer, optionally signed and with decimals) → `1000000`.
fn plain_thousands(s: &str) -> String {
    let body = s.strip_prefix('-').unwrap_or(s);
    let int = body.split('.').next().unwrap_or("");
    let frac_ok = body
        .split_once('.')
        .is_none_or(|(_, f)| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()));
    let groups: Vec<&str> = int.split(',').collect();
    let grouped = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3);
    if grouped && frac_ok {
        s.replace(',', "")
    } else {
        s.to_string()
    }
}

const TEXT_COMMANDS: &[&str] = &["text", "textbf", "textit", "textrm", "mbox", "textnormal"];
const FONT_COMMANDS: &[&str] = &[
    "mathrm",
    "mathbf",
    "mathit",
    "boldsymbol",
    "operatorname",
    "mathsf",
    "mathcal",
    "bf",
    "rm",
];

/// `\text{…}`: a connective (`or`, `and`) becomes a comma; when the answer is only text its
/// words are the answer; otherwise text is a unit and is dropped. Font commands are unwrapped,
/// except multi-letter words next to other content (units such as `\mathrm{cm}`).
fn text_groups(s: &str) -> String {
    let mut outside = unwrap_command(s, TEXT_COMMANDS, |_| String::new());
    outside = unwrap_command(&outside, FONT_COMMANDS, font_or_unit);
    let has_math = !outside
        .trim()
        .trim_matches(|c: char| "()., ".contains(c))
        .is_empty();
    let connective = |c: &str| matches!(c.trim(), "or" | "and" | "," | "or," | "and,");
    if !has_math {
        let words = unwrap_command(s, TEXT_COMMANDS, |c| c.to_string());
        return unwrap_command(&words, FONT_COMMANDS, font_content);
    }
    let s = unwrap_command(s, TEXT_COMMANDS, |c| {
        if connective(c) {
            ",".into()
        } else {
            String::new()
        }
    });
    unwrap_command(&s, FONT_COMMANDS, font_or_unit)
}

/// Commands whose content after a value is a unit (`\mathbf` is a vector, not a unit).
const UNIT_COMMANDS: &[&str] = &[
    "\\mathrm",
    "\\text",
    "\\textrm",
    "\\textnormal",
    "\\mbox",
    "\\rm",
];

/// `1.2 \times 10^{3} \mathrm{km} / \mathrm{s}` → `1.2 \times 10^{3}`: units after a value,
/// with their quotients, products and exponents (`\text{m}/\text{s}^2`, `\mathrm{cm}^{3}`).
fn strip_trailing_units(s: &str) -> String {
    let mut end = s.len();
    let mut groups = 0;
    loop {
        let t = s[..end].trim_end();
        end = t.len();
        if let Some(r) = t.strip_suffix('/').or_else(|| t.strip_suffix("\\cdot")) {
            end = r.len();
            continue;
        }
        // an exponent counts only on a unit (`10^{3}` is the value's)
        let base = exponent_base(t).unwrap_or(t);
        let Some(start) = unit_group(base) else { break };
        end = start;
        groups += 1;
    }
    let head = s[..end].trim_end();
    let value_end = head.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
    if groups > 0 && value_end {
        head.to_string()
    } else {
        s.to_string()
    }
}

/// `t` without a trailing `^2` / `^{-1}` exponent.
fn exponent_base(t: &str) -> Option<&str> {
    let i = t.rfind('^')?;
    let e = t[i + 1..].trim_start_matches('{').trim_end_matches('}');
    let digits = e.trim_start_matches('-');
    (!digits.is_empty() && digits.len() <= 2 && digits.bytes().all(|c| c.is_ascii_digit()))
        .then(|| t[..i].trim_end())
}

/// Where a trailing `\mathrm{km}` (a unit command around letters) starts in `t`.
fn unit_group(t: &str) -> Option<usize> {
    let body = t.strip_suffix('}')?;
    let open = body.rfind('{')?;
    let content = &body[open + 1..];
    let letters = content.chars().any(char::is_alphabetic)
        && content
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '.');
    let head = &t[..open];
    let cmd = UNIT_COMMANDS.iter().find(|c| head.ends_with(*c))?;
    letters.then(|| open - cmd.len())
}

/// A font command next to other content: a word is a unit (dropped), anything else stays.
fn font_or_unit(c: &str) -> String {
    if is_word(c) {
        String::new()
    } else {
        font_content(c)
    }
}

/// A font command's content: bold digits typeset with spaces (`\\mathbf{1 7}`) are one
/// number, as LaTeX's math mode ignores the spaces.
fn font_content(c: &str) -> String {
    if c.chars().all(|c| c.is_ascii_digit() || c == ' ') {
        c.replace(' ', "")
    } else {
        c.to_string()
    }
}

fn is_word(c: &str) -> bool {
    let c = c.trim();
    c.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && c.chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '/' || c == '.')
}

/// `\frac12` → `\frac{1}{2}`, `\sqrt2` → `\sqrt{2}`: a digit argument without braces is one
/// digit in LaTeX.
fn brace_digit_args(s: &str, cmd: &str, nargs: usize) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(i) = rest.find(cmd) {
        let after = &rest[i + cmd.len()..];
        if after.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&rest[..i + cmd.len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..i + cmd.len()]);
        let mut tail = after;
        for _ in 0..nargs {
            let trimmed = tail.trim_start();
            if let Some(d) = trimmed.chars().next().filter(char::is_ascii_digit) {
                out.push('{');
                out.push(d);
                out.push('}');
                tail = &trimmed[1..];
            } else if trimmed.starts_with('{') {
                let open = tail.len() - trimmed.len();
                match matching_brace(tail, open) {
                    Some(end) => {
                        out.push_str(&tail[..end]);
                        tail = &tail[end..];
                    }
                    None => break,
                }
            } else {
                break;
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// `18 dollars`, `5 cm` → `18`, `5`: a number followed only by plain words (units).
fn strip_trailing_words(s: &str) -> String {
    let Some((num, rest)) = s.split_once(' ') else {
        return s.to_string();
    };
    let is_number = !num.is_empty()
        && num.chars().all(|c| c.is_ascii_digit() || ".-/".contains(c))
        && num.chars().any(|c| c.is_ascii_digit());
    if is_number && is_word(rest) && rest.split_whitespace().all(|w| w.chars().count() >= 2) {
        num.to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes() {
        let cases = [
            ("$\\dfrac{1}{2}$", "\\frac{1}{2}"),
            ("\\frac12", "\\frac{1}{2}"),
            ("\\frac 59", "\\frac{5}{9}"),
            ("\\sqrt2", "\\sqrt{2}"),
            ("1{,}000", "1000"),
            ("1\\,000", "1000"),
            ("1,000,000", "1000000"),
            ("(1,000)", "(1,000)"),
            ("30^\\circ", "30"),
            ("50\\%", "50%"),
            ("\\left( 1, 2 \\right)", "( 1, 2 )"),
            ("10\\text{ cm}", "10"),
            ("\\text{Evelyn}", "Evelyn"),
            ("1 \\text{ or } 2", "1 , 2"),
            ("18 dollars", "18"),
            ("2 x", "2 x"),
            ("\\boxed{5}.", "5"),
            ("−3√2", "-3\\sqrt{2}"),
            ("\\$18.00", "18.00"),
            ("5\\mathrm{~cm}", "5"),
            ("x != 3", "x \\ne  3"),
            ("x <= 1", "x \\le  1"),
            ("x \\neq 3", "x \\ne  3"),
            ("11,\\! 111,\\! 100", "11111100"),
            ("\\\\frac{1}{5}", "\\frac{1}{5}"),
            ("1 \\\\ 2", "1 \\\\ 2"),
            ("\\mathrm{e}^2", "e^2"),
            ("11+6=\\mathbf{1 7}", "11+6=17"),
            (
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
                "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input}");
        }
    }
}
