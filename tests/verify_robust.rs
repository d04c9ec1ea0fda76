//! Robustness: arbitrary strings and adversarial LaTeX never panic, and every call is bounded.

use std::time::{Duration, Instant};

use mgrpo::reward::{verify, Policy};
use proptest::prelude::*;

/// A call must finish well within this even on a slow CI core.
const BOUND: Duration = Duration::from_millis(250);

fn timed(gold: &str, pred: &str) {
    let t = Instant::now();
    let _ = verify(gold, pred, &Policy::default(), true);
    let _ = verify(pred, gold, &Policy::default(), false);
    assert!(
        t.elapsed() < BOUND,
        "{:?} for gold {gold:?} pred {pred:?}",
        t.elapsed()
    );
}

/// Fragments that exercise every parser path, to be glued together at random.
const FRAGMENTS: &[&str] = &[
    "\\boxed{",
    "\\fbox{",
    "}",
    "{",
    "(",
    ")",
    "[",
    "]",
    "\\{",
    "\\}",
    "\\frac",
    "\\sqrt",
    "[3]",
    "^",
    "_",
    "!",
    "%",
    "\\%",
    ",",
    "=",
    "<",
    "\\le",
    "\\pm",
    "\\cup",
    "\\infty",
    "\\pi",
    "e",
    "i",
    "x",
    "y",
    "0",
    "1",
    "2",
    "9",
    "10",
    "99",
    ".",
    "0.\\overline{3}",
    "1e5",
    "-",
    "+",
    "*",
    "/",
    "\\cdot",
    "\\times",
    "\\binom",
    "\\log_",
    "\\ln",
    "\\sin",
    "\\lfloor",
    "\\rfloor",
    "|",
    "\\text{",
    "\\mathbf{",
    "\\left(",
    "\\right)",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "&",
    "\\\\",
    "$",
    "####",
    "The answer is ",
    "Final Answer: The final answer is ",
    "</think>",
    " ",
    "\n",
    "√",
    "π",
    "−",
    "°",
    "1{,}000",
    "\\,",
    "\\!",
    "10^{10^{10}}",
    "1000!",
    "(C)",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(gold in "\\PC{0,40}", pred in "\\PC{0,200}") {
        timed(&gold, &pred);
    }

    #[test]
    fn adversarial_latex(parts in proptest::collection::vec(0..FRAGMENTS.len(), 0..60),
                         gold_parts in proptest::collection::vec(0..FRAGMENTS.len(), 0..12)) {
        let pred: String = parts.iter().map(|&i| FRAGMENTS[i]).collect();
        let gold: String = gold_parts.iter().map(|&i| FRAGMENTS[i]).collect();
        timed(&gold, &pred);
        timed(&gold, &format!("\\boxed{{{pred}}}"));
    }
}

#[test]
fn hostile_inputs_are_bounded() {
    let deep_braces = format!("\\boxed{{{}1{}}}", "{".repeat(5000), "}".repeat(5000));
    let deep_parens = format!("\\boxed{{{}1{}}}", "(".repeat(5000), ")".repeat(5000));
    let unbalanced = format!("\\boxed{{{}", "{(".repeat(5000));
    let towers = format!(
        "\\boxed{{{}}}",
        "10^{".repeat(200) + "10" + &"}".repeat(200)
    );
    let long_number = format!("\\boxed{{{}}}", "9".repeat(100_000));
    let many_boxes = "\\boxed{1} ".repeat(5000);
    let huge_text = "the answer is 5. ".repeat(20_000);
    let fact = "\\boxed{100000!}".to_string();
    let binom = "\\boxed{\\binom{1000000000}{500000000}}".to_string();
    let pow = "\\boxed{(1+\\frac{1}{3})^{99999999}}".to_string();
    let list = format!("\\boxed{{{}}}", vec!["1"; 10_000].join(","));
    let matrix = format!(
        "\\boxed{{\\begin{{pmatrix}}{}\\end{{pmatrix}}}}",
        vec!["1 & 2"; 2000].join("\\\\")
    );
    let trig = "\\boxed{\\sin(10^{100})}".to_string();
    for pred in [
        deep_braces,
        deep_parens,
        unbalanced,
        towers,
        long_number,
        many_boxes,
        huge_text,
        fact,
        binom,
        pow,
        list,
        matrix,
        trig,
    ] {
        timed("1", &pred);
        timed("x^2+1", &pred);
    }
}
