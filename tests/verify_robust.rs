//! Robustness: arbitrary strings and adversarial LaTeX never panic, and every call is bounded.

use std::time::{Duration, Instant};

use mgrpo::verify::{verify, Extraction, Policy};
use proptest::prelude::*;

/// A call must finish well within this even on a slow CI core.
const BOUND: Duration = Duration::from_millis(250);

fn timed(gold: &str, pred: &str) {
    let t = Instant::now();
    let _ = verify(gold, pred, &Policy::default(), Extraction::LastNumber);
    let _ = verify(pred, gold, &Policy::default(), Extraction::Anchored);
    let _ = verify(gold, pred, &Policy::default(), Extraction::LastMath);
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
    "\\approx",
    " and ",
    " or ",
    ";",
    "<|im_start|>",
    "**",
    "\\mathrm{km}",
    "^{2}",
    "\\begin{array}{cc}",
    "\\end{array}",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "é",
    "Final Answer: ",
    "I hope it is correct.",
    "{, }",
    "f(x)",
    "\\ge",
    "n!",
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

/// Inputs that used to crash or crawl (issue: "no input can crash it"): a gold answer that is a
/// flat chain of 20,000 terms overflowed the stack (the tree is as tall as the chain); many
/// boxes, or many unclosed ones, made extraction quadratic (19.5 s and 58 s). Each is now a
/// verdict within the bound, on a test thread's 2 MiB stack.
#[test]
fn huge_chains_boxes_and_nests_are_bounded() {
    let chain = |op: &str| vec!["1"; 20_000].join(op);
    let cases: Vec<(String, String)> = vec![
        (chain("+"), "\\boxed{20000}".into()),
        (chain("-"), "The answer is 5".into()),
        (chain("*"), chain("*")),
        (chain("/"), "\\boxed{1}".into()),
        ("5".into(), "\\boxed{1}".repeat(100_000)),
        ("5".into(), "\\boxed{".repeat(100_000)),
        (
            "5".into(),
            "\\fbox{".repeat(50_000) + &"\\boxed ".repeat(50_000),
        ),
        (
            "5".into(),
            format!("\\boxed{{{}{}}}", "(".repeat(100_000), ")".repeat(100_000)),
        ),
        (
            "5".into(),
            format!("\\boxed{{{}{}}}", "{".repeat(100_000), "}".repeat(100_000)),
        ),
        (
            "(".repeat(100_000) + "1" + &")".repeat(100_000),
            "\\boxed{1}".into(),
        ),
        (
            "\\frac{".repeat(50_000) + "1" + &"}{2}".repeat(50_000),
            "\\boxed{1}".into(),
        ),
    ];
    for (gold, pred) in &cases {
        let t = Instant::now();
        let v = verify(gold, pred, &Policy::default(), Extraction::LastNumber);
        assert!(!v.correct, "{}…", &pred[..20.min(pred.len())]);
        assert!(
            t.elapsed() < BOUND,
            "{:?} for gold {}… pred {}…",
            t.elapsed(),
            &gold[..20.min(gold.len())],
            &pred[..20.min(pred.len())]
        );
    }
    // a chain of ordinary length still works (the cap is far above real answers)
    let v = verify(
        &vec!["1"; 100].join("+"),
        "\\boxed{100}",
        &Policy::default(),
        Extraction::Anchored,
    );
    assert!(v.correct);
}

/// The per-call time budget fails closed: a spent budget grades the answer wrong and says why;
/// an ordinary budget grades the same pair right.
#[test]
fn time_budget_fails_closed() {
    let gold = "\\begin{pmatrix} x^2 & 2x \\\\ \\frac{(2n)!}{(n!)^2} & 1 \\end{pmatrix}";
    let pred =
        "\\boxed{\\begin{pmatrix} x \\cdot x & x + x \\\\ \\binom{2n}{n} & 1 \\end{pmatrix}}";
    let v = verify(gold, pred, &Policy::default(), Extraction::Anchored);
    assert!(v.correct && v.reason.is_none(), "{v:?}");
    let mut spent = Policy::default();
    spent.set("time_budget_ms", "0").unwrap();
    let v = verify(gold, pred, &spent, Extraction::Anchored);
    assert!(!v.correct, "{v:?}");
    assert_eq!(v.reason, Some("time budget exceeded"));
    assert!(v.pred_answer.is_some());
    assert!(spent.set("time_budget_ms", "soon").is_err());
}
