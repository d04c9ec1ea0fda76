//! `\boxed{…}` / `\fbox{…}` answers (also `\boxed 5`): every box found in one linear pass, and
//! the last one joined with the boxes right before it when only separators lie between them
//! ("\boxed{2}, \boxed{3}"; "$x = \boxed{1}$ and $x = \boxed{2}$"), so that a list of
//! answers is one answer and a self-correction ("\boxed{40} … wait … \boxed{45}") keeps its
//! last.

/// For every `{` of `text` (by byte offset), the byte index just past its matching `}`, in one
/// pass (a brace-matching scan from each box would make many boxes quadratic).
fn closing_braces(text: &str) -> std::collections::HashMap<usize, usize> {
    let mut open = Vec::new();
    let mut out = std::collections::HashMap::new();
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'{' => open.push(i),
            b'}' => {
                if let Some(o) = open.pop() {
                    out.insert(o, i + 1);
                }
            }
            _ => {}
        }
    }
    out
}

/// All `\boxed`/`\fbox` contents with their start positions, in order. Linear in the text.
fn all_boxes(text: &str) -> Vec<(usize, usize, String)> {
    let mut starts: Vec<(usize, usize)> = ["\\boxed", "\\fbox"]
        .iter()
        .flat_map(|p| text.match_indices(p).map(|(i, m)| (i, m.len())))
        .collect();
    starts.sort_unstable();
    let closing = closing_braces(text);
    let mut out = Vec::new();
    let mut from = 0;
    for (start, len) in starts {
        if start < from {
            continue;
        }
        let after = start + len;
        let rest = &text[after..];
        if rest.starts_with('{') {
            match closing.get(&after) {
                Some(&end) => {
                    out.push((start, end, text[after + 1..end - 1].to_string()));
                    from = end;
                }
                None => from = after, // unbalanced: not an answer
            }
        } else if rest.starts_with(' ') {
            // `\boxed 5`: the next space-delimited token.
            let tok: String = rest
                .trim_start()
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '$')
                .collect();
            let end = after + (rest.len() - rest.trim_start().len()) + tok.len();
            if !tok.is_empty() {
                out.push((start, end, tok));
            }
            from = end.max(after);
        } else {
            from = after;
        }
    }
    out
}

/// The last box, joined with the boxes right before it when only separators lie between.
pub(super) fn boxed(text: &str) -> Option<(usize, String)> {
    let boxes = all_boxes(text);
    let (mut start, _, last) = boxes.last()?.clone();
    let mut parts = vec![last];
    for w in boxes.windows(2).rev() {
        let ((s0, e0, a0), (s1, _, _)) = (&w[0], &w[1]);
        if *s1 != start || !is_separator(&text[*e0..*s1]) {
            break;
        }
        parts.push(a0.clone());
        start = *s0;
    }
    parts.reverse();
    Some((start, parts.join(", ")))
}

/// Whether the text between two answers joins them into one list: commas, "and", "or",
/// delimiters, names being assigned (`$x = \boxed{1}$ and $y = \boxed{2}$`), part labels,
/// and with "and"/"or" plain words too ("\boxed{1} papers and \boxed{2} bins"). Anything
/// else ("\boxed{40} is wrong, so \boxed{45}") separates a revision from its answer.
pub(super) fn is_separator(between: &str) -> bool {
    let t = between
        .replace(['$', ',', ';', '&', '"'], " ")
        .replace("\\quad", " ")
        .replace("\\text{", " ");
    let words: Vec<&str> = t
        .split_whitespace()
        .map(|w| w.trim_matches('}'))
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.iter().any(|w| matches!(*w, "and" | "or"));
    let name = |w: &str| {
        let head = w.split('_').next().unwrap_or(w);
        head.chars().count() == 1 && head.chars().all(char::is_alphabetic)
    };
    let label = |w: &str| {
        w.len() <= 5
            && w.starts_with('(')
            && w.ends_with(')')
            && w[1..w.len() - 1].chars().all(|c| c.is_ascii_alphanumeric())
    };
    let plain = |w: &str| {
        w.chars().all(|c| c.is_ascii_lowercase())
            && !matches!(
                w,
                "but"
                    | "not"
                    | "no"
                    | "is"
                    | "so"
                    | "wrong"
                    | "instead"
                    | "actually"
                    | "answer"
                    | "correct"
                    | "incorrect"
                    | "final"
                    | "rather"
                    | "wait"
                    | "hence"
                    | "thus"
            )
    };
    words.len() <= 8
        && words.iter().all(|w| {
            matches!(
                *w,
                "and" | "or" | "\\text" | "\\\\" | "\\]" | "\\[" | "\\(" | "\\)" | "="
            ) || name(w)
                || label(w)
                || (joined && plain(w))
        })
}
