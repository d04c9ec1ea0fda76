//! `mgrpo verify` through the binary: pairs, predictions against a dataset (by id, by index as
//! `mgrpo generate` writes them), self-check, policies, and one-line errors.

mod common;

use common::*;

fn rows(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn data(file: &str) -> String {
    fixture("data").join(file).display().to_string()
}

#[test]
fn verify_pairs_predictions_and_self_check() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        concat!(
            r#"{"gold": "\\frac{1}{2}", "pred": "So the answer is $\\boxed{0.5}$."}"#,
            "\n",
            r#"{"gold": "1000000", "pred": "\\boxed{1000001}"}"#,
            "\n",
            r#"{"gold": "\\frac{\\pi}{2}", "pred": "\\boxed{1.5708}"}"#,
            "\n",
            r#"{"gold": "7", "pred": "no idea"}"#,
            "\n",
        ),
    )
    .unwrap();
    let p = pairs.display().to_string();
    let out = mgrpo(&["verify", "--input", &p]);
    let r = rows(&out);
    let correct: Vec<bool> = r.iter().map(|v| v["correct"].as_bool().unwrap()).collect();
    assert_eq!(correct, [true, false, false, false]);
    assert_eq!(r[0]["pred_answer"], "0.5");
    assert_eq!(r[0]["gold_answer"], "\\frac{1}{2}");
    assert!(r[3]["pred_answer"].is_null());
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("4 rows: 1 correct (25.00%), 1 without an answer"),
        "{summary}"
    );
    // A policy flips the disputed decimal approximation.
    let r = rows(&mgrpo(&[
        "verify",
        "--input",
        &p,
        "--policy",
        "decimal_approximations=true",
    ]));
    assert_eq!(r[2]["correct"], true);

    // Predictions as `mgrpo generate` writes them (index = dataset row, sample), and by id.
    let preds = tmp.path().join("preds.jsonl");
    std::fs::write(
        &preds,
        concat!(
            r#"{"index": 0, "sample": 0, "text": "16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars."}"#,
            "\n",
            r#"{"index": 0, "sample": 1, "text": "\\boxed{20}"}"#,
            "\n",
            "{\"id\": \"line-2\", \"completion\": \"#### 3\"}",
            "\n",
        ),
    )
    .unwrap();
    let gsm = data("gsm8k_test.jsonl");
    let out_file = tmp.path().join("verdicts.jsonl");
    let out = mgrpo(&[
        "verify",
        "--dataset",
        &gsm,
        "--predictions",
        &preds.display().to_string(),
        "--output",
        &out_file.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    let r: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(r.len(), 3);
    assert_eq!(
        (
            r[0]["id"].as_str(),
            r[0]["sample"].as_u64(),
            r[0]["correct"].as_bool()
        ),
        (Some("line-1"), Some(0), Some(true))
    );
    assert_eq!(r[1]["correct"], false);
    assert_eq!(
        (r[2]["id"].as_str(), r[2]["correct"].as_bool()),
        (Some("line-2"), Some(true))
    );

    // Self-check of MATH-500: every reference verifies; --only-wrong prints nothing.
    let out = mgrpo(&[
        "verify",
        "--dataset",
        &data("math500_test.jsonl"),
        "--self-check",
        "--only-wrong",
    ]);
    assert!(rows(&out).is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("500 rows: 500 correct"));
}

#[test]
fn verify_errors_name_the_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"gold\": \"1\", \"pred\": \"1\"}\n{\"gold\": \"1\"}\n",
    )
    .unwrap();
    let b = bad.display().to_string();
    let e = fails(&["verify", "--input", &b]);
    assert!(e.contains("bad.jsonl:2") && e.contains("`pred`"), "{e}");
    let out = tmp.path().join("out.jsonl");
    let e = fails(&[
        "verify",
        "--input",
        &b,
        "--output",
        &out.display().to_string(),
    ]);
    assert!(e.contains("bad.jsonl:2"), "{e}");
    assert!(!out.exists(), "nothing written on error");
    let e = fails(&["verify", "--input", &b, "--policy", "percent=half"]);
    assert!(e.contains("percent") && e.contains("either"), "{e}");
    let e = fails(&["verify", "--input", &b, "--policy", "nonsense"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let preds = tmp.path().join("preds.jsonl");
    std::fs::write(&preds, "{\"index\": 99999, \"text\": \"1\"}\n").unwrap();
    let e = fails(&[
        "verify",
        "--dataset",
        &data("amc23_head.jsonl"),
        "--predictions",
        &preds.display().to_string(),
    ]);
    assert!(e.contains("preds.jsonl:1") && e.contains("index"), "{e}");
    std::fs::write(&preds, "{\"id\": \"nope\", \"text\": \"1\"}\n").unwrap();
    let e = fails(&[
        "verify",
        "--dataset",
        &data("amc23_head.jsonl"),
        "--predictions",
        &preds.display().to_string(),
    ]);
    assert!(e.contains("preds.jsonl:1") && e.contains("nope"), "{e}");
    // A usage error from clap (several lines of help) with a non-zero exit.
    let out = mgrpo(&["verify", "--dataset", &data("amc23_head.jsonl")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--predictions"));
    let out = mgrpo(&[
        "verify",
        "--dataset",
        &data("amc23_head.jsonl"),
        "--format",
        "gsm9k",
        "--self-check",
    ]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("unknown dataset format `gsm9k`") && e.contains("gsm8k"),
        "{e}"
    );
}
