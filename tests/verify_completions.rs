//! Realistic completions in the styles of Qwen2.5-Math, DeepSeek-R1 distills and Llama instruct
//! models (tests/fixtures/verify/completions.jsonl, written by `scripts/
//! make_verify_completions.py`), labelled by hand, in the families where graders disagree:
//! answers with no box or marker, Unicode and markdown bold, units, text case, named values,
//! several boxes, identities that need integer sample points, relations, approximations,
//! decimal commas, matrices in text, lists of solutions, and whole completions of each style.
//! Every label must be met under the default policy with the row's extraction.

use std::collections::BTreeMap;

use mgrpo::verify::{verify, Extraction, Policy};
use serde_json::Value;

#[test]
fn labelled_completions() {
    let text = std::fs::read_to_string("tests/fixtures/verify/completions.jsonl").unwrap();
    let policy = Policy::default();
    let mut failures = Vec::new();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    let mut styles: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows = 0;
    for (i, line) in text.lines().enumerate() {
        let r: Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| r[k].as_str().unwrap().to_string();
        let extraction: Extraction = field("extraction").parse().unwrap();
        let want = r["correct"].as_bool().unwrap();
        let v = verify(&field("gold"), &field("completion"), &policy, extraction);
        if v.correct != want {
            failures.push(format!(
                "line {} [{}] gold {:?}: answer {:?}, got {}, want {} ({})",
                i + 1,
                field("family"),
                field("gold"),
                v.pred_answer,
                v.correct,
                want,
                field("why")
            ));
        }
        *families.entry(field("family")).or_default() += 1;
        *styles.entry(field("style")).or_default() += 1;
        rows += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {rows} labels missed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(rows >= 100, "{rows} rows");
    for style in ["qwen2.5-math", "r1-distill", "llama-instruct"] {
        assert!(
            styles.get(style).copied().unwrap_or(0) >= 10,
            "{style}: {styles:?}"
        );
    }
    assert!(families.len() >= 12, "{families:?}");
}
