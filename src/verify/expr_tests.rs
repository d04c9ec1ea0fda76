//! Tests of the expression parser and evaluator (`super`).

use super::super::lexer::tokenize;
use super::*;

fn value(s: &str) -> Num {
    let e = parse(&tokenize(s).unwrap()).unwrap_or_else(|| panic!("parse {s}"));
    e.eval(&BTreeMap::new(), PercentMode::Hundredth)
        .unwrap_or_else(|| panic!("eval {s}"))
}

fn q(n: i64, d: i64) -> Num {
    Num::Exact(BigRational::new(n.into(), d.into()))
}

#[test]
fn precedence_and_implicit_products() {
    assert_eq!(value("2+3*4"), Num::int(14));
    assert_eq!(value("-2^2"), Num::int(-4));
    assert_eq!(value("2^3^2"), Num::int(512));
    assert_eq!(value("\\frac{1}{2}+\\frac{1}{3}"), q(5, 6));
    assert_eq!(value("3(4)"), Num::int(12));
    assert_eq!(value("15\\frac{39}{40}"), q(639, 40));
    assert_eq!(value("-2\\frac{1}{2}"), q(-5, 2));
    assert_eq!(value("2\\frac{3}{2}"), Num::int(3));
    assert_eq!(value("2^-1"), q(1, 2));
    assert_eq!(value("5!"), Num::int(120));
    assert_eq!(value("\\binom{6}{2}"), Num::int(15));
    assert_eq!(value("50%"), q(1, 2));
    assert_eq!(value("|-3|"), Num::int(3));
    assert_eq!(value("\\log_2 8"), Num::int(3));
    assert_eq!(value("\\sqrt[3]{27}"), Num::int(3));
    assert!(value("2\\sqrt{2}").equals(&value("\\sqrt{8}")));
    assert!(value("\\sin^2 1 + \\cos^2 1").equals(&Num::int(1)));
    assert!(value("\\frac{\\pi}{2}").equals(&value("\\pi/2")));
}

#[test]
fn malformed_and_deep_input_fails_cleanly() {
    for s in ["(1", "1+", "\\frac{1}", "((((", "2**", "\\sqrt"] {
        let t = tokenize(s).unwrap();
        assert!(parse(&t).is_none(), "{s}");
    }
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    assert!(parse(&tokenize(&deep).unwrap()).is_none());
}
